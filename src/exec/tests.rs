//! Unit tests of the engine over small synthetic studies, with a fake trainer (identity only)
//! and a fake executor that "trains" by formula: no burn, milliseconds each.

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::sync::Mutex;

use super::engine::{Engine, Mode, Options};
use super::executor::{Done, Executor, Job, Session};
use super::progress::{Event, Observer, Silent};
use super::runner::{Finished, Outcome, Source};
use crate::cache::{DataFingerprint, KeyInput, Store};
use crate::plan::Plan;
use crate::results::{CandidateStatus, PhaseStatus, StudyResults};
use crate::spec::{
    CancelFlag, Cancelled, DataConfig, RunConfig, RunContext, RunResult, Status, Trainer, TrainerIdentity,
};

/// Only its identity is used: the fake executor trains.
struct FakeTrainer;

impl Trainer for FakeTrainer {
    fn identity(&self, _: &RunConfig) -> TrainerIdentity {
        TrainerIdentity {
            name: "fake".into(),
            version: "1".into(),
            backend: "none".into(),
            precision: "f64".into(),
            device: None,
        }
    }
    fn train(&self, _: &RunConfig, _: &mut RunContext<'_>) -> Result<RunResult, Cancelled> {
        unreachable!("the fake executor trains")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Submit(String),
    Done(String),
}

/// Completes jobs in submission order with `outcome(config)`, publishing ok results to the
/// store like a real worker, and records what happened.
struct FakeExecutor<'a> {
    store: &'a Store,
    capacity: usize,
    outcome: Box<dyn Fn(&KeyInput) -> RunResult + Sync + 'a>,
    log: Mutex<Vec<Step>>,
    cancelled: Mutex<bool>,
    /// Raised after this many completions (an interrupt mid-study).
    cancel_after: Option<(usize, CancelFlag)>,
}

struct FakeSession<'e, 'a> {
    exec: &'e FakeExecutor<'a>,
    pending: VecDeque<Job>,
    completed: usize,
}

impl Executor for FakeExecutor<'_> {
    fn capacity(&self) -> usize {
        self.capacity
    }
    fn session(&self, body: &mut dyn FnMut(&mut dyn Session)) {
        body(&mut FakeSession { exec: self, pending: VecDeque::new(), completed: 0 });
    }
}

fn label(job: &Job) -> String {
    let rung = job.label.rung.map(|r| format!("@{r}")).unwrap_or_default();
    format!("{}/{}{rung}", job.label.phase, job.label.variant)
}

impl Session for FakeSession<'_, '_> {
    fn submit(&mut self, job: Job) {
        self.exec.log.lock().unwrap().push(Step::Submit(label(&job)));
        self.pending.push_back(job);
    }
    fn next(&mut self) -> Option<Done> {
        let job = self.pending.pop_front()?;
        self.exec.log.lock().unwrap().push(Step::Done(label(&job)));
        self.completed += 1;
        if let Some((n, flag)) = &self.exec.cancel_after
            && self.completed >= *n
        {
            flag.cancel();
        }
        if *self.exec.cancelled.lock().unwrap() {
            return Some((job, Ok(Outcome::Cancelled)));
        }
        let result = (self.exec.outcome)(&job.input);
        let key = job.input.key();
        if result.status != Status::Failed {
            self.exec.store.put(&job.input, &result).unwrap();
        }
        let finished = Finished {
            key,
            result,
            source: Source::Trained,
            train_wall: std::time::Duration::ZERO,
            failure: None,
            resumed_at: None,
        };
        Some((job, Ok(Outcome::Finished(Box::new(finished)))))
    }
    fn cancel_all(&mut self) {
        *self.exec.cancelled.lock().unwrap() = true;
    }
}

/// `val_loss = |matrix_lr − 0.05| + 1`, failing where `fail` says.
fn by_formula(fail: impl Fn(&RunConfig) -> bool + Sync + 'static) -> Box<dyn Fn(&KeyInput) -> RunResult + Sync> {
    Box::new(move |input| {
        let c = &input.config;
        if fail(c) {
            return RunResult::failed("boom");
        }
        let mut r = RunResult::failed("");
        r.status = Status::Ok;
        r.error = None;
        r.steps = input.stop_at.unwrap_or(10);
        r.metrics.insert("val_loss".into(), (c.train.matrix_lr - 0.05).abs() + 1.0 + c.train.embedding_lr * 0.001);
        r
    })
}

struct Harness {
    dir: tempfile::TempDir,
    plan: Plan,
}

impl Harness {
    fn new(study: &str) -> Harness {
        let plan = Plan::compile(study, Path::new("study.lrx")).unwrap_or_else(|f| panic!("{}", f.render(false)));
        Harness { dir: tempfile::tempdir().unwrap(), plan }
    }

    fn run(&self, mode: Mode, rerun: &[&str], exec: &FakeExecutor<'_>, cancel: CancelFlag) -> StudyResults {
        self.observed(mode, rerun, exec, cancel, &Silent)
    }

    fn observed(
        &self,
        mode: Mode,
        rerun: &[&str],
        exec: &FakeExecutor<'_>,
        cancel: CancelFlag,
        observer: &dyn Observer,
    ) -> StudyResults {
        let fingerprint =
            |_: &DataConfig| -> Result<DataFingerprint, String> { Ok(DataFingerprint { corpus: "fake".into() }) };
        let options = Options {
            mode,
            rerun: rerun.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>(),
            base_dir: ".".into(),
        };
        let engine = Engine {
            plan: &self.plan,
            store: exec.store,
            trainer: &FakeTrainer,
            fingerprint: &fingerprint,
            observer,
            executor: exec,
            cancel,
            options,
        };
        engine.run().unwrap()
    }

    fn store(&self) -> Store {
        Store::open(self.dir.path()).unwrap()
    }
}

fn executor<'a>(store: &'a Store, outcome: Box<dyn Fn(&KeyInput) -> RunResult + Sync + 'a>) -> FakeExecutor<'a> {
    FakeExecutor {
        store,
        capacity: 16,
        outcome,
        log: Mutex::new(Vec::new()),
        cancelled: Mutex::new(false),
        cancel_after: None,
    }
}

fn submitted(exec: &FakeExecutor<'_>) -> Vec<String> {
    exec.log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|s| if let Step::Submit(l) = s { Some(l.clone()) } else { None })
        .collect()
}

const BRANCHES: &str = r"
train { matrix_lr = 0.04 }
objective minimize val_loss
phase a { vary matrix_lr in [0.02, 0.08] }
phase b after a { vary embedding_lr in [0.3, 1.0] }
phase c { vary matrix_lr in [0.03] }
";

#[test]
fn a_failure_propagates_to_dependents_only() {
    let h = Harness::new(BRANCHES);
    let store = h.store();
    // Every run fails but `c`'s 0.03: all of `a` (0.04, 0.02, 0.08) and `c`'s baseline.
    let exec = executor(&store, by_formula(|c| (c.train.matrix_lr - 0.03).abs() > 1e-12));
    let r = h.run(Mode::Run, &[], &exec, CancelFlag::new());
    let status = |n: &str| r.phases.iter().find(|p| p.name == n).unwrap().status;
    assert_eq!(status("a"), PhaseStatus::Failed);
    assert_eq!(status("b"), PhaseStatus::Blocked, "b comes after a");
    assert_eq!(status("c"), PhaseStatus::Done, "c is independent of a");
    assert!(submitted(&exec).iter().all(|l| !l.starts_with("b/")), "nothing of b was submitted");
    assert_eq!(r.failed_runs().count(), 4, "a's three runs and c's baseline");
    assert!(r.has_failure());
}

#[test]
fn independent_branches_are_in_flight_together() {
    let h = Harness::new(BRANCHES);
    let store = h.store();
    let exec = executor(&store, by_formula(|_| false));
    h.run(Mode::Run, &[], &exec, CancelFlag::new());
    let log = exec.log.lock().unwrap().clone();
    let first_done = log.iter().position(|s| matches!(s, Step::Done(_))).unwrap();
    let before: Vec<&Step> = log[..first_done].iter().collect();
    assert!(before.iter().any(|s| matches!(s, Step::Submit(l) if l.starts_with("a/"))), "{log:?}");
    assert!(before.iter().any(|s| matches!(s, Step::Submit(l) if l.starts_with("c/"))), "{log:?}");
    // With capacity 1 the executor never has two at once.
    let h = Harness::new(BRANCHES);
    let store = h.store();
    let one = FakeExecutor { capacity: 1, ..executor(&store, by_formula(|_| false)) };
    h.run(Mode::Run, &[], &one, CancelFlag::new());
    let log = one.log.lock().unwrap().clone();
    let mut in_flight = 0i32;
    for s in &log {
        in_flight += if matches!(s, Step::Submit(_)) { 1 } else { -1 };
        assert!(in_flight <= 1, "{log:?}");
    }
}

#[test]
fn identical_configs_are_trained_once() {
    // `a`'s 0.04 is its baseline; `c`'s baseline is the same root config; `b`'s baseline is
    // `a`'s winner: each of those is one run.
    let h = Harness::new(&BRANCHES.replace("[0.02, 0.08]", "[0.02, 0.04, 0.08]"));
    let store = h.store();
    let exec = executor(&store, by_formula(|_| false));
    let r = h.run(Mode::Run, &[], &exec, CancelFlag::new());
    let subs = submitted(&exec);
    let keys: BTreeSet<String> =
        r.all_candidates().filter_map(crate::results::CandidateResult::key).map(crate::cache::RunKey::to_hex).collect();
    assert_eq!(subs.len(), keys.len(), "one submission per distinct run: {subs:?}");
    assert_eq!(r.counts().total, keys.len());
}

#[test]
fn halving_promotes_the_best_and_prunes_the_rest() {
    let h = Harness::new(
        "train { matrix_lr = 0.04  steps = 8 }\nobjective minimize val_loss\nphase a {\n  vary matrix_lr in [0.01, 0.02, 0.05, 0.3]\n  prune = halving(rungs = [4, 8], keep = 1/2)\n}\n",
    );
    let store = h.store();
    let exec = executor(&store, by_formula(|_| false));
    let r = h.run(Mode::Run, &[], &exec, CancelFlag::new());
    let subs = submitted(&exec);
    assert_eq!(subs.iter().filter(|l| l.ends_with("@4")).count(), 5, "every candidate trains the first rung: {subs:?}");
    let second: BTreeSet<&str> = subs.iter().filter(|l| !l.ends_with("@4")).map(String::as_str).collect();
    // |lr − 0.05|: 0.05 (0), 0.04 (baseline, 0.01), 0.02 (0.03) are the best three of five; keep ⌈5/2⌉ = 3.
    assert_eq!(second, BTreeSet::from(["a/matrix_lr=0.05", "a/baseline", "a/matrix_lr=0.02"]), "{subs:?}");
    let phase = &r.phases[0];
    assert_eq!(phase.winner().unwrap().variant, "matrix_lr=0.05");
    let pruned: BTreeSet<&str> =
        phase.candidates.iter().filter(|c| c.status == CandidateStatus::Pruned).map(|c| c.variant.as_str()).collect();
    assert_eq!(pruned, BTreeSet::from(["matrix_lr=0.01", "matrix_lr=0.3"]));
    assert_eq!(r.counts().pruned, 2);
}

#[test]
fn dry_mode_trains_nothing_and_rerun_trains_again() {
    let h = Harness::new(BRANCHES);
    let store = h.store();
    let dry = executor(&store, by_formula(|_| false));
    let r = h.run(Mode::Dry, &[], &dry, CancelFlag::new());
    assert!(submitted(&dry).is_empty());
    assert!(r.phases.iter().any(|p| p.status == PhaseStatus::Pending));

    let first = executor(&store, by_formula(|_| false));
    h.run(Mode::Run, &[], &first, CancelFlag::new());
    assert!(!submitted(&first).is_empty());
    let again = executor(&store, by_formula(|_| false));
    h.run(Mode::Run, &[], &again, CancelFlag::new());
    assert!(submitted(&again).is_empty(), "everything is cached: {:?}", submitted(&again));
    let rerun = executor(&store, by_formula(|_| false));
    h.run(Mode::Run, &["c"], &rerun, CancelFlag::new());
    let subs = submitted(&rerun);
    assert!(
        !subs.is_empty() && subs.iter().all(|l| l.starts_with("c/")),
        "`--rerun c` trains c's candidates only: {subs:?}"
    );
}

#[test]
fn an_interrupt_stops_submitting_and_keeps_what_finished() {
    let h = Harness::new(BRANCHES);
    let store = h.store();
    let cancel = CancelFlag::new();
    let exec = FakeExecutor {
        capacity: 1,
        cancel_after: Some((2, cancel.clone())),
        ..executor(&store, by_formula(|_| false))
    };
    let r = h.run(Mode::Run, &[], &exec, cancel);
    assert!(r.interrupted);
    assert!(*exec.cancelled.lock().unwrap(), "the executor was asked to cancel its jobs");
    assert_eq!(submitted(&exec).len(), 2, "nothing submitted after the interrupt");
    assert_eq!(store.keys().unwrap().len(), 2, "the two finished runs are cached");
}

/// Keeps the run counts the engine announces.
#[derive(Default)]
struct Counts(Mutex<Vec<(usize, usize)>>);

impl Observer for Counts {
    fn event(&self, event: Event) {
        if let Event::Counts { done, total } = event {
            self.0.lock().unwrap().push((done, total));
        }
    }
}

#[test]
fn the_final_run_waits_for_every_phase_and_is_blocked_only_by_those_it_needs() {
    let study =
        format!("{}final after b {{ repeats = 2 }}\n", BRANCHES.replace("phase c {", "phase c { baseline = false"));
    // `c`'s one candidate fails.
    let h = Harness::new(&study);
    let store = h.store();
    let exec = executor(&store, by_formula(|c| (c.train.matrix_lr - 0.03).abs() < 1e-12));
    let r = h.run(Mode::Run, &[], &exec, CancelFlag::new());
    assert_eq!(r.phases.iter().find(|p| p.name == "c").unwrap().status, PhaseStatus::Failed);
    assert_eq!(r.final_status, Some(PhaseStatus::Done), "c is not needed by the final run");
    let subs = submitted(&exec);
    // Two repeats, the first of which is b's winning run.
    assert_eq!(r.final_run.as_ref().unwrap().repeats.len(), 2);
    assert_eq!(subs.iter().filter(|l| l.starts_with("final/")).count(), 1, "{subs:?}");
    let first_final = subs.iter().position(|l| l.starts_with("final/")).unwrap();
    assert!(subs[first_final..].iter().all(|l| l.starts_with("final/")), "the final run comes last: {subs:?}");

    // `a` fails: `b` is blocked, and so is the final run after it; nothing of either trains.
    let h = Harness::new(&format!("{BRANCHES}final after b {{ repeats = 2 }}\n"));
    let store = h.store();
    let exec = executor(&store, by_formula(|c| (c.train.matrix_lr - 0.03).abs() > 1e-12));
    let r = h.run(Mode::Run, &[], &exec, CancelFlag::new());
    assert_eq!(r.final_status, Some(PhaseStatus::Blocked));
    assert!(r.final_run.is_none());
    assert!(submitted(&exec).iter().all(|l| !l.starts_with("b/") && !l.starts_with("final/")));
    assert_eq!(r.phases.iter().find(|p| p.name == "c").unwrap().status, PhaseStatus::Done);
}

#[test]
fn dry_mode_follows_the_cache_and_stops_each_branch_at_its_first_missing_run() {
    let study = format!("{BRANCHES}final after b\n");
    let h = Harness::new(&study);
    let store = h.store();
    // Only `a` was run (same root, so the same keys): its winner, `b`'s baseline and `c`'s
    // baseline (the root config) are cached.
    let only_a = Harness {
        dir: tempfile::tempdir().unwrap(),
        plan: Plan::compile(
            "train { matrix_lr = 0.04 }\nphase a { vary matrix_lr in [0.02, 0.08] }\n",
            Path::new("study.lrx"),
        )
        .unwrap(),
    };
    only_a.run(Mode::Run, &[], &executor(&store, by_formula(|_| false)), CancelFlag::new());
    let dry = executor(&store, by_formula(|_| false));
    let r = h.run(Mode::Dry, &[], &dry, CancelFlag::new());
    assert!(submitted(&dry).is_empty());
    let phase = |n: &str| r.phases.iter().find(|p| p.name == n).unwrap();
    assert_eq!(phase("a").status, PhaseStatus::Done);
    assert_eq!(phase("a").winner().unwrap().variant, "baseline", "0.04 is nearest 0.05");
    assert_eq!(phase("b").status, PhaseStatus::Pending);
    assert_eq!(phase("c").status, PhaseStatus::Pending);
    let status = |p: &str, v: &str| phase(p).candidates.iter().find(|c| c.variant == v).unwrap().status;
    assert_eq!(status("b", "baseline"), CandidateStatus::Ok, "a's winner, cached");
    assert_eq!(status("b", "embedding_lr=0.3"), CandidateStatus::ToRun);
    assert_eq!(status("c", "baseline"), CandidateStatus::Ok, "the root config, cached");
    assert_eq!(status("c", "matrix_lr=0.03"), CandidateStatus::ToRun);
    assert_eq!(r.final_status, Some(PhaseStatus::Waiting), "b has no winner yet");
}

#[test]
fn run_counts_keep_their_total_as_halving_prunes() {
    let h = Harness::new(
        "train { matrix_lr = 0.04  steps = 8 }\nobjective minimize val_loss\nphase a {\n  vary matrix_lr in [0.01, 0.02, 0.05, 0.3]\n  prune = halving(rungs = [2, 4, 8], keep = 1/2)\n}\nphase b after a { vary embedding_lr in [0.3] }\nfinal after b { repeats = 2 }\n",
    );
    let store = h.store();
    let exec = executor(&store, by_formula(|_| false));
    let counts = Counts::default();
    let r = h.observed(Mode::Run, &[], &exec, CancelFlag::new(), &counts);
    let counts = counts.0.into_inner().unwrap();
    // a: 5 candidates at the first rung, ⌈5/2⌉ = 3 at the second, 2 at the last; b: 2; final: 2.
    let total = 5 + 3 + 2 + 2 + 2;
    assert!(counts.iter().all(|&(_, t)| t == total), "{counts:?}");
    assert_eq!(counts.last(), Some(&(total, total)));
    assert!(counts.windows(2).all(|w| w[0].0 <= w[1].0), "done never goes back: {counts:?}");
    // b's baseline is a's winner at the full budget (and the final run's first repeat is b's
    // winner): each trained once, counted for each candidate.
    let keys: BTreeSet<crate::cache::RunKey> =
        r.all_candidates().flat_map(|c| &c.repeats).chain(&r.superseded).filter_map(|x| x.key).collect();
    assert!(keys.len() < total);
    assert_eq!(submitted(&exec).len(), keys.len());
    assert_eq!(r.phases[0].winner().unwrap().variant, "matrix_lr=0.05");
}

/// `a` has three runs (its baseline, 0.02, 0.08), `b` two of its own (no baseline), `c` one
/// beside `b`'s winner.
fn budgeted(limit: &str) -> String {
    format!(
        "train {{ matrix_lr = 0.04 }}\nbudget {{ {limit} }}\nphase a {{ vary matrix_lr in [0.02, 0.08] }}\nphase b after a {{\n  baseline = false\n  vary embedding_lr in [0.3, 1.0]\n}}\nphase c after b {{ vary matrix_lr in [0.05] }}\n"
    )
}

fn variants(r: &StudyResults, phase: &str, status: CandidateStatus) -> Vec<String> {
    let p = r.phases.iter().find(|p| p.name == phase).unwrap();
    p.candidates.iter().filter(|c| c.status == status).map(|c| c.variant.clone()).collect()
}

#[test]
fn max_runs_skips_the_tail_in_listed_order_and_raising_it_trains_only_the_skipped() {
    let h = Harness::new(&budgeted("max_runs = 2"));
    let store = h.store();
    let exec = executor(&store, by_formula(|_| false));
    let r = h.run(Mode::Run, &[], &exec, CancelFlag::new());
    assert_eq!(submitted(&exec), ["a/baseline", "a/matrix_lr=0.02"], "the first two runs in listed order");
    assert_eq!(variants(&r, "a", CandidateStatus::Skipped), ["matrix_lr=0.08"]);
    let a = &r.phases[0];
    assert_eq!(a.status, PhaseStatus::Done);
    assert!(a.under_budget(), "a's winner was chosen without 0.08");
    // `b` has no run within the budget: it cannot choose, and `c`, which needs its winner, is
    // skipped too. Nothing failed.
    let status = |n: &str| r.phases.iter().find(|p| p.name == n).unwrap().status;
    assert_eq!(status("b"), PhaseStatus::Skipped);
    assert_eq!(variants(&r, "b", CandidateStatus::Skipped), ["embedding_lr=0.3", "embedding_lr=1.0"]);
    assert_eq!(status("c"), PhaseStatus::Skipped);
    assert!(!r.has_failure());
    assert_eq!((r.counts().trained, r.counts().skipped), (2, 3));

    // An unchanged study trains nothing and skips the same runs.
    let again = executor(&store, by_formula(|_| false));
    let r2 = h.run(Mode::Run, &[], &again, CancelFlag::new());
    assert!(submitted(&again).is_empty(), "{:?}", submitted(&again));
    assert_eq!(variants(&r2, "a", CandidateStatus::Skipped), ["matrix_lr=0.08"]);
    assert_eq!((r2.counts().cached, r2.counts().skipped), (2, 3));

    // A larger budget trains only what was skipped (cached runs count, and stay cached).
    let more = Harness { dir: tempfile::tempdir().unwrap(), plan: Harness::new(&budgeted("max_runs = 4")).plan };
    let exec = executor(&store, by_formula(|_| false));
    let r3 = more.run(Mode::Run, &[], &exec, CancelFlag::new());
    assert_eq!(submitted(&exec), ["a/matrix_lr=0.08", "b/embedding_lr=0.3"]);
    assert!(!r3.phases[0].under_budget());
    assert_eq!(variants(&r3, "b", CandidateStatus::Skipped), ["embedding_lr=1.0"]);
    assert!(r3.phases[1].under_budget(), "b chose among what ran");
}

#[test]
fn without_a_budget_nothing_is_skipped() {
    let h = Harness::new(&budgeted("max_runs = 2").replace("budget { max_runs = 2 }\n", ""));
    let store = h.store();
    let exec = executor(&store, by_formula(|_| false));
    let r = h.run(Mode::Run, &[], &exec, CancelFlag::new());
    assert_eq!(submitted(&exec).len(), 6, "{:?}", submitted(&exec));
    assert_eq!(r.counts().skipped, 0);
    assert!(r.phases.iter().all(|p| p.status == PhaseStatus::Done && !p.under_budget()));
}

#[test]
fn a_budget_starts_blocks_in_listed_order() {
    // Without a budget `c` trains beside `a` (see `independent_branches_are_in_flight_together`);
    // with one, `c`'s runs ask only once `a` and `b` have settled, so that which runs are in
    // never depends on which finished first.
    let h = Harness::new(&BRANCHES.replace("objective", "budget { max_runs = 100 }\nobjective"));
    let store = h.store();
    let exec = executor(&store, by_formula(|_| false));
    h.run(Mode::Run, &[], &exec, CancelFlag::new());
    let subs = submitted(&exec);
    let first_c = subs.iter().position(|l| l.starts_with("c/")).unwrap();
    assert!(subs[..first_c].iter().any(|l| l.starts_with("b/")), "{subs:?}");
}

#[test]
fn a_time_budget_lets_runs_in_flight_finish_and_a_rerun_admits_the_same() {
    let study = "train { matrix_lr = 0.04 }\nbudget { time = 10s }\nphase a { vary matrix_lr in [0.02, 0.08, 0.03] }\n";
    let h = Harness::new(study);
    let store = h.store();
    let six_seconds = || {
        let formula = by_formula(|_| false);
        Box::new(move |input: &KeyInput| {
            let mut r = formula(input);
            r.seconds = 6.0;
            r
        })
    };
    // Two at a time: the baseline and 0.02 start at 0 s; 0.08 starts once the baseline's 6 s are
    // in; when 0.02 ends at 12 s the budget is spent: 0.03 is skipped, 0.08 (in flight) is kept.
    let exec = FakeExecutor { capacity: 2, ..executor(&store, six_seconds()) };
    let r = h.run(Mode::Run, &[], &exec, CancelFlag::new());
    assert_eq!(submitted(&exec), ["a/baseline", "a/matrix_lr=0.02", "a/matrix_lr=0.08"]);
    assert_eq!(variants(&r, "a", CandidateStatus::Skipped), ["matrix_lr=0.03"]);
    assert_eq!(variants(&r, "a", CandidateStatus::Ok).len(), 3);
    assert!(r.phases[0].under_budget());

    for mode in [Mode::Run, Mode::Dry] {
        let again = executor(&store, six_seconds());
        let r = h.run(mode, &[], &again, CancelFlag::new());
        assert!(submitted(&again).is_empty());
        assert_eq!(variants(&r, "a", CandidateStatus::Skipped), ["matrix_lr=0.03"], "{mode:?}");
    }
}

#[test]
fn plan_counts_max_runs_into_phases_that_wait_on_a_winner() {
    let h = Harness::new(&budgeted("max_runs = 4"));
    let store = h.store();
    let dry = executor(&store, by_formula(|_| false));
    let r = h.run(Mode::Dry, &[], &dry, CancelFlag::new());
    assert_eq!(variants(&r, "a", CandidateStatus::ToRun).len(), 3);
    assert_eq!(variants(&r, "b", CandidateStatus::Waiting), ["embedding_lr=0.3"]);
    assert_eq!(variants(&r, "b", CandidateStatus::Skipped), ["embedding_lr=1.0"]);
    let c = r.phases.iter().find(|p| p.name == "c").unwrap();
    assert_eq!(c.status, PhaseStatus::Skipped, "the budget is spent before c");
    assert!(c.candidates.iter().all(|c| c.status == CandidateStatus::Skipped));
}

#[test]
fn a_skipped_phase_blocks_only_what_needs_its_winner() {
    // a: 3 runs, b: 2 of its own (its baseline is a's winner), then the budget is spent: c's
    // one candidate is skipped, and the final run, which only comes after c, goes on (its run is
    // b's winner, already in).
    let study = format!(
        "{}final after b\n",
        BRANCHES
            .replace("phase c {", "phase c { baseline = false")
            .replace("objective", "budget { max_runs = 5 }\nobjective")
    );
    let h = Harness::new(&study);
    let store = h.store();
    let exec = executor(&store, by_formula(|_| false));
    let r = h.run(Mode::Run, &[], &exec, CancelFlag::new());
    let status = |n: &str| r.phases.iter().find(|p| p.name == n).unwrap().status;
    assert_eq!((status("a"), status("b"), status("c")), (PhaseStatus::Done, PhaseStatus::Done, PhaseStatus::Skipped));
    assert_eq!(r.final_status, Some(PhaseStatus::Done));
    assert_eq!(submitted(&exec).len(), 5, "{:?}", submitted(&exec));
    assert!(!r.has_failure());
}

#[test]
fn halving_rungs_count_as_runs_and_a_survivor_beyond_the_budget_is_skipped() {
    let h = Harness::new(
        "train { matrix_lr = 0.04  steps = 8 }\nbudget { max_runs = 6 }\nphase a {\n  vary matrix_lr in [0.01, 0.02, 0.05, 0.3]\n  prune = halving(rungs = [4, 8], keep = 1/2)\n}\n",
    );
    let store = h.store();
    let exec = executor(&store, by_formula(|_| false));
    let r = h.run(Mode::Run, &[], &exec, CancelFlag::new());
    let subs = submitted(&exec);
    // Five first-rung runs, then the survivors (baseline, 0.02, 0.05) in listed order: one more.
    assert_eq!(subs.iter().filter(|l| l.ends_with("@4")).count(), 5, "{subs:?}");
    assert_eq!(subs.iter().filter(|l| !l.ends_with("@4")).collect::<Vec<_>>(), ["a/baseline"], "{subs:?}");
    let phase = &r.phases[0];
    assert_eq!(phase.winner().unwrap().variant, "baseline", "the one survivor that finished");
    assert!(phase.under_budget());
    assert_eq!(variants(&r, "a", CandidateStatus::Skipped), ["matrix_lr=0.02", "matrix_lr=0.05"]);
    assert_eq!(variants(&r, "a", CandidateStatus::Pruned), ["matrix_lr=0.01", "matrix_lr=0.3"]);
}
