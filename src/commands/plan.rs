//! `lrx plan FILE [--json]`: per phase, which candidates are cached, which will train and which
//! wait on a winner (with the cached winner where known), and what the rest will cost.

use std::fmt::Write as _;

use serde_json::json;

use crate::cli::{GlobalArgs, PlanArgs};
use crate::exec::results::{CandidateResult, CandidateStatus, PhaseStatus, StudyResults};
use crate::plan::Plan;
use crate::plan::report::human;
use crate::spec::{Budget, RunConfig};

use super::Exit;
use super::load::print_data;
use super::study::Study;

pub(crate) fn run(args: &PlanArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    let Some(study) = Study::open(&args.file, &args.device, g)? else { return Ok(Exit::Failure) };
    let results = study.dry()?;
    let estimate = Estimate::new(&study.plan, &results);
    if args.json {
        let mut j = results.to_json();
        j["estimate"] = json!({
            "runs_to_train": estimate.runs,
            "tokens_to_train": estimate.tokens,
            "tokens_per_sec": estimate.rate,
            "seconds": estimate.seconds(),
            "based_on_runs": estimate.basis,
        });
        print_data(&format!("{}\n", serde_json::to_string_pretty(&j)?))?;
    } else {
        print_data(&text(&study.plan, &results, &estimate))?;
    }
    Ok(Exit::Success)
}

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

/// What is left to train and how long it should take, from the cached runs' throughput.
struct Estimate {
    runs: usize,
    tokens: u64,
    /// Tokens per second measured on cached runs of the same shape (or any shape).
    rate: Option<f64>,
    basis: usize,
}

impl Estimate {
    fn new(plan: &Plan, results: &StudyResults) -> Estimate {
        let cached: Vec<&CandidateResult> = results.all_candidates().filter(|c| c.cached()).collect();
        let to_train: Vec<&CandidateResult> = results.all_candidates().filter(|c| matches!(c.status, CandidateStatus::ToRun | CandidateStatus::Cancelled)).collect();
        let mut runs = 0;
        let mut tokens_sum = 0;
        for c in &to_train {
            let n = c.repeats.iter().filter(|r| !r.cached).count();
            runs += n;
            tokens_sum += c.config.as_ref().map_or(0, tokens) * n as u64;
        }
        // Candidates waiting on a winner: as many runs as the phase has, each like the root.
        let root_tokens = tokens(&plan.root_config());
        for p in results.phases.iter().filter(|p| p.status == PhaseStatus::Waiting) {
            let per = plan.phase(&p.name).map_or(1, |ph| ph.repeats as usize);
            runs += p.candidates.len() * per;
            tokens_sum += root_tokens * (p.candidates.len() * per) as u64;
        }
        if matches!(results.final_status, Some(PhaseStatus::Waiting)) {
            let per = plan.final_run.as_ref().map_or(1, |f| f.repeats as usize);
            runs += per;
            tokens_sum += root_tokens * per as u64;
        }
        let rates = |pred: &dyn Fn(&&CandidateResult) -> bool| -> Vec<f64> { cached.iter().filter(|c| pred(c)).filter_map(|c| c.tokens_per_sec()).filter(|r| *r > 0.0).collect() };
        let root_shape = shape(&plan.root_config());
        let same = rates(&|c| c.config.as_ref().is_some_and(|cfg| shape(cfg) == root_shape));
        let any = rates(&|_| true);
        let pick = if same.is_empty() { any } else { same };
        Estimate { runs, tokens: tokens_sum, rate: median(&pick), basis: pick.len() }
    }

    fn seconds(&self) -> Option<f64> {
        self.rate.map(|r| self.tokens as f64 / r)
    }
}

fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
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
        CandidateStatus::Waiting => "waiting",
        CandidateStatus::ToRun | CandidateStatus::Cancelled => "to train",
        CandidateStatus::Failed => "failed",
        CandidateStatus::Ok | CandidateStatus::Diverged | CandidateStatus::Pruned => "partly cached",
    }
}

fn text(plan: &Plan, results: &StudyResults, estimate: &Estimate) -> String {
    let all: Vec<&CandidateResult> = results.all_candidates().collect();
    let cached = all.iter().filter(|c| c.cached()).count();
    let waiting = all.iter().filter(|c| c.status == CandidateStatus::Waiting).count();
    let mut out = format!(
        "study `{}`: {} phases, {} candidates: {cached} cached, {} to train, {waiting} waiting on a winner\n",
        results.study,
        results.phases.len(),
        all.len(),
        all.len() - cached - waiting
    );
    let cost = match (estimate.runs, estimate.seconds()) {
        (0, _) => "nothing to train: every run is cached".to_owned(),
        (n, Some(s)) => format!(
            "to train: {n} runs, ≈ {} tokens, ≈ {} at {:.0} tokens/s (median of {} cached runs{})",
            human(estimate.tokens),
            duration(s),
            estimate.rate.unwrap_or(0.0),
            estimate.basis,
            if waiting > 0 { "; runs waiting on a winner are estimated like the root config" } else { "" }
        ),
        (n, None) => format!("to train: {n} runs, ≈ {} tokens (no cached runs yet to estimate the time from)", human(estimate.tokens)),
    };
    let _ = writeln!(out, "{cost}");
    let width = all.iter().map(|c| c.variant.len()).max().unwrap_or(8).clamp(8, 60);
    for p in &results.phases {
        let after = if p.after.is_empty() { String::new() } else { format!(" after {}", p.after.join(", ")) };
        let state = match (p.status, p.winner()) {
            (PhaseStatus::Done, Some(w)) => format!("winner {} ({} {})", w.variant, p.metric, w.objective.map_or("-".into(), |o| format!("{o:.4}"))),
            (PhaseStatus::Waiting, _) => {
                let needs = plan.phase(&p.name).map(|ph| ph.needs.clone()).unwrap_or_default();
                let missing: Vec<String> = needs
                    .iter()
                    .filter(|n| results.phases.iter().any(|q| &q.name == *n && q.status != PhaseStatus::Done))
                    .map(|n| format!("`{n}`"))
                    .collect();
                format!("waiting on the winner of {}", missing.join(", "))
            }
            (PhaseStatus::Failed, _) => format!("failed: {}", p.message.clone().unwrap_or_default()),
            (PhaseStatus::Blocked, _) => format!("blocked: {}", p.message.clone().unwrap_or_default()),
            _ => "ready to train".to_owned(),
        };
        let _ = writeln!(out, "\nphase {}{after}: {} candidates, {state}", p.name, p.candidates.len());
        for c in &p.candidates {
            line(&mut out, c, p.winner().is_some_and(|w| std::ptr::eq(w, c)), width);
        }
    }
    if let Some(f) = &results.final_run {
        let _ = writeln!(out, "\nfinal:");
        line(&mut out, f, false, width);
    } else if let Some(s) = results.final_status {
        let _ = writeln!(out, "\nfinal: {}", if s == PhaseStatus::Waiting { "waiting on the phases' winners" } else { "blocked" });
    }
    out
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
