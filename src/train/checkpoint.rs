//! Checkpoints of the built-in trainer: a run's full state after some step (parameters, every
//! optimizer state tensor, the batch and router-noise streams' positions, the loop's running
//! sums, last evaluation and history), so that a resumed run ends bit-identical on the CPU to
//! one trained straight through.
//!
//! One file: the magic `LRXCKPT\0`, the JSON header's length (u64 little endian), the header,
//! the tensors as f32 little endian in the header's order, and a CRC-32 of everything before
//! it (u32 little endian). The header names the format version, the trainer version and
//! backend, the run config and a fingerprint of the data; a resume checks all of them, so a
//! checkpoint is never silently applied to another run. Scalars of the loop are stored as the
//! bits of their `f64`, so they come back exact whatever they are (NaN included).

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::data::Dataset;
use super::metrics::{Eval, Running};
use super::model::Layout;
use super::optim::Optimizer;
use crate::spec::{HistoryRow, RunConfig};

/// Bumped whenever the layout of a checkpoint changes.
pub const FORMAT_VERSION: u32 = 1;

const MAGIC: &[u8; 8] = b"LRXCKPT\0";

/// Why a checkpoint could not be written or used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read the checkpoint `{}`: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write the checkpoint `{}`: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("`{}` is not an lrx checkpoint", path.display())]
    NotACheckpoint { path: PathBuf },
    #[error("the checkpoint `{}` is corrupt ({why})", path.display())]
    Corrupt { path: PathBuf, why: String },
    #[error("the checkpoint `{}` has format version {found}; this lrx reads version {FORMAT_VERSION}", path.display())]
    Version { path: PathBuf, found: u32 },
    #[error("the checkpoint `{}` was made by another run: {what}", path.display())]
    Mismatch { path: PathBuf, what: String },
}

/// What the training loop carries from one step to the next, besides tensors and streams.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoopState {
    /// Steps taken.
    pub step: u64,
    pub history: Vec<HistoryRow>,
    /// Training losses since the last history row.
    pub running: Running,
    pub last_eval: Option<(u64, Eval)>,
    pub last_train: Option<(f64, f64)>,
    /// The first step's loss, which divergence is judged against.
    pub initial_loss: Option<f64>,
    /// Seconds spent in steps, and since the run started (timing metrics only).
    pub train_secs: f64,
    pub elapsed: f64,
    /// The step's values its history row needs, when a checkpoint is taken between the step
    /// and its row (always, for checkpoints taken by the loop).
    pub row: Option<RowInputs>,
}

/// What the history row of a step needs from the step itself.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowInputs {
    /// The schedule's multiplier.
    pub mult: f64,
    /// Each group's LR, in `Group::ALL` order.
    pub lrs: [f64; 4],
    pub grad_norm: f64,
}

/// Everything a checkpoint is made from.
pub struct Snapshot<'a, B: Backend> {
    pub config: &'a RunConfig,
    pub data: &'a Dataset,
    pub layout: &'a Layout,
    pub params: &'a [Tensor<B, 2>],
    pub optimizer: &'a Optimizer<B>,
    /// Positions of the batch and router-noise streams.
    pub batches: u128,
    pub noise: u128,
    pub state: &'a LoopState,
}

/// A run's state read back from a checkpoint (the optimizer's is already in place).
pub struct Restored<B: Backend> {
    pub params: Vec<Tensor<B, 2>>,
    pub batches: u128,
    pub noise: u128,
    pub state: LoopState,
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: u32,
    trainer: String,
    backend: String,
    config: serde_json::Value,
    data: DataPrint,
    optimizer_steps: u64,
    /// Stream positions, as decimal text (JSON numbers stop at 64 bits).
    batches: String,
    noise: String,
    state: SavedState,
    tensors: Vec<Entry>,
}

/// Enough of a dataset to tell it from another: sizes and a CRC-32 of the token ids.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct DataPrint {
    vocab: usize,
    train_tokens: usize,
    val_tokens: usize,
    crc32: u32,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Entry {
    name: String,
    shape: [usize; 2],
}

/// [`LoopState`] with every `f64` as its bits.
#[derive(Serialize, Deserialize)]
struct SavedState {
    step: u64,
    history: Vec<HistoryRow>,
    running: [u64; 3],
    last_eval: Option<(u64, [u64; 4])>,
    last_train: Option<[u64; 2]>,
    initial_loss: Option<u64>,
    train_secs: u64,
    elapsed: u64,
    row: Option<SavedRow>,
}

#[derive(Serialize, Deserialize)]
struct SavedRow {
    mult: u64,
    lrs: [u64; 4],
    grad_norm: u64,
}

impl SavedState {
    fn from(s: &LoopState) -> SavedState {
        SavedState {
            step: s.step,
            history: s.history.clone(),
            running: [s.running.loss.to_bits(), s.running.aux.to_bits(), s.running.steps],
            last_eval: s.last_eval.map(|(at, e)| (at, [e.loss, e.accuracy, e.ppl, e.bpb].map(f64::to_bits))),
            last_train: s.last_train.map(|(l, a)| [l.to_bits(), a.to_bits()]),
            initial_loss: s.initial_loss.map(f64::to_bits),
            train_secs: s.train_secs.to_bits(),
            elapsed: s.elapsed.to_bits(),
            row: s.row.map(|r| SavedRow {
                mult: r.mult.to_bits(),
                lrs: r.lrs.map(f64::to_bits),
                grad_norm: r.grad_norm.to_bits(),
            }),
        }
    }

    fn into_state(self) -> LoopState {
        let f = f64::from_bits;
        LoopState {
            step: self.step,
            history: self.history,
            running: Running { loss: f(self.running[0]), aux: f(self.running[1]), steps: self.running[2] },
            last_eval: self.last_eval.map(|(at, [loss, accuracy, ppl, bpb])| {
                (at, Eval { loss: f(loss), accuracy: f(accuracy), ppl: f(ppl), bpb: f(bpb) })
            }),
            last_train: self.last_train.map(|[l, a]| (f(l), f(a))),
            initial_loss: self.initial_loss.map(f),
            train_secs: f(self.train_secs),
            elapsed: f(self.elapsed),
            row: self.row.map(|r| RowInputs { mult: f(r.mult), lrs: r.lrs.map(f), grad_norm: f(r.grad_norm) }),
        }
    }
}

/// The backend a run computes on, as precisely as its numerics depend on it.
pub fn backend_label<B: Backend>() -> String {
    let path = if super::accelerator_path() { "+generic" } else { "" };
    format!("{} {}{path}", std::any::type_name::<B>(), super::cpu_kernels())
}

fn data_print(data: &Dataset) -> DataPrint {
    let mut crc = crc32fast::Hasher::new();
    for block in [&data.train, &data.val] {
        for t in block {
            crc.update(&t.to_le_bytes());
        }
    }
    DataPrint {
        vocab: data.tok.vocab_size(),
        train_tokens: data.train.len(),
        val_tokens: data.val.len(),
        crc32: crc.finalize(),
    }
}

/// The config as the checkpoint compares it: the corpus's location is left out (the data is
/// compared by content).
fn config_json(config: &RunConfig) -> serde_json::Value {
    let mut c = config.clone();
    c.data.corpus = String::new();
    serde_json::to_value(&c).unwrap_or_default()
}

/// The tensors a checkpoint of this layout and optimizer holds, in order: the parameters,
/// then the optimizer's state.
fn entries<B: Backend>(layout: &Layout, optimizer: &Optimizer<B>) -> (Vec<Entry>, Vec<Tensor<B, 2>>) {
    let state = optimizer.state();
    let mut names: Vec<Entry> =
        layout.specs.iter().map(|s| Entry { name: format!("param/{}", s.name), shape: s.shape }).collect();
    names.extend(state.iter().map(|(kind, i, _)| Entry {
        name: format!("{kind}/{}", layout.specs[*i].name),
        shape: layout.specs[*i].shape,
    }));
    (names, state.into_iter().map(|(_, _, t)| t).collect())
}

/// Writes a checkpoint to `path`, atomically (a sibling temporary file, fsynced, renamed over
/// it). Returns its size in bytes.
pub fn save<B: Backend>(path: &Path, s: &Snapshot<'_, B>) -> Result<u64, CheckpointError> {
    let (tensors, opt_state) = entries(s.layout, s.optimizer);
    let header = Header {
        format: FORMAT_VERSION,
        trainer: super::VERSION.to_owned(),
        backend: backend_label::<B>(),
        config: config_json(s.config),
        data: data_print(s.data),
        optimizer_steps: s.optimizer.steps_taken(),
        batches: s.batches.to_string(),
        noise: s.noise.to_string(),
        state: SavedState::from(s.state),
        tensors,
    };
    let head = serde_json::to_vec(&header)
        .map_err(|e| CheckpointError::Write { path: path.to_owned(), source: std::io::Error::other(e) })?;
    let mut bytes = Vec::with_capacity(
        16 + head.len() + header.tensors.iter().map(|e| e.shape[0] * e.shape[1] * 4).sum::<usize>() + 4,
    );
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(head.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&head);
    for t in s.params.iter().cloned().chain(opt_state) {
        let values = t.into_data().convert::<f32>().into_vec::<f32>().unwrap_or_default();
        for x in values {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    let write_err = |source| CheckpointError::Write { path: path.to_owned(), source };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".partial-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    Ok(bytes.len() as u64)
}

/// Reads the checkpoint at `path` for a run of `config` on `data`: checks that it is whole and
/// was made by the same trainer, backend, config and data, puts the optimizer's state in place
/// and returns the rest.
pub fn load<B: Backend>(
    path: &Path,
    config: &RunConfig,
    data: &Dataset,
    layout: &Layout,
    optimizer: &mut Optimizer<B>,
    device: &B::Device,
) -> Result<Restored<B>, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Read { path: path.to_owned(), source })?;
    let corrupt = |why: String| CheckpointError::Corrupt { path: path.to_owned(), why };
    let mismatch = |what: String| CheckpointError::Mismatch { path: path.to_owned(), what };
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(CheckpointError::NotACheckpoint { path: path.to_owned() });
    }
    if bytes.len() < 20 {
        return Err(corrupt(format!("{} bytes, too short", bytes.len())));
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    if crc32fast::hash(body) != stored {
        return Err(corrupt("its checksum does not match its content: the file was cut short or altered".into()));
    }
    let head_len = u64::from_le_bytes(body[8..16].try_into().unwrap_or([0; 8]));
    let head_end = usize::try_from(head_len)
        .ok()
        .and_then(|n| n.checked_add(16))
        .filter(|&end| end <= body.len())
        .ok_or_else(|| corrupt("its header length is out of range".into()))?;
    let head: serde_json::Value =
        serde_json::from_slice(&body[16..head_end]).map_err(|e| corrupt(format!("unreadable header: {e}")))?;
    let found = head.get("format").and_then(serde_json::Value::as_u64).unwrap_or(0);
    if found != u64::from(FORMAT_VERSION) {
        return Err(CheckpointError::Version {
            path: path.to_owned(),
            found: u32::try_from(found).unwrap_or(u32::MAX),
        });
    }
    let header: Header = serde_json::from_value(head).map_err(|e| corrupt(format!("unreadable header: {e}")))?;
    if header.trainer != super::VERSION {
        return Err(mismatch(format!(
            "it was made by version {} of the built-in trainer, this is version {}",
            header.trainer,
            super::VERSION
        )));
    }
    let backend = backend_label::<B>();
    if header.backend != backend {
        return Err(mismatch(format!(
            "it was made on the backend `{}`, this run is on `{backend}`, which rounds differently",
            header.backend
        )));
    }
    let want = config_json(config);
    if header.config != want {
        let mut diffs = Vec::new();
        differences("", &header.config, &want, &mut diffs);
        return Err(mismatch(format!("its config differs in {}", diffs.join(", "))));
    }
    let print = data_print(data);
    if header.data != print {
        return Err(mismatch(format!(
            "its data differs ({} training and {} validation tokens, vocabulary {}, CRC-32 {:08x}; this run has {}, {}, {}, {:08x})",
            header.data.train_tokens,
            header.data.val_tokens,
            header.data.vocab,
            header.data.crc32,
            print.train_tokens,
            print.val_tokens,
            print.vocab,
            print.crc32
        )));
    }
    let (expected, _) = entries(layout, optimizer);
    if header.tensors != expected {
        return Err(corrupt("its tensors are not those of this model and optimizer".into()));
    }
    let parse = |s: &str| s.parse::<u128>().map_err(|_| corrupt(format!("bad stream position `{s}`")));
    let (batches, noise) = (parse(&header.batches)?, parse(&header.noise)?);
    let payload = &body[head_end..];
    let floats: usize = expected.iter().map(|e| e.shape[0] * e.shape[1]).sum();
    if payload.len() != floats * 4 {
        return Err(corrupt(format!("{} bytes of tensors where {} were expected", payload.len(), floats * 4)));
    }
    let mut tensors = Vec::with_capacity(expected.len());
    let mut at = 0;
    for e in &expected {
        let n = e.shape[0] * e.shape[1];
        let values: Vec<f32> =
            payload[at..at + n * 4].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        at += n * 4;
        tensors.push(Tensor::<B, 2>::from_data(TensorData::new(values, e.shape), device));
    }
    let opt_state = tensors.split_off(layout.specs.len());
    optimizer.set_state(header.optimizer_steps, opt_state);
    Ok(Restored { params: tensors, batches, noise, state: header.state.into_state() })
}

/// The paths (`train.matrix_lr`) where two JSON values differ.
fn differences(at: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let path = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => differences(&path, p, q, out),
                    _ => out.push(format!("`{path}`")),
                }
            }
        }
        _ if a != b => out.push(format!("`{at}` (checkpoint: {a}, this run: {b})")),
        _ => {}
    }
}
