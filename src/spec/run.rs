//! The contract between whoever schedules runs and whatever trains them: the [`Trainer`]
//! trait, the progress it reports and the result it returns.
//!
//! The executor knows training only through this trait; the built-in burn trainer, a
//! command trainer and a Slurm worker all implement it. Nothing here knows about phases.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::config::RunConfig;
use super::nonfinite;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// Non-finite loss, or loss above `diverge_factor` × initial after warmup. A result, not
    /// a crash: its metrics are kept up to the step where it diverged.
    Diverged,
    /// The run could not complete (bad corpus, script error, ...); `error` says why.
    Failed,
    /// Stopped early by a pruner (successive halving).
    Pruned,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Diverged => "diverged",
            Status::Failed => "failed",
            Status::Pruned => "pruned",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of a run's metrics history: every `log_every` steps (training loss, LR, grad
/// norm, throughput) and at every evaluation (validation metrics too).
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRow {
    pub step: u64,
    /// Named metrics: `train_loss`, `val_loss`, `val_accuracy`, `val_ppl`, `val_bpb`,
    /// `aux_loss`, `lr` (the schedule multiplier), `lr_<group>`, `grad_norm`, `tokens`,
    /// `tokens_per_sec`, `elapsed`. Absent where not measured at this step.
    pub metrics: BTreeMap<String, f64>,
}

impl Serialize for HistoryRow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        nonfinite::serialize_row(self.step, &self.metrics, s)
    }
}

impl<'de> Deserialize<'de> for HistoryRow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<HistoryRow, D::Error> {
        nonfinite::deserialize_row(d).map(|(step, metrics)| HistoryRow { step, metrics })
    }
}

/// Metrics that measure the machine (its speed and load) rather than the run: never the same
/// twice, so shown apart from the metrics, and an objective made of one is warned about.
pub const MACHINE_METRICS: [&str; 3] = ["acc_per_min", "tokens_per_sec", "elapsed"];

/// Whether a metric measures the machine rather than the run.
pub fn measures_machine(metric: &str) -> bool {
    MACHINE_METRICS.contains(&metric)
}

/// Whether a run's result depends on the machine and its load: a time budget trains as many
/// steps as fit in the time (its cache key names the device for that reason).
pub fn depends_on_machine(config: &RunConfig) -> bool {
    matches!(config.train.budget, super::config::Budget::Time(_))
}

/// A failed run as people read it: its reason, then the last `tail_lines` lines it wrote to
/// stderr (where the real cause usually is: a traceback's last line, an OOM message).
pub fn describe_failure(error: Option<&str>, log_tail: Option<&str>, tail_lines: usize) -> String {
    let mut text = error.unwrap_or("the run failed without saying why").trim_end().to_owned();
    if let Some(tail) = log_tail.map(str::trim_end).filter(|t| !t.is_empty()) {
        let lines: Vec<&str> = tail.lines().collect();
        for line in &lines[lines.len().saturating_sub(tail_lines)..] {
            text.push_str("\n  | ");
            text.push_str(line);
        }
    }
    text
}

/// Parameter counts: all parameters, and those active per token (non-expert + k experts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamCounts {
    pub total: u64,
    pub active: u64,
}

/// The finished result of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub status: Status,
    pub steps: u64,
    pub tokens: u64,
    #[serde(with = "nonfinite::num")]
    pub seconds: f64,
    #[serde(with = "nonfinite::num")]
    pub tokens_per_sec: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub params: Option<ParamCounts>,
    /// Final metrics (`val_loss`, `val_accuracy`, `val_ppl`, `val_bpb`, `train_loss`,
    /// `aux_loss`, `acc_per_min`, ...); NaN or infinite where the run diverged.
    #[serde(with = "nonfinite::map")]
    pub metrics: BTreeMap<String, f64>,
    pub history: Vec<HistoryRow>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub diverged_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// A failed run's exit code, where a process of its own ran it (command trainer, a job).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exit_code: Option<i32>,
    /// The last lines a failed run wrote to stderr: its evidence, kept in the failure record.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub log_tail: Option<String>,
    /// When the run ended, in milliseconds since the Unix epoch: stamped where it is
    /// published, so runs can be ordered as they finished. Entries of older lrx versions lack
    /// it (the cache reads their publication time instead).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub finished_at: Option<u64>,
    /// A halving rung measured on a cooldown branch: `metrics` are the branch's, this holds
    /// its length and what the rung measured before it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cooldown: Option<CooldownRecord>,
}

/// Milliseconds since the Unix epoch, now (zero on a clock before 1970).
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What a rung measured on a cooldown branch ([`super::Cooldown`]) records besides the
/// branch's metrics (which are the run's: the rung compares candidates on them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CooldownRecord {
    /// Steps the branch trained after the rung (compute, though the branch is discarded).
    pub steps: u64,
    /// The metrics at the rung's own step, before the branch.
    #[serde(with = "nonfinite::map")]
    pub at_rung: BTreeMap<String, f64>,
}

impl RunResult {
    /// A run that failed before producing anything.
    pub fn failed(error: impl Into<String>) -> RunResult {
        RunResult {
            status: Status::Failed,
            steps: 0,
            tokens: 0,
            seconds: 0.0,
            tokens_per_sec: 0.0,
            params: None,
            metrics: BTreeMap::new(),
            history: Vec::new(),
            diverged_at: None,
            error: Some(error.into()),
            exit_code: None,
            log_tail: None,
            finished_at: None,
            cooldown: None,
        }
    }
}

/// What a run reports while it trains.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    Started { total_steps: Option<u64>, params: Option<ParamCounts> },
    Step { step: u64, total_steps: Option<u64>, loss: f64, lr: f64, tokens_per_sec: f64 },
    Row(HistoryRow),
}

/// Who trained a run: part of its cache key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainerIdentity {
    /// `lrx-builtin`, or `command`.
    pub name: String,
    /// Bumped whenever the trainer's numerics change.
    pub version: String,
    /// `flex`, `cuda`, ...
    pub backend: String,
    /// `f32`, ...
    pub precision: String,
    /// Set where results depend on the machine (time budgets): the device's description.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub device: Option<String>,
}

/// A shared flag that asks runs to stop (Ctrl-C).
#[derive(Clone, Debug, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn new() -> CancelFlag {
        CancelFlag::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Where a run saves its full state and where it resumes from. Trainers that cannot
/// checkpoint (a command trainer) ignore it; the built-in trainer writes one file per save, in
/// a format of its own: whoever schedules runs only moves the file around.
///
/// Successive halving: a rung trains with `stop_at = Some(k)`, `save_at = [k]`; the survivor
/// later trains with `resume_from` that file and ends bit-identical (on CPU) to a run trained
/// straight through. A batch job: `stop` is raised on a signal, the run saves and stops.
#[derive(Clone, Debug, Default)]
pub struct Checkpoints {
    /// Continue from the state saved in this file (made by a run of the same config, trainer
    /// and data); a file that is corrupt or was made for anything else fails the run.
    pub resume_from: Option<PathBuf>,
    /// The file each save writes (replaced atomically: it always holds one whole checkpoint).
    /// No saves happen without it.
    pub save_to: Option<PathBuf>,
    /// Save after these steps.
    pub save_at: Vec<u64>,
    /// Save after every step that is a multiple of this.
    pub save_every: Option<u64>,
    /// Raised from outside: save after the current step, then stop (`Err(Cancelled)`).
    pub stop: CheckpointSignal,
}

impl Checkpoints {
    /// Whether a save is due after `step` (1-based: the number of steps taken).
    pub fn due(&self, step: u64) -> bool {
        self.save_to.is_some()
            && (self.save_at.contains(&step)
                || self.save_every.is_some_and(|n| n > 0 && step.is_multiple_of(n))
                || self.stop.is_raised())
    }
}

/// A shared "save now and stop" request, and the step of the last checkpoint written, so that
/// the side that raised it learns what the file holds.
#[derive(Clone, Debug, Default)]
pub struct CheckpointSignal(Arc<SignalState>);

#[derive(Debug, Default)]
struct SignalState {
    raised: AtomicBool,
    /// Steps of the last save + 1 (0: nothing saved yet).
    saved: AtomicU64,
}

impl CheckpointSignal {
    pub fn new() -> CheckpointSignal {
        CheckpointSignal::default()
    }
    /// Asks the run to save after its current step and stop.
    pub fn raise(&self) {
        self.0.raised.store(true, Ordering::SeqCst);
    }
    pub fn is_raised(&self) -> bool {
        self.0.raised.load(Ordering::SeqCst)
    }
    /// Called by the trainer once a checkpoint after `step` steps is in place.
    pub fn record_saved(&self, step: u64) {
        self.0.saved.store(step.saturating_add(1), Ordering::SeqCst);
    }
    /// The step of the last checkpoint written through these settings, if any.
    pub fn last_saved(&self) -> Option<u64> {
        self.0.saved.load(Ordering::SeqCst).checked_sub(1)
    }
}

/// The run was cancelled before it finished; nothing of it may be recorded as finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("run cancelled")]
pub struct Cancelled;

/// Everything a trainer gets besides the config.
pub struct RunContext<'a> {
    pub cancel: &'a CancelFlag,
    /// Receives progress; called from the training thread.
    pub progress: &'a mut dyn FnMut(Progress),
    /// A private scratch folder for this run (command trainers write their metrics here).
    pub workdir: Option<PathBuf>,
    /// The run's cache key (hex), where the run is keyed (`LRX_RUN_KEY` for command trainers).
    pub run_key: Option<String>,
    /// The folder relative paths in the config (corpus, deps) are resolved against.
    pub base_dir: PathBuf,
    /// Stop after this many steps (successive halving); the schedule still spans the budget.
    pub stop_at: Option<u64>,
    /// Measure the run where it stops on a cooldown branch (`RunConfig`'s schedule says how
    /// long, [`super::Schedule::cooldown`]), where the schedule gives one there: the key of such
    /// a run says so ([`Trainer::branches`]). The state saved at `stop_at` is the one before
    /// the branch.
    pub cooldown: bool,
    /// Saving and resuming the run's full state (none by default).
    pub checkpoints: Checkpoints,
    /// The GPU this run was given (its ordinal on this machine), where the executor hands out
    /// GPUs one run at a time (`--gpus`); `None`: the trainer's own device. Never part of the
    /// run's identity: a run gives the same result on any GPU of one kind.
    pub device: Option<usize>,
}

impl<'a> RunContext<'a> {
    /// A context for a run outside the cache (`lrx train`, tests): no work folder, no key, no
    /// early stop, no checkpoints.
    pub fn standalone(
        cancel: &'a CancelFlag,
        progress: &'a mut dyn FnMut(Progress),
        base_dir: PathBuf,
    ) -> RunContext<'a> {
        RunContext {
            cancel,
            progress,
            workdir: None,
            run_key: None,
            base_dir,
            stop_at: None,
            cooldown: false,
            checkpoints: Checkpoints::default(),
            device: None,
        }
    }
}

/// Anything that can train a resolved run config.
pub trait Trainer: Send + Sync {
    /// Who this trainer is, for a given config (time budgets add the device).
    fn identity(&self, config: &RunConfig) -> TrainerIdentity;

    /// Trains one run to completion, divergence or failure. Returns `Err(Cancelled)` only when
    /// `ctx.cancel` was raised, or `ctx.checkpoints.stop` (after saving); a failure is an `Ok`
    /// result with `Status::Failed`.
    fn train(&self, config: &RunConfig, ctx: &mut RunContext<'_>) -> Result<RunResult, Cancelled>;

    /// Whether it honours `RunContext::stop_at` (stops there, schedule still spanning the
    /// budget). A run's key claims a stop only where its trainer really stops there.
    fn stops_early(&self, _config: &RunConfig) -> bool {
        true
    }

    /// Whether it measures a run stopped early on a cooldown branch where asked
    /// (`RunContext::cooldown`): the built-in trainer does, a script cannot be branched.
    fn branches(&self, _config: &RunConfig) -> bool {
        false
    }
}

/// Where a successive-halving run stops: the rung's step, and whether the rung is measured on
/// a cooldown branch where its schedule decays late.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stop {
    pub at: u64,
    pub cooldown: super::CooldownRule,
}
