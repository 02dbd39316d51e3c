//! Tidy checks on the source tree: every file says what it is for, and the layering of
//! `ARCHITECTURE.md` holds (checked by reading `use` lines and paths, not by trusting them).

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source folder") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn all_sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).expect("under the root").to_string_lossy().replace('\\', "/");
            (rel, std::fs::read_to_string(&p).expect("readable source"))
        })
        .collect()
}

/// The code of a file without its `#[cfg(test)]` module (tests may reach across layers).
fn non_test(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

/// Lines that name another part of the crate or an external crate.
fn mentions(text: &str, needle: &str) -> Vec<String> {
    non_test(text)
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !t.starts_with("//") && t.contains(needle)
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_file_opens_with_a_doc_comment_on_its_role() {
    let missing: Vec<String> = all_sources()
        .into_iter()
        .filter(|(_, text)| !text.lines().find(|l| !l.trim().is_empty()).is_some_and(|l| l.starts_with("//!")))
        .map(|(path, _)| path)
        .collect();
    assert!(missing.is_empty(), "files without a `//!` line first: {missing:?}");
}

/// `(files under this prefix, must not mention these)`.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "src/spec/",
        &[
            "crate::lang",
            "crate::plan",
            "crate::exec",
            "crate::cache",
            "crate::train",
            "crate::report",
            "crate::corpus",
            "burn::",
        ],
    ),
    ("src/lang/", &["burn::", "crate::train", "crate::exec", "crate::cache", "crate::report", "crate::plan"]),
    ("src/plan/", &["burn::", "crate::train", "crate::exec", "crate::cache", "crate::report"]),
    ("src/train/", &["crate::lang", "crate::plan", "crate::exec", "crate::cache", "crate::report"]),
    (
        "src/corpus.rs",
        &["crate::lang", "crate::plan", "crate::exec", "crate::cache", "crate::report", "crate::train", "burn::"],
    ),
    (
        "src/external/",
        &["burn::", "crate::train", "crate::lang", "crate::plan", "crate::exec", "crate::cache", "crate::report"],
    ),
    ("src/cache/", &["burn::", "crate::train", "crate::exec", "crate::lang", "crate::plan", "crate::report"]),
    ("src/exec/", &["burn::", "crate::train", "crate::report", "crate::commands"]),
    // What a study produced: written by `exec`, read by `report` and the commands.
    (
        "src/results.rs",
        &["burn::", "crate::train", "crate::exec", "crate::report", "crate::lang", "crate::plan", "crate::commands"],
    ),
    // The report renders results; it never trains or schedules, nor knows how results were made.
    ("src/report/", &["burn::", "crate::train", "crate::exec", "crate::plan", "crate::commands"]),
    // The library layer under the commands: it knows no command line and prints nothing.
    ("src/ops/", &["crate::commands", "crate::cli", "println!", "eprintln!", "print!(", "eprint!("]),
    // `Span` and the diagnostics are the lowest layer of the language side.
    (
        "src/diag.rs",
        &[
            "crate::lang",
            "crate::plan",
            "crate::exec",
            "crate::cache",
            "crate::train",
            "crate::report",
            "crate::commands",
        ],
    ),
];

#[test]
fn lower_layers_never_import_higher_ones() {
    let mut violations = Vec::new();
    for (path, text) in all_sources() {
        for (prefix, banned) in LAYERS {
            if !path.starts_with(prefix) {
                continue;
            }
            for needle in *banned {
                for line in mentions(&text, needle) {
                    violations.push(format!("{path}: `{needle}` in `{}`", line.trim()));
                }
            }
        }
    }
    assert!(violations.is_empty(), "layering violations:\n{}", violations.join("\n"));
}

#[test]
fn only_the_key_module_hashes_run_identities() {
    let offenders: Vec<String> = all_sources()
        .into_iter()
        .filter(|(path, text)| path != "src/cache/key.rs" && !mentions(text, "blake3").is_empty())
        .map(|(path, _)| path)
        .collect();
    assert!(offenders.is_empty(), "blake3 used outside `cache/key.rs`: {offenders:?}");
}

#[test]
fn only_the_executor_writes_cache_entries() {
    let offenders: Vec<String> = all_sources()
        .into_iter()
        .filter(|(path, text)| {
            !path.starts_with("src/exec/") && !path.starts_with("src/cache/") && !mentions(text, ".put(").is_empty()
        })
        .map(|(path, _)| path)
        .collect();
    assert!(offenders.is_empty(), "cache entries written outside `exec`: {offenders:?}");
}

#[test]
fn clap_lives_only_in_the_cli_module() {
    let offenders: Vec<String> = all_sources()
        .into_iter()
        .filter(|(path, text)| path != "src/cli.rs" && !mentions(text, "clap::").is_empty())
        .map(|(path, _)| path)
        .collect();
    assert!(offenders.is_empty(), "clap used outside `src/cli.rs`: {offenders:?}");
}

#[test]
fn no_stubs_or_debugging_leftovers() {
    let mut found = Vec::new();
    for (path, text) in all_sources() {
        for needle in ["todo!(", "unimplemented!(", "dbg!(", "#[ignore]", "#[should_panic"] {
            if text.contains(needle) {
                found.push(format!("{path}: {needle}"));
            }
        }
    }
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn main_stays_small() {
    let main = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/main.rs")).expect("main.rs");
    assert!(main.lines().count() <= 25, "src/main.rs has {} lines", main.lines().count());
}

/// What `ops` does once, the commands do not do again: they neither compute run keys, data
/// fingerprints nor "did you mean" suggestions, nor build an engine, nor hold memos.
#[test]
fn commands_hold_no_logic_the_library_has() {
    let mut found = Vec::new();
    for (path, text) in all_sources() {
        if !path.starts_with("src/commands/") {
            continue;
        }
        for needle in ["KeyInput", "fingerprint_files", "suggest(", "Engine {", "Mutex<HashMap"] {
            for line in mentions(&text, needle) {
                found.push(format!("{path}: `{needle}` in `{}`", line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "logic of `src/ops` in the commands:\n{}", found.join("\n"));
}

#[test]
fn only_the_key_module_builds_a_key_input() {
    let offenders: Vec<String> = all_sources()
        .into_iter()
        .filter(|(path, text)| path != "src/cache/key.rs" && !mentions(text, "KeyInput {").is_empty())
        .map(|(path, _)| path)
        .collect();
    assert!(offenders.is_empty(), "a `KeyInput` built outside `KeyInput::of_run`: {offenders:?}");
}

/// `ops` sits right under the commands: no other layer calls up into it.
#[test]
fn only_the_commands_use_the_ops_layer() {
    let offenders: Vec<String> = all_sources()
        .into_iter()
        .filter(|(path, _)| !path.starts_with("src/ops/") && !path.starts_with("src/commands/"))
        .filter(|(_, text)| !mentions(text, "crate::ops").is_empty())
        .map(|(path, _)| path)
        .collect();
    assert!(offenders.is_empty(), "`crate::ops` used below the commands: {offenders:?}");
}
