//! How a selection node of the study graph decides, once its block's results are in: one
//! policy ([`plan::Policy`](crate::plan::Policy), carried by the node) per way of choosing.
//! The scheduler settles a node by asking [`decide`] and carrying the [`Decision`] out; it
//! knows no phase kind itself. A new way of choosing is a variant of `plan::Policy` and a new
//! file here.
//!
//! - [`halving`]: successive halving promotes the best fraction to the next rung;
//! - [`range_test`]: an LR range test's winner is a value read off its one run's loss curve;
//! - [`sweep`]: every other phase (and the last rung of a halving one) picks its best candidate;
//! - [`final_run`]: the final run is done when its run finished well.

mod final_run;
mod halving;
mod range_test;
mod sweep;

pub use range_test::curve as range_curve;

use std::collections::BTreeSet;

use super::select::Aggregate;
use crate::plan::Policy;
use crate::spec::{Goal, HistoryRow, Stop, Value};

/// What a phase's policy decided.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Train `survivors` (candidate indices) on to the next rung, stopping at `stop_at` (the
    /// budget when `None`); the other live candidates are pruned.
    Promote { survivors: BTreeSet<usize>, stop_at: Option<Stop> },
    /// The phase is done: candidate `index` wins, or the value `found` does (its change is the
    /// phase's winning change).
    Winner { index: usize, found: Option<(String, Value)> },
    /// No candidate can win; the message says why.
    Fail(String),
}

/// What a policy sees of a phase whose candidates all have results.
pub struct Outcomes<'a> {
    /// Each candidate's aggregate over its repeats (a pruned one's marked pruned).
    pub aggs: &'a [Aggregate],
    /// Candidates eliminated at an earlier rung.
    pub pruned: &'a [bool],
    /// The first candidate's first run's history (what a range test reads).
    pub first_history: &'a [HistoryRow],
    /// The step budget of the phase's runs, where it is a step count.
    pub budget: Option<u64>,
    /// The rung just finished (0 for phases that do not prune by halving).
    pub rung: usize,
}

/// The decision of `policy` on `outcomes`, for an objective to reach by `goal`.
pub fn decide(policy: &Policy, goal: Goal, outcomes: &Outcomes<'_>) -> Decision {
    match policy {
        Policy::Sweep => sweep::decide(goal, outcomes),
        Policy::Halving { rungs, keep, cooldown } => {
            halving::promote(rungs, *keep, *cooldown, goal, outcomes).unwrap_or_else(|| sweep::decide(goal, outcomes))
        }
        Policy::RangeTest { key, from, pick, stop, .. } => range_test::decide(key, *from, *pick, *stop, outcomes),
        Policy::Combine(_) | Policy::After(_) => final_run::decide(outcomes),
    }
}

/// The step a block's first runs stop at (`None`: their whole budget).
pub fn first_stop(policy: &Policy) -> Option<Stop> {
    match policy {
        Policy::Halving { rungs, cooldown, .. } => halving::first_stop(rungs, *cooldown),
        _ => None,
    }
}

/// Runs per seed that `policy` will still ask for after round `rung`, `live` candidates
/// alive in it: the total of a study's runs stays put as it advances.
pub fn runs_to_come(policy: &Policy, live: usize, rung: usize) -> usize {
    match policy {
        Policy::Halving { rungs, keep, .. } => halving::later_rungs(rungs, *keep, live, rung),
        _ => 0,
    }
}

/// Candidate indices that may still win: not pruned, finished ok, with an objective.
fn contenders(outcomes: &Outcomes<'_>) -> Vec<usize> {
    (0..outcomes.aggs.len())
        .filter(|&j| {
            !outcomes.pruned[j]
                && outcomes.aggs[j].status == crate::spec::Status::Ok
                && outcomes.aggs[j].objective.is_some()
        })
        .collect()
}
