//! Aggregating a candidate's repeats and picking a phase's winner by the objective.
//!
//! Rules (`docs/language.md`, "Winner"): the objective is the mean over repeats; ties go to the
//! earlier-listed candidate; a failed, diverged or pruned candidate never wins.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::spec::{RunResult, Status};

pub use crate::spec::Goal;

/// A candidate's repeats summarized.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Aggregate {
    /// `ok` only when every repeat is ok; otherwise the worst status among them.
    pub status: Status,
    /// Mean of the objective over repeats (absent when not every repeat has it).
    pub objective: Option<f64>,
    pub metrics: BTreeMap<String, f64>,
    /// Standard deviations over repeats (only with more than one repeat).
    pub metrics_std: BTreeMap<String, f64>,
    /// Why the candidate cannot win, when it cannot.
    pub reason: Option<String>,
}

fn severity(s: Status) -> u8 {
    match s {
        Status::Ok => 0,
        Status::Pruned => 1,
        Status::Diverged => 2,
        Status::Failed => 3,
    }
}

/// Summarizes the results of one candidate's repeats.
pub fn aggregate(results: &[&RunResult], metric: &str) -> Aggregate {
    let status = results.iter().map(|r| r.status).max_by_key(|s| severity(*s)).unwrap_or(Status::Failed);
    let mut names: Vec<&String> = results.iter().flat_map(|r| r.metrics.keys()).collect();
    names.sort();
    names.dedup();
    let mut metrics = BTreeMap::new();
    let mut metrics_std = BTreeMap::new();
    for name in names {
        let xs: Vec<f64> = results.iter().filter_map(|r| r.metrics.get(name).copied()).collect();
        if xs.len() != results.len() {
            continue;
        }
        let (mean, std) = mean_std(&xs);
        metrics.insert(name.clone(), mean);
        if xs.len() > 1 {
            metrics_std.insert(name.clone(), std);
        }
    }
    let objective = metrics.get(metric).copied().filter(|x| x.is_finite());
    let reason = match status {
        Status::Ok if objective.is_none() => Some(format!("no finite `{metric}` in its results")),
        Status::Ok => None,
        Status::Failed => Some(results.iter().find_map(|r| r.error.clone()).unwrap_or_else(|| "failed".into())),
        Status::Diverged => Some(match results.iter().find_map(|r| r.diverged_at) {
            Some(step) => format!("diverged at step {step}"),
            None => "diverged".into(),
        }),
        Status::Pruned => Some("pruned".into()),
    };
    Aggregate { status, objective, metrics, metrics_std, reason }
}

/// Mean and sample standard deviation.
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 { xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// The index of the winning candidate, or `None` when none can win.
pub fn pick_winner(candidates: &[Aggregate], goal: Goal) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, c) in candidates.iter().enumerate() {
        let (Status::Ok, Some(x)) = (c.status, c.objective) else { continue };
        if best.is_none_or(|(_, b)| goal.better(x, b)) {
            best = Some((i, x));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(status: Status, val_loss: f64) -> RunResult {
        let mut r = RunResult::failed("boom");
        r.status = status;
        if status != Status::Failed {
            r.error = None;
        }
        r.metrics.insert("val_loss".into(), val_loss);
        r
    }

    fn agg(status: Status, v: f64) -> Aggregate {
        aggregate(&[&run(status, v)], "val_loss")
    }

    #[test]
    fn ties_go_to_the_earlier_candidate() {
        let c = [agg(Status::Ok, 2.0), agg(Status::Ok, 1.5), agg(Status::Ok, 1.5)];
        assert_eq!(pick_winner(&c, Goal::Minimize), Some(1));
        assert_eq!(pick_winner(&c, Goal::Maximize), Some(0));
    }

    #[test]
    fn failed_and_diverged_never_win() {
        let c = [agg(Status::Diverged, 0.1), agg(Status::Failed, 0.0), agg(Status::Ok, 3.0)];
        assert_eq!(pick_winner(&c, Goal::Minimize), Some(2));
        let none = [agg(Status::Diverged, 0.1), agg(Status::Failed, 0.0)];
        assert_eq!(pick_winner(&none, Goal::Minimize), None);
    }

    #[test]
    fn repeats_are_averaged_and_one_bad_repeat_spoils_the_candidate() {
        let a = run(Status::Ok, 1.0);
        let b = run(Status::Ok, 2.0);
        let g = aggregate(&[&a, &b], "val_loss");
        assert_eq!(g.objective, Some(1.5));
        assert!((g.metrics_std["val_loss"] - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-12);
        let c = run(Status::Diverged, 0.5);
        assert_eq!(aggregate(&[&a, &c], "val_loss").status, Status::Diverged);
    }

    #[test]
    fn a_nan_objective_cannot_win() {
        let c = [agg(Status::Ok, f64::NAN), agg(Status::Ok, 9.0)];
        assert_eq!(pick_winner(&c, Goal::Minimize), Some(1));
        assert!(c[0].reason.as_deref().unwrap().contains("val_loss"));
    }
}
