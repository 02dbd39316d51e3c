//! `lrx worker MANIFEST` (hidden): what each Slurm job of `lrx run --executor slurm` runs. It
//! trains the array task's run against the shared cache exactly as a local run would
//! (`runner::execute`: look up, lock, train, publish or record the failure), then leaves an
//! outcome file for the `lrx run` that follows the job.
//!
//! USR1 (the job's warning before its time limit, `--signal=B:USR1@N`) and SIGTERM (preemption,
//! `scancel`) make the built-in trainer save its full state after its current step and stop;
//! the worker exits with `EXIT_SUSPENDED` and the run continues in a new job from there (as
//! does a job Slurm requeues itself: a saved state of the run is always picked up). A command
//! trainer is stopped instead, and its run starts again from scratch.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cache::{RunKey, Store};
use crate::cli::{GlobalArgs, WorkerArgs};
use crate::exec::runner::{self, Outcome, Request, Source, Suspend};
use crate::exec::slurm::files::{self, JobFile, Layout, OutcomeFile, SuspendedStep, WorkerOutcome};
use crate::spec::{CancelFlag, CheckpointSignal, Progress, Status, Trainer, TrainerSpec};
use crate::train::Device;

use super::Exit;

pub(crate) fn run(args: &WorkerArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    let index = match args.index {
        Some(i) => i,
        None => std::env::var("SLURM_ARRAY_TASK_ID").ok().and_then(|v| v.parse().ok()).unwrap_or(0),
    };
    let keys = std::fs::read_to_string(&args.manifest)
        .with_context(|| format!("cannot read the job manifest `{}`", args.manifest.display()))?;
    let Some(key) = keys.lines().nth(index).and_then(|l| l.trim().parse::<RunKey>().ok()) else {
        bail!("the job manifest `{}` has no run key on line {index}", args.manifest.display());
    };
    // `<cache>/slurm/arrays/<id>.keys`
    let Some(cache) = args.manifest.parent().and_then(Path::parent).and_then(Path::parent) else {
        bail!("`{}` is not a manifest inside a cache", args.manifest.display());
    };
    let layout = Layout::new(cache);
    let job_id = job_id();
    outln!("lrx worker: run {} (Slurm job {job_id})", key.short());
    let leave = |outcome: WorkerOutcome| {
        let file = OutcomeFile { job: job_id.clone(), outcome };
        files::write_json(&layout.outcome_file(key), &file)
            .with_context(|| format!("cannot write the outcome of run {}", key.short()))
    };
    match work(&layout, key, g) {
        Ok((outcome, exit)) => {
            leave(outcome)?;
            match exit {
                Some(code) => std::process::exit(code),
                None => Ok(Exit::Success),
            }
        }
        Err(e) => {
            leave(WorkerOutcome::Error { message: format!("{e:#}") })?;
            Err(e)
        }
    }
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

/// Trains the run; its outcome, and an exit code other than 0 where the job must say more.
fn work(layout: &Layout, key: RunKey, g: &GlobalArgs) -> anyhow::Result<(WorkerOutcome, Option<i32>)> {
    let job_file = layout.job_file(key);
    let job: JobFile =
        files::read_json(&job_file).with_context(|| format!("cannot read the job file `{}`", job_file.display()))?;
    if job.input.key() != key {
        bail!("the job file `{}` describes another run than {}", job_file.display(), key.short());
    }
    let store =
        Store::open(&job.cache).with_context(|| format!("cannot open the cache at `{}`", job.cache.display()))?;
    let device = Device::parse(&job.device)?;
    let g = GlobalArgs { cache: job.cache.clone(), ..g.clone() };
    let trainer = super::study::trainers(device, &g, &job.base_dir);
    let here = trainer.identity(&job.input.config);
    if here != job.input.trainer {
        // Its key would claim a result this node cannot give (another CPU's kernels differ in
        // the last bits): refuse rather than publish it under that key.
        bail!(
            "this node's trainer ({} {} on {}) is not the one the run was keyed for ({} {} on {}): run the jobs on nodes like the submitting machine",
            here.name,
            here.version,
            here.backend,
            job.input.trainer.name,
            job.input.trainer.version,
            job.input.trainer.backend
        );
    }

    let (ckpt, step_file) = layout.suspended(key);
    let resume =
        files::read_json::<SuspendedStep>(&step_file).filter(|_| ckpt.is_file()).map(|s| (ckpt.clone(), s.step));
    if let Some((_, step)) = &resume {
        let restarts = std::env::var("SLURM_RESTART_COUNT").unwrap_or_else(|_| "0".into());
        outln!("run {}: continuing from its saved state at step {step} (restart count {restarts})", key.short());
    }
    let suspend = Suspend { signal: CheckpointSignal::new(), save_to: ckpt.clone(), resume };
    let cancel = CancelFlag::new();
    let builtin = matches!(job.input.config.train.trainer, TrainerSpec::Builtin);

    // USR1 and SIGTERM stop the run: the built-in trainer saves first, a command is stopped.
    let usr1 = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&usr1))
        .context("cannot install the USR1 handler")?;
    let term = CancelFlag::new();
    super::interrupt::arm(&term, None);
    let finished = AtomicBool::new(false);

    let req = Request {
        input: &job.input,
        force: job.force,
        cancel: &cancel,
        base_dir: job.base_dir.clone(),
        resume_from: job.resume_from,
    };
    let outcome = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !finished.load(Ordering::SeqCst) {
                if usr1.load(Ordering::SeqCst) || term.is_cancelled() {
                    outln!("run {}: signalled to stop{}", key.short(), if builtin { "; saving its state" } else { "" });
                    if builtin {
                        suspend.signal.raise();
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
                outln!("run {}: training ({} steps)", key.short(), total_steps.map_or("?".into(), |s| s.to_string()));
            }
        };
        let mut notice = |n: runner::Notice| outln!("{n}");
        let outcome = runner::execute_suspendable(&store, &trainer, &req, Some(&suspend), &mut progress, &mut notice);
        finished.store(true, Ordering::SeqCst);
        outcome
    })?;

    Ok(match outcome {
        Outcome::Finished(f) => {
            let _ = std::fs::remove_file(&ckpt);
            let _ = std::fs::remove_file(&step_file);
            let status = match f.result.status {
                Status::Failed => format!("failed: {}", f.result.error.as_deref().unwrap_or("")),
                s => format!("{s:?}").to_lowercase(),
            };
            outln!("run {}: {status}", key.short());
            let outcome = WorkerOutcome::Finished {
                trained: f.source == Source::Trained,
                train_wall: f.train_wall.as_secs_f64(),
                resumed_at: f.resumed_at,
            };
            (outcome, None)
        }
        Outcome::Cancelled => {
            match suspend.signal.last_saved().filter(|_| suspend.signal.is_raised() && ckpt.is_file()) {
                Some(step) => {
                    files::write_json(&step_file, &SuspendedStep { step })
                        .with_context(|| format!("cannot write `{}`", step_file.display()))?;
                    outln!("run {}: saved its state at step {step}; it continues in a new job", key.short());
                    (WorkerOutcome::Suspended { step }, Some(files::EXIT_SUSPENDED))
                }
                None => (WorkerOutcome::Stopped, Some(130)),
            }
        }
    })
}
