//! Fused CPU kernels for the exp-heavy and many-op layers (causal softmax, SiLU, cross-entropy,
//! RMSNorm), with their own backward passes, used when the backend is Flex (under autodiff or not).
//!
//! burn-flex computes `exp` one scalar libm call at a time, and burn's autodiff recomputes it
//! in the backward of softmax and sigmoid; these three ops were about a third of a step on the
//! quickstart model. Here each is one pass over host memory with a branch-free, vectorizable
//! `exp` (Cephes-style range reduction and polynomial, within 2 ulp), and the backward reuses
//! the forward's outputs. Plain Rust arithmetic in a fixed order: deterministic. Other
//! backends (CUDA) take burn's own ops.

#![allow(
    clippy::inline_always,
    clippy::many_single_char_names,
    reason = "numeric kernels: `inline(always)` keeps them inside the AVX2 dispatch; math names"
)]

use std::any::Any;
use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, binary, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::activation::{log_softmax, silu as burn_silu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData, TensorPrimitive};

pub(super) type Ad = Autodiff<Flex>;

/// Moves `t` into type `U` when it is one (a checked, allocation-cheap downcast).
pub(super) fn cast<T: 'static, U: 'static>(t: T) -> Result<U, T> {
    let boxed: Box<dyn Any> = Box::new(t);
    match boxed.downcast::<U>() {
        Ok(u) => Ok(*u),
        Err(b) => Err(*b.downcast::<T>().expect("a box holds the type it was made from")),
    }
}

/// `t` as the CPU backend's type `U`, for a fused kernel: `Err(t)` on other backends and on the
/// CPU when it takes an accelerator's path (`--device cpu-generic`), which uses burn's ops.
pub(super) fn fused<T: 'static, U: 'static>(t: T) -> Result<U, T> {
    if super::accelerator_path() { Err(t) } else { cast(t) }
}

/// `exp(x)` for f32, vectorizable: `2^n · p(r)` with `x = n·ln2 + r`, `|r| ≤ ln2/2`.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    let x = x.clamp(-87.3, 88.7);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let p = p * r * r + r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// One host kernel call, with borrowed inputs; see [`run`].
enum Job<'a> {
    Softmax { x: &'a [f32], t: usize },
    SoftmaxBack { y: &'a [f32], dy: &'a [f32], t: usize },
    RmsFwd { x: &'a [f32], g: &'a [f32], eps: f32 },
    RmsBack { x: &'a [f32], g: &'a [f32], dy: &'a [f32], inv: &'a [f32] },
    Silu { x: &'a [f32] },
    SiluBack { x: &'a [f32], s: &'a [f32], dy: &'a [f32] },
    Logp { logits: &'a [f32], targets: &'a [u32], v: usize },
    LogpBack { probs: &'a [f32], dy: &'a [f32], targets: &'a [u32], v: usize },
}

impl pulp::WithSimd for Job<'_> {
    type Output = (Vec<f32>, Vec<f32>);

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> Self::Output {
        match self {
            Job::Softmax { x, t } => (causal_softmax_host(x, t), Vec::new()),
            Job::SoftmaxBack { y, dy, t } => (softmax_backward_host(y, dy, t), Vec::new()),
            Job::RmsFwd { x, g, eps } => {
                let inv = rms_inv(x, g.len(), eps);
                (rms_forward(x, g, &inv), inv)
            }
            Job::RmsBack { x, g, dy, inv } => rms_backward(x, g, dy, inv),
            Job::Silu { x } => silu_host(x),
            Job::SiluBack { x, s, dy } => (silu_backward(x, s, dy), Vec::new()),
            Job::Logp { logits, targets, v } => target_logp_host(logits, targets, v),
            Job::LogpBack { probs, dy, targets, v } => (target_logp_backward(probs, dy, targets, v), Vec::new()),
        }
    }
}

/// Runs a kernel compiled for AVX2 + FMA when the CPU has them (x86-64), plainly otherwise.
/// Rust never fuses or reorders float arithmetic on its own, so both give the same bits.
fn run(job: Job<'_>) -> (Vec<f32>, Vec<f32>) {
    #[cfg(target_arch = "x86_64")]
    if let Some(v3) = pulp::x86::V3::try_new() {
        return pulp::Simd::vectorize(v3, job);
    }
    pulp::WithSimd::with_simd(job, pulp::Scalar::new())
}

#[derive(Clone)]
struct Saved(FlexTensor);

impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Saved")
    }
}

/// The elements of `t` in row-major order, borrowed when it is contiguous.
pub(super) fn host(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(t.to_contiguous().as_slice::<f32>().map(<[f32]>::to_vec).unwrap_or_default()),
    }
}

pub(super) fn device(v: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

pub(super) fn float<B: Backend, const D: usize>(t: Tensor<B, D>) -> B::FloatTensorPrimitive {
    t.into_primitive().tensor()
}

fn shape_of(t: &FlexTensor) -> Vec<usize> {
    use burn::tensor::TensorMetadata;
    t.shape().to_vec()
}

// ---------------------------------------------------------------------------------------------
// Causal softmax over the last dim of `[.., T, T]` scores (row i sees columns 0..=i).

/// Sum in eight interleaved partial sums, combined in a fixed order: vectorizable, and the same
/// bits whatever the instruction set.
#[inline(always)]
fn sum8(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    let mut total = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for v in rest {
        total += v;
    }
    total
}

/// `Σ a⊙b` with the same fixed grouping as [`sum8`].
#[inline(always)]
fn dot8(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for ((s, p), q) in acc.iter_mut().zip(x).zip(y) {
            *s += p * q;
        }
    }
    let mut total = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (p, q) in ra.iter().zip(rb) {
        total += p * q;
    }
    total
}

#[inline(always)]
fn max8(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = if v > *a { v } else { *a };
        }
    }
    acc.iter().chain(rest).fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

/// `out = softmax(row)` for one row.
#[inline(always)]
fn softmax_row(row: &[f32], out: &mut [f32]) {
    let max = max8(row);
    for (o, &v) in out.iter_mut().zip(row) {
        *o = exp(v - max);
    }
    let inv = 1.0 / sum8(out);
    for o in out.iter_mut() {
        *o *= inv;
    }
}

#[inline(always)]
fn causal_softmax_host(x: &[f32], t: usize) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    for (r, (row, out)) in x.chunks_exact(t).zip(y.chunks_exact_mut(t)).enumerate() {
        let len = r % t + 1;
        softmax_row(&row[..len], &mut out[..len]);
    }
    y
}

/// `dx = y ⊙ (dy − Σ dy⊙y)` per row.
#[inline(always)]
fn softmax_backward_host(y: &[f32], dy: &[f32], t: usize) -> Vec<f32> {
    let mut dx = vec![0.0f32; y.len()];
    for ((yr, gr), out) in y.chunks_exact(t).zip(dy.chunks_exact(t)).zip(dx.chunks_exact_mut(t)) {
        let dot = dot8(yr, gr);
        for ((o, &a), &b) in out.iter_mut().zip(yr).zip(gr) {
            *o = a * (b - dot);
        }
    }
    dx
}

#[derive(Debug)]
struct CausalSoftmax;

impl Backward<Flex, 1> for CausalSoftmax {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let y = ops.state.0;
        unary::<Flex, _>(ops.parents, ops.node, grads, |g| {
            let shape = shape_of(&y);
            let t = shape[shape.len() - 1];
            device(run(Job::SoftmaxBack { y: &host(&y), dy: &host(&g), t }).0, shape)
        });
    }
}

/// Softmax over the last dim of `[B, H, T, T]` attention scores with a causal mask.
pub fn causal_softmax<B: Backend>(scores: Tensor<B, 4>) -> Tensor<B, 4> {
    let [_, _, t, _] = scores.dims();
    let scores = match fused::<_, Tensor<Ad, 4>>(scores) {
        Ok(x) => {
            let x = float(x);
            let y = device(run(Job::Softmax { x: &host(&x.primitive), t }).0, shape_of(&x.primitive));
            let out = match CausalSoftmax.prepare::<NoCheckpointing>([x.node.clone()]).compute_bound().stateful() {
                OpsKind::Tracked(prep) => prep.finish(Saved(y.clone()), y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            };
            return cast(Tensor::<Ad, 4>::from_primitive(TensorPrimitive::Float(out))).expect("B is Autodiff<Flex>");
        }
        Err(x) => x,
    };
    let scores = match fused::<_, Tensor<Flex, 4>>(scores) {
        Ok(x) => {
            let p = float(x);
            let y = device(run(Job::Softmax { x: &host(&p), t }).0, shape_of(&p));
            return cast(Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(y))).expect("B is Flex");
        }
        Err(x) => x,
    };
    let mut mask = vec![0f32; t * t];
    for i in 0..t {
        for j in i + 1..t {
            mask[i * t + j] = f32::NEG_INFINITY;
        }
    }
    let mask = Tensor::<B, 2>::from_data(TensorData::new(mask, [t, t]), &scores.device()).unsqueeze::<4>();
    softmax(scores + mask, 3)
}

// ---------------------------------------------------------------------------------------------
// RMSNorm with a gain: `y = x / sqrt(mean(x²) + eps) · g`, rows of `[N, d]`, `g: [1, d]`.

#[inline(always)]
fn rms_inv(x: &[f32], d: usize, eps: f32) -> Vec<f32> {
    x.chunks_exact(d).map(|r| 1.0 / (dot8(r, r) / d as f32 + eps).sqrt()).collect()
}

#[inline(always)]
fn rms_forward(x: &[f32], g: &[f32], inv: &[f32]) -> Vec<f32> {
    let d = g.len();
    let mut y = Vec::with_capacity(x.len());
    for (r, &s) in x.chunks_exact(d).zip(inv) {
        y.extend(r.iter().zip(g).map(|(a, b)| a * s * b));
    }
    y
}

#[inline(always)]
fn rms_backward(x: &[f32], g: &[f32], dy: &[f32], inv: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let d = g.len();
    let mut dx = Vec::with_capacity(x.len());
    let mut dg = vec![0.0f32; d];
    for ((xr, dyr), &s) in x.chunks_exact(d).zip(dy.chunks_exact(d)).zip(inv) {
        let gdy: Vec<f32> = dyr.iter().zip(g).map(|(b, c)| b * c).collect();
        let k = s * s * s * dot8(xr, &gdy) / d as f32;
        dx.extend(xr.iter().zip(&gdy).map(|(a, b)| s * b - a * k));
        for ((o, a), b) in dg.iter_mut().zip(xr).zip(dyr) {
            *o += a * b * s;
        }
    }
    (dx, dg)
}

#[derive(Debug)]
struct RmsNorm;

impl Backward<Flex, 2> for RmsNorm {
    type State = (Saved, Saved, Arc<Vec<f32>>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, g, inv) = ops.state;
        let d = shape_of(&g.0)[1];
        let compute = |dy: &FlexTensor| run(Job::RmsBack { x: &host(&x.0), g: &host(&g.0), dy: &host(dy), inv: &inv });
        let shape_x = shape_of(&x.0);
        let dg_slot = std::cell::Cell::new(None);
        binary::<Flex, _, _>(
            ops.parents,
            ops.node,
            grads,
            |dy| {
                let (dx, dg) = compute(&dy);
                dg_slot.set(Some(dg));
                device(dx, shape_x)
            },
            |dy| device(dg_slot.take().unwrap_or_else(|| compute(&dy).1), vec![1, d]),
        );
    }
}

/// RMSNorm of the rows of `x: [N, d]` with gain `g: [1, d]`.
pub fn rms_norm<B: Backend>(x: Tensor<B, 2>, gain: &Tensor<B, 2>, eps: f64) -> Tensor<B, 2> {
    let pair = fused::<_, (Tensor<Ad, 2>, Tensor<Ad, 2>)>((x, gain.clone()));
    let (x, gain) = match pair {
        Ok((x, g)) => {
            let (x, g) = (float(x), float(g));
            let (y, inv) = run(Job::RmsFwd { x: &host(&x.primitive), g: &host(&g.primitive), eps: eps as f32 });
            let y = device(y, shape_of(&x.primitive));
            let out =
                match RmsNorm.prepare::<NoCheckpointing>([x.node.clone(), g.node.clone()]).compute_bound().stateful() {
                    OpsKind::Tracked(prep) => {
                        prep.finish((Saved(x.primitive.clone()), Saved(g.primitive.clone()), Arc::new(inv)), y)
                    }
                    OpsKind::UnTracked(prep) => prep.finish(y),
                };
            return cast(Tensor::<Ad, 2>::from_primitive(TensorPrimitive::Float(out))).expect("B is Autodiff<Flex>");
        }
        Err(pair) => pair,
    };
    let pair = fused::<_, (Tensor<Flex, 2>, Tensor<Flex, 2>)>((x, gain));
    let (x, gain) = match pair {
        Ok((x, g)) => {
            let (x, g) = (float(x), float(g));
            let y = device(run(Job::RmsFwd { x: &host(&x), g: &host(&g), eps: eps as f32 }).0, shape_of(&x));
            return cast(Tensor::<Flex, 2>::from_primitive(TensorPrimitive::Float(y))).expect("B is Flex");
        }
        Err(pair) => pair,
    };
    let inv = (x.clone() * x.clone()).mean_dim(1).add_scalar(eps).sqrt().recip();
    x * inv * gain
}

// ---------------------------------------------------------------------------------------------
// SiLU.

#[inline(always)]
fn silu_backward(x: &[f32], s: &[f32], dy: &[f32]) -> Vec<f32> {
    x.iter().zip(s).zip(dy).map(|((&x, &s), &g)| g * s * (1.0 + x * (1.0 - s))).collect()
}

#[derive(Debug)]
struct Silu;

impl Backward<Flex, 1> for Silu {
    type State = (Saved, Saved);

    fn backward(self, ops: Ops<(Saved, Saved), 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, s) = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |g| {
            let shape = shape_of(&x.0);
            device(run(Job::SiluBack { x: &host(&x.0), s: &host(&s.0), dy: &host(&g) }).0, shape)
        });
    }
}

#[inline(always)]
fn silu_host(x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let s: Vec<f32> = x.iter().map(|&v| 1.0 / (1.0 + exp(-v))).collect();
    let y = x.iter().zip(&s).map(|(a, b)| a * b).collect();
    (y, s)
}

/// `x · sigmoid(x)`.
pub fn silu<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let x = match fused::<_, Tensor<Ad, 2>>(x) {
        Ok(x) => {
            let x = float(x);
            let shape = shape_of(&x.primitive);
            let (y, s) = run(Job::Silu { x: &host(&x.primitive) });
            let y = device(y, shape.clone());
            let out = match Silu.prepare::<NoCheckpointing>([x.node.clone()]).compute_bound().stateful() {
                OpsKind::Tracked(prep) => prep.finish((Saved(x.primitive.clone()), Saved(device(s, shape))), y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            };
            return cast(Tensor::<Ad, 2>::from_primitive(TensorPrimitive::Float(out))).expect("B is Autodiff<Flex>");
        }
        Err(x) => x,
    };
    let x = match fused::<_, Tensor<Flex, 2>>(x) {
        Ok(x) => {
            let p = float(x);
            let shape = shape_of(&p);
            let y = device(run(Job::Silu { x: &host(&p) }).0, shape);
            return cast(Tensor::<Flex, 2>::from_primitive(TensorPrimitive::Float(y))).expect("B is Flex");
        }
        Err(x) => x,
    };
    burn_silu(x)
}

// ---------------------------------------------------------------------------------------------
// Log-probability of each row's target under a softmax of `[N, V]` logits.

/// `d/dlogits` of `logp_t` is `onehot(t) − softmax`, scaled by the incoming gradient.
#[inline(always)]
fn target_logp_backward(probs: &[f32], dy: &[f32], targets: &[u32], v: usize) -> Vec<f32> {
    let mut d = Vec::with_capacity(probs.len());
    for ((row, &gn), &t) in probs.chunks_exact(v).zip(dy).zip(targets) {
        let start = d.len();
        d.extend(row.iter().map(|p| -p * gn));
        d[start + t as usize] += gn;
    }
    d
}

#[derive(Debug)]
struct TargetLogp;

impl Backward<Flex, 1> for TargetLogp {
    type State = (Saved, Arc<Vec<u32>>);

    fn backward(self, ops: Ops<(Saved, Arc<Vec<u32>>), 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (probs, targets) = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |g| {
            let shape = shape_of(&probs.0);
            let v = shape[1];
            let d = run(Job::LogpBack { probs: &host(&probs.0), dy: &host(&g), targets: &targets, v }).0;
            device(d, shape)
        });
    }
}

/// Returns `(logp of targets [N], softmax probabilities [N, V])`.
#[inline(always)]
fn target_logp_host(logits: &[f32], targets: &[u32], v: usize) -> (Vec<f32>, Vec<f32>) {
    let mut probs = vec![0.0f32; logits.len()];
    let mut logp = Vec::with_capacity(targets.len());
    for ((row, out), &t) in logits.chunks_exact(v).zip(probs.chunks_exact_mut(v)).zip(targets) {
        let max = max8(row);
        for (o, &x) in out.iter_mut().zip(row) {
            *o = exp(x - max);
        }
        let sum = sum8(out);
        let inv = 1.0 / sum;
        for o in out.iter_mut() {
            *o *= inv;
        }
        logp.push(row[t as usize] - max - sum.ln());
    }
    (logp, probs)
}

/// `log softmax(logits)[n, targets[n]]` as `[N, 1]`; `y` is `targets` as a `[N, 1]` tensor
/// (used by the generic path).
pub fn target_logp<B: Backend>(logits: Tensor<B, 2>, targets: &[u32], y: Tensor<B, 2, Int>) -> Tensor<B, 2> {
    let [n, v] = logits.dims();
    let logits = match fused::<_, Tensor<Ad, 2>>(logits) {
        Ok(x) => {
            let x = float(x);
            let (logp, probs) = run(Job::Logp { logits: &host(&x.primitive), targets, v });
            let out = device(logp, vec![n, 1]);
            let out = match TargetLogp.prepare::<NoCheckpointing>([x.node.clone()]).compute_bound().stateful() {
                OpsKind::Tracked(prep) => {
                    prep.finish((Saved(device(probs, vec![n, v])), Arc::new(targets.to_vec())), out)
                }
                OpsKind::UnTracked(prep) => prep.finish(out),
            };
            return cast(Tensor::<Ad, 2>::from_primitive(TensorPrimitive::Float(out))).expect("B is Autodiff<Flex>");
        }
        Err(x) => x,
    };
    let logits = match fused::<_, Tensor<Flex, 2>>(logits) {
        Ok(x) => {
            let (logp, _) = run(Job::Logp { logits: &host(&float(x)), targets, v });
            return cast(Tensor::<Flex, 2>::from_primitive(TensorPrimitive::Float(device(logp, vec![n, 1]))))
                .expect("B is Flex");
        }
        Err(x) => x,
    };
    log_softmax(logits, 1).gather(1, y)
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "exact expectations")]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn fast_exp_is_accurate() {
        let mut worst = 0.0f64;
        for i in -8700..=8800 {
            let x = i as f32 * 0.01;
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 3e-7, "max relative error {worst}");
        assert_eq!(exp(-1000.0), exp(-87.3));
    }

    /// The fused ops agree with burn's own ops, forward and backward.
    #[test]
    fn fused_ops_match_burn_ops() {
        let d = burn::backend::flex::FlexDevice;
        let close = |a: Tensor<Ad, 2>, b: Tensor<Ad, 2>| {
            let (a, b) = (a.into_data().into_vec::<f32>().unwrap(), b.into_data().into_vec::<f32>().unwrap());
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
            }
        };
        let inner = Tensor::<Flex, 2>::random([6, 10], Distribution::Normal(0.0, 2.0), &d);
        let w = Tensor::<Flex, 2>::random([6, 10], Distribution::Normal(0.0, 1.0), &d);
        let run = |fused: bool| {
            let x = Tensor::<Ad, 2>::from_inner(inner.clone()).require_grad();
            let y = if fused { silu(x.clone()) } else { burn_silu(x.clone()) };
            let g = (y.clone() * Tensor::from_inner(w.clone())).sum().backward();
            (y, Tensor::<Ad, 2>::from_inner(x.grad(&g).unwrap()))
        };
        let ((y1, g1), (y2, g2)) = (run(true), run(false));
        close(y1, y2);
        close(g1, g2);

        let gain = Tensor::<Flex, 2>::random([1, 10], Distribution::Normal(1.0, 0.5), &d);
        let run = |fused: bool| {
            let x = Tensor::<Ad, 2>::from_inner(inner.clone()).require_grad();
            let g = Tensor::<Ad, 2>::from_inner(gain.clone()).require_grad();
            let y = if fused {
                rms_norm(x.clone(), &g, 1e-6)
            } else {
                let inv = (x.clone() * x.clone()).mean_dim(1).add_scalar(1e-6).sqrt().recip();
                x.clone() * inv * g.clone()
            };
            let grads = (y.clone() * Tensor::from_inner(w.clone())).sum().backward();
            (
                y,
                Tensor::<Ad, 2>::from_inner(x.grad(&grads).unwrap()),
                Tensor::<Ad, 2>::from_inner(g.grad(&grads).unwrap()),
            )
        };
        let ((y1, dx1, dg1), (y2, dx2, dg2)) = (run(true), run(false));
        close(y1, y2);
        close(dx1, dx2);
        close(dg1, dg2);

        let targets: Vec<u32> = vec![0, 3, 9, 2, 2, 5];
        let yt = Tensor::<Ad, 2, Int>::from_data(
            TensorData::new(targets.iter().map(|&t| i64::from(t)).collect::<Vec<_>>(), [6, 1]),
            &d,
        );
        let run = |fused: bool| {
            let x = Tensor::<Ad, 2>::from_inner(inner.clone()).require_grad();
            let lp = if fused {
                target_logp(x.clone(), &targets, yt.clone())
            } else {
                log_softmax(x.clone(), 1).gather(1, yt.clone())
            };
            let g = (lp.clone() * Tensor::from_inner(w.clone().slice([0..6, 0..1]))).sum().backward();
            (lp, Tensor::<Ad, 2>::from_inner(x.grad(&g).unwrap()))
        };
        let ((l1, g1), (l2, g2)) = (run(true), run(false));
        close(l1, l2);
        close(g1, g2);

        let s = Tensor::<Flex, 4>::random([2, 3, 5, 5], Distribution::Normal(0.0, 2.0), &d);
        let ws = Tensor::<Flex, 4>::random([2, 3, 5, 5], Distribution::Normal(0.0, 1.0), &d);
        let run = |fused: bool| {
            let x = Tensor::<Ad, 4>::from_inner(s.clone()).require_grad();
            let y = if fused {
                causal_softmax(x.clone())
            } else {
                let mut m = vec![0f32; 25];
                for i in 0..5 {
                    for j in i + 1..5 {
                        m[i * 5 + j] = -1e30;
                    }
                }
                softmax(x.clone() + Tensor::<Ad, 2>::from_data(TensorData::new(m, [5, 5]), &d).unsqueeze::<4>(), 3)
            };
            let g = (y.clone() * Tensor::from_inner(ws.clone())).sum().backward();
            (y.reshape([30, 5]), Tensor::<Ad, 4>::from_inner(x.grad(&g).unwrap()).reshape([30, 5]))
        };
        let ((y1, g1), (y2, g2)) = (run(true), run(false));
        close(y1, y2);
        close(g1, g2);
    }
}
