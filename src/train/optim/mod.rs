//! The optimizer of a run: global-norm gradient clipping, then each parameter's rule (Muon
//! buckets, AdamW, SGD) with its group's LR and decay. Written on plain burn tensors of the
//! inner (non-autodiff) backend, so the semantics are exactly those documented here.

pub mod adamw;
pub mod groups;
pub mod muon;

use burn::tensor::{ElementConversion, Tensor};
use burn::tensor::backend::Backend;
use rayon::iter::{IndexedParallelIterator, IntoParallelRefMutIterator, ParallelIterator};

use self::adamw::{AdamHyper, AdamState, adamw_step, sgd_step};
use self::groups::{Rule, StepHyper, rule};
use self::muon::{MuonBucket, MuonHyper, muon_step};
use super::model::{Group, Layout};
use crate::spec::TrainConfig;

/// Newton–Schulz buckets run in parallel when each Gram product of their matrices is at most
/// this many multiply-adds (about 320³; the mid shape's 128×512 is 8M, the seeds' 384×1536 226M).
const PARALLEL_BUCKETS_MAX_OPS: usize = 32 << 20;

/// Optimizer state for every parameter of a layout.
pub struct Optimizer<B: Backend> {
    cfg: TrainConfig,
    groups: Vec<Group>,
    rules: Vec<Rule>,
    shapes: Vec<[usize; 2]>,
    adam: Vec<Option<AdamState<B>>>,
    sgd: Vec<Option<Tensor<B, 2>>>,
    buckets: Vec<MuonBucket<B>>,
    /// Steps taken.
    t: u64,
}

impl<B: Backend + 'static> Optimizer<B> {
    pub fn new(layout: &Layout, cfg: &TrainConfig, device: &B::Device) -> Self {
        let groups: Vec<Group> = layout.specs.iter().map(|s| s.group).collect();
        let rules: Vec<Rule> = groups.iter().map(|&g| rule(cfg.optimizer, g)).collect();
        let shapes: Vec<[usize; 2]> = layout.specs.iter().map(|s| s.shape).collect();
        let zeros = |s: [usize; 2]| Tensor::<B, 2>::zeros(s, device);
        let adam = (0..rules.len())
            .map(|i| (rules[i] == Rule::AdamW).then(|| AdamState { m: zeros(shapes[i]), v: zeros(shapes[i]) }))
            .collect();
        let sgd = (0..rules.len()).map(|i| (rules[i] == Rule::Sgd).then(|| zeros(shapes[i]))).collect();
        let mut buckets: Vec<MuonBucket<B>> = Vec::new();
        for i in (0..rules.len()).filter(|&i| rules[i] == Rule::Muon) {
            match buckets.iter_mut().find(|b| b.shape == shapes[i]) {
                Some(b) => b.members.push(i),
                None => buckets.push(MuonBucket { members: vec![i], shape: shapes[i], buf: Tensor::zeros([1, 1, 1], device) }),
            }
        }
        for b in &mut buckets {
            b.buf = Tensor::zeros([b.members.len(), b.shape[0], b.shape[1]], device);
        }
        Optimizer { cfg: cfg.clone(), groups, rules, shapes, adam, sgd, buckets, t: 0 }
    }

    /// Clips the gradients to `grad_clip` by their global norm and updates every parameter.
    /// Missing gradients (an expert that received no token) count as zeros. Returns the
    /// global gradient norm before clipping.
    pub fn step(&mut self, params: &mut [Tensor<B, 2>], grads: Vec<Option<Tensor<B, 2>>>, h: &StepHyper) -> f64 {
        self.t += 1;
        let device = params[0].device();
        let mut grads: Vec<Tensor<B, 2>> =
            grads.into_iter().enumerate().map(|(i, g)| g.unwrap_or_else(|| Tensor::zeros(self.shapes[i], &device))).collect();
        let sq = grads.iter().map(|g| (g.clone() * g.clone()).sum()).reduce(|a, b| a + b);
        let norm = sq.map_or(0.0, |s| f64::from(s.into_scalar().elem::<f32>()).sqrt());
        let clip = self.cfg.grad_clip;
        if clip > 0.0 && norm.is_finite() && norm > clip {
            let scale = clip / (norm + 1e-6);
            for g in &mut grads {
                *g = g.clone().mul_scalar(scale);
            }
        }
        let c = &self.cfg;
        for i in 0..params.len() {
            let (lr, wd) = (h.lr_of(self.groups[i]), h.wd_of(self.groups[i]));
            match self.rules[i] {
                Rule::Muon => {}
                Rule::AdamW => {
                    let hyper = AdamHyper { lr, beta1: c.adam_betas.0, beta2: c.adam_betas.1, eps: c.adam_eps, wd, cautious: c.cautious_wd, t: self.t };
                    if let Some(state) = self.adam[i].as_mut() {
                        params[i] = adamw_step(params[i].clone(), grads[i].clone(), state, &hyper);
                    }
                }
                Rule::Sgd => {
                    if let Some(buf) = self.sgd[i].as_mut() {
                        params[i] = sgd_step(params[i].clone(), grads[i].clone(), buf, c.sgd_momentum, lr, wd, c.cautious_wd);
                    }
                }
            }
        }
        // Buckets are independent: orthogonalize them on separate threads when their matrices
        // are small (large GEMMs already use every core, and two at once only thrash the
        // caches: measured on the seeds' model). Each bucket's ops are the same whatever thread
        // runs them, so the result bits do not depend on scheduling.
        let inputs: Vec<(Tensor<B, 3>, Tensor<B, 3>, MuonHyper)> = self
            .buckets
            .iter()
            .map(|b| {
                let g0 = self.groups[b.members[0]];
                let hyper =
                    MuonHyper { lr: h.lr_of(g0), wd: h.wd_of(g0), cautious: c.cautious_wd, momentum: h.muon_momentum, ns_steps: c.ns_steps, coeffs: c.ns_coeffs };
                let [r, cols] = b.shape;
                let stack = |v: Vec<Tensor<B, 2>>| if v.len() == 1 { v.into_iter().next().map_or_else(|| Tensor::zeros([1, r, cols], &device), |t| t.reshape([1, r, cols])) } else { Tensor::stack::<3>(v, 0) };
                let p = stack(b.members.iter().map(|&i| params[i].clone()).collect());
                let g = stack(b.members.iter().map(|&i| grads[i].clone()).collect());
                (p, g, hyper)
            })
            .collect();
        let step = |(b, (p, g, hyper)): (&mut MuonBucket<B>, (Tensor<B, 3>, Tensor<B, 3>, MuonHyper))| muon_step(p, g, b, &hyper);
        // Only on the CPU backend: elsewhere the device runs the work, and launching from
        // several threads at once has not been measured.
        let on_cpu = super::on_cpu::<B>();
        let small = on_cpu && self.buckets.iter().all(|b| b.shape[0] * b.shape[1] * b.shape[0].min(b.shape[1]) <= PARALLEL_BUCKETS_MAX_OPS);
        let outs: Vec<Tensor<B, 3>> =
            if small { self.buckets.par_iter_mut().zip(inputs).map(step).collect() } else { self.buckets.iter_mut().zip(inputs).map(step).collect() };
        for (b, out) in self.buckets.iter().zip(outs) {
            let [r, cols] = b.shape;
            let n = b.members.len();
            for (k, piece) in out.chunk(n, 0).into_iter().enumerate() {
                params[b.members[k]] = piece.reshape([r, cols]);
            }
        }
        norm
    }
}
