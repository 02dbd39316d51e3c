//! Mixture-of-experts feed-forward: a bias-free linear router, top-k routing with a softmax
//! over the k chosen logits, SiLU experts, and the Switch load-balancing term.
//!
//! Routing decisions (which experts) are made on the host from the router logits, which is
//! cheap and exact; mixing weights and the balance term stay differentiable. Tokens are
//! dispatched by gathering the rows routed to each expert (sorted by expert), running each
//! expert on its rows only, and scatter-adding the weighted outputs back. Router noise (training
//! only) is added to the logits before everything else: top-k choice, mixing weights and the
//! balance term all see the noisy logits.

use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{IndexingUpdateOp, Int, Tensor, TensorData};

use super::kernels::silu;
use super::rng::Rng;

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
        idx.sort_by(|&a, &b| row[b].partial_cmp(&row[a]).unwrap_or_else(|| row[a].is_nan().cmp(&row[b].is_nan())).then(a.cmp(&b)));
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

fn int_tensor<B: Backend, const D: usize>(v: impl Iterator<Item = usize>, shape: [usize; D], device: &B::Device) -> Tensor<B, D, Int> {
    let data: Vec<i64> = v.map(|x| x as i64).collect();
    Tensor::from_data(TensorData::new(data, shape), device)
}

/// The MoE layer on `h: [N, d]`. Returns the output `[N, d]` and the unweighted balance term
/// `E·Σ_e f_e·P_e` (a `[1]` tensor), or `None` when `want_aux` is false.
#[allow(clippy::too_many_arguments)]
pub fn moe<B: Backend>(
    h: Tensor<B, 2>,
    router: &Tensor<B, 2>,
    w1: &[Tensor<B, 2>],
    w2: &[Tensor<B, 2>],
    top_k: usize,
    noise: Option<(&mut Rng, f64)>,
    want_aux: bool,
) -> (Tensor<B, 2>, Option<Tensor<B, 1>>) {
    let device = h.device();
    let [n, d] = h.dims();
    let e = w1.len();
    let mut logits = h.clone().matmul(router.clone()); // [N, E]
    if let Some((rng, std)) = noise
        && std > 0.0
    {
        let z: Vec<f32> = (0..n * e).map(|_| (rng.normal() * std) as f32).collect();
        logits = logits + Tensor::from_data(TensorData::new(z, [n, e]), &device);
    }
    let host = logits.to_data().convert::<f32>().into_vec::<f32>().unwrap_or_default();
    let r = route(&host, e, top_k);

    let aux = want_aux.then(|| {
        let f: Vec<f32> = r.counts.iter().map(|&c| c as f32 / (n * top_k) as f32).collect();
        let f = Tensor::<B, 2>::from_data(TensorData::new(f, [1, e]), &device);
        let p = softmax(logits.clone(), 1).mean_dim(0); // [1, E]
        (p * f).sum().mul_scalar(e as f64)
    });

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
