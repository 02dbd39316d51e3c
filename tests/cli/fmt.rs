//! `lrx fmt`.

use super::harness::Test;

const MESSY: &str = "# a study\ntrain {   # root\n  matrix_lr=0.04    embedding_lr =0.6\n  steps= 100 # short\n\n\n  schedule = cosine( warmup=0.05 )\n}\nphase p after   q { vary matrix_lr in [ 0.02,0.08 ]\n}\nphase q {\n  grid {\n    matrix_lr in [0.1]\n  schedule.warmup in [0.0, 0.1]   # try\n  }\n}\n";

#[test]
fn rewrites_in_canonical_form_keeping_comments() {
    let out = Test::new().file("m.lrx", MESSY).args(&["fmt", "m.lrx"]).run();
    insta::assert_snapshot!(out);
    insta::assert_snapshot!("formatted", out.read("m.lrx"));
}

#[test]
fn check_names_unformatted_files_and_fails() {
    let out = Test::new()
        .file("m.lrx", MESSY)
        .pipeline("zoom.lrx")
        .args(&["fmt", "--check", "m.lrx", "pipelines/zoom.lrx"])
        .run();
    insta::assert_snapshot!(out);
    assert_eq!(out.read("m.lrx"), MESSY, "--check writes nothing");
}

#[test]
fn check_passes_on_formatted_files() {
    let out = Test::new()
        .pipeline("zoom.lrx")
        .pipeline("cosine.lrx")
        .args(&["fmt", "--check", "pipelines/zoom.lrx", "pipelines/cosine.lrx"])
        .run();
    insta::assert_snapshot!(out);
}

#[test]
fn a_file_that_does_not_parse_is_left_alone() {
    let out = Test::new().file("b.lrx", "train {\n  steps 100\n}\n").args(&["fmt", "b.lrx"]).run();
    insta::assert_snapshot!(out);
    assert_eq!(out.read("b.lrx"), "train {\n  steps 100\n}\n");
}
