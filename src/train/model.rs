//! The decoder-only MoE language model: parameter layout and groups, seeded initialization,
//! the forward pass (embedding → blocks → RMSNorm → LM head) and parameter counts.
//!
//! Parameters are plain 2-D tensors (1-D gains are stored `[1, d]`), in a fixed order given
//! by [`Layout`]; the forward is generic over the backend, so training runs it under
//! autodiff and evaluation on the inner backend without a graph. Linear weights are
//! `[d_in, d_out]` (`y = x·W`), the transpose of PyTorch's `[out, in]`.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::attention::{AttnConsts, attention};
use super::kernels::{silu, target_logp};
use super::moe::{Balance, moe};
use super::precision::matmul;
use super::rng::{Rng, Stream};
use crate::spec::{ModelConfig, ParamCounts, Precision};

const NORM_EPS: f64 = 1e-6;

/// Which optimizer group (and LR key) a parameter belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    /// 2-D weights inside blocks: attention, router, experts / MLP (`matrix_lr`, Muon).
    Matrix,
    /// Token embedding (`embedding_lr`).
    Embedding,
    /// LM head (`unembedding_lr`).
    Unembedding,
    /// Norm gains and other 1-D parameters (`scalar_lr`).
    Scalar,
}

impl Group {
    pub const ALL: [Group; 4] = [Group::Matrix, Group::Embedding, Group::Unembedding, Group::Scalar];

    pub fn name(self) -> &'static str {
        match self {
            Group::Matrix => "matrix",
            Group::Embedding => "embedding",
            Group::Unembedding => "unembedding",
            Group::Scalar => "scalar",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Init {
    Normal(f64),
    Uniform(f64),
    Zeros,
    Ones,
}

/// One parameter's description.
#[derive(Clone, Debug)]
pub struct ParamSpec {
    pub name: String,
    pub shape: [usize; 2],
    pub group: Group,
    /// Whether it belongs to a routed expert (counted `k/E` in active parameters).
    pub expert: bool,
    init: Init,
}

#[derive(Clone, Debug)]
pub enum Ff {
    Dense { w1: usize, w2: usize },
    Moe { router: usize, w1: Vec<usize>, w2: Vec<usize> },
}

#[derive(Clone, Debug)]
pub struct LayerIdx {
    pub attn_norm: usize,
    pub wq: usize,
    pub wk: usize,
    pub wv: usize,
    pub wo: usize,
    pub mlp_norm: usize,
    pub ff: Ff,
}

/// The model's parameters, in order, and where each lives.
#[derive(Clone, Debug)]
pub struct Layout {
    pub specs: Vec<ParamSpec>,
    pub embedding: usize,
    pub layers: Vec<LayerIdx>,
    pub final_norm: usize,
    pub head: usize,
    pub vocab: usize,
}

impl Layout {
    pub fn new(m: &ModelConfig, vocab: usize) -> Layout {
        let mut specs = Vec::new();
        let mut add = |name: String, shape: [usize; 2], group: Group, expert: bool, init: Init| {
            specs.push(ParamSpec { name, shape, group, expert, init });
            specs.len() - 1
        };
        let d = m.d_model;
        let lin = |fan_in: usize| Init::Uniform((3.0 / fan_in as f64).sqrt());
        let embedding = add("embedding".into(), [vocab, d], Group::Embedding, false, Init::Normal(1.0));
        let mut layers = Vec::with_capacity(m.layers);
        for l in 0..m.layers {
            let attn_norm = add(format!("blocks.{l}.attn_norm"), [1, d], Group::Scalar, false, Init::Ones);
            let wq = add(format!("blocks.{l}.attn.wq"), [d, d], Group::Matrix, false, lin(d));
            let wk = add(format!("blocks.{l}.attn.wk"), [d, d], Group::Matrix, false, lin(d));
            let wv = add(format!("blocks.{l}.attn.wv"), [d, d], Group::Matrix, false, lin(d));
            let wo = add(format!("blocks.{l}.attn.wo"), [d, d], Group::Matrix, false, Init::Zeros);
            let mlp_norm = add(format!("blocks.{l}.mlp_norm"), [1, d], Group::Scalar, false, Init::Ones);
            let ff = if m.experts <= 1 {
                let w1 = add(format!("blocks.{l}.mlp.w1"), [d, m.d_ff], Group::Matrix, false, lin(d));
                let w2 = add(format!("blocks.{l}.mlp.w2"), [m.d_ff, d], Group::Matrix, false, Init::Zeros);
                Ff::Dense { w1, w2 }
            } else {
                let router = add(format!("blocks.{l}.moe.router"), [d, m.experts], Group::Matrix, false, lin(d));
                let mut w1 = Vec::new();
                let mut w2 = Vec::new();
                for e in 0..m.experts {
                    w1.push(add(format!("blocks.{l}.moe.experts.{e}.w1"), [d, m.d_ff], Group::Matrix, true, lin(d)));
                    w2.push(add(
                        format!("blocks.{l}.moe.experts.{e}.w2"),
                        [m.d_ff, d],
                        Group::Matrix,
                        true,
                        Init::Zeros,
                    ));
                }
                Ff::Moe { router, w1, w2 }
            };
            layers.push(LayerIdx { attn_norm, wq, wk, wv, wo, mlp_norm, ff });
        }
        let final_norm = add("final_norm".into(), [1, d], Group::Scalar, false, Init::Ones);
        let head = add("lm_head".into(), [d, vocab], Group::Unembedding, false, Init::Normal(0.001));
        Layout { specs, embedding, layers, final_norm, head, vocab }
    }

    /// Total parameters, and those used per token (non-expert plus `k` experts per layer).
    pub fn counts(&self, m: &ModelConfig) -> ParamCounts {
        let numel = |s: &ParamSpec| (s.shape[0] * s.shape[1]) as u64;
        let total: u64 = self.specs.iter().map(numel).sum();
        let expert: u64 = self.specs.iter().filter(|s| s.expert).map(numel).sum();
        let active = total - expert + expert * m.top_k as u64 / m.experts.max(1) as u64;
        ParamCounts { total, active }
    }

    /// Initial values drawn from the config seed's own stream, in layout order.
    pub fn init<B: Backend>(&self, seed: u64, device: &B::Device) -> Vec<Tensor<B, 2>> {
        let mut rng = Rng::new(seed, Stream::Init);
        self.specs
            .iter()
            .map(|s| {
                let n = s.shape[0] * s.shape[1];
                let values: Vec<f32> = match s.init {
                    Init::Normal(std) => (0..n).map(|_| (rng.normal() * std) as f32).collect(),
                    Init::Uniform(a) => (0..n).map(|_| ((rng.uniform() * 2.0 - 1.0) * a) as f32).collect(),
                    Init::Zeros => vec![0.0; n],
                    Init::Ones => vec![1.0; n],
                };
                Tensor::from_data(TensorData::new(values, s.shape), device)
            })
            .collect()
    }
}

/// What a forward pass gives back.
pub struct Output<B: Backend> {
    /// Mean cross-entropy, `[1]`.
    pub ce: Tensor<B, 1>,
    /// Each MoE layer's part of the balance term (empty for dense models or weight 0); the
    /// caller forms the term, since its routed fractions may span several shards of a batch.
    pub balance: Vec<Balance<B>>,
    /// `[N, V]` logits (after the soft-cap).
    pub logits: Tensor<B, 2>,
    /// `[N, 1]` log-probability of each target.
    pub target_logp: Tensor<B, 2>,
}

/// A batch of windows as model inputs.
pub struct Batch<B: Backend> {
    /// Input ids `[B·T]`.
    pub x: Tensor<B, 1, Int>,
    /// Target ids `[B·T, 1]`.
    pub y: Tensor<B, 2, Int>,
    /// The same targets on the host.
    pub targets: Vec<u32>,
    pub batch: usize,
}

/// Splits windows of `seq + 1` tokens into inputs and next-token targets.
pub fn inputs<B: Backend>(windows: &[u32], batch: usize, seq: usize, device: &B::Device) -> Batch<B> {
    let mut x = Vec::with_capacity(batch * seq);
    let mut targets = Vec::with_capacity(batch * seq);
    for w in windows.chunks_exact(seq + 1) {
        x.extend(w[..seq].iter().map(|&t| i64::from(t)));
        targets.extend_from_slice(&w[1..]);
    }
    let y: Vec<i64> = targets.iter().map(|&t| i64::from(t)).collect();
    Batch {
        x: Tensor::from_data(TensorData::new(x, [batch * seq]), device),
        y: Tensor::from_data(TensorData::new(y, [batch * seq, 1]), device),
        targets,
        batch,
    }
}

fn rms_norm<B: Backend>(x: Tensor<B, 2>, gain: &Tensor<B, 2>) -> Tensor<B, 2> {
    super::kernels::rms_norm(x, gain, NORM_EPS)
}

/// The forward pass over `batch` sequences, its matmuls in `precision`. `noise` (training
/// only) holds each layer's router noise for these tokens (`[B·T, E]`, row-major).
pub fn forward<B: Backend>(
    m: &ModelConfig,
    layout: &Layout,
    p: &[Tensor<B, 2>],
    consts: &AttnConsts<B>,
    input: &Batch<B>,
    noise: Option<&[&[f32]]>,
    precision: Precision,
) -> Output<B> {
    let batch = input.batch;
    let mut h = p[layout.embedding].clone().select(0, input.x.clone()); // [N, d]
    let mut balance = Vec::new();
    let want_aux = m.balance_loss > 0.0;
    for (i, l) in layout.layers.iter().enumerate() {
        let a = attention(
            rms_norm(h.clone(), &p[l.attn_norm]),
            &p[l.wq],
            &p[l.wk],
            &p[l.wv],
            &p[l.wo],
            consts,
            batch,
            m.heads,
            precision,
        );
        h = h + a;
        let z = rms_norm(h.clone(), &p[l.mlp_norm]);
        let f = match &l.ff {
            Ff::Dense { w1, w2 } => matmul(silu(matmul(z, p[*w1].clone(), precision)), p[*w2].clone(), precision),
            Ff::Moe { router, w1, w2 } => {
                let w1: Vec<_> = w1.iter().map(|&i| p[i].clone()).collect();
                let w2: Vec<_> = w2.iter().map(|&i| p[i].clone()).collect();
                let (out, b) = moe(z, &p[*router], &w1, &w2, m.top_k, noise.map(|z| z[i]), want_aux, precision);
                balance.extend(b);
                out
            }
        };
        h = h + f;
    }
    let h = rms_norm(h, &p[layout.final_norm]);
    let mut logits = matmul(h, p[layout.head].clone(), precision);
    if let Some(cap) = m.softcap {
        logits = logits.div_scalar(cap).tanh().mul_scalar(cap);
    }
    let target_logp = target_logp(logits.clone(), &input.targets, input.y.clone());
    let ce = target_logp.clone().mean().neg();
    Output { ce, balance, logits, target_logp }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::RunConfig;

    #[test]
    fn groups_split_as_specified() {
        let mut m = RunConfig::defaults().model;
        m.d_model = 8;
        m.layers = 2;
        m.heads = 2;
        m.d_ff = 16;
        m.experts = 3;
        m.top_k = 2;
        let layout = Layout::new(&m, 256);
        let of = |name: &str| layout.specs.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name}")).group;
        assert_eq!(of("embedding"), Group::Embedding);
        assert_eq!(of("lm_head"), Group::Unembedding);
        assert_eq!(of("final_norm"), Group::Scalar);
        for l in 0..2 {
            assert_eq!(of(&format!("blocks.{l}.attn_norm")), Group::Scalar);
            assert_eq!(of(&format!("blocks.{l}.mlp_norm")), Group::Scalar);
            for w in ["wq", "wk", "wv", "wo"] {
                assert_eq!(of(&format!("blocks.{l}.attn.{w}")), Group::Matrix);
            }
            assert_eq!(of(&format!("blocks.{l}.moe.router")), Group::Matrix);
            for e in 0..3 {
                assert_eq!(of(&format!("blocks.{l}.moe.experts.{e}.w1")), Group::Matrix);
                assert_eq!(of(&format!("blocks.{l}.moe.experts.{e}.w2")), Group::Matrix);
            }
        }
        // 1 embedding + 1 head + 1 final norm + per layer (2 norms + 4 attn + router + 6 expert).
        assert_eq!(layout.specs.len(), 3 + 2 * 13);
        let per_layer_dense = 2 * 8 + 4 * 64 + 8 * 3;
        let expert = 2 * 8 * 16;
        let total = 2 * 256 * 8 + 8 + 2 * (per_layer_dense + 3 * expert);
        let active = total - 2 * expert;
        assert_eq!(layout.counts(&m), ParamCounts { total: total as u64, active: active as u64 });
    }
}
