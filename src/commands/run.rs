//! `lrx run FILE`: train what is not cached, pick winners, run the final config, write outputs.

use std::collections::BTreeSet;

use anyhow::{Context, bail};

use crate::cli::{ExecutorKind, GlobalArgs, RunArgs};
use crate::exec::engine::{Mode, Options};
use crate::exec::slurm::{SlurmExecutor, SlurmOptions};
use crate::exec::{outputs, progress};
use crate::ops::find;
use crate::results::{PhaseStatus, StudyResults};
use crate::spec::CancelFlag;
use crate::train::Device;

use super::Exit;
use super::study::open_on;
use crate::ops::study::Study;

/// `--report`: the report rewritten as runs finish, by a thread of its own from the cache.
mod live {
    use std::path::Path;
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};

    use crate::exec::progress::{Event, Observer};
    use crate::ops::study::{Study, StudyError};
    use crate::report::{Live, ReportError, ReportFiles, ReportOptions, write_report};
    use crate::results::StudyResults;

    /// Seconds between the live page's reloads.
    const REFRESH: u32 = 5;

    /// Passes events on, and wakes the report's writer when a run settles.
    struct Tap<'a> {
        inner: &'a dyn Observer,
        wake: Mutex<Option<mpsc::Sender<()>>>,
        counts: Arc<Mutex<(usize, usize)>>,
    }

    impl Observer for Tap<'_> {
        fn event(&self, event: Event) {
            match &event {
                Event::Counts { done, total } => {
                    *self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = (*done, *total);
                    if let Some(tx) = self.wake.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref() {
                        let _ = tx.send(());
                    }
                }
                Event::Finished { .. } => {
                    if let Some(tx) = self.wake.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref() {
                        let _ = tx.send(());
                    }
                }
                _ => {}
            }
            self.inner.event(event);
        }
        fn finish(&self) {
            self.inner.finish();
        }
    }

    /// Runs the study (`engine`: the engine on any executor, told of runs through the observer
    /// it is given) while a second thread rewrites the live report (from a dry walk over the
    /// cache, which every finished run is in, whichever executor trained it) each time runs
    /// settle; wake-ups that pile up while it writes are taken as one.
    pub(super) fn run(
        study: &Study,
        out: &Path,
        observer: &dyn Observer,
        engine: impl FnOnce(&dyn Observer) -> Result<StudyResults, StudyError>,
    ) -> Result<StudyResults, StudyError> {
        let (tx, rx) = mpsc::channel::<()>();
        let counts = Arc::new(Mutex::new((0, 0)));
        let _ = tx.send(());
        let tap = Tap { inner: observer, wake: Mutex::new(Some(tx)), counts: Arc::clone(&counts) };
        let counts = &counts;
        std::thread::scope(|s| {
            let writer = s.spawn(move || {
                let mut failed = false;
                while rx.recv().is_ok() {
                    while rx.try_recv().is_ok() {}
                    let (done, total) = *counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let live = Live { refresh: REFRESH, done, total };
                    let written = study.dry().map_err(|e| e.to_string()).and_then(|r| {
                        let opts = ReportOptions { live: Some(live), ..ReportOptions::default() };
                        write_report(&r, out, &opts).map_err(|e| e.to_string())
                    });
                    if let (Err(e), false) = (written, failed) {
                        // Once: the study goes on, and the final report is tried again.
                        errln!("warning: cannot update the live report: {e}");
                        failed = true;
                    }
                }
            });
            let results = engine(&tap);
            // The writer ends once the last wake-up is handled; the final report comes after it.
            drop(tap.wake.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take());
            let _ = writer.join();
            results
        })
    }

    /// The report of the finished (or interrupted) study: no reloading.
    pub(super) fn final_report(results: &StudyResults, out: &Path) -> Result<ReportFiles, ReportError> {
        write_report(results, out, &ReportOptions::default())
    }
}

pub(crate) fn run(args: &RunArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    let started = std::time::Instant::now();
    let slurm_flags = args.slurm.given();
    if args.executor != ExecutorKind::Slurm && !slurm_flags.is_empty() {
        bail!("`{}` applies only with `--executor slurm`", slurm_flags.join("`, `"));
    }
    let gpus = match &args.gpus {
        Some(list) => gpus(list)?,
        None => Vec::new(),
    };
    let device = match (args.device.as_deref(), gpus.is_empty()) {
        (None, true) => Device::Cpu,
        // A command trainer can use the GPUs in any build; the built-in trainer's runs fail
        // with the reason in a build without CUDA.
        (None | Some("cuda"), false) => Device::Cuda(0),
        (Some("cpu-generic"), false) => Device::CpuGeneric,
        (Some(d), false) => bail!(
            "`--gpus` hands each run one of the listed GPUs; `--device {d}` cannot use them (leave `--device` out, or write `--device cuda`)"
        ),
        (Some(d), true) => Device::parse(d)?,
    };
    if !gpus.is_empty() && args.jobs.is_some() {
        bail!("`--gpus` runs one run per GPU at a time; leave out `--jobs`");
    }
    let Some(mut study) = open_on(&args.file, device, g)? else { return Ok(Exit::Failure) };
    study.gpus.clone_from(&gpus);
    let mut rerun = BTreeSet::new();
    for phase in &args.rerun {
        if let Err(e) = find::phase(phase, study.plan.phases.iter().map(|p| p.name.as_str()).chain(["final"])) {
            errln!("error: `--rerun {phase}`: {e}");
            return Ok(Exit::Failure);
        }
        rerun.insert(phase.clone());
    }
    let slurm = args.executor == ExecutorKind::Slurm;
    if slurm && !gpus.is_empty() {
        bail!(
            "`--gpus` hands out this machine's GPUs; with `--executor slurm`, ask the cluster for them (`--gres gpu:1`)"
        );
    }
    let jobs = if gpus.is_empty() { args.jobs.unwrap_or(if slurm { 100 } else { 1 }).max(1) } else { gpus.len() };
    let cancel = CancelFlag::new();
    let observer: std::sync::Arc<dyn progress::Observer> = progress::for_stderr(g.quiet).into();
    super::interrupt::arm(&cancel, Some(std::sync::Arc::clone(&observer)));
    let options = Options { mode: Mode::Run, rerun, base_dir: study.base_dir.clone() };
    let out = study.out_dir(g.out.as_deref());
    let mut slurm_stats = None;
    // The engine on this run's executor, told of runs through `obs` (the live report's tap, or
    // the progress display itself).
    let results = if slurm {
        let executor = slurm_executor(args, g, &study, jobs, observer.as_ref(), &cancel)?;
        let engine = |obs: &dyn progress::Observer| study.engine_run_on(options, &executor, obs, cancel.clone());
        let results =
            if args.report { live::run(&study, &out, observer.as_ref(), engine) } else { engine(observer.as_ref()) };
        slurm_stats = Some(executor.stats.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner));
        results?
    } else {
        let engine = |obs: &dyn progress::Observer| study.engine_run(options, jobs, obs, cancel.clone());
        if args.report { live::run(&study, &out, observer.as_ref(), engine)? } else { engine(observer.as_ref())? }
    };
    observer.finish();

    if let Err(e) = outputs::write_all(&results, &out) {
        // An environment error (exit 2), after the summary: the runs themselves are safe.
        err!("{}", summary(&results));
        errln!("note: every finished run is cached; fix the output folder and run again (nothing retrains)");
        bail!("cannot write outputs under `{}`: {e}", out.display());
    }
    let wall = started.elapsed().as_secs_f64();
    // With one job, everything that is not training is the engine's; with several, runs
    // overlap and the difference means nothing.
    let overhead = (jobs == 1 && !slurm).then(|| (wall - results.train_wall).max(0.0));
    let report = if args.report { Some(live::final_report(&results, &out)) } else { None };
    note!("{}", summary(&results));
    noteln!("outputs in `{}`", out.display());
    match report {
        Some(Ok(files)) => noteln!("report: {}", files.html.as_ref().unwrap_or(&files.markdown).display()),
        Some(Err(e)) => errln!("warning: cannot write the report: {e}"),
        None => {}
    }
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
    if let Some(s) = &slurm_stats {
        verboseln!(
            "slurm: {} runs submitted in {} sbatch calls, {} adopted, {} retried, {} continued after a signal; {} squeue polls ({:.1} a minute)",
            s.submitted,
            s.sbatch_calls,
            s.adopted,
            s.retried,
            s.resubmitted_suspended,
            s.squeue_calls,
            s.squeue_calls as f64 * 60.0 / wall.max(1e-9)
        );
    }
    if args.json {
        let mut json = results.to_json();
        json["timing"] = serde_json::json!({"wall": wall, "training": results.train_wall, "overhead": overhead});
        if let Some(s) = &slurm_stats {
            json["slurm"] = serde_json::json!({
                "submitted": s.submitted,
                "sbatch_calls": s.sbatch_calls,
                "squeue_calls": s.squeue_calls,
                "adopted": s.adopted,
                "retried": s.retried,
                "continued": s.resubmitted_suspended,
            });
        }
        outln!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(if results.interrupted {
        errln!("interrupted: finished runs are cached; run the same command again to continue");
        Exit::Interrupted
    } else if results.has_failure() {
        // Exit code 1: the study did not finish cleanly (scripts can tell from 0).
        Exit::Failure
    } else {
        Exit::Success
    })
}

/// The GPU ordinals of `--gpus LIST`: `0,1,3`, or `all`, every GPU `nvidia-smi -L` lists.
/// `LRX_FAKE_GPUS=N` (for tests on machines without GPUs) makes `all` mean `0..N`.
fn gpus(list: &str) -> anyhow::Result<Vec<usize>> {
    let list = list.trim();
    if list == "all" {
        if let Some(n) = std::env::var("LRX_FAKE_GPUS").ok().and_then(|n| n.trim().parse::<usize>().ok()) {
            if n == 0 {
                bail!("`--gpus all`: no GPU (LRX_FAKE_GPUS=0)");
            }
            return Ok((0..n).collect());
        }
        let out = std::process::Command::new("nvidia-smi").arg("-L").output().map_err(|e| {
            anyhow::anyhow!(
                "`--gpus all`: cannot run `nvidia-smi -L` ({e}); is the NVIDIA driver installed? Name the GPUs instead: `--gpus 0,1`"
            )
        })?;
        if !out.status.success() {
            bail!(
                "`--gpus all`: `nvidia-smi -L` failed: {}",
                String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("no reason given")
            );
        }
        let found = gpus_listed(&String::from_utf8_lossy(&out.stdout));
        if found.is_empty() {
            bail!("`--gpus all`: `nvidia-smi -L` lists no GPU");
        }
        return Ok(found);
    }
    let mut out: Vec<usize> = Vec::new();
    for item in list.split(',').map(str::trim) {
        let Ok(n) = item.parse::<usize>() else {
            bail!("`--gpus {list}`: `{item}` is not a GPU number; write `all` or numbers such as `0,1,2,3`")
        };
        if out.contains(&n) {
            bail!("`--gpus {list}`: GPU {n} is listed twice (one run per GPU at a time)");
        }
        out.push(n);
    }
    Ok(out)
}

/// The ordinals in `nvidia-smi -L` output (`GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-…)`).
fn gpus_listed(text: &str) -> Vec<usize> {
    text.lines().filter_map(|l| l.strip_prefix("GPU ")?.split(':').next()?.trim().parse().ok()).collect()
}

/// The Slurm executor for `args`: jobs run this very binary against the cache, in the
/// current folder, with absolute paths (a node's working folder is not ours).
fn slurm_executor<'a>(
    args: &RunArgs,
    g: &GlobalArgs,
    study: &'a Study,
    jobs: usize,
    observer: &'a dyn progress::Observer,
    cancel: &CancelFlag,
) -> anyhow::Result<SlurmExecutor<'a>> {
    let s = &args.slurm;
    let poll = s.poll_interval.unwrap_or(5.0);
    if !(poll.is_finite() && (0.05..=3600.0).contains(&poll)) {
        bail!("`--poll-interval {poll}`: give seconds between 0.05 and 3600");
    }
    let absolute =
        |p: &std::path::Path| std::path::absolute(p).with_context(|| format!("cannot resolve `{}`", p.display()));
    Ok(SlurmExecutor {
        store: &study.store,
        observer,
        cancel: cancel.clone(),
        options: SlurmOptions {
            partition: s.partition.clone(),
            account: s.account.clone(),
            qos: s.qos.clone(),
            time: s.time.clone(),
            cpus_per_task: s.cpus_per_task,
            mem: s.mem.clone(),
            gres: s.gres.clone(),
            extra: s.sbatch_arg.clone(),
            max_jobs: jobs,
            retries: s.retries.unwrap_or(2),
            poll: std::time::Duration::from_secs_f64(poll),
            signal_before: s.signal_before.unwrap_or(120),
        },
        lrx: std::env::current_exe().context("cannot find the lrx binary the jobs should run")?,
        cache: absolute(&g.cache)?,
        base_dir: absolute(&study.base_dir)?,
        workdir: std::env::current_dir().context("cannot read the current folder")?,
        device: args.device.clone().unwrap_or_else(|| "cpu".to_owned()),
        stats: std::sync::Mutex::default(),
    })
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
    if c.skipped > 0 {
        let _ = write!(s, ", {} skipped by the budget", c.skipped);
    }
    s.push('\n');
    let fmt = |o: Option<f64>| o.map_or_else(|| "-".into(), |x| format!("{x:.4}"));
    for p in &results.phases {
        let line = match (p.winner(), &p.found) {
            (_, Some((k, v))) => format!("found {k} = {v}"),
            (Some(w), None) => {
                let mut line = format!("winner {} ({} {})", w.variant, p.metric, fmt(w.objective));
                if p.under_budget() {
                    line.push_str(", chosen under the budget");
                }
                if let Some(l) = p.lead().filter(|l| l.within_noise) {
                    let _ = write!(
                        line,
                        ", within noise of {} (lead {:.4}{})",
                        p.candidates[l.runner_up].variant,
                        l.margin,
                        l.std_error
                            .map_or_else(|| ", under 1 %, no repeats".to_owned(), |se| format!(" < std error {se:.4}"))
                    );
                }
                line
            }
            (None, None) => {
                format!("{:?}{}", p.status, p.message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())
                    .to_lowercase()
            }
        };
        let _ = writeln!(s, "  {:<16} {line}", p.name);
    }
    if let Some(f) = &results.final_run {
        let line = if let (Some(o), Some(PhaseStatus::Done)) = (f.objective, results.final_status) {
            format!("{} {}", results.metric, fmt(Some(o)))
        } else {
            let done = f.repeats.iter().filter(|r| r.status.is_some()).count();
            let status =
                results.final_status.map_or_else(|| "waiting".to_owned(), |st| format!("{st:?}").to_lowercase());
            if f.repeats.len() > 1 && done < f.repeats.len() {
                format!("{status}: {done} of {} repeats finished, no result yet", f.repeats.len())
            } else {
                status
            }
        };
        let _ = writeln!(s, "  {:<16} {line}", "final");
    }
    let failed: Vec<_> = results.failed_runs().collect();
    if !failed.is_empty() {
        let _ = writeln!(s, "failed runs ({}; the next `lrx run` retries them):", failed.len());
        for (phase, c, r) in failed {
            let seed = r.filter(|_| c.repeats.len() > 1).map(|r| format!(" (seed {})", r.seed)).unwrap_or_default();
            let why = match r {
                Some(r) => Some(crate::spec::describe_failure(r.error.as_deref(), r.log_tail.as_deref(), 4)),
                None => c.reason.clone(),
            };
            let mut detail = String::new();
            if let Some(r) = r {
                if let Some(code) = r.exit_code {
                    let _ = write!(detail, " [exit code {code}]");
                }
                if let Some(a) = &r.failure {
                    let _ = write!(detail, " [attempt {}]", a.attempt);
                }
            }
            let _ = writeln!(s, "  {phase} {}{seed}{detail}: {}", c.variant, progress::first_lines(why.as_deref()));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{gpus, gpus_listed};

    #[test]
    fn gpu_lists_parse_and_nvidia_smi_output_is_read() {
        assert_eq!(gpus("0, 2,1").unwrap(), vec![0, 2, 1]);
        assert!(gpus("0,0").unwrap_err().to_string().contains("listed twice"));
        assert!(gpus("0,x").unwrap_err().to_string().contains("`x` is not a GPU number"));
        let smi = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1)\nGPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-2)\n  MIG 1g.10gb Device 0: (UUID: MIG-3)\n";
        assert_eq!(gpus_listed(smi), vec![0, 1]);
        assert_eq!(gpus_listed(""), Vec::<usize>::new());
    }
}
