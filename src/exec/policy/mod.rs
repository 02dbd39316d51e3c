//! How a phase decides, once its candidates' results are in: one policy per way of choosing.
//! The scheduler settles a phase by asking [`decide`] and carrying the [`Decision`] out; it
//! knows no phase kind itself. A new way of choosing is a new file here.
//!
//! - [`halving`]: successive halving promotes the best fraction to the next rung;
//! - [`range_test`]: an LR range test's winner is a value read off its one run's loss curve;
//! - [`sweep`]: every other phase (and the last rung of a halving one) picks its best candidate.

mod halving;
mod range_test;
mod sweep;

pub use range_test::curve as range_curve;

use std::collections::BTreeSet;

use super::select::Aggregate;
use crate::plan::{Phase, PhaseKind};
use crate::spec::{HistoryRow, Value};

/// What a phase's policy decided.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Train `survivors` (candidate indices) on to the next rung, stopping at `stop_at` (the
    /// budget when `None`); the other live candidates are pruned.
    Promote { survivors: BTreeSet<usize>, stop_at: Option<u64> },
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

/// The decision of `phase`'s policy on `outcomes`.
pub fn decide(phase: &Phase, outcomes: &Outcomes<'_>) -> Decision {
    if let Some(promote) = halving::promote(phase, outcomes) {
        return promote;
    }
    match &phase.kind {
        PhaseKind::Find { key, from, pick, stop, .. } => range_test::decide(key, *from, *pick, *stop, outcomes),
        PhaseKind::Sweep => sweep::decide(phase, outcomes),
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
