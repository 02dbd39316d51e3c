//! `lrx cache`: `gc` without `--keep` asks before deleting everything (and refuses where it
//! cannot ask), and keys that match nothing are bad input.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use super::harness::{lrx, output, text};

/// A study of two command-trainer runs that take no time.
fn cached_study() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train.sh"), "echo '{\"val_loss\": 1.0}' > \"$1/metrics.json\"\n").unwrap();
    std::fs::write(
        dir.path().join("study.lrx"),
        "train {\n  trainer = command(\"sh train.sh {out}\")\n}\n\nphase p {\n  vary seed in [2, 3]\n}\n",
    )
    .unwrap();
    let run = output(dir.path(), &["run", "study.lrx", "-q"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    dir
}

fn entries(dir: &Path) -> usize {
    let ls = output(dir, &["cache", "ls", "--json"]);
    serde_json::from_slice::<serde_json::Value>(&ls.stdout).unwrap().as_array().unwrap().len()
}

#[test]
fn gc_without_keep_refuses_without_a_terminal_unless_told_all() {
    let dir = cached_study();
    let d = dir.path();
    assert_eq!(entries(d), 3);
    let gc = lrx(d).args(["cache", "gc"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(gc.status.code(), Some(2), "{}", text(&gc.stderr));
    assert!(text(&gc.stderr).contains("give `--all`"), "{}", text(&gc.stderr));
    assert_eq!(entries(d), 3, "nothing deleted");
    // `--dry-run` deletes nothing, so it needs no answer.
    assert_eq!(output(d, &["cache", "gc", "--dry-run"]).status.code(), Some(0));
    let all = lrx(d).args(["cache", "gc", "--all"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(all.status.code(), Some(0), "{}", text(&all.stderr));
    assert_eq!(entries(d), 0);
    // An empty cache has nothing to ask about.
    assert_eq!(lrx(d).args(["cache", "gc"]).stdin(Stdio::null()).output().unwrap().status.code(), Some(0));
}

/// `lrx cache gc` on a terminal (a pseudo-terminal made by `script`), answering `answer`.
fn gc_on_a_terminal(dir: &Path, answer: &str) -> (Option<i32>, String) {
    let command = format!("{} cache gc", env!("CARGO_BIN_EXE_lrx"));
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(dir)
        .env_remove("LRX_CACHE")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    child.stdin.take().unwrap().write_all(answer.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), text(&out.stdout))
}

#[test]
fn gc_without_keep_asks_on_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        return; // no util-linux `script` to make a terminal with
    }
    let dir = cached_study();
    let d = dir.path();
    let (code, screen) = gc_on_a_terminal(d, "n\n");
    assert!(screen.contains("delete all 3 entries of `cache`? [y/N]"), "{screen}");
    assert_eq!(code, Some(1), "{screen}");
    assert_eq!(entries(d), 3, "a no keeps everything");
    let (code, screen) = gc_on_a_terminal(d, "y\n");
    assert_eq!(code, Some(0), "{screen}");
    assert_eq!(entries(d), 0, "a yes deletes everything");
}

#[test]
fn rm_of_a_key_that_matches_nothing_is_bad_input_and_deletes_nothing() {
    let dir = cached_study();
    let d = dir.path();
    let rm = output(d, &["cache", "rm", "ffffffffffff"]);
    assert_eq!(rm.status.code(), Some(1), "{}", text(&rm.stderr));
    assert!(text(&rm.stderr).contains("no cache entry has a key starting with `ffffffffffff`"));
    // Not even the keys that do match: a command line with a mistake does nothing.
    let ls = output(d, &["cache", "ls", "--json"]);
    let key = serde_json::from_slice::<serde_json::Value>(&ls.stdout).unwrap()[0]["key"].as_str().unwrap().to_owned();
    let rm = output(d, &["cache", "rm", &key, "ffffffffffff"]);
    assert_eq!(rm.status.code(), Some(1));
    assert_eq!(entries(d), 3);
}
