//! Learning-rate and weight-decay schedules as plain functions of training progress.
//!
//! Progress `t = step / total_steps` (or elapsed / budget under a time budget) runs from 0 at
//! the first step towards 1. Every schedule returns a multiplier applied to each parameter
//! group's own learning rate. The formulas are documented in `docs/language.md` (schedules).

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use super::value::{Call, Value};

/// An LR multiplier over the run.
///
/// Arguments added after the first schedules (`warmup_start`, `over`, `at`) are left out of
/// the serialized form while they have their defaults, so the configs written before them
/// keep their cache keys.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    /// autoresearch: linear warmup, flat, linear decay to `final_lr` over the last `warmdown`.
    WarmupWarmdown {
        warmup: f64,
        warmdown: f64,
        #[serde(rename = "final")]
        final_lr: f64,
        /// The multiplier the warmup starts from (a fraction of the peak).
        #[serde(default, skip_serializing_if = "is_zero")]
        warmup_start: f64,
    },
    /// Linear warmup, then cosine from 1 to `min_lr` over `over` of the run (the rest of it by
    /// default; flat at `min_lr` after it), in `cycles` cycles that each restart from 1 (SGDR).
    Cosine {
        warmup: f64,
        min_lr: f64,
        cycles: u32,
        #[serde(default, skip_serializing_if = "is_zero")]
        warmup_start: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        over: Option<f64>,
    },
    /// `gamma^floor(t / every)`; or, with milestones `at`, `gamma^(milestones reached)`.
    Step {
        every: f64,
        gamma: f64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        at: Vec<f64>,
    },
    /// `gamma^t`: from 1 at the start to `gamma` at the end.
    Exponential {
        gamma: f64,
    },
    /// Linear warmup, then a straight line from 1 to `final_lr`.
    Linear {
        warmup: f64,
        #[serde(rename = "final")]
        final_lr: f64,
        #[serde(default, skip_serializing_if = "is_zero")]
        warmup_start: f64,
    },
}

/// As derived, but without the later arguments at their defaults (as in the serialized form).
impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Constant => f.write_str("Constant"),
            Schedule::WarmupWarmdown { warmup, warmdown, final_lr, warmup_start } => {
                let mut d = f.debug_struct("WarmupWarmdown");
                d.field("warmup", warmup).field("warmdown", warmdown).field("final_lr", final_lr);
                if *warmup_start != 0.0 {
                    d.field("warmup_start", warmup_start);
                }
                d.finish()
            }
            Schedule::Cosine { warmup, min_lr, cycles, warmup_start, over } => {
                let mut d = f.debug_struct("Cosine");
                d.field("warmup", warmup).field("min_lr", min_lr).field("cycles", cycles);
                if *warmup_start != 0.0 {
                    d.field("warmup_start", warmup_start);
                }
                if let Some(over) = over {
                    d.field("over", over);
                }
                d.finish()
            }
            Schedule::Step { every, gamma, at } => {
                let mut d = f.debug_struct("Step");
                d.field("every", every).field("gamma", gamma);
                if !at.is_empty() {
                    d.field("at", at);
                }
                d.finish()
            }
            Schedule::Exponential { gamma } => f.debug_struct("Exponential").field("gamma", gamma).finish(),
            Schedule::Linear { warmup, final_lr, warmup_start } => {
                let mut d = f.debug_struct("Linear");
                d.field("warmup", warmup).field("final_lr", final_lr);
                if *warmup_start != 0.0 {
                    d.field("warmup_start", warmup_start);
                }
                d.finish()
            }
        }
    }
}

#[allow(clippy::trivially_copy_pass_by_ref, reason = "serde's `skip_serializing_if` passes a reference")]
fn is_zero(x: &f64) -> bool {
    *x == 0.0
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

/// Linear ramp from `start` to 1 over `[0, warmup)`; `None` once warmup is over.
fn warmup_ramp(t: f64, warmup: f64, start: f64) -> Option<f64> {
    // `start + (1 − start)·x` is exactly `x` when `start` is 0: older runs keep their bits.
    (warmup > 0.0 && t < warmup).then(|| start + (1.0 - start) * (t / warmup))
}

/// Progress after warmup, rescaled to `[0, 1]`.
fn after_warmup(t: f64, warmup: f64) -> f64 {
    if warmup >= 1.0 { 1.0 } else { ((t - warmup) / (1.0 - warmup)).clamp(0.0, 1.0) }
}

impl Schedule {
    /// Builds a schedule from a checked constructor call (arguments bound and defaulted).
    pub fn from_call(call: &Call) -> Schedule {
        let warmup_start = arg(call, "warmup_start", 0.0);
        match call.name.as_str() {
            "warmup_warmdown" => Schedule::WarmupWarmdown {
                warmup: arg(call, "warmup", 0.0),
                warmdown: arg(call, "warmdown", 0.5),
                final_lr: arg(call, "final", 0.0),
                warmup_start,
            },
            "cosine" => Schedule::Cosine {
                warmup: arg(call, "warmup", 0.0),
                min_lr: arg(call, "min_lr", 0.0),
                cycles: arg(call, "cycles", 1.0).max(1.0) as u32,
                warmup_start,
                over: call.arg("over").and_then(Value::as_f64),
            },
            "step" => Schedule::Step {
                every: arg(call, "every", 0.3),
                gamma: arg(call, "gamma", 0.1),
                at: match call.arg("at") {
                    Some(Value::List(items)) => items.iter().filter_map(Value::as_f64).collect(),
                    _ => Vec::new(),
                },
            },
            "exponential" => Schedule::Exponential { gamma: arg(call, "gamma", 0.01) },
            "linear" => {
                Schedule::Linear { warmup: arg(call, "warmup", 0.0), final_lr: arg(call, "final", 0.0), warmup_start }
            }
            _ => Schedule::Constant,
        }
    }

    /// Where warmup ends, as a fraction of the run (0 for schedules without one).
    pub fn warmup(&self) -> f64 {
        match *self {
            Schedule::WarmupWarmdown { warmup, .. }
            | Schedule::Cosine { warmup, .. }
            | Schedule::Linear { warmup, .. } => warmup,
            Schedule::Constant | Schedule::Step { .. } | Schedule::Exponential { .. } => 0.0,
        }
    }

    /// The multiplier at progress `t` (clamped to `[0, 1]`).
    pub fn multiplier(&self, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        match *self {
            Schedule::Constant => 1.0,
            Schedule::WarmupWarmdown { warmup, warmdown, final_lr, warmup_start } => {
                if let Some(ramp) = warmup_ramp(t, warmup, warmup_start) {
                    ramp
                } else if t < 1.0 - warmdown || warmdown <= 0.0 {
                    1.0
                } else {
                    let c = (1.0 - t) / warmdown;
                    c + (1.0 - c) * final_lr
                }
            }
            Schedule::Cosine { warmup, min_lr, cycles, warmup_start, over } => {
                if let Some(ramp) = warmup_ramp(t, warmup, warmup_start) {
                    return ramp;
                }
                let done = match over {
                    None => after_warmup(t, warmup),
                    Some(over) => ((t - warmup) / over).clamp(0.0, 1.0),
                };
                let q = done * f64::from(cycles.max(1));
                // Within the current cycle; the end of the last cycle (and the flat stretch
                // after it) is the end of a cycle, not the start of another.
                let p = if q >= f64::from(cycles.max(1)) { 1.0 } else { q.fract() };
                min_lr + (1.0 - min_lr) * 0.5 * (1.0 + (PI * p).cos())
            }
            Schedule::Step { every, gamma, ref at } => {
                if at.is_empty() {
                    gamma.powf((t / every).floor())
                } else {
                    gamma.powi(i32::try_from(at.iter().filter(|&&m| t >= m).count()).unwrap_or(i32::MAX))
                }
            }
            Schedule::Exponential { gamma } => gamma.powf(t),
            Schedule::Linear { warmup, final_lr, warmup_start } => {
                if let Some(ramp) = warmup_ramp(t, warmup, warmup_start) {
                    return ramp;
                }
                1.0 + (final_lr - 1.0) * after_warmup(t, warmup)
            }
        }
    }

    /// Where a schedule that decays late leaves its peak, as a fraction of the run: the start
    /// of `warmup_warmdown`'s warmdown, or `step`'s first drop, when a stretch at the peak comes
    /// before it (a rung there measures a run before its decay). `None` for schedules that decay
    /// from the end of their warmup on (`cosine`, `linear`, `exponential`, and a warmdown that
    /// begins where the warmup ends) or never (`constant`): their rungs are not branched.
    pub fn late_decay(&self) -> Option<f64> {
        match *self {
            Schedule::WarmupWarmdown { warmup, warmdown, final_lr, .. } => {
                let start = 1.0 - warmdown;
                (warmdown > 0.0 && start > warmup && final_lr < 1.0).then_some(start)
            }
            Schedule::Step { every, gamma, ref at } => {
                let first = at.first().copied().unwrap_or(every);
                (gamma < 1.0 && first > 0.0 && first < 1.0).then_some(first)
            }
            Schedule::Constant | Schedule::Cosine { .. } | Schedule::Exponential { .. } | Schedule::Linear { .. } => {
                None
            }
        }
    }

    /// The cooldown branch a run of `total` steps stopped at step `stop` is measured on: where
    /// the schedule decays late and its multiplier at `stop` is still above its end value.
    /// Its length is `(1 − from) · stop` steps (at least 1), `from` being the later of the
    /// decay's start and the rung's progress: a rung before the decay gets the decay's fraction
    /// of its own steps.
    pub fn cooldown(&self, stop: u64, total: u64) -> Option<Cooldown> {
        let decay = self.late_decay()?;
        if stop == 0 || stop >= total {
            return None;
        }
        let t = progress(stop, total);
        let (at_rung, end) = (self.multiplier(t), self.multiplier(1.0));
        if at_rung <= end {
            return None;
        }
        let from = t.max(decay);
        let steps = ((1.0 - from) * stop as f64).round().max(1.0) as u64;
        // Every schedule with a late decay holds 1 between its warmup and its decay.
        let scale = (t < self.warmup()).then(|| (at_rung - end) / (1.0 - end));
        Some(Cooldown { steps, from, scale, end })
    }

    /// The multiplier at `step` of a run of `total` steps.
    pub fn at_step(&self, step: u64, total: u64) -> f64 {
        self.multiplier(progress(step, total))
    }
}

/// Whether a successive-halving rung is measured on a cooldown branch
/// (`halving(..., cooldown = auto)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CooldownRule {
    /// Where the schedule decays late ([`Schedule::late_decay`]) and the rung stops above the
    /// schedule's end value, and the trainer can branch a run (the built-in one).
    #[default]
    Auto,
    /// Never: a rung is measured where it stops.
    None,
}

impl CooldownRule {
    pub fn from_word(word: &str) -> CooldownRule {
        if word == "none" { CooldownRule::None } else { CooldownRule::Auto }
    }
}

/// The cooldown branch of a run stopped at a successive-halving rung, before its schedule's
/// late decay has finished: from the rung's state, `steps` more steps with the multiplier
/// falling the way the schedule's own decay falls, from its value at the rung to the
/// schedule's end value; the rung's objective is measured after them, and the branch is
/// discarded (the next rung continues from the state at the rung).
///
/// The branch is the rest of the schedule's decay, from `from` (where the decay starts, or the
/// rung's own progress once it has started) to the end, compressed to the rung's scale: a run
/// of `k` steps whose decay is the last `d` of the schedule gets `d·k` steps, as a run of `k`
/// steps with that schedule would have. A rung inside the warmup (below the peak) gets the
/// decay scaled down to start at its multiplier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cooldown {
    /// Steps the branch trains.
    pub steps: u64,
    /// The progress in the schedule that the branch's first step stands for.
    from: f64,
    /// For a rung inside the warmup: the factor that scales the decay (from the peak, 1, to
    /// `end`) down to start at the rung's multiplier.
    scale: Option<f64>,
    /// The schedule's end value.
    end: f64,
}

impl Cooldown {
    /// The schedule progress that branch step `j` (0-based) stands for: in `[from, 1)`.
    pub fn progress(&self, j: u64) -> f64 {
        self.from + (1.0 - self.from) * progress(j, self.steps)
    }

    /// The LR multiplier of branch step `j` (0-based).
    pub fn multiplier(&self, schedule: &Schedule, j: u64) -> f64 {
        let m = schedule.multiplier(self.progress(j));
        match self.scale {
            None => m,
            Some(scale) => self.end + scale * (m - self.end),
        }
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

    fn check(s: &Schedule, points: &[(f64, f64)]) {
        for &(t, want) in points {
            let got = s.multiplier(t);
            assert!((got - want).abs() < 1e-12, "{s:?} at t = {t}: {got}, expected {want}");
        }
    }

    // Expected values worked out by hand from the documented formulas.
    #[test]
    fn schedules_at_hand_computed_points() {
        check(&Schedule::Constant, &[(0.0, 1.0), (0.7, 1.0), (1.0, 1.0)]);
        check(
            &Schedule::WarmupWarmdown { warmup: 0.1, warmdown: 0.5, final_lr: 0.1, warmup_start: 0.0 },
            &[(0.0, 0.0), (0.05, 0.5), (0.3, 1.0), (0.5, 1.0), (0.75, 0.55), (1.0, 0.1)],
        );
        check(
            &Schedule::Cosine { warmup: 0.1, min_lr: 0.1, cycles: 1, warmup_start: 0.0, over: None },
            &[(0.05, 0.5), (0.1, 1.0), (0.55, 0.55), (1.0, 0.1)],
        );
        check(
            &Schedule::Cosine { warmup: 0.0, min_lr: 0.1, cycles: 2, warmup_start: 0.0, over: None },
            &[(0.0, 1.0), (0.25, 0.55), (0.5, 1.0), (0.75, 0.55), (1.0, 0.1)],
        );
        check(
            &Schedule::Step { every: 0.3, gamma: 0.1, at: Vec::new() },
            &[(0.0, 1.0), (0.29, 1.0), (0.3, 0.1), (0.65, 0.01 + 1.0e-18), (0.95, 0.001)],
        );
        check(&Schedule::Exponential { gamma: 0.01 }, &[(0.0, 1.0), (0.5, 0.1), (1.0, 0.01)]);
        check(
            &Schedule::Linear { warmup: 0.2, final_lr: 0.0, warmup_start: 0.0 },
            &[(0.1, 0.5), (0.2, 1.0), (0.6, 0.5), (1.0, 0.0)],
        );
        assert!((WdSchedule::Linear.multiplier(0.25) - 0.75).abs() < 1e-15);
        assert!((WdSchedule::Cosine.multiplier(0.5) - 0.5).abs() < 1e-15);
        assert_eq!(WdSchedule::Constant.multiplier(0.9), 1.0);
        assert_eq!(Schedule::Linear { warmup: 0.0, final_lr: 0.0, warmup_start: 0.0 }.at_step(25, 100), 0.75);
    }

    /// The schedules of the seeds: a warmup from 10 % of the peak (seed 000), step decay at
    /// milestones (seed 000), cosine over 90 % of the run after a 5 % warmup, then flat at the
    /// minimum (seed 003). Values worked out by hand.
    #[test]
    fn warmup_start_milestones_and_partial_cosine_at_hand_computed_points() {
        check(
            &Schedule::WarmupWarmdown { warmup: 0.1, warmdown: 0.5, final_lr: 0.1, warmup_start: 0.1 },
            // 0.1 + 0.9·(0.05 / 0.1) = 0.55 halfway through the warmup.
            &[(0.0, 0.1), (0.05, 0.55), (0.1, 1.0), (0.5, 1.0), (0.75, 0.55), (1.0, 0.1)],
        );
        check(
            &Schedule::Linear { warmup: 0.2, final_lr: 0.0, warmup_start: 0.5 },
            &[(0.0, 0.5), (0.1, 0.75), (0.2, 1.0), (0.6, 0.5), (1.0, 0.0)],
        );
        let seed_003 = Schedule::Cosine { warmup: 0.05, min_lr: 0.1, cycles: 1, warmup_start: 0.1, over: Some(0.9) };
        // Halfway through the cosine: t = 0.05 + 0.45; its end at 0.95, then flat at 0.1.
        check(&seed_003, &[(0.0, 0.1), (0.025, 0.55), (0.05, 1.0), (0.5, 0.55), (0.95, 0.1), (0.97, 0.1), (1.0, 0.1)]);
        // Two cycles over the first half: 1 → 0 by t = 0.25, restart once to 1, 1 → 0 by 0.5.
        check(
            &Schedule::Cosine { warmup: 0.0, min_lr: 0.0, cycles: 2, warmup_start: 0.0, over: Some(0.5) },
            &[(0.0, 1.0), (0.125, 0.5), (0.25, 1.0), (0.375, 0.5), (0.5, 0.0), (0.8, 0.0), (1.0, 0.0)],
        );
        check(
            &Schedule::Step { every: 0.3, gamma: 0.1, at: vec![0.5, 0.75] },
            &[
                (0.0, 1.0),
                (0.49, 1.0),
                (0.5, 0.1),
                (0.74, 0.1),
                (0.75, 0.010_000_000_000_000_002),
                (1.0, 0.010_000_000_000_000_002),
            ],
        );
        assert_eq!(Schedule::Step { every: 0.3, gamma: 0.1, at: vec![0.5, 0.75] }.at_step(50, 100), 0.1);
        assert_eq!(seed_003.warmup(), 0.05);
    }

    /// A rung before a late decay is measured after a branch of the decay's fraction of its
    /// steps, falling from the peak to the end value; inside the decay, the rest of it; after
    /// the decay, past the budget, or with a schedule that decays throughout, no branch.
    #[test]
    fn cooldown_branches_follow_the_late_decay_at_the_rungs_scale() {
        let ww = Schedule::WarmupWarmdown { warmup: 0.0, warmdown: 0.5, final_lr: 0.0, warmup_start: 0.0 };
        assert_eq!(ww.late_decay(), Some(0.5));
        // Rung 20 of 80: 10 steps, 1 → 0 linearly (1.0, 0.9, ..., 0.1), as a 20-step run's warmdown.
        let c = ww.cooldown(20, 80).unwrap();
        assert_eq!(c.steps, 10);
        let mults: Vec<f64> = (0..10).map(|j| c.multiplier(&ww, j)).collect();
        for (j, m) in mults.iter().enumerate() {
            assert!((m - (1.0 - j as f64 / 10.0)).abs() < 1e-12, "step {j}: {m}");
        }
        // Rung 40 of 80 stands where the warmdown begins: 20 steps.
        assert_eq!(ww.cooldown(40, 80).unwrap().steps, 20);
        // Rung 60 of 80, halfway down (multiplier 0.5): the other half, at the rung's scale.
        let mid = ww.cooldown(60, 80).unwrap();
        assert_eq!(mid.steps, 15);
        assert!((mid.multiplier(&ww, 0) - 0.5).abs() < 1e-12);
        assert!((mid.multiplier(&ww, 14) - 0.5 / 15.0).abs() < 1e-12);
        // Never a branch at or past the budget, nor for schedules without a late decay.
        assert_eq!(ww.cooldown(80, 80), None);
        assert_eq!(ww.cooldown(0, 80), None);
        for s in [
            Schedule::Constant,
            Schedule::Cosine { warmup: 0.1, min_lr: 0.0, cycles: 1, warmup_start: 0.0, over: None },
            Schedule::Linear { warmup: 0.0, final_lr: 0.0, warmup_start: 0.0 },
            Schedule::Exponential { gamma: 0.01 },
            Schedule::WarmupWarmdown { warmup: 0.5, warmdown: 0.5, final_lr: 0.0, warmup_start: 0.0 },
            Schedule::WarmupWarmdown { warmup: 0.0, warmdown: 0.5, final_lr: 1.0, warmup_start: 0.0 },
        ] {
            assert_eq!(s.cooldown(20, 80), None, "{s:?}");
        }
        // A late step decay: milestones at 0.5 and 0.75 of the run; rung 20 of 80 gets 10 steps,
        // the first half at ×0.1, the second at ×0.01, as the run's last half.
        let step = Schedule::Step { every: 0.3, gamma: 0.1, at: vec![0.5, 0.75] };
        let c = step.cooldown(20, 80).unwrap();
        assert_eq!(c.steps, 10);
        assert_eq!((c.multiplier(&step, 0), c.multiplier(&step, 4)), (0.1, 0.1));
        assert_eq!(c.multiplier(&step, 5), 0.010_000_000_000_000_002);
        // A rung inside the warmup: the decay scaled down to start at the rung's multiplier.
        let warm = Schedule::WarmupWarmdown { warmup: 0.5, warmdown: 0.25, final_lr: 0.0, warmup_start: 0.0 };
        let c = warm.cooldown(20, 80).unwrap();
        assert_eq!(c.steps, 5);
        assert!((c.multiplier(&warm, 0) - 0.5).abs() < 1e-12);
        assert!((c.multiplier(&warm, 4) - 0.5 * 0.2).abs() < 1e-12);
    }

    /// The new arguments stay out of the serialized form at their defaults: configs written
    /// before them keep their cache keys. A warmup from 0 is bit for bit the old ramp.
    #[test]
    fn schedules_without_the_new_arguments_serialize_as_before() {
        let old = Schedule::Cosine { warmup: 0.1, min_lr: 0.05, cycles: 2, warmup_start: 0.0, over: None };
        assert_eq!(serde_json::to_string(&old).unwrap(), r#"{"cosine":{"warmup":0.1,"min_lr":0.05,"cycles":2}}"#);
        assert_eq!(
            serde_json::from_str::<Schedule>(r#"{"cosine":{"warmup":0.1,"min_lr":0.05,"cycles":2}}"#).unwrap(),
            old
        );
        let step = Schedule::Step { every: 0.3, gamma: 0.1, at: Vec::new() };
        assert_eq!(serde_json::to_string(&step).unwrap(), r#"{"step":{"every":0.3,"gamma":0.1}}"#);
        let ww = Schedule::WarmupWarmdown { warmup: 0.3, warmdown: 0.5, final_lr: 0.0, warmup_start: 0.0 };
        assert_eq!(
            serde_json::to_string(&ww).unwrap(),
            r#"{"warmup_warmdown":{"warmup":0.3,"warmdown":0.5,"final":0.0}}"#
        );
        assert_eq!(format!("{old:?}"), "Cosine { warmup: 0.1, min_lr: 0.05, cycles: 2 }");
        let new = Schedule::Cosine { warmup: 0.1, min_lr: 0.05, cycles: 2, warmup_start: 0.1, over: Some(0.9) };
        assert_eq!(format!("{new:?}"), "Cosine { warmup: 0.1, min_lr: 0.05, cycles: 2, warmup_start: 0.1, over: 0.9 }");
        assert_eq!(
            format!("{:?}", Schedule::Step { every: 0.3, gamma: 0.1, at: vec![0.5] }),
            "Step { every: 0.3, gamma: 0.1, at: [0.5] }"
        );
        assert_eq!(serde_json::from_str::<Schedule>(&serde_json::to_string(&new).unwrap()).unwrap(), new);
        for i in 0..=1000 {
            let t = f64::from(i) / 1000.0 * 0.3;
            assert_eq!(ww.multiplier(t).to_bits(), (t / 0.3).min(1.0).to_bits(), "t = {t}");
        }
    }
}
