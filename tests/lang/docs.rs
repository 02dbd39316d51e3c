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
                None => current = Some((trimmed != "```", String::new())),
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
    assert_eq!(counts, [("warmup", 4), ("matrix_lr", 6), ("embedding_lr", 5), ("warmdown_betas", 6), ("interaction", 7)]);
    let f = plan.final_run.as_ref().unwrap();
    assert_eq!(f.repeats, 3);
    assert_eq!(f.needs, ["warmup", "matrix_lr", "embedding_lr", "warmdown_betas"]);
    assert_eq!(plan.root_config(), lrx::spec::config::RunConfig::defaults(), "the example's baseline is the documented defaults");
}

#[test]
fn the_design_fragments_check() {
    let plan = fixture("design_fragments.lrx");
    let budgets = plan.phase("budgets").unwrap();
    assert_eq!(budgets.candidate_count, 6);
    assert_eq!(plan.phase("grid_lin").unwrap().candidate_count, 1 + 9 + 9);
    assert!(matches!(plan.phase("schedules").unwrap().prune, lrx::plan::Prune::Halving { ref rungs, keep } if rungs == &[50, 150, 300] && (keep - 1.0 / 3.0).abs() < 1e-12));
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
