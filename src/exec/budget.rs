//! A study's budget (`budget { max_runs = N  time = D }`) as the scheduler enforces it: one
//! admission check per run, asked in the study's listed order, and the order itself.
//!
//! Runs ask in listed order because, under a budget, a block's runs start only once every block
//! before it (the plan's order: phases, then the final run) has settled (`Order::ready`): which
//! runs are in then never depends on which run finished first. `max_runs` counts distinct runs,
//! cached ones included, so the runs a study has are a function of its text. `time` adds up the
//! runs' recorded training times (a cached run keeps its own): a run the cache holds is always
//! in (it costs nothing now), and a run that must train starts only while the times known by
//! then are under the budget; runs in flight when it is spent finish and are kept (and, being
//! cached, are in on every later run).

use std::collections::{BTreeSet, HashMap};

use petgraph::graph::NodeIndex;

use crate::cache::RunKey;
use crate::plan::{Plan, StudyBudget};

/// Which runs are in, and what they have spent.
#[derive(Default)]
pub(super) struct Admission {
    budget: Option<StudyBudget>,
    /// Distinct runs that are in.
    admitted: BTreeSet<RunKey>,
    skipped: BTreeSet<RunKey>,
    /// Recorded training seconds of the runs in whose time is known.
    spent: f64,
}

impl Admission {
    pub(super) fn new(budget: Option<StudyBudget>) -> Admission {
        Admission { budget, ..Admission::default() }
    }

    /// Whether the study has a budget (blocks then start in turn).
    pub(super) fn limited(&self) -> bool {
        self.budget.is_some()
    }

    fn time_spent(&self) -> bool {
        self.budget.and_then(|b| b.time).is_some_and(|t| self.spent >= t)
    }

    /// The next run in listed order asks to be in; `recorded` is its recorded training time
    /// when the cache holds it. A run asking again gets the same answer.
    pub(super) fn admit(&mut self, key: RunKey, recorded: Option<f64>) -> bool {
        if self.admitted.contains(&key) {
            return true;
        }
        if self.skipped.contains(&key) {
            return false;
        }
        let counted_out = self.budget.and_then(|b| b.max_runs).is_some_and(|m| self.admitted.len() >= m);
        if counted_out || (recorded.is_none() && self.time_spent()) {
            self.skipped.insert(key);
            return false;
        }
        self.admitted.insert(key);
        self.spent += recorded.unwrap_or(0.0);
        true
    }

    /// A run that must train is about to start: `false` (and it is skipped, leaving its place
    /// to none) when the training time is spent by now.
    pub(super) fn may_start(&mut self, key: RunKey) -> bool {
        if !self.time_spent() {
            return true;
        }
        self.admitted.remove(&key);
        self.skipped.insert(key);
        false
    }

    /// A run that was in finished (trained, or found in the cache when it came to train).
    pub(super) fn finished(&mut self, seconds: f64) {
        if seconds.is_finite() && seconds > 0.0 {
            self.spent += seconds;
        }
    }

    pub(super) fn is_admitted(&self, key: RunKey) -> bool {
        self.admitted.contains(&key)
    }

    pub(super) fn is_skipped(&self, key: RunKey) -> bool {
        self.skipped.contains(&key)
    }

    /// Runs still in for `max_runs` (`None`: no such limit).
    pub(super) fn runs_left(&self) -> Option<usize> {
        self.budget.and_then(|b| b.max_runs).map(|m| m.saturating_sub(self.admitted.len()))
    }
}

/// The blocks in listed order, and how far they have settled: under a budget, a block's runs
/// start only once every block before it has settled.
pub(super) struct Order {
    /// Each block's runs node and selection node, phases in the plan's order, then the final run.
    blocks: Vec<(NodeIndex, NodeIndex)>,
    /// Position of each block's runs node in `blocks`.
    position: HashMap<NodeIndex, usize>,
    /// Blocks before this one have all settled (never decreases).
    settled: usize,
}

impl Order {
    pub(super) fn new(plan: &Plan) -> Order {
        let blocks: Vec<(NodeIndex, NodeIndex)> = plan
            .phases
            .iter()
            .map(|p| crate::plan::Block::Phase(p.name.clone()))
            .chain(plan.final_run.iter().map(|_| crate::plan::Block::Final))
            .filter_map(|b| plan.graph.blocks.get(&b).copied())
            .collect();
        let position = blocks.iter().enumerate().map(|(i, &(runs, _))| (runs, i)).collect();
        Order { blocks, position, settled: 0 }
    }

    /// Moves past the blocks whose selection has settled (`done` says which have).
    pub(super) fn advance(&mut self, done: impl Fn(NodeIndex) -> bool) {
        while self.settled < self.blocks.len() && done(self.blocks[self.settled].1) {
            self.settled += 1;
        }
    }

    /// Whether the runs node `runs` may start: every block before it has settled.
    pub(super) fn ready(&self, runs: NodeIndex) -> bool {
        self.position.get(&runs).is_none_or(|&i| i <= self.settled)
    }

    /// The selection node of the first block that has not settled, if any.
    pub(super) fn first_open(&self) -> Option<NodeIndex> {
        self.blocks.get(self.settled).map(|b| b.1)
    }
}
