//! `lrx check`.

use super::harness::Test;

#[test]
fn a_valid_study_checks_clean() {
    let out = Test::new().pipeline("muon_adamw.lrx").args(&["check", "pipelines/muon_adamw.lrx"]).run();
    insta::assert_snapshot!(out);
}

#[test]
fn every_error_is_printed_like_rustc() {
    let out = Test::new()
        .file(
            "bad.lrx",
            "model {\n  experts = 2   top_k = 3\n}\n\ntrain {\n  matrx_lr = 0.04\n  seq_len = 64\n}\n\nphase embedding_lr after matrix_lr {\n  vary embedding_lr in []\n}\n",
        )
        .args(&["check", "bad.lrx"])
        .run();
    insta::assert_snapshot!(out);
}

#[test]
fn warnings_do_not_fail_a_check() {
    let out = Test::new().file("w.lrx", "phase p {\n  vary lr in [0.1, 0.2]\n}\n").args(&["check", "w.lrx"]).run();
    insta::assert_snapshot!(out);
}

#[test]
fn a_missing_file_is_an_environment_error() {
    let out = Test::new().args(&["check", "nope.lrx"]).run();
    insta::assert_snapshot!(out);
}

#[test]
fn several_files_are_all_checked() {
    let out = Test::new()
        .pipeline("quickstart.lrx")
        .file("typo.lrx", "train {\n  stpes = 100\n}\n")
        .args(&["check", "pipelines/quickstart.lrx", "typo.lrx", "missing.lrx"])
        .run();
    insta::assert_snapshot!(out);
}

#[test]
fn a_syntax_error_names_what_is_missing() {
    let out = Test::new().file("s.lrx", "train {\n  steps 100\n}\n").args(&["check", "s.lrx"]).run();
    insta::assert_snapshot!(out);
}
