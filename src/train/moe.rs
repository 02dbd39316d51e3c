//! Mixture-of-experts feed-forward: a bias-free linear router, top-k routing with a softmax
//! over the k chosen logits, SiLU experts, and the Switch load-balancing term.
//!
//! Routing decisions (which experts) are made on the host from the router logits, which is
//! cheap and exact; mixing weights and the balance term stay differentiable. Tokens are
//! dispatched by gathering the rows routed to each expert (sorted by expert), running each
//! expert on its rows only, and scatter-adding the weighted outputs back. Router noise (training
//! only) is added to the logits before everything else: top-k choice, mixing weights and the
//! balance term all see the noisy logits.
//!
//! The balance term couples all tokens of a batch (its routed fractions `f_e` count every
//! token), while the trainer computes a batch as several shards, each in its own autodiff
//! graph. So a layer returns its part of the term, [`Balance`]: the differentiable mean router
//! probabilities `P_e` of its tokens and its host-side counts. The trainer adds up the counts of
//! all shards and then forms the full batch's term from the parts ([`fractions`], [`Balance::term`]).

use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{IndexingUpdateOp, Int, Tensor, TensorData};

use super::kernels::silu;
use super::rng::Rng;

/// A shard's part of a layer's balance term.
pub struct Balance<B: Backend> {
    /// `[1, E]`: mean router probability of each expert over the shard's tokens.
    pub probs: Tensor<B, 2>,
    /// Assignments routed to each expert in this shard.
    pub counts: Vec<usize>,
}

/// `f_e`: the fraction of all assignments (`Σ counts`) that went to each expert, over the parts
/// of one layer.
pub fn fractions<'a, B: Backend + 'a>(parts: impl IntoIterator<Item = &'a Balance<B>>) -> Vec<f32> {
    let mut total: Vec<usize> = Vec::new();
    for p in parts {
        total.resize(p.counts.len(), 0);
        for (t, c) in total.iter_mut().zip(&p.counts) {
            *t += c;
        }
    }
    let all = total.iter().sum::<usize>().max(1);
    total.iter().map(|&c| c as f32 / all as f32).collect()
}

impl<B: Backend> Balance<B> {
    /// `share · E·Σ_e f_e·P_e`: this part's contribution to the batch's balance term, where
    /// `share` is its fraction of the batch's tokens (so the parts sum to the full-batch term).
    pub fn term(&self, f: &[f32], share: f64) -> Tensor<B, 1> {
        let e = f.len();
        let f = Tensor::<B, 2>::from_data(TensorData::new(f.to_vec(), [1, e]), &self.probs.device());
        (self.probs.clone() * f).sum().mul_scalar(e as f64 * share)
    }
}

/// Router noise for one layer: `n·e` Gaussian draws of standard deviation `std`, row-major.
pub fn draw_noise(rng: &mut Rng, n: usize, e: usize, std: f64) -> Vec<f32> {
    (0..n * e).map(|_| (rng.normal() * std) as f32).collect()
}

/// Host-side routing of `n` tokens over `e` experts.
#[derive(Debug, PartialEq)]
pub struct Routing {
    /// `[n·k]`: the chosen experts of each token, best first (ties: lower index).
    pub chosen: Vec<usize>,
    /// Assignment ids (`token·k + slot`) sorted by expert, stable.
    pub order: Vec<usize>,
    /// Assignments per expert.
    pub counts: Vec<usize>,
}

/// Top-k of each row of `logits` (`[n, e]`, row-major).
pub fn route(logits: &[f32], e: usize, k: usize) -> Routing {
    let n = logits.len() / e;
    let mut chosen = Vec::with_capacity(n * k);
    let mut idx: Vec<usize> = Vec::with_capacity(e);
    for row in logits.chunks_exact(e) {
        idx.clear();
        idx.extend(0..e);
        // Descending by logit, NaN last, ties by index: a total, deterministic order.
        idx.sort_by(|&a, &b| {
            row[b].partial_cmp(&row[a]).unwrap_or_else(|| row[a].is_nan().cmp(&row[b].is_nan())).then(a.cmp(&b))
        });
        chosen.extend_from_slice(&idx[..k]);
    }
    let mut counts = vec![0; e];
    for &x in &chosen {
        counts[x] += 1;
    }
    let mut order: Vec<usize> = (0..chosen.len()).collect();
    order.sort_by_key(|&a| chosen[a]);
    Routing { chosen, order, counts }
}

fn int_tensor<B: Backend, const D: usize>(
    v: impl Iterator<Item = usize>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D, Int> {
    let data: Vec<i64> = v.map(|x| x as i64).collect();
    Tensor::from_data(TensorData::new(data, shape), device)
}

/// The MoE layer on `h: [N, d]`, with `noise` (`[N, E]` row-major, training only) added to
/// the router logits. Returns the output `[N, d]` and, when `want_aux`, this layer's part of
/// the balance term.
#[allow(clippy::too_many_arguments)]
pub fn moe<B: Backend>(
    h: Tensor<B, 2>,
    router: &Tensor<B, 2>,
    w1: &[Tensor<B, 2>],
    w2: &[Tensor<B, 2>],
    top_k: usize,
    noise: Option<&[f32]>,
    want_aux: bool,
) -> (Tensor<B, 2>, Option<Balance<B>>) {
    let device = h.device();
    let [n, d] = h.dims();
    let e = w1.len();
    let mut logits = h.clone().matmul(router.clone()); // [N, E]
    if let Some(z) = noise {
        logits = logits + Tensor::from_data(TensorData::new(z.to_vec(), [n, e]), &device);
    }
    let host = logits.to_data().convert::<f32>().into_vec::<f32>().unwrap_or_default();
    let r = route(&host, e, top_k);

    let aux = want_aux.then(|| Balance { probs: softmax(logits.clone(), 1).mean_dim(0), counts: r.counts.clone() });

    let chosen = int_tensor::<B, 2>(r.chosen.iter().copied(), [n, top_k], &device);
    let gates = softmax(logits.gather(1, chosen), 1).reshape([n * top_k, 1]);
    let order = int_tensor::<B, 1>(r.order.iter().copied(), [n * top_k], &device);
    let tokens = int_tensor::<B, 1>(r.order.iter().map(|a| a / top_k), [n * top_k], &device);
    let gates = gates.select(0, order);
    let xs = h.select(0, tokens.clone()); // [N·k, d], grouped by expert
    let mut outs = Vec::with_capacity(e);
    let mut start = 0;
    for (x, &count) in r.counts.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let rows = xs.clone().slice([start..start + count, 0..d]);
        outs.push(silu(rows.matmul(w1[x].clone())).matmul(w2[x].clone()));
        start += count;
    }
    let ys = Tensor::cat(outs, 0) * gates;
    let out = Tensor::<B, 2>::zeros([n, d], &device).select_assign(0, tokens, ys, IndexingUpdateOp::Add);
    (out, aux)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_picks_top_k_with_stable_ties() {
        let logits = [0.1, 0.9, 0.5, 0.9, /* */ 2.0, -1.0, 0.0, 1.0];
        let r = route(&logits, 4, 2);
        assert_eq!(r.chosen, vec![1, 3, 0, 3]);
        assert_eq!(r.counts, vec![1, 1, 0, 2]);
        assert_eq!(r.order, vec![2, 0, 1, 3]);
    }
}
