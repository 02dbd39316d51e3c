//! Correctness tests of the trainer against formulas computed independently here: optimizer
//! steps, Newton–Schulz, MoE dispatch and balance loss; and whole-run behaviour: overfitting,
//! determinism, divergence, cancellation, bad data.

#![allow(
    clippy::float_cmp,
    clippy::many_single_char_names,
    clippy::needless_range_loop,
    clippy::cast_lossless,
    clippy::manual_range_contains,
    reason = "tests compare exact values and spell out textbook formulas"
)]

use burn::backend::Flex;
use burn::backend::flex::FlexDevice;
use burn::tensor::{Tensor, TensorData};

use super::optim::adamw::{AdamHyper, AdamState, adamw_step};
use super::optim::muon::{MuonBucket, MuonHyper, muon_step, orthogonalize, shape_scale};
use super::*;
use crate::spec::config::key;
use crate::spec::{CancelFlag, NsCoeffs, Precision, Progress, RunContext, Status, Value, Values};

type B = Flex;

fn t2(v: &[f64], shape: [usize; 2]) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), shape), &FlexDevice)
}

fn host<const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f32>().into_vec::<f32>().unwrap().into_iter().map(f64::from).collect()
}

fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "element {i}: {x} vs {y}\n{a:?}\n{b:?}");
    }
}

#[test]
fn adamw_matches_pytorch_semantics_over_two_steps() {
    let p0 = [1.0, -2.0, 0.5, 3.0];
    let g = [[0.1, -0.2, 0.3, 0.0], [-0.05, 0.1, 0.2, 0.4]];
    let (lr, b1, b2, eps, wd): (f64, f64, f64, f64, f64) = (0.01, 0.9, 0.99, 1e-8, 0.1);
    // Reference: PyTorch's AdamW, written out per element.
    let mut p = p0;
    let (mut m, mut v) = ([0.0; 4], [0.0; 4]);
    for (step, g) in g.iter().enumerate() {
        let t = (step + 1) as i32;
        for i in 0..4 {
            p[i] *= 1.0 - lr * wd;
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            let denom = (v[i] / (1.0 - b2.powi(t))).sqrt() + eps;
            p[i] -= lr / (1.0 - b1.powi(t)) * m[i] / denom;
        }
    }
    let mut state = AdamState { m: Tensor::zeros([2, 2], &FlexDevice), v: Tensor::zeros([2, 2], &FlexDevice) };
    let mut x = t2(&p0, [2, 2]);
    for (step, g) in g.iter().enumerate() {
        let h = AdamHyper { lr, beta1: b1, beta2: b2, eps, wd, cautious: false, t: step as u64 + 1 };
        x = adamw_step(x, t2(g, [2, 2]), &mut state, &h);
    }
    close(&host(x), &p, 1e-6);
}

#[test]
fn cautious_decay_only_where_update_and_weight_agree() {
    let p0 = [1.0, -1.0, 1.0, -1.0];
    let g = [0.5, 0.5, -0.5, -0.5];
    let mut state = AdamState { m: Tensor::zeros([1, 4], &FlexDevice), v: Tensor::zeros([1, 4], &FlexDevice) };
    let h = AdamHyper { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-12, wd: 0.5, cautious: true, t: 1 };
    let out = host(adamw_step(t2(&p0, [1, 4]), t2(&g, [1, 4]), &mut state, &h));
    // First step: update = sign(g). Decay 0.1·0.5·p only where sign(g) == sign(p): elements 0, 3.
    close(&out, &[1.0 - 0.1 - 0.05, -1.0 - 0.1, 1.0 + 0.1, -1.0 + 0.1 + 0.05], 1e-6);
}

/// Eigenvalues of a small symmetric matrix by cyclic Jacobi rotations.
fn jacobi_eigenvalues(a: Vec<Vec<f64>>) -> Vec<f64> {
    jacobi_eigen(a).0
}

/// Eigenvalues and eigenvectors (the columns of the second result) of a small symmetric matrix
/// by cyclic Jacobi rotations: `A = V·diag(λ)·Vᵀ`.
fn jacobi_eigen(mut a: Vec<Vec<f64>>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = a.len();
    let mut v: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect()).collect();
    for _ in 0..100 {
        for p in 0..n {
            for q in p + 1..n {
                if a[p][q].abs() < 1e-15 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k][p], a[k][q]);
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p][k], a[q][k]);
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for row in &mut v {
                    let (vkp, vkq) = (row[p], row[q]);
                    row[p] = c * vkp - s * vkq;
                    row[q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i][i]).collect(), v)
}

/// `a·b` of row-major matrices, `a` being `n × k`.
fn matmul(a: &[f64], b: &[f64], n: usize, k: usize, m: usize) -> Vec<f64> {
    (0..n * m).map(|ij| (0..k).map(|l| a[(ij / m) * k + l] * b[l * m + ij % m]).sum()).collect()
}

fn transpose(a: &[f64], r: usize, c: usize) -> Vec<f64> {
    (0..r * c).map(|ij| a[(ij % r) * c + ij / r]).collect()
}

/// The polar factor `U·Vᵀ` of a full-rank `r × c` row-major matrix `X = U·Σ·Vᵀ`, computed in
/// f64 without Newton–Schulz: `(X·Xᵀ)^{-1/2}·X` (wide) or `X·(Xᵀ·X)^{-1/2}` (tall), the inverse
/// square root from a Jacobi eigendecomposition.
fn polar_factor(x: &[f64], r: usize, c: usize) -> Vec<f64> {
    let wide = r <= c;
    let n = r.min(c);
    let xt = transpose(x, r, c);
    let gram = if wide { matmul(x, &xt, r, c, r) } else { matmul(&xt, x, c, r, c) };
    let (lambda, v) = jacobi_eigen((0..n).map(|i| gram[i * n..(i + 1) * n].to_vec()).collect());
    let inv_sqrt: Vec<f64> =
        (0..n * n).map(|ij| (0..n).map(|k| v[ij / n][k] * v[ij % n][k] / lambda[k].sqrt()).sum()).collect();
    if wide { matmul(&inv_sqrt, x, r, r, c) } else { matmul(x, &inv_sqrt, r, c, c) }
}

/// Keller Jordan's quintic Newton–Schulz written out in f64 from its definition: `X₀ = G/‖G‖_F`,
/// then `A = X·Xᵀ`, `X ← a·X + (b·A + c·A²)·X`, in whichever orientation `G` comes.
fn quintic_reference(g: &[f64], r: usize, c: usize, steps: usize) -> Vec<f64> {
    let (a, b, cc) = (3.4445, -4.7750, 2.0315);
    let norm = g.iter().map(|x| x * x).sum::<f64>().sqrt() + 1e-7;
    let mut x: Vec<f64> = g.iter().map(|v| v / norm).collect();
    for _ in 0..steps {
        let gram = matmul(&x, &transpose(&x, r, c), r, c, r);
        let gram2 = matmul(&gram, &gram, r, r, r);
        let poly: Vec<f64> = gram.iter().zip(&gram2).map(|(g1, g2)| b * g1 + cc * g2).collect();
        let px = matmul(&poly, &x, r, r, c);
        x = x.iter().zip(&px).map(|(x, p)| a * x + p).collect();
    }
    x
}

/// Singular values of an `r × c` row-major matrix (`r ≤ c`), via eigenvalues of `X·Xᵀ`.
fn singular_values(x: &[f64], r: usize, c: usize) -> Vec<f64> {
    let gram: Vec<Vec<f64>> =
        (0..r).map(|i| (0..r).map(|j| (0..c).map(|k| x[i * c + k] * x[j * c + k]).sum()).collect()).collect();
    let mut s: Vec<f64> = jacobi_eigenvalues(gram).into_iter().map(|e| e.max(0.0).sqrt()).collect();
    s.sort_by(f64::total_cmp);
    s
}

#[test]
fn newton_schulz_pushes_singular_values_towards_one() {
    // A fixed 3×5 matrix with singular values spread over two orders of magnitude.
    let g = [2.0, 0.1, -0.3, 0.7, 0.0, 0.2, 0.05, 0.1, -0.1, 0.3, -0.01, 0.04, 0.02, 0.03, -0.02];
    let sv_in = singular_values(&g, 3, 5);
    assert!(sv_in[2] / sv_in[0] > 20.0, "{sv_in:?}");
    let input = Tensor::<B, 3>::from_data(
        TensorData::new(g.iter().map(|&x| x as f32).collect::<Vec<_>>(), [1, 3, 5]),
        &FlexDevice,
    );
    let quintic = host(orthogonalize(input.clone(), 5, NsCoeffs::Quintic));
    let sv = singular_values(&quintic, 3, 5);
    // Keller Jordan's quintic lands in roughly (0.68, 1.13) rather than at exactly 1.
    assert!(sv.iter().all(|&s| (0.6..1.25).contains(&s)), "quintic: {sv:?}");
    let polar = host(orthogonalize(input.clone(), 5, NsCoeffs::PolarExpress));
    let sv = singular_values(&polar, 3, 5);
    assert!(sv.iter().all(|&s| (0.85..1.15).contains(&s)), "polar express: {sv:?}");
    // The tall orientation gives the transpose of the wide one.
    let tall = input.clone().swap_dims(1, 2);
    let back = host(orthogonalize(tall, 5, NsCoeffs::Quintic).swap_dims(1, 2));
    close(&back, &quintic, 1e-5);
}

/// Newton–Schulz against the polar factor `U·Vᵀ` computed another way (an f64 eigen-
/// decomposition of the Gram matrix, in this test): writing the output as `O = M·P` with
/// `P = U·Vᵀ`, `M = O·Pᵀ` must be symmetric (`O` keeps the input's singular vectors) with
/// eigenvalues (`O`'s singular values) where the iteration puts them. Five quintic steps do not
/// converge: Keller Jordan's coefficients trade accuracy for speed and leave every singular
/// value of a well-conditioned input in about [0.68, 1.13], so the bound is [0.65, 1.2]; Polar
/// Express's per-step coefficients land within [0.85, 1.15] (measured: 0.69–1.13 and
/// 0.86–1.14). The symmetry tolerance (1e-5; measured 5e-7) is f32 rounding over five
/// iterations. Inputs: random Gaussian matrices, wide and tall (condition numbers about 4 and
/// 18), and a 3×5 one whose singular values span a factor 20.
#[test]
fn newton_schulz_matches_an_independently_computed_polar_factor() {
    let mut rng = rng::Rng::new(11, rng::Stream::Init);
    let mut cases: Vec<(Vec<f64>, usize, usize)> = [(8usize, 24usize), (24, 8), (16, 16 + 4)]
        .iter()
        .map(|&(r, c)| ((0..r * c).map(|_| rng.normal()).collect(), r, c))
        .collect();
    cases.push((vec![2.0, 0.1, -0.3, 0.7, 0.0, 0.2, 0.05, 0.1, -0.1, 0.3, -0.01, 0.04, 0.02, 0.03, -0.02], 3, 5));
    for (g, r, c) in &cases {
        let (r, c) = (*r, *c);
        let p = polar_factor(g, r, c);
        // The reference itself: orthonormal rows (wide) or columns (tall).
        let n = r.min(c);
        let ppt =
            if r <= c { matmul(&p, &transpose(&p, r, c), r, c, r) } else { matmul(&transpose(&p, r, c), &p, c, r, c) };
        close(&ppt, &(0..n * n).map(|ij| if ij / n == ij % n { 1.0 } else { 0.0 }).collect::<Vec<_>>(), 1e-10);
        let input = Tensor::<B, 3>::from_data(
            TensorData::new(g.iter().map(|&x| x as f32).collect::<Vec<_>>(), [1, r, c]),
            &FlexDevice,
        );
        for (coeffs, lo, hi) in [(NsCoeffs::Quintic, 0.65, 1.2), (NsCoeffs::PolarExpress, 0.85, 1.15)] {
            let o = host(orthogonalize(input.clone(), 5, coeffs));
            // M = O·Pᵀ (wide, r × r) or Pᵀ·O (tall, c × c): U·f(Σ)·Uᵀ or V·f(Σ)·Vᵀ.
            let m = if r <= c {
                matmul(&o, &transpose(&p, r, c), r, c, r)
            } else {
                matmul(&transpose(&p, r, c), &o, c, r, c)
            };
            for i in 0..n {
                for j in 0..n {
                    assert!(
                        (m[i * n + j] - m[j * n + i]).abs() < 1e-5,
                        "{coeffs:?} {r}×{c}: O·Pᵀ is not symmetric at ({i}, {j}): {} vs {}",
                        m[i * n + j],
                        m[j * n + i]
                    );
                }
            }
            let (sv, _) = jacobi_eigen((0..n).map(|i| m[i * n..(i + 1) * n].to_vec()).collect());
            assert!(
                sv.iter().all(|&s| (lo..=hi).contains(&s)),
                "{coeffs:?} {r}×{c}: singular values {sv:?} outside [{lo}, {hi}]"
            );
            // And O is M·P: nothing of O lies outside the input's row (column) space.
            let back = if r <= c { matmul(&m, &p, r, r, c) } else { matmul(&p, &m, r, c, c) };
            close(&back, &o, 1e-4);
        }
    }
}

#[test]
fn muon_step_scales_by_shape_and_uses_nesterov_momentum() {
    assert_eq!(shape_scale([2, 6]), 3f64.sqrt()); // stored [d_in, d_out]: PyTorch [6, 2] is tall
    assert_eq!(shape_scale([6, 2]), 1.0);
    let g: Vec<f64> = (0..12).map(|i| ((i * 7 % 5) as f64 - 2.0) * 0.1 + 0.01 * i as f64).collect();
    let p: Vec<f64> = (0..12).map(|i| 0.05 * i as f64 - 0.3).collect();
    let (lr, m) = (0.02, 0.95);
    for shape in [[2usize, 6usize], [6, 2]] {
        let [r, c] = shape;
        let to3 = |v: &[f64]| {
            Tensor::<B, 3>::from_data(
                TensorData::new(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), [1, r, c]),
                &FlexDevice,
            )
        };
        let mut bucket = MuonBucket { members: vec![0], shape, buf: Tensor::zeros([1, r, c], &FlexDevice) };
        let h = MuonHyper { lr, wd: 0.0, cautious: false, momentum: m, ns_steps: 5, coeffs: NsCoeffs::Quintic };
        let out = host(muon_step(to3(&p), to3(&g), &mut bucket, &h));
        // First step: buf = (1−m)·g, update direction (1−m)·g + m·buf = (1−m)(1+m)·g.
        let u: Vec<f64> = g.iter().map(|x| (1.0 - m) * (1.0 + m) * x).collect();
        close(&host(bucket.buf.clone()), &g.iter().map(|x| (1.0 - m) * x).collect::<Vec<_>>(), 1e-6);
        // The orthogonalized direction from the quintic's definition, in f64 (not lrx's code).
        let o = quintic_reference(&u, r, c, 5);
        let scale = if shape == [2, 6] { 3f64.sqrt() } else { 1.0 };
        let want: Vec<f64> = p.iter().zip(&o).map(|(p, o)| p - lr * scale * o).collect();
        close(&out, &want, 1e-5);
    }
}

/// A `[N, E]` router input crafted so the routing is known by hand.
#[test]
fn balance_loss_matches_hand_computed_routing() {
    let h = t2(&[1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0], [4, 2]);
    let router = t2(&[2.0, 0.0, 0.0, 1.0], [2, 2]); // logits: [2,0], [0,1], [2,0], [2,0]
    let zeros = || t2(&[0.0; 4], [2, 2]);
    let (_, part) = moe::moe(h, &router, &[zeros(), zeros()], &[zeros(), zeros()], 1, None, true, Precision::F32);
    let part = part.unwrap();
    let aux = host(part.term(&moe::fractions([&part]), 1.0))[0];
    let e2 = 2f64.exp();
    let e1 = 1f64.exp();
    let (p0, p1) = ((3.0 * e2 / (e2 + 1.0) + 1.0 / (1.0 + e1)) / 4.0, (3.0 / (e2 + 1.0) + e1 / (1.0 + e1)) / 4.0);
    let (f0, f1) = (0.75, 0.25);
    close(&[aux], &[2.0 * (f0 * p0 + f1 * p1)], 1e-6);
}

#[test]
fn moe_output_matches_a_dense_reference() {
    let (n, d, f, e, k) = (5usize, 3usize, 4usize, 3usize, 2usize);
    let mut rng = rng::Rng::new(9, rng::Stream::Init);
    let mut draw = |len: usize| (0..len).map(|_| rng.normal() * 0.7).collect::<Vec<f64>>();
    let (hv, rv) = (draw(n * d), draw(d * e));
    let w1: Vec<Vec<f64>> = (0..e).map(|_| draw(d * f)).collect();
    let w2: Vec<Vec<f64>> = (0..e).map(|_| draw(f * d)).collect();
    // The CPU's per-expert loop, and the accelerators' padded groups (`cpu-generic`).
    let outs: Vec<Vec<f64>> = [false, true]
        .into_iter()
        .map(|grouped| {
            with_accelerator_path(grouped, || {
                let (out, _) = moe::moe(
                    t2(&hv, [n, d]),
                    &t2(&rv, [d, e]),
                    &w1.iter().map(|w| t2(w, [d, f])).collect::<Vec<_>>(),
                    &w2.iter().map(|w| t2(w, [f, d])).collect::<Vec<_>>(),
                    k,
                    None,
                    false,
                    Precision::F32,
                );
                host(out)
            })
        })
        .collect();
    let mut want = vec![0.0; n * d];
    for t in 0..n {
        let x = &hv[t * d..(t + 1) * d];
        let logits: Vec<f64> = (0..e).map(|j| (0..d).map(|i| x[i] * rv[i * e + j]).sum()).collect();
        let mut idx: Vec<usize> = (0..e).collect();
        idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        let top = &idx[..k];
        let z: f64 = top.iter().map(|&j| logits[j].exp()).sum();
        for &j in top {
            let gate = logits[j].exp() / z;
            let hid: Vec<f64> = (0..f)
                .map(|c| (0..d).map(|i| x[i] * w1[j][i * f + c]).sum::<f64>())
                .map(|a| a / (1.0 + (-a).exp()))
                .collect();
            for o in 0..d {
                want[t * d + o] += gate * (0..f).map(|c| hid[c] * w2[j][c * d + o]).sum::<f64>();
            }
        }
    }
    for out in &outs {
        close(out, &want, 1e-5);
    }
}

// ------------------------------------------------------------------------------------------
// Whole runs on a tiny model.

fn tiny(extra: &[(&str, Value)]) -> RunConfig {
    let mut v = Values::new();
    for (k, x) in [
        ("d_model", Value::Int(32)),
        ("layers", Value::Int(1)),
        ("heads", Value::Int(2)),
        ("d_ff", Value::Int(64)),
        ("experts", Value::Int(2)),
        ("top_k", Value::Int(1)),
        ("seq_len", Value::Int(16)),
        ("batch_size", Value::Int(8)),
        ("steps", Value::Int(30)),
        ("eval_every", Value::Int(10)),
        ("log_every", Value::Int(5)),
        ("val_batches", Value::Int(2)),
        ("data.tokens", Value::Int(4000)),
    ] {
        v.insert(key(k), x);
    }
    for (k, x) in extra {
        v.insert(key(k), x.clone());
    }
    RunConfig::from_values(&v).unwrap()
}

const TEXT: &str = "the quick brown fox jumps over the lazy dog. ";

fn run(config: &RunConfig, text: &str, cancel: &CancelFlag) -> Result<RunResult, Cancelled> {
    let data = Dataset::prepare(config, text, std::path::Path::new("/nonexistent")).unwrap();
    let trainer = BurnTrainer::new(Device::Cpu, "/nonexistent");
    let mut events = 0;
    let mut on = |_: Progress| events += 1;
    let mut ctx = RunContext {
        cancel,
        progress: &mut on,
        workdir: None,
        run_key: None,
        base_dir: ".".into(),
        stop_at: None,
        cooldown: false,
        checkpoints: crate::spec::Checkpoints::default(),
        device: None,
    };
    trainer.train_data(config, &data, &mut ctx)
}

/// Metrics that do not depend on timing.
fn numerics(r: &RunResult) -> Vec<(u64, String, u64)> {
    let timing = ["tokens_per_sec", "elapsed", "acc_per_min"];
    let final_ =
        r.metrics.iter().filter(|(k, _)| !timing.contains(&k.as_str())).map(|(k, v)| (0, k.clone(), v.to_bits()));
    let rows = r.history.iter().flat_map(|row| {
        row.metrics
            .iter()
            .filter(|(k, _)| !timing.contains(&k.as_str()))
            .map(|(k, v)| (row.step, k.clone(), v.to_bits()))
    });
    final_.chain(rows).collect()
}

#[test]
fn tiny_model_overfits_repeated_text() {
    let c = tiny(&[
        ("steps", Value::Int(120)),
        ("eval_every", Value::Int(60)),
        ("schedule", Value::Word("constant".into())),
        ("embedding_lr", Value::Float(0.05)),
        ("unembedding_lr", Value::Float(0.02)),
        ("scalar_lr", Value::Float(0.02)),
    ]);
    let r = run(&c, &TEXT.repeat(200), &CancelFlag::new()).unwrap();
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.steps, 120);
    let val = r.metrics["val_loss"];
    assert!(val < 0.5, "val_loss {val}");
    assert!(r.metrics["val_accuracy"] > 0.85, "{:?}", r.metrics);
    assert!((r.metrics["val_bpb"] - val / std::f64::consts::LN_2).abs() < 1e-9, "bytes: bpb = loss / ln 2");
    // History: rows every 5 steps, validation every 60 and at the end.
    assert_eq!(r.history.iter().map(|h| h.step).collect::<Vec<_>>(), (1..=24).map(|i| i * 5).collect::<Vec<_>>());
    assert!(r.history[11].metrics.contains_key("val_loss") && !r.history[10].metrics.contains_key("val_loss"));
}

#[test]
fn runs_are_bit_identical_and_seeds_matter() {
    let noisy = [("router_noise", Value::Float(0.1)), ("optimizer", Value::Word("muon_adamw".into()))];
    let c = tiny(&noisy);
    let text = TEXT.repeat(120) + "a different ending to make the validation block less trivial. ".repeat(20).as_str();
    let a = run(&c, &text, &CancelFlag::new()).unwrap();
    let b = run(&c, &text, &CancelFlag::new()).unwrap();
    assert_eq!(numerics(&a), numerics(&b));
    let other = tiny(&[noisy[0].clone(), noisy[1].clone(), ("seed", Value::Int(2))]);
    let d = run(&other, &text, &CancelFlag::new()).unwrap();
    assert_ne!(a.metrics["train_loss"].to_bits(), d.metrics["train_loss"].to_bits());
    // Two runs on two threads at once give the same numbers too (no shared RNG).
    let (x, y) = std::thread::scope(|s| {
        let h1 = s.spawn(|| run(&c, &text, &CancelFlag::new()).unwrap());
        let h2 = s.spawn(|| run(&c, &text, &CancelFlag::new()).unwrap());
        (h1.join().unwrap(), h2.join().unwrap())
    });
    assert_eq!(numerics(&x), numerics(&a));
    assert_eq!(numerics(&y), numerics(&a));
}

#[test]
fn runs_do_not_depend_on_the_thread_count() {
    // Shards run on separate threads, Muon buckets too: one thread must give the same bits.
    let c = tiny(&[
        ("router_noise", Value::Float(0.1)),
        ("optimizer", Value::Word("muon_adamw".into())),
        ("batch_size", Value::Int(5)),
    ]);
    let text = TEXT.repeat(120);
    let pool = |n: usize| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
    let one = pool(1).install(|| run(&c, &text, &CancelFlag::new()).unwrap());
    let three = pool(3).install(|| run(&c, &text, &CancelFlag::new()).unwrap());
    assert_eq!(numerics(&one), numerics(&three));
}

/// Sharding a batch changes only float rounding: the loss, the balance term and every gradient
/// are the full batch's (routed fractions counted over all shards, noise rows kept per token).
#[test]
fn shards_compute_the_full_batch_loss_and_gradients() {
    type A = burn::backend::Autodiff<Flex>;
    let c = tiny(&[
        ("experts", Value::Int(3)),
        ("top_k", Value::Int(2)),
        ("balance_loss", Value::Float(0.5)),
        ("batch_size", Value::Int(5)),
    ]);
    let m = &c.model;
    let layout = model::Layout::new(m, 256);
    let params = layout.init::<Flex>(3, &FlexDevice);
    let consts = attention::AttnConsts::<A>::new(m.seq_len, m.d_model, m.heads, m.rope_base, &FlexDevice);
    let windows: Vec<u32> = TEXT.bytes().cycle().take(5 * (m.seq_len + 1)).map(u32::from).collect();
    let mut r = rng::Rng::new(1, rng::Stream::RouterNoise);
    let noise: Vec<Vec<f32>> =
        layout.layers.iter().map(|_| moe::draw_noise(&mut r, 5 * m.seq_len, m.experts, 0.3)).collect();
    let pass = |shards: usize| {
        let f = step::forward_batch::<A>(
            m,
            &layout,
            &params,
            &consts,
            &windows,
            5,
            shards,
            Some(&noise),
            Precision::F32,
            &FlexDevice,
        );
        let (ce, aux) = (f.ce, f.aux);
        let grads: Vec<Vec<f64>> = f.backward().into_iter().map(|g| g.map(host).unwrap_or_default()).collect();
        (ce, aux, grads)
    };
    let (ce1, aux1, g1) = pass(1);
    assert!(aux1 > 0.0 && ce1 > 0.0);
    for shards in [2, 3] {
        let (ce, aux, g) = pass(shards);
        close(&[ce, aux], &[ce1, aux1], 1e-5);
        for (a, b) in g.iter().zip(&g1) {
            close(a, b, 1e-4);
        }
    }
}

#[test]
fn huge_learning_rate_is_recorded_as_diverged() {
    let c = tiny(&[
        ("optimizer", Value::Word("sgd".into())),
        ("matrix_lr", Value::Float(1e4)),
        ("embedding_lr", Value::Float(1e4)),
        ("unembedding_lr", Value::Float(1e4)),
        ("grad_clip", Value::Float(0.0)),
        ("schedule", Value::Word("constant".into())),
    ]);
    let r = run(&c, &TEXT.repeat(100), &CancelFlag::new()).unwrap();
    assert_eq!(r.status, Status::Diverged, "{:?}", r.metrics);
    let at = r.diverged_at.unwrap();
    assert!(at >= 2 && at <= 30, "{at}");
    assert_eq!(r.steps, at - 1);
}

#[test]
fn other_optimizers_and_options_train() {
    for extra in [
        vec![("optimizer", Value::Word("adamw".into())), ("softcap", Value::Float(15.0))],
        vec![("optimizer", Value::Word("sgd".into())), ("experts", Value::Int(1))],
        vec![
            ("ns_coeffs", Value::Word("polar_express".into())),
            ("muon_momentum_warmup", Value::Int(10)),
            ("cautious_wd", Value::Bool(false)),
        ],
    ] {
        let c = tiny(&extra);
        let r = run(&c, &TEXT.repeat(100), &CancelFlag::new()).unwrap();
        assert_eq!(r.status, Status::Ok, "{extra:?}: {r:?}");
        assert!(r.metrics["val_loss"] < r.history[0].metrics["train_loss"], "{extra:?} learns: {:?}", r.metrics);
    }
}

#[test]
fn cancellation_and_bad_data_never_panic() {
    let c = tiny(&[]);
    let cancel = CancelFlag::new();
    cancel.cancel();
    assert!(run(&c, &TEXT.repeat(100), &cancel).is_err());
    let err = Dataset::prepare(&c, "short", std::path::Path::new("/nonexistent")).err().unwrap();
    assert!(matches!(err, TrainError::CorpusTooSmall(_)));
    // Through the trait: a missing corpus is a failed result with the reason.
    let mut missing = c.clone();
    missing.data.corpus = "does/not/exist.txt".into();
    let trainer = BurnTrainer::new(Device::Cpu, "/nonexistent");
    let mut on = |_: Progress| {};
    let flag = CancelFlag::new();
    let mut ctx = RunContext {
        cancel: &flag,
        progress: &mut on,
        workdir: None,
        run_key: None,
        base_dir: ".".into(),
        stop_at: None,
        cooldown: false,
        checkpoints: crate::spec::Checkpoints::default(),
        device: None,
    };
    let r = trainer.train(&missing, &mut ctx).unwrap();
    assert_eq!(r.status, Status::Failed);
    assert!(r.error.unwrap().contains("does not exist"));
    assert_eq!(trainer.identity(&c).name, "lrx-builtin");
    assert!(trainer.identity(&c).backend.starts_with("flex/"), "the CPU identity names its GEMM kernels");
    assert!(trainer.identity(&c).device.is_none());
}

#[test]
fn stop_at_ends_early_but_keeps_the_schedule() {
    let c = tiny(&[]);
    let data = Dataset::prepare(&c, &TEXT.repeat(100), std::path::Path::new("/nonexistent")).unwrap();
    let trainer = BurnTrainer::new(Device::Cpu, "/nonexistent");
    let mut lrs = Vec::new();
    let mut on = |p: Progress| {
        if let Progress::Step { lr, .. } = p {
            lrs.push(lr);
        }
    };
    let flag = CancelFlag::new();
    let mut ctx = RunContext {
        cancel: &flag,
        progress: &mut on,
        workdir: None,
        run_key: None,
        base_dir: ".".into(),
        stop_at: Some(20),
        cooldown: false,
        checkpoints: crate::spec::Checkpoints::default(),
        device: None,
    };
    let r = trainer.train_data(&c, &data, &mut ctx).unwrap();
    assert_eq!(r.steps, 20);
    assert!(r.metrics.contains_key("val_loss"));
    // Default warmup_warmdown(warmdown = 0.5) over 30 steps: step 19 is at t = 19/30.
    assert!((lrs[19] - (1.0 - 19.0 / 30.0) / 0.5).abs() < 1e-12, "{lrs:?}");
}

// ------------------------------------------------------------------------------------------
// The accelerator's path (`--device cpu-generic`), which GPUs take, run on the CPU.

fn run_on(device: Device, config: &RunConfig, text: &str) -> RunResult {
    let data = Dataset::prepare(config, text, std::path::Path::new("/nonexistent")).unwrap();
    let trainer = BurnTrainer::new(device, "/nonexistent");
    let cancel = CancelFlag::new();
    let mut on = |_: Progress| {};
    let mut ctx = RunContext {
        cancel: &cancel,
        progress: &mut on,
        workdir: None,
        run_key: None,
        base_dir: ".".into(),
        stop_at: None,
        cooldown: false,
        checkpoints: crate::spec::Checkpoints::default(),
        device: None,
    };
    trainer.train_data(config, &data, &mut ctx).unwrap()
}

/// Over 20 steps the accelerator's path (one shard, stacked Muon buckets, burn's own softmax,
/// RMSNorm, SiLU and cross-entropy) trains the same model as the CPU's: the training loss at
/// every logged step agrees to 1e-3 (relative), the validation loss to 1e-3. The paths round
/// differently (other op order), which is all the tolerance is for.
#[test]
fn the_accelerator_path_trains_like_the_cpu_path() {
    let c = tiny(&[
        ("steps", Value::Int(20)),
        ("eval_every", Value::Int(10)),
        ("optimizer", Value::Word("muon_adamw".into())),
        ("experts", Value::Int(4)),
        ("top_k", Value::Int(2)),
        ("layers", Value::Int(2)),
    ]);
    let text = TEXT.repeat(120) + "a different ending to make the validation block less trivial. ".repeat(20).as_str();
    let cpu = run_on(Device::Cpu, &c, &text);
    let generic = run_on(Device::CpuGeneric, &c, &text);
    assert_eq!((cpu.status, generic.status), (Status::Ok, Status::Ok));
    assert_eq!(cpu.history.len(), generic.history.len());
    for (a, b) in cpu.history.iter().zip(&generic.history) {
        for name in ["train_loss", "val_loss"] {
            if let (Some(x), Some(y)) = (a.metrics.get(name), b.metrics.get(name)) {
                assert!((x - y).abs() <= 1e-3 * x.abs(), "step {}: {name} {x} (cpu) vs {y} (accelerator path)", a.step);
            }
        }
    }
    assert_ne!(numerics(&cpu), numerics(&generic), "the paths really differ (other ops, other rounding)");
    // The accelerator path is deterministic on the CPU too.
    assert_eq!(numerics(&generic), numerics(&run_on(Device::CpuGeneric, &c, &text)));
    // And its runs never share a cache key with the CPU path's.
    assert_ne!(BurnTrainer::new(Device::Cpu, ".").identity(&c), BurnTrainer::new(Device::CpuGeneric, ".").identity(&c));
}

/// One optimizer step with Muon's matrices stacked per shape (accelerators) or one bucket per
/// matrix (CPU): same parameter groups, same updated parameters.
#[test]
fn stacked_and_per_matrix_muon_buckets_agree() {
    let c =
        tiny(&[("optimizer", Value::Word("muon_adamw".into())), ("experts", Value::Int(4)), ("layers", Value::Int(2))]);
    let layout = super::model::Layout::new(&c.model, 64);
    let per_matrix = super::optim::Optimizer::<B>::new(&layout, &c.train, &FlexDevice);
    let stacked = with_accelerator_path(true, || super::optim::Optimizer::<B>::new(&layout, &c.train, &FlexDevice));
    assert_eq!(per_matrix.groups(), stacked.groups());
    let (pm, st) = (per_matrix.bucket_sizes(), stacked.bucket_sizes());
    assert!(pm.iter().all(|&n| n == 1), "{pm:?}");
    assert!(st.iter().any(|&n| n > 1), "some shape has several matrices: {st:?}");
    assert_eq!(pm.iter().sum::<usize>(), st.iter().sum::<usize>());

    let params = layout.init::<B>(3, &FlexDevice);
    let grads: Vec<Option<Tensor<B, 2>>> = layout.init::<B>(4, &FlexDevice).into_iter().map(Some).collect();
    let hyper = super::optim::groups::StepHyper::at(&c.train, 0, 0.0, 1.0);
    let step = |mut opt: super::optim::Optimizer<B>, generic: bool| {
        let mut p = params.clone();
        for _ in 0..2 {
            with_accelerator_path(generic, || opt.step(&mut p, grads.clone(), &hyper));
        }
        p.into_iter().map(host).collect::<Vec<_>>()
    };
    let (a, b) = (step(per_matrix, false), step(stacked, true));
    for (x, y) in a.iter().zip(&b) {
        close(x, y, 1e-5);
    }
}

// ------------------------------------------------------------------------------------------
// Precision.

/// `precision = bf16` rounds a matmul's operands to bf16 (8 significant bits) and gives an f32
/// product; the gradient reaching an f32 weight is f32, computed from bf16 operands too.
#[test]
fn bf16_matmuls_round_their_operands_and_keep_f32_weights_and_gradients() {
    use burn::tensor::DType;
    type A = burn::backend::Autodiff<Flex>;
    let x = 1.0 + 2f64.powi(-10); // not a bf16 number: it rounds to 1
    let a = Tensor::<A, 2>::from_data(TensorData::new(vec![x as f32, 3.0], [1, 2]), &FlexDevice).require_grad();
    let w = Tensor::<A, 2>::from_data(TensorData::new(vec![1.0f32, x as f32], [2, 1]), &FlexDevice).require_grad();
    let f32_out = super::precision::matmul(a.clone(), w.clone(), Precision::F32);
    let bf16_out = super::precision::matmul(a.clone(), w.clone(), Precision::Bf16);
    assert_eq!(bf16_out.dtype(), DType::F32);
    let (exact, rounded) = (host(f32_out.clone().inner())[0], host(bf16_out.clone().inner())[0]);
    assert!((exact - (x + 3.0 * x)).abs() < 1e-6, "{exact}");
    assert!((rounded - 4.0).abs() < 1e-12, "bf16 operands: 1 + 2^-10 is 1, so 1·1 + 3·1 = 4, got {rounded}");
    let grads = bf16_out.sum().backward();
    let ga = a.grad(&grads).expect("a gradient");
    assert_eq!(ga.dtype(), DType::F32);
    // d/da = wᵀ with w's entries rounded to bf16: [1, 1], not [1, 1 + 2^-10].
    assert_eq!(host(ga), vec![1.0, 1.0]);
    assert_eq!(host(w.grad(&grads).unwrap()), vec![1.0, 3.0]);
}

/// A bf16 run trains like the f32 run (on both the CPU's path and the accelerator's), is
/// deterministic, and is another run (other key) than the f32 run of the same config. The
/// tolerance, 5 % relative on every logged training and validation loss over 20 steps, is what
/// bf16's 8 significant bits leave after routing: measured, at most 0.24 % on the CPU's path
/// and 4.4 % on the accelerator's (its last validation loss, 0.397 against 0.414, where the
/// loss falls fastest and a routing decision flipped by rounding moves the whole run).
#[test]
fn bf16_runs_train_like_f32_runs_and_are_runs_of_their_own() {
    let base = [
        ("steps", Value::Int(20)),
        ("eval_every", Value::Int(10)),
        ("experts", Value::Int(4)),
        ("top_k", Value::Int(2)),
        ("layers", Value::Int(2)),
    ];
    let f32c = tiny(&base);
    let bf16c = tiny(&[&base[..], &[("precision", Value::Word("bf16".into()))]].concat());
    assert_eq!(bf16c.train.precision, Precision::Bf16);
    let text = TEXT.repeat(120) + "a different ending to make the validation block less trivial. ".repeat(20).as_str();
    for device in [Device::Cpu, Device::CpuGeneric] {
        let full = run_on(device, &f32c, &text);
        let half = run_on(device, &bf16c, &text);
        assert_eq!((full.status, half.status), (Status::Ok, Status::Ok));
        assert_eq!(full.history.len(), half.history.len());
        let mut diffs = Vec::new();
        for (a, b) in full.history.iter().zip(&half.history) {
            for name in ["train_loss", "val_loss"] {
                if let (Some(x), Some(y)) = (a.metrics.get(name), b.metrics.get(name)) {
                    diffs.push((a.step, name, *x, *y, (x - y).abs() / x.abs()));
                }
            }
        }
        assert!(
            diffs.iter().all(|d| d.4 <= 0.05),
            "{device:?}: (step, metric, f32, bf16, relative difference) {diffs:?}"
        );
        assert_ne!(numerics(&full), numerics(&half), "{device:?}: bf16 really rounds");
        assert_eq!(numerics(&half), numerics(&run_on(device, &bf16c, &text)), "{device:?}: bf16 is deterministic");
        let trainer = BurnTrainer::new(device, ".");
        assert_eq!(trainer.identity(&f32c).precision, "f32");
        assert_eq!(trainer.identity(&bf16c).precision, "bf16");
    }
}

// ------------------------------------------------------------------------------------------
// Checkpoints.

/// Trains `config` with these checkpoint settings, raising the stop signal once `raise_at`
/// steps are done.
fn run_ckpt(
    config: &RunConfig,
    text: &str,
    stop_at: Option<u64>,
    checkpoints: crate::spec::Checkpoints,
    raise_at: Option<u64>,
) -> Result<RunResult, Cancelled> {
    run_ckpt_on(Device::Cpu, config, text, stop_at, checkpoints, raise_at)
}

fn run_ckpt_on(
    device: Device,
    config: &RunConfig,
    text: &str,
    stop_at: Option<u64>,
    checkpoints: crate::spec::Checkpoints,
    raise_at: Option<u64>,
) -> Result<RunResult, Cancelled> {
    let data = Dataset::prepare(config, text, std::path::Path::new("/nonexistent")).unwrap();
    let trainer = BurnTrainer::new(device, "/nonexistent");
    let cancel = CancelFlag::new();
    let signal = checkpoints.stop.clone();
    let mut on = |p: Progress| {
        if let Progress::Step { step, .. } = p
            && Some(step) == raise_at
        {
            signal.raise();
        }
    };
    let mut ctx = RunContext {
        cancel: &cancel,
        progress: &mut on,
        workdir: None,
        run_key: None,
        base_dir: ".".into(),
        stop_at,
        cooldown: false,
        checkpoints,
        device: None,
    };
    trainer.train_data(config, &data, &mut ctx)
}

fn saving(path: &std::path::Path, at: &[u64]) -> crate::spec::Checkpoints {
    crate::spec::Checkpoints { save_to: Some(path.to_owned()), save_at: at.to_vec(), ..Default::default() }
}

fn resuming(path: &std::path::Path) -> crate::spec::Checkpoints {
    crate::spec::Checkpoints { resume_from: Some(path.to_owned()), ..Default::default() }
}

/// A run stopped at step 13 (between history rows and evaluations: `log_every` 5,
/// `eval_every` 10) with a checkpoint, then resumed to the budget, ends bit-identical to the
/// run trained straight through: every history row and final metric, for Muon with router
/// noise, AdamW and SGD.
#[test]
fn a_resumed_run_ends_bit_identical_to_one_trained_straight_through() {
    let dir = tempfile::tempdir().unwrap();
    let text = TEXT.repeat(120) + "a different ending to make the validation block less trivial. ".repeat(20).as_str();
    for extra in [
        vec![
            ("optimizer", Value::Word("muon_adamw".into())),
            ("router_noise", Value::Float(0.1)),
            ("muon_momentum_warmup", Value::Int(20)),
        ],
        vec![("optimizer", Value::Word("adamw".into()))],
        vec![("optimizer", Value::Word("sgd".into())), ("weight_decay", Value::Float(0.1))],
    ] {
        let c = tiny(&extra);
        let straight = run_ckpt(&c, &text, None, crate::spec::Checkpoints::default(), None).unwrap();
        let file = dir.path().join("ckpt");
        // A successive-halving rung: stop at 13 and save there.
        let rung = run_ckpt(&c, &text, Some(13), saving(&file, &[13]), None).unwrap();
        assert_eq!((rung.status, rung.steps), (Status::Ok, 13), "{extra:?}");
        assert!(
            rung.history.last().is_some_and(|r| r.step == 13 && r.metrics.contains_key("val_loss")),
            "the rung is evaluated where it stops"
        );
        let resumed = run_ckpt(&c, &text, None, resuming(&file), None).unwrap();
        assert_eq!(resumed.steps, 30);
        assert_eq!(numerics(&resumed), numerics(&straight), "{extra:?}");
        assert_eq!(
            resumed.history.iter().map(|r| r.step).collect::<Vec<_>>(),
            straight.history.iter().map(|r| r.step).collect::<Vec<_>>()
        );
    }
}

/// A halving rung stopped at `stop`, measured on its cooldown branch where `cooldown`, saving
/// its state with `checkpoints`; with the LR multiplier of every step it trained.
fn run_rung(
    config: &RunConfig,
    text: &str,
    stop: u64,
    checkpoints: crate::spec::Checkpoints,
    cooldown: bool,
) -> (RunResult, Vec<f64>) {
    let data = Dataset::prepare(config, text, std::path::Path::new("/nonexistent")).unwrap();
    let trainer = BurnTrainer::new(Device::Cpu, "/nonexistent");
    let cancel = CancelFlag::new();
    let mut lrs = Vec::new();
    let mut on = |p: Progress| {
        if let Progress::Step { lr, .. } = p {
            lrs.push(lr);
        }
    };
    let mut ctx = RunContext {
        cancel: &cancel,
        progress: &mut on,
        workdir: None,
        run_key: None,
        base_dir: ".".into(),
        stop_at: Some(stop),
        cooldown,
        checkpoints,
        device: None,
    };
    let r = trainer.train_data(config, &data, &mut ctx).unwrap();
    (r, lrs)
}

/// A rung at step 10 of 30, before the default schedule's warmdown (the last half), is
/// measured after a cooldown branch of 5 steps (half of 10) whose multiplier falls linearly
/// from 1 towards 0: its metrics are the branch's, its record keeps the rung's own (bit for
/// bit those of the unbranched rung), its history and step count end at the rung. The state
/// it saves is the one at step 10: resumed from it, the survivor ends bit-identical to the run
/// trained straight through. A rung inside the warmdown gets the rest of it at its scale; the
/// schedule's last step gets none.
#[test]
fn a_rung_before_the_warmdown_is_measured_after_a_cooldown_branch_that_the_survivor_never_sees() {
    let dir = tempfile::tempdir().unwrap();
    let text = TEXT.repeat(120) + "a different ending to make the validation block less trivial. ".repeat(20).as_str();
    let c = tiny(&[("optimizer", Value::Word("muon_adamw".into())), ("router_noise", Value::Float(0.1))]);
    let (plain, plain_lrs) = run_rung(&c, &text, 10, crate::spec::Checkpoints::default(), false);
    assert_eq!((plain.steps, plain.cooldown.as_ref()), (10, None));
    let file = dir.path().join("ckpt");
    let (rung, lrs) = run_rung(&c, &text, 10, saving(&file, &[10]), true);
    assert_eq!(rung.status, Status::Ok);
    let record = rung.cooldown.clone().expect("measured on a cooldown branch");
    assert_eq!((rung.steps, record.steps), (10, 5));
    assert_eq!(lrs.len(), 15, "10 steps to the rung, 5 in the branch");
    assert_eq!(lrs[..10], plain_lrs[..]);
    for (j, m) in lrs[10..].iter().enumerate() {
        assert!((m - (1.0 - j as f64 / 5.0)).abs() < 1e-12, "branch step {j}: {m} in {lrs:?}");
    }
    assert_eq!(
        record
            .at_rung
            .iter()
            .filter(|(k, _)| !crate::spec::measures_machine(k))
            .map(|(k, v)| (k.clone(), v.to_bits()))
            .collect::<Vec<_>>(),
        plain
            .metrics
            .iter()
            .filter(|(k, _)| !crate::spec::measures_machine(k))
            .map(|(k, v)| (k.clone(), v.to_bits()))
            .collect::<Vec<_>>(),
        "the rung's own metrics are kept"
    );
    assert_ne!(rung.metrics["val_loss"].to_bits(), plain.metrics["val_loss"].to_bits());
    assert!(rung.metrics["val_loss"] < plain.metrics["val_loss"], "the decay lowers the loss here");
    let rows = |r: &RunResult| numerics(&RunResult { metrics: std::collections::BTreeMap::new(), ..r.clone() });
    assert_eq!(rows(&rung), rows(&plain), "the history ends at the rung, as without the branch");

    let straight = run_ckpt(&c, &text, None, crate::spec::Checkpoints::default(), None).unwrap();
    let resumed = run_ckpt(&c, &text, None, resuming(&file), None).unwrap();
    assert_eq!(resumed.cooldown, None);
    assert_eq!(numerics(&resumed), numerics(&straight), "the survivor never sees the branch");

    // Inside the warmdown (step 20 of 30, multiplier 2/3): the rest of the decay, 1/3 of 20 steps.
    let (late, lrs) = run_rung(&c, &text, 20, crate::spec::Checkpoints::default(), true);
    assert_eq!(late.cooldown.map(|r| r.steps), Some(7));
    assert!((lrs[20] - 2.0 / 3.0).abs() < 1e-12, "{lrs:?}");
    // A schedule without a late decay is never branched.
    let mut cosine = c.clone();
    cosine.train.schedule =
        crate::spec::Schedule::Cosine { warmup: 0.0, min_lr: 0.0, cycles: 1, warmup_start: 0.0, over: None };
    let (r, lrs) = run_rung(&cosine, &text, 10, crate::spec::Checkpoints::default(), true);
    assert_eq!((r.cooldown, lrs.len()), (None, 10));
}

/// "Save now and stop" (a batch job's signal): the run saves after the step it is in, says so
/// on the signal, and returns `Cancelled`; resumed, it ends like the straight run. Periodic
/// saves keep the latest state.
#[test]
fn the_stop_signal_saves_and_stops_and_periodic_saves_resume_too() {
    let dir = tempfile::tempdir().unwrap();
    let c = tiny(&[("optimizer", Value::Word("muon_adamw".into())), ("router_noise", Value::Float(0.1))]);
    let text = TEXT.repeat(120);
    let straight = run_ckpt(&c, &text, None, crate::spec::Checkpoints::default(), None).unwrap();
    let file = dir.path().join("signal");
    let ck = saving(&file, &[]);
    let signal = ck.stop.clone();
    assert!(run_ckpt(&c, &text, None, ck, Some(7)).is_err(), "stopped on the signal");
    assert_eq!(signal.last_saved(), Some(7));
    let resumed = run_ckpt(&c, &text, None, resuming(&file), None).unwrap();
    assert_eq!(numerics(&resumed), numerics(&straight));

    let every = dir.path().join("every");
    let ck = crate::spec::Checkpoints { save_to: Some(every.clone()), save_every: Some(4), ..Default::default() };
    let signal = ck.stop.clone();
    let full = run_ckpt(&c, &text, Some(22), ck, None).unwrap();
    assert_eq!((full.steps, signal.last_saved()), (22, Some(20)));
    // Resumed from step 20 with a later stop: the same as the straight run up to it.
    let resumed = run_ckpt(&c, &text, None, resuming(&every), None).unwrap();
    assert_eq!(numerics(&resumed), numerics(&straight));
}

/// A checkpoint is used only by the run that made it: another config, other data, a damaged
/// or foreign file fail the run with the reason, never train from a wrong state.
#[test]
fn a_corrupt_or_foreign_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = tiny(&[("optimizer", Value::Word("adamw".into()))]);
    let text = TEXT.repeat(120);
    let file = dir.path().join("ckpt");
    run_ckpt(&c, &text, Some(6), saving(&file, &[6]), None).unwrap();
    let refused = |config: &RunConfig, text: &str, path: &std::path::Path| {
        let r = run_ckpt(config, text, None, resuming(path), None).unwrap();
        assert_eq!((r.status, r.steps), (Status::Failed, 0));
        r.error.unwrap()
    };
    let other = tiny(&[("optimizer", Value::Word("adamw".into())), ("matrix_lr", Value::Float(0.01))]);
    let e = refused(&other, &text, &file);
    assert!(
        e.starts_with("cannot resume: the checkpoint")
            && e.contains("was made by another run")
            && e.contains("`train.matrix_lr` (checkpoint: 0.04, this run: 0.01)"),
        "{e}"
    );
    let e = refused(&tiny(&[("optimizer", Value::Word("muon_adamw".into()))]), &text, &file);
    assert!(e.contains("`train.optimizer`"), "{e}");
    let e = refused(&c, &("The quick".to_owned() + &TEXT.repeat(120)[9..]), &file);
    assert!(e.contains("its data differs"), "{e}");

    let bytes = std::fs::read(&file).unwrap();
    let damaged = dir.path().join("damaged");
    let mut flipped = bytes.clone();
    let i = flipped.len() - 100;
    flipped[i] ^= 0x10;
    std::fs::write(&damaged, &flipped).unwrap();
    assert!(refused(&c, &text, &damaged).contains("is corrupt (its checksum does not match"));
    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
    assert!(refused(&c, &text, &damaged).contains("is corrupt"));
    std::fs::write(&damaged, "not a checkpoint at all").unwrap();
    assert!(refused(&c, &text, &damaged).contains("is not an lrx checkpoint"));
    assert!(refused(&c, &text, &dir.path().join("missing")).contains("cannot read the checkpoint"));
    // The format version is checked before anything else in the header.
    let head_len = usize::try_from(u64::from_le_bytes(bytes[8..16].try_into().unwrap())).unwrap();
    let head =
        String::from_utf8(bytes[16..16 + head_len].to_vec()).unwrap().replacen("\"format\":1", "\"format\":9", 1);
    let mut v2 = bytes[..8].to_vec();
    v2.extend_from_slice(&(head.len() as u64).to_le_bytes());
    v2.extend_from_slice(head.as_bytes());
    v2.extend_from_slice(&bytes[16 + head_len..bytes.len() - 4]);
    let crc = crc32fast::hash(&v2);
    v2.extend_from_slice(&crc.to_le_bytes());
    std::fs::write(&damaged, &v2).unwrap();
    assert!(refused(&c, &text, &damaged).contains("has format version 9; this lrx reads version 1"));
}

/// The accelerator's path stacks Muon's matrices per shape: its checkpoints hold each matrix's
/// momentum all the same, and resume bit-identically; a CPU-path checkpoint is refused there
/// (other ops, other rounding).
#[test]
fn the_accelerator_path_resumes_bit_identically_and_refuses_cpu_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let c = tiny(&[
        ("optimizer", Value::Word("muon_adamw".into())),
        ("experts", Value::Int(4)),
        ("router_noise", Value::Float(0.1)),
        ("steps", Value::Int(20)),
    ]);
    let text = TEXT.repeat(120);
    let none = crate::spec::Checkpoints::default;
    let straight = run_ckpt_on(Device::CpuGeneric, &c, &text, None, none(), None).unwrap();
    let file = dir.path().join("generic");
    run_ckpt_on(Device::CpuGeneric, &c, &text, Some(7), saving(&file, &[7]), None).unwrap();
    let resumed = run_ckpt_on(Device::CpuGeneric, &c, &text, None, resuming(&file), None).unwrap();
    assert_eq!(numerics(&resumed), numerics(&straight));
    let cpu = dir.path().join("cpu");
    run_ckpt_on(Device::Cpu, &c, &text, Some(7), saving(&cpu, &[7]), None).unwrap();
    let r = run_ckpt_on(Device::CpuGeneric, &c, &text, None, resuming(&cpu), None).unwrap();
    assert_eq!(r.status, Status::Failed);
    assert!(
        r.error.as_deref().is_some_and(|e| e.contains("was made on the backend") && e.contains("+generic")),
        "{:?}",
        r.error
    );
}
