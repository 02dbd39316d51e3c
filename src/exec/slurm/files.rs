//! What lrx and its Slurm jobs exchange through the shared cache (`<cache>/slurm/`): the job
//! file a run's job trains from, the manifest that maps an array's task to its run, the
//! outcome file a worker leaves, and the checkpoint of a run stopped by its job's signal.
//!
//! Every file is written aside and renamed into place, so a reader on another node sees a
//! whole file or none.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cache::{KeyInput, RunKey};

/// The worker's exit code when it saved its run's state and stopped (a warning signal before
/// the time limit, preemption): the run continues in a new job.
pub const EXIT_SUSPENDED: i32 = 75;

/// The folder layout under `<cache>/slurm/`.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(cache: &Path) -> Layout {
        Layout { root: cache.join("slurm") }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// What the job of `key` trains.
    pub fn job_file(&self, key: RunKey) -> PathBuf {
        self.root.join("jobs").join(format!("{}.json", key.to_hex()))
    }
    /// How the last job of `key` ended, written by its worker.
    pub fn outcome_file(&self, key: RunKey) -> PathBuf {
        self.root.join("outcomes").join(format!("{}.json", key.to_hex()))
    }
    /// The run keys of an array's tasks, one a line (task `i` on line `i`).
    pub fn manifest(&self, id: &str) -> PathBuf {
        self.root.join("arrays").join(format!("{id}.keys"))
    }
    /// A task's stdout and stderr (`sbatch --output`).
    pub fn log(&self, array: u64, index: u32) -> PathBuf {
        self.root.join("logs").join(format!("{array}_{index}.log"))
    }
    /// The `--output` pattern that names [`Layout::log`]'s files.
    pub fn log_pattern(&self) -> PathBuf {
        self.root.join("logs").join("%A_%a.log")
    }
    /// The checkpoint of a run whose job was told to stop, and the step it holds.
    pub fn suspended(&self, key: RunKey) -> (PathBuf, PathBuf) {
        let dir = self.root.join("suspended");
        (dir.join(format!("{}.ckpt", key.to_hex())), dir.join(format!("{}.json", key.to_hex())))
    }
    /// The batch script every job runs: it `exec`s its arguments, so that the worker itself is
    /// the batch step's process (it receives `--signal=B:...`) and no shell reads a value.
    pub fn script(&self) -> PathBuf {
        self.root.join("job.sh")
    }
}

/// The batch script's text (see [`Layout::script`]).
pub const SCRIPT: &str =
    "#!/bin/sh\n# Written by lrx: runs its arguments (`lrx worker MANIFEST`) as the batch step.\nexec \"$@\"\n";

/// Everything a worker needs to train one resolved run, as the submitting `lrx run` saw it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobFile {
    pub input: KeyInput,
    /// Train even when cached (`--rerun`), replacing the entry.
    pub force: bool,
    /// An earlier rung of the same config to continue from (its key and the step it stopped at).
    pub resume_from: Option<(RunKey, u64)>,
    /// The device the built-in trainer runs on (part of the trainer's identity).
    pub device: String,
    /// The folder relative paths in the study are resolved against (absolute).
    pub base_dir: PathBuf,
    /// The shared cache (absolute).
    pub cache: PathBuf,
}

/// How a worker's attempt at a run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkerOutcome {
    /// The run is in the cache: its entry, or its failure record. `trained`: by this job
    /// (not found cached).
    Finished { trained: bool, train_wall: f64, resumed_at: Option<u64> },
    /// Stopped by the job's signal after saving its state at `step` (continue in a new job).
    Suspended { step: u64 },
    /// Stopped by the job's signal with nothing saved (a command trainer, or before any step).
    Stopped,
    /// The worker could not do its work (the cache, the job file, this node's trainer).
    Error { message: String },
}

/// A worker's outcome, with the job it came from (`ARRAYID_INDEX`): an outcome left by an
/// earlier job of the same run is not taken for this one's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutcomeFile {
    pub job: String,
    #[serde(flatten)]
    pub outcome: WorkerOutcome,
}

/// The step a suspended checkpoint holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SuspendedStep {
    pub step: u64,
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), unique()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Writes `value` as JSON (see [`write_atomic`]).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    write_atomic(path, &bytes)
}

/// Reads a JSON file; `None` when it is missing or unreadable.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// A number distinct for each call in this process.
pub fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The last `lines` lines of a file (a job's log), if it can be read.
pub fn tail(path: &Path, lines: usize) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    Some(all[start..].join("\n")).filter(|t| !t.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_files_round_trip_and_name_their_kind() {
        let o = OutcomeFile { job: "12_3".into(), outcome: WorkerOutcome::Suspended { step: 40 } };
        let text = serde_json::to_string(&o).unwrap();
        assert_eq!(text, r#"{"job":"12_3","kind":"suspended","step":40}"#);
        assert_eq!(serde_json::from_str::<OutcomeFile>(&text).unwrap(), o);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        write_atomic(&p, b"a\nb\nc\nd\n").unwrap();
        assert_eq!(tail(&p, 2).as_deref(), Some("c\nd"));
        assert_eq!(tail(&dir.path().join("none"), 2), None);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
    }
}
