//! The checked form of a study: every key resolved against the schema, phases linked by index
//! and ordered, options typed. The planner compiles this; it never sees unchecked text.

use fixedbitset::FixedBitSet;

use super::ast::{Expr, Goal, Span};
use super::eval::Target;

/// A checked study.
#[derive(Clone, Debug)]
pub struct Study {
    /// `model {}`, `data {}` and `train {}` assignments, in source order.
    pub root: Vec<Binding>,
    /// Block options set in `train {}`: defaults for every phase and the final run.
    pub options: Options,
    /// The top-level objective (`minimize val_loss` when not written).
    pub objective: ObjectiveDef,
    /// Phases in source order.
    pub phases: Vec<PhaseDef>,
    /// Indices into `phases`, topologically sorted, ties in source order.
    pub order: Vec<usize>,
    /// Every phase each phase comes after, directly or not.
    pub ancestry: Ancestry,
    pub final_run: Option<FinalDef>,
    /// `budget {}`: how much of the study may run.
    pub budget: Option<BudgetDef>,
}

/// `budget { max_runs = 30  time = 2.5h }`, checked: each limit where it is set.
#[derive(Clone, Debug, PartialEq)]
pub struct BudgetDef {
    pub max_runs: Option<Opt<u64>>,
    /// Seconds of training.
    pub time: Option<Opt<f64>>,
    pub span: Span,
}

/// `key = value`, checked.
#[derive(Clone, Debug)]
pub struct Binding {
    pub target: Target,
    pub value: Expr,
    /// The whole statement.
    pub span: Span,
    pub key_span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ObjectiveDef {
    pub goal: Goal,
    pub metric: String,
    pub span: Option<Span>,
}

/// How a phase's runs may be stopped early.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Prune {
    /// Stop a run at a non-finite loss or one far above its start (the default).
    Diverged,
    /// Never stop a run early: divergence is recorded but training goes on.
    None,
    /// Successive halving: all candidates train to `rungs[0]` steps, the best `keep` go on;
    /// `cooldown` says whether a rung before a late decay is measured on a cooldown branch.
    Halving { rungs: Vec<u64>, keep: f64, cooldown: crate::spec::CooldownRule },
}

/// A block option with where it was set.
#[derive(Clone, Debug, PartialEq)]
pub struct Opt<T> {
    pub value: T,
    pub span: Span,
}

/// Options of a block; `None` where the block does not set them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options {
    pub repeats: Option<Opt<u32>>,
    pub seeds: Option<Opt<Vec<u64>>>,
    pub baseline: Option<Opt<bool>>,
    pub prune: Option<Opt<Prune>>,
}

impl Options {
    /// These options, with `fallback`'s where these are unset.
    #[must_use]
    pub fn or(&self, fallback: &Options) -> Options {
        Options {
            repeats: self.repeats.clone().or_else(|| fallback.repeats.clone()),
            seeds: self.seeds.clone().or_else(|| fallback.seeds.clone()),
            baseline: self.baseline.clone().or_else(|| fallback.baseline.clone()),
            prune: self.prune.clone().or_else(|| fallback.prune.clone()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepKind {
    /// One variant per value, every other key at the incoming config.
    Vary,
    /// The Cartesian product of the clauses.
    Grid,
    /// The clauses' lists paired up.
    Zip,
}

/// `KEY in VALUES`.
#[derive(Clone, Debug)]
pub struct SweepClause {
    pub target: Target,
    pub values: Expr,
    pub span: Span,
    pub key_span: Span,
}

#[derive(Clone, Debug)]
pub struct Sweep {
    pub kind: SweepKind,
    pub clauses: Vec<SweepClause>,
    pub span: Span,
}

/// `find KEY from A to B (steps = N, pick = min / D, stop = K)`.
#[derive(Clone, Debug, PartialEq)]
pub struct FindDef {
    pub target: Target,
    pub from: f64,
    pub to: f64,
    pub steps: u64,
    pub pick: Pick,
    /// The test ends where the loss exceeds this many times its minimum.
    pub stop: f64,
    pub span: Span,
}

/// How a range test reads its pick off the loss curve.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pick {
    /// `pick = min / D`: the learning rate at the lowest (smoothed) loss, divided by `D`.
    Min { divisor: f64 },
    /// `pick = steepest`: where the smoothed loss falls fastest against log(lr).
    Steepest,
}

impl std::fmt::Display for Pick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            #[allow(clippy::float_cmp, reason = "`pick = min` is exactly a divisor of 1")]
            Pick::Min { divisor } if *divisor == 1.0 => f.write_str("min"),
            Pick::Min { divisor } if divisor.fract() == 0.0 && *divisor < 1e15 => write!(f, "min / {divisor:.0}"),
            Pick::Min { divisor } => write!(f, "min / {}", crate::spec::value::fmt_float(*divisor)),
            Pick::Steepest => f.write_str("steepest"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct PhaseDef {
    pub name: String,
    pub name_span: Span,
    /// Indices of the phases this one comes after, as written.
    pub after: Vec<usize>,
    pub overrides: Vec<Binding>,
    /// The phase's own options (not yet merged with the study's).
    pub options: Options,
    pub objective: Option<ObjectiveDef>,
    pub sweeps: Vec<Sweep>,
    pub find: Option<FindDef>,
    pub span: Span,
}

impl PhaseDef {
    /// Every key the phase varies (or finds), in source order.
    pub fn swept(&self) -> Vec<&Target> {
        let mut out: Vec<&Target> = Vec::new();
        for c in self.sweeps.iter().flat_map(|s| &s.clauses) {
            if !out.contains(&&c.target) {
                out.push(&c.target);
            }
        }
        if let Some(f) = &self.find {
            out.push(&f.target);
        }
        out
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinalSource {
    /// Indices of the phases whose winners are combined, as written.
    Combine(Vec<usize>),
    After(usize),
}

#[derive(Clone, Debug)]
pub struct FinalDef {
    pub source: FinalSource,
    pub overrides: Vec<Binding>,
    pub options: Options,
    pub objective: Option<ObjectiveDef>,
    pub span: Span,
}

/// Which phases each phase comes after, directly or not, computed once: the planner asks for
/// a phase's ancestors for every phase it resolves, and walking the graph each time made
/// checking a long chain of phases cubic in its length.
///
/// One bit set per phase, indexed by topological rank, so that membership is one bit test and
/// the ancestors come out in topological order.
#[derive(Clone, Debug, Default)]
pub struct Ancestry {
    /// The phase at each rank (`Study::order`).
    order: Vec<usize>,
    /// The rank of each phase.
    rank: Vec<usize>,
    /// By phase: the ranks of its ancestors.
    rows: Vec<FixedBitSet>,
}

impl Ancestry {
    /// `phases[p].after` for each phase `p`, and a topological order of them (phases in a cycle
    /// last). A phase that comes after itself, through a cycle, is not its own ancestor.
    pub fn new(after: &[&[usize]], order: &[usize]) -> Ancestry {
        let n = after.len();
        let mut rank = vec![0; n];
        for (r, &p) in order.iter().enumerate() {
            rank[p] = r;
        }
        let mut rows = vec![FixedBitSet::with_capacity(n); n];
        for &p in order {
            let mut row = FixedBitSet::with_capacity(n);
            if after[p].iter().all(|&q| rank[q] < rank[p]) {
                // Every phase before this one is done: its ancestors are its parents' and theirs.
                for &q in after[p] {
                    row.union_with(&rows[q]);
                    row.insert(rank[q]);
                }
            } else {
                // In or after a cycle (already an error): walk the graph.
                let mut todo: Vec<usize> = after[p].to_vec();
                while let Some(a) = todo.pop() {
                    if a != p && !row.contains(rank[a]) {
                        row.insert(rank[a]);
                        todo.extend_from_slice(after[a]);
                    }
                }
            }
            rows[p] = row;
        }
        Ancestry { order: order.to_vec(), rank, rows }
    }

    /// Whether phase `p` comes after phase `a`, directly or not.
    pub fn contains(&self, p: usize, a: usize) -> bool {
        self.rows[p].contains(self.rank[a])
    }

    /// The phases `p` comes after, directly or not, in topological order.
    pub fn of(&self, p: usize) -> impl Iterator<Item = usize> + '_ {
        self.rows[p].ones().map(|r| self.order[r])
    }

    /// The position of phase `p` in the topological order.
    pub fn rank(&self, p: usize) -> usize {
        self.rank[p]
    }
}
