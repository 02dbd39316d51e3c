//! A small but realistic `StudyResults`, built by hand: a log-spaced LR sweep with a diverged
//! run, a warmup phase with repeats, a grid with a failed cell, a schedule-shape phase, a phase
//! with two one-factor sweeps, and a final run with repeats. Histories follow a smooth loss
//! curve whose floor depends on the learning rate, with deterministic noise.

use std::collections::BTreeMap;

use lrx::cache::RunKey;
use lrx::results::{CandidateResult, CandidateStatus, PhaseResult, PhaseStatus, RepeatResult, StudyResults};
use lrx::spec::Goal;
use lrx::spec::config::key;
use lrx::spec::{Call, HistoryRow, RunConfig, Status, Value, Values};

pub(crate) const STEPS: u64 = 300;

fn run_key(n: u64) -> RunKey {
    format!("{n:064x}").parse().expect("64 hex digits")
}

pub(crate) fn call(name: &str, args: &[(&str, Value)]) -> Value {
    Value::Call(Call { name: name.into(), args: args.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect() })
}

/// A resolved config: 300 steps, the given overrides.
pub(crate) fn config(overrides: &[(&str, Value)]) -> RunConfig {
    let mut v = Values::new();
    v.insert(key("steps"), Value::Int(STEPS as i64));
    v.insert(key("matrix_lr"), Value::Float(0.01));
    for (k, val) in overrides {
        v.insert(key(k), val.clone());
    }
    RunConfig::from_values(&v).expect("valid test config")
}

/// Final loss of a run as a function of its settings: best near `matrix_lr = 0.05`.
fn floor(cfg: &RunConfig) -> f64 {
    let lr = cfg.train.matrix_lr;
    let d = (lr / 0.05).log10();
    let wd = (cfg.train.weight_decay - 0.2).abs();
    let emb = (cfg.train.embedding_lr / 0.6).log2().abs();
    let shape = match cfg.train.schedule {
        lrx::spec::Schedule::Cosine { cycles, .. } => 0.012 * f64::from(cycles) - 0.02,
        lrx::spec::Schedule::Linear { .. } => 0.006,
        _ => 0.0,
    };
    let unemb = 0.01 * (cfg.train.unembedding_lr / 0.004).log2().abs();
    let warm = match cfg.train.schedule {
        lrx::spec::Schedule::WarmupWarmdown { warmup, .. }
        | lrx::spec::Schedule::Cosine { warmup, .. }
        | lrx::spec::Schedule::Linear { warmup, .. } => (warmup - 0.05).abs(),
        _ => 0.1,
    };
    2.2 + 0.9 * d * d + 0.3 * wd + 0.05 * emb + 0.4 * warm + shape + unemb
}

fn noise(seed: u64, step: u64) -> f64 {
    ((seed as f64 * 12.9898 + step as f64 * 78.233).sin() * 43_758.545).fract() * 0.04
}

/// A run's history: train loss every 10 steps, validation every 50 (and at the end).
pub(crate) fn history(cfg: &RunConfig, seed: u64, diverge_at: Option<u64>) -> Vec<HistoryRow> {
    let l0 = 5.55;
    let lf = floor(cfg);
    let tau = 20.0 + 0.4 / cfg.train.matrix_lr.max(1e-4);
    let mut rows = Vec::new();
    let mut step = 0;
    while step <= STEPS {
        let mut m = BTreeMap::new();
        let mut loss = lf + (l0 - lf) * (-(step as f64) / tau).exp() + noise(seed, step);
        if let Some(d) = diverge_at {
            if step > d.saturating_sub(40) {
                loss += ((step + 40 - d) as f64 / 8.0).exp();
            }
            if step > d {
                loss = f64::NAN;
            }
        }
        m.insert("train_loss".to_owned(), loss);
        m.insert("lr".to_owned(), cfg.train.schedule.at_step(step.min(STEPS - 1), STEPS));
        m.insert("tokens_per_sec".to_owned(), 41_000.0 + 500.0 * noise(seed, step));
        m.insert("elapsed".to_owned(), step as f64 * 0.2);
        if step % 50 == 0 || step == STEPS {
            let val = loss + 0.05;
            m.insert("val_loss".to_owned(), val);
            m.insert("val_accuracy".to_owned(), (0.62 - 0.08 * val).clamp(0.0, 1.0));
            m.insert("val_ppl".to_owned(), val.exp());
        }
        rows.push(HistoryRow { step, metrics: m });
        if diverge_at.is_some_and(|d| step > d) {
            break;
        }
        step += 10;
    }
    rows
}

fn next_key() -> RunKey {
    // Tests build fixtures on one thread each; a fresh key per run is all that matters.
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    run_key(N.fetch_add(1, Ordering::Relaxed))
}

pub(crate) enum Outcome {
    Ok,
    Diverged(u64),
    Failed(&'static str),
}

/// A candidate with `repeats` seeds, its final metrics the means of its runs' last evaluation.
pub(crate) fn candidate(
    variant: &str,
    changes: Vec<(&str, Value)>,
    cfg: RunConfig,
    repeats: u64,
    outcome: &Outcome,
    cached: bool,
    metric: &str,
) -> CandidateResult {
    let mut reps = Vec::new();
    let mut finals: Vec<BTreeMap<String, f64>> = Vec::new();
    for seed in 1..=repeats {
        let (status, hist, diverged_at, error) = match outcome {
            Outcome::Ok => (Status::Ok, history(&cfg, seed, None), None, None),
            Outcome::Diverged(at) => (Status::Diverged, history(&cfg, seed, Some(*at)), Some(*at), None),
            Outcome::Failed(e) => (Status::Failed, Vec::new(), None, Some((*e).to_owned())),
        };
        let mut fin = BTreeMap::new();
        if status == Status::Ok
            && let Some(last) = hist.last()
        {
            for k in ["train_loss", "val_loss", "val_accuracy", "val_ppl"] {
                if let Some(v) = last.metrics.get(k) {
                    fin.insert(k.to_owned(), *v);
                }
            }
            fin.insert("val_bpb".to_owned(), fin["val_loss"] / std::f64::consts::LN_2);
            fin.insert("aux_loss".to_owned(), 0.011 + 0.001 * seed as f64);
        }
        finals.push(fin);
        reps.push(RepeatResult {
            seed,
            key: Some(next_key()),
            cached,
            status: Some(status),
            seconds: if status == Status::Failed { 0.4 } else { 61.0 + seed as f64 },
            tokens_per_sec: if status == Status::Failed { 0.0 } else { 41_000.0 + 150.0 * seed as f64 },
            steps: if status == Status::Ok { STEPS } else { diverged_at.unwrap_or(0) },
            diverged_at,
            error,
            exit_code: None,
            log_tail: None,
            failure: None,
            stop_at: None,
            resumed_at: None,
            finished_at: None,
            cooldown: None,
            history: hist,
        });
    }
    let mut metrics = BTreeMap::new();
    let mut metrics_std = BTreeMap::new();
    if finals.iter().all(|f| !f.is_empty()) {
        for k in finals[0].keys() {
            let xs: Vec<f64> = finals.iter().map(|f| f[k]).collect();
            let n = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / n;
            metrics.insert(k.clone(), mean);
            if xs.len() > 1 {
                let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
                metrics_std.insert(k.clone(), var.sqrt());
            }
        }
    }
    let status = match outcome {
        Outcome::Ok => CandidateStatus::Ok,
        Outcome::Diverged(_) => CandidateStatus::Diverged,
        Outcome::Failed(_) => CandidateStatus::Failed,
    };
    let reason = match outcome {
        Outcome::Ok => None,
        Outcome::Diverged(at) => Some(format!("diverged at step {at}")),
        Outcome::Failed(e) => Some((*e).to_owned()),
    };
    CandidateResult {
        variant: variant.to_owned(),
        changes: changes.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        status,
        objective: metrics.get(metric).copied(),
        metrics,
        metrics_std,
        reason,
        repeats: reps,
        config: Some(cfg),
    }
}

fn pick(cands: &[CandidateResult], goal: Goal) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, c) in cands.iter().enumerate() {
        if c.status != CandidateStatus::Ok {
            continue;
        }
        if let Some(x) = c.objective
            && best.is_none_or(|(_, b)| goal.better(x, b))
        {
            best = Some((i, x));
        }
    }
    best.map(|b| b.0)
}

pub(crate) fn phase(name: &str, after: &[&str], swept: &[&str], candidates: Vec<CandidateResult>) -> PhaseResult {
    let winner = pick(&candidates, Goal::Minimize);
    PhaseResult {
        name: name.into(),
        after: after.iter().map(|s| (*s).to_owned()).collect(),
        status: if winner.is_some() { PhaseStatus::Done } else { PhaseStatus::Failed },
        metric: "val_loss".into(),
        goal: Goal::Minimize,
        winner,
        incoming_key: candidates.first().and_then(CandidateResult::key),
        candidates,
        swept: swept.iter().map(|s| (*s).to_owned()).collect(),
        message: None,
        found: None,
        range_test: None,
        same_runs: Vec::new(),
    }
}

fn ww(warmup: f64) -> Value {
    call(
        "warmup_warmdown",
        &[("warmup", Value::Float(warmup)), ("warmdown", Value::Float(0.5)), ("final", Value::Float(0.0))],
    )
}

/// The log-spaced values of `log(0.001, 1.0, n = 7)`.
pub(crate) fn lr_values() -> Vec<f64> {
    (0..7).map(|i| 10f64.powf(-3.0 + 0.5 * f64::from(i))).collect()
}

#[allow(clippy::float_cmp, reason = "the values compared are the literals the loops iterate over")]
pub(crate) fn study() -> StudyResults {
    let m = "val_loss";
    let f = |x: f64| Value::Float(x);
    // Phase 1: log-spaced LR sweep from the root (matrix_lr = 0.01); 1.0 diverges.
    let mut c = vec![candidate("baseline", vec![], config(&[]), 1, &Outcome::Ok, true, m)];
    for lr in lr_values() {
        if lr == 0.01 {
            continue;
        }
        let outcome = if lr >= 0.99 { Outcome::Diverged(120) } else { Outcome::Ok };
        c.push(candidate(
            &format!("matrix_lr={lr}"),
            vec![("matrix_lr", f(lr))],
            config(&[("matrix_lr", f(lr))]),
            1,
            &outcome,
            true,
            m,
        ));
    }
    let lr_sweep = phase("lr_sweep", &[], &["matrix_lr"], c);
    let best_lr = lr_sweep.winner().and_then(|w| w.changes.first()).and_then(|(_, v)| v.as_f64()).unwrap_or(0.01);
    let base = |extra: &[(&str, Value)]| {
        let mut o = vec![("matrix_lr", f(best_lr))];
        o.extend(extra.iter().cloned());
        config(&o)
    };

    // Phase 2: warmup, two repeats each (a changed constructor argument).
    let mut c = vec![candidate("baseline", vec![], base(&[]), 2, &Outcome::Ok, false, m)];
    for w in [0.02, 0.05, 0.1, 0.2] {
        c.push(candidate(
            &format!("schedule={}", ww(w)),
            vec![("schedule", ww(w))],
            base(&[("schedule", ww(w))]),
            2,
            &Outcome::Ok,
            false,
            m,
        ));
    }
    let warmup = phase("warmup", &["lr_sweep"], &["schedule.warmup"], c);

    // Phase 3: a grid over matrix_lr × weight_decay with a failed cell.
    let mut c = vec![candidate("baseline", vec![], base(&[]), 1, &Outcome::Ok, true, m)];
    for lr in [0.03, 0.05, 0.08] {
        for wd in [0.1, 0.2, 0.4] {
            let mut ch = vec![("matrix_lr", f(lr))];
            if wd != 0.2 {
                ch.push(("weight_decay", f(wd)));
            }
            let variant = ch.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
            let outcome = if lr == 0.08 && wd == 0.4 {
                Outcome::Failed("trainer exited with status 137 (out of memory)")
            } else {
                Outcome::Ok
            };
            let cfg = config(&[("matrix_lr", f(lr)), ("weight_decay", f(wd))]);
            c.push(candidate(&variant, ch, cfg, 1, &outcome, false, m));
        }
    }
    let grid = phase("interaction", &["lr_sweep"], &["matrix_lr", "weight_decay"], c);

    // Phase 4: schedule shapes (non-numeric sweep).
    let cos = |cycles: i64| call("cosine", &[("warmup", f(0.05)), ("min_lr", f(0.1)), ("cycles", Value::Int(cycles))]);
    let lin = call("linear", &[("warmup", f(0.05)), ("final", f(0.0))]);
    let mut c = vec![candidate("baseline", vec![], base(&[("schedule", ww(0.05))]), 1, &Outcome::Ok, false, m)];
    for s in [cos(1), cos(2), lin] {
        c.push(candidate(
            &format!("schedule={s}"),
            vec![("schedule", s.clone())],
            base(&[("schedule", s)]),
            1,
            &Outcome::Ok,
            false,
            m,
        ));
    }
    let shapes = phase("schedule_shape", &["warmup"], &["schedule"], c);

    // Phase 5: two one-factor sweeps in one phase.
    let mut c = vec![candidate("baseline", vec![], base(&[]), 1, &Outcome::Ok, true, m)];
    for e in [0.3, 0.45, 0.8, 1.2] {
        c.push(candidate(
            &format!("embedding_lr={e}"),
            vec![("embedding_lr", f(e))],
            base(&[("embedding_lr", f(e))]),
            1,
            &Outcome::Ok,
            true,
            m,
        ));
    }
    for u in [0.002, 0.008, 0.016] {
        c.push(candidate(
            &format!("unembedding_lr={u}"),
            vec![("unembedding_lr", f(u))],
            base(&[("unembedding_lr", f(u))]),
            1,
            &Outcome::Ok,
            true,
            m,
        ));
    }
    let adam = phase("adam_lrs", &["lr_sweep"], &["embedding_lr", "unembedding_lr"], c);

    let final_cfg = base(&[("schedule", ww(0.05))]);
    let final_run = candidate(
        "combined",
        vec![("matrix_lr", f(best_lr)), ("schedule", ww(0.05))],
        final_cfg,
        3,
        &Outcome::Ok,
        false,
        m,
    );
    StudyResults {
        study: "muon_adamw".into(),
        metric: m.into(),
        goal: Goal::Minimize,
        phases: vec![lr_sweep, warmup, grid, shapes, adam],
        final_run: Some(final_run),
        final_status: Some(PhaseStatus::Done),
        interrupted: false,
        train_wall: 0.0,
        superseded: Vec::new(),
    }
}
