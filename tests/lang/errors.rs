//! Bad inputs: each asserts the message, line and column of the diagnostics it produces.

use std::fmt::Write as _;
use std::path::Path;

use lrx::plan::Plan;

/// Every error of a study as (message, line, column).
fn errors(src: &str) -> Vec<(String, usize, usize)> {
    match Plan::compile(src, Path::new("t.lrx")) {
        Ok(_) => Vec::new(),
        Err(f) => f
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| {
                let (l, c) = d.line_col(src).unwrap_or((0, 0));
                (d.message.clone(), l, c)
            })
            .collect(),
    }
}

#[test]
fn unknown_key_suggests() {
    assert_eq!(errors("train {\n  matrx_lr = 0.04\n}\n"), [("unknown key `matrx_lr`".to_owned(), 2, 3)]);
}

#[test]
fn unknown_key_without_suggestion() {
    assert_eq!(errors("train {\n  zzz = 1\n}\n"), [("unknown key `zzz`".to_owned(), 2, 3)]);
}

#[test]
fn key_in_wrong_block() {
    assert_eq!(errors("train {\n  seq_len = 128\n}\n"), [("`seq_len` belongs in `model {}`".to_owned(), 2, 3)]);
}

#[test]
fn option_in_model_block() {
    assert_eq!(
        errors("model {\n  repeats = 3\n}\n"),
        [("`repeats` belongs in `train {}` or a phase".to_owned(), 2, 3)]
    );
}

#[test]
fn negative_learning_rate() {
    assert_eq!(
        errors("train {\n  matrix_lr = -0.1\n}\n"),
        [("`matrix_lr = -0.1`: a learning rate must be positive".to_owned(), 2, 15)]
    );
}

#[test]
fn betas_out_of_range() {
    assert_eq!(
        errors("train {\n  adam_betas = (0.9, 1.0)\n}\n"),
        [("`adam_betas = (0.9,1.0)`: each of `adam_betas` must be in [0, 1)".to_owned(), 2, 16)]
    );
}

#[test]
fn top_k_above_experts() {
    assert_eq!(
        errors("model {\n  experts = 2\n  top_k = 3\n}\n"),
        [("`top_k` (3) must be at most `experts` (2)".to_owned(), 3, 3)]
    );
}

#[test]
fn d_model_not_divisible_by_heads() {
    assert_eq!(
        errors("model {\n  d_model = 100\n  heads = 3\n}\n"),
        [("`d_model` (100) must be divisible by `heads` (3)".to_owned(), 3, 3)]
    );
}

#[test]
fn warmup_plus_warmdown_above_one() {
    assert_eq!(
        errors("train {\n  schedule = warmup_warmdown(warmup = 0.6, warmdown = 0.5)\n}\n"),
        [("warmup + warmdown (1.1) must be at most 1".to_owned(), 2, 3)]
    );
}

#[test]
fn integer_key_given_a_fraction() {
    assert_eq!(
        errors("train {\n  steps = 10.5\n}\n"),
        [("`steps = 10.5`: `steps` must be a whole number, found `10.5`".to_owned(), 2, 11)]
    );
}

#[test]
fn string_for_an_enumeration() {
    assert_eq!(errors("train {\n  optimizer = \"adam\"\n}\n"), [("`optimizer = \"adam\"`: unknown value `adam`, expected one of `muon_adamw`, `adamw`, `sgd`; did you mean `adamw`?".to_owned(), 2, 15)]);
}

#[test]
fn unknown_enumeration_word() {
    assert_eq!(errors("train {\n  optimizer = adamm\n}\n"), [("`optimizer = adamm`: unknown value `adamm`, expected one of `muon_adamw`, `adamw`, `sgd`; did you mean `adamw`?".to_owned(), 2, 15)]);
}

#[test]
fn unknown_constructor_argument() {
    assert_eq!(
        errors("train {\n  schedule = cosine(min_lt = 0.1)\n}\n"),
        [(
            "`schedule = cosine(min_lt=0.1)`: `cosine` has no argument `min_lt`; did you mean `min_lr`?".to_owned(),
            2,
            14
        )]
    );
}

#[test]
fn after_undefined_phase() {
    assert_eq!(
        errors("phase a after b {\n  vary matrix_lr in [0.1]\n}\n"),
        [("phase `a` comes after `b`, which is not defined".to_owned(), 1, 15)]
    );
}

#[test]
fn after_misspelled_phase() {
    assert_eq!(
        errors(
            "phase warmup {\n  vary matrix_lr in [0.1]\n}\nphase b after warmpu {\n  vary embedding_lr in [0.1]\n}\n"
        ),
        [("phase `b` comes after `warmpu`, which is not defined".to_owned(), 4, 15)]
    );
}

#[test]
fn phases_cycle() {
    assert_eq!(
        errors("phase a after b {\n  vary matrix_lr in [0.1]\n}\nphase b after a {\n  vary embedding_lr in [0.1]\n}\n"),
        [("phases form a cycle: a -> b -> a".to_owned(), 1, 7)]
    );
}

#[test]
fn phase_after_itself() {
    assert_eq!(
        errors("phase a after a {\n  vary matrix_lr in [0.1]\n}\n"),
        [("phases form a cycle: a -> a".to_owned(), 1, 7)]
    );
}

#[test]
fn phase_defined_twice() {
    assert_eq!(
        errors("phase a {\n  vary matrix_lr in [0.1]\n}\nphase a {\n  vary embedding_lr in [0.1]\n}\n"),
        [("phase `a` is defined twice".to_owned(), 4, 7)]
    );
}

#[test]
fn key_set_twice() {
    assert_eq!(
        errors("train {\n  steps = 1\n  steps = 2\n}\n"),
        [("`steps` is set twice in this block".to_owned(), 3, 3)]
    );
}

#[test]
fn empty_sweep() {
    assert_eq!(
        errors("phase p {\n  vary matrix_lr in []\n}\n"),
        [("`vary matrix_lr in []`: a sweep needs at least one value".to_owned(), 2, 21)]
    );
}

#[test]
fn zip_of_unequal_lists() {
    assert_eq!(
        errors("phase p {\n  zip {\n    matrix_lr in [0.1, 0.2]\n    embedding_lr in [0.1]\n  }\n}\n"),
        [("`zip` needs lists of equal length: `matrix_lr` has 2 values, `embedding_lr` has 1".to_owned(), 2, 3)]
    );
}

#[test]
fn after_two_phases_varying_one_key() {
    assert_eq!(
        errors(
            "phase a {\n  vary matrix_lr in [0.1]\n}\nphase b {\n  vary matrix_lr in [0.2]\n}\nphase c after a, b {\n  vary embedding_lr in [0.3]\n}\n"
        ),
        [("phase `c` comes after `a` and `b`, which both vary `matrix_lr`".to_owned(), 7, 7)]
    );
}

#[test]
fn combine_two_phases_varying_one_key() {
    assert_eq!(
        errors(
            "phase a {\n  vary matrix_lr in [0.1]\n}\nphase b {\n  vary matrix_lr in [0.2]\n}\nfinal combine(a, b)\n"
        ),
        [("the final run combines `a` and `b`, which both vary `matrix_lr`".to_owned(), 7, 1)]
    );
}

#[test]
fn base_outside_a_phase() {
    assert_eq!(
        errors("train {\n  matrix_lr = base * 2\n}\n"),
        [("`base` is only meaningful inside a phase".to_owned(), 2, 15)]
    );
}

#[test]
fn derived_keys_cycle() {
    assert_eq!(
        errors("train {\n  matrix_lr = embedding_lr\n  embedding_lr = matrix_lr\n}\n"),
        [("derived keys form a cycle: `embedding_lr` -> `matrix_lr` -> `embedding_lr`".to_owned(), 3, 3)]
    );
}

#[test]
fn find_a_non_lr_key() {
    assert_eq!(
        errors("phase f {\n  find steps from 1 to 10\n}\n"),
        [("`find` searches a learning rate, and `steps` is not one".to_owned(), 2, 8)]
    );
}

#[test]
fn find_going_down() {
    assert_eq!(
        errors("phase f {\n  find matrix_lr from 1.0 to 1e-6\n}\n"),
        [("`find` must go from a lower to a higher value".to_owned(), 2, 30)]
    );
}

#[test]
fn find_and_vary_in_one_phase() {
    assert_eq!(
        errors("phase f {\n  find matrix_lr from 1e-6 to 1.0\n  vary embedding_lr in [0.1]\n}\n"),
        [("phase `f` both finds and varies keys".to_owned(), 3, 3)]
    );
}

#[test]
fn find_bad_pick() {
    assert_eq!(
        errors("phase f {\n  find matrix_lr from 1e-6 to 1.0 (pick = max)\n}\n"),
        [("`pick` must be `min`, `min / N` or `steepest`".to_owned(), 2, 43)]
    );
}

#[test]
fn find_unknown_option() {
    assert_eq!(
        errors("phase f {\n  find matrix_lr from 1e-6 to 1.0 (stepz = 10)\n}\n"),
        [("`find` has no option `stepz`".to_owned(), 2, 36)]
    );
}

#[test]
fn missing_equals() {
    assert_eq!(errors("train {\n  steps 100\n}\n"), [("expected `=` after key `steps`".to_owned(), 2, 9)]);
}

#[test]
fn missing_in() {
    assert_eq!(
        errors("phase p {\n  vary matrix_lr [0.1]\n}\n"),
        [("expected `in` after `matrix_lr`".to_owned(), 2, 18)]
    );
}

#[test]
fn unterminated_string() {
    assert_eq!(errors("data {\n  corpus = \"abc\n}\n"), [("unterminated string".to_owned(), 2, 12)]);
}

#[test]
fn unclosed_list() {
    // The list's `[` is what is wrong, not the `}` the parser stopped at.
    assert_eq!(errors("phase p {\n  vary matrix_lr in [0.1, 0.2\n}\n"), [("unclosed `[`".to_owned(), 2, 21)]);
}

#[test]
fn unknown_item() {
    assert_eq!(
        errors("trian {\n}\n"),
        [(
            "expected `budget`, `data`, `final`, `find`, `model`, `objective`, `params`, `phase` or `train`, found `trian`"
                .to_owned(),
            1,
            1
        )]
    );
}

#[test]
fn two_items_on_one_line() {
    assert_eq!(
        errors("train {} phase p { vary matrix_lr in [0.1] }\n"),
        [("expected a line break before `phase`".to_owned(), 1, 10)]
    );
}

#[test]
fn vary_in_train_block() {
    assert_eq!(
        errors("train {\n  vary matrix_lr in [0.1]\n}\n"),
        [("`vary` cannot be written in `train {}`".to_owned(), 2, 3)]
    );
}

#[test]
fn vary_an_option() {
    assert_eq!(
        errors("phase p {\n  vary repeats in [1, 2]\n}\n"),
        [("`repeats` is a block option and cannot be varied".to_owned(), 2, 8)]
    );
}

#[test]
fn final_after_two_phases() {
    assert_eq!(
        errors(
            "phase a {\n  vary matrix_lr in [0.1]\n}\nphase b {\n  vary embedding_lr in [0.1]\n}\nfinal after a, b\n"
        ),
        [("`final after` takes one phase".to_owned(), 7, 16)]
    );
}

#[test]
fn combine_undefined_phase() {
    assert_eq!(errors("final combine(x)\n"), [("the final run combines `x`, which is not defined".to_owned(), 1, 15)]);
}

#[test]
fn unknown_metric() {
    assert_eq!(errors("objective minimize val_los\n"), [("unknown metric `val_los`".to_owned(), 1, 20)]);
}

#[test]
fn misspelled_goal() {
    assert_eq!(
        errors("objective minimise val_loss\n"),
        [("expected `minimize` or `maximize`, found `minimise`".to_owned(), 1, 11)]
    );
}

#[test]
fn division_by_zero() {
    assert_eq!(errors("train {\n  matrix_lr = 1 / 0\n}\n"), [("division by zero".to_owned(), 2, 19)]);
}

#[test]
fn sweep_value_out_of_range() {
    assert_eq!(
        errors("phase p {\n  vary matrix_lr in [0.1, -0.2]\n}\n"),
        [("`matrix_lr = -0.2`: a learning rate must be positive".to_owned(), 2, 27)]
    );
}

#[test]
fn base_times_minus_one() {
    assert_eq!(
        errors("train {\n  lr = 0.04   matrix_lr = lr\n}\nphase p {\n  vary lr in [base * -1]\n}\n"),
        [("`lr = -0.04`: a learning rate must be positive".to_owned(), 5, 15)]
    );
}

#[test]
fn two_budgets_in_one_block() {
    assert_eq!(
        errors("train {\n  steps = 10\n  tokens = 1000\n}\n"),
        [("`tokens` and `steps` are both set: a run has one budget".to_owned(), 3, 3)]
    );
}

#[test]
fn unknown_key_in_arithmetic() {
    assert_eq!(errors("train {\n  matrix_lr = lrr * 2\n}\n"), [("unknown key `lrr`".to_owned(), 2, 15)]);
}

#[test]
fn unknown_constructor_argument_in_path() {
    assert_eq!(
        errors("phase p {\n  vary schedule.warmpu in [0.1]\n}\n"),
        [("unknown key `schedule.warmpu`".to_owned(), 2, 8)]
    );
}

#[test]
fn argument_the_schedule_lacks() {
    assert_eq!(
        errors("phase p {\n  vary schedule.min_lr in [0.1]\n}\n"),
        [("`schedule.min_lr`: `warmup_warmdown` has no argument `min_lr`".to_owned(), 2, 28)]
    );
}

#[test]
fn sweep_over_a_scalar() {
    assert_eq!(
        errors("phase p {\n  vary matrix_lr in 0.1\n}\n"),
        [("`vary matrix_lr in 0.1`: expected a list of values".to_owned(), 2, 21)]
    );
}

#[test]
fn block_written_twice() {
    assert_eq!(errors("train {}\ntrain {}\n"), [("`train {}` is written twice".to_owned(), 2, 1)]);
}

#[test]
fn lin_without_n_or_step() {
    assert_eq!(
        errors("phase p {\n  vary matrix_lr in lin(0.1, 0.2)\n}\n"),
        [("`lin` needs `n = N` or `step = S`: `lin(from, to, step = 0.01)`".to_owned(), 2, 21)]
    );
}

#[test]
fn halving_rung_past_budget() {
    assert_eq!(
        errors(
            "train {\n  steps = 100\n}\nphase p {\n  prune = halving(rungs = [50, 200])\n  vary matrix_lr in [0.1]\n}\n"
        ),
        [("the last rung of `halving` (200) is past the budget of 100 steps".to_owned(), 5, 11)]
    );
}

#[test]
fn phase_without_candidates() {
    assert_eq!(errors("phase p {\n  baseline = false\n}\n"), [("phase `p` has no candidates".to_owned(), 1, 7)]);
}

#[test]
fn grid_key_twice() {
    assert_eq!(
        errors("phase p {\n  grid {\n    matrix_lr in [0.1]\n    matrix_lr in [0.2]\n  }\n}\n"),
        [("`matrix_lr` appears twice in this `grid`".to_owned(), 4, 5)]
    );
}

#[test]
fn integer_too_large() {
    assert_eq!(
        errors("train {\n  steps = 99999999999999999999\n}\n"),
        [("the integer `99999999999999999999` is too large".to_owned(), 2, 11)]
    );
}

#[test]
fn zero_repeats() {
    assert_eq!(
        errors("phase p {\n  repeats = 0\n  vary matrix_lr in [0.1]\n}\n"),
        [("`repeats = 0`: `repeats` must be at least 1".to_owned(), 2, 13)]
    );
}

#[test]
fn empty_seeds() {
    assert_eq!(
        errors("phase p {\n  seeds = []\n  vary matrix_lr in [0.1]\n}\n"),
        [("`seeds = []`: `seeds` needs at least one value".to_owned(), 2, 11)]
    );
}

#[test]
fn val_out_of_range() {
    assert_eq!(errors("data {\n  val = 1.5\n}\n"), [("`val = 1.5`: `val` must be in (0, 1)".to_owned(), 2, 9)]);
}

#[test]
fn too_few_tokens_for_a_window() {
    assert_eq!(
        errors("data {\n  tokens = 1000\n}\n"),
        [(
            "the validation split (100 tokens) is shorter than one window of `seq_len + 1` (513) tokens".to_owned(),
            2,
            3
        )]
    );
}

#[test]
fn unknown_metric_in_phase() {
    assert_eq!(
        errors("phase p {\n  vary matrix_lr in [0.1]\n  objective maximize accuracy\n}\n"),
        [("unknown metric `accuracy`".to_owned(), 3, 22)]
    );
}

#[test]
fn override_reading_itself() {
    assert_eq!(
        errors("phase p {\n  lr = lr * 2\n  vary matrix_lr in [0.1]\n}\ntrain {\n  matrix_lr = lr\n}\n"),
        [("derived keys form a cycle: `lr` -> `lr`".to_owned(), 2, 3)]
    );
}

#[test]
fn swept_warmup_breaks_warmdown() {
    assert_eq!(
        errors("phase p {\n  vary schedule.warmup in [0.6]\n}\n"),
        [("warmup + warmdown (1.1) must be at most 1".to_owned(), 2, 28)]
    );
}

#[test]
fn override_set_twice() {
    assert_eq!(
        errors("phase p {\n  steps = 100\n  vary matrix_lr in [0.1]\n  steps = 200\n}\n"),
        [("`steps` is set twice in this block".to_owned(), 4, 3)]
    );
}

#[test]
fn log_from_zero() {
    assert_eq!(
        errors("phase p {\n  vary matrix_lr in log(0, 1, n = 3)\n}\n"),
        [("`log` needs positive bounds".to_owned(), 2, 25)]
    );
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let src = "model {\n  experts = 2\n  top_k = 3\n}\ntrain {\n  matrx_lr = 0.04\n  seq_len = 64\n}\nphase a after nowhere {\n  vary matrix_lr in []\n}\n";
    assert_eq!(
        errors(src),
        [
            ("`top_k` (3) must be at most `experts` (2)".to_owned(), 3, 3),
            ("unknown key `matrx_lr`".to_owned(), 6, 3),
            ("`seq_len` belongs in `model {}`".to_owned(), 7, 3),
            ("phase `a` comes after `nowhere`, which is not defined".to_owned(), 9, 15),
            ("`vary matrix_lr in []`: a sweep needs at least one value".to_owned(), 10, 21),
        ]
    );
}

#[test]
fn renders_the_design_example_exactly() {
    let mut src = String::new();
    for _ in 0..12 {
        src.push_str("#\n");
    }
    src.push_str("train {\n  matrx_lr = 0.04\n}\n");
    let failure = Plan::compile(&src, Path::new("pipelines/muon_adamw.lrx")).unwrap_err();
    assert_eq!(
        failure.render(false),
        "error: unknown key `matrx_lr`\n  --> pipelines/muon_adamw.lrx:14:3\n   |\n14 |   matrx_lr = 0.04\n   |   ^^^^^^^^ did you mean `matrix_lr`?\n\n"
    );
}

#[test]
fn sweeping_lr_that_nothing_reads_is_a_warning() {
    let src = "phase p {\n  vary lr in [0.1, 0.2]\n}\n";
    let plan = Plan::compile(src, Path::new("t.lrx")).unwrap();
    let w: Vec<_> = plan.warnings.iter().map(|d| (d.message.as_str(), d.line_col(src).unwrap())).collect();
    assert_eq!(w, [("no key is derived from `lr`, so varying it changes nothing", (2, 8))]);
}

#[test]
fn phase_named_final() {
    assert_eq!(
        errors("phase final {\n  vary matrix_lr in [0.1]\n}\n"),
        [("a phase cannot be named `final`".to_owned(), 1, 7)]
    );
}

#[test]
fn phase_names_differing_only_in_case() {
    assert_eq!(
        errors("phase Warmup {\n  vary matrix_lr in [0.1]\n}\nphase warmup {\n  vary embedding_lr in [0.1]\n}\n"),
        [("phases `Warmup` and `warmup` differ only in case".to_owned(), 4, 7)]
    );
}

#[test]
fn baseline_on_a_range_test() {
    assert_eq!(
        errors("phase f {\n  baseline = true\n  find matrix_lr from 1e-6 to 1.0\n}\n"),
        [("a range test has no baseline".to_owned(), 2, 3)]
    );
}

#[test]
fn a_budget_set_to_none_is_no_budget() {
    assert_eq!(errors("train {\n  steps = 10\n  time = none\n  tokens = none\n}\n"), []);
    let p = Plan::compile(
        "train {\n  steps = 10\n}\nphase p {\n  time = none\n  vary matrix_lr in [0.1]\n}\n",
        Path::new("t.lrx"),
    )
    .unwrap();
    let cands = p.resolve_phase("p", &std::collections::BTreeMap::new()).unwrap();
    // `time = none` in the phase leaves the root's step budget alone.
    assert_eq!(cands[0].as_ref().unwrap().config.total_steps(), Some(10));
}

#[test]
fn too_many_runs() {
    let src = "phase p {\n  repeats = 1000\n  vary matrix_lr in log(1e-4, 1.0, n = 200)\n}\n";
    assert_eq!(errors(src), [("the study has more than 100000 runs".to_owned(), 1, 7)]);
    let f = Plan::compile(src, Path::new("t.lrx")).unwrap_err();
    let d = &f.diagnostics[0];
    assert_eq!(d.labels[0].message, "201 candidates × 1000 runs each bring the study to 201000");
    assert_eq!(d.line_col(src), Some((1, 7)));
    // The final run counts too.
    let src = "phase p {\n  repeats = 500\n  vary matrix_lr in log(1e-4, 1.0, n = 199)\n}\nfinal after p {\n  repeats = 1000\n}\n";
    assert_eq!(errors(src), [("the study has more than 100000 runs".to_owned(), 5, 1)]);
}

#[test]
fn too_many_phases() {
    let mut src = String::new();
    for i in 0..10_001 {
        let _ = writeln!(src, "phase p{i} {{\n}}");
    }
    let errs = errors(&src);
    assert_eq!(errs[0], ("the study has more than 10000 phases".to_owned(), 20_001, 7));
}

#[test]
fn a_conflict_is_reported_where_the_winners_first_meet() {
    let src = "phase a {\n  vary matrix_lr in [0.1]\n}\nphase b {\n  vary matrix_lr in [0.2]\n}\nphase c after a, b {\n  vary embedding_lr in [0.3]\n}\nphase d after c {\n  vary embedding_lr in [0.4]\n}\nphase e after d, a {\n  vary embedding_lr in [0.5]\n}\n";
    assert_eq!(errors(src), [("phase `c` comes after `a` and `b`, which both vary `matrix_lr`".to_owned(), 7, 7)]);
}

#[test]
fn conflicts_between_a_key_and_its_arguments() {
    // `schedule` overlaps `schedule.warmup`; `schedule.warmup` and `schedule.min_lr` do not.
    let src = "train {\n  schedule = cosine(warmup = 0.1)\n}\nphase a {\n  vary schedule.warmup in [0.1]\n}\nphase b {\n  vary schedule.min_lr in [0.2]\n}\nphase c {\n  vary schedule in [constant]\n}\nfinal combine(a, b, c)\n";
    assert_eq!(
        errors(src),
        [
            ("the final run combines `a` and `c`, which both vary `schedule`".to_owned(), 13, 1),
            ("the final run combines `b` and `c`, which both vary `schedule`".to_owned(), 13, 1)
        ]
    );
}

#[test]
fn a_long_chain_of_phases_checks_in_linear_time() {
    // Every phase's ancestors were walked anew for every phase, and every pair of them
    // compared: 2,000 phases took minutes.
    let mut src = String::from("phase p0 {\n  vary matrix_lr in [0.01, 0.02]\n}\n");
    for i in 1..2000 {
        let _ = writeln!(src, "phase p{i} after p{} {{\n  vary matrix_lr in [base * 0.5, base * 2]\n}}", i - 1);
    }
    src.push_str("final after p1999\n");
    let start = std::time::Instant::now();
    let plan = Plan::compile(&src, Path::new("t.lrx")).unwrap_or_else(|f| panic!("{}", f.render(false)));
    assert_eq!(plan.phases.len(), 2000);
    assert_eq!(plan.phases[1999].needs.len(), 1999);
    assert_eq!(plan.final_run.as_ref().map(|f| f.needs.len()), Some(2000));
    assert!(start.elapsed().as_secs() < 30, "took {:?}", start.elapsed());
}

/// The first error's message, line, column and primary label.
fn first(src: &str) -> (String, usize, usize, String) {
    let f = Plan::compile(src, Path::new("t.lrx")).unwrap_err();
    let d = f.diagnostics.iter().find(|d| d.is_error()).expect("an error");
    let (l, c) = d.line_col(src).unwrap();
    let label = d.labels.iter().find(|l| l.primary).map(|l| l.message.clone()).unwrap_or_default();
    (d.message.clone(), l, c, label)
}

#[test]
fn misspelt_item_keyword_suggests_it() {
    let items = "`budget`, `data`, `final`, `find`, `model`, `objective`, `params`, `phase` or `train`";
    assert_eq!(
        first("phases x {\n}\n"),
        (format!("expected {items}, found `phases`"), 1, 1, "did you mean `phase`?".to_owned())
    );
    assert_eq!(
        first("trains {\n}\n"),
        (format!("expected {items}, found `trains`"), 1, 1, "did you mean `train`?".to_owned())
    );
}

#[test]
fn misspelt_combine_suggests_it() {
    assert_eq!(
        first("phase x {\n  vary matrix_lr in [0.1]\n}\nfinal combined(x)\n"),
        ("expected `after` or `combine`, found `combined`".to_owned(), 4, 7, "did you mean `combine`?".to_owned())
    );
}

#[test]
fn misspelt_after_suggests_it() {
    assert_eq!(
        first("phase a {\n  vary matrix_lr in [0.1]\n}\nphase b afterr a {\n  vary matrix_lr in [0.1]\n}\n"),
        ("expected `after` or `{`, found `afterr`".to_owned(), 4, 9, "did you mean `after`?".to_owned())
    );
    assert_eq!(
        first("phase a {\n  vary matrix_lr inn [0.1]\n}\n"),
        ("expected `in` after `matrix_lr`".to_owned(), 2, 18, "did you mean `in`?".to_owned())
    );
}

#[test]
fn misspelt_statement_keyword_is_named() {
    let f = Plan::compile("phase a {\n  vry matrix_lr in [0.1]\n}\n", Path::new("t.lrx")).unwrap_err();
    assert_eq!(f.diagnostics[0].message, "expected `=` after key `vry`");
    assert_eq!(f.diagnostics[0].help, ["`vry` is not a key; did you mean `vary`?"]);
}

#[test]
fn a_word_glued_to_a_number() {
    assert_eq!(
        first("train {\n  steps = 100abc\n}\n"),
        ("expected a value, found `100abc`".to_owned(), 2, 11, String::new())
    );
}

/// Every error of a study written to a fresh folder (with `files` beside it), loaded from
/// disk, as (message, line, column, primary label).
fn load_errors(src: &str, files: &[&str]) -> Vec<(String, usize, usize, String)> {
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        let path = dir.path().join(f);
        if f.ends_with('/') {
            std::fs::create_dir_all(&path).unwrap();
        } else {
            std::fs::write(&path, "In the beginning.").unwrap();
        }
    }
    let path = dir.path().join("t.lrx");
    std::fs::write(&path, src).unwrap();
    match Plan::load(&path) {
        Ok(_) => Vec::new(),
        Err(lrx::plan::LoadError::Invalid(f)) => f
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| {
                let (l, c) = d.line_col(src).unwrap_or((0, 0));
                let label = d.labels.iter().find(|l| l.primary).map(|l| l.message.clone()).unwrap_or_default();
                (d.message.clone(), l, c, label)
            })
            .collect(),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_missing_corpus_is_an_error_on_its_value() {
    let errs = load_errors("data {\n  corpus = \"nope.txt\"\n}\n", &[]);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!((errs[0].0.as_str(), errs[0].1, errs[0].2), ("corpus `nope.txt` does not exist", 2, 12));
    assert!(errs[0].3.starts_with("no such file or folder in `"), "{errs:?}");
    // A near name beside it is suggested; the default corpus and existing files are fine.
    assert_eq!(
        load_errors("data {\n  corpus = \"corpsu.txt\"\n}\n", &["corpus.txt"]),
        [("corpus `corpsu.txt` does not exist".to_owned(), 2, 12, "did you mean `corpus.txt`?".to_owned())]
    );
    assert_eq!(
        load_errors(
            "data {\n  corpus = \"corpus.txt\"\n}\nphase p {\n  corpus = \"default\"\n  vary matrix_lr in [0.1]\n}\n",
            &["corpus.txt"]
        ),
        []
    );
}

#[test]
fn corpora_in_phases_sweeps_and_the_final_run_are_checked() {
    let src = "phase p {\n  corpus = \"a.txt\"\n  vary matrix_lr in [0.1]\n}\nphase q {\n  vary corpus in [\"b.txt\", \"data/\", \"c.csv\"]\n}\nfinal after p {\n  corpus = \"d.txt\"\n}\n";
    let errs: Vec<(String, usize, usize)> =
        load_errors(src, &["b.txt", "data/", "c.csv"]).into_iter().map(|(m, l, c, _)| (m, l, c)).collect();
    assert_eq!(
        errs,
        [
            ("corpus `a.txt` does not exist".to_owned(), 2, 12),
            ("corpus folder `data/` has no `.txt` files".to_owned(), 6, 28),
            ("corpus `c.csv` is neither a `.txt` file, a `.jsonl` file nor a folder".to_owned(), 6, 37),
            ("corpus `d.txt` does not exist".to_owned(), 9, 12),
        ]
    );
}

#[test]
fn grid_without_its_brace() {
    assert_eq!(
        first("phase p {\n  grid\n    matrix_lr in [0.1]\n  }\n}\n"),
        ("expected `{` after `grid`".to_owned(), 2, 7, "found end of line".to_owned())
    );
}

#[test]
fn vary_without_a_key() {
    assert_eq!(
        first("phase p {\n  vary in [0.1]\n}\n"),
        ("expected a key before `in`".to_owned(), 2, 11, "found `[`".to_owned())
    );
}

#[test]
fn deeply_nested_parentheses_parse_in_linear_time() {
    // Found by the fuzzer: a tuple and a group both start with `(` and a value, so each level
    // parsed its contents twice (2^depth). 40 levels took forever; now the nesting limit is
    // the only bound.
    let nested = |depth: usize, close: usize| {
        format!("train {{\n  matrix_lr = {}0.1{}\n}}\n", "(".repeat(depth), ")".repeat(close))
    };
    let start = std::time::Instant::now();
    assert_eq!(errors(&nested(60, 60)), []);
    assert_eq!(errors(&nested(60, 61)), [("unclosed `{`".to_owned(), 1, 7)]);
    let f = Plan::compile(&nested(42, 80), Path::new("t.lrx")).unwrap_err();
    assert!(f.errors() > 0);
    let tuples = format!("train {{\n  adam_betas = {}0.9, 0.95{}\n}}\n", "((".repeat(20), ")".repeat(40));
    assert!(Plan::compile(&tuples, Path::new("t.lrx")).is_ok());
    assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
}
