//! `lrx graph`.

use super::harness::Test;

#[test]
fn text() {
    let out = Test::new().pipeline("muon_adamw.lrx").args(&["graph", "pipelines/muon_adamw.lrx"]).run();
    insta::assert_snapshot!(out);
}

#[test]
fn dot() {
    let out =
        Test::new().pipeline("muon_adamw.lrx").args(&["graph", "pipelines/muon_adamw.lrx", "--format", "dot"]).run();
    insta::assert_snapshot!(out);
}

#[test]
fn mermaid() {
    let out =
        Test::new().pipeline("lr_finder.lrx").args(&["graph", "pipelines/lr_finder.lrx", "--format", "mermaid"]).run();
    insta::assert_snapshot!(out);
}

#[test]
fn an_invalid_study_draws_nothing() {
    let out = Test::new()
        .file(
            "c.lrx",
            "phase a after b {\n  vary matrix_lr in [0.1]\n}\nphase b after a {\n  vary matrix_lr in [0.2]\n}\n",
        )
        .args(&["graph", "c.lrx"])
        .run();
    insta::assert_snapshot!(out);
}
