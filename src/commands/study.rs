//! What the study commands share: the trainer and data fingerprints for a device, the cache,
//! the output folder, and one dry walk of a study over the cache.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;

use crate::cache::{DataFingerprint, RunKey, Store, key::fingerprint_files};
use crate::cli::GlobalArgs;
use crate::corpus::{self, DEFAULT_SHA256, Source};
use crate::exec::engine::{Engine, Mode, Options};
use crate::exec::executor::LocalPool;
use crate::exec::progress::{Observer, Silent};
use crate::external::CommandTrainer;
use crate::plan::Plan;
use crate::results::StudyResults;
use crate::spec::{
    CancelFlag, Cancelled, DataConfig, RunConfig, RunContext, RunResult, Trainer, TrainerIdentity, TrainerSpec,
};
use crate::train::{BurnTrainer, Device};

use super::load::{Loaded, load};

/// The trainer a config names: the built-in burn trainer or the user's command.
pub(crate) struct Trainers {
    pub(crate) builtin: BurnTrainer,
    command: CommandTrainer,
}

impl Trainers {
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
}

/// A loaded study and what it runs with.
pub(crate) struct Study {
    pub(super) plan: Plan,
    pub(super) store: Store,
    pub(super) trainer: Trainers,
    /// The folder relative paths in the study are resolved against.
    pub(super) base_dir: PathBuf,
    /// GPU ordinals to hand out, one run on each at a time (`run --gpus`); empty: none.
    pub(super) gpus: Vec<usize>,
    fingerprints: Mutex<HashMap<String, Result<DataFingerprint, String>>>,
}

impl Study {
    /// Like `open_on`, for commands that only read the cache: nothing is created on disk.
    pub(super) fn open_read_only(file: &Path, device: &str, g: &GlobalArgs) -> anyhow::Result<Option<Study>> {
        Study::open_with(file, device, g, false)
    }

    /// Loads a study (printing its diagnostics) to run on `device`; `None` when it is invalid.
    /// (`run --gpus` picks CUDA even in a build without it: only the built-in trainer's runs
    /// fail there, saying why.)
    pub(super) fn open_on(file: &Path, device: Device, g: &GlobalArgs) -> anyhow::Result<Option<Study>> {
        Study::open_device(file, device, g, true)
    }

    fn open_with(file: &Path, device: &str, g: &GlobalArgs, create: bool) -> anyhow::Result<Option<Study>> {
        Study::open_device(file, Device::parse(device)?, g, create)
    }

    fn open_device(file: &Path, device: Device, g: &GlobalArgs, create: bool) -> anyhow::Result<Option<Study>> {
        let Loaded::Ok(plan) = load(file, g)? else { return Ok(None) };
        let store = if create {
            Store::open(&g.cache).with_context(|| format!("cannot open the cache at `{}`", g.cache.display()))?
        } else {
            Store::at(&g.cache)
        };
        let base_dir = file
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let trainer = trainers(device, g, &base_dir);
        Ok(Some(Study {
            plan: *plan,
            store,
            trainer,
            base_dir,
            gpus: Vec::new(),
            fingerprints: Mutex::new(HashMap::new()),
        }))
    }

    /// Where this study's outputs go: `--out`, or `runs/<study>`.
    pub(super) fn out_dir(&self, g: &GlobalArgs) -> PathBuf {
        // The study's name is the file's stem, which may be anything (`...lrx` has `..`).
        g.out.clone().unwrap_or_else(|| Path::new("runs").join(crate::exec::outputs::slug(&self.plan.name)))
    }

    /// The data fingerprint of a corpus: the pinned hash of the default corpus (no download
    /// needed), or the blake3 of the user's files.
    pub(super) fn fingerprint(&self, data: &DataConfig) -> Result<DataFingerprint, String> {
        let mut memo = self.fingerprints.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        memo.entry(data.corpus.clone()).or_insert_with(|| data_fingerprint(data, &self.base_dir)).clone()
    }

    /// Runs the engine.
    /// Runs the engine, its runs on `jobs` local threads.
    pub(super) fn engine_run(
        &self,
        options: Options,
        jobs: usize,
        observer: &dyn Observer,
        cancel: CancelFlag,
    ) -> anyhow::Result<StudyResults> {
        let fingerprint = |d: &DataConfig| self.fingerprint(d);
        let executor = LocalPool {
            store: &self.store,
            trainer: &self.trainer,
            observer,
            cancel: cancel.clone(),
            base_dir: options.base_dir.clone(),
            jobs,
            devices: self.gpus.clone(),
        };
        let engine = Engine {
            plan: &self.plan,
            store: &self.store,
            trainer: &self.trainer,
            fingerprint: &fingerprint,
            observer,
            executor: &executor,
            cancel,
            options,
        };
        Ok(engine.run()?)
    }

    /// What the cache says about the study, training nothing.
    pub(super) fn dry(&self) -> anyhow::Result<StudyResults> {
        let options = Options { mode: Mode::Dry, rerun: BTreeSet::new(), base_dir: self.base_dir.clone() };
        self.engine_run(options, 1, &Silent, CancelFlag::new())
    }
}

/// The trainers a study's configs can name: the built-in one on `device`, and the command
/// trainer (running in `base_dir`, its scratch folders under the cache).
pub(super) fn trainers(device: Device, g: &GlobalArgs, base_dir: &Path) -> Trainers {
    let command = CommandTrainer {
        base_dir: base_dir.to_owned(),
        // Not under `tmp/`, which `gc` empties of dead writers by name: scratch folders are
        // told alive by their lock (`external::scratch`).
        work_dir: g.cache.join("scratch"),
        deps_fingerprint: Box::new(|base: &Path, deps: &[String]| {
            let paths: Vec<PathBuf> = deps.iter().map(|d| base.join(d)).collect();
            if let Some(missing) = paths.iter().find(|p| !p.is_file()) {
                return Err(format!("`deps` file `{}` does not exist", missing.display()));
            }
            fingerprint_files(base, &paths).map_err(|e| e.to_string())
        }),
    };
    // The corpus download is announced like any other note (hidden by `--quiet`).
    let builtin = BurnTrainer::new(device, g.cache.clone()).with_notify(std::sync::Arc::new(super::printer::note));
    Trainers { builtin, command }
}

/// The data fingerprint of a corpus: the pinned hash of the default corpus (no download
/// needed), or the blake3 of the user's files (relative paths against `base_dir`).
pub(super) fn data_fingerprint(data: &DataConfig, base_dir: &Path) -> Result<DataFingerprint, String> {
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

/// Every run key a study uses, as far as its cached winners let it be resolved.
pub(crate) fn reachable_keys(file: &Path, g: &GlobalArgs) -> anyhow::Result<Vec<RunKey>> {
    let Some(study) = Study::open_read_only(file, "cpu", g)? else {
        anyhow::bail!("the study is invalid (see above); refusing to collect garbage against it")
    };
    let results = study.dry()?;
    Ok(results.all_candidates().flat_map(|c| c.repeats.iter().filter_map(|r| r.key)).collect())
}
