//! AdamW with PyTorch semantics (bias-corrected moments, decoupled decay applied to the
//! weights before the update), optionally cautious; and SGD with momentum.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// AdamW's moments of one parameter.
pub struct AdamState<B: Backend> {
    pub m: Tensor<B, 2>,
    pub v: Tensor<B, 2>,
}

/// Settings of one AdamW update.
#[derive(Clone, Copy, Debug)]
pub struct AdamHyper {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub wd: f64,
    pub cautious: bool,
    /// 1-based step count (for bias correction).
    pub t: u64,
}

/// Decoupled decay `p·lr·wd`, where `cautious` keeps it only where `update` and `p` agree in sign.
pub fn decay<B: Backend>(
    p: &Tensor<B, 2>,
    update: &Tensor<B, 2>,
    lr: f64,
    wd: f64,
    cautious: bool,
) -> Option<Tensor<B, 2>> {
    if wd == 0.0 {
        return None;
    }
    let d = p.clone().mul_scalar(lr * wd);
    Some(if cautious { d * (update.clone() * p.clone()).greater_equal_elem(0.0).float() } else { d })
}

/// One AdamW step: returns the new parameter and updates the moments.
pub fn adamw_step<B: Backend>(p: Tensor<B, 2>, g: Tensor<B, 2>, s: &mut AdamState<B>, h: &AdamHyper) -> Tensor<B, 2> {
    s.m = s.m.clone().mul_scalar(h.beta1) + g.clone().mul_scalar(1.0 - h.beta1);
    s.v = s.v.clone().mul_scalar(h.beta2) + (g.clone() * g).mul_scalar(1.0 - h.beta2);
    let t = i32::try_from(h.t).unwrap_or(i32::MAX);
    let bc1 = 1.0 - h.beta1.powi(t);
    let bc2 = 1.0 - h.beta2.powi(t);
    let denom = s.v.clone().sqrt().div_scalar(bc2.sqrt()).add_scalar(h.eps);
    let update = s.m.clone().div_scalar(bc1) / denom; // the direction subtracted
    let decayed = decay(&p, &update, h.lr, h.wd, h.cautious);
    let mut p = p - update.mul_scalar(h.lr);
    if let Some(d) = decayed {
        p = p - d;
    }
    p
}

/// One SGD step with (PyTorch-style) momentum `buf = μ·buf + g`, plus decoupled decay.
pub fn sgd_step<B: Backend>(
    p: Tensor<B, 2>,
    g: Tensor<B, 2>,
    buf: &mut Tensor<B, 2>,
    momentum: f64,
    lr: f64,
    wd: f64,
    cautious: bool,
) -> Tensor<B, 2> {
    *buf = buf.clone().mul_scalar(momentum) + g;
    let decayed = decay(&p, buf, lr, wd, cautious);
    let mut p = p - buf.clone().mul_scalar(lr);
    if let Some(d) = decayed {
        p = p - d;
    }
    p
}
