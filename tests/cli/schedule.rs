//! `lrx schedule` through the real binary: the table on stdout, the SVG file, exit codes.

use assert_cmd::Command;

fn lrx() -> Command {
    Command::from_std(super::harness::lrx(std::path::Path::new(".")))
}

#[test]
fn prints_twenty_rows_from_the_first_to_the_last_step() {
    let out = lrx()
        .args(["schedule", "cosine(warmup = 0.1, min_lr = 0.1)", "--steps", "200"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 21, "{text}");
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["step", "progress", "multiplier"]);
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["0", "0.000", "0.0000"]);
    assert!(lines[20].trim_start().starts_with("199 "), "{text}");
}

#[test]
fn draws_an_svg() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.svg");
    lrx()
        .args(["schedule", "warmup_warmdown(warmup = 0.05, warmdown = 0.3, final = 0.1)", "--steps", "300", "--svg"])
        .arg(&path)
        .assert()
        .success()
        .stdout("");
    let svg = std::fs::read_to_string(&path).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let texts: Vec<&str> =
        doc.descendants().filter(|n| n.has_tag_name("text")).filter_map(|n| n.text()).map(str::trim).collect();
    assert!(texts.contains(&"LR multiplier") && texts.contains(&"step (of 300)"), "{texts:?}");
    assert!(texts.contains(&"warmup_warmdown(warmup=0.05,warmdown=0.3,final=0.1)"), "{texts:?}");
}

#[test]
fn a_bad_schedule_is_a_clear_error_with_exit_1() {
    lrx()
        .args(["schedule", "cosine(min_lt = 0.1)", "--steps", "10"])
        .assert()
        .code(1)
        .stdout("")
        .stderr("error: `cosine` has no argument `min_lt`; did you mean `min_lr`?\n");
    lrx()
        .args(["schedule", "constant", "--steps", "0"])
        .assert()
        .code(1)
        .stderr("error: `--steps` must be at least 1\n");
}
