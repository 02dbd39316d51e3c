//! A study opened for work: its plan, the cache, the trainers its configs name and the data
//! fingerprints of its corpora (memoized once per study), and one dry walk of it over the
//! cache. Every command that computes a run's key opens a study here, so all compute it alike.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::cache::{CacheError, DataFingerprint, RunKey, Store, key::fingerprint_files};
use crate::corpus::{self, DEFAULT_SHA256, Source};
use crate::exec::engine::{Engine, EngineError, Mode, Options};
use crate::exec::executor::{Executor, LocalPool};
use crate::exec::progress::{Observer, Silent};
use crate::external::CommandTrainer;
use crate::plan::Plan;
use crate::results::StudyResults;
use crate::spec::{
    CancelFlag, Cancelled, DataConfig, RunConfig, RunContext, RunResult, Trainer, TrainerIdentity, TrainerSpec,
};
use crate::train::{BurnTrainer, Device, Notify};

/// What can go wrong opening or walking a study (environment errors: the study itself was
/// checked before).
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    #[error("cannot open the cache at `{}`", path.display())]
    Cache {
        path: PathBuf,
        #[source]
        source: CacheError,
    },
    #[error(transparent)]
    Store(#[from] CacheError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The trainer a config names: the built-in burn trainer or the user's command.
pub struct Trainers {
    pub builtin: BurnTrainer,
    command: CommandTrainer,
}

impl Trainers {
    /// The trainers a study's configs can name: the built-in one on `device` (announcing
    /// downloads through `notify`), and the command trainer (running in `base_dir`, its scratch
    /// folders under the cache).
    pub fn new(device: Device, cache: &Path, base_dir: &Path, notify: Notify) -> Trainers {
        let command = CommandTrainer {
            base_dir: base_dir.to_owned(),
            // Not under `tmp/`, which `gc` empties of dead writers by name: scratch folders are
            // told alive by their lock (`external::scratch`).
            work_dir: cache.join("scratch"),
            deps_fingerprint: Box::new(|base: &Path, deps: &[String]| {
                let paths: Vec<PathBuf> = deps.iter().map(|d| base.join(d)).collect();
                if let Some(missing) = paths.iter().find(|p| !p.is_file()) {
                    return Err(format!("`deps` file `{}` does not exist", missing.display()));
                }
                fingerprint_files(base, &paths).map_err(|e| e.to_string())
            }),
        };
        let builtin = BurnTrainer::new(device, cache.to_owned()).with_notify(notify);
        Trainers { builtin, command }
    }

    fn pick(&self, config: &RunConfig) -> &dyn Trainer {
        match config.train.trainer {
            TrainerSpec::Builtin => &self.builtin,
            TrainerSpec::Command { .. } => &self.command,
        }
    }
}

impl Trainer for Trainers {
    fn identity(&self, config: &RunConfig) -> TrainerIdentity {
        self.pick(config).identity(config)
    }
    fn train(&self, config: &RunConfig, ctx: &mut RunContext<'_>) -> Result<RunResult, Cancelled> {
        self.pick(config).train(config, ctx)
    }
    fn stops_early(&self, config: &RunConfig) -> bool {
        self.pick(config).stops_early(config)
    }
    fn branches(&self, config: &RunConfig) -> bool {
        self.pick(config).branches(config)
    }
}

/// Whether opening a study may create the cache on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `run`: the cache is made if missing.
    Write,
    /// `plan`, `show`, `why`, ...: nothing is created, so a missing or read-only cache can
    /// still be looked at.
    Read,
}

/// A checked study and what it runs with.
pub struct Study {
    pub plan: Plan,
    pub store: Store,
    pub trainer: Trainers,
    /// The folder relative paths in the study are resolved against.
    pub base_dir: PathBuf,
    /// GPU ordinals to hand out, one run on each at a time (`run --gpus`); empty: none.
    pub gpus: Vec<usize>,
    fingerprints: Mutex<HashMap<String, Result<DataFingerprint, String>>>,
}

impl Study {
    /// Opens the study of `file` (already loaded as `plan`) against the cache at `cache`.
    pub fn open(
        plan: Plan,
        file: &Path,
        device: Device,
        cache: &Path,
        access: Access,
        notify: Notify,
    ) -> Result<Study, StudyError> {
        let store = match access {
            Access::Write => {
                Store::open(cache).map_err(|source| StudyError::Cache { path: cache.to_owned(), source })?
            }
            Access::Read => Store::at(cache),
        };
        let base_dir = base_dir(file);
        let trainer = Trainers::new(device, cache, &base_dir, notify);
        Ok(Study { plan, store, trainer, base_dir, gpus: Vec::new(), fingerprints: Mutex::new(HashMap::new()) })
    }

    /// Where this study's outputs go: `out`, or `runs/<study>`.
    pub fn out_dir(&self, out: Option<&Path>) -> PathBuf {
        // The study's name is the file's stem, which may be anything (`...lrx` has `..`).
        out.map_or_else(|| Path::new("runs").join(crate::exec::outputs::slug(&self.plan.name)), Path::to_path_buf)
    }

    /// The data fingerprint of a corpus, computed once per corpus and study.
    pub fn fingerprint(&self, data: &DataConfig) -> Result<DataFingerprint, String> {
        let mut memo = self.fingerprints.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        memo.entry(data.corpus.clone()).or_insert_with(|| data_fingerprint(data, &self.base_dir)).clone()
    }

    /// Runs the engine, its runs on `jobs` local threads (one per GPU with `gpus`).
    pub fn engine_run(
        &self,
        options: Options,
        jobs: usize,
        observer: &dyn Observer,
        cancel: CancelFlag,
    ) -> Result<StudyResults, StudyError> {
        let executor = LocalPool {
            store: &self.store,
            trainer: &self.trainer,
            observer,
            cancel: cancel.clone(),
            base_dir: options.base_dir.clone(),
            jobs,
            devices: self.gpus.clone(),
        };
        self.engine_run_on(options, &executor, observer, cancel)
    }

    /// Runs the engine, its runs on `executor` (the local pool, Slurm).
    pub fn engine_run_on(
        &self,
        options: Options,
        executor: &dyn Executor,
        observer: &dyn Observer,
        cancel: CancelFlag,
    ) -> Result<StudyResults, StudyError> {
        let fingerprint = |d: &DataConfig| self.fingerprint(d);
        let engine = Engine {
            plan: &self.plan,
            store: &self.store,
            trainer: &self.trainer,
            fingerprint: &fingerprint,
            observer,
            executor,
            cancel,
            options,
        };
        Ok(engine.run()?)
    }

    /// What the cache says about the study, training nothing.
    pub fn dry(&self) -> Result<StudyResults, StudyError> {
        let options = Options { mode: Mode::Dry, rerun: BTreeSet::new(), base_dir: self.base_dir.clone() };
        self.engine_run(options, 1, &Silent, CancelFlag::new())
    }

    /// Every run key the study uses, as far as its cached winners let it be resolved.
    pub fn reachable_keys(&self) -> Result<Vec<RunKey>, StudyError> {
        let results = self.dry()?;
        Ok(results.all_candidates().flat_map(|c| c.repeats.iter().filter_map(|r| r.key)).collect())
    }
}

/// The folder a study file's relative paths are resolved against (`.` for a bare name or `-`).
pub fn base_dir(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| PathBuf::from("."))
}

/// The data fingerprint of a corpus: the pinned hash of the default corpus (no download
/// needed), or the blake3 of the user's files (relative paths against `base_dir`).
pub fn data_fingerprint(data: &DataConfig, base_dir: &Path) -> Result<DataFingerprint, String> {
    match corpus::locate(&data.corpus, base_dir).map_err(|e| e.to_string())? {
        Source::Default => Ok(DataFingerprint { corpus: format!("sha256:{DEFAULT_SHA256}") }),
        Source::Files(files) => {
            let root = base_dir.join(&data.corpus);
            let paths: Vec<PathBuf> = files.into_iter().map(|(p, _)| p).collect();
            fingerprint_files(&root, &paths)
                .map(|corpus| DataFingerprint { corpus })
                .map_err(|e| format!("cannot read corpus `{}`: {e}", data.corpus))
        }
    }
}
