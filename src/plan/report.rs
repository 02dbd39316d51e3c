//! What `lrx plan` shows: per phase, its candidates with their resolved changes (or the
//! winner they wait on), run counts and a cost estimate, as text or as the JSON of `plan --json`.
//!
//! The cache is not consulted here: a candidate that can be resolved is `to_run`. The engine
//! fills in `key`, `cached` and a finer `status` per candidate.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::spec::config::{Budget, RunConfig};
use crate::spec::value::Value;

use super::expand::Item;
use super::{Changes, FinalSource, Plan};

#[derive(Clone, Debug, Serialize)]
pub struct PlanReport {
    pub study: String,
    pub runs: RunCounts,
    pub phases: Vec<PhaseReport>,
    #[serde(rename = "final", skip_serializing_if = "Option::is_none")]
    pub final_run: Option<CandidateReport>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RunCounts {
    pub total: usize,
    pub to_run: usize,
    pub cached: usize,
    pub waiting: usize,
    /// Estimated training tokens of the runs to do (those waiting included, estimated from
    /// the phase's baseline).
    pub tokens: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct PhaseReport {
    pub name: String,
    pub after: Vec<String>,
    /// `ready` (every winner it needs is known) or `waiting`.
    pub status: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting_on: Vec<String>,
    pub objective: String,
    pub repeats: u32,
    pub candidates: Vec<CandidateReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CandidateReport {
    pub variant: String,
    /// Changed keys: values where known, the expression as written where it waits on a winner.
    pub changes: serde_json::Map<String, serde_json::Value>,
    /// `to_run`, `waiting` or `invalid` here; the engine adds `cached`, `ok`, ...
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
    pub runs: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A value as JSON: numbers and booleans as such, words, durations and constructor calls as
/// their canonical text, tuples and lists as arrays.
pub fn value_to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(x) => serde_json::Number::from_f64(*x)
            .map_or_else(|| serde_json::Value::String(v.to_string()), serde_json::Value::Number),
        Value::Str(s) => serde_json::Value::String(s.clone()),
        Value::Tuple(items) | Value::List(items) => serde_json::Value::Array(items.iter().map(value_to_json).collect()),
        Value::Word(_) | Value::Duration(_) | Value::Call(_) => serde_json::Value::String(v.to_string()),
    }
}

fn changes_json(changes: &[(String, Value)]) -> serde_json::Map<String, serde_json::Value> {
    changes.iter().map(|(k, v)| (k.clone(), value_to_json(v))).collect()
}

fn tokens(config: &RunConfig) -> u64 {
    match config.train.budget {
        Budget::Tokens(t) => t,
        _ => config.total_steps().unwrap_or(0) * (config.train.batch_size * config.model.seq_len) as u64,
    }
}

/// The plan of a study, given the winners already known (none for a fresh study).
pub fn build(plan: &Plan, winners: &BTreeMap<String, Changes>) -> PlanReport {
    let mut runs = RunCounts::default();
    let mut phases = Vec::new();
    for p in &plan.phases {
        let waiting_on: Vec<String> = p.needs.iter().filter(|n| !winners.contains_key(*n)).cloned().collect();
        let mut candidates = Vec::new();
        let estimate = super::compile::baseline_config(plan, p, winners).map_or(0, |c| tokens(&c));
        if waiting_on.is_empty() {
            match plan.resolve_phase(&p.name, winners) {
                Ok(list) => {
                    for c in list {
                        candidates.push(match c {
                            Ok(c) => {
                                runs.to_run += c.seeds.len();
                                runs.tokens += tokens(&c.config) * c.seeds.len() as u64;
                                CandidateReport {
                                    variant: c.variant,
                                    changes: changes_json(&c.changes),
                                    status: "to_run".into(),
                                    key: None,
                                    cached: None,
                                    runs: c.seeds.len(),
                                    steps: c.config.total_steps(),
                                    error: None,
                                }
                            }
                            Err(e) => invalid(e.variant, e.message),
                        });
                    }
                }
                Err(e) => candidates.push(invalid("baseline".into(), e.to_string())),
            }
        } else {
            for (variant, changes) in super::compile::preview(plan, p, winners) {
                let changes = changes
                    .into_iter()
                    .map(|(k, i)| match i {
                        Item::Known(v) => (k, value_to_json(&v)),
                        Item::Symbolic(s) => (k, serde_json::Value::String(s)),
                    })
                    .collect();
                runs.waiting += p.repeats as usize;
                runs.tokens += estimate * u64::from(p.repeats);
                candidates.push(CandidateReport {
                    variant,
                    changes,
                    status: "waiting".into(),
                    key: None,
                    cached: None,
                    runs: p.repeats as usize,
                    steps: None,
                    error: None,
                });
            }
        }
        phases.push(PhaseReport {
            name: p.name.clone(),
            after: p.after.clone(),
            status: if waiting_on.is_empty() { "ready" } else { "waiting" }.into(),
            waiting_on,
            objective: format!("{} {}", p.objective.goal.name(), p.objective.metric),
            repeats: p.repeats,
            candidates,
        });
    }
    let final_run = plan.final_run.as_ref().map(|f| {
        let variant = if matches!(f.source, FinalSource::Combine(_)) { "combined" } else { "winner" };
        match plan.resolve_final(winners) {
            Ok(c) => {
                runs.to_run += c.seeds.len();
                runs.tokens += tokens(&c.config) * c.seeds.len() as u64;
                CandidateReport {
                    variant: c.variant,
                    changes: changes_json(&c.changes),
                    status: "to_run".into(),
                    key: None,
                    cached: None,
                    runs: c.seeds.len(),
                    steps: c.config.total_steps(),
                    error: None,
                }
            }
            Err(super::ResolveError::Waiting { .. }) => {
                runs.waiting += f.repeats as usize;
                runs.tokens += tokens(&plan.root) * u64::from(f.repeats);
                CandidateReport {
                    variant: variant.into(),
                    changes: serde_json::Map::new(),
                    status: "waiting".into(),
                    key: None,
                    cached: None,
                    runs: f.repeats as usize,
                    steps: None,
                    error: None,
                }
            }
            Err(e) => invalid(variant.into(), e.to_string()),
        }
    });
    runs.total = runs.to_run + runs.cached + runs.waiting;
    PlanReport { study: plan.name.clone(), runs, phases, final_run }
}

fn invalid(variant: String, message: String) -> CandidateReport {
    CandidateReport {
        variant,
        changes: serde_json::Map::new(),
        status: "invalid".into(),
        key: None,
        cached: None,
        runs: 0,
        steps: None,
        error: Some(message),
    }
}

/// `12.3M`, `450k`, `900`.
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

/// The plan as text: a summary line, then each phase and its candidates.
pub fn text(plan: &Plan, report: &PlanReport) -> String {
    let r = &report.runs;
    let candidates: usize = report.phases.iter().map(|p| p.candidates.len()).sum();
    let mut out = format!(
        "study `{}`: {} phase{}, {candidates} candidates, {} runs ({} to run, {} waiting on a winner), ≈ {} training tokens\n",
        report.study,
        report.phases.len(),
        if report.phases.len() == 1 { "" } else { "s" },
        r.total,
        r.to_run,
        r.waiting,
        human(r.tokens)
    );
    let width =
        report.phases.iter().flat_map(|p| p.candidates.iter().map(|c| c.variant.len())).max().unwrap_or(8).clamp(8, 60);
    for p in &report.phases {
        let after = if p.after.is_empty() { String::new() } else { format!(" after {}", p.after.join(", ")) };
        let state = if p.waiting_on.is_empty() {
            "ready".to_owned()
        } else {
            format!("waiting on {}", p.waiting_on.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", "))
        };
        let repeats = if p.repeats > 1 { format!(" × {} repeats", p.repeats) } else { String::new() };
        let _ = writeln!(
            out,
            "\nphase {}{after}: {} candidate{}{repeats}, {state}",
            p.name,
            p.candidates.len(),
            if p.candidates.len() == 1 { "" } else { "s" }
        );
        for c in &p.candidates {
            candidate_line(&mut out, c, width);
        }
    }
    if let (Some(f), Some(c)) = (&plan.final_run, &report.final_run) {
        let from = match &f.source {
            FinalSource::Combine(list) => format!("combine({})", list.join(", ")),
            FinalSource::After(p) => format!("after {p}"),
        };
        let repeats = if f.repeats > 1 { format!(" × {} repeats", f.repeats) } else { String::new() };
        let _ = writeln!(out, "\nfinal {from}{repeats}");
        candidate_line(&mut out, c, width);
    }
    out
}

fn candidate_line(out: &mut String, c: &CandidateReport, width: usize) {
    let detail = match (&c.error, c.steps) {
        (Some(e), _) => format!("  {e}"),
        (None, Some(s)) => format!("  {s} steps"),
        _ => String::new(),
    };
    let _ = writeln!(out, "  {:width$}  {}{detail}", c.variant, c.status.replace('_', " "));
}
