//! Causal multi-head self-attention with rotary position embedding (RoPE, rotate-half form).
//!
//! Weights are `[d_in, d_out]` (`y = x·W`). The constants (RoPE tables, the rotate-half
//! matrix) depend only on the shapes and are built once per run.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::kernels::causal_softmax;
use super::permute::permute;
use super::precision::matmul;
use crate::spec::Precision;

/// Shape-dependent constants of the attention.
#[derive(Clone)]
pub struct AttnConsts<B: Backend> {
    /// `[1, T·d]`: cos and sin of each position's angle, tiled over heads. (Flattened so that
    /// broadcasting is one shared row, which burn-flex runs on its SIMD fast path.)
    pub cos: Tensor<B, 2>,
    pub sin: Tensor<B, 2>,
    /// `[hd, hd]`: `x·R = rotate_half(x) = (−x₂, x₁)`.
    pub rot: Tensor<B, 2>,
}

impl<B: Backend> AttnConsts<B> {
    pub fn new(seq: usize, d_model: usize, heads: usize, base: f64, device: &B::Device) -> Self {
        let hd = d_model / heads;
        let half = hd / 2;
        let (mut cos, mut sin) = (Vec::with_capacity(seq * d_model), Vec::with_capacity(seq * d_model));
        for t in 0..seq {
            for _ in 0..heads {
                for i in 0..hd {
                    let freq = base.powf(-((i % half) as f64) * 2.0 / hd as f64);
                    let angle = t as f64 * freq;
                    cos.push(angle.cos() as f32);
                    sin.push(angle.sin() as f32);
                }
            }
        }
        let mut rot = vec![0f32; hd * hd];
        for i in 0..half {
            rot[(i + half) * hd + i] = -1.0; // out[i] = −x[i + half]
            rot[i * hd + i + half] = 1.0; // out[i + half] = x[i]
        }
        AttnConsts {
            cos: Tensor::from_data(TensorData::new(cos, [1, seq * d_model]), device),
            sin: Tensor::from_data(TensorData::new(sin, [1, seq * d_model]), device),
            rot: Tensor::from_data(TensorData::new(rot, [hd, hd]), device),
        }
    }
}

/// Applies RoPE to `x: [B·T, d]`, returning `[B, T, d]`.
fn rope<B: Backend>(x: Tensor<B, 2>, c: &AttnConsts<B>, batch: usize, seq: usize) -> Tensor<B, 3> {
    let [n, d] = x.dims();
    let hd = c.rot.dims()[0];
    let rotated = x.clone().reshape([n * d / hd, hd]).matmul(c.rot.clone()).reshape([batch, seq * d]);
    (x.reshape([batch, seq * d]) * c.cos.clone() + rotated * c.sin.clone()).reshape([batch, seq, d])
}

/// Causal attention of `h: [B·T, d]` with projections `wq, wk, wv, wo: [d, d]`; returns
/// `[B·T, d]` (after the output projection). Projections and both attention matmuls run in
/// `precision`; RoPE (an exact rotation) and the softmax in f32.
#[allow(clippy::too_many_arguments)]
pub fn attention<B: Backend>(
    h: Tensor<B, 2>,
    wq: &Tensor<B, 2>,
    wk: &Tensor<B, 2>,
    wv: &Tensor<B, 2>,
    wo: &Tensor<B, 2>,
    c: &AttnConsts<B>,
    batch: usize,
    heads: usize,
    precision: Precision,
) -> Tensor<B, 2> {
    let [n, d] = h.dims();
    let seq = n / batch;
    let hd = d / heads;
    let scale = 1.0 / (hd as f64).sqrt();
    let q = matmul(h.clone(), wq.clone(), precision).mul_scalar(scale);
    let k = matmul(h.clone(), wk.clone(), precision);
    let v = matmul(h, wv.clone(), precision);
    let heads_of = |x: Tensor<B, 3>| x.reshape([batch, seq, heads, hd]);
    let q = permute(heads_of(rope(q, c, batch, seq)), [0, 2, 1, 3]); // [B, H, T, hd]
    let kt = permute(heads_of(rope(k, c, batch, seq)), [0, 2, 3, 1]); // [B, H, hd, T]
    let v = permute(heads_of(v.reshape([batch, seq, d])), [0, 2, 1, 3]);
    let y = matmul(causal_softmax(matmul(q, kt, precision)), v, precision); // [B, H, T, hd]
    matmul(permute(y, [0, 2, 1, 3]).reshape([n, d]), wo.clone(), precision)
}
