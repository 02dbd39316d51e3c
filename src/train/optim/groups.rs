//! Which update rule each parameter gets, and the per-step hyper-parameters of each group
//! (group LR × schedule multiplier, decay × weight-decay schedule, Muon momentum warmup).

use crate::spec::{OptimizerKind, TrainConfig};

use super::super::model::Group;

/// The update rule of one parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    Muon,
    AdamW,
    Sgd,
}

/// `muon_adamw`: Muon for the matrix group, AdamW for the rest; `adamw` and `sgd` everywhere.
pub fn rule(kind: OptimizerKind, group: Group) -> Rule {
    match (kind, group) {
        (OptimizerKind::MuonAdamw, Group::Matrix) => Rule::Muon,
        (OptimizerKind::MuonAdamw | OptimizerKind::Adamw, _) => Rule::AdamW,
        (OptimizerKind::Sgd, _) => Rule::Sgd,
    }
}

/// Hyper-parameters of one step, resolved from the config at a point of the run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepHyper {
    /// Effective LR per group, in [`Group::ALL`] order (group LR × schedule multiplier).
    pub lr: [f64; 4],
    /// Decoupled decay per group (`weight_decay` for the matrix group, `adam_wd` for the rest),
    /// times the weight-decay schedule.
    pub wd: [f64; 4],
    pub muon_momentum: f64,
}

impl StepHyper {
    /// `step` is 0-based; `t` the run's progress in `[0, 1]`; `mult` the LR schedule's value.
    pub fn at(c: &TrainConfig, step: u64, t: f64, mult: f64) -> StepHyper {
        let base = [c.matrix_lr, c.embedding_lr, c.unembedding_lr, c.scalar_lr];
        let wd_mult = c.wd_schedule.multiplier(t);
        let muon_momentum = if c.muon_momentum_warmup > 0 {
            let frac = (step as f64 / c.muon_momentum_warmup as f64).min(1.0);
            (1.0 - frac) * 0.85 + frac * c.muon_momentum
        } else {
            c.muon_momentum
        };
        StepHyper {
            lr: base.map(|lr| lr * mult),
            wd: [c.weight_decay * wd_mult, c.adam_wd * wd_mult, c.adam_wd * wd_mult, c.adam_wd * wd_mult],
            muon_momentum,
        }
    }

    pub fn lr_of(&self, g: Group) -> f64 {
        self.lr[g as usize]
    }

    pub fn wd_of(&self, g: Group) -> f64 {
        self.wd[g as usize]
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "exact expectations")]
mod tests {
    use super::*;
    use crate::spec::RunConfig;

    #[test]
    fn hyper_follows_groups_schedules_and_warmup() {
        let mut c = RunConfig::defaults().train;
        c.muon_momentum_warmup = 100;
        let h = StepHyper::at(&c, 50, 0.25, 0.5);
        // Each group at its own key's LR times the schedule, whatever the defaults are.
        assert_eq!(h.lr, [c.matrix_lr, c.embedding_lr, c.unembedding_lr, c.scalar_lr].map(|lr| lr * 0.5));
        // linear wd schedule: 0.2·(1 − 0.25); adam_wd defaults to 0.
        assert!((h.wd[0] - 0.15).abs() < 1e-15 && h.wd[1] == 0.0);
        // halfway through the momentum warmup: 0.85 + 0.5·(0.95 − 0.85)
        assert!((h.muon_momentum - 0.90).abs() < 1e-12);
        assert_eq!(StepHyper::at(&c, 500, 0.25, 0.5).muon_momentum, 0.95);
        assert_eq!(rule(OptimizerKind::MuonAdamw, Group::Matrix), Rule::Muon);
        assert_eq!(rule(OptimizerKind::MuonAdamw, Group::Embedding), Rule::AdamW);
        assert_eq!(rule(OptimizerKind::Adamw, Group::Matrix), Rule::AdamW);
        assert_eq!(rule(OptimizerKind::Sgd, Group::Scalar), Rule::Sgd);
    }
}
