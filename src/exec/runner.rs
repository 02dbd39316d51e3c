//! Executing one run against the cache: look up, lock, look up again, train, publish.
//!
//! The per-key lock makes concurrent `lrx` processes on one cache train each key once: the
//! second one waits for the first and then finds its published entry. A cancelled run
//! publishes nothing; a failed run is not cached as a result (failures are often
//! environmental and should be retried) but recorded as a failed attempt, with its reason
//! and logs, which every command shows until the key succeeds; ok, diverged and pruned runs
//! are deterministic results. A run trains in a private work folder of the cache, whose
//! `*.log` files are kept with its entry or its failure record.

use std::path::PathBuf;

use crate::cache::store::Attempt;
use crate::cache::{CacheError, Kept, KeyInput, Lookup, RunKey, Store};
use crate::spec::{CancelFlag, Progress, RunContext, RunResult, Status, Trainer};

/// How a run was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Trained by this invocation.
    Trained,
    /// Read from the cache (possibly published meanwhile by another process).
    Cached,
}

/// A finished run.
#[derive(Clone, Debug)]
pub struct Finished {
    pub key: RunKey,
    pub result: RunResult,
    pub source: Source,
    /// Wall time of the trainer call (zero when cached): what is not engine overhead.
    pub train_wall: std::time::Duration,
    /// For a failed run: its recorded attempt (number, time, reason, exit code, log tail).
    pub failure: Option<Attempt>,
    /// Trained from an earlier rung's checkpoint at this step (only the rest was trained).
    pub resumed_at: Option<u64>,
}

impl Finished {
    /// A run read from the cache.
    pub fn from_cache(key: RunKey, result: RunResult) -> Finished {
        Finished {
            key,
            result,
            source: Source::Cached,
            train_wall: std::time::Duration::ZERO,
            failure: None,
            resumed_at: None,
        }
    }

    /// A run that failed earlier and has not been retried yet (what `show` and `report` see).
    pub fn recorded_failure(key: RunKey, attempt: Attempt) -> Finished {
        let mut result = crate::spec::RunResult::failed(attempt.reason.clone());
        result.exit_code = attempt.exit_code;
        result.log_tail.clone_from(&attempt.log_tail);
        Finished { failure: Some(attempt), ..Finished::from_cache(key, result) }
    }
}

/// What became of a run request.
#[derive(Clone, Debug)]
pub enum Outcome {
    Finished(Box<Finished>),
    Cancelled,
}

/// Something worth telling the user that is not progress.
#[derive(Clone, Debug)]
pub enum Notice {
    /// An entry failed verification; it was moved to `corrupt/` and will be recomputed.
    Corrupt { key: RunKey, reason: String },
    /// Waiting for another process that is training the same key.
    Waiting { key: RunKey },
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Corrupt { key, reason } => {
                write!(f, "cache entry {} is corrupt ({reason}); it will be recomputed", key.short())
            }
            Notice::Waiting { key } => {
                write!(f, "run {} is being trained by another process; waiting for it", key.short())
            }
        }
    }
}

/// One run to execute.
pub struct Request<'a> {
    pub input: &'a KeyInput,
    /// Train even when cached (`--rerun`), replacing the entry.
    pub force: bool,
    pub cancel: &'a CancelFlag,
    pub base_dir: std::path::PathBuf,
    /// Continue from the checkpoint stored with this earlier run of the same config (a
    /// successive-halving rung that stopped at the given step), where it has one.
    pub resume_from: Option<(RunKey, u64)>,
    /// The GPU the executor gave this run (`RunContext::device`).
    pub device: Option<usize>,
}

/// Looks the run up without training: `Some` on a verified hit.
pub fn cached(store: &Store, key: RunKey, notice: &mut dyn FnMut(Notice)) -> Result<Option<Finished>, CacheError> {
    match store.get(key) {
        Lookup::Hit(entry) => Ok(Some(Finished::from_cache(key, entry.result))),
        Lookup::Miss => Ok(None),
        Lookup::Corrupt(c) => {
            notice(Notice::Corrupt { key, reason: c.0 });
            store.quarantine(key)?;
            Ok(None)
        }
    }
}

/// Executes one run: from the cache when possible, else by training it.
pub fn execute(
    store: &Store,
    trainer: &dyn Trainer,
    req: &Request<'_>,
    progress: &mut dyn FnMut(Progress),
    notice: &mut dyn FnMut(Notice),
) -> Result<Outcome, CacheError> {
    execute_suspendable(store, trainer, req, None, progress, notice)
}

/// Like [`execute`], for a run that may be told to save its state and stop (a batch job warned
/// of its time limit, or preempted): raised, `stop` makes the trainer save after its current
/// step and stop; the run ends `Cancelled` and its state is kept with the key
/// ([`Store::keep_checkpoint`]), where the key's next attempt, in whichever job, continues from
/// it.
pub fn execute_suspendable(
    store: &Store,
    trainer: &dyn Trainer,
    req: &Request<'_>,
    stop: Option<&crate::spec::CheckpointSignal>,
    progress: &mut dyn FnMut(Progress),
    notice: &mut dyn FnMut(Notice),
) -> Result<Outcome, CacheError> {
    let key = req.input.key();
    if !req.force
        && let Some(hit) = cached(store, key, notice)?
    {
        return Ok(Outcome::Finished(Box::new(hit)));
    }
    let _lock = if let Some(lock) = store.try_lock(key)? {
        lock
    } else {
        notice(Notice::Waiting { key });
        store.lock(key)?
    };
    // Another process may have published it while we waited for the lock.
    if !req.force
        && let Some(hit) = cached(store, key, notice)?
    {
        return Ok(Outcome::Finished(Box::new(hit)));
    }
    if req.cancel.is_cancelled() {
        return Ok(Outcome::Cancelled);
    }
    let work = store.work_dir(key)?;
    // A run that stops early (a halving rung) leaves a checkpoint at its last step, kept with
    // its entry; a later rung of the same config continues from it instead of from step 0. The
    // built-in trainer writes a file there, a command trainer uses it as its `{checkpoint}`
    // folder (at every run, not only rungs: it may save as it goes).
    let checkpoint = work.join("checkpoint");
    let mut checkpoints = crate::spec::Checkpoints::default();
    if let Some(stop) = req.input.stop_at {
        checkpoints.save_to = Some(checkpoint.clone());
        checkpoints.save_at = vec![stop];
    }
    if let Some(stop) = stop {
        checkpoints.save_to = Some(checkpoint.clone());
        checkpoints.stop = stop.clone();
    }
    // What the key's last unfinished attempt kept comes first: a script's folder (the script
    // continues from its own saves) or a state saved on a stop signal (further along than any
    // rung). Then the earlier rung's checkpoint; the start last.
    let kept_state = work.join("kept.ckpt");
    let kept = store.take_checkpoint(key, &checkpoint, &kept_state);
    let suspended = match kept {
        Some(Kept::State { step }) => Some((kept_state, step)),
        _ => None,
    };
    let rung = req.resume_from.filter(|_| kept != Some(Kept::Folder)).and_then(|(from, step)| {
        let stored = store.checkpoint(from)?;
        if stored.is_dir() {
            // The script reads and updates its folder in place.
            copy_dir(&stored, &checkpoint).ok().map(|()| (checkpoint.clone(), step))
        } else {
            let copy = work.join("resume.ckpt");
            std::fs::copy(stored, &copy).ok().map(|_| (copy, step))
        }
    });
    let resume: Vec<(PathBuf, u64)> = suspended.into_iter().chain(rung).collect();
    let started = std::time::Instant::now();
    let mut trained = None;
    for (resume_from, at) in resume.iter().map(|(path, step)| (Some(path.clone()), Some(*step))).chain([(None, None)]) {
        let mut ctx = RunContext {
            cancel: req.cancel,
            progress: &mut *progress,
            workdir: Some(work.clone()),
            run_key: Some(key.to_hex()),
            base_dir: req.base_dir.clone(),
            stop_at: req.input.stop_at,
            cooldown: req.input.cooldown.is_some(),
            checkpoints: crate::spec::Checkpoints { resume_from, ..checkpoints.clone() },
            device: req.device,
        };
        let outcome = trainer.train(&req.input.config, &mut ctx);
        // A checkpoint the trainer refuses (made by another build, damaged) costs time, not
        // the run: it trains from the start instead.
        let refused = at.is_some()
            && matches!(&outcome, Ok(r) if r.status == Status::Failed && r.error.as_deref().is_some_and(|e| e.starts_with("cannot resume")));
        if !refused {
            trained = Some((outcome, at));
            break;
        }
    }
    let train_wall = started.elapsed();
    // An unfinished attempt (failed, interrupted, told to stop) leaves what it saved to the
    // key's next attempt: a script's folder as it is, or the state saved on the stop signal.
    let unfinished = !matches!(&trained, Some((Ok(r), _)) if r.status != Status::Failed);
    let saved_on_stop = stop.filter(|s| s.is_raised()).and_then(crate::spec::CheckpointSignal::last_saved);
    let folder = std::fs::read_dir(&checkpoint).is_ok_and(|mut d| d.next().is_some());
    if unfinished && (folder || (saved_on_stop.is_some() && checkpoint.is_file())) {
        store.keep_checkpoint(key, &checkpoint, saved_on_stop)?;
    }
    let published = match trained {
        Some((Ok(result), resumed_at)) => {
            // Kept only where a later rung may continue from it.
            let saved = (req.input.stop_at.is_some() && checkpoint.exists()).then_some(checkpoint.as_path());
            publish(store, req, key, result, &logs_in(&work), saved).map(|(result, failure)| {
                Outcome::Finished(Box::new(Finished {
                    key,
                    result,
                    source: Source::Trained,
                    train_wall,
                    failure,
                    resumed_at,
                }))
            })
        }
        _ => Ok(Outcome::Cancelled),
    };
    let _ = std::fs::remove_dir_all(&work);
    published
}

/// Copies a folder's files and folders (symbolic links as the files they point to).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

/// Stores a run's outcome: a result in `runs/`, a failure in its record.
fn publish(
    store: &Store,
    req: &Request<'_>,
    key: RunKey,
    result: RunResult,
    logs: &[PathBuf],
    checkpoint: Option<&std::path::Path>,
) -> Result<(RunResult, Option<Attempt>), CacheError> {
    let result = RunResult { finished_at: Some(crate::spec::run::now_millis()), ..result };
    if result.status == Status::Failed {
        let record = store.record_failure(req.input, &result, logs)?;
        return Ok((result, record.last().cloned()));
    }
    if req.force {
        store.remove(key)?;
    }
    store.put_with_files(req.input, &result, logs, checkpoint)?;
    Ok((result, None))
}

/// The `*.log` files a run left directly in its work folder.
fn logs_in(work: &std::path::Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(work)
        .map(|d| {
            d.flatten().map(|e| e.path()).filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "log")).collect()
        })
        .unwrap_or_default();
    logs.sort();
    logs
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::cache::DataFingerprint;
    use crate::spec::{Cancelled, RunConfig, TrainerIdentity};

    /// The identity of a test trainer: only its name tells them apart.
    fn fake_identity(name: &str) -> TrainerIdentity {
        TrainerIdentity {
            name: name.into(),
            version: "1".into(),
            backend: "none".into(),
            precision: "f64".into(),
            device: None,
        }
    }

    /// A test double that counts calls and returns a result derived from the config.
    struct Counting {
        calls: AtomicUsize,
        status: Status,
    }

    impl Trainer for Counting {
        fn identity(&self, _: &RunConfig) -> TrainerIdentity {
            fake_identity("counting")
        }
        fn train(&self, config: &RunConfig, ctx: &mut RunContext<'_>) -> Result<RunResult, Cancelled> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if ctx.cancel.is_cancelled() {
                return Err(Cancelled);
            }
            let mut r = RunResult::failed("nope");
            r.status = self.status;
            r.metrics.insert("val_loss".into(), config.train.matrix_lr);
            Ok(r)
        }
    }

    fn input(trainer: &dyn Trainer) -> KeyInput {
        let config = RunConfig::defaults();
        KeyInput {
            trainer: trainer.identity(&config),
            config,
            data: DataFingerprint { corpus: "x".into() },
            stop_at: None,
            cooldown: None,
        }
    }

    /// A plain request for `input`: not forced, no rung to continue from, no device.
    fn request<'a>(input: &'a KeyInput, cancel: &'a CancelFlag) -> Request<'a> {
        Request { input, force: false, cancel, base_dir: ".".into(), resume_from: None, device: None }
    }

    #[test]
    fn trains_once_then_serves_from_cache() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t = Counting { calls: AtomicUsize::new(0), status: Status::Ok };
        let cancel = CancelFlag::new();
        let input = input(&t);
        let req = request(&input, &cancel);
        let mut sources = Vec::new();
        for _ in 0..2 {
            match execute(&store, &t, &req, &mut |_| {}, &mut |_| {}).unwrap() {
                Outcome::Finished(f) => sources.push(f.source),
                Outcome::Cancelled => panic!("not cancelled"),
            }
        }
        assert_eq!(sources, [Source::Trained, Source::Cached]);
        assert_eq!(t.calls.load(Ordering::SeqCst), 1);
        let forced = Request { force: true, ..req };
        assert!(
            matches!(execute(&store, &t, &forced, &mut |_| {}, &mut |_| {}).unwrap(), Outcome::Finished(f) if f.source == Source::Trained)
        );
        assert_eq!(t.calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn failures_are_not_cached_and_cancellation_publishes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t = Counting { calls: AtomicUsize::new(0), status: Status::Failed };
        let cancel = CancelFlag::new();
        let input = input(&t);
        let req = request(&input, &cancel);
        execute(&store, &t, &req, &mut |_| {}, &mut |_| {}).unwrap();
        assert!(!store.contains(input.key()));
        let record = store.failure(input.key()).expect("a failed run leaves a record");
        assert_eq!(record.attempts.len(), 1);
        assert_eq!(record.attempts[0].reason, "nope");
        let Outcome::Finished(again) = execute(&store, &t, &req, &mut |_| {}, &mut |_| {}).unwrap() else {
            panic!("not cancelled")
        };
        assert_eq!(
            again.failure.as_ref().map(|a| a.attempt),
            Some(2),
            "the next run retries it and counts the attempt"
        );
        assert_eq!(t.calls.load(Ordering::SeqCst), 2);
        cancel.cancel();
        assert!(matches!(execute(&store, &t, &req, &mut |_| {}, &mut |_| {}).unwrap(), Outcome::Cancelled));
        assert!(store.keys().unwrap().is_empty());
    }

    /// A trainer that writes a log into its work folder, then succeeds or fails.
    struct Logging {
        fail: bool,
    }

    impl Trainer for Logging {
        fn identity(&self, _: &RunConfig) -> TrainerIdentity {
            fake_identity("logging")
        }
        fn train(&self, _: &RunConfig, ctx: &mut RunContext<'_>) -> Result<RunResult, Cancelled> {
            let work = ctx.workdir.clone().expect("the runner gives every run a work folder");
            assert!(work.is_absolute());
            std::fs::write(work.join("stderr.log"), "line 1\nline 2\n").unwrap();
            let mut r = RunResult::failed("exit status 3");
            r.exit_code = Some(3);
            if !self.fail {
                r.status = Status::Ok;
                r.error = None;
            }
            Ok(r)
        }
    }

    #[test]
    fn logs_are_kept_with_the_entry_or_the_failure_and_a_success_clears_the_failure() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cancel = CancelFlag::new();
        let input = input(&Logging { fail: true });
        let req = request(&input, &cancel);
        execute(&store, &Logging { fail: true }, &req, &mut |_| {}, &mut |_| {}).unwrap();
        let logs = store.failure_logs(input.key());
        assert_eq!(logs.len(), 1);
        assert_eq!(std::fs::read_to_string(&logs[0]).unwrap(), "line 1\nline 2\n");
        assert_eq!(store.failure(input.key()).unwrap().attempts[0].exit_code, Some(3));
        execute(&store, &Logging { fail: false }, &req, &mut |_| {}, &mut |_| {}).unwrap();
        assert!(store.failure(input.key()).is_none());
        assert_eq!(store.entry_logs(input.key()).len(), 1);
        store.verify(input.key()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path().join("work")).unwrap().count(), 0, "work folders are removed");
        assert_eq!(std::fs::read_dir(dir.path().join("locks")).unwrap().count(), 0, "lock files are removed");
    }

    /// A trainer like a resumable script: it reads and extends `state` in its checkpoint
    /// folder, and fails on the calls listed in `fail`.
    struct Saving {
        calls: AtomicUsize,
        fail: Vec<usize>,
        found: std::sync::Mutex<Vec<String>>,
    }

    impl Trainer for Saving {
        fn identity(&self, _: &RunConfig) -> TrainerIdentity {
            fake_identity("saving")
        }
        fn train(&self, _: &RunConfig, ctx: &mut RunContext<'_>) -> Result<RunResult, Cancelled> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let folder =
                ctx.checkpoints.save_to.clone().unwrap_or_else(|| ctx.workdir.clone().unwrap().join("checkpoint"));
            std::fs::create_dir_all(&folder).unwrap();
            let found = std::fs::read_to_string(folder.join("state")).unwrap_or_default();
            std::fs::write(folder.join("state"), format!("{found}{n};")).unwrap();
            self.found.lock().unwrap().push(found);
            let mut r = RunResult::failed("crashed");
            if !self.fail.contains(&n) {
                r.status = Status::Ok;
                r.error = None;
            }
            Ok(r)
        }
    }

    #[test]
    fn a_script_checkpoint_folder_goes_to_the_next_attempt_and_the_next_rung() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cancel = CancelFlag::new();
        let t = Saving { calls: AtomicUsize::new(0), fail: vec![0], found: std::sync::Mutex::new(Vec::new()) };
        let mut rung = input(&t);
        rung.stop_at = Some(5);
        let req = request(&rung, &cancel);
        // Attempt 1 fails after saving; attempt 2 continues from its folder and succeeds.
        execute(&store, &t, &req, &mut |_| {}, &mut |_| {}).unwrap();
        assert!(store.failure(rung.key()).is_some());
        execute(&store, &t, &req, &mut |_| {}, &mut |_| {}).unwrap();
        assert!(store.failure(rung.key()).is_none(), "the success clears the record and its folder");
        let stored = store.checkpoint(rung.key()).expect("the rung's folder is kept with its entry");
        assert_eq!(std::fs::read_to_string(stored.join("state")).unwrap(), "0;1;");
        store.verify(rung.key()).unwrap();
        // The next rung starts from a copy of it; a run that does not stop early keeps none.
        let last = input(&t);
        let next = Request { input: &last, resume_from: Some((rung.key(), 5)), ..req };
        let Outcome::Finished(f) = execute(&store, &t, &next, &mut |_| {}, &mut |_| {}).unwrap() else { panic!() };
        assert_eq!(f.resumed_at, Some(5));
        assert_eq!(*t.found.lock().unwrap(), ["", "0;", "0;1;"]);
        assert!(store.checkpoint(last.key()).is_none());
        assert_eq!(std::fs::read_to_string(stored.join("state")).unwrap(), "0;1;", "the stored one is untouched");
    }

    /// Counts ten steps; saves the step it is at where the checkpoint settings say so, and
    /// stops once saved on the stop signal; resumed, it starts from the saved step.
    struct Stepping;

    impl Trainer for Stepping {
        fn identity(&self, _: &RunConfig) -> TrainerIdentity {
            fake_identity("stepping")
        }
        fn train(&self, _: &RunConfig, ctx: &mut RunContext<'_>) -> Result<RunResult, Cancelled> {
            let ck = &ctx.checkpoints;
            let start: u64 =
                ck.resume_from.as_ref().map_or(0, |p| std::fs::read_to_string(p).unwrap().parse().unwrap());
            for step in start + 1..=10 {
                if ck.due(step) {
                    std::fs::write(ck.save_to.as_ref().unwrap(), step.to_string()).unwrap();
                    ck.stop.record_saved(step);
                    if ck.stop.is_raised() {
                        return Err(Cancelled);
                    }
                }
            }
            let mut r = RunResult::failed("");
            r.status = Status::Ok;
            r.error = None;
            r.metrics.insert("started_at".into(), start as f64);
            Ok(r)
        }
    }

    #[test]
    fn a_stopped_run_keeps_its_state_with_the_key_and_its_next_attempt_continues_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("cache")).unwrap();
        let cancel = CancelFlag::new();
        let input = input(&Stepping);
        let req = request(&input, &cancel);
        let signal = crate::spec::CheckpointSignal::new();
        signal.raise();
        let outcome = execute_suspendable(&store, &Stepping, &req, Some(&signal), &mut |_| {}, &mut |_| {}).unwrap();
        assert!(matches!(outcome, Outcome::Cancelled));
        assert_eq!(signal.last_saved(), Some(1));
        assert_eq!(store.kept_step(input.key()), Some(1), "the state survives the work folder");
        assert!(!store.contains(input.key()) && store.failure(input.key()).is_none(), "a stop is no result");
        assert_eq!(std::fs::read_dir(dir.path().join("cache/work")).unwrap().count(), 0);

        // The next attempt (another job, or this process) continues from step 1.
        let again = crate::spec::CheckpointSignal::new();
        let Outcome::Finished(f) =
            execute_suspendable(&store, &Stepping, &req, Some(&again), &mut |_| {}, &mut |_| {}).unwrap()
        else {
            panic!("not finished")
        };
        assert_eq!((f.resumed_at, f.result.metrics["started_at"]), (Some(1), 1.0));
        assert!(store.contains(input.key()));
        assert_eq!(store.kept_step(input.key()), None, "the success clears what was kept");
    }
}
