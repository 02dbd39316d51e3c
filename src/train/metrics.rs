//! Evaluation on the fixed validation windows (loss, accuracy, perplexity, bits per byte) and
//! the running averages that become history rows.

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};

use super::attention::AttnConsts;
use super::data::Dataset;
use super::model::{Layout, forward, inputs};
use crate::spec::{ModelConfig, Precision};

/// Validation metrics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Eval {
    pub loss: f64,
    pub accuracy: f64,
    pub ppl: f64,
    /// Bits per byte: total nats / (ln 2 · bytes of the predicted tokens).
    pub bpb: f64,
}

impl Eval {
    pub fn insert_into(&self, m: &mut BTreeMap<String, f64>) {
        m.insert("val_loss".into(), self.loss);
        m.insert("val_accuracy".into(), self.accuracy);
        m.insert("val_ppl".into(), self.ppl);
        m.insert("val_bpb".into(), self.bpb);
    }
}

/// Evaluates `params` on every validation window (no router noise, no graph). Batches are
/// independent: on the CPU backend they run on separate threads, and their sums are added in
/// batch order, so the bits do not depend on the thread count.
pub fn evaluate<B: Backend>(
    m: &ModelConfig,
    layout: &Layout,
    params: &[Tensor<B, 2>],
    consts: &AttnConsts<B>,
    data: &Dataset,
    batch: usize,
    precision: Precision,
) -> Eval {
    let device = params[0].device();
    let seq = m.seq_len;
    let n_batches = data.val_starts.len() / batch;
    // Per batch: summed target log-probability, correct predictions, predicted bytes.
    let one = |b: usize| -> (f32, i64, u64) {
        let mut windows = Vec::new();
        data.val_batch(b, batch, seq, &mut windows);
        let bytes = windows.chunks_exact(seq + 1).flat_map(|w| &w[1..]).map(|&t| u64::from(data.tok.byte_len(t))).sum();
        let input = inputs::<B>(&windows, batch, seq, &device);
        let out = forward(m, layout, params, consts, &input, None, precision);
        let logp = out.target_logp.sum().into_scalar().elem::<f32>();
        let correct = out.logits.argmax(1).equal(input.y).int().sum().into_scalar().elem::<i64>();
        (logp, correct, bytes)
    };
    let per_batch = super::map_in_order(super::on_cpu::<B>(), (0..n_batches).collect(), one);
    let (mut nats, mut correct, mut bytes) = (0.0f64, 0i64, 0u64);
    for (logp, c, b) in per_batch {
        nats -= f64::from(logp);
        correct += c;
        bytes += b;
    }
    let count = (n_batches * batch * seq) as u64;
    let loss = nats / count.max(1) as f64;
    Eval {
        loss,
        accuracy: correct as f64 / count.max(1) as f64,
        ppl: loss.exp(),
        bpb: nats / (std::f64::consts::LN_2 * bytes.max(1) as f64),
    }
}

/// Sums since the last history row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Running {
    pub loss: f64,
    pub aux: f64,
    pub steps: u64,
}

impl Running {
    pub fn add(&mut self, loss: f64, aux: f64) {
        self.loss += loss;
        self.aux += aux;
        self.steps += 1;
    }

    /// Mean training loss and aux loss since the last call (None when no step was taken).
    pub fn take(&mut self) -> Option<(f64, f64)> {
        let out = (self.steps > 0).then(|| (self.loss / self.steps as f64, self.aux / self.steps as f64));
        *self = Running::default();
        out
    }
}
