//! One training step's loss and gradients, with the batch computed as shards: each shard's
//! forward and backward run in an autodiff graph of its own, on separate threads on the CPU
//! backend, and the gradients are added up in shard order.
//!
//! Why: at the sizes lrx trains on a workstation or a small node, each GEMM is too small for
//! burn-flex to split across cores profitably, so a step used one core while PyTorch used all.
//! Half-batches on two threads use two. Bits never depend on the thread count: the number of
//! shards is fixed per backend (not per machine), a shard computes the same values on whichever
//! thread it lands, and every sum over shards is taken in shard order (`RAYON_NUM_THREADS=1`
//! gives the same bits, tested). The loss is the full batch's: the cross-entropy is each shard's
//! mean weighted by its share of the tokens, and the balance term's routed fractions are
//! counted over all shards before any shard builds its part ([`moe::Balance`]).

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};

use super::attention::AttnConsts;
use super::model::{Layout, forward, inputs};
use super::moe;
use crate::spec::{ModelConfig, Precision};

/// Shards of a batch on the CPU backend (`flex`): as many as the cores of the small machines lrx
/// targets. More would shrink each GEMM further; where there are more cores, burn-flex still
/// spreads each shard's larger GEMMs over them. Part of the numerics: changing it means bumping
/// [`super::VERSION`].
pub const CPU_SHARDS: usize = 2;

/// Shards of a batch on backend `B`. Accelerators get one: they parallelize inside each op.
pub fn shards_for<B: AutodiffBackend>(batch: usize) -> usize {
    if super::on_cpu::<B::InnerBackend>() { CPU_SHARDS.min(batch).max(1) } else { 1 }
}

/// A shard's graph after its forward pass.
struct Shard<B: AutodiffBackend> {
    /// The parameters as leaves of this shard's graph (their gradients are read from it).
    leaves: Vec<Tensor<B, 2>>,
    /// This shard's part of the batch's loss: its share of the cross-entropy and of the
    /// weighted balance term.
    ce: Tensor<B, 1>,
    aux: Option<Tensor<B, 1>>,
}

/// A step after the forward pass: the batch's losses, ready for [`Forward::backward`].
pub struct Forward<B: AutodiffBackend> {
    shards: Vec<Shard<B>>,
    /// Mean cross-entropy of the batch.
    pub ce: f64,
    /// `balance_loss · Σ_layers E·Σ_e f_e·P_e` of the batch.
    pub aux: f64,
}

/// Forward pass over `batch` windows of `seq + 1` tokens, in `shards` shards. `noise` holds each
/// MoE layer's router noise for the whole batch (`[B·T, E]`, row-major).
#[allow(clippy::too_many_arguments)]
pub fn forward_batch<B: AutodiffBackend>(
    m: &ModelConfig,
    layout: &Layout,
    params: &[Tensor<B::InnerBackend, 2>],
    consts: &AttnConsts<B>,
    windows: &[u32],
    batch: usize,
    shards: usize,
    noise: Option<&[Vec<f32>]>,
    precision: Precision,
    device: &B::Device,
) -> Forward<B> {
    let seq = m.seq_len;
    let e = m.experts;
    let shards = shards.clamp(1, batch.max(1));
    // Shard s takes rows [start, end) of the batch; the first `batch % shards` get one more.
    let (q, r) = (batch / shards, batch % shards);
    let bounds: Vec<(usize, usize)> = (0..shards).map(|s| (s * q + s.min(r), (s + 1) * q + (s + 1).min(r))).collect();
    let run = |(start, end): (usize, usize)| {
        let rows = end - start;
        let input = inputs::<B>(&windows[start * (seq + 1)..end * (seq + 1)], rows, seq, device);
        let leaves: Vec<Tensor<B, 2>> = params.iter().map(|p| Tensor::from_inner(p.clone()).require_grad()).collect();
        let z: Option<Vec<&[f32]>> = noise.map(|all| all.iter().map(|z| &z[start * seq * e..end * seq * e]).collect());
        let out = forward(m, layout, &leaves, consts, &input, z.as_deref(), precision);
        (leaves, out.ce, out.balance, rows as f64 / batch as f64)
    };
    let parts = super::map_in_order(shards > 1, bounds, run);

    // The routed fractions need every shard's counts; then each shard forms its own part.
    let layers = parts[0].2.len();
    let fractions: Vec<Vec<f32>> = (0..layers).map(|l| moe::fractions(parts.iter().map(|p| &p.2[l]))).collect();
    let scalar = |t: &Tensor<B, 1>| f64::from(t.clone().into_scalar().elem::<f32>());
    let (mut ce, mut aux) = (0.0, 0.0);
    let shards = parts
        .into_iter()
        .map(|(leaves, shard_ce, balance, share)| {
            let shard_ce = shard_ce.mul_scalar(share);
            ce += scalar(&shard_ce);
            let shard_aux = balance
                .iter()
                .zip(&fractions)
                .map(|(b, f)| b.term(f, share))
                .reduce(|a, b| a + b)
                .map(|t| t.mul_scalar(m.balance_loss));
            if let Some(a) = &shard_aux {
                aux += scalar(a);
            }
            Shard { leaves, ce: shard_ce, aux: shard_aux }
        })
        .collect();
    Forward { shards, ce, aux }
}

impl<B: AutodiffBackend> Forward<B> {
    /// Backward pass of every shard (in parallel when there are several), and the gradient of
    /// each parameter summed over shards in shard order; `None` where no shard reached it (an
    /// expert no token was routed to).
    pub fn backward(self) -> Vec<Option<Tensor<B::InnerBackend, 2>>> {
        let run = |s: Shard<B>| {
            let loss = match s.aux {
                Some(a) => s.ce + a,
                None => s.ce,
            };
            let grads = loss.backward();
            s.leaves.iter().map(|p| p.grad(&grads)).collect::<Vec<_>>()
        };
        let mut shards = super::map_in_order(self.shards.len() > 1, self.shards, run).into_iter();
        let mut sum = shards.next().unwrap_or_default();
        for g in shards {
            for (acc, g) in sum.iter_mut().zip(g) {
                *acc = match (acc.take(), g) {
                    (Some(a), Some(b)) => Some(a + b),
                    (a, b) => a.or(b),
                };
            }
        }
        sum
    }
}
