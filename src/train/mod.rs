//! The built-in trainer: a small decoder-only MoE language model in burn, trained with
//! Muon/AdamW/SGD on a corpus, behind the neutral [`crate::spec::Trainer`] contract.
//!
//! Deterministic on CPU: the Flex backend, every random draw from ChaCha8 streams of the
//! config seed (never burn's global RNG), host-side routing with a total order. Knows nothing
//! of phases or caching. Never imports `lang`, `plan`, `exec` or `cache`.

#![allow(clippy::many_single_char_names, reason = "tensor code follows the papers' notation")]

pub mod attention;
pub mod checkpoint;
pub mod data;
mod denormals;
pub mod kernels;
pub mod metrics;
pub mod model;
pub mod moe;
pub mod optim;
pub mod permute;
pub mod precision;
pub mod rng;
pub mod step;
pub mod tokenizer;
pub mod trainer;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::corpus::{self, CorpusError};
use crate::spec::{Budget, Cancelled, RunConfig, RunContext, RunResult, Trainer, TrainerIdentity, TrainerSpec};

pub use data::Dataset;

/// Bumped whenever the trainer's numerics change (it is part of every run's cache key).
pub const VERSION: &str = "3";

/// Whether `B` is the CPU backend (Flex) taking the CPU's own path, where the trainer runs
/// independent work on separate threads itself (single ops at lrx's sizes are too small for
/// Flex to split profitably). `false` on accelerators, and on the CPU under
/// `--device cpu-generic`.
pub fn on_cpu<B: burn::tensor::backend::Backend>() -> bool {
    std::any::TypeId::of::<B>() == std::any::TypeId::of::<burn::backend::Flex>() && !accelerator_path()
}

/// Like [`on_cpu`], for code that runs both under autodiff and without (the forward pass).
pub fn on_cpu_either<B: burn::tensor::backend::Backend>() -> bool {
    on_cpu::<B>() || (std::any::TypeId::of::<B>() == std::any::TypeId::of::<CpuBackend>() && !accelerator_path())
}

thread_local! {
    /// Set on a thread training under `--device cpu-generic`: the CPU backend then takes every
    /// branch an accelerator takes (one shard, stacked Muon buckets, sequential updates, burn's
    /// own ops instead of the fused kernels), so tests can run that path without a GPU. Every
    /// decision it affects is made on the training thread: on that path nothing is handed to
    /// the rayon pool.
    static ACCELERATOR_PATH: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread trains on the accelerator path (see `ACCELERATOR_PATH`).
pub fn accelerator_path() -> bool {
    ACCELERATOR_PATH.with(std::cell::Cell::get)
}

/// Runs `f` with this thread on the accelerator path (or not), restoring the previous state.
pub fn with_accelerator_path<T>(on: bool, f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ACCELERATOR_PATH.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(ACCELERATOR_PATH.with(|c| c.replace(on)));
    f()
}

/// `f` over `items`, results in item order: on rayon's pool when `parallel`, else on this
/// thread. Each item's work is the same either way, so the results' bits are too.
fn map_in_order<T: Send, U: Send>(parallel: bool, items: Vec<T>, f: impl Fn(T) -> U + Sync + Send) -> Vec<U> {
    use rayon::iter::{IntoParallelIterator, ParallelIterator};
    if parallel { items.into_par_iter().map(f).collect() } else { items.into_iter().map(f).collect() }
}

/// The CPU backend: Flex under autodiff (deterministic, see `burn-0.21-notes.md`).
pub type CpuBackend = burn::backend::Autodiff<burn::backend::Flex>;
/// The NVIDIA backend.
#[cfg(feature = "cuda")]
pub type CudaBackend = burn::backend::Autodiff<burn::backend::Cuda>;

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    #[error("{0}")]
    CorpusTooSmall(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("`--device {0}` needs a build with the `cuda` feature (`cargo build --release --features cuda`)")]
    CudaUnavailable(String),
    #[error("unknown device `{0}`; expected `cpu`, `cuda` or `cuda:N`")]
    BadDevice(String),
    #[error("the built-in trainer cannot train a `trainer = command(...)` config")]
    NotBuiltin,
}

/// Where training runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Cpu,
    /// The CPU taking an accelerator's branches (hidden `--device cpu-generic`): for tests of
    /// the code GPUs run, on machines without one.
    CpuGeneric,
    Cuda(usize),
}

impl Device {
    /// Parses `cpu`, `cuda` or `cuda:N`; CUDA only in builds with the `cuda` feature.
    pub fn parse(text: &str) -> Result<Device, TrainError> {
        let device = match text {
            "cpu" => Device::Cpu,
            "cpu-generic" => Device::CpuGeneric,
            "cuda" => Device::Cuda(0),
            _ => match text.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Device::Cuda(n),
                _ => return Err(TrainError::BadDevice(text.to_owned())),
            },
        };
        if matches!(device, Device::Cuda(_)) && !cfg!(feature = "cuda") {
            return Err(TrainError::CudaUnavailable(text.to_owned()));
        }
        Ok(device)
    }

    /// The backend's name in a trainer identity. On CPU it names the GEMM kernels picked at run
    /// time: AVX-512 and AVX2 kernels sum in different orders, so their results differ in the
    /// last bits, and a cache shared across machines must not mix them.
    pub fn backend(self) -> String {
        match self {
            Device::Cpu => cpu_kernels().to_owned(),
            // Other ops, other rounding: its runs are never mixed with the CPU path's.
            Device::CpuGeneric => format!("{}+generic", cpu_kernels()),
            Device::Cuda(_) => "cuda".to_owned(),
        }
    }

    /// A description of the machine, for identities of time-budgeted runs.
    pub fn describe(self) -> String {
        match self {
            Device::Cpu | Device::CpuGeneric => {
                let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
                let model = std::fs::read_to_string("/proc/cpuinfo")
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find(|l| l.starts_with("model name"))
                            .and_then(|l| l.split(':').nth(1))
                            .map(|s| s.trim().to_owned())
                    })
                    .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
                format!("cpu: {model} ({cores} threads)")
            }
            // The model, not the ordinal: with `--gpus` a run lands on any of the machine's
            // GPUs, and its key must not depend on which.
            Device::Cuda(_) => match gpu_model() {
                Some(model) => format!("cuda: {model}"),
                None => "cuda".to_owned(),
            },
        }
    }
}

/// Who hears what a trainer has to say outside a run's progress (the corpus download).
pub type Notify = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// The built-in burn trainer.
#[derive(Clone)]
pub struct BurnTrainer {
    device: Device,
    cache_dir: PathBuf,
    notify: Option<Notify>,
}

impl std::fmt::Debug for BurnTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BurnTrainer")
            .field("device", &self.device)
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

impl BurnTrainer {
    /// A trainer on `device`, keeping the default corpus and BPE tokenizers under `cache_dir`.
    /// It says nothing until [`BurnTrainer::with_notify`] gives it someone to tell.
    pub fn new(device: Device, cache_dir: impl Into<PathBuf>) -> BurnTrainer {
        BurnTrainer { device, cache_dir: cache_dir.into(), notify: None }
    }

    /// The same trainer, telling `notify` about downloads during [`Trainer::train`] (the
    /// library never prints; the command line decides where messages go).
    #[must_use]
    pub fn with_notify(mut self, notify: Notify) -> BurnTrainer {
        self.notify = Some(notify);
        self
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// Reads, tokenizes and splits the corpus of `config` (relative paths against `base_dir`).
    /// `notify` hears about downloads.
    pub fn load_data(
        &self,
        config: &RunConfig,
        base_dir: &Path,
        notify: &mut dyn FnMut(&str),
    ) -> Result<Dataset, TrainError> {
        if !matches!(config.train.trainer, TrainerSpec::Builtin) {
            return Err(TrainError::NotBuiltin);
        }
        let text = corpus::load(&config.data.corpus, base_dir, &self.cache_dir, data::text_bytes(config), notify)?;
        Dataset::prepare(config, &text, &self.cache_dir)
    }

    /// Trains on already loaded data.
    pub fn train_data(
        &self,
        config: &RunConfig,
        data: &Dataset,
        ctx: &mut RunContext<'_>,
    ) -> Result<RunResult, Cancelled> {
        // A GPU slot of `--gpus` picks the GPU; the backend (and so the run's key) stays.
        let device = match (self.device, ctx.device) {
            (Device::Cuda(_), Some(n)) => Device::Cuda(n),
            (device, _) => device,
        };
        let run = std::panic::AssertUnwindSafe(|| match device {
            Device::Cpu => trainer::train::<CpuBackend>(config, data, &burn::backend::flex::FlexDevice, ctx),
            Device::CpuGeneric => with_accelerator_path(true, || {
                trainer::train::<CpuBackend>(config, data, &burn::backend::flex::FlexDevice, ctx)
            }),
            #[cfg(feature = "cuda")]
            Device::Cuda(n) => {
                trainer::train::<CudaBackend>(config, data, &burn::backend::cuda::CudaDevice::new(n), ctx)
            }
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(_) => Ok(RunResult::failed(TrainError::CudaUnavailable("cuda".into()).to_string())),
        });
        match std::panic::catch_unwind(run) {
            Ok(result) => result,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                Ok(RunResult::failed(format!("internal error in the trainer: {what}")))
            }
        }
    }
}

impl Trainer for BurnTrainer {
    fn identity(&self, config: &RunConfig) -> TrainerIdentity {
        TrainerIdentity {
            name: "lrx-builtin".to_owned(),
            version: VERSION.to_owned(),
            backend: self.device.backend(),
            precision: config.train.precision.name().to_owned(),
            device: matches!(config.train.budget, Budget::Time(_)).then(|| self.device.describe()),
        }
    }

    fn train(&self, config: &RunConfig, ctx: &mut RunContext<'_>) -> Result<RunResult, Cancelled> {
        let base = ctx.base_dir.clone();
        let mut notify = |msg: &str| {
            if let Some(n) = &self.notify {
                n(msg);
            }
        };
        let data = match self.load_data(config, &base, &mut notify) {
            Ok(d) => d,
            Err(e) => return Ok(RunResult::failed(e.to_string())),
        };
        self.train_data(config, &data, ctx)
    }

    /// A rung before a late decay is measured on a cooldown branch (`trainer::train`).
    fn branches(&self, _config: &RunConfig) -> bool {
        true
    }
}

/// The first GPU's model as `nvidia-smi` names it (asked once per process), if it answers.
fn gpu_model() -> Option<String> {
    static MODEL: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    MODEL
        .get_or_init(|| {
            let out = std::process::Command::new("nvidia-smi")
                .args(["--query-gpu=name", "--format=csv,noheader", "-i", "0"])
                .stderr(std::process::Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())?;
            let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            (!name.is_empty()).then_some(name)
        })
        .clone()
}

/// burn-flex's GEMM (the `gemm` crate) dispatches on `avx512f`, then `fma`; the fused kernels
/// of `kernels.rs` give the same bits either way.
fn cpu_kernels() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "flex/x86-avx512";
        }
        if std::arch::is_x86_feature_detected!("fma") {
            return "flex/x86-fma";
        }
        "flex/x86"
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        concat!("flex/", std::env::consts::ARCH)
    }
}
