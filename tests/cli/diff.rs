//! `lrx diff`: two studies, or a study and its version at a git revision, compared from the
//! cache: winners, objectives, config and candidate changes, what is not cached; never trains.

use std::path::Path;
use std::process::Command;

use super::harness::{lrx, text};
use super::show::{SCRIPT, script_study};

fn write(dir: &Path, name: &str, contents: &str) {
    std::fs::write(dir.join(name), contents).expect("a file");
}

fn lrx_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = lrx(dir).args(args).output().expect("lrx runs");
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn cache_entries(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("cache/runs"))
        .map_or(0, |shards| shards.flatten().flat_map(|s| std::fs::read_dir(s.path()).into_iter().flatten()).count())
}

/// B is A with a wider sweep and another root learning rate.
fn two_studies(dir: &Path) {
    write(dir, "train.sh", SCRIPT);
    write(dir, "a.lrx", &script_study("0.003, 0.02", "0"));
    let b = script_study("0.003, 0.0099, 0.02", "0").replace("train {", "train {\n  matrix_lr = 0.05");
    write(dir, "b.lrx", &b);
}

#[test]
fn two_studies_side_by_side_and_what_is_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    two_studies(d);
    assert_eq!(lrx_in(d, &["run", "a.lrx", "-q"]).0, 0);
    let before = cache_entries(d);

    let (code, out, err) = lrx_in(d, &["diff", "a.lrx", "b.lrx"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(cache_entries(d), before, "diff trained nothing");
    assert!(
        out.contains("not cached")
            && out.contains("B lr matrix_lr=0.0099 (to_run)")
            && out.contains("B lr baseline (to_run)"),
        "{out}"
    );
    assert!(out.contains("train.matrix_lr: 0.04 → 0.05") || out.contains("matrix_lr"), "{out}");
    assert!(err.contains("have no cached result"), "{err}");

    assert_eq!(lrx_in(d, &["run", "b.lrx", "-q"]).0, 0);
    let (code, out, _) = lrx_in(d, &["diff", "a.lrx", "b.lrx"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("not cached"), "{out}");
    let lr = out.lines().find(|l| l.trim_start().starts_with("lr ")).unwrap_or_else(|| panic!("no lr row:\n{out}"));
    assert!(lr.contains("matrix_lr=0.02") && lr.contains("matrix_lr=0.0099") && lr.contains("better"), "{lr}");
    assert!(out.contains("lr: + matrix_lr=0.0099"), "{out}");

    let (code, json, _) = lrx_in(d, &["diff", "a.lrx", "b.lrx", "--json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let lr = &json["phases"][0];
    assert_eq!(lr["name"], "lr");
    assert_eq!(lr["a"]["winner"], "matrix_lr=0.02");
    assert_eq!(lr["b"]["winner"], "matrix_lr=0.0099");
    assert_eq!(lr["improved"], true);
    let delta = lr["delta"].as_f64().unwrap();
    let (a, b) = (lr["a"]["objective"].as_f64().unwrap(), lr["b"]["objective"].as_f64().unwrap());
    assert!((delta - (b - a)).abs() < 1e-12 && delta < 0.0, "{lr}");
    assert!(
        json["config"].as_array().unwrap().iter().any(|c| c["key"] == "train.matrix_lr" && c["b"] == "0.05"),
        "{json}"
    );
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=lrx", "-c", "user.email=lrx@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
}

#[test]
fn a_study_against_its_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    two_studies(d);
    std::fs::create_dir(d.join("sub")).unwrap();
    write(&d.join("sub"), "train.sh", SCRIPT);
    write(&d.join("sub"), "study.lrx", &std::fs::read_to_string(d.join("a.lrx")).unwrap());
    git(d, &["init", "-q"]);
    git(d, &["add", "sub"]);
    git(d, &["commit", "-qm", "v1"]);
    write(&d.join("sub"), "study.lrx", &std::fs::read_to_string(d.join("b.lrx")).unwrap());
    assert_eq!(lrx_in(d, &["run", "sub/study.lrx", "-q"]).0, 0);

    let (code, out, err) = lrx_in(d, &["diff", "sub/study.lrx", "--rev", "HEAD"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("A: sub/study.lrx@HEAD") && out.contains("B: sub/study.lrx"), "{out}");
    assert!(out.contains("A lr baseline (to_run)"), "the old version's baseline was never trained:\n{out}");
    assert!(out.contains("lr: + matrix_lr=0.0099"), "{out}");

    // A revision is never an option to git, and an unknown one is bad input.
    let (code, _, err) = lrx_in(d, &["diff", "sub/study.lrx", "--rev=--output=x"]);
    assert_eq!(code, 1, "{err}");
    assert!(!d.join("x").exists() && !d.join("sub/x").exists());
    let (code, _, err) = lrx_in(d, &["diff", "sub/study.lrx", "--rev", "no-such-rev"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("git cannot show"), "{err}");
}

/// The report's "Compared with" section is the comparison `lrx diff` prints, in the report.
#[test]
fn the_report_compares_with_another_study_and_with_an_older_version() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    two_studies(d);
    assert_eq!(lrx_in(d, &["run", "a.lrx", "-q"]).0, 0);
    assert_eq!(lrx_in(d, &["run", "b.lrx", "-q"]).0, 0);
    let (_, terminal, _) = lrx_in(d, &["diff", "a.lrx", "b.lrx"]);
    let lr_row = terminal.lines().find(|l| l.trim_start().starts_with("lr ")).unwrap().to_owned();

    let (code, out, err) = lrx_in(d, &["report", "b.lrx", "--compare", "a.lrx"]);
    assert_eq!(code, 0, "{out}{err}");
    let md = std::fs::read_to_string(d.join("runs/b/report.md")).unwrap();
    let section = md.split("## Compared with `a.lrx`").nth(1).unwrap_or_else(|| panic!("no section:\n{md}"));
    let section = section.split("\n## ").next().unwrap();
    assert!(section.contains("**B (this study):** `b.lrx`"), "{section}");
    assert!(section.contains("Root config `train.matrix_lr`: `0.04` → `0.05`"), "{section}");
    let row = section.lines().find(|l| l.starts_with("| `lr` |")).unwrap_or_else(|| panic!("{section}"));
    // The same cells as the terminal's row: winners, objectives, the change.
    for cell in lr_row.split("  ").map(str::trim).filter(|c| !c.is_empty() && *c != "lr") {
        assert!(row.contains(cell), "`{cell}` of the terminal's row not in the report's:\n{row}\n{lr_row}");
    }
    assert!(section.contains("`lr`: added `matrix_lr=0.0099`"), "{section}");
    let html = std::fs::read_to_string(d.join("runs/b/report.html")).unwrap();
    assert!(html.contains("Compared with <code>a.lrx</code>"), "the section is in the page");
    // Without `--compare` the report has no such section.
    assert_eq!(lrx_in(d, &["report", "b.lrx"]).0, 0);
    assert!(!std::fs::read_to_string(d.join("runs/b/report.md")).unwrap().contains("Compared with"));

    // Against the study's committed version.
    git(d, &["init", "-q"]);
    git(d, &["add", "a.lrx", "train.sh"]);
    git(d, &["commit", "-qm", "v1"]);
    std::fs::copy(d.join("b.lrx"), d.join("a.lrx")).unwrap();
    let (code, out, err) = lrx_in(d, &["report", "a.lrx", "--compare-rev", "HEAD", "--out", "v2"]);
    assert_eq!(code, 0, "{out}{err}");
    let md = std::fs::read_to_string(d.join("v2/report.md")).unwrap();
    assert!(md.contains("## Compared with `a.lrx@HEAD`") && md.contains("`lr`: added `matrix_lr=0.0099`"), "{md}");
    let (code, _, err) = lrx_in(d, &["report", "a.lrx", "--compare-rev", "no-such-rev"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("git cannot show"), "{err}");
}
