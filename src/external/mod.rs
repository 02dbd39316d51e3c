//! The command trainer: runs the user's own training script once per run and reads the
//! metrics it writes (`trainer = command("python train.py --lr {matrix_lr} --out {out}")`).
//!
//! The command is split into arguments once, with shell-word rules, and each `{key}`
//! placeholder fills inside one argument (`spec::command`); no shell runs it. `{key}` takes the
//! run's resolved value (`{matrix_lr}`, `{steps}`, `{seed}`, `{schedule.warmup}`,
//! `{data.tokens}`), `{out}` a fresh folder for the run's outputs, `{config}` a JSON file
//! with the whole resolved config, `{checkpoint}` a folder for the script's state that lrx
//! keeps across halving rungs and retries, all absolute paths, and `{stop_at}` the step to
//! stop at and report (a rung, else the budget). The script runs in the study's folder, in a
//! process group of its own, with its output streamed to `stdout.log` and `stderr.log` in the
//! run's folder (`process`). While it runs, the rows it appends to `{out}/progress.jsonl` are
//! shown, kept as its history and watched for divergence (`progress`). It reports by writing
//! `metrics.json` and/or `metrics.csv` into `{out}` (`metrics`). A non-zero exit, a timeout or
//! missing metrics is a failed run; a non-finite loss a diverged one.

mod metrics;
mod process;
mod progress;
pub mod scratch;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::spec::command::{Template, run_values, tells_stop};
use crate::spec::value::fmt_duration;
use crate::spec::{
    Cancelled, HistoryRow, Progress, RunConfig, RunContext, RunResult, Status, Trainer, TrainerIdentity, TrainerSpec,
};

use process::{Ended, Job};
use scratch::Scratch;

/// A failure record keeps at most this much of a script's log.
const TAIL_LINES: usize = 40;
const TAIL_BYTES: u64 = 4096;

/// Hashes a study's `deps` files (relative to its folder) for a run's identity.
pub type DepsFingerprint = Box<dyn Fn(&Path, &[String]) -> Result<String, String> + Send + Sync>;

/// Runs `trainer = command(...)` configs. `deps_fingerprint` hashes the `deps` files (relative
/// to the study's folder) into the trainer's identity; it is supplied by the caller because
/// hashing belongs to the cache's key module.
pub struct CommandTrainer {
    pub base_dir: PathBuf,
    /// Scratch folders live here for runs the engine gives no folder of their own
    /// (`RunContext::workdir` is `None`).
    pub work_dir: PathBuf,
    pub deps_fingerprint: DepsFingerprint,
}

impl Trainer for CommandTrainer {
    /// A script stops at a rung only when its command is told where (`{stop_at}`) and it was
    /// not declared `resumable = false`; any other script's rung is a run of its own length.
    fn stops_early(&self, config: &RunConfig) -> bool {
        matches!(&config.train.trainer, TrainerSpec::Command { cmd, resumable: true, .. } if tells_stop(cmd))
    }

    fn identity(&self, config: &RunConfig) -> TrainerIdentity {
        let (cmd, deps) = match &config.train.trainer {
            TrainerSpec::Command { cmd, deps, .. } => (cmd.clone(), deps.clone()),
            TrainerSpec::Builtin => (String::new(), Vec::new()),
        };
        // A missing dependency makes the identity unique to this attempt, so it never matches
        // a cached run; the run itself then fails with the reason.
        let deps = (self.deps_fingerprint)(&self.base_dir, &deps).unwrap_or_else(|e| format!("unreadable: {e}"));
        TrainerIdentity {
            name: "command".into(),
            version: format!("{cmd}\n{deps}"),
            backend: "external".into(),
            precision: "external".into(),
            device: None,
        }
    }

    fn train(&self, config: &RunConfig, ctx: &mut RunContext<'_>) -> Result<RunResult, Cancelled> {
        let TrainerSpec::Command { cmd, .. } = &config.train.trainer else {
            return Ok(RunResult::failed("the command trainer got a config without `trainer = command(...)`"));
        };
        // The run's folder: the engine's (it keeps the logs and removes the folder), or a
        // scratch folder of our own, removed when `scratch` drops.
        let mut scratch = None;
        let folder = match &ctx.workdir {
            Some(w) => match std::fs::create_dir_all(w).and_then(|()| std::fs::canonicalize(w)) {
                Ok(dir) => dir,
                Err(e) => return Ok(RunResult::failed(format!("cannot use the run folder `{}`: {e}", w.display()))),
            },
            None => match Scratch::create(&self.work_dir) {
                Ok(s) => scratch.insert(s).path().to_owned(),
                Err(e) => {
                    return Ok(RunResult::failed(format!(
                        "cannot make a scratch folder under `{}`: {e}",
                        self.work_dir.display()
                    )));
                }
            },
        };
        let result = run(cmd, config, &folder, ctx);
        drop(scratch);
        result
    }
}

/// Runs the command of `config` with `folder` as its run folder.
fn run(cmd: &str, config: &RunConfig, folder: &Path, ctx: &mut RunContext<'_>) -> Result<RunResult, Cancelled> {
    let template = match Template::parse(cmd) {
        Ok(t) => t,
        Err(e) => return Ok(RunResult::failed(format!("`{cmd}`: {e}"))),
    };
    let out = folder.join("out");
    let config_path = folder.join("config.json");
    if let Err(e) = std::fs::create_dir_all(&out) {
        return Ok(RunResult::failed(format!("cannot make `{}`: {e}", out.display())));
    }
    if let Err(e) = std::fs::write(&config_path, serde_json::to_vec_pretty(config).unwrap_or_default()) {
        return Ok(RunResult::failed(format!("cannot write `{}`: {e}", config_path.display())));
    }
    // The script's own folder for its state, kept across rungs and retries: the runner's
    // (seeded with an earlier rung's or a failed attempt's checkpoint), or one in the run folder.
    let checkpoint = ctx.checkpoints.save_to.clone().unwrap_or_else(|| folder.join("checkpoint"));
    if let Err(e) = std::fs::create_dir_all(&checkpoint) {
        return Ok(RunResult::failed(format!("cannot make `{}`: {e}", checkpoint.display())));
    }
    let mut values = run_values(config);
    values.insert("out".into(), out.to_string_lossy().into_owned());
    values.insert("config".into(), config_path.to_string_lossy().into_owned());
    values.insert("checkpoint".into(), checkpoint.to_string_lossy().into_owned());
    // Where to stop and report: the rung, else the end of the budget (a time budget has none).
    if let Some(stop) = ctx.stop_at.or_else(|| config.total_steps()) {
        values.insert("stop_at".into(), stop.to_string());
    }
    let mut argv = match template.fill(|name| values.get(name).cloned()) {
        Ok(argv) => argv,
        Err(name) if name == "stop_at" => {
            return Ok(RunResult::failed(
                "the command names `{stop_at}`, but a `time` budget has no step to stop at: give the run `steps` or `tokens`",
            ));
        }
        Err(name) => {
            let hint = crate::spec::schema::suggest(&name, values.keys().map(String::as_str))
                .map(|s| format!("; did you mean `{{{s}}}`?"))
                .unwrap_or_default();
            return Ok(RunResult::failed(format!(
                "the command names `{{{name}}}`, which is not a key of the run{hint}"
            )));
        }
    };
    // The script runs in the study's folder, where its relative paths (`./train.sh`, `deps`)
    // point; the folder is made absolute so that no path depends on lrx's own folder.
    let cwd = match std::fs::canonicalize(&ctx.base_dir) {
        Ok(dir) => dir,
        Err(e) => {
            return Ok(RunResult::failed(format!("cannot use the study's folder `{}`: {e}", ctx.base_dir.display())));
        }
    };
    if argv[0].contains('/') && Path::new(&argv[0]).is_relative() {
        argv[0] = cwd.join(&argv[0]).to_string_lossy().into_owned();
    }
    let mut env = vec![
        ("LRX_OUT", out.to_string_lossy().into_owned()),
        ("LRX_CONFIG", config_path.to_string_lossy().into_owned()),
        ("LRX_SEED", config.train.seed.to_string()),
    ];
    if let Some(key) = &ctx.run_key {
        env.push(("LRX_RUN_KEY", key.clone()));
    }
    // The GPU slot of `--gpus`: the script sees that one GPU alone (as its device 0).
    if let Some(gpu) = ctx.device {
        env.push(("CUDA_VISIBLE_DEVICES", gpu.to_string()));
    }
    let (stdout, stderr) = (folder.join("stdout.log"), folder.join("stderr.log"));
    let job = Job { argv: &argv, cwd: &cwd, env: &env, stdout: &stdout, stderr: &stderr };
    (ctx.progress)(Progress::Started { total_steps: config.total_steps(), params: None });
    let started = Instant::now();
    let mut watcher = Watcher {
        tail: progress::Tail::new(out.join(progress::FILE)),
        divergence: progress::Divergence::new(config.train.diverge_factor),
        rows: Vec::new(),
        diverged_at: None,
        total_steps: config.total_steps(),
        started,
    };
    let cancel = ctx.cancel;
    let report: &mut dyn FnMut(Progress) = &mut *ctx.progress;
    let ended =
        process::run(&job, cancel, config.train.timeout.map(Duration::from_secs_f64), &mut || watcher.poll(report));
    // Rows written just before the script exited.
    watcher.poll(report);
    let seconds = started.elapsed().as_secs_f64();
    let failed = |message: String, exit_code: Option<i32>| {
        let mut r = RunResult::failed(message);
        r.seconds = seconds;
        r.exit_code = exit_code;
        // stderr holds a traceback; a script that reports errors on stdout gets that instead.
        r.log_tail =
            process::tail(&stderr, TAIL_LINES, TAIL_BYTES).or_else(|| process::tail(&stdout, TAIL_LINES, TAIL_BYTES));
        Ok(r)
    };
    match ended {
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::NotFound && !argv[0].contains('/') {
                format!(" (not found on PATH; a file of the study's folder is written `./{}`)", argv[0])
            } else {
                String::new()
            };
            Ok(RunResult::failed(format!("cannot start `{}`: {e}{hint}", argv[0])))
        }
        Ok(Ended::Cancelled) => Err(Cancelled),
        // A script that reported a diverged row diverged, whatever it did after (stopped by
        // lrx, or exited on its own, perhaps with an error about the NaN).
        Ok(Ended::Stopped) => Ok(watcher.diverged(seconds)),
        Ok(Ended::Exited(_)) if watcher.diverged_at.is_some() => Ok(watcher.diverged(seconds)),
        Ok(Ended::TimedOut) => {
            failed(format!("timed out after {}", fmt_duration(config.train.timeout.unwrap_or_default())), None)
        }
        Ok(Ended::Exited(status)) if !status.success() => {
            failed(format!("`{cmd}` {}", process::describe(status)), status.code())
        }
        Ok(Ended::Exited(_)) => match metrics::read_metrics(&out) {
            Ok(mut r) => {
                r.seconds = seconds;
                watcher.complete(&mut r);
                Ok(r)
            }
            Err(e) => failed(e, None),
        },
    }
}

/// Follows a running script's `progress.jsonl`: shows each row, keeps it for the history, and
/// stops the script at the first row that diverged.
struct Watcher {
    tail: progress::Tail,
    divergence: progress::Divergence,
    rows: Vec<HistoryRow>,
    diverged_at: Option<u64>,
    total_steps: Option<u64>,
    started: Instant,
}

impl Watcher {
    /// Reads the new rows; `true` once the run diverged.
    fn poll(&mut self, report: &mut dyn FnMut(Progress)) -> bool {
        for row in self.tail.read() {
            if self.diverged_at.is_some() {
                break;
            }
            let elapsed = self.started.elapsed().as_secs_f64();
            let tokens_per_sec = row
                .metrics
                .get("tokens_per_sec")
                .copied()
                .or_else(|| row.metrics.get("tokens").map(|t| t / elapsed.max(1e-9)))
                .unwrap_or(f64::NAN);
            report(Progress::Step {
                step: row.step,
                total_steps: self.total_steps,
                loss: progress::loss(&row).map_or(f64::NAN, |(_, x)| x),
                lr: row.metrics.get("lr").copied().unwrap_or(f64::NAN),
                tokens_per_sec,
            });
            report(Progress::Row(row.clone()));
            if self.divergence.diverged(&row) {
                self.diverged_at = Some(row.step);
            }
            self.rows.push(row);
        }
        self.diverged_at.is_some()
    }

    /// The result of a run stopped because it diverged: its rows up to that step, the last
    /// one's metrics (the objective's metric non-finite where the script had not reported it).
    fn diverged(self, seconds: f64) -> RunResult {
        let mut r = RunResult::failed("");
        r.error = None;
        r.status = Status::Diverged;
        r.diverged_at = self.diverged_at;
        r.steps = self.diverged_at.unwrap_or_default();
        r.seconds = seconds;
        if let Some(last) = self.rows.last() {
            r.metrics.clone_from(&last.metrics);
        }
        r.tokens = tokens_of(&self.rows);
        for name in ["train_loss", "val_loss"] {
            r.metrics.entry(name.to_owned()).or_insert(f64::NAN);
        }
        r.history = self.rows;
        r
    }

    /// A finished run's history and length from its progress, where `metrics.csv` gave none.
    fn complete(self, r: &mut RunResult) {
        if r.history.is_empty() && !self.rows.is_empty() {
            r.history = self.rows;
        }
        if let Some(last) = r.history.last() {
            r.steps = r.steps.max(last.step);
        }
        if r.tokens == 0 {
            r.tokens = tokens_of(&r.history);
        }
        if r.tokens_per_sec == 0.0 && r.seconds > 0.0 {
            r.tokens_per_sec = r.tokens as f64 / r.seconds;
        }
    }
}

/// The last `tokens` count a history reports (0 without one).
fn tokens_of(rows: &[HistoryRow]) -> u64 {
    rows.iter().rev().find_map(|row| row.metrics.get("tokens")).map_or(0, |t| *t as u64)
}
