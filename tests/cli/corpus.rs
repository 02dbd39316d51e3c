//! Corpora that are not regular files (a named pipe, `/dev/zero`) are refused with a clear
//! error before anything reads them: they used to make `lrx plan` and `lrx train` read forever.

use std::time::Duration;

use assert_cmd::Command;

const STUDY: &str = r#"
model { d_model = 16  layers = 1  heads = 2  d_ff = 32  experts = 2  top_k = 1  seq_len = 16 }
data  { corpus = "CORPUS"  tokens = 20_000 }
train { batch_size = 4  steps = 2  val_batches = 1 }

objective minimize val_loss

phase lr {
  vary matrix_lr in [0.02, 0.08]
}
"#;

fn lrx(dir: &std::path::Path) -> Command {
    let mut c = Command::from_std(super::harness::lrx(dir));
    // A command that reads forever fails the test instead of hanging it.
    c.timeout(Duration::from_secs(60));
    c
}

#[cfg(unix)]
#[test]
fn a_pipe_or_device_as_corpus_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    assert!(std::process::Command::new("mkfifo").arg(dir.path().join("pipe.txt")).status().unwrap().success());
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.txt")).unwrap();
    for corpus in ["pipe.txt", "zero.txt"] {
        std::fs::write(dir.path().join("study.lrx"), STUDY.replace("CORPUS", corpus)).unwrap();
        let out = lrx(dir.path()).args(["plan", "study.lrx"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{corpus}: {stderr}");
        assert!(stderr.contains(&format!("{corpus}` is not a regular file")), "{corpus}: {stderr}");
        let out = lrx(dir.path()).args(["train", "study.lrx"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{corpus}: {stderr}");
        assert!(stderr.contains(&format!("{corpus}` is not a regular file")), "{corpus}: {stderr}");
        let out = lrx(dir.path())
            .args(["train", "--set", &format!("corpus={corpus:?}"), "--set", "steps=2"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{corpus}: {stderr}");
        assert!(stderr.contains("is not a regular file"), "{corpus}: {stderr}");
    }
}
