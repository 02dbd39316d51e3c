//! Where runs happen: the seam between the engine, which decides what must run, and whatever
//! runs it. The local thread pool (`--jobs`, or one run per GPU with `--gpus`) is the first
//! executor; a Slurm cluster plugs in behind the same trait, and the engine never knows which
//! one it talks to.
//!
//! An executor takes a [`Job`] (a resolved run: its whole `KeyInput`, which is all a worker
//! elsewhere needs), runs it against the shared cache (look up, lock, train, publish or record
//! the failure: `runner::execute`) and hands back its [`Outcome`]: finished (ok, diverged,
//! pruned or failed, with its reason) or cancelled.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use super::progress::{Event, Observer, RunLabel};
use super::runner::{self, Notice, Outcome, Request};
use crate::cache::{CacheError, KeyInput, Store};
use crate::spec::{CancelFlag, Progress, Trainer};

/// One resolved run to execute.
#[derive(Clone, Debug)]
pub struct Job {
    pub input: KeyInput,
    pub label: RunLabel,
    /// Train even when cached (`--rerun`), replacing the entry.
    pub force: bool,
    /// The objective's metric, for progress lines.
    pub metric: String,
    /// An earlier rung of the same config to continue from (its key and the step it stopped at).
    pub resume_from: Option<(crate::cache::RunKey, u64)>,
}

/// A job and how it ended.
pub type Done = (Job, Result<Outcome, CacheError>);

/// A place where runs execute.
pub trait Executor: Sync {
    /// Runs at once: the engine never has more in flight.
    fn capacity(&self) -> usize;

    /// Opens a session for `body`, which submits jobs and collects their outcomes through it;
    /// whatever the executor started for the session (threads, jobs) ends with it.
    fn session(&self, body: &mut dyn FnMut(&mut dyn Session));
}

/// Submitting runs and collecting outcomes, within [`Executor::session`].
pub trait Session {
    fn submit(&mut self, job: Job);
    /// Blocks until a submitted job ends; `None` when none is in flight.
    fn next(&mut self) -> Option<Done>;
    /// Asks every job in flight to stop (Ctrl-C); each still reports its outcome.
    fn cancel_all(&mut self);
}

/// Runs jobs on up to `jobs` threads of this process, each training with `trainer`; with
/// `devices`, one thread per GPU instead, each handing its own GPU to every run it trains.
pub struct LocalPool<'a> {
    pub store: &'a Store,
    pub trainer: &'a dyn Trainer,
    pub observer: &'a dyn Observer,
    /// Raised by Ctrl-C (or `cancel_all`); every run polls it.
    pub cancel: CancelFlag,
    /// The folder relative paths in the study are resolved against.
    pub base_dir: PathBuf,
    pub jobs: usize,
    /// GPU ordinals, one run on each at a time (`--gpus`); empty: no GPU slots, `jobs` runs.
    pub devices: Vec<usize>,
}

impl Executor for LocalPool<'_> {
    fn capacity(&self) -> usize {
        if self.devices.is_empty() { self.jobs.max(1) } else { self.devices.len() }
    }

    fn session(&self, body: &mut dyn FnMut(&mut dyn Session)) {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        std::thread::scope(|scope| {
            // Worker `i` owns GPU slot `i` for the session: there are never more workers than
            // slots (`capacity`), and a worker trains one run at a time, so no two runs in
            // flight share a GPU.
            let spawn = |worker: usize| {
                let job_rx = Arc::clone(&job_rx);
                let done_tx = done_tx.clone();
                let device = self.devices.get(worker).copied();
                scope.spawn(move || {
                    while let Ok(Ok(job)) = job_rx.lock().map(|rx| rx.recv()) {
                        let outcome = self.execute(&job, device);
                        if done_tx.send((job, outcome)).is_err() {
                            return;
                        }
                    }
                });
            };
            let mut session = PoolSession {
                pool: self,
                spawn: &spawn,
                job_tx: Some(job_tx),
                done_rx: &done_rx,
                workers: 0,
                in_flight: 0,
            };
            body(&mut session);
            // Closing the queue ends the workers; the scope joins them.
            session.job_tx = None;
        });
    }
}

struct PoolSession<'p, 'a> {
    pool: &'p LocalPool<'a>,
    spawn: &'p dyn Fn(usize),
    job_tx: Option<mpsc::Sender<Job>>,
    done_rx: &'p mpsc::Receiver<Done>,
    workers: usize,
    in_flight: usize,
}

impl Session for PoolSession<'_, '_> {
    fn submit(&mut self, job: Job) {
        // Workers start as runs need them, never more than runs in flight: `--jobs 1000` on a
        // ten-run study starts ten threads. Never more than the capacity either (one per GPU):
        // a job beyond it waits in the queue for a free worker.
        self.in_flight += 1;
        if self.in_flight > self.workers && self.workers < self.pool.capacity() {
            (self.spawn)(self.workers);
            self.workers += 1;
        }
        if let Some(tx) = &self.job_tx
            && let Err(mpsc::SendError(job)) = tx.send(job)
        {
            self.in_flight -= 1;
            self.pool.observer.event(Event::Cancelled { label: job.label });
        }
    }

    fn next(&mut self) -> Option<Done> {
        if self.in_flight == 0 {
            return None;
        }
        let done = self.done_rx.recv().ok()?;
        self.in_flight -= 1;
        Some(done)
    }

    fn cancel_all(&mut self) {
        self.pool.cancel.cancel();
    }
}

impl LocalPool<'_> {
    /// One job on this thread (on `device`, where it holds a GPU slot), its progress and
    /// notices turned into observer events.
    fn execute(&self, job: &Job, device: Option<usize>) -> Result<Outcome, CacheError> {
        let req = Request {
            input: &job.input,
            force: job.force,
            cancel: &self.cancel,
            base_dir: self.base_dir.clone(),
            resume_from: job.resume_from,
            device,
        };
        let label = job.label.clone();
        let mut total_steps = None;
        let mut progress = |p: Progress| match p {
            Progress::Started { total_steps: t, .. } => {
                total_steps = t;
                self.observer.event(Event::Started { label: label.clone(), total_steps: t });
            }
            Progress::Step { step, total_steps, loss, tokens_per_sec, .. } => {
                self.observer.event(Event::Step { label: label.clone(), step, total_steps, loss, tokens_per_sec });
            }
            Progress::Row(row) => {
                if row.metrics.keys().any(|k| k.starts_with("val_")) {
                    self.observer.event(Event::Eval { label: label.clone(), row, total_steps });
                }
            }
        };
        let mut notice = |n: Notice| self.observer.event(Event::Warning(n.to_string()));
        runner::execute(self.store, self.trainer, &req, &mut progress, &mut notice)
    }
}
