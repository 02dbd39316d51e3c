//! Muon: Nesterov momentum, Newton–Schulz orthogonalization (Keller Jordan's quintic or the
//! per-step Polar Express coefficients), shape scaling and decoupled (cautious) decay.
//!
//! A bucket's matrices (same shape; one matrix per bucket on the CPU) are stacked and
//! orthogonalized as one batch. Weights are stored `[d_in, d_out]`; the shape scale
//! `max(1, rows/cols)^0.5` is taken in PyTorch's `[out, in]` orientation, i.e.
//! `max(1, d_out/d_in)^0.5`. Newton–Schulz itself commutes with transposition.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::spec::NsCoeffs;

/// Keller Jordan's quintic `(a, b, c)`.
pub const QUINTIC: (f64, f64, f64) = (3.4445, -4.7750, 2.0315);
/// Polar Express, one triple per iteration (the last repeats beyond five).
pub const POLAR_EXPRESS: [(f64, f64, f64); 5] = [
    (8.156_554_524_902_461, -22.483_292_925_577_95, 15.878_769_915_207_462),
    (4.042_929_935_166_739, -2.808_917_465_908_714, 0.500_017_845_105_131_6),
    (3.891_667_802_292_660_7, -2.772_484_153_217_685, 0.506_064_817_850_339_3),
    (3.285_753_657_755_655, -2.368_129_493_342_537_6, 0.464_490_242_330_031_06),
    (2.346_541_325_859_637_7, -1.709_782_838_268_708_1, 0.423_235_511_693_053_23),
];

/// Approximately orthogonalizes each matrix of `g: [n, r, c]` (pushes its singular values
/// towards 1, keeping the singular vectors).
pub fn orthogonalize<B: Backend>(g: Tensor<B, 3>, steps: usize, coeffs: NsCoeffs) -> Tensor<B, 3> {
    let [_, r, c] = g.dims();
    let norm = (g.clone() * g.clone()).sum_dim(2).sum_dim(1).sqrt(); // [n, 1, 1]
    let norm = match coeffs {
        NsCoeffs::Quintic => norm.add_scalar(1e-7),
        NsCoeffs::PolarExpress => norm.mul_scalar(1.02).add_scalar(1e-6),
    };
    let mut x = g / norm;
    // A tall matrix is orthogonalized through its (smaller) `XᵀX` Gram matrix, which equals
    // transposing, iterating and transposing back, without materializing a transpose.
    let tall = r > c;
    for i in 0..steps {
        let (a, b, cc) = match coeffs {
            NsCoeffs::Quintic => QUINTIC,
            NsCoeffs::PolarExpress => POLAR_EXPRESS[i.min(POLAR_EXPRESS.len() - 1)],
        };
        let gram = if tall {
            x.clone().swap_dims(1, 2).matmul(x.clone())
        } else {
            x.clone().matmul(x.clone().swap_dims(1, 2))
        };
        let poly = gram.clone().mul_scalar(b) + gram.clone().matmul(gram).mul_scalar(cc);
        x = if tall { x.clone().mul_scalar(a) + x.matmul(poly) } else { x.clone().mul_scalar(a) + poly.matmul(x) };
    }
    x
}

/// `max(1, d_out/d_in)^0.5` for a weight stored `[d_in, d_out]`.
pub fn shape_scale(shape: [usize; 2]) -> f64 {
    (shape[1] as f64 / shape[0] as f64).max(1.0).sqrt()
}

/// Muon's state for a stack of same-shaped matrices.
pub struct MuonBucket<B: Backend> {
    /// Parameter indices, in stacking order.
    pub members: Vec<usize>,
    pub shape: [usize; 2],
    /// Momentum buffers `[n, r, c]`.
    pub buf: Tensor<B, 3>,
}

/// Settings of one Muon update.
#[derive(Clone, Copy, Debug)]
pub struct MuonHyper {
    pub lr: f64,
    pub wd: f64,
    pub cautious: bool,
    pub momentum: f64,
    pub ns_steps: usize,
    pub coeffs: NsCoeffs,
}

/// One Muon step for a bucket: `p` and `g` are the stacked parameters and gradients
/// `[n, r, c]`; returns the new stacked parameters.
pub fn muon_step<B: Backend>(
    p: Tensor<B, 3>,
    g: Tensor<B, 3>,
    bucket: &mut MuonBucket<B>,
    h: &MuonHyper,
) -> Tensor<B, 3> {
    let m = h.momentum;
    bucket.buf = bucket.buf.clone().mul_scalar(m) + g.clone().mul_scalar(1.0 - m);
    let u = g.mul_scalar(1.0 - m) + bucket.buf.clone().mul_scalar(m);
    let x = orthogonalize(u, h.ns_steps, h.coeffs).mul_scalar(shape_scale(bucket.shape));
    let mut out = p.clone() - x.clone().mul_scalar(h.lr);
    if h.wd != 0.0 {
        let d = p.clone().mul_scalar(h.lr * h.wd);
        let d = if h.cautious { d * (x * p).greater_equal_elem(0.0).float() } else { d };
        out = out - d;
    }
    out
}
