//! Executing one run against the cache: look up, lock, look up again, train, publish.
//!
//! The per-key lock makes concurrent `lrx` processes on one cache train each key once: the
//! second one waits for the first and then finds its published entry. A cancelled run
//! publishes nothing; a failed run is not cached (failures are often environmental and
//! should be retried), while ok, diverged and pruned runs are deterministic results.

use crate::cache::{CacheError, KeyInput, Lookup, RunKey, Store};
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

/// One run to execute.
pub struct Request<'a> {
    pub input: &'a KeyInput,
    /// Train even when cached (`--rerun`), replacing the entry.
    pub force: bool,
    pub cancel: &'a CancelFlag,
    pub base_dir: std::path::PathBuf,
}

/// Looks the run up without training: `Some` on a verified hit.
pub fn cached(store: &Store, key: RunKey, notice: &mut dyn FnMut(Notice)) -> Result<Option<Finished>, CacheError> {
    match store.get(key) {
        Lookup::Hit(entry) => Ok(Some(Finished { key, result: entry.result, source: Source::Cached, train_wall: std::time::Duration::ZERO })),
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
    let key = req.input.key();
    if !req.force
        && let Some(hit) = cached(store, key, notice)?
    {
        return Ok(Outcome::Finished(Box::new(hit)));
    }
    let _lock = if let Some(lock) = store.try_lock(key)? { lock } else {
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
    let mut ctx = RunContext { cancel: req.cancel, progress, workdir: None, base_dir: req.base_dir.clone(), stop_at: req.input.stop_at };
    let started = std::time::Instant::now();
    let outcome = trainer.train(&req.input.config, &mut ctx);
    let train_wall = started.elapsed();
    let result = match outcome {
        Ok(result) => result,
        Err(_cancelled) => return Ok(Outcome::Cancelled),
    };
    if result.status != Status::Failed {
        if req.force {
            store.remove(key)?;
        }
        store.put(req.input, &result)?;
    }
    Ok(Outcome::Finished(Box::new(Finished { key, result, source: Source::Trained, train_wall })))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::cache::DataFingerprint;
    use crate::spec::{Cancelled, RunConfig, TrainerIdentity};

    /// A test double that counts calls and returns a result derived from the config.
    struct Counting {
        calls: AtomicUsize,
        status: Status,
    }

    impl Trainer for Counting {
        fn identity(&self, _: &RunConfig) -> TrainerIdentity {
            TrainerIdentity { name: "counting".into(), version: "1".into(), backend: "none".into(), precision: "f64".into(), device: None }
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
        KeyInput { trainer: trainer.identity(&config), config, data: DataFingerprint { corpus: "x".into() }, stop_at: None }
    }

    #[test]
    fn trains_once_then_serves_from_cache() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t = Counting { calls: AtomicUsize::new(0), status: Status::Ok };
        let cancel = CancelFlag::new();
        let input = input(&t);
        let req = Request { input: &input, force: false, cancel: &cancel, base_dir: ".".into() };
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
        assert!(matches!(execute(&store, &t, &forced, &mut |_| {}, &mut |_| {}).unwrap(), Outcome::Finished(f) if f.source == Source::Trained));
        assert_eq!(t.calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn failures_are_not_cached_and_cancellation_publishes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t = Counting { calls: AtomicUsize::new(0), status: Status::Failed };
        let cancel = CancelFlag::new();
        let input = input(&t);
        let req = Request { input: &input, force: false, cancel: &cancel, base_dir: ".".into() };
        execute(&store, &t, &req, &mut |_| {}, &mut |_| {}).unwrap();
        assert!(!store.contains(input.key()));
        cancel.cancel();
        assert!(matches!(execute(&store, &t, &req, &mut |_| {}, &mut |_| {}).unwrap(), Outcome::Cancelled));
        assert!(store.keys().unwrap().is_empty());
    }
}
