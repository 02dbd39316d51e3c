//! Learning-rate and weight-decay schedules as plain functions of training progress.
//!
//! Progress `t = step / total_steps` (or elapsed / budget under a time budget) runs from 0 at
//! the first step towards 1. Every schedule returns a multiplier applied to each parameter
//! group's own learning rate. The formulas are documented in `docs/language.md` (schedules).

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use super::value::{Call, Value};

/// An LR multiplier over the run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    /// autoresearch: linear warmup, flat, linear decay to `final_lr` over the last `warmdown`.
    WarmupWarmdown {
        warmup: f64,
        warmdown: f64,
        #[serde(rename = "final")]
        final_lr: f64,
    },
    /// Linear warmup, then cosine from 1 to `min_lr`, restarted `cycles` times (SGDR).
    Cosine { warmup: f64, min_lr: f64, cycles: u32 },
    /// `gamma^floor(t / every)`.
    Step { every: f64, gamma: f64 },
    /// `gamma^t`: from 1 at the start to `gamma` at the end.
    Exponential { gamma: f64 },
    /// Linear warmup, then a straight line from 1 to `final_lr`.
    Linear {
        warmup: f64,
        #[serde(rename = "final")]
        final_lr: f64,
    },
}

/// Weight decay over the run, as a multiplier of the configured decay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WdSchedule {
    Linear,
    Constant,
    Cosine,
}

fn arg(call: &Call, name: &str, default: f64) -> f64 {
    call.arg(name).and_then(Value::as_f64).unwrap_or(default)
}

/// Linear ramp from 0 to 1 over `[0, warmup)`; `None` once warmup is over.
fn warmup_ramp(t: f64, warmup: f64) -> Option<f64> {
    (warmup > 0.0 && t < warmup).then(|| t / warmup)
}

/// Progress after warmup, rescaled to `[0, 1]`.
fn after_warmup(t: f64, warmup: f64) -> f64 {
    if warmup >= 1.0 { 1.0 } else { ((t - warmup) / (1.0 - warmup)).clamp(0.0, 1.0) }
}

impl Schedule {
    /// Builds a schedule from a checked constructor call (arguments bound and defaulted).
    pub fn from_call(call: &Call) -> Schedule {
        match call.name.as_str() {
            "warmup_warmdown" => Schedule::WarmupWarmdown {
                warmup: arg(call, "warmup", 0.0),
                warmdown: arg(call, "warmdown", 0.5),
                final_lr: arg(call, "final", 0.0),
            },
            "cosine" => Schedule::Cosine {
                warmup: arg(call, "warmup", 0.0),
                min_lr: arg(call, "min_lr", 0.0),
                cycles: arg(call, "cycles", 1.0).max(1.0) as u32,
            },
            "step" => Schedule::Step { every: arg(call, "every", 0.3), gamma: arg(call, "gamma", 0.1) },
            "exponential" => Schedule::Exponential { gamma: arg(call, "gamma", 0.01) },
            "linear" => Schedule::Linear { warmup: arg(call, "warmup", 0.0), final_lr: arg(call, "final", 0.0) },
            _ => Schedule::Constant,
        }
    }

    /// The multiplier at progress `t` (clamped to `[0, 1]`).
    pub fn multiplier(&self, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        match *self {
            Schedule::Constant => 1.0,
            Schedule::WarmupWarmdown { warmup, warmdown, final_lr } => {
                if let Some(ramp) = warmup_ramp(t, warmup) {
                    ramp
                } else if t < 1.0 - warmdown || warmdown <= 0.0 {
                    1.0
                } else {
                    let c = (1.0 - t) / warmdown;
                    c + (1.0 - c) * final_lr
                }
            }
            Schedule::Cosine { warmup, min_lr, cycles } => {
                if let Some(ramp) = warmup_ramp(t, warmup) {
                    return ramp;
                }
                let q = after_warmup(t, warmup) * f64::from(cycles.max(1));
                // Within the current cycle; the very end of the run is the end of a cycle.
                let p = if q >= f64::from(cycles.max(1)) { 1.0 } else { q.fract() };
                min_lr + (1.0 - min_lr) * 0.5 * (1.0 + (PI * p).cos())
            }
            Schedule::Step { every, gamma } => gamma.powf((t / every).floor()),
            Schedule::Exponential { gamma } => gamma.powf(t),
            Schedule::Linear { warmup, final_lr } => {
                if let Some(ramp) = warmup_ramp(t, warmup) {
                    return ramp;
                }
                1.0 + (final_lr - 1.0) * after_warmup(t, warmup)
            }
        }
    }

    /// The multiplier at `step` of a run of `total` steps.
    pub fn at_step(&self, step: u64, total: u64) -> f64 {
        self.multiplier(progress(step, total))
    }
}

impl WdSchedule {
    pub fn multiplier(self, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        match self {
            WdSchedule::Linear => 1.0 - t,
            WdSchedule::Constant => 1.0,
            WdSchedule::Cosine => 0.5 * (1.0 + (PI * t).cos()),
        }
    }
}

/// Progress of step `step` (0-based) in a run of `total` steps: `step / total`.
pub fn progress(step: u64, total: u64) -> f64 {
    if total == 0 { 1.0 } else { step as f64 / total as f64 }
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "exact expectations")]
mod tests {
    use super::*;

    fn check(s: Schedule, points: &[(f64, f64)]) {
        for &(t, want) in points {
            let got = s.multiplier(t);
            assert!((got - want).abs() < 1e-12, "{s:?} at t = {t}: {got}, expected {want}");
        }
    }

    // Expected values worked out by hand from the documented formulas.
    #[test]
    fn schedules_at_hand_computed_points() {
        check(Schedule::Constant, &[(0.0, 1.0), (0.7, 1.0), (1.0, 1.0)]);
        check(
            Schedule::WarmupWarmdown { warmup: 0.1, warmdown: 0.5, final_lr: 0.1 },
            &[(0.0, 0.0), (0.05, 0.5), (0.3, 1.0), (0.5, 1.0), (0.75, 0.55), (1.0, 0.1)],
        );
        check(
            Schedule::Cosine { warmup: 0.1, min_lr: 0.1, cycles: 1 },
            &[(0.05, 0.5), (0.1, 1.0), (0.55, 0.55), (1.0, 0.1)],
        );
        check(Schedule::Cosine { warmup: 0.0, min_lr: 0.1, cycles: 2 }, &[(0.0, 1.0), (0.25, 0.55), (0.5, 1.0), (0.75, 0.55), (1.0, 0.1)]);
        check(Schedule::Step { every: 0.3, gamma: 0.1 }, &[(0.0, 1.0), (0.29, 1.0), (0.3, 0.1), (0.65, 0.01 + 1.0e-18), (0.95, 0.001)]);
        check(Schedule::Exponential { gamma: 0.01 }, &[(0.0, 1.0), (0.5, 0.1), (1.0, 0.01)]);
        check(Schedule::Linear { warmup: 0.2, final_lr: 0.0 }, &[(0.1, 0.5), (0.2, 1.0), (0.6, 0.5), (1.0, 0.0)]);
        assert!((WdSchedule::Linear.multiplier(0.25) - 0.75).abs() < 1e-15);
        assert!((WdSchedule::Cosine.multiplier(0.5) - 0.5).abs() < 1e-15);
        assert_eq!(WdSchedule::Constant.multiplier(0.9), 1.0);
        assert_eq!(Schedule::Linear { warmup: 0.0, final_lr: 0.0 }.at_step(25, 100), 0.75);
    }
}
