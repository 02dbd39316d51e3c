//! The scheduler: walks a study's phases in dependency order, runs what is not cached on a
//! pool of workers, picks winners and resolves what depends on them.
//!
//! The same walk, with training turned off (`Mode::Dry`), answers `plan`, `show`, `why` and
//! `cache gc --keep`: everything the cache already decides is followed, and the first phase
//! lacking results stops its branch (its candidates "to run", later phases "waiting").

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;

use super::executor::{Executor, Job};
use super::policy::{self, Decision};
use super::progress::{Event, Observer, RunLabel};
use super::runner::{self, Finished, Notice, Outcome, Source};
use super::select::{self, Aggregate};
use crate::cache::{CacheError, DataFingerprint, KeyInput, RunKey, Store};
use crate::plan::{Candidate, Changes, InvalidCandidate, Phase, Plan, Prune};
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
}

struct Cand {
    candidate: Candidate,
    slots: Vec<Slot>,
    /// Eliminated at a successive-halving rung.
    pruned: bool,
    /// Its config could not be resolved (its `cand.config` is a placeholder).
    invalid: bool,
}

enum State {
    Unresolved,
    Running {
        cands: Vec<Cand>,
        rung: usize,
    },
    Done {
        cands: Vec<Cand>,
        winner: usize,
    },
    Failed {
        cands: Vec<Cand>,
        message: String,
    },
    Blocked {
        message: String,
    },
    /// Dry mode: candidates known, results missing.
    Pending {
        cands: Vec<Cand>,
    },
    Waiting,
}

impl State {
    fn settled(&self) -> bool {
        matches!(
            self,
            State::Done { .. } | State::Failed { .. } | State::Blocked { .. } | State::Pending { .. } | State::Waiting
        )
    }
}

/// The walk's mutable state, owned by the coordinating thread.
struct Walk<'e, 'a> {
    engine: &'e Engine<'a>,
    states: Vec<State>,
    final_state: State,
    winners: BTreeMap<String, Changes>,
    found: BTreeMap<String, (String, Value)>,
    results: HashMap<RunKey, Finished>,
    queued: BTreeSet<RunKey>,
    queue: VecDeque<Job>,
    announced: (usize, usize),
    train_wall: std::time::Duration,
    /// Slots replaced when successive-halving survivors move to the next rung.
    superseded: Vec<Slot>,
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
            states: self.plan.phases.iter().map(|_| State::Unresolved).collect(),
            final_state: State::Unresolved,
            winners: BTreeMap::new(),
            found: BTreeMap::new(),
            results: HashMap::new(),
            queued: BTreeSet::new(),
            queue: VecDeque::new(),
            announced: (usize::MAX, usize::MAX),
            train_wall: std::time::Duration::ZERO,
            superseded: Vec::new(),
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
        loop {
            let mut changed = false;
            for i in 0..self.states.len() {
                changed |= self.step_phase(i);
            }
            if self.states.iter().all(State::settled) {
                changed |= self.step_final();
            }
            self.announce_counts();
            if !changed {
                return;
            }
        }
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
    /// candidates counts for each). Phases not resolved yet count by the plan's candidate
    /// count; a successive-halving phase counts the rungs its survivors will train, so the
    /// total stays put as the study advances (it only shrinks when a phase is blocked or a
    /// candidate fails and so trains no further rungs).
    fn run_counts(&self) -> (usize, usize) {
        let plan = self.plan();
        let (mut done, mut total) = (self.superseded.len(), self.superseded.len());
        let mut add = |(d, t): (usize, usize)| {
            done += d;
            total += t;
        };
        for (phase, st) in plan.phases.iter().zip(&self.states) {
            match st {
                State::Running { cands, rung } => add(slot_counts(cands, Some((phase, *rung)), &self.results)),
                State::Done { cands, .. } | State::Failed { cands, .. } | State::Pending { cands } => {
                    add(slot_counts(cands, None, &self.results));
                }
                State::Unresolved | State::Waiting => {
                    let seeds = phase.seeds.as_ref().map_or(phase.repeats as usize, Vec::len).max(1);
                    let later = match &phase.prune {
                        Prune::Halving { rungs, keep } => later_rungs(phase.candidate_count, 0, rungs.len(), *keep),
                        _ => 0,
                    };
                    add((0, seeds * (phase.candidate_count + later)));
                }
                State::Blocked { .. } => {}
            }
        }
        match (&self.final_state, &plan.final_run) {
            (
                State::Running { cands, .. }
                | State::Done { cands, .. }
                | State::Failed { cands, .. }
                | State::Pending { cands },
                _,
            ) => {
                add(slot_counts(cands, None, &self.results));
            }
            (State::Unresolved | State::Waiting, Some(f)) => {
                add((0, f.seeds.as_ref().map_or(f.repeats as usize, Vec::len).max(1)));
            }
            _ => {}
        }
        (done, total)
    }

    fn step_phase(&mut self, i: usize) -> bool {
        let phase = &self.engine.plan.phases[i];
        match &self.states[i] {
            State::Unresolved => {
                let upstream: Vec<&State> = phase
                    .after
                    .iter()
                    .filter_map(|a| self.plan().phases.iter().position(|p| &p.name == a))
                    .map(|j| &self.states[j])
                    .collect();
                if let Some(bad) = phase
                    .after
                    .iter()
                    .zip(&upstream)
                    .find(|(_, s)| matches!(s, State::Failed { .. } | State::Blocked { .. }))
                {
                    let message = format!(
                        "it comes after `{}`, which {}",
                        bad.0,
                        if matches!(bad.1, State::Failed { .. }) { "failed" } else { "did not run" }
                    );
                    self.engine
                        .observer
                        .event(Event::PhaseFailed { phase: phase.name.clone(), message: message.clone() });
                    self.states[i] = State::Blocked { message };
                    return true;
                }
                if upstream.iter().any(|s| matches!(s, State::Pending { .. } | State::Waiting)) {
                    self.states[i] = State::Waiting;
                    return true;
                }
                if !upstream.iter().all(|s| matches!(s, State::Done { .. })) {
                    return false;
                }
                match self.plan().resolve_phase(&phase.name, &self.winners) {
                    Ok(cands) => {
                        let force = self.engine.options.rerun.contains(&phase.name);
                        let stop_at = first_stop(phase);
                        let cands = self.make_cands(&phase.name, cands, stop_at, force, &[]);
                        self.states[i] = State::Running { cands, rung: 0 };
                    }
                    Err(e) => {
                        let message = e.to_string();
                        self.engine
                            .observer
                            .event(Event::PhaseFailed { phase: phase.name.clone(), message: message.clone() });
                        self.states[i] = State::Failed { cands: Vec::new(), message };
                    }
                }
                true
            }
            State::Running { .. } => self.settle_running(i),
            _ => false,
        }
    }

    fn step_final(&mut self) -> bool {
        if self.plan().final_run.is_none() {
            return false;
        }
        match &self.final_state {
            State::Unresolved => {
                if self.states.iter().any(|s| matches!(s, State::Pending { .. } | State::Waiting)) {
                    self.final_state = State::Waiting;
                    return true;
                }
                match self.plan().resolve_final(&self.winners) {
                    Ok(cand) => {
                        let force = self.engine.options.rerun.contains("final");
                        let cands = self.make_cands("final", vec![Ok(cand)], None, force, &[]);
                        self.final_state = State::Running { cands, rung: 0 };
                    }
                    Err(e) => self.final_state = State::Blocked { message: e.to_string() },
                }
                true
            }
            State::Running { .. } => {
                let State::Running { cands, .. } = std::mem::replace(&mut self.final_state, State::Waiting) else {
                    unreachable!()
                };
                let (cands, complete) = self.fill(cands);
                self.final_state = if complete {
                    let agg = Self::aggregate_of(&cands[0], &self.metric_of("final"));
                    if agg.status == Status::Ok {
                        State::Done { cands, winner: 0 }
                    } else {
                        State::Failed { message: agg.reason.unwrap_or_default(), cands }
                    }
                } else if self.engine.options.mode == Mode::Dry {
                    State::Pending { cands }
                } else {
                    State::Running { cands, rung: 0 }
                };
                !matches!(self.final_state, State::Running { .. })
            }
            _ => false,
        }
    }

    /// Builds run slots for candidates, serving cached runs at once and queueing the rest.
    /// `earlier`: the slots of the candidate's previous rung, whose checkpoints its runs continue
    /// from (successive halving); empty otherwise.
    fn make_cands(
        &mut self,
        phase: &str,
        cands: Vec<Result<Candidate, InvalidCandidate>>,
        stop_at: Option<u64>,
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
                                    phase: phase.to_owned(),
                                    variant: cand.variant.clone(),
                                    seed: (cand.seeds.len() > 1).then_some(seed),
                                    rung: input.stop_at,
                                };
                                let stop_at = input.stop_at;
                                self.request(key, input, label, force, resume);
                                Slot { seed, key: Some(key), stop_at, done: None, error: None }
                            }
                            Err(e) => Slot { seed, key: None, stop_at: None, done: None, error: Some(e) },
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
        force: bool,
        resume_from: Option<(RunKey, u64)>,
    ) {
        let metric = self.metric_of(&label.phase);
        if self.results.contains_key(&key) || self.queued.contains(&key) {
            return;
        }
        let store = self.engine.store;
        if self.engine.options.mode == Mode::Dry {
            // Read only: a corrupt entry is left where it is (`run` moves it aside). A run whose
            // last attempt failed shows as failed, with its reason, until it is retried.
            if let crate::cache::Lookup::Hit(entry) = store.get(key) {
                self.results.insert(key, Finished::from_cache(key, entry.result));
            } else if let Some(attempt) = store.failure(key).and_then(|r| r.last().cloned()) {
                self.results.insert(key, Finished::recorded_failure(key, attempt));
            }
            return;
        }
        if !force {
            let observer = self.engine.observer;
            let mut notice = |n: Notice| observer.event(Event::Warning(n.to_string()));
            if let Ok(Some(hit)) = runner::cached(self.engine.store, key, &mut notice) {
                self.results.insert(key, hit);
                return;
            }
        }
        if self.engine.options.mode == Mode::Run {
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
    }

    fn metric_of(&self, phase: &str) -> String {
        match (self.plan().phase(phase), &self.plan().final_run) {
            (Some(p), _) => p.objective.metric.clone(),
            (None, Some(f)) => f.objective.metric.clone(),
            (None, None) => self.plan().objective.metric.clone(),
        }
    }

    fn record(&mut self, key: RunKey, finished: Finished) {
        self.queued.remove(&key);
        self.train_wall += finished.train_wall;
        self.results.insert(key, finished);
    }

    /// Attaches known results to slots; `true` when every live slot has one.
    fn fill(&self, mut cands: Vec<Cand>) -> (Vec<Cand>, bool) {
        let mut complete = true;
        for c in cands.iter_mut().filter(|c| !c.pruned) {
            for s in &mut c.slots {
                if s.done.is_none()
                    && let Some(k) = s.key
                {
                    s.done = self.results.get(&k).cloned();
                }
                if s.done.is_none() && s.error.is_none() {
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

    fn settle_running(&mut self, i: usize) -> bool {
        let State::Running { cands, rung } = std::mem::replace(&mut self.states[i], State::Waiting) else {
            unreachable!()
        };
        let (mut cands, complete) = self.fill(cands);
        if !complete {
            self.states[i] = if self.engine.options.mode == Mode::Dry {
                State::Pending { cands }
            } else {
                State::Running { cands, rung }
            };
            return self.engine.options.mode == Mode::Dry;
        }
        let phase = &self.engine.plan.phases[i];
        let metric = phase.objective.metric.clone();
        let aggs: Vec<Aggregate> = cands
            .iter()
            .map(|c| if c.pruned { pruned(&Self::aggregate_of(c, &metric)) } else { Self::aggregate_of(c, &metric) })
            .collect();
        let pruned_now: Vec<bool> = cands.iter().map(|c| c.pruned).collect();
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
        let name = phase.name.clone();
        match policy::decide(phase, &outcomes) {
            Decision::Promote { survivors, stop_at } => {
                let force = self.engine.options.rerun.contains(&name);
                for (j, c) in cands.iter_mut().enumerate() {
                    if c.pruned {
                        continue;
                    }
                    if !survivors.contains(&j) {
                        c.pruned = true;
                        continue;
                    }
                    // Each survivor continues from its rung's checkpoint: only the increment trains.
                    let fresh = self.make_cands(&name, vec![Ok(c.candidate.clone())], stop_at, force, &c.slots);
                    let old =
                        std::mem::replace(&mut c.slots, fresh.into_iter().next().map(|f| f.slots).unwrap_or_default());
                    self.superseded.extend(old);
                }
                self.states[i] = State::Running { cands, rung: rung + 1 };
            }
            Decision::Winner { index, found } => {
                let (changes, label) = match &found {
                    Some((key, v)) => (vec![(key.clone(), v.clone())], format!("{key}={v}")),
                    None => (cands[index].candidate.changes.clone(), cands[index].candidate.variant.clone()),
                };
                let objective = if found.is_some() { None } else { aggs[index].objective };
                self.winners.insert(name.clone(), changes);
                if let Some(change) = found {
                    self.found.insert(name.clone(), change);
                }
                self.engine.observer.event(Event::PhaseDone { phase: name, winner: Some(label), objective });
                self.states[i] = State::Done { cands, winner: index };
            }
            Decision::Fail(message) => {
                self.engine.observer.event(Event::PhaseFailed { phase: name, message: message.clone() });
                self.states[i] = State::Failed { cands, message };
            }
        }
        true
    }

    fn into_results(self, interrupted: bool) -> StudyResults {
        let plan = self.engine.plan;
        let mut phases = Vec::new();
        for (phase, state) in plan.phases.iter().zip(&self.states) {
            let metric = phase.objective.metric.clone();
            let (status, cands, winner, message) = match state {
                State::Done { cands, winner } => (PhaseStatus::Done, Some(cands), Some(*winner), None),
                State::Failed { cands, message } => (PhaseStatus::Failed, Some(cands), None, Some(message.clone())),
                State::Blocked { message } => (PhaseStatus::Blocked, None, None, Some(message.clone())),
                State::Pending { cands } | State::Running { cands, .. } => {
                    (PhaseStatus::Pending, Some(cands), None, None)
                }
                State::Waiting | State::Unresolved => (PhaseStatus::Waiting, None, None, None),
            };
            let candidates = match cands {
                Some(cands) => cands.iter().map(|c| Self::candidate_result(c, &metric, interrupted)).collect(),
                None => self.waiting_candidates(phase),
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
        let final_metric = self.metric_of("final");
        let metric = &final_metric;
        let (final_run, final_status) = match &self.final_state {
            _ if plan.final_run.is_none() => (None, None),
            State::Done { cands, .. } => {
                (cands.first().map(|c| Self::candidate_result(c, metric, interrupted)), Some(PhaseStatus::Done))
            }
            State::Failed { cands, .. } => {
                (cands.first().map(|c| Self::candidate_result(c, metric, interrupted)), Some(PhaseStatus::Failed))
            }
            State::Running { cands, .. } | State::Pending { cands } => {
                (cands.first().map(|c| Self::candidate_result(c, metric, interrupted)), Some(PhaseStatus::Pending))
            }
            State::Blocked { .. } => (None, Some(PhaseStatus::Blocked)),
            State::Waiting | State::Unresolved => (Some(self.waiting_final()), Some(PhaseStatus::Waiting)),
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

    fn candidate_result(c: &Cand, metric: &str, interrupted: bool) -> CandidateResult {
        let complete = c.slots.iter().all(|s| s.done.is_some() || s.error.is_some());
        let agg = complete.then(|| Self::aggregate_of(c, metric));
        let status = match &agg {
            _ if c.pruned => CandidateStatus::Pruned,
            Some(a) => a.status.into(),
            None if interrupted => CandidateStatus::Cancelled,
            None => CandidateStatus::ToRun,
        };
        // A candidate missing some of its repeats has no objective: a partial mean is not its
        // result (its finished repeats are still listed, each with its own metrics).
        let a = agg.unwrap_or_else(empty_aggregate);
        CandidateResult {
            variant: c.candidate.variant.clone(),
            changes: c.candidate.changes.clone(),
            status,
            objective: a.objective,
            metrics: a.metrics,
            metrics_std: a.metrics_std,
            reason: a.reason,
            repeats: c.slots.iter().map(repeat_result).collect(),
            config: (!c.invalid).then(|| c.candidate.config.clone()),
        }
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
    let slot = Slot { seed: 0, key: None, stop_at: None, done: None, error: Some(invalid.message) };
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

fn pruned(a: &Aggregate) -> Aggregate {
    Aggregate { status: Status::Pruned, reason: Some("pruned by successive halving".into()), ..a.clone() }
}

/// `(settled, all)` run slots of a phase's candidates, plus the runs its later
/// successive-halving rungs will train while it is at `rung`.
fn slot_counts(
    cands: &[Cand],
    halving: Option<(&Phase, usize)>,
    results: &HashMap<RunKey, Finished>,
) -> (usize, usize) {
    // A pruned candidate's slots hold its last rung, settled: they count as done.
    let live = cands.iter().filter(|c| !c.pruned).count();
    let settled = |s: &&Slot| s.done.is_some() || s.error.is_some() || s.key.is_some_and(|k| results.contains_key(&k));
    let done = cands.iter().flat_map(|c| &c.slots).filter(settled).count();
    let mut total: usize = cands.iter().map(|c| c.slots.len()).sum();
    if let Some((phase, rung)) = halving
        && let Prune::Halving { rungs, keep } = &phase.prune
    {
        let seeds = cands.first().map_or(1, |c| c.slots.len());
        total += seeds * later_rungs(live, rung, rungs.len(), *keep);
    }
    (done, total)
}

/// Runs the rungs after `rung` will train, `live` candidates alive at `rung`, each rung
/// keeping `keep` of the last (at least one).
fn later_rungs(live: usize, rung: usize, rungs: usize, keep: f64) -> usize {
    let mut n = live;
    let mut runs = 0;
    for _ in rung.saturating_add(1)..rungs {
        n = ((n as f64) * keep).ceil().max(1.0) as usize;
        runs += n;
    }
    runs
}

/// The stop step of the first successive-halving rung, if the phase prunes that way.
fn first_stop(phase: &Phase) -> Option<u64> {
    match &phase.prune {
        Prune::Halving { rungs, .. } if rungs.len() > 1 => Some(rungs[0]),
        _ => None,
    }
}
