//! `lrx plan`.

use super::harness::Test;

#[test]
fn text_shows_ready_and_waiting_phases() {
    let out = Test::new().pipeline("zoom.lrx").args(&["plan", "pipelines/zoom.lrx"]).run();
    insta::assert_snapshot!(out);
}

#[test]
fn json_has_the_shape_of_the_contract() {
    let out = Test::new().pipeline("lr_finder.lrx").args(&["plan", "pipelines/lr_finder.lrx", "--json"]).run();
    insta::assert_snapshot!(out);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["study"], "lr_finder");
    let refine = &v["phases"][1];
    assert_eq!(refine["status"], "waiting");
    assert_eq!(refine["candidates"][1]["status"], "waiting");
    assert!(refine["candidates"][1].get("key").is_none(), "waiting candidates have no key");
}

#[test]
fn invalid_study_fails_with_diagnostics() {
    let out = Test::new().file("x.lrx", "train {\n  matrix_lr = -0.1\n}\n").args(&["plan", "x.lrx", "--json"]).run();
    insta::assert_snapshot!(out);
}
