//! Successive halving: after each rung but the last, the best `keep` fraction of the live
//! candidates (at least one) trains on to the next rung; the rest are pruned. Each rung's runs
//! stop with the phase's cooldown rule: the key says whether a rung is measured on a cooldown
//! branch (`cache::KeyInput::of_run`), the trainer measures it so.

use std::collections::BTreeSet;

use super::{Decision, Outcomes, contenders};
use crate::spec::{CooldownRule, Goal, Stop};

/// `Some(Promote)` while rungs remain, `None` at the last rung (the sweep policy then picks).
pub(super) fn promote(
    rungs: &[u64],
    keep: f64,
    cooldown: CooldownRule,
    goal: Goal,
    outcomes: &Outcomes<'_>,
) -> Option<Decision> {
    let rung = outcomes.rung;
    if rung + 1 >= rungs.len() || rungs[rung] >= outcomes.budget.unwrap_or(u64::MAX) {
        return None;
    }
    let mut alive = contenders(outcomes);
    alive.sort_by(|&a, &b| {
        let (x, y) = (outcomes.aggs[a].objective.unwrap_or(f64::NAN), outcomes.aggs[b].objective.unwrap_or(f64::NAN));
        let ord = x.total_cmp(&y);
        (if goal == Goal::Maximize { ord.reverse() } else { ord }).then(a.cmp(&b))
    });
    let n_keep = ((alive.len() as f64) * keep).ceil().max(1.0) as usize;
    let survivors: BTreeSet<usize> = alive.into_iter().take(n_keep).collect();
    let next = rung + 1;
    let stop_at = (next + 1 < rungs.len()).then(|| Stop { at: rungs[next], cooldown });
    Some(Decision::Promote { survivors, stop_at })
}

/// The step the first rung stops at (`None`: the phase's runs train their whole budget).
pub(super) fn first_stop(rungs: &[u64], cooldown: CooldownRule) -> Option<Stop> {
    (rungs.len() > 1).then(|| Stop { at: rungs[0], cooldown })
}

/// Runs (per seed) the rungs after `rung` will train, `live` candidates alive at `rung`, each
/// rung keeping `keep` of the last (at least one).
pub(super) fn later_rungs(rungs: &[u64], keep: f64, live: usize, rung: usize) -> usize {
    let mut n = live;
    let mut runs = 0;
    for _ in rung.saturating_add(1)..rungs.len() {
        n = ((n as f64) * keep).ceil().max(1.0) as usize;
        runs += n;
    }
    runs
}
