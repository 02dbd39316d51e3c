//! Problems a new-user trial found (files written fresh against docs/language.md): each
//! asserts the message, line, column and, where the point was the caret, its width.

use std::path::Path;

use lrx::diag::{Diagnostic, Severity};
use lrx::plan::Plan;

/// Every diagnostic of a study, errors and warnings, in source order.
fn diagnostics(src: &str) -> Vec<Diagnostic> {
    match Plan::compile(src, Path::new("t.lrx")) {
        Ok(plan) => plan.warnings,
        Err(f) => f.diagnostics,
    }
}

/// (severity, message, line, column) of each diagnostic.
fn all(src: &str) -> Vec<(Severity, String, usize, usize)> {
    diagnostics(src)
        .into_iter()
        .map(|d| {
            let (l, c) = d.line_col(src).unwrap_or((0, 0));
            (d.severity, d.message, l, c)
        })
        .collect()
}

fn errors(src: &str) -> Vec<(String, usize, usize)> {
    all(src).into_iter().filter(|d| d.0 == Severity::Error).map(|(_, m, l, c)| (m, l, c)).collect()
}

/// The text the first diagnostic underlines.
fn underlined(src: &str) -> String {
    let d = diagnostics(src).into_iter().next().expect("a diagnostic");
    src[d.primary_span().expect("a span").range()].to_owned()
}

// 1. A phase without candidates.

#[test]
fn baseline_turned_off_in_train_leaves_a_phase_without_sweeps_empty() {
    let src = "train {\n  baseline = false\n}\nphase p {\n  steps = 10\n}\n";
    assert_eq!(errors(src), [("phase `p` has no candidates".to_owned(), 4, 7)]);
    let d = &diagnostics(src)[0];
    assert_eq!(d.help, ["add `vary KEY in [...]`, or set `baseline = true` in this phase"]);
}

#[test]
fn baseline_turned_back_on_in_the_phase_is_only_a_warning() {
    let src = "train {\n  baseline = false\n}\nphase p {\n  baseline = true\n}\n";
    assert_eq!(all(src), [(Severity::Warning, "phase `p` varies nothing".to_owned(), 4, 7)]);
}

#[test]
fn a_final_run_cannot_turn_its_baseline_off() {
    let src = "phase p {\n  vary matrix_lr in [0.1]\n}\nfinal after p {\n  baseline = false\n}\n";
    assert_eq!(errors(src), [("a final run has no baseline to turn off".to_owned(), 5, 3)]);
    assert_eq!(underlined(src), "baseline");
}

#[test]
fn a_final_run_is_not_emptied_by_the_train_default() {
    let src = "train {\n  baseline = false\n}\nphase p {\n  vary matrix_lr in [0.1]\n}\nfinal after p\n";
    assert_eq!(all(src), []);
}

// 2. Every error, not the first class of errors.

#[test]
fn cross_key_errors_are_reported_beside_other_errors() {
    let src = "model { experts = 2  top_k = 4  d_model = 100  heads = 3 }\ntrain { schedule = warmup_warmdown(warmup = 0.6, warmdown = 0.6)  matrx_lr = 0.1 }\n";
    assert_eq!(
        errors(src),
        [
            ("`top_k` (4) must be at most `experts` (2)".to_owned(), 1, 22),
            ("`d_model` (100) must be divisible by `heads` (3)".to_owned(), 1, 48),
            ("warmup + warmdown (1.2) must be at most 1".to_owned(), 2, 9),
            ("unknown key `matrx_lr`".to_owned(), 2, 67),
        ]
    );
}

#[test]
fn a_statement_at_fault_is_left_out_of_the_cross_key_checks() {
    // `heads = 0` is wrong; checking `d_model = 100` against the default 8 heads instead would
    // report an error that is not there.
    assert_eq!(
        errors("model {\n  heads = 0\n  d_model = 100\n}\n"),
        [("`heads = 0`: `heads` must be at least 1".to_owned(), 2, 11)]
    );
}

#[test]
fn candidates_are_still_checked_when_the_root_has_an_unknown_key() {
    let src = "train {\n  matrx_lr = 0.1\n}\nphase p {\n  vary schedule in [warmup_warmdown(warmup = 0.7)]\n}\n";
    assert_eq!(
        errors(src),
        [("unknown key `matrx_lr`".to_owned(), 2, 3), ("warmup + warmdown (1.2) must be at most 1".to_owned(), 5, 21)]
    );
}

// 3. Positional arguments print bare.

#[test]
fn positional_arguments_print_bare_in_messages() {
    let src = "phase p {\n  vary schedule in [cosine(0.1, 5, 0)]\n}\n";
    assert_eq!(errors(src), [("`schedule = cosine(0.1,5,0)`: `cosine.min_lr` must be in [0, 1]".to_owned(), 2, 21)]);
}

// 4. Values computed from `base` of a winner not known at check time.

#[test]
fn a_value_out_of_range_only_under_the_assumed_winner_is_a_warning() {
    let src = "train {\n  schedule = cosine(warmup = 0.02)\n}\nphase a {\n  vary schedule.warmup in [0.001, 0.005]\n}\nphase b after a {\n  vary schedule.warmup in [base * 100, base * -1]\n}\n";
    let found = all(src);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        found[0],
        (Severity::Warning, "`schedule.warmup = 2.0`: `schedule.warmup` must be in [0, 1], under the assumed incoming config; the actual winner may differ".to_owned(), 8, 28)
    );
    // Negative for every positive incoming value: an error whatever `a` picks.
    assert_eq!(
        found[1],
        (Severity::Error, "`schedule.warmup = -0.02`: `schedule.warmup` must be in [0, 1]".to_owned(), 8, 40)
    );
    let note = &diagnostics(src)[0].notes[0];
    assert_eq!(
        note,
        "`lrx check` assumes that `a` keeps its first candidate (`baseline`); with its candidate `schedule.warmup=0.001`, this is valid"
    );
}

#[test]
fn a_study_whose_only_problems_are_assumed_checks() {
    let src = "train {\n  schedule = cosine(warmup = 0.02)\n}\nphase a {\n  vary schedule.warmup in [0.001, 0.005]\n}\nphase b after a {\n  vary schedule.warmup in [base * 100]\n}\n";
    let plan = Plan::compile(src, Path::new("t.lrx")).expect("warnings only");
    assert_eq!(plan.warnings.len(), 1);
}

// 5. `find`.

#[test]
fn every_problem_of_a_find_is_reported() {
    let src = "phase q {\n  find lr from 1.0 to 1e-6 (steps = 1, gamma = 2, steps = 3)\n}\n";
    assert_eq!(
        errors(src),
        [
            ("`find` must go from a lower to a higher value".to_owned(), 2, 23),
            ("`steps` of `find` must be a whole number of at least 2".to_owned(), 2, 37),
            ("`find` has no option `gamma`".to_owned(), 2, 40),
            ("`steps` is given twice".to_owned(), 2, 51),
        ]
    );
    let d = diagnostics(src);
    assert_eq!(d[0].labels[0].message, "1e-6 is not above 1.0", "floats in their shortest form");
    assert!(d[2].help[0].contains("exponential(gamma = to / from)"));
}

#[test]
fn find_bounds_must_be_positive_constants() {
    assert_eq!(
        errors("phase q {\n  find lr from base to 1.0\n}\n"),
        [("`from` of `find` must be a positive number".to_owned(), 2, 16)]
    );
    assert_eq!(
        errors("find lr from 1e-300 to 1e300\n"),
        [("`find` spans too wide a range: `to / from` is not a finite number".to_owned(), 1, 24)]
    );
}

#[test]
fn find_is_formatted_canonically() {
    let messy = "phase   r{find  lr   from 1e-6 to 1.0(steps=50 , pick = min/10,)}\nfind lr from 1e-6 to 1.0 (  )\n";
    let once = lrx::lang::fmt::format(messy).unwrap();
    assert_eq!(
        once,
        "phase r {\n  find lr from 1e-6 to 1.0 (steps = 50, pick = min / 10)\n}\n\nfind lr from 1e-6 to 1.0\n"
    );
    assert_eq!(lrx::lang::fmt::format(&once).unwrap(), once);
}

// 7. Messages.

#[test]
fn an_unclosed_brace_points_at_the_brace() {
    assert_eq!(errors("train {\n  steps = 5\n"), [("unclosed `{`".to_owned(), 1, 7)]);
    let src = "phase p {\n  vary matrix_lr in [0.1]\n\nphase q {\n  vary matrix_lr in [0.2]\n}\n";
    assert_eq!(errors(src), [("unclosed `{`".to_owned(), 1, 9)]);
    assert_eq!(diagnostics(src)[0].labels[1].message, "the next item starts here");
}

#[test]
fn a_bracket_closed_by_the_wrong_kind() {
    assert_eq!(errors("phase p {\n  vary matrix_lr in [0.1, 0.2}\n}\n"), [("unclosed `[`".to_owned(), 2, 21)]);
}

#[test]
fn a_trailing_underscore_in_a_number_is_named() {
    assert_eq!(errors("train {\n  steps = 500_\n}\n"), [("number `500_` ends with an underscore".to_owned(), 2, 14)]);
    assert_eq!(errors("train {\n  steps = 5__00\n}\n"), [("misplaced underscore in number `5__00`".to_owned(), 2, 12)]);
}

#[test]
fn an_unknown_optimizer_lists_the_allowed_values() {
    let src = "train {\n  optimizer = adam\n}\n";
    assert_eq!(
        errors(src),
        [("`optimizer = adam`: unknown value `adam`, expected one of `muon_adamw`, `adamw`, `sgd`; did you mean `adamw`?".to_owned(), 2, 15)]
    );
    assert!(diagnostics(src)[0].help.is_empty(), "no suggestion of a key named like the value");
}

#[test]
fn carets_underline_the_token_at_fault() {
    assert_eq!(underlined("model { experts = 2   top_k = 4   d_model = 64 }   # note\n"), "top_k");
    assert_eq!(
        underlined("train { schedule = warmup_warmdown(warmup = 0.6, warmdown = 0.6)   steps = 100   # c\n}\n"),
        "schedule"
    );
    assert_eq!(
        underlined(
            "phase p { objective minimize val_loss   objective maximize val_accuracy   vary matrix_lr in [1] }\n"
        ),
        "objective"
    );
    assert_eq!(
        underlined("train { steps = 100 }\nphase p { prune = halving(rungs = [50, 500])   vary matrix_lr in [0.1] }\n"),
        "halving(rungs = [50, 500])"
    );
}
