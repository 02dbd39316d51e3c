//! What `lrx plan` says: runs by state (cached, to train, waiting on a winner, cannot run), the
//! tokens still to train and how long that should take, measured on the study's cached runs;
//! and the plan as text, per phase.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::json;

use crate::cache::RunKey;
use crate::plan::{Changes, Plan, StudyBudget};
use crate::results::{CandidateResult, CandidateStatus, PhaseStatus, StudyResults};
use crate::spec::{Budget, RunConfig};

/// Tokens a run trains (time budgets: unknown, counted as zero).
fn tokens(c: &RunConfig) -> u64 {
    match c.train.budget {
        Budget::Tokens(t) => t,
        _ => c.total_steps().unwrap_or(0) * (c.train.batch_size * c.model.seq_len) as u64,
    }
}

/// Same model shape and batch: runs whose speed predicts another's.
fn shape(c: &RunConfig) -> (usize, usize, usize, usize, usize, usize, usize, usize) {
    let m = &c.model;
    (m.d_model, m.layers, m.heads, m.d_ff, m.experts, m.top_k, m.seq_len, c.train.batch_size)
}

/// Runs by state, each counted once however many candidates share it (equal resolved configs
/// are one run), with the tokens still to train and how long that should take.
pub struct Estimate {
    pub cached: usize,
    pub to_train: usize,
    /// Runs of candidates still waiting on a winner (their keys are unknown, so a run they
    /// might share with another candidate is counted twice).
    pub waiting: usize,
    /// Candidates that cannot run: `(phase, variant, why)`.
    pub cannot_run: Vec<(String, String, String)>,
    pub tokens: u64,
    /// Tokens per second measured on cached runs of the same shape (or any shape).
    pub rate: Option<f64>,
    pub basis: usize,
    /// Runs the study's budget leaves out (not counted above).
    pub skipped: usize,
    pub budget: Option<StudyBudget>,
    /// With a `time` budget: the training seconds the cached runs recorded.
    pub time_spent: f64,
    /// With a `time` budget and a rate: how many of the runs left to train are expected to fit.
    pub expected_to_fit: Option<usize>,
}

impl Estimate {
    pub fn new(plan: &Plan, results: &StudyResults) -> Estimate {
        let winners = winners(results);
        let mut cached = BTreeSet::new();
        let mut to_train: BTreeMap<RunKey, u64> = BTreeMap::new();
        let (mut waiting, mut waiting_tokens) = (0usize, 0u64);
        let mut cannot_run = Vec::new();
        let mut skipped = 0usize;
        let mut time_spent: BTreeMap<RunKey, f64> = BTreeMap::new();
        // Tokens of each run left to train, in listed order (the order a budget takes them in).
        let mut left_tokens: Vec<u64> = Vec::new();
        let named: Vec<(Option<&str>, &CandidateResult)> = results
            .phases
            .iter()
            .flat_map(|p| p.candidates.iter().map(move |c| (Some(p.name.as_str()), c)))
            .chain(results.final_run.iter().map(|c| (None, c)))
            .collect();
        for (phase, c) in named {
            let repeats = match phase {
                Some(p) => plan.phase(p).map_or(1, |ph| ph.repeats as usize),
                None => plan.final_run.as_ref().map_or(1, |f| f.repeats as usize),
            };
            if c.status == CandidateStatus::Skipped && c.repeats.is_empty() {
                skipped += repeats;
                continue;
            }
            if c.status == CandidateStatus::Waiting {
                let t = plan.estimate_config(phase, &winners).map_or(0, |cfg| tokens(&cfg));
                waiting += repeats;
                waiting_tokens += t * repeats as u64;
                left_tokens.extend(std::iter::repeat_n(t, repeats));
                continue;
            }
            for r in &c.repeats {
                if let Some(k) =
                    r.key.filter(|_| r.cached && r.status.is_some_and(|s| s != crate::spec::Status::Failed))
                {
                    time_spent.insert(k, r.seconds);
                }
                if c.status == CandidateStatus::Skipped && r.status.is_none() {
                    skipped += 1;
                    continue;
                }
                match (r.key, r.cached, r.status) {
                    // A recorded failure has no result: the next `run` trains it again.
                    (Some(k), _, Some(crate::spec::Status::Failed)) | (Some(k), false, None) => {
                        let t = c.config.as_ref().map_or(0, tokens);
                        if to_train.insert(k, t).is_none() {
                            left_tokens.push(t);
                        }
                    }
                    (Some(k), true, _) => {
                        cached.insert(k);
                    }
                    _ => cannot_run.push((
                        phase.unwrap_or("final").to_owned(),
                        c.variant.clone(),
                        r.error.clone().or_else(|| c.reason.clone()).unwrap_or_default(),
                    )),
                }
            }
        }
        cannot_run.dedup();
        let cached_cands: Vec<&CandidateResult> = results.all_candidates().filter(|c| c.cached()).collect();
        let rates = |pred: &dyn Fn(&&CandidateResult) -> bool| -> Vec<f64> {
            cached_cands.iter().filter(|c| pred(c)).filter_map(|c| c.tokens_per_sec()).filter(|r| *r > 0.0).collect()
        };
        let root_shape = shape(&plan.root_config());
        let same = rates(&|c| c.config.as_ref().is_some_and(|cfg| shape(cfg) == root_shape));
        let pick = if same.is_empty() { rates(&|_| true) } else { same };
        let rate = median(&pick);
        let time_spent: f64 = time_spent.values().sum();
        // A run starts while the time recorded before it is under the budget (exec::budget).
        let expected_to_fit = plan.budget.and_then(|b| b.time).zip(rate).map(|(limit, rate)| {
            let mut spent = time_spent;
            left_tokens
                .iter()
                .take_while(|&&t| {
                    let fits = spent < limit;
                    spent += t as f64 / rate;
                    fits
                })
                .count()
        });
        Estimate {
            cached: cached.len(),
            to_train: to_train.len(),
            waiting,
            cannot_run,
            tokens: to_train.values().sum::<u64>() + waiting_tokens,
            rate,
            basis: pick.len(),
            skipped,
            budget: plan.budget,
            time_spent,
            expected_to_fit,
        }
    }

    pub fn runs_left(&self) -> usize {
        self.to_train + self.waiting
    }

    pub fn seconds(&self) -> Option<f64> {
        self.rate.map(|r| self.tokens as f64 / r)
    }

    /// The `estimate` object of `lrx plan --json`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut j = json!({
            "runs_cached": self.cached,
            "runs_to_train": self.to_train,
            "runs_waiting": self.waiting,
            "tokens_to_train": self.tokens,
            "tokens_per_sec": self.rate,
            "seconds": self.seconds(),
            "based_on_runs": self.basis,
        });
        if let Some(b) = self.budget {
            j["budget"] = json!({
                "max_runs": b.max_runs,
                "time_seconds": b.time,
                "runs_skipped": self.skipped,
                "time_spent_seconds": b.time.map(|_| self.time_spent),
                // An estimate, from the cached runs' speed: only `run` knows.
                "expected_to_fit": self.expected_to_fit,
            });
        }
        j
    }
}

/// The winning changes the cache already decides (what the walk fed forward).
fn winners(results: &StudyResults) -> BTreeMap<String, Changes> {
    results
        .phases
        .iter()
        .filter(|p| p.status == PhaseStatus::Done)
        .filter_map(|p| match (&p.found, p.winner()) {
            (Some(found), _) => Some((p.name.clone(), vec![found.clone()])),
            (None, Some(w)) => Some((p.name.clone(), w.changes.clone())),
            (None, None) => None,
        })
        .collect()
}

fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// `812`, `14k`, `3.1M`, `2.0G`.
pub fn human(n: u64) -> String {
    let x = n as f64;
    if x >= 1e9 {
        format!("{:.1}G", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.0}k", x / 1e3)
    } else {
        n.to_string()
    }
}

fn duration(secs: f64) -> String {
    if secs < 90.0 {
        format!("{secs:.0} s")
    } else if secs < 5400.0 {
        format!("{:.1} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

fn status_word(c: &CandidateResult) -> &'static str {
    match c.status {
        _ if c.cached() => "cached",
        CandidateStatus::Skipped => "skipped (budget)",
        CandidateStatus::Waiting => "waiting",
        CandidateStatus::ToRun | CandidateStatus::Cancelled => "to train",
        // A recorded failure is retried by the next `run`; a candidate without a run cannot run.
        CandidateStatus::Failed if c.repeats.iter().any(|r| r.key.is_some()) => "failed, to retry",
        CandidateStatus::Failed => "cannot run",
        CandidateStatus::Ok | CandidateStatus::Diverged | CandidateStatus::Pruned => "partly cached",
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The plan as text: a summary line, the cost, then each phase and its candidates.
pub fn text(plan: &Plan, results: &StudyResults, estimate: &Estimate) -> String {
    let all: Vec<&CandidateResult> = results.all_candidates().collect();
    let e = estimate;
    let mut out = format!(
        "study `{}`: {}, {}, {}: {} cached, {} to train, {} waiting on a winner{}\n",
        results.study,
        plural(results.phases.len(), "phase", "phases"),
        plural(all.len(), "candidate", "candidates"),
        plural(e.cached + e.to_train + e.waiting + e.cannot_run.len(), "run", "runs"),
        e.cached,
        e.to_train,
        e.waiting,
        if e.cannot_run.is_empty() { String::new() } else { format!(", {} cannot run", e.cannot_run.len()) },
    );
    let cost = match (e.runs_left(), e.seconds()) {
        (0, _) if e.cannot_run.is_empty() => "nothing to train: every run is cached".to_owned(),
        (0, _) => "nothing that can run is left to train".to_owned(),
        (n, Some(s)) => format!(
            "to train: {}, ≈ {} tokens, ≈ {} at {:.0} tokens/s (median of {} cached runs of the study{})",
            plural(n, "run", "runs"),
            human(e.tokens),
            duration(s),
            e.rate.unwrap_or(0.0),
            e.basis,
            if e.waiting > 0 { "; runs waiting on a winner are estimated from the winners known so far" } else { "" }
        ),
        (n, None) => format!(
            "to train: {}, ≈ {} tokens (no cached runs yet to estimate the time from)",
            plural(n, "run", "runs"),
            human(e.tokens)
        ),
    };
    let _ = writeln!(out, "{cost}");
    if let Some(b) = e.budget {
        let _ = writeln!(out, "{}", budget_line(&b, e));
    }
    let width = all.iter().map(|c| c.variant.len()).max().unwrap_or(8).clamp(8, 60);
    // Once, not per phase: a long chain of phases stays linear.
    let not_done: std::collections::HashSet<&str> =
        results.phases.iter().filter(|q| q.status != PhaseStatus::Done).map(|q| q.name.as_str()).collect();
    for p in &results.phases {
        let after = if p.after.is_empty() { String::new() } else { format!(" after {}", p.after.join(", ")) };
        let state = match (p.status, p.winner()) {
            (PhaseStatus::Done, Some(w)) => format!(
                "winner {} ({} {}){}",
                w.variant,
                p.metric,
                w.objective.map_or("-".into(), |o| format!("{o:.4}")),
                if p.under_budget() { ", chosen under the budget" } else { "" }
            ),
            (PhaseStatus::Waiting, _) => {
                let needs = plan.phase(&p.name).map(|ph| ph.needs.as_slice()).unwrap_or_default();
                let missing: Vec<String> =
                    needs.iter().filter(|n| not_done.contains(n.as_str())).map(|n| format!("`{n}`")).collect();
                if missing.is_empty() {
                    // Under a budget a phase waits for every phase listed before it.
                    "waiting for the phases before it (a budget takes runs in listed order)".to_owned()
                } else {
                    format!("waiting on the winner of {}", missing.join(", "))
                }
            }
            (PhaseStatus::Failed, _) => format!("failed: {}", p.message.clone().unwrap_or_default()),
            (PhaseStatus::Blocked, _) => format!("blocked: {}", p.message.clone().unwrap_or_default()),
            (PhaseStatus::Skipped, _) => format!("skipped by the budget: {}", p.message.clone().unwrap_or_default()),
            _ => "ready to train".to_owned(),
        };
        let _ = writeln!(
            out,
            "\nphase {}{after}: {}, {state}",
            p.name,
            plural(p.candidates.len(), "candidate", "candidates")
        );
        for c in &p.candidates {
            line(&mut out, c, p.winner().is_some_and(|w| std::ptr::eq(w, c)), width);
        }
    }
    match (&results.final_run, results.final_status) {
        (Some(f), Some(PhaseStatus::Waiting)) => {
            let _ = writeln!(out, "\nfinal: waiting on the phases' winners");
            line(&mut out, f, false, width);
        }
        (Some(f), _) => {
            let _ = writeln!(out, "\nfinal:");
            line(&mut out, f, false, width);
        }
        (None, Some(_)) => {
            let _ = writeln!(out, "\nfinal: blocked: a phase it needs failed");
        }
        (None, None) => {}
    }
    out
}

/// What fits in the study's budget: exactly, for `max_runs`; an estimate, for `time`.
fn budget_line(b: &StudyBudget, e: &Estimate) -> String {
    let mut parts = Vec::new();
    if let Some(m) = b.max_runs {
        let fits = if e.skipped == 0 {
            "every run fits".to_owned()
        } else {
            format!("{} skipped", plural(e.skipped, "run", "runs"))
        };
        parts.push(format!("at most {} (cached ones count): {fits}", plural(m, "run", "runs")));
    }
    if let Some(t) = b.time {
        let fit = match e.expected_to_fit {
            _ if e.runs_left() == 0 => "nothing left to train".to_owned(),
            Some(n) => format!(
                "{n} of the {} left to train expected to fit (an estimate)",
                plural(e.runs_left(), "run", "runs")
            ),
            None => "no cached runs yet to estimate what fits from".to_owned(),
        };
        parts.push(format!(
            "{} of training, {} recorded by cached runs: {fit}",
            crate::spec::value::fmt_duration(t),
            crate::spec::value::human_duration(e.time_spent)
        ));
        if e.skipped > 0 && b.max_runs.is_none() {
            parts.push(format!("{} skipped", plural(e.skipped, "run", "runs")));
        }
    }
    format!("budget: {}", parts.join("; "))
}

fn line(out: &mut String, c: &CandidateResult, winner: bool, width: usize) {
    let mark = if winner { "*" } else { " " };
    let detail = match (c.objective, &c.reason, c.key()) {
        (Some(o), _, _) => format!("{o:.4}"),
        (None, Some(r), _) if c.status == CandidateStatus::Failed => r.clone(),
        (None, _, Some(k)) => k.short(),
        _ => String::new(),
    };
    let _ = writeln!(out, " {mark} {:width$}  {:<8}  {detail}", c.variant, status_word(c));
}
