//! Shell habits: completion scripts and the man page made from the command line itself, and a
//! study read from stdin (`-`) by `check`, `fmt` and `plan`, named `<stdin>` in diagnostics.

use std::path::Path;

use super::harness::{Test, lrx, text};

const STUDY: &str = "train {\n  matrix_lr = 0.04\n}\n\nobjective minimize val_loss\n\nphase lr {\n  vary matrix_lr in [0.02, 0.08]\n}\n";

#[test]
fn bash_completions_register_a_completion_for_lrx() {
    let dir = tempfile::tempdir().unwrap();
    let out = lrx(dir.path()).args(["completions", "bash"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let script = dir.path().join("lrx.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    // Sourced by a real bash, the script registers its function for `lrx`.
    let registered = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p lrx", script.display()))
        .output()
        .unwrap();
    assert!(registered.status.success(), "{}", text(&registered.stderr));
    assert!(text(&registered.stdout).contains("_lrx"), "{}", text(&registered.stdout));
    for sub in ["check", "plan", "completions", "man", "gc"] {
        assert!(text(&out.stdout).contains(sub), "bash completions name `{sub}`");
    }
}

#[test]
fn every_shell_gets_its_own_script_and_an_unknown_shell_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in
        [("zsh", "#compdef lrx"), ("fish", "complete -c lrx"), ("powershell", "Register-ArgumentCompleter")]
    {
        let out = lrx(dir.path()).args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(text(&out.stdout).contains(marker), "{shell}: no `{marker}`");
        assert!(text(&out.stdout).contains("schedule"), "{shell} completes the subcommands");
    }
    let out = lrx(dir.path()).args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_man_page_is_roff_that_man_renders() {
    let dir = tempfile::tempdir().unwrap();
    let out = lrx(dir.path()).arg("man").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let page = text(&out.stdout);
    assert!(page.contains(".TH lrx 1"), "{page}");
    assert!(page.contains("Declarative, cached learning\\-rate"), "{page}");
    let file = dir.path().join("lrx.1");
    std::fs::write(&file, page.as_bytes()).unwrap();
    // Where `man` is installed, it renders the page (to plain text off a terminal).
    if Path::new("/usr/bin/man").exists() {
        let shown = std::process::Command::new("man").arg("-l").arg(&file).env("MANPAGER", "cat").output().unwrap();
        assert!(shown.status.success(), "{}", text(&shown.stderr));
        let shown = text(&shown.stdout);
        assert!(shown.contains("SUBCOMMANDS") && shown.contains("completions"), "{shown}");
    }
}

#[test]
fn check_reads_a_study_from_stdin() {
    let ok = Test::new().stdin(STUDY).args(&["check", "-"]).run();
    assert_eq!(ok.code, 0, "{ok}");
    assert!(ok.stderr.contains("ok: `<stdin>` (1 phase, 3 candidates)"), "{ok}");
    let bad = Test::new().stdin("train {\n  matrx_lr = 0.04\n}\n").args(&["check", "-"]).run();
    assert_eq!(bad.code, 1, "{bad}");
    assert!(bad.stderr.contains("--> <stdin>:2:3"), "{bad}");
    assert!(bad.stderr.contains("could not check `<stdin>`"), "{bad}");
}

#[test]
fn fmt_formats_stdin_to_stdout() {
    let messy = "train{matrix_lr=0.04}\nobjective minimize val_loss\nphase lr{vary matrix_lr in [0.02,0.08]}\n";
    let out = Test::new().stdin(messy).args(&["fmt", "-"]).run();
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stdout, STUDY);
    let check = Test::new().stdin(messy).args(&["fmt", "--check", "-"]).run();
    assert_eq!(check.code, 1, "{check}");
    assert_eq!(check.stdout, "");
    assert!(check.stderr.contains("not formatted: `<stdin>`"), "{check}");
    assert_eq!(Test::new().stdin(STUDY).args(&["fmt", "--check", "-"]).run().code, 0);
}

#[test]
fn plan_reads_a_study_from_stdin_with_paths_from_the_current_folder() {
    let study = STUDY.replace("train {", "data {\n  corpus = \"corpus.txt\"\n}\n\ntrain {");
    let out = Test::new().file("corpus.txt", &super::harness::corpus()).stdin(&study).args(&["plan", "-"]).run();
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("study `<stdin>`: 1 phase, 3 candidates"), "{out}");
    let missing = Test::new().stdin(&study).args(&["plan", "-"]).run();
    assert_eq!(missing.code, 1, "{missing}");
    assert!(missing.stderr.contains("<stdin>:2:12"), "{missing}");
}
