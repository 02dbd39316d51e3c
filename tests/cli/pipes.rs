//! Every command that prints data, with its stdout a pipe nobody reads (`lrx cache ls | head
//! -1` once `head` has quit): it must finish its work and exit as usual, never panic.
//!
//! The pipe's read end is closed before the command starts, so its first write fails with
//! `EPIPE` every time (a reader that quits later would make the test depend on timing).

use std::path::Path;
use std::process::{Output, Stdio};

use super::harness::lrx;

/// A tiny study on a local corpus (a few steps of a tiny model).
const STUDY: &str = r#"
model { d_model = 16  layers = 1  heads = 2  d_ff = 32  experts = 2  top_k = 1  seq_len = 16 }
data  { corpus = "corpus.txt"  tokens = 20_000 }
train { batch_size = 4  steps = 4  eval_every = 2  log_every = 2  val_batches = 2 }

objective minimize val_loss

phase lr {
  vary matrix_lr in [0.02, 0.08]
}

final combine(lr) { }
"#;

fn study() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(dir.path().join("study.lrx"), STUDY).expect("write study");
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/genesis.txt");
    std::fs::copy(corpus, dir.path().join("corpus.txt")).expect("copy corpus");
    dir
}

/// Runs `args` with stdout a pipe whose reader is gone.
fn closed_stdout(dir: &Path, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    lrx(dir).args(args).stdin(Stdio::null()).stdout(writer).stderr(Stdio::piped()).output().expect("lrx runs")
}

/// The command's exit code and stderr when stdout is closed; it must not have panicked.
fn assert_calm(dir: &Path, args: &[&str], code: i32) {
    let out = closed_stdout(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "`lrx {}` panicked on a closed stdout:\n{stderr}", args.join(" "));
    assert!(!stderr.contains("Broken pipe"), "`lrx {}` complained about the closed pipe:\n{stderr}", args.join(" "));
    assert_eq!(out.status.code(), Some(code), "`lrx {}` on a closed stdout:\n{stderr}", args.join(" "));
}

fn run_ok(dir: &Path, args: &[&str]) -> String {
    let out = lrx(dir).args(args).output().expect("lrx runs");
    assert!(out.status.success(), "`lrx {}` failed:\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

#[test]
fn commands_on_a_study_survive_a_closed_stdout() {
    let dir = study();
    let d = dir.path();
    // Before anything is cached, then after a run (the tables have rows then).
    for args in
        [&["plan", "study.lrx"][..], &["plan", "study.lrx", "--json"], &["show", "study.lrx"], &["why", "study.lrx"]]
    {
        assert_calm(d, args, 0);
    }
    // `run` trains and writes its outputs even when nobody reads its JSON.
    assert_calm(d, &["run", "study.lrx", "--json"], 0);
    assert!(d.join("runs/study/results.csv").is_file(), "outputs not written");
    for args in [
        &["check", "study.lrx"][..],
        &["fmt", "study.lrx"],
        &["fmt", "--check", "study.lrx"],
        &["graph", "study.lrx"],
        &["graph", "study.lrx", "--format", "dot"],
        &["graph", "study.lrx", "--format", "mermaid"],
        &["plan", "study.lrx"],
        &["plan", "study.lrx", "--json"],
        &["show", "study.lrx"],
        &["show", "study.lrx", "--json"],
        &["why", "study.lrx", "lr"],
        &["report", "study.lrx"],
        &["run", "study.lrx"],
        &["run", "study.lrx", "--json"],
        &["cache", "ls"],
        &["cache", "ls", "--json"],
        &["cache", "verify"],
        &["cache", "gc", "--keep", "study.lrx", "--dry-run"],
    ] {
        assert_calm(d, args, 0);
    }
}

#[test]
fn cache_maintenance_finishes_its_work_on_a_closed_stdout() {
    let dir = study();
    let d = dir.path();
    run_ok(d, &["run", "study.lrx"]);
    let keys: Vec<String> = run_ok(d, &["cache", "ls", "--json"])
        .parse::<serde_json::Value>()
        .expect("JSON")
        .as_array()
        .expect("an array")
        .iter()
        .map(|e| e["key"].as_str().expect("a key").to_owned())
        .collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    // `rm` deletes what it was asked to, though nobody reads the keys it prints.
    assert_calm(d, &["cache", "rm", &keys[0][..16]], 0);
    // `gc` deletes every entry, not just the first it printed.
    assert_calm(d, &["cache", "gc", "--all"], 0);
    assert_eq!(run_ok(d, &["cache", "ls", "--json"]).trim(), "[]");
}

#[test]
fn one_off_commands_survive_a_closed_stdout() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let d = dir.path();
    assert_calm(d, &["schedule", "cosine(warmup = 0.05, min_lr = 0.1, cycles = 2)", "--steps", "300"], 0);
    assert_calm(d, &["--help"], 0);
    assert_calm(d, &["cache", "ls"], 0);
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/genesis.txt");
    let set_corpus = format!("corpus={:?}", corpus.display().to_string());
    let tiny = [
        "d_model=16",
        "layers=1",
        "heads=2",
        "d_ff=32",
        "experts=2",
        "top_k=1",
        "seq_len=16",
        "data.tokens=20000",
        "batch_size=4",
        "steps=2",
        "val_batches=1",
    ];
    for json in [true, false] {
        let mut args = vec!["train", "--set", &set_corpus];
        for s in &tiny {
            args.extend(["--set", s]);
        }
        if json {
            args.push("--json");
        }
        assert_calm(d, &args, 0);
    }
}

/// A write error that is not a closed pipe still reaches the user (`/dev/full`: no space).
#[cfg(target_os = "linux")]
#[test]
fn a_failed_write_to_stdout_is_an_error() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let out = lrx(dir.path()).args(["schedule", "constant", "--steps", "10"]).stdout(full).output().expect("lrx runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error: cannot write to stdout"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
