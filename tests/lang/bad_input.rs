//! The bad-input corpus (`tests/bad_input/*.lrx`, written by `tests/bad_input/generate.py`):
//! malformed studies of every kind, each of which must be refused without a panic, with at
//! least one error, and with every diagnostic located inside the file.

use std::path::{Path, PathBuf};

use lrx::plan::{LoadError, Plan};

/// What a person should never read in a diagnostic: pest's fallback, a grammar rule's name, or
/// an internal error.
const UNREADABLE: [&str; 5] = ["something else", "internal", "EOI", "kw_", "WHITESPACE"];

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_input");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/bad_input")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "lrx"))
        .collect();
    files.sort();
    files
}

/// What is wrong with how one file is refused (nothing, when it is refused well).
fn faults(path: &Path) -> Vec<String> {
    let source = std::fs::read_to_string(path).expect("the corpus is UTF-8");
    let shown = path.display().to_string();
    let failure = match std::panic::catch_unwind(|| Plan::load(path)) {
        Err(_) => return vec!["panicked".to_owned()],
        Ok(Ok(_)) => return vec!["accepted".to_owned()],
        Ok(Err(LoadError::Io { source, .. })) => return vec![format!("unreadable: {source}")],
        Ok(Err(LoadError::Invalid(f))) => f,
    };
    let mut out = Vec::new();
    if failure.errors() == 0 {
        out.push("refused without an error".to_owned());
    }
    for d in &failure.diagnostics {
        if d.primary_span().is_none() {
            out.push(format!("`{}` has no location", d.message));
        }
        for label in &d.labels {
            let s = label.span;
            if s.start > s.end
                || s.end > source.len()
                || !source.is_char_boundary(s.start)
                || !source.is_char_boundary(s.end)
            {
                out.push(format!(
                    "`{}` points at {}..{}, outside the file's {} bytes",
                    d.message,
                    s.start,
                    s.end,
                    source.len()
                ));
            }
        }
        if let Some((line, col)) = d.line_col(&source) {
            let rendered = d.render(&source, &shown, false);
            if !rendered.contains(&format!("{shown}:{line}:{col}")) {
                out.push(format!("`{}` renders without `{shown}:{line}:{col}`:\n{rendered}", d.message));
            }
        }
        for word in UNREADABLE {
            if d.message.contains(word) || d.labels.iter().any(|l| l.message.contains(word)) {
                out.push(format!("`{}` says `{word}`", d.message));
            }
        }
    }
    out
}

#[test]
fn every_bad_input_is_refused_with_located_errors() {
    let files = corpus();
    assert!(files.len() >= 200, "only {} files: run `python3 tests/bad_input/generate.py`", files.len());
    let mut report = Vec::new();
    for path in &files {
        for fault in faults(path) {
            report.push(format!("{}: {fault}", path.file_name().unwrap_or_default().to_string_lossy()));
        }
    }
    assert!(report.is_empty(), "{} of {} files are refused badly:\n{}", report.len(), files.len(), report.join("\n"));
}
