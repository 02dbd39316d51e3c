//! One task of a Slurm job array (`lrx worker MANIFEST`): find the task's run, train it
//! against the shared cache exactly as a local run would (`runner::execute`: look up, lock,
//! train, publish or record the failure), and leave an outcome file for the `lrx run` that
//! follows the job.
//!
//! USR1 (the job's warning before its time limit, `--signal=B:USR1@N`) and SIGTERM
//! (preemption, `scancel`) make the built-in trainer save its full state after its current
//! step and stop: the task ends `Suspended` (exit code `EXIT_SUSPENDED`) and the run continues
//! in a new job from there, as does a job Slurm requeues itself (a saved state of the run is
//! always picked up). A command trainer is stopped instead, and its run starts over.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::cache::{CacheError, RunKey, Store};
use crate::exec::runner::{self, Outcome, Request, Source};
use crate::exec::slurm::files::{self, JobFile, Layout, OutcomeFile, WorkerOutcome};
use crate::spec::{CancelFlag, CheckpointSignal, Progress, Status, Trainer, TrainerSpec};
use crate::train::{Device, Notify};

use super::study::Trainers;

/// Why a task could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot read the job manifest `{}`", path.display())]
    Manifest {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the job manifest `{}` has no run key on line {line}", path.display())]
    NoKey { path: PathBuf, line: usize },
    #[error("`{}` is not a manifest inside a cache (`<cache>/slurm/arrays/*.keys`)", path.display())]
    Outside { path: PathBuf },
    #[error("cannot read the job file `{}`", path.display())]
    JobFile { path: PathBuf },
    #[error("the job file `{}` describes another run than {key}", path.display())]
    OtherRun { path: PathBuf, key: String },
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Device(#[from] crate::train::TrainError),
    /// Its key would claim a result this node cannot give (another CPU's kernels differ in the
    /// last bits): the run is refused rather than published under that key.
    #[error(
        "this node's trainer ({here}) is not the one the run was keyed for ({keyed}): run the jobs on nodes like the submitting machine"
    )]
    OtherTrainer { here: String, keyed: String },
    #[error("cannot install the USR1 handler")]
    Signal(#[source] std::io::Error),
    #[error("cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An array task: its run and where its files are.
pub struct Task {
    pub key: RunKey,
    pub layout: Layout,
    /// `ARRAYID_INDEX`, as `squeue` names the job.
    pub job_id: String,
}

/// The task on line `index` of `manifest` (default: `SLURM_ARRAY_TASK_ID`, else 0).
pub fn task(manifest: &Path, index: Option<usize>) -> Result<Task, WorkerError> {
    let index = index.or_else(|| std::env::var("SLURM_ARRAY_TASK_ID").ok().and_then(|v| v.parse().ok())).unwrap_or(0);
    let keys = std::fs::read_to_string(manifest)
        .map_err(|source| WorkerError::Manifest { path: manifest.to_owned(), source })?;
    let key = keys
        .lines()
        .nth(index)
        .and_then(|l| l.trim().parse::<RunKey>().ok())
        .ok_or_else(|| WorkerError::NoKey { path: manifest.to_owned(), line: index })?;
    let cache = manifest
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .ok_or_else(|| WorkerError::Outside { path: manifest.to_owned() })?;
    Ok(Task { key, layout: Layout::new(cache), job_id: job_id() })
}

/// `ARRAYID_INDEX` of this job, as `squeue` names it.
fn job_id() -> String {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID"), var("SLURM_JOB_ID")) {
        (Some(array), Some(task), _) => format!("{array}_{task}"),
        (_, _, Some(job)) => job,
        _ => "local".to_owned(),
    }
}

/// Leaves the task's outcome for the `lrx run` that follows it.
pub fn leave(task: &Task, outcome: WorkerOutcome) -> Result<(), WorkerError> {
    let path = task.layout.outcome_file(task.key);
    let file = OutcomeFile { job: task.job_id.clone(), outcome };
    files::write_json(&path, &file).map_err(|source| WorkerError::Write { path, source })
}

/// Trains the task's run. `term` is raised by SIGTERM (the caller's handler); `say` gets the
/// lines worth a job log. Returns the outcome and, where the job must say more than 0, its
/// exit code.
pub fn train(
    task: &Task,
    term: &CancelFlag,
    notify: Notify,
    say: &(dyn Fn(String) + Sync),
) -> Result<(WorkerOutcome, Option<i32>), WorkerError> {
    let (layout, key) = (&task.layout, task.key);
    let job_file = layout.job_file(key);
    let job: JobFile = files::read_json(&job_file).ok_or_else(|| WorkerError::JobFile { path: job_file.clone() })?;
    if job.input.key() != key {
        return Err(WorkerError::OtherRun { path: job_file, key: key.short() });
    }
    let store = Store::open(&job.cache)?;
    let trainer = Trainers::new(Device::parse(&job.device)?, &job.cache, &job.base_dir, notify);
    let here = trainer.identity(&job.input.config);
    if here != job.input.trainer {
        let name = |t: &crate::spec::TrainerIdentity| format!("{} {} on {}", t.name, t.version, t.backend);
        return Err(WorkerError::OtherTrainer { here: name(&here), keyed: name(&job.input.trainer) });
    }

    // A state an earlier job of this run saved on its stop signal is kept with the key; the
    // runner continues from it.
    if let Some(step) = store.kept_step(key) {
        let restarts = std::env::var("SLURM_RESTART_COUNT").unwrap_or_else(|_| "0".into());
        say(format!("run {}: continuing from its saved state at step {step} (restart count {restarts})", key.short()));
    }
    let stop = CheckpointSignal::new();
    let cancel = CancelFlag::new();
    let builtin = matches!(job.input.config.train.trainer, TrainerSpec::Builtin);
    let usr1 = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&usr1)).map_err(WorkerError::Signal)?;
    let finished = AtomicBool::new(false);
    let req = Request {
        input: &job.input,
        force: job.force,
        cancel: &cancel,
        base_dir: job.base_dir.clone(),
        resume_from: job.resume_from,
        // Slurm gives a job its GPUs itself (`--gres`, `CUDA_VISIBLE_DEVICES`).
        device: None,
    };
    let outcome = std::thread::scope(|scope| {
        // The signals only raise flags; this thread turns them into the run's stop.
        scope.spawn(|| {
            while !finished.load(Ordering::SeqCst) {
                if usr1.load(Ordering::SeqCst) || term.is_cancelled() {
                    say(format!(
                        "run {}: signalled to stop{}",
                        key.short(),
                        if builtin { "; saving its state" } else { "" }
                    ));
                    if builtin {
                        stop.raise();
                    } else {
                        cancel.cancel();
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let mut progress = |p: Progress| {
            if let Progress::Started { total_steps, .. } = p {
                let steps = total_steps.map_or("?".into(), |s| s.to_string());
                say(format!("run {}: training ({steps} steps)", key.short()));
            }
        };
        let mut notice = |n: runner::Notice| say(n.to_string());
        let outcome = runner::execute_suspendable(&store, &trainer, &req, Some(&stop), &mut progress, &mut notice);
        finished.store(true, Ordering::SeqCst);
        outcome
    })?;

    Ok(match outcome {
        Outcome::Finished(f) => {
            let status = match f.result.status {
                Status::Failed => format!("failed: {}", f.result.error.as_deref().unwrap_or("")),
                s => format!("{s:?}").to_lowercase(),
            };
            say(format!("run {}: {status}", key.short()));
            let outcome = WorkerOutcome::Finished {
                trained: f.source == Source::Trained,
                train_wall: f.train_wall.as_secs_f64(),
                resumed_at: f.resumed_at,
            };
            (outcome, None)
        }
        Outcome::Cancelled => {
            // The runner kept the state the stop signal saved, with its step.
            match store.kept_step(key).filter(|_| stop.is_raised() && stop.last_saved().is_some()) {
                Some(step) => {
                    say(format!("run {}: saved its state at step {step}; it continues in a new job", key.short()));
                    (WorkerOutcome::Suspended { step }, Some(files::EXIT_SUSPENDED))
                }
                None => (WorkerOutcome::Stopped, Some(130)),
            }
        }
    })
}
