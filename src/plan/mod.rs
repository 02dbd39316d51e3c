//! The study planner: compiles a checked study into phases, candidates and a DAG of runs, and
//! resolves each phase's candidates into concrete [`RunConfig`]s once the winners it needs
//! are known.
//!
//! What flows downstream: phase P's incoming config is `C(P) = root ⊕ W(a₁) ⊕ W(a₂) ⊕ …` over
//! every phase it comes after (directly or not), in topological order; its candidates run
//! `C(P) ⊕ overrides(P) ⊕ variant`; its winning changes `W(P)` are the winning variant's
//! changed keys only. `final combine(A, B)` runs `root ⊕ W(A) ⊕ W(B) ⊕ overrides(final)`;
//! `final after P` runs `C(P) ⊕ W(P) ⊕ overrides(final)`. Derived keys are evaluated last.

mod assume;
mod compile;
mod expand;
mod files;
pub mod graph;
mod resolve;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use petgraph::graph::NodeIndex;
use serde::Serialize;

use crate::diag::{Diagnostic, Failure};
use crate::lang::study::Study;
use crate::spec::config::RunConfig;
use crate::spec::value::Value;

pub use crate::lang::ast::Goal;
pub use crate::lang::study::Pick;
pub use crate::lang::study::Prune;
pub use graph::{Block, Edge, Graph, Node, Policy};
pub use resolve::{apply, target_of};

/// The most runs (candidates × runs per candidate, over every phase and the final run) a study
/// may have: the engine holds every run's result in memory.
pub const MAX_RUNS: usize = 100_000;

/// A finished phase's winning changes: canonical key path → value, relative to its incoming
/// config (`[("matrix_lr", 0.05)]`, `[("schedule.warmup", 0.05)]`).
pub type Changes = Vec<(String, Value)>;

/// What a study optimizes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Objective {
    pub metric: String,
    #[serde(serialize_with = "goal_name")]
    pub goal: Goal,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // the signature serde asks for
fn goal_name<S: serde::Serializer>(goal: &Goal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(goal.name())
}

impl Objective {
    /// Whether `a` is a better objective value than `b`.
    pub fn better(&self, a: f64, b: f64) -> bool {
        match self.goal {
            Goal::Minimize => a < b,
            Goal::Maximize => a > b,
        }
    }
}

/// What kind of phase.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    /// Candidates from `vary`, `grid` and `zip` (and the baseline).
    Sweep,
    /// An LR range test: one run with `key` growing exponentially from `from` to `to` over
    /// `steps` steps. Its winner is `{key: range_test::analyse(history, pick, stop).value}`.
    Find { key: String, from: f64, to: f64, steps: u64, pick: Pick, stop: f64 },
}

/// A phase, as the engine sees it.
#[derive(Clone, Debug)]
pub struct Phase {
    pub name: String,
    /// The phases it comes after, as written.
    pub after: Vec<String>,
    /// Every phase it comes after, directly or not, in topological order: the winners
    /// `resolve_phase` needs.
    pub needs: Vec<String>,
    pub objective: Objective,
    /// Runs per candidate (`seeds.len()` when seeds are explicit).
    pub repeats: u32,
    /// Explicit seeds (`seeds = [...]`), replacing `seed, seed + 1, ...`.
    pub seeds: Option<Vec<u64>>,
    /// Whether the incoming config is itself a candidate.
    pub baseline: bool,
    pub prune: Prune,
    pub kind: PhaseKind,
    /// Keys the phase varies, in source order (`matrix_lr`, `schedule.warmup`).
    pub swept_keys: Vec<String>,
    /// How many candidates the phase has (assuming its inputs' first candidates win, where
    /// the count depends on a winner).
    pub candidate_count: usize,
    /// Index into the checked study's phases.
    pub(crate) def: usize,
}

/// Where the final run starts from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalSource {
    Combine(Vec<String>),
    After(String),
}

#[derive(Clone, Debug)]
pub struct FinalRun {
    pub source: FinalSource,
    /// Phases whose winners it needs.
    pub needs: Vec<String>,
    pub objective: Objective,
    pub repeats: u32,
    pub seeds: Option<Vec<u64>>,
    pub prune: Prune,
}

/// One concrete candidate of a phase (or the final run).
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// `baseline`, or the changes as `key=value` joined by `,` in source order.
    pub variant: String,
    /// Changed keys relative to the incoming config, in source order.
    pub changes: Changes,
    /// The resolved config, with `train.seed = seeds[0]`.
    pub config: RunConfig,
    /// One run per seed.
    pub seeds: Vec<u64>,
}

/// A candidate whose config could not be resolved (`base * 100` pushed an LR out of range).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("candidate `{variant}`: {message}")]
pub struct InvalidCandidate {
    pub variant: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ResolveError {
    #[error("no phase is named `{0}`")]
    UnknownPhase(String),
    #[error("`{phase}` is waiting on the winner of {}", missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "))]
    Waiting { phase: String, missing: Vec<String> },
    /// The phase's incoming config (or the final run's) is itself invalid, or its sweeps
    /// cannot be expanded (a `zip` of unequal lists).
    #[error("`{phase}`: {message}")]
    Invalid { phase: String, message: String },
    #[error("the study has no final run")]
    NoFinal,
}

/// A study's budget: runs are taken in listed order (phases in the plan's order, then the final
/// run; candidates as listed; seeds; a halving phase's rungs in turn) while it lasts, and the
/// rest are skipped.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct StudyBudget {
    /// The most runs the study has, cached ones included.
    pub max_runs: Option<usize>,
    /// Seconds of training, as the runs' recorded training times add up.
    pub time: Option<f64>,
}

/// A compiled study.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The file stem.
    pub name: String,
    pub path: PathBuf,
    pub objective: Objective,
    /// Phases in topological order, ties in source order.
    pub phases: Vec<Phase>,
    pub final_run: Option<FinalRun>,
    /// The graph the engine executes: each block's runs and the selection over them, with
    /// edges for what needs what.
    pub graph: Graph,
    /// `budget {}`: how much of the study may run (not part of any run's key: it decides which
    /// runs the study has, not what they compute).
    pub budget: Option<StudyBudget>,
    /// Warnings found while checking (errors make compilation fail).
    pub warnings: Vec<Diagnostic>,
    /// The file's text, for rendering warnings.
    pub source: String,
    pub(crate) study: Study,
    pub(crate) root: RunConfig,
    /// Each phase's position in `phases`, by name: commands look phases up by name once per
    /// phase, which a scan made quadratic in the number of phases.
    pub(crate) by_name: BTreeMap<String, usize>,
}

/// Why a study could not be loaded: unreadable, or invalid.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read `{}`", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Invalid(#[from] Failure),
}

impl Plan {
    /// Reads, checks and compiles a study file, and checks the files it names (its corpora),
    /// relative to its folder.
    pub fn load(path: &Path) -> Result<Plan, LoadError> {
        let source = std::fs::read_to_string(path).map_err(|source| LoadError::Io { path: path.to_owned(), source })?;
        // A real file also has a folder: its corpora, its commands' programs and `deps` must be there.
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Plan::load_source(&source, path, dir)
    }

    /// Like [`Plan::load`], for a study read elsewhere (`lrx plan -` reads stdin): `path` names
    /// it in diagnostics, and its files are looked for in `dir`.
    pub fn load_source(source: &str, path: &Path, dir: &Path) -> Result<Plan, LoadError> {
        let files =
            crate::lang::parse(source).map(|f| crate::lang::command::check_files(&f, source, dir)).unwrap_or_default();
        match compile::compile(source, path, Some(dir)) {
            Ok(plan) if files.is_empty() => Ok(plan),
            Ok(_) => Err(Failure::new(path, source, files).into()),
            Err(mut failure) => {
                failure.diagnostics.extend(files);
                failure.diagnostics.sort_by_key(|d| d.primary_span().map_or(usize::MAX, |s| s.start));
                Err(failure.into())
            }
        }
    }

    /// Checks and compiles a study's text. `path` names it (its stem is the study's name);
    /// nothing on disk is read.
    pub fn compile(source: &str, path: &Path) -> Result<Plan, Failure> {
        compile::compile(source, path, None)
    }

    pub fn phase(&self, name: &str) -> Option<&Phase> {
        self.by_name.get(name).map(|&i| &self.phases[i])
    }

    /// The root config (`model {}`, `data {}`, `train {}`), resolved.
    pub fn root_config(&self) -> RunConfig {
        self.root.clone()
    }

    /// The root config with changes applied (`lrx train FILE --set KEY=VALUE`); derived keys
    /// are evaluated again.
    pub fn root_with(&self, changes: &[(String, Value)]) -> Result<RunConfig, String> {
        compile::root_with(self, changes)
    }

    /// Concrete candidates of `phase`, given the winning changes of (at least) every phase in
    /// its `needs`. Each candidate is `Ok`, or `Err` when its own config is invalid (the
    /// others can still run). The whole phase fails when a needed winner is missing, or when
    /// its incoming config or its sweeps cannot be resolved.
    pub fn resolve_phase(
        &self,
        phase: &str,
        winners: &BTreeMap<String, Changes>,
    ) -> Result<Vec<Result<Candidate, InvalidCandidate>>, ResolveError> {
        compile::resolve_phase(self, phase, winners)
    }

    /// The final run, given the winners it needs. Its variant is `combined` (or `winner` for
    /// `final after P`); its changes are the merged winning changes, relative to the root.
    pub fn resolve_final(&self, winners: &BTreeMap<String, Changes>) -> Result<Candidate, ResolveError> {
        compile::resolve_final(self, winners)
    }

    /// The variants of a phase as far as they are known without the winners it waits on:
    /// a value that depends on one (`base * 0.5`) comes as its expression's text.
    pub fn preview_phase(&self, phase: &str, winners: &BTreeMap<String, Changes>) -> Vec<(String, Changes)> {
        let Some(p) = self.phase(phase) else { return Vec::new() };
        compile::preview(self, p, winners)
            .into_iter()
            .map(|(variant, changes)| {
                let changes = changes
                    .into_iter()
                    .map(|(k, item)| match item {
                        expand::Item::Known(v) => (k, v),
                        expand::Item::Symbolic(s) => (k, Value::Str(s)),
                    })
                    .collect();
                (variant, changes)
            })
            .collect()
    }

    /// The config a phase's runs start from given the winners known so far, the others left
    /// out: its baseline, for cost estimates before every winner is in. `None` names the final
    /// run.
    pub fn estimate_config(&self, phase: Option<&str>, winners: &BTreeMap<String, Changes>) -> Option<RunConfig> {
        match phase {
            Some(p) => compile::baseline_config(self, self.phase(p)?, winners),
            None => compile::final_estimate(self, winners),
        }
    }

    /// The winner-selection node of a phase in [`Plan::graph`].
    pub fn winner_node(&self, phase: &str) -> Option<NodeIndex> {
        self.graph.blocks.get(&Block::Phase(phase.to_owned())).map(|&(_, select)| select)
    }

    /// The candidates of a block (a phase, or the final run's one), given the winners it needs.
    pub fn resolve(
        &self,
        block: &Block,
        winners: &BTreeMap<String, Changes>,
    ) -> Result<Vec<Result<Candidate, InvalidCandidate>>, ResolveError> {
        match block {
            Block::Phase(name) => self.resolve_phase(name, winners),
            Block::Final => Ok(vec![Ok(self.resolve_final(winners)?)]),
        }
    }

    /// The objective a block's runs are measured by.
    pub fn objective_of(&self, block: &Block) -> &Objective {
        match (block, &self.final_run) {
            (Block::Phase(name), _) => self.phase(name).map_or(&self.objective, |p| &p.objective),
            (Block::Final, Some(f)) => &f.objective,
            (Block::Final, None) => &self.objective,
        }
    }
}

/// `baseline`, or `key=value,key2=value2`.
pub fn variant_name(changes: &[(String, Value)]) -> String {
    if changes.is_empty() {
        return "baseline".to_owned();
    }
    changes.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}
