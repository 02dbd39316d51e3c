//! `lrx plan`: what the real command prints for every example study (snapshots), its JSON, and
//! its errors.

use super::harness::Test;

fn plan_text(name: &str) -> super::harness::Outcome {
    let file = format!("pipelines/{name}.lrx");
    Test::new().pipeline(&format!("{name}.lrx")).args(&["plan", &file]).run()
}

#[test]
fn text_shows_ready_and_waiting_phases() {
    insta::assert_snapshot!(plan_text("zoom"));
}

#[test]
fn every_example_study_plans_cleanly() {
    for name in ["quickstart", "lr_sweep", "muon_adamw", "cosine", "lr_finder", "interaction"] {
        let out = plan_text(name);
        assert_eq!(out.code, 0, "{out}");
        insta::assert_snapshot!(format!("plan_{name}"), out);
    }
}

#[test]
fn quickstart_stays_small() {
    // About a minute on two CPU cores at ~25k tokens/s: at most 1.5M training tokens.
    let out = Test::new().pipeline("quickstart.lrx").args(&["plan", "pipelines/quickstart.lrx", "--json"]).run();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let tokens = v["estimate"]["tokens_to_train"].as_u64().unwrap();
    assert!(tokens <= 1_500_000, "{tokens}");
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
