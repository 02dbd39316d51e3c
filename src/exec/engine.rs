//! The scheduler: executes the plan's study graph (`plan::Graph`). It repeatedly takes the
//! nodes whose inputs are settled: a runs node resolves its candidates with the winners known
//! so far, serves cached runs and hands the rest to an executor; a selection node, once its
//! runs are in, asks its policy (`exec::policy`) and carries the decision out (a winner, a
//! failure, or survivors promoted to another round of runs). A node whose needed input failed
//! is blocked, and so on down its branch; independent branches go on. The scheduler knows no
//! phase kind: those are the plan's nodes and the policies' files.
//!
//! The same walk, with training turned off (`Mode::Dry`), answers `plan`, `show`, `why` and
//! `cache gc --keep`: everything the cache already decides is followed, and the first phase
//! lacking results stops its branch (its candidates "to run", later phases "waiting").

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;

use petgraph::Direction;
use petgraph::graph::{EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;

use super::budget::{Admission, Order};
use super::executor::{Executor, Job};
use super::policy::{self, Decision};
use super::progress::{Event, Observer, RunLabel};
use super::runner::{self, Finished, Notice, Outcome, Source};
use super::select::{self, Aggregate};
use crate::cache::{CacheError, DataFingerprint, KeyInput, RunKey, Store};
use crate::plan::{Block, Candidate, Changes, Edge, InvalidCandidate, Node, Phase, Plan, Policy};
use crate::results::{CandidateResult, CandidateStatus, PhaseResult, PhaseStatus, RepeatResult, StudyResults};
use crate::spec::{CancelFlag, DataConfig, Status, Trainer, Value};

/// Train, or only read the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Run,
    Dry,
}

/// Computes a corpus's fingerprint (the command layer supplies it, since only it knows where
/// corpora live; hashing itself happens in `cache::key`). It memoizes: the engine asks once
/// per run.
pub type Fingerprinter<'a> = &'a (dyn Fn(&DataConfig) -> Result<DataFingerprint, String> + Sync);

/// How to run a study.
pub struct Options {
    pub mode: Mode,
    /// Phases whose candidates are trained again even when cached (`final` for the final run).
    pub rerun: BTreeSet<String>,
    /// Folder relative paths in the study are resolved against.
    pub base_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// Everything the walk needs.
pub struct Engine<'a> {
    pub plan: &'a Plan,
    pub store: &'a Store,
    pub trainer: &'a dyn Trainer,
    pub fingerprint: Fingerprinter<'a>,
    pub observer: &'a dyn Observer,
    /// Where runs happen (the engine knows no more of it than the trait).
    pub executor: &'a dyn Executor,
    pub cancel: CancelFlag,
    pub options: Options,
}

/// One run slot of a candidate (one seed).
#[derive(Clone)]
struct Slot {
    seed: u64,
    key: Option<RunKey>,
    /// The step this run stops at (a successive-halving rung), as in its key.
    stop_at: Option<u64>,
    done: Option<Finished>,
    error: Option<String>,
    /// Left out by the study's budget: it never runs.
    skipped: bool,
}

struct Cand {
    candidate: Candidate,
    slots: Vec<Slot>,
    /// Eliminated at a successive-halving rung.
    pruned: bool,
    /// Its config could not be resolved (its `cand.config` is a placeholder).
    invalid: bool,
}

impl Cand {
    /// Some of its runs were left out by the budget: it has no result (never a partial mean).
    fn skipped(&self) -> bool {
        self.slots.iter().any(|s| s.skipped)
    }
}

/// Where a node of the study graph stands.
#[derive(Clone, Debug, PartialEq)]
enum At {
    /// Its inputs are not all settled.
    Open,
    /// A runs node with runs still to finish.
    Running,
    /// A runs node whose every live run has a result (until its selection promotes some).
    Complete,
    /// A selection node that picked candidate `.0`.
    Done(usize),
    Failed(String),
    /// A needed input failed or did not run.
    Blocked(String),
    /// The budget left it without a decision: none of its runs is in, or a winner it needs
    /// was never chosen.
    Skipped(String),
    /// Dry mode: a runs node with results missing.
    Pending,
    /// Dry mode: an input is pending or waiting.
    Waiting,
}

/// A node's state: where it stands, and a runs node's candidates with its rung.
struct NodeState {
    at: At,
    cands: Option<Vec<Cand>>,
    /// Rounds of promotion so far (successive-halving rungs).
    rung: usize,
}

/// The walk's mutable state, owned by the coordinating thread.
struct Walk<'e, 'a> {
    engine: &'e Engine<'a>,
    /// By node index of the plan's graph.
    nodes: Vec<NodeState>,
    winners: BTreeMap<String, Changes>,
    found: BTreeMap<String, (String, Value)>,
    results: HashMap<RunKey, Finished>,
    queued: BTreeSet<RunKey>,
    queue: VecDeque<Job>,
    announced: (usize, usize),
    train_wall: std::time::Duration,
    /// Slots replaced when successive-halving survivors move to the next rung.
    superseded: Vec<Slot>,
    /// Which runs the study's budget lets in, and the order blocks start in under one.
    budget: Admission,
    order: Order,
}

impl Engine<'_> {
    /// Runs (or, in dry mode, reads) the study.
    pub fn run(&self) -> Result<StudyResults, EngineError> {
        if self.options.mode == Mode::Run {
            // Leftovers of processes killed mid-write or mid-run: never read, only in the way.
            self.store.clean_tmp()?;
            self.store.clean_work()?;
            self.warn_machine_dependence();
        }
        let mut walk = Walk {
            engine: self,
            nodes: (0..self.plan.graph.dag.node_count())
                .map(|_| NodeState { at: At::Open, cands: None, rung: 0 })
                .collect(),
            winners: BTreeMap::new(),
            found: BTreeMap::new(),
            results: HashMap::new(),
            queued: BTreeSet::new(),
            queue: VecDeque::new(),
            announced: (usize::MAX, usize::MAX),
            train_wall: std::time::Duration::ZERO,
            superseded: Vec::new(),
            budget: Admission::new(self.plan.budget),
            order: Order::new(self.plan),
        };
        walk.advance();
        if self.options.mode == Mode::Run && !walk.queue.is_empty() {
            self.drive(&mut walk)?;
        }
        let interrupted = self.cancel.is_cancelled();
        Ok(walk.into_results(interrupted))
    }

    /// An objective that measures the machine picks winners by this machine's speed and load.
    fn warn_machine_dependence(&self) {
        let objectives = self
            .plan
            .phases
            .iter()
            .map(|p| (p.name.as_str(), &p.objective.metric))
            .chain(self.plan.final_run.iter().map(|f| ("final", &f.objective.metric)));
        let mut warned = BTreeSet::new();
        for (phase, metric) in objectives {
            if crate::spec::measures_machine(metric) && warned.insert(metric.clone()) {
                self.observer.event(Event::Warning(format!(
                    "the objective `{metric}` (phase `{phase}`) depends on this machine's speed and load: winners may differ between machines, or on this one under other load"
                )));
            }
        }
    }

    /// Hands queued jobs to the executor, at most its capacity at once, until nothing is left
    /// or Ctrl-C; every outcome settles what it can and may queue more.
    fn drive(&self, walk: &mut Walk<'_, '_>) -> Result<(), EngineError> {
        let capacity = self.executor.capacity().max(1);
        let mut error = None;
        self.executor.session(&mut |session| {
            let mut in_flight = 0usize;
            let mut cancelled = false;
            loop {
                if self.cancel.is_cancelled() && !cancelled {
                    cancelled = true;
                    session.cancel_all();
                }
                while in_flight < capacity && !self.cancel.is_cancelled() {
                    let Some(job) = walk.queue.pop_front() else { break };
                    // The training time may have run out while it waited.
                    if !walk.budget.may_start(job.input.key()) {
                        walk.queued.remove(&job.input.key());
                        self.observer.event(Event::Skipped { label: job.label });
                        walk.advance();
                        continue;
                    }
                    // A run queued twice (same config in two candidates) trains once.
                    if !job.force
                        && let Some(hit) = walk.results.get(&job.input.key())
                    {
                        let mut hit = hit.clone();
                        hit.train_wall = std::time::Duration::ZERO;
                        walk.record(job.input.key(), hit);
                        continue;
                    }
                    in_flight += 1;
                    session.submit(job);
                }
                let Some((job, outcome)) = session.next() else { break };
                in_flight -= 1;
                match outcome {
                    Ok(Outcome::Finished(f)) => {
                        let f = *f;
                        walk.budget.finished(f.result.seconds);
                        walk.record(f.key, f.clone());
                        walk.announce_counts();
                        self.observer.event(Event::Finished {
                            label: job.label.clone(),
                            key: f.key,
                            status: f.result.status,
                            cached: f.source == Source::Cached,
                            objective: f.result.metrics.get(&job.metric).copied(),
                            seconds: f.result.seconds,
                            reason: (f.result.status == Status::Failed).then(|| {
                                crate::spec::describe_failure(
                                    f.result.error.as_deref(),
                                    f.result.log_tail.as_deref(),
                                    4,
                                )
                            }),
                        });
                        walk.advance();
                    }
                    Ok(Outcome::Cancelled) => self.observer.event(Event::Cancelled { label: job.label }),
                    Err(e) => {
                        error.get_or_insert(EngineError::Cache(e));
                        self.cancel.cancel();
                    }
                }
            }
        });
        error.map_or(Ok(()), Err)
    }
}

impl Walk<'_, '_> {
    fn plan(&self) -> &Plan {
        self.engine.plan
    }

    /// Settles everything that can be settled without new results; queues what must train.
    fn advance(&mut self) {
        let graph = &self.engine.plan.graph;
        loop {
            let mut changed = false;
            for &n in &graph.order {
                changed |= self.step(n);
            }
            self.announce_counts();
            if !changed {
                return;
            }
        }
    }

    /// Moves node `n` on as far as its inputs allow; `true` when it changed.
    fn step(&mut self, n: NodeIndex) -> bool {
        match self.nodes[n.index()].at {
            At::Open => self.open(n),
            At::Running => self.settle_runs(n),
            _ => false,
        }
    }

    /// A node waiting for its inputs: blocked when one it needs failed, waiting (dry) when one
    /// is, started (runs) or decided (selection) once all are settled.
    fn open(&mut self, n: NodeIndex) -> bool {
        let plan = self.engine.plan;
        let graph = &plan.graph;
        let node = &graph.dag[n];
        let block = node.block();
        let mut inputs: Vec<(EdgeIndex, NodeIndex, Edge)> =
            graph.dag.edges_directed(n, Direction::Incoming).map(|e| (e.id(), e.source(), *e.weight())).collect();
        inputs.sort_unstable_by_key(|i| i.0);
        let at = |i: NodeIndex| &self.nodes[i.index()].at;
        let failed = inputs
            .iter()
            .filter(|i| i.2 == Edge::Needs)
            .find_map(|&(_, i, _)| matches!(at(i), At::Failed(_) | At::Blocked(_)).then_some(i));
        if let Some(i) = failed {
            let source = graph.dag[i].block();
            let now = match at(i) {
                // A selection whose own runs could not start fails (or is blocked) with them.
                _ if source == block => at(i).clone(),
                At::Failed(_) => At::Blocked(format!("it comes after `{}`, which failed", source.name())),
                _ => At::Blocked(format!("it comes after `{}`, which did not run", source.name())),
            };
            if source != block
                && let (Block::Phase(phase), At::Blocked(message)) = (block, &now)
            {
                self.engine.observer.event(Event::PhaseFailed { phase: phase.clone(), message: message.clone() });
            }
            self.nodes[n.index()].at = now;
            return true;
        }
        let skipped = inputs
            .iter()
            .filter(|i| i.2 == Edge::Needs)
            .find_map(|&(_, i, _)| matches!(at(i), At::Skipped(_)).then_some(i));
        if let Some(i) = skipped {
            let source = graph.dag[i].block();
            let now = if source == block {
                at(i).clone()
            } else {
                At::Skipped(format!("it needs the winner of `{}`, which the budget left unchosen", source.name()))
            };
            if source != block
                && let At::Skipped(message) = &now
            {
                self.engine
                    .observer
                    .event(Event::PhaseSkipped { phase: block.name().to_owned(), message: message.clone() });
            }
            self.nodes[n.index()].at = now;
            return true;
        }
        if inputs.iter().any(|i| matches!(at(i.1), At::Pending | At::Waiting)) {
            self.nodes[n.index()].at = At::Waiting;
            return true;
        }
        let settled = |&(_, i, edge): &(EdgeIndex, NodeIndex, Edge)| {
            matches!(
                (edge, at(i)),
                (_, At::Done(_) | At::Complete) | (Edge::Order, At::Failed(_) | At::Blocked(_) | At::Skipped(_))
            )
        };
        if !inputs.iter().all(settled) {
            return false;
        }
        if matches!(node, Node::Runs { .. }) && self.budget.limited() && !self.in_turn(n) {
            // Dry: a block before it lacks results, so what is left of the budget is unknown.
            let before_waits = self.order.first_open().is_some_and(|s| self.nodes[s.index()].at == At::Waiting);
            if self.engine.options.mode == Mode::Dry && before_waits {
                self.nodes[n.index()].at = At::Waiting;
                return true;
            }
            return false;
        }
        match node {
            Node::Runs { .. } => self.start(n, block),
            Node::Select { policy, .. } => self.decide(n, block, policy),
        }
        true
    }

    /// Under a budget: whether every block before runs node `n`'s (in listed order) has settled,
    /// so that its runs ask for admission in the study's listed order.
    fn in_turn(&mut self, n: NodeIndex) -> bool {
        let nodes = &self.nodes;
        self.order
            .advance(|s| matches!(nodes[s.index()].at, At::Done(_) | At::Failed(_) | At::Blocked(_) | At::Skipped(_)));
        self.order.ready(n)
    }

    /// Resolves a runs node's candidates now that the winners they need are known, serving
    /// what is cached and queueing the rest.
    fn start(&mut self, n: NodeIndex, block: &Block) {
        let plan = self.engine.plan;
        match plan.resolve(block, &self.winners) {
            Ok(cands) => {
                let force = self.engine.options.rerun.contains(block.name());
                let stop_at = plan.graph.policy(block).and_then(policy::first_stop);
                let cands = self.make_cands(block, cands, stop_at, force, &[]);
                self.nodes[n.index()] = NodeState { at: At::Running, cands: Some(cands), rung: 0 };
            }
            // The final run has no winner to give: one it cannot resolve did not run.
            Err(e) if *block == Block::Final => self.nodes[n.index()].at = At::Blocked(e.to_string()),
            Err(e) => {
                let message = e.to_string();
                self.engine
                    .observer
                    .event(Event::PhaseFailed { phase: block.name().to_owned(), message: message.clone() });
                self.nodes[n.index()] = NodeState { at: At::Failed(message), cands: Some(Vec::new()), rung: 0 };
            }
        }
    }

    /// A runs node with runs in flight: complete once every live run has a result (pending in
    /// dry mode, where nothing more will come).
    fn settle_runs(&mut self, n: NodeIndex) -> bool {
        let state = &mut self.nodes[n.index()];
        let cands = state.cands.take().unwrap_or_default();
        let (cands, complete) = fill(&self.results, &self.budget, cands);
        let state = &mut self.nodes[n.index()];
        state.cands = Some(cands);
        state.at = if complete {
            At::Complete
        } else if self.engine.options.mode == Mode::Dry {
            At::Pending
        } else {
            At::Running
        };
        state.at != At::Running
    }

    /// A selection node whose runs are all in: its policy decides, and the walk carries the
    /// decision out (promote survivors to another round of runs, or settle).
    fn decide(&mut self, n: NodeIndex, block: &Block, policy: &Policy) {
        let plan = self.engine.plan;
        let objective = plan.objective_of(block);
        let runs = plan.graph.blocks[block].0;
        let state = &mut self.nodes[runs.index()];
        let rung = state.rung;
        let mut cands = state.cands.take().unwrap_or_default();
        let phase = match block {
            Block::Phase(name) => Some(name.clone()),
            Block::Final => None,
        };
        // Nothing ran within the budget: there is nothing to choose from.
        let live: Vec<&Cand> = cands.iter().filter(|c| !c.pruned).collect();
        if !live.is_empty() && live.iter().all(|c| c.skipped()) {
            let message = if rung == 0 {
                "the budget was spent before its runs"
            } else {
                "the budget was spent before its next rung"
            }
            .to_owned();
            if let Some(phase) = phase {
                self.engine.observer.event(Event::PhaseSkipped { phase, message: message.clone() });
            }
            self.nodes[runs.index()].cands = Some(cands);
            self.nodes[n.index()].at = At::Skipped(message);
            return;
        }
        let aggs: Vec<Aggregate> = cands
            .iter()
            .map(|c| {
                let a = aggregate_of(c, &objective.metric);
                if c.skipped() {
                    skipped_aggregate()
                } else if c.pruned {
                    pruned(&a)
                } else {
                    a
                }
            })
            .collect();
        // A skipped candidate cannot win or go on, like a pruned one.
        let pruned_now: Vec<bool> = cands.iter().map(|c| c.pruned || c.skipped()).collect();
        let skipped_count = cands.iter().filter(|c| c.skipped()).count();
        let history = cands
            .first()
            .and_then(|c| c.slots.first())
            .and_then(|s| s.done.as_ref())
            .map(|d| d.result.history.clone())
            .unwrap_or_default();
        let outcomes = policy::Outcomes {
            aggs: &aggs,
            pruned: &pruned_now,
            first_history: &history,
            budget: cands.first().and_then(|c| c.candidate.config.total_steps()),
            rung,
        };
        let at = match policy::decide(policy, objective.goal, &outcomes) {
            Decision::Promote { survivors, stop_at } => {
                let force = self.engine.options.rerun.contains(block.name());
                for (j, c) in cands.iter_mut().enumerate() {
                    if c.pruned || c.skipped() {
                        continue;
                    }
                    if !survivors.contains(&j) {
                        c.pruned = true;
                        continue;
                    }
                    // Each survivor continues from its rung's checkpoint: only the increment trains.
                    let fresh = self.make_cands(block, vec![Ok(c.candidate.clone())], stop_at, force, &c.slots);
                    let old =
                        std::mem::replace(&mut c.slots, fresh.into_iter().next().map(|f| f.slots).unwrap_or_default());
                    self.superseded.extend(old);
                }
                let state = &mut self.nodes[runs.index()];
                state.at = At::Running;
                state.rung = rung + 1;
                At::Open
            }
            Decision::Winner { index, found } => {
                if let Some(phase) = phase {
                    let (changes, label) = match &found {
                        Some((key, v)) => (vec![(key.clone(), v.clone())], format!("{key}={v}")),
                        None => (cands[index].candidate.changes.clone(), cands[index].candidate.variant.clone()),
                    };
                    let objective = if found.is_some() { None } else { aggs[index].objective };
                    self.winners.insert(phase.clone(), changes);
                    if let Some(change) = found {
                        self.found.insert(phase.clone(), change);
                    }
                    self.engine.observer.event(Event::PhaseDone {
                        phase: phase.clone(),
                        winner: Some(label),
                        objective,
                    });
                    if skipped_count > 0 {
                        self.engine.observer.event(Event::Note(format!(
                            "phase `{phase}`: winner chosen under the budget ({skipped_count} of its {} candidates skipped)",
                            cands.len()
                        )));
                    }
                }
                At::Done(index)
            }
            // What ran cannot win, and the budget left out the rest: the budget, not a failure.
            Decision::Fail(message) if skipped_count > 0 => {
                let message = format!("no candidate finished within the budget ({message})");
                if let Some(phase) = phase {
                    self.engine.observer.event(Event::PhaseSkipped { phase, message: message.clone() });
                }
                At::Skipped(message)
            }
            Decision::Fail(message) => {
                if let Some(phase) = phase {
                    self.engine.observer.event(Event::PhaseFailed { phase, message: message.clone() });
                }
                At::Failed(message)
            }
        };
        self.nodes[runs.index()].cands = Some(cands);
        self.nodes[n.index()].at = at;
    }

    /// Tells the observer the run counts when they changed.
    fn announce_counts(&mut self) {
        let counts = self.run_counts();
        if counts != self.announced {
            self.announced = counts;
            self.engine.observer.event(Event::Counts { done: counts.0, total: counts.1 });
        }
    }

    /// `(settled, all)` runs of the study, counted per candidate and seed (a run shared by two
    /// candidates counts for each). Blocks not resolved yet count by the plan's candidate
    /// count; a block whose policy trains further rounds (successive halving) counts the runs
    /// its survivors will train, so the total stays put as the study advances (it only
    /// shrinks when a block is blocked or a candidate fails and so trains no further rungs).
    fn run_counts(&self) -> (usize, usize) {
        let graph = &self.plan().graph;
        let (mut done, mut total) = (self.superseded.len(), self.superseded.len());
        for (block, &(runs, _)) in &graph.blocks {
            let Node::Runs { candidates, seeds, .. } = &graph.dag[runs] else { continue };
            let to_come = |live, rung| graph.policy(block).map_or(0, |p| policy::runs_to_come(p, live, rung));
            let state = &self.nodes[runs.index()];
            let (d, t) = match (&state.at, &state.cands) {
                (at, Some(cands)) => {
                    let (d, t) = slot_counts(cands, &self.results, &self.budget);
                    let later = if *at == At::Running {
                        let live = cands.iter().filter(|c| !c.pruned).count();
                        cands.first().map_or(1, |c| c.slots.len()) * to_come(live, state.rung)
                    } else {
                        0
                    };
                    (d, t + later)
                }
                (At::Open | At::Waiting, None) => (0, seeds * (candidates + to_come(*candidates, 0))),
                _ => (0, 0),
            };
            done += d;
            total += t;
        }
        (done, total)
    }

    /// Builds run slots for candidates, serving cached runs at once and queueing the rest.
    /// `earlier`: the slots of the candidate's previous rung, whose checkpoints its runs continue
    /// from (successive halving); empty otherwise.
    fn make_cands(
        &mut self,
        block: &Block,
        cands: Vec<Result<Candidate, InvalidCandidate>>,
        stop_at: Option<crate::spec::Stop>,
        force: bool,
        earlier: &[Slot],
    ) -> Vec<Cand> {
        cands
            .into_iter()
            .map(|cand| {
                let cand = match cand {
                    Ok(cand) => cand,
                    Err(invalid) => return invalid_cand(invalid),
                };
                let slots = cand
                    .seeds
                    .iter()
                    .enumerate()
                    .map(|(i, &seed)| {
                        let trainer = self.engine.trainer;
                        let resume = earlier.get(i).and_then(|e| Some((e.key?, e.stop_at?)));
                        match KeyInput::of_run(&cand.config, seed, stop_at, trainer, self.engine.fingerprint) {
                            Ok(input) => {
                                let key = input.key();
                                let label = RunLabel {
                                    phase: block.name().to_owned(),
                                    variant: cand.variant.clone(),
                                    seed: (cand.seeds.len() > 1).then_some(seed),
                                    rung: input.stop_at,
                                };
                                let stop_at = input.stop_at;
                                let metric = self.plan().objective_of(block).metric.clone();
                                self.request(key, input, label, metric, force, resume);
                                Slot { seed, key: Some(key), stop_at, done: None, error: None, skipped: false }
                            }
                            Err(e) => {
                                Slot { seed, key: None, stop_at: None, done: None, error: Some(e), skipped: false }
                            }
                        }
                    })
                    .collect();
                Cand { candidate: cand, slots, pruned: false, invalid: false }
            })
            .collect()
    }

    /// Serves a run from the cache, or queues it.
    fn request(
        &mut self,
        key: RunKey,
        input: KeyInput,
        label: RunLabel,
        metric: String,
        force: bool,
        resume_from: Option<(RunKey, u64)>,
    ) {
        if self.results.contains_key(&key) || self.queued.contains(&key) || self.budget.is_skipped(key) {
            return;
        }
        let store = self.engine.store;
        let dry = self.engine.options.mode == Mode::Dry;
        // Read only when dry: a corrupt entry is left where it is (`run` moves it aside).
        let hit = if dry {
            match store.get(key) {
                crate::cache::Lookup::Hit(entry) => Some(Finished::from_cache(key, entry.result)),
                _ => None,
            }
        } else if force {
            None
        } else {
            let observer = self.engine.observer;
            let mut notice = |n: Notice| observer.event(Event::Warning(n.to_string()));
            runner::cached(self.engine.store, key, &mut notice).ok().flatten()
        };
        // Runs ask in listed order (see `exec::budget`); a cache hit counts like a trained run.
        if !self.budget.admit(key, hit.as_ref().map(|h| h.result.seconds)) {
            self.engine.observer.event(Event::Skipped { label });
            return;
        }
        if let Some(hit) = hit {
            self.results.insert(key, hit);
            return;
        }
        if dry {
            // A run whose last attempt failed shows as failed, with its reason, until it is retried.
            if let Some(attempt) = store.failure(key).and_then(|r| r.last().cloned()) {
                self.results.insert(key, Finished::recorded_failure(key, attempt));
            }
            return;
        }
        if let Some(last) = store.failure(key).and_then(|r| r.last().cloned()) {
            let why = last.reason.lines().next().unwrap_or_default().to_owned();
            self.engine.observer.event(Event::Retrying {
                label: label.clone(),
                attempt: last.attempt + 1,
                reason: why,
            });
        }
        self.queued.insert(key);
        self.queue.push_back(Job { input, label, force, metric, resume_from });
    }

    fn record(&mut self, key: RunKey, finished: Finished) {
        self.queued.remove(&key);
        self.train_wall += finished.train_wall;
        self.results.insert(key, finished);
    }

    /// A block's status, its candidates (once resolved), its winner and why it failed.
    fn block_state(&self, block: &Block) -> (PhaseStatus, Option<&Vec<Cand>>, Option<usize>, Option<String>) {
        let (runs, select) = self.plan().graph.blocks[block];
        let cands = self.nodes[runs.index()].cands.as_ref();
        match &self.nodes[select.index()].at {
            At::Done(w) => (PhaseStatus::Done, cands, Some(*w), None),
            At::Failed(m) => (PhaseStatus::Failed, cands, None, Some(m.clone())),
            At::Blocked(m) => (PhaseStatus::Blocked, cands, None, Some(m.clone())),
            At::Skipped(m) => (PhaseStatus::Skipped, cands, None, Some(m.clone())),
            _ if cands.is_some() => (PhaseStatus::Pending, cands, None, None),
            _ => (PhaseStatus::Waiting, None, None, None),
        }
    }

    fn into_results(self, interrupted: bool) -> StudyResults {
        let plan = self.engine.plan;
        let mut phases = Vec::new();
        let mut left = self.runs_left_for_waiting();
        for phase in &plan.phases {
            let metric = phase.objective.metric.clone();
            let block = Block::Phase(phase.name.clone());
            let (mut status, cands, winner, mut message) = self.block_state(&block);
            let candidates = if let Some(cands) = cands {
                cands.iter().map(|c| candidate_result(c, &metric, interrupted)).collect()
            } else {
                let mut waiting = self.waiting_candidates(phase);
                if self.beyond_budget(&block, status, &mut waiting, &mut left) {
                    status = PhaseStatus::Skipped;
                    message.get_or_insert_with(|| BEYOND.to_owned());
                }
                waiting
            };
            let incoming_key = cands
                .and_then(|c| c.iter().find(|c| c.candidate.changes.is_empty()))
                .and_then(|c| c.slots.first())
                .and_then(|s| s.key);
            let range_test =
                candidates.first().and_then(|c| c.repeats.first()).and_then(|r| policy::range_curve(phase, &r.history));
            phases.push(PhaseResult {
                name: phase.name.clone(),
                after: phase.after.clone(),
                status,
                metric,
                goal: phase.objective.goal,
                winner,
                candidates,
                swept: phase.swept_keys.clone(),
                incoming_key,
                message,
                found: self.found.get(&phase.name).cloned(),
                range_test,
                same_runs: Vec::new(),
            });
            if let Some(p) = phases.last_mut() {
                p.merge_same_runs();
            }
        }
        let (final_run, final_status) = if plan.final_run.is_some() {
            let metric = &plan.objective_of(&Block::Final).metric;
            let (mut status, cands, _, _) = self.block_state(&Block::Final);
            let run = match (status, cands) {
                (PhaseStatus::Blocked, _) => None,
                (PhaseStatus::Skipped, Some(cands)) => cands.first().map(|c| candidate_result(c, metric, interrupted)),
                (PhaseStatus::Waiting | PhaseStatus::Skipped, _) | (_, None) => {
                    let mut waiting = vec![self.waiting_final()];
                    if self.beyond_budget(&Block::Final, status, &mut waiting, &mut left) {
                        status = PhaseStatus::Skipped;
                    }
                    waiting.pop()
                }
                (_, Some(cands)) => cands.first().map(|c| candidate_result(c, metric, interrupted)),
            };
            (run, Some(status))
        } else {
            (None, None)
        };
        StudyResults {
            study: plan.name.clone(),
            metric: plan.objective.metric.clone(),
            goal: plan.objective.goal,
            phases,
            final_run,
            final_status,
            interrupted,
            train_wall: self.train_wall.as_secs_f64(),
            superseded: self.superseded.iter().map(repeat_result).collect(),
        }
    }

    /// What `max_runs` leaves for the blocks still waiting on a winner once the walk stopped
    /// (dry mode): the runs asked for so far and the rungs still to come of started blocks are
    /// taken. `None` without `max_runs`.
    fn runs_left_for_waiting(&self) -> Left {
        let Some(mut left) = self.budget.runs_left() else { return Left { runs: None, taken: BTreeSet::new() } };
        let graph = &self.plan().graph;
        for (block, &(runs, _)) in &graph.blocks {
            let state = &self.nodes[runs.index()];
            if let (At::Running | At::Pending, Some(cands), Some(p)) = (&state.at, &state.cands, graph.policy(block)) {
                let live = cands.iter().filter(|c| !c.pruned && !c.skipped()).count();
                let seeds = cands.first().map_or(1, |c| c.slots.len());
                left = left.saturating_sub(seeds * policy::runs_to_come(p, live, state.rung));
            }
        }
        Left { runs: Some(left), taken: BTreeSet::new() }
    }

    /// Marks the candidates of a block that never started (waiting on a winner, or skipped
    /// with what it needs) that the budget leaves out, in listed order, taking the runs the
    /// others will use from `left`. `true` when every one is left out.
    fn beyond_budget(
        &self,
        block: &Block,
        status: PhaseStatus,
        cands: &mut [CandidateResult],
        left: &mut Left,
    ) -> bool {
        let graph = &self.plan().graph;
        let Some(&(runs, _)) = graph.blocks.get(block) else { return false };
        let Node::Runs { seeds, .. } = &graph.dag[runs] else { return false };
        let known = if left.runs.is_some() { self.known_keys(block) } else { HashMap::new() };
        for c in cands.iter_mut() {
            // A run the study already has (a baseline equal to another phase's run) is free.
            let keys = known.get(&c.variant);
            let need = keys.map_or(*seeds, |keys| {
                keys.iter().filter(|k| !self.budget.is_admitted(**k) && !left.taken.contains(k)).count()
            });
            let out = match &mut left.runs {
                _ if status == PhaseStatus::Skipped => true,
                Some(l) if *l >= need => {
                    *l -= need;
                    left.taken.extend(keys.into_iter().flatten().copied());
                    false
                }
                Some(l) => {
                    *l = 0;
                    true
                }
                None => false,
            };
            if out {
                c.status = CandidateStatus::Skipped;
                c.reason = Some(SKIPPED.to_owned());
            }
        }
        if let (Some(l), Some(p)) = (left.runs.as_mut(), graph.policy(block)) {
            *l = l.saturating_sub(seeds * policy::runs_to_come(p, cands.len(), 0));
        }
        !cands.is_empty() && cands.iter().all(|c| c.status == CandidateStatus::Skipped)
    }

    /// The keys of a block's runs by variant, where its candidates resolve with the winners
    /// known (a block that waits only for its turn under a budget).
    fn known_keys(&self, block: &Block) -> HashMap<String, Vec<RunKey>> {
        let Ok(cands) = self.plan().resolve(block, &self.winners) else { return HashMap::new() };
        let stop_at = self.plan().graph.policy(block).and_then(policy::first_stop);
        let (trainer, fingerprint) = (self.engine.trainer, self.engine.fingerprint);
        cands
            .into_iter()
            .flatten()
            .filter_map(|c| {
                let keys: Option<Vec<RunKey>> = c
                    .seeds
                    .iter()
                    .map(|&seed| KeyInput::of_run(&c.config, seed, stop_at, trainer, fingerprint).ok().map(|i| i.key()))
                    .collect();
                Some((c.variant, keys?))
            })
            .collect()
    }

    /// The final run while the winners it combines are not all known.
    fn waiting_final(&self) -> CandidateResult {
        let variant = match self.plan().final_run.as_ref().map(|f| &f.source) {
            Some(crate::plan::FinalSource::After(_)) => "winner",
            _ => "combined",
        };
        CandidateResult::waiting(variant.to_owned(), Vec::new())
    }

    /// Candidates of a phase that waits on a winner, as far as the plan can tell without it.
    fn waiting_candidates(&self, phase: &Phase) -> Vec<CandidateResult> {
        self.plan()
            .preview_phase(&phase.name, &self.winners)
            .into_iter()
            .map(|(variant, changes)| CandidateResult::waiting(variant, changes))
            .collect()
    }
}

/// What `max_runs` leaves for the blocks that never started (dry mode), and the runs they take.
struct Left {
    runs: Option<usize>,
    taken: BTreeSet<RunKey>,
}

/// Attaches known results to slots, and marks those the budget left out; `true` when every
/// live slot has one or is left out.
fn fill(results: &HashMap<RunKey, Finished>, budget: &Admission, mut cands: Vec<Cand>) -> (Vec<Cand>, bool) {
    let mut complete = true;
    for c in cands.iter_mut().filter(|c| !c.pruned) {
        for s in &mut c.slots {
            if s.done.is_none()
                && let Some(k) = s.key
            {
                s.done = results.get(&k).cloned();
                s.skipped = s.done.is_none() && budget.is_skipped(k);
            }
            if s.done.is_none() && s.error.is_none() && !s.skipped {
                complete = false;
            }
        }
    }
    (cands, complete)
}

fn aggregate_of(c: &Cand, metric: &str) -> Aggregate {
    if let Some(err) = c.slots.iter().find_map(|s| s.error.clone()) {
        return Aggregate {
            status: Status::Failed,
            objective: None,
            metrics: BTreeMap::new(),
            metrics_std: BTreeMap::new(),
            reason: Some(err),
        };
    }
    let results: Vec<&crate::spec::RunResult> =
        c.slots.iter().filter_map(|s| s.done.as_ref().map(|d| &d.result)).collect();
    select::aggregate(&results, metric)
}

fn candidate_result(c: &Cand, metric: &str, interrupted: bool) -> CandidateResult {
    let complete = c.slots.iter().all(|s| s.done.is_some() || s.error.is_some());
    let agg = complete.then(|| aggregate_of(c, metric));
    let status = match &agg {
        _ if c.skipped() => CandidateStatus::Skipped,
        _ if c.pruned => CandidateStatus::Pruned,
        Some(a) => a.status.into(),
        None if interrupted => CandidateStatus::Cancelled,
        None => CandidateStatus::ToRun,
    };
    // A candidate missing some of its repeats has no objective: a partial mean is not its
    // result (its finished repeats are still listed, each with its own metrics).
    let a = agg.unwrap_or_else(empty_aggregate);
    let reason = if c.skipped() { Some(SKIPPED.to_owned()) } else { a.reason };
    CandidateResult {
        variant: c.candidate.variant.clone(),
        changes: c.candidate.changes.clone(),
        status,
        objective: a.objective,
        metrics: a.metrics,
        metrics_std: a.metrics_std,
        reason,
        repeats: c.slots.iter().map(repeat_result).collect(),
        config: (!c.invalid).then(|| c.candidate.config.clone()),
    }
}

fn repeat_result(s: &Slot) -> RepeatResult {
    let r = s.done.as_ref().map(|d| &d.result);
    RepeatResult {
        seed: s.seed,
        key: s.key,
        stop_at: s.stop_at,
        cached: s.done.as_ref().is_some_and(|d| d.source == Source::Cached),
        status: r.map(|r| r.status).or(s.error.as_ref().map(|_| Status::Failed)),
        seconds: r.map_or(0.0, |r| r.seconds),
        tokens_per_sec: r.map_or(0.0, |r| r.tokens_per_sec),
        steps: r.map_or(0, |r| r.steps),
        diverged_at: r.and_then(|r| r.diverged_at),
        error: r.and_then(|r| r.error.clone()).or_else(|| s.error.clone()),
        exit_code: r.and_then(|r| r.exit_code),
        log_tail: r.and_then(|r| r.log_tail.clone()),
        failure: s.done.as_ref().and_then(|d| d.failure.clone()),
        resumed_at: s.done.as_ref().and_then(|d| d.resumed_at),
        finished_at: r.and_then(|r| r.finished_at),
        cooldown: r.and_then(|r| r.cooldown.as_ref()).map(|c| c.steps),
        history: r.map(|r| r.history.clone()).unwrap_or_default(),
    }
}

/// A candidate whose config could not be resolved: it fails without running.
fn invalid_cand(invalid: InvalidCandidate) -> Cand {
    let cand = Candidate {
        variant: invalid.variant,
        changes: Vec::new(),
        config: crate::spec::RunConfig::defaults(),
        seeds: vec![0],
    };
    let slot = Slot { seed: 0, key: None, stop_at: None, done: None, error: Some(invalid.message), skipped: false };
    Cand { candidate: cand, slots: vec![slot], pruned: false, invalid: true }
}

fn empty_aggregate() -> Aggregate {
    Aggregate {
        status: Status::Ok,
        objective: None,
        metrics: BTreeMap::new(),
        metrics_std: BTreeMap::new(),
        reason: None,
    }
}

/// A candidate the budget left out: it cannot win or go on.
fn skipped_aggregate() -> Aggregate {
    Aggregate { status: Status::Pruned, reason: Some(SKIPPED.into()), ..empty_aggregate() }
}

/// Why a skipped candidate has no result.
const SKIPPED: &str = "skipped: the study's budget was spent";

/// Why a block waiting on a winner will be skipped.
const BEYOND: &str = "the budget will be spent before it";

fn pruned(a: &Aggregate) -> Aggregate {
    Aggregate { status: Status::Pruned, reason: Some("pruned by successive halving".into()), ..a.clone() }
}

/// `(settled, all)` run slots of a block's candidates.
fn slot_counts(cands: &[Cand], results: &HashMap<RunKey, Finished>, budget: &Admission) -> (usize, usize) {
    // A pruned candidate's slots hold its last rung, settled: they count as done.
    // Runs the budget left out count neither way: they will not run.
    let settled = |s: &&Slot| s.done.is_some() || s.error.is_some() || s.key.is_some_and(|k| results.contains_key(&k));
    let live = |s: &&Slot| !s.skipped && !s.key.is_some_and(|k| budget.is_skipped(k));
    let done = cands.iter().flat_map(|c| &c.slots).filter(live).filter(settled).count();
    (done, cands.iter().flat_map(|c| &c.slots).filter(live).count())
}
