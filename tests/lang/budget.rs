//! `budget { max_runs = N  time = D }`: its syntax, its checks (with where they point), its
//! formatting, and that it decides which runs a study has, never what a run computes.

use std::path::Path;

use lrx::plan::{Plan, StudyBudget};

const STUDY: &str = "train { matrix_lr = 0.04 }\n\nbudget {\n  max_runs = 30\n  time     = 2.5h\n}\n\nphase lr { vary matrix_lr in [0.02, 0.08] }\n";

fn plan(src: &str) -> Plan {
    Plan::compile(src, Path::new("t.lrx")).unwrap_or_else(|f| panic!("{}", f.render(false)))
}

/// Every error as (message, line, column, the primary label), and the rendered text.
fn errors(src: &str) -> (Vec<(String, usize, usize, String)>, String) {
    let f = Plan::compile(src, Path::new("t.lrx")).expect_err("the study has errors");
    let errs = f
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            let (l, c) = d.line_col(src).unwrap_or((0, 0));
            (d.message.clone(), l, c, d.labels.first().map(|l| l.message.clone()).unwrap_or_default())
        })
        .collect();
    (errs, f.render(false))
}

#[test]
fn both_limits_reach_the_plan() {
    let p = plan(STUDY);
    assert_eq!(p.budget, Some(StudyBudget { max_runs: Some(30), time: Some(9000.0) }));
    assert!(p.warnings.is_empty());
    let p = plan("budget { time = 90m }\nphase lr { vary matrix_lr in [0.02] }\n");
    assert_eq!(p.budget, Some(StudyBudget { max_runs: None, time: Some(5400.0) }));
    assert_eq!(plan("phase lr { vary matrix_lr in [0.02] }\n").budget, None);
}

#[test]
fn formats_and_round_trips() {
    let one_line = "budget { max_runs = 30  time = 2.5h }\nphase lr { vary matrix_lr in [0.02] }\n";
    let formatted = lrx::lang::fmt::format(one_line).unwrap();
    assert!(formatted.contains("budget {"), "{formatted}");
    assert!(formatted.contains("max_runs = 30") && formatted.contains("2.5h"), "{formatted}");
    assert_eq!(lrx::lang::fmt::format(&formatted).unwrap(), formatted, "formatting is idempotent");
    assert_eq!(lrx::lang::parse(&formatted).unwrap(), lrx::lang::parse(one_line).unwrap());
    assert_eq!(plan(&formatted).budget, plan(one_line).budget);
}

#[test]
fn an_unknown_key_suggests_the_closest() {
    let (errs, text) = errors("budget {\n  max_run = 30\n}\n");
    assert_eq!(
        errs,
        [("unknown key `max_run` in `budget {}`".to_owned(), 2, 3, "did you mean `max_runs`?".to_owned())]
    );
    assert!(text.contains("help: a budget sets `max_runs = N`"), "{text}");
    let (errs, _) = errors("budget { matrix_lr = 0.1 }\n");
    assert_eq!(errs[0].3, "not a budget key");
}

#[test]
fn limits_must_be_positive_and_of_their_kind() {
    let cases: &[(&str, &str, usize)] = &[
        ("max_runs = 0", "`max_runs` must be a whole number of runs, at least 1", 21),
        ("max_runs = -3", "`max_runs` must be a whole number of runs, at least 1", 21),
        ("max_runs = 2.5", "`max_runs` must be a whole number of runs, at least 1", 21),
        ("max_runs = 2h", "`max_runs` must be a whole number of runs, at least 1", 21),
        ("time = 0s", "`time` must be a positive duration", 17),
        ("time = 2.5", "`time` must be a positive duration", 17),
        ("time = -1h", "`time` must be a positive duration", 17),
        ("time = matrix_lr", "`time` must be a positive duration", 17),
    ];
    for (stmt, message, col) in cases {
        let src = format!("train {{ steps = 10 }}\nbudget {{ {stmt} }}\n");
        let (errs, text) = errors(&src);
        assert_eq!(errs.len(), 1, "{stmt}: {text}");
        assert_eq!((errs[0].0.as_str(), errs[0].1, errs[0].2), (*message, 2, *col), "{stmt}: {text}");
        assert!(text.contains("help: "), "{stmt}: {text}");
    }
}

#[test]
fn two_blocks_a_key_set_twice_and_sweeps_are_refused() {
    let (errs, _) = errors("budget { max_runs = 3 }\nbudget { time = 1h }\n");
    assert_eq!(errs, [("`budget {}` is written twice".to_owned(), 2, 1, String::new())]);
    let (errs, _) = errors("budget {\n  max_runs = 3\n  max_runs = 4\n}\n");
    assert_eq!(errs, [("`max_runs` is set twice in `budget {}`".to_owned(), 3, 3, String::new())]);
    let (errs, _) = errors("budget {\n  vary max_runs in [1, 2]\n}\n");
    assert_eq!(errs[0].0, "`vary` cannot be written in `budget {}`");
    assert_eq!((errs[0].1, errs[0].2), (2, 3));
}

#[test]
fn an_empty_budget_is_a_warning() {
    let p = plan("budget {}\nphase lr { vary matrix_lr in [0.02] }\n");
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(p.warnings[0].message, "`budget {}` sets no limit");
}

#[test]
fn the_budget_changes_no_run_config() {
    let with = plan(STUDY);
    let without = plan(&STUDY.replace("budget {\n  max_runs = 30\n  time     = 2.5h\n}\n", ""));
    assert!(without.budget.is_none());
    let configs = |p: &Plan| -> Vec<lrx::spec::config::RunConfig> {
        let cands = p.resolve_phase("lr", &std::collections::BTreeMap::default()).unwrap();
        cands.into_iter().map(|c| c.unwrap().config).collect()
    };
    // Keys are computed from these configs alone (`cache::key`): equal configs, equal keys.
    assert_eq!(configs(&with), configs(&without));
}

#[test]
fn a_block_left_open_before_the_budget_is_named() {
    // `budget` starts a top-level item like `train`: the parser says which block is unclosed.
    let src = "train {\n  steps = 10\n\nbudget { max_runs = 3 }\n";
    let err = lrx::lang::parse(src).expect_err("the train block is never closed");
    assert_eq!(err.message, "unclosed `{`");
    assert_eq!(err.line_col(src), Some((1, 7)));
}
