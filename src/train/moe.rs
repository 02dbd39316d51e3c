//! Mixture-of-experts feed-forward: a bias-free linear router, top-k routing with a softmax
//! over the k chosen logits, SiLU experts, and the Switch load-balancing term.
//!
//! Routing decisions (which experts) are made on the host from the router logits, which is
//! cheap and exact; mixing weights and the balance term stay differentiable. Tokens are
//! dispatched by gathering the rows routed to each expert (sorted by expert), running the
//! experts on their rows (one expert at a time on the CPU; on accelerators as two batched
//! matmuls over groups padded to the largest), and scatter-adding the weighted outputs back. Router noise (training
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
use super::precision::matmul;
use super::rng::Rng;
use crate::spec::Precision;

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
/// the balance term. The experts' matmuls run in `precision`; the router stays f32 (its
/// logits decide the routing, which bf16 rounding would flip between near-equal experts).
#[allow(clippy::too_many_arguments)]
pub fn moe<B: Backend>(
    h: Tensor<B, 2>,
    router: &Tensor<B, 2>,
    w1: &[Tensor<B, 2>],
    w2: &[Tensor<B, 2>],
    top_k: usize,
    noise: Option<&[f32]>,
    want_aux: bool,
    precision: Precision,
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
    let ys = if super::on_cpu_either::<B>() {
        experts_looped(&xs, &r.counts, w1, w2, precision)
    } else {
        experts_grouped(xs, &r.counts, w1, w2, precision)
    };
    let out = Tensor::<B, 2>::zeros([n, d], &device).select_assign(0, tokens, ys * gates, IndexingUpdateOp::Add);
    (out, aux)
}

/// The experts on their rows (`xs`, grouped by expert, `counts[x]` rows each), one expert at a
/// time: two GEMMs of exactly its rows each. The CPU's way: no padding, and each GEMM as large
/// as the expert's share of tokens.
fn experts_looped<B: Backend>(
    xs: &Tensor<B, 2>,
    counts: &[usize],
    w1: &[Tensor<B, 2>],
    w2: &[Tensor<B, 2>],
    precision: Precision,
) -> Tensor<B, 2> {
    let d = xs.dims()[1];
    let mut outs = Vec::with_capacity(counts.len());
    let mut start = 0;
    for (x, &count) in counts.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let rows = xs.clone().slice([start..start + count, 0..d]);
        outs.push(matmul(silu(matmul(rows, w1[x].clone(), precision)), w2[x].clone(), precision));
        start += count;
    }
    Tensor::cat(outs, 0)
}

/// The same as [`experts_looped`] in a fixed number of ops, whatever the number of experts: the
/// rows of the experts that have any are padded to the largest group (`[G, C, d]`, padding rows
/// zero), their weights stacked (`[G, d, f]`, `[G, f, d]`), and each of the two layers is one
/// batched matmul; the real rows are then picked out in the same order. For accelerators, where
/// `2·E` small GEMMs and `E` slices cost a kernel launch each. Experts without rows stay out of
/// the graph, as in the loop (no gradient, so the optimizer treats them alike). The padding
/// rows' outputs are never selected, so they add nothing to any gradient.
fn experts_grouped<B: Backend>(
    xs: Tensor<B, 2>,
    counts: &[usize],
    w1: &[Tensor<B, 2>],
    w2: &[Tensor<B, 2>],
    precision: Precision,
) -> Tensor<B, 2> {
    let device = xs.device();
    let [rows, d] = xs.dims();
    let active: Vec<usize> = (0..counts.len()).filter(|&x| counts[x] > 0).collect();
    if active.is_empty() {
        return xs;
    }
    let (g, cap) = (active.len(), counts.iter().copied().max().unwrap_or(0));
    let f = w1[active[0]].dims()[1];
    // Row `rows` of the padded input is the zero row every padding slot points at.
    let (mut gather, mut pick) = (Vec::with_capacity(g * cap), Vec::with_capacity(rows));
    let mut start = 0;
    for (slot, &x) in active.iter().enumerate() {
        let count = counts[x];
        gather.extend((start..start + count).chain(std::iter::repeat_n(rows, cap - count)));
        pick.extend(slot * cap..slot * cap + count);
        start += count;
    }
    let padded = Tensor::cat(vec![xs, Tensor::zeros([1, d], &device)], 0)
        .select(0, int_tensor::<B, 1>(gather.into_iter(), [g * cap], &device))
        .reshape([g, cap, d]);
    let stack = |w: &[Tensor<B, 2>]| Tensor::stack::<3>(active.iter().map(|&x| w[x].clone()).collect(), 0);
    let hidden = matmul(padded, stack(w1), precision).reshape([g * cap, f]);
    let hidden = silu(hidden).reshape([g, cap, f]);
    matmul(hidden, stack(w2), precision)
        .reshape([g * cap, d])
        .select(0, int_tensor::<B, 1>(pick.into_iter(), [rows], &device))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batched, padded experts compute what the loop computes, forward and backward, with
    /// uneven groups and an expert without rows (which gets no gradient either way).
    #[test]
    fn grouped_experts_match_the_loop_with_gradients() {
        type A = burn::backend::Autodiff<burn::backend::Flex>;
        let dev = burn::backend::flex::FlexDevice;
        let (d, f, counts) = (3usize, 4usize, [3usize, 0, 1, 2]);
        let rows: usize = counts.iter().sum();
        let mut rng = Rng::new(5, super::super::rng::Stream::Init);
        let mut draw = |shape: [usize; 2]| {
            let v: Vec<f32> = (0..shape[0] * shape[1]).map(|_| rng.normal() as f32).collect();
            Tensor::<A, 2>::from_data(TensorData::new(v, shape), &dev).require_grad()
        };
        let xs = draw([rows, d]);
        let w1: Vec<_> = (0..4).map(|_| draw([d, f])).collect();
        let w2: Vec<_> = (0..4).map(|_| draw([f, d])).collect();
        let weights = draw([rows, d]).detach();
        let host = |t: Tensor<burn::backend::Flex, 2>| t.into_data().convert::<f32>().into_vec::<f32>().unwrap();
        let run = |grouped: bool| {
            let ys = if grouped {
                experts_grouped(xs.clone(), &counts, &w1, &w2, Precision::F32)
            } else {
                experts_looped(&xs, &counts, &w1, &w2, Precision::F32)
            };
            let grads = (ys.clone() * weights.clone()).sum().backward();
            let mut out = vec![host(ys.inner())];
            out.push(host(xs.grad(&grads).unwrap()));
            for w in w1.iter().chain(&w2) {
                out.push(w.grad(&grads).map(host).unwrap_or_default());
            }
            out
        };
        let (looped, grouped) = (run(false), run(true));
        assert!(looped[3].is_empty() && grouped[3].is_empty(), "expert 1 has no rows: no gradient");
        for (a, b) in looped.iter().zip(&grouped) {
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() <= 1e-5 * (1.0 + x.abs()), "{a:?}\n{b:?}");
            }
        }
    }

    #[test]
    fn routing_picks_top_k_with_stable_ties() {
        let logits = [0.1, 0.9, 0.5, 0.9, /* */ 2.0, -1.0, 0.0, 1.0];
        let r = route(&logits, 4, 2);
        assert_eq!(r.chosen, vec![1, 3, 0, 3]);
        assert_eq!(r.counts, vec![1, 1, 0, 2]);
        assert_eq!(r.order, vec![2, 0, 1, 3]);
    }
}
