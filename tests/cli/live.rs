//! `lrx run --report`: the report exists and reloads itself while the study runs, is rewritten
//! as runs finish, and the final one does not reload.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::harness::{lrx, text};
use super::show::{SCRIPT, script_study};

#[test]
fn the_report_follows_the_study_and_stops_reloading_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("train.sh"), SCRIPT).unwrap();
    // Four runs (the baseline and three), each pausing 0.6 s.
    std::fs::write(d.join("study.lrx"), script_study("0.003, 0.01, 0.03", "0.6")).unwrap();
    let mut child = lrx(d)
        .args(["run", "study.lrx", "--report"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lrx");
    let page = d.join("runs/study/report.html");
    let start = Instant::now();
    let mut live_pages = BTreeSet::new();
    while child.try_wait().expect("wait").is_none() {
        assert!(start.elapsed() < Duration::from_secs(120), "lrx run still running");
        if let Ok(html) = std::fs::read_to_string(&page)
            && html.contains("<meta http-equiv=\"refresh\"")
        {
            // A page read whole: written to a temporary and renamed into place.
            assert!(html.trim_end().ends_with("</html>"), "a half-written page:\n{html}");
            let progress = html.split("Running:</strong>").nth(1).and_then(|t| t.split(';').next()).map(str::to_owned);
            live_pages.insert(progress.unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(40));
    }
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(live_pages.len() >= 2, "the live page was rewritten as runs finished: {live_pages:?}");
    assert!(live_pages.iter().any(|p| p.contains(" 0 of 4 runs") || p.contains(" 1 of 4 runs")), "{live_pages:?}");

    let last = std::fs::read_to_string(&page).unwrap();
    assert!(!last.contains("http-equiv=\"refresh\""), "the final report does not reload");
    assert!(!last.contains("Running:"), "{last}");
    let md = std::fs::read_to_string(d.join("runs/study/report.md")).unwrap();
    assert!(!md.contains("Running:") && md.contains("matrix_lr"), "{md}");
    assert!(err.contains("report: runs/study/report.html"), "the summary names the page:\n{err}");
}
