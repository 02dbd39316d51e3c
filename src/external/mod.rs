//! The command trainer: runs the user's own training script once per run and reads the
//! metrics it writes (`trainer = command("python train.py --lr {matrix_lr} --out {out}")`).
//!
//! The command is split into arguments once, with shell-word rules, and each `{key}`
//! placeholder fills inside one argument (`spec::command`); no shell runs it. `{key}` takes the
//! run's resolved value (`{matrix_lr}`, `{steps}`, `{seed}`, `{schedule.warmup}`,
//! `{data.tokens}`), `{out}` a fresh folder for the run's outputs and `{config}` a JSON file
//! with the whole resolved config, both absolute paths. The script runs in the study's folder,
//! in a process group of its own, with its output streamed to `stdout.log` and `stderr.log`
//! in the run's folder (`process`). It reports by writing `metrics.json` and/or `metrics.csv`
//! into `{out}` (`metrics`). A non-zero exit, a timeout or missing metrics is a failed run; a
//! non-finite loss a diverged one.

mod metrics;
mod process;
pub mod scratch;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::spec::command::{Template, run_values};
use crate::spec::value::fmt_duration;
use crate::spec::{Cancelled, Progress, RunConfig, RunContext, RunResult, Trainer, TrainerIdentity, TrainerSpec};

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
    /// The script is not told where to stop (no `{stop_at}` contract yet), so it trains the
    /// whole budget: its keys never claim a stop.
    fn stops_early(&self, _config: &RunConfig) -> bool {
        false
    }

    fn identity(&self, config: &RunConfig) -> TrainerIdentity {
        let (cmd, deps) = match &config.train.trainer {
            TrainerSpec::Command { cmd, deps } => (cmd.clone(), deps.clone()),
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
    let mut values = run_values(config);
    values.insert("out".into(), out.to_string_lossy().into_owned());
    values.insert("config".into(), config_path.to_string_lossy().into_owned());
    let mut argv = match template.fill(|name| values.get(name).cloned()) {
        Ok(argv) => argv,
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
    let ended = process::run(&job, ctx.cancel, config.train.timeout.map(Duration::from_secs_f64));
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
        Ok(Ended::TimedOut) => {
            failed(format!("timed out after {}", fmt_duration(config.train.timeout.unwrap_or_default())), None)
        }
        Ok(Ended::Exited(status)) if !status.success() => {
            failed(format!("`{cmd}` {}", process::describe(status)), status.code())
        }
        Ok(Ended::Exited(_)) => match metrics::read_metrics(&out) {
            Ok(mut r) => {
                r.seconds = seconds;
                Ok(r)
            }
            Err(e) => failed(e, None),
        },
    }
}
