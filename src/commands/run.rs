//! `lrx run FILE`: train what is not cached, pick winners, run the final config, write outputs.

use std::collections::BTreeSet;

use anyhow::bail;

use crate::cli::{ExecutorKind, GlobalArgs, RunArgs};
use crate::exec::engine::{Mode, Options};
use crate::exec::{outputs, progress};
use crate::exec::results::StudyResults;
use crate::spec::CancelFlag;

use super::Exit;
use super::study::Study;

pub(crate) fn run(args: &RunArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    let started = std::time::Instant::now();
    if args.executor == ExecutorKind::Slurm {
        bail!("the Slurm executor is not part of this build yet; use `--executor local`");
    }
    let Some(study) = Study::open(&args.file, &args.device, g)? else { return Ok(Exit::Failure) };
    let mut rerun = BTreeSet::new();
    for phase in &args.rerun {
        if phase != "final" && study.plan.phase(phase).is_none() {
            let names = study.plan.phases.iter().map(|p| p.name.as_str()).chain(["final"]);
            let hint = crate::spec::schema::suggest(phase, names).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
            errln!("error: `--rerun {phase}`: the study has no phase `{phase}`{hint}");
            return Ok(Exit::Failure);
        }
        rerun.insert(phase.clone());
    }
    let jobs = args.jobs.unwrap_or(1).max(1);
    let cancel = CancelFlag::new();
    install_interrupt_handler(&cancel);
    let observer = progress::for_stderr(g.quiet);
    let options = Options { mode: Mode::Run, jobs, rerun, base_dir: study.base_dir.clone() };
    let results = study.engine_run(options, observer.as_ref(), cancel.clone())?;
    observer.finish();

    let out = study.out_dir(g);
    outputs::write_all(&results, &out).map_err(|e| anyhow::anyhow!("cannot write outputs under `{}`: {e}", out.display()))?;
    let wall = started.elapsed().as_secs_f64();
    // With one job, everything that is not training is the engine's; with several, runs
    // overlap and the difference means nothing.
    let overhead = (jobs == 1).then(|| (wall - results.train_wall).max(0.0));
    note!("{}", summary(&results));
    noteln!("outputs in `{}`", out.display());
    match overhead {
        Some(overhead) => verboseln!(
            "timing: {wall:.3} s wall, {:.3} s in the trainer, {overhead:.3} s elsewhere ({:.2} % of wall: loading, hashing, cache, scheduling, outputs)",
            results.train_wall,
            100.0 * overhead / wall.max(1e-9)
        ),
        None => verboseln!(
            "timing: {wall:.3} s wall, {:.3} s in the trainer over {jobs} jobs (runs overlap: measure the engine's overhead with `--jobs 1`)",
            results.train_wall
        ),
    }
    if args.json {
        let mut json = results.to_json();
        json["timing"] = serde_json::json!({"wall": wall, "training": results.train_wall, "overhead": overhead});
        outln!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(if results.interrupted {
        errln!("interrupted: finished runs are cached; run the same command again to continue");
        Exit::Interrupted
    } else if results.has_failure() {
        Exit::Failure
    } else {
        Exit::Success
    })
}

/// Ctrl-C once: stop gracefully (active runs are abandoned, finished ones stay cached).
/// Twice: leave at once.
fn install_interrupt_handler(cancel: &CancelFlag) {
    let cancel = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        if cancel.is_cancelled() {
            std::process::exit(130);
        }
        errln!("\ninterrupt: stopping active runs (press Ctrl-C again to quit at once)");
        cancel.cancel();
    });
}

/// `N runs: X trained, Y cached, Z failed`, then each phase's winner.
pub(crate) fn summary(results: &StudyResults) -> String {
    use std::fmt::Write as _;
    let c = results.counts();
    let mut s = format!("{} runs: {} trained, {} cached, {} failed", c.total, c.trained, c.cached, c.failed);
    if c.diverged > 0 {
        let _ = write!(s, ", {} diverged", c.diverged);
    }
    if c.pruned > 0 {
        let _ = write!(s, ", {} pruned", c.pruned);
    }
    s.push('\n');
    let fmt = |o: Option<f64>| o.map_or_else(|| "-".into(), |x| format!("{x:.4}"));
    for p in &results.phases {
        let line = match (p.winner(), &p.found) {
            (_, Some((k, v))) => format!("found {k} = {v}"),
            (Some(w), None) => format!("winner {} ({} {})", w.variant, p.metric, fmt(w.objective)),
            (None, None) => format!("{:?}{}", p.status, p.message.as_ref().map(|m| format!(": {m}")).unwrap_or_default()).to_lowercase(),
        };
        let _ = writeln!(s, "  {:<16} {line}", p.name);
    }
    if let Some(f) = &results.final_run {
        let _ = writeln!(s, "  {:<16} {} {}", "final", results.metric, fmt(f.objective));
    }
    s
}
