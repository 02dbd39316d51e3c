//! `lrx worker MANIFEST` (hidden): what each Slurm job of `lrx run --executor slurm` runs
//! (`ops::worker` does the work; this prints its lines into the job's log, arms SIGTERM to stop
//! the run instead of the process, and exits with the code the job must show).

use crate::cli::{GlobalArgs, WorkerArgs};
use crate::exec::slurm::files::WorkerOutcome;
use crate::ops::worker;
use crate::spec::CancelFlag;

use super::Exit;

pub(crate) fn run(args: &WorkerArgs, _g: &GlobalArgs) -> anyhow::Result<Exit> {
    let task = worker::task(&args.manifest, args.index)?;
    outln!("lrx worker: run {} (Slurm job {})", task.key.short(), task.job_id);
    // SIGTERM (preemption, `scancel`) raises `term` instead of ending the process.
    let term = CancelFlag::new();
    super::interrupt::arm(&term, None);
    let notify: crate::train::Notify = std::sync::Arc::new(super::printer::note);
    let say = |line: String| outln!("{line}");
    match worker::train(&task, &term, notify, &say) {
        Ok((outcome, exit)) => {
            worker::leave(&task, outcome)?;
            match exit {
                Some(code) => std::process::exit(code),
                None => Ok(Exit::Success),
            }
        }
        Err(e) => {
            let e = anyhow::Error::from(e);
            worker::leave(&task, WorkerOutcome::Error { message: format!("{e:#}") })?;
            Err(e)
        }
    }
}
