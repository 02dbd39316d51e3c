//! `lrx run --gpus`: one run per GPU at a time, each told its GPU, tested without GPUs through
//! `LRX_FAKE_GPUS` (which makes `--gpus all` mean `0..N`).

use std::path::Path;
use std::process::{Command, Output};

fn lrx(dir: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("lrx"));
    cmd.current_dir(dir).env_remove("LRX_CACHE").env_remove("LRX_FAKE_GPUS").env("NO_COLOR", "1");
    cmd
}

fn run(dir: &Path, args: &[&str], fake_gpus: Option<usize>) -> Output {
    let mut cmd = lrx(dir);
    cmd.arg("run").args(args);
    if let Some(n) = fake_gpus {
        cmd.env("LRX_FAKE_GPUS", n.to_string());
    }
    cmd.output().expect("run lrx")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn counts(out: &Output) -> serde_json::Value {
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)));
    json["runs"].clone()
}

/// Each run appends `CUDA_VISIBLE_DEVICES start end` to `runs.log` (the study's folder), after
/// holding its GPU for a while.
const SCRIPT: &str = r#"start=$(date +%s.%N)
sleep 0.4
end=$(date +%s.%N)
echo "${CUDA_VISIBLE_DEVICES:-none} $start $end" >> runs.log
echo '{"val_loss": 1.0}' > "$1/metrics.json"
"#;

const STUDY: &str = r#"train {
  trainer = command("sh gpu.sh {out}")
}

phase p {
  vary seed in [1, 2, 3, 4, 5, 6, 7, 8]
  baseline = false
}
"#;

/// (device, start, end) of every run so far.
fn runs(dir: &Path) -> Vec<(String, f64, f64)> {
    std::fs::read_to_string(dir.join("runs.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_owned(), f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect()
}

#[test]
fn each_gpu_runs_one_run_at_a_time_and_the_gpu_is_not_part_of_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gpu.sh"), SCRIPT).unwrap();
    std::fs::write(dir.path().join("study.lrx"), STUDY).unwrap();

    let out = run(dir.path(), &["study.lrx", "--gpus", "all", "--json", "-q"], Some(2));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(counts(&out)["trained"], 8, "{}", text(&out));
    let log = runs(dir.path());
    assert_eq!(log.len(), 8, "{log:?}");
    // Every run was told one of the two GPUs, both were used, and runs on one GPU never overlap.
    for (device, ..) in &log {
        assert!(device == "0" || device == "1", "{log:?}");
    }
    assert!(log.iter().any(|r| r.0 == "0") && log.iter().any(|r| r.0 == "1"), "{log:?}");
    for (i, a) in log.iter().enumerate() {
        for b in &log[i + 1..] {
            if a.0 == b.0 {
                assert!(a.2 <= b.1 || b.2 <= a.1, "two runs shared GPU {} at once: {a:?} {b:?}", a.0);
            }
        }
    }
    // Two GPUs ran runs side by side: some run on GPU 0 overlapped one on GPU 1 (an order,
    // not a duration: timings on a loaded machine say nothing).
    let side_by_side = log.iter().any(|a| log.iter().any(|b| a.0 == "0" && b.0 == "1" && a.1 < b.2 && b.1 < a.2));
    assert!(side_by_side, "no two runs ran on the two GPUs at once: {log:?}");

    // Which GPU a run had is not part of its key: on other GPUs, or none, nothing trains again.
    for args in [&["study.lrx", "--gpus", "1", "--json", "-q"][..], &["study.lrx", "--json", "-q"][..]] {
        let out = run(dir.path(), args, None);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert_eq!(counts(&out)["cached"], 8, "{args:?}: {}", text(&out));
    }
    assert_eq!(runs(dir.path()).len(), 8);

    // Without `--gpus` a script is not handed a GPU.
    std::fs::write(dir.path().join("study.lrx"), STUDY.replace("[1, 2, 3, 4, 5, 6, 7, 8]", "[9]")).unwrap();
    let out = run(dir.path(), &["study.lrx", "-q"], Some(2));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(runs(dir.path()).last().unwrap().0, "none");
}

/// The built-in trainer through GPU slots, on the CPU taking the accelerator's path: it trains,
/// and its runs are the same runs (same keys) as without `--gpus`.
#[test]
fn the_builtin_trainer_takes_gpu_slots_under_the_same_keys() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("corpus.txt"), "the quick brown fox jumps over the lazy dog. ".repeat(200)).unwrap();
    std::fs::write(
        dir.path().join("study.lrx"),
        r#"model {
  d_model = 16  layers = 1  heads = 2  d_ff = 32  experts = 2  top_k = 1  seq_len = 16
}
data {
  corpus = "corpus.txt"
  tokens = 4000
}
train {
  batch_size = 4  steps = 4  eval_every = 4  val_batches = 1
}
phase lr {
  vary matrix_lr in [0.01, 0.02, 0.04]
}
"#,
    )
    .unwrap();
    let out = run(dir.path(), &["study.lrx", "--gpus", "all", "--device", "cpu-generic", "--json", "-q"], Some(2));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(counts(&out)["trained"], 3, "{}", text(&out));
    let out = run(dir.path(), &["study.lrx", "--device", "cpu-generic", "--json", "-q"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(counts(&out)["cached"], 3, "{}", text(&out));
    // `--gpus` means CUDA for the built-in trainer: a build without it fails those runs, saying why.
    if !cfg!(feature = "cuda") {
        let out = run(dir.path(), &["study.lrx", "--gpus", "all", "--json", "-q"], Some(1));
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("needs a build with the `cuda` feature"), "{}", text(&out));
    }
}

#[test]
fn bad_gpu_lists_and_conflicting_flags_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gpu.sh"), SCRIPT).unwrap();
    std::fs::write(dir.path().join("study.lrx"), STUDY).unwrap();
    for (args, says) in [
        (&["study.lrx", "--gpus", "0,0"][..], "listed twice"),
        (&["study.lrx", "--gpus", "0,one"][..], "`one` is not a GPU number"),
        (&["study.lrx", "--gpus", "0,1", "--jobs", "4"][..], "leave out `--jobs`"),
        (&["study.lrx", "--gpus", "0", "--device", "cpu"][..], "`--device cpu` cannot use them"),
    ] {
        let out = run(dir.path(), args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
    }
    assert!(runs(dir.path()).is_empty(), "nothing ran");
}
