//! The documentation says what the code does: every key with its default, every example
//! parses, and the design notes' examples mean what they say.

use std::path::Path;

use lrx::plan::Plan;
use lrx::spec::schema;

fn docs() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/language.md")).unwrap()
}

#[test]
fn every_key_is_documented_with_its_default() {
    let docs = docs();
    for key in schema::keys() {
        let row = format!("| `{}` | `{}` |", key.qualified(), key.default_value());
        assert!(docs.lines().any(|l| l.starts_with(&row)), "docs/language.md has no row starting `{row}`");
    }
}

#[test]
fn every_example_in_the_docs_parses_and_the_first_checks_clean() {
    let docs = docs();
    let mut blocks = Vec::new();
    // (whether the block is tagged, like ```text, and so not `.lrx`; its text)
    let mut current: Option<(bool, String)> = None;
    for line in docs.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            match current.take() {
                Some((false, b)) => blocks.push(b),
                Some((true, _)) => {}
                // ```lrx marks a whole file (```lrx error one that fails), still `.lrx`.
                None => current = Some((trimmed != "```" && !trimmed.starts_with("```lrx"), String::new())),
            }
        } else if let Some((_, b)) = &mut current {
            b.push_str(trimmed);
            b.push('\n');
        }
    }
    assert!(blocks.len() > 10, "{}", blocks.len());
    for b in blocks.iter().filter(|b| !b.starts_with("error:")) {
        // A whole file, or statements of a phase.
        let in_phase = format!("phase p {{\n{b}}}\n");
        if let (Err(d), Err(_)) = (lrx::lang::parse(b), lrx::lang::parse(&in_phase)) {
            panic!("a docs example does not parse: {}\n{b}", d.render(b, "docs", false));
        }
    }
    let first = Plan::compile(&blocks[0], Path::new("first.lrx")).unwrap_or_else(|f| panic!("{}", f.render(false)));
    assert!(first.warnings.is_empty());
}

/// Fenced blocks of the docs as (info string, text with the fence's indentation removed,
/// line of the opening fence).
fn fenced(docs: &str) -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String, usize, usize)> = None;
    for (i, line) in docs.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some(info) = trimmed.strip_prefix("```") {
            match current.take() {
                Some((info, text, at, _)) => out.push((info, text, at)),
                None => current = Some((info.trim().to_owned(), String::new(), i + 1, indent)),
            }
        } else if let Some((_, text, _, indent)) = &mut current {
            text.push_str(line.get(*indent..).unwrap_or(line.trim_start()));
            text.push('\n');
        }
    }
    out
}

#[test]
fn whole_files_in_the_docs_are_canonical_and_check_as_the_docs_say() {
    let docs = docs();
    let blocks = fenced(&docs);
    let mut whole = 0;
    for (i, (info, text, line)) in blocks.iter().enumerate() {
        if info != "lrx" && info != "lrx error" {
            continue;
        }
        whole += 1;
        let formatted = lrx::lang::fmt::format(text)
            .unwrap_or_else(|d| panic!("docs line {line}: {}", d.render(text, "docs", false)));
        assert_eq!(&formatted, text, "the example at docs line {line} is not in `lrx fmt`'s canonical form");
        let result = Plan::compile(text, Path::new("study.lrx"));
        if info == "lrx" {
            let plan = result.unwrap_or_else(|f| panic!("docs line {line}:\n{}", f.render(false)));
            assert!(
                plan.warnings.is_empty(),
                "docs line {line}: {}",
                lrx::diag::render_all(&plan.warnings, text, "study.lrx", false)
            );
        } else {
            let Err(failure) = result else {
                panic!("the example at docs line {line} is marked as an error but checks")
            };
            // The block after it shows what `lrx check` prints.
            let (_, expected, _) = blocks
                .get(i + 1)
                .unwrap_or_else(|| panic!("the error example at docs line {line} has no output after it"));
            assert_eq!(failure.render(false).trim_end(), expected.trim_end(), "docs line {line}");
        }
    }
    assert!(whole >= 5, "{whole} whole-file examples");
}

fn fixture(name: &str) -> Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    match Plan::load(&path) {
        Ok(p) => p,
        Err(lrx::plan::LoadError::Invalid(f)) => panic!("{}", f.render(false)),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn the_design_example_means_what_it_says() {
    let plan = fixture("design_example.lrx");
    assert!(plan.warnings.is_empty());
    let counts: Vec<(&str, usize)> = plan.phases.iter().map(|p| (p.name.as_str(), p.candidate_count)).collect();
    // `warmdown_betas`: 3 + 2 one-factor variants and the baseline, not a 3x2 grid.
    assert_eq!(
        counts,
        [("warmup", 4), ("matrix_lr", 6), ("embedding_lr", 5), ("warmdown_betas", 6), ("interaction", 7)]
    );
    let f = plan.final_run.as_ref().unwrap();
    assert_eq!(f.repeats, 3);
    assert_eq!(f.needs, ["warmup", "matrix_lr", "embedding_lr", "warmdown_betas"]);
    assert_eq!(
        plan.root_config(),
        lrx::spec::config::RunConfig::defaults(),
        "the example's baseline is the documented defaults"
    );
}

#[test]
fn the_design_fragments_check() {
    let plan = fixture("design_fragments.lrx");
    let budgets = plan.phase("budgets").unwrap();
    assert_eq!(budgets.candidate_count, 6);
    assert_eq!(plan.phase("grid_lin").unwrap().candidate_count, 1 + 9 + 9);
    assert!(
        matches!(plan.phase("schedules").unwrap().prune, lrx::plan::Prune::Halving { ref rungs, keep, .. } if rungs == &[50, 150, 300] && (keep - 1.0 / 3.0).abs() < 1e-12)
    );
}

#[test]
fn a_top_level_find_is_a_phase_named_after_its_key() {
    let src = "train { lr = 0.01   matrix_lr = lr }\nfind lr from 1e-6 to 1.0 (steps = 50)\nphase after_it after find_lr {\n  vary lr in [base * 2]\n}\n";
    let plan = Plan::compile(src, Path::new("f.lrx")).unwrap_or_else(|f| panic!("{}", f.render(false)));
    assert_eq!(plan.phases[0].name, "find_lr");
    assert_eq!(plan.phases[1].needs, ["find_lr"]);
}

#[test]
fn every_source_file_says_what_it_is_for() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut todo = vec![src];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(text.starts_with("//!"), "{} does not open with a `//!` line", path.display());
            }
        }
    }
}
