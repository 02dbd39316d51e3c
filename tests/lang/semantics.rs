//! What flows downstream: incoming configs, winners, overrides, derived keys, options.

use std::collections::BTreeMap;
use std::path::Path;

use lrx::plan::range_test::{Pick, analyse};
use lrx::plan::{Candidate, Changes, FinalSource, PhaseKind, Plan, Prune, ResolveError, apply};
use lrx::spec::config::Budget;
use lrx::spec::schedule::Schedule;
use lrx::spec::value::Value;

fn plan(src: &str) -> Plan {
    match Plan::compile(src, Path::new("study.lrx")) {
        Ok(p) => p,
        Err(f) => panic!("{}", f.render(false)),
    }
}

fn winners(list: &[(&str, &[(&str, Value)])]) -> BTreeMap<String, Changes> {
    list.iter()
        .map(|(p, ch)| ((*p).to_owned(), ch.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()))
        .collect()
}

fn ok(cands: Vec<Result<Candidate, lrx::plan::InvalidCandidate>>) -> Vec<Candidate> {
    cands.into_iter().map(|c| c.unwrap()).collect()
}

fn variants(cands: &[Candidate]) -> Vec<&str> {
    cands.iter().map(|c| c.variant.as_str()).collect()
}

const ZOOM: &str = include_str!("../../pipelines/zoom.lrx");

#[test]
fn a_phase_starts_from_the_winner_with_its_own_budget() {
    let p = plan(ZOOM);
    let w = winners(&[("coarse", &[("lr", Value::Float(0.1))])]);
    let zoom = ok(p.resolve_phase("zoom", &w).unwrap());
    assert_eq!(zoom.len(), 11);
    assert_eq!(zoom[0].variant, "lr=0.05");
    assert_eq!(zoom[10].variant, "lr=0.15");
    assert_eq!(zoom[2].config.train.matrix_lr, 0.07);
    assert_eq!(zoom[2].config.train.embedding_lr, 0.007);
    assert_eq!(zoom[2].config.train.budget, Budget::Steps(100));
    // `fine` runs 75 steps whatever `coarse` and `zoom` used, from zoom's winning `lr`.
    let mut w = w;
    w.insert("zoom".into(), zoom[2].changes.clone());
    let fine = ok(p.resolve_phase("fine", &w).unwrap());
    assert_eq!(fine[0].config.train.budget, Budget::Steps(75));
    assert_eq!(fine[0].variant, "lr=0.042");
    assert_eq!(fine[8].variant, "lr=0.098");
    w.insert("fine".into(), fine[8].changes.clone());
    let last = p.resolve_final(&w).unwrap();
    assert_eq!(last.variant, "winner");
    assert_eq!(last.config.train.matrix_lr, 0.098);
    assert_eq!(last.config.train.budget, Budget::Steps(100));
    assert_eq!(last.seeds, [1, 2, 3]);
}

#[test]
fn a_phase_waits_for_the_winners_it_needs() {
    let p = plan(ZOOM);
    let w = winners(&[("coarse", &[("lr", Value::Float(0.1))])]);
    assert_eq!(
        p.resolve_phase("fine", &w).unwrap_err(),
        ResolveError::Waiting { phase: "fine".into(), missing: vec!["zoom".into()] }
    );
    assert_eq!(p.resolve_phase("nope", &w).unwrap_err(), ResolveError::UnknownPhase("nope".into()));
    assert_eq!(p.phase("fine").unwrap().needs, ["coarse", "zoom"]);
}

#[test]
fn overrides_do_not_flow_downstream_but_winners_do() {
    let p = plan(
        "train {\n  steps = 300\n}\nphase a {\n  steps = 50\n  vary matrix_lr in [0.1]\n}\nphase b after a {\n  vary embedding_lr in [0.3]\n}\n",
    );
    let a = ok(p.resolve_phase("a", &BTreeMap::new()).unwrap());
    assert_eq!(a[1].config.train.budget, Budget::Steps(50));
    let w = winners(&[("a", &a[1].changes.iter().map(|(k, v)| (k.as_str(), v.clone())).collect::<Vec<_>>())]);
    let b = ok(p.resolve_phase("b", &w).unwrap());
    assert_eq!(b[0].variant, "baseline");
    assert_eq!(b[0].config.train.budget, Budget::Steps(300));
    assert_eq!(b[0].config.train.matrix_lr, 0.1);
    assert_eq!(b[1].changes, [("embedding_lr".to_owned(), Value::Float(0.3))]);
}

#[test]
fn after_two_phases_merges_both_winners() {
    let p = plan(
        "phase a {\n  vary matrix_lr in [0.1]\n}\nphase b {\n  vary embedding_lr in [0.3]\n}\nphase c after a, b {\n  vary scalar_lr in [0.2]\n}\n",
    );
    let w = winners(&[("a", &[("matrix_lr", Value::Float(0.1))]), ("b", &[("embedding_lr", Value::Float(0.3))])]);
    let c = ok(p.resolve_phase("c", &w).unwrap());
    assert_eq!((c[0].config.train.matrix_lr, c[0].config.train.embedding_lr), (0.1, 0.3));
}

#[test]
fn combine_applies_only_the_listed_winners_to_the_root() {
    let p = plan(include_str!("../../pipelines/muon_adamw.lrx"));
    let mut w = winners(&[
        ("warmup", &[("schedule.warmup", Value::Float(0.05))]),
        ("matrix_lr", &[("matrix_lr", Value::Float(0.05))]),
        ("embedding_lr", &[]),
        ("warmdown_betas", &[("adam_betas", Value::Tuple(vec![Value::Float(0.9), Value::Float(0.95)]))]),
        ("weight_decay", &[("weight_decay", Value::Float(0.1))]),
        ("low_priority", &[]),
    ]);
    w.insert("interaction".into(), vec![("matrix_lr".into(), Value::Float(0.08))]);
    let f = p.resolve_final(&w).unwrap();
    assert_eq!(f.variant, "combined");
    assert_eq!(f.config.train.matrix_lr, 0.05, "`interaction` is not combined");
    assert_eq!(
        f.config.train.schedule,
        Schedule::WarmupWarmdown { warmup: 0.05, warmdown: 0.5, final_lr: 0.0, warmup_start: 0.0 }
    );
    assert_eq!(f.config.train.adam_betas, (0.9, 0.95));
    assert_eq!(f.seeds, [1, 2, 3]);
    assert_eq!(f.changes.len(), 4);
    assert!(matches!(&p.final_run.as_ref().unwrap().source, FinalSource::Combine(l) if l.len() == 6));
}

#[test]
fn derived_keys_are_evaluated_last_on_the_merged_config() {
    let p = plan(include_str!("../../pipelines/lr_sweep.lrx"));
    let c = ok(p.resolve_phase("lr_sweep", &BTreeMap::new()).unwrap());
    assert_eq!(c.len(), 33, "baseline = false; 26 log-spaced values and the seed's 7 named ones");
    assert_eq!(c[0].variant, "lr=0.001");
    assert_eq!(c[25].variant, "lr=1.0");
    assert_eq!(c[32].variant, "lr=0.8");
    assert_eq!(c[25].config.train.matrix_lr, 1.0);
    assert_eq!(c[25].config.train.embedding_lr, 0.1);
    assert_eq!(c[25].config.train.scalar_lr, 0.1);
    assert_eq!(p.root_config().train.matrix_lr, 0.065);
}

#[test]
fn base_out_of_range_makes_one_candidate_invalid() {
    let p = plan(
        "train {\n  lr = 0.04   matrix_lr = lr\n}\nphase a {\n  vary lr in [0.01]\n}\nphase b after a {\n  vary lr in [base * 2, base - 0.02]\n}\n",
    );
    let w = winners(&[("a", &[("lr", Value::Float(0.01))])]);
    let b = p.resolve_phase("b", &w).unwrap();
    assert_eq!(b.len(), 3);
    assert_eq!(b[1].as_ref().unwrap().variant, "lr=0.02");
    let bad = b[2].as_ref().unwrap_err();
    assert_eq!(bad.variant, "lr=base-0.02");
    assert_eq!(bad.message, "`lr = -0.01`: a learning rate must be positive");
}

#[test]
fn grid_is_a_product_with_the_first_clause_outermost_and_zip_pairs() {
    let p = plan(
        "phase g {\n  baseline = false\n  grid {\n    schedule.warmup in [0.0, 0.1]\n    matrix_lr in [0.02, 0.04, 0.08]\n  }\n  zip {\n    embedding_lr in [0.1, 0.2]\n    scalar_lr in [0.3, 0.4]\n  }\n}\n",
    );
    let g = ok(p.resolve_phase("g", &BTreeMap::new()).unwrap());
    assert_eq!(
        variants(&g),
        [
            "schedule.warmup=0.0,matrix_lr=0.02",
            "schedule.warmup=0.0,matrix_lr=0.04",
            "schedule.warmup=0.0,matrix_lr=0.08",
            "schedule.warmup=0.1,matrix_lr=0.02",
            "schedule.warmup=0.1,matrix_lr=0.04",
            "schedule.warmup=0.1,matrix_lr=0.08",
            "embedding_lr=0.1,scalar_lr=0.3",
            "embedding_lr=0.2,scalar_lr=0.4",
        ]
    );
}

#[test]
fn options_prune_seeds_and_budgets() {
    let p = plan(
        "train {\n  tokens = 100_000\n  seed = 7\n  repeats = 2\n}\nphase a {\n  prune = none\n  steps = 20\n  vary matrix_lr in [0.1]\n}\nphase b {\n  seeds = [3, 5, 9]\n  vary matrix_lr in [0.1]\n}\n",
    );
    let a = ok(p.resolve_phase("a", &BTreeMap::new()).unwrap());
    assert_eq!(a[0].config.train.diverge_factor, f64::MAX);
    assert_eq!(a[0].config.train.budget, Budget::Steps(20), "the last budget set wins");
    assert_eq!(a[0].seeds, [7, 8]);
    assert_eq!(p.phase("a").unwrap().prune, Prune::None);
    let b = ok(p.resolve_phase("b", &BTreeMap::new()).unwrap());
    assert_eq!(b[0].config.train.budget, Budget::Tokens(100_000));
    assert_eq!(b[0].seeds, [3, 5, 9]);
    assert_eq!(b[0].config.train.seed, 3);
    assert_eq!(b[0].config.train.diverge_factor, 3.0);
    assert_eq!(p.phase("b").unwrap().repeats, 3);
}

#[test]
fn a_range_test_is_one_exponential_run_and_feeds_later_phases() {
    let p = plan(include_str!("../../pipelines/lr_finder.lrx"));
    let phase = p.phase("range_test").unwrap();
    assert_eq!(
        phase.kind,
        PhaseKind::Find {
            key: "lr".into(),
            from: 1e-6,
            to: 1.0,
            steps: 100,
            pick: Pick::Min { divisor: 10.0 },
            stop: 4.0
        }
    );
    let c = ok(p.resolve_phase("range_test", &BTreeMap::new()).unwrap());
    assert_eq!(c.len(), 1);
    let cfg = &c[0].config;
    assert_eq!(cfg.train.matrix_lr, 1e-6);
    assert_eq!(cfg.train.schedule, Schedule::Exponential { gamma: 1e6 });
    assert_eq!(cfg.train.budget, Budget::Steps(100));
    // The run stops past `stop` × its first loss.
    assert_eq!((cfg.train.log_every, cfg.train.diverge_factor), (1, 4.0));
    // The engine turns the run's history into the winner.
    let history: Vec<(f64, f64)> = (0..100)
        .map(|i| {
            let lr = 1e-6 * 1e6f64.powf(f64::from(i) / 99.0);
            (lr, if lr < 0.01 { 5.0 - lr * 100.0 } else { 4.0 + (lr - 0.01) * 1000.0 })
        })
        .collect();
    let pick = analyse(&history, Pick::Min { divisor: 10.0 }, 4.0).unwrap().value;
    assert!((5e-4..=1.2e-3).contains(&pick), "{pick}");
    let w = winners(&[("range_test", &[("lr", Value::Float(pick))])]);
    let refine = ok(p.resolve_phase("refine", &w).unwrap());
    assert_eq!(refine[0].config.train.matrix_lr, pick);
    assert_eq!(refine[0].config.train.budget, Budget::Steps(300));
}

#[test]
fn constructor_arguments_are_set_on_the_incoming_schedule() {
    let p = plan(include_str!("../../pipelines/cosine.lrx"));
    let c = ok(p.resolve_phase("warmup", &BTreeMap::new()).unwrap());
    assert_eq!(
        c[1].config.train.schedule,
        Schedule::Cosine { warmup: 0.1, min_lr: 0.1, cycles: 1, warmup_start: 0.0, over: Some(0.9) }
    );
    let w = winners(&[
        ("warmup", &[("schedule.warmup", Value::Float(0.1))]),
        ("min_lr", &[("schedule.min_lr", Value::Float(0.05))]),
    ]);
    let r = ok(p.resolve_phase("restarts", &w).unwrap());
    assert_eq!(r[2].variant, "schedule.cycles=4");
    assert_eq!(
        r[2].config.train.schedule,
        Schedule::Cosine { warmup: 0.1, min_lr: 0.05, cycles: 4, warmup_start: 0.0, over: Some(0.9) }
    );
}

#[test]
#[allow(clippy::many_single_char_names, reason = "short names of parsed pairs")]
fn command_line_values_and_configs() {
    assert_eq!(lrx::lang::parse_assignment("steps=200").unwrap(), ("steps".to_owned(), Value::Int(200)));
    assert_eq!(lrx::lang::parse_assignment("matrix_lr = 1").unwrap(), ("matrix_lr".to_owned(), Value::Float(1.0)));
    let (k, v) = lrx::lang::parse_assignment("schedule=cosine(warmup = 0.1)").unwrap();
    assert_eq!((k.as_str(), v.to_string().as_str()), ("schedule", "cosine(warmup=0.1,min_lr=0.0,cycles=1)"));
    assert_eq!(lrx::lang::parse_assignment("matrx_lr=1").unwrap_err().message, "unknown key `matrx_lr`");
    assert_eq!(
        lrx::lang::parse_assignment("matrix_lr=-1").unwrap_err().message,
        "`matrix_lr = -1`: a learning rate must be positive"
    );
    assert_eq!(
        lrx::lang::eval_standalone("cosine(warmup = 0.05, min_lr = 0.1, cycles = 2)").unwrap().to_string(),
        "cosine(warmup=0.05,min_lr=0.1,cycles=2)"
    );
    assert_eq!(
        lrx::lang::eval_standalone("cosine(warmup = lr)").unwrap_err().message,
        "`lr` is a key; a standalone value cannot refer to keys"
    );

    let p = plan("train {\n  lr = 0.04   matrix_lr = lr\n}\n");
    let c = p.root_with(&[("lr".into(), Value::Float(0.5)), ("schedule.warmup".into(), Value::Float(0.1))]).unwrap();
    assert_eq!(c.train.matrix_lr, 0.5, "derived keys follow `--set lr=...`");
    assert_eq!(
        c.train.schedule,
        Schedule::WarmupWarmdown { warmup: 0.1, warmdown: 0.5, final_lr: 0.0, warmup_start: 0.0 }
    );
    let d = apply(
        &c,
        &[
            ("steps".into(), Value::Int(10)),
            ("adam_betas".into(), Value::Tuple(vec![Value::Float(0.9), Value::Float(0.99)])),
        ],
    )
    .unwrap();
    assert_eq!((d.train.budget, d.train.adam_betas, d.train.matrix_lr), (Budget::Steps(10), (0.9, 0.99), 0.5));
    assert_eq!(apply(&c, &[]).unwrap(), c, "applying nothing changes nothing");
}

#[test]
fn phases_are_in_topological_order_with_ties_in_source_order() {
    let p = plan(include_str!("../../pipelines/muon_adamw.lrx"));
    let names: Vec<&str> = p.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "warmup",
            "matrix_lr",
            "embedding_lr",
            "warmdown_betas",
            "weight_decay",
            "low_priority",
            "interaction",
            "warmdown_final",
            "momentum_warmup"
        ]
    );
    assert_eq!(p.phase("warmdown_betas").unwrap().swept_keys, ["schedule.warmdown", "adam_betas"]);
    assert_eq!(p.phase("warmdown_betas").unwrap().candidate_count, 6, "5 variants and the baseline, not a grid");
    let winner = p.winner_node("warmup").unwrap();
    // The runs of `matrix_lr` (6 candidates), `interaction` (7), `warmdown_final` (7) and
    // `momentum_warmup` (5) need it, and the final run.
    let mut needed_by: Vec<(String, usize)> = p
        .graph
        .dag
        .neighbors_directed(winner, petgraph::Direction::Outgoing)
        .map(|n| match &p.graph.dag[n] {
            lrx::plan::Node::Runs { block, candidates, .. } => (block.name().to_owned(), *candidates),
            other @ lrx::plan::Node::Select { .. } => panic!("a winner feeds runs, not {other:?}"),
        })
        .collect();
    needed_by.sort();
    assert_eq!(
        needed_by,
        [
            ("final".to_owned(), 1),
            ("interaction".to_owned(), 7),
            ("matrix_lr".to_owned(), 6),
            ("momentum_warmup".to_owned(), 5),
            ("warmdown_final".to_owned(), 7)
        ]
    );
}

/// The later schedule arguments survive a config's round trip through values (winners applied
/// to it), and can be varied on a schedule that does not mention them.
#[test]
fn later_schedule_arguments_survive_changes_and_can_be_varied() {
    let p = plan("train {\n  schedule = cosine(warmup = 0.05, min_lr = 0.1, warmup_start = 0.1, over = 0.9)\n}\n");
    let c = p.root_with(&[("schedule.min_lr".into(), Value::Float(0.2))]).unwrap();
    assert_eq!(
        c.train.schedule,
        Schedule::Cosine { warmup: 0.05, min_lr: 0.2, cycles: 1, warmup_start: 0.1, over: Some(0.9) }
    );
    let d = apply(&c, &[("steps".into(), Value::Int(10))]).unwrap();
    assert_eq!(d.train.schedule, c.train.schedule);
    let p = plan("phase w {\n  vary schedule.warmup_start in [0.1, 0.3]\n}\n");
    let cands = ok(p.resolve_phase("w", &BTreeMap::new()).unwrap());
    let starts: Vec<f64> = cands
        .iter()
        .map(|c| match c.config.train.schedule {
            Schedule::WarmupWarmdown { warmup_start, .. } => warmup_start,
            ref other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(starts, [0.0, 0.1, 0.3]);
    let p = plan("phase s {\n  vary schedule in [step(at = [0.5, 0.75], gamma = 0.1)]\n}\n");
    let cands = ok(p.resolve_phase("s", &BTreeMap::new()).unwrap());
    assert_eq!(cands[1].config.train.schedule, Schedule::Step { every: 0.3, gamma: 0.1, at: vec![0.5, 0.75] });
    assert_eq!(cands[1].variant, "schedule=step(every=0.3,gamma=0.1,at=[0.5,0.75])");
}
