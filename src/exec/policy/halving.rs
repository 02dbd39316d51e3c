//! Successive halving: after each rung but the last, the best `keep` fraction of the live
//! candidates (at least one) trains on to the next rung; the rest are pruned.

use std::collections::BTreeSet;

use super::{Decision, Outcomes, contenders};
use crate::plan::{Phase, Prune};
use crate::spec::Goal;

/// `Some(Promote)` while rungs remain, `None` at the last rung (the sweep policy then picks).
pub(super) fn promote(phase: &Phase, outcomes: &Outcomes<'_>) -> Option<Decision> {
    let Prune::Halving { rungs, keep } = &phase.prune else { return None };
    let rung = outcomes.rung;
    if rung + 1 >= rungs.len() || rungs[rung] >= outcomes.budget.unwrap_or(u64::MAX) {
        return None;
    }
    let mut alive = contenders(outcomes);
    let goal = phase.objective.goal;
    alive.sort_by(|&a, &b| {
        let (x, y) = (outcomes.aggs[a].objective.unwrap_or(f64::NAN), outcomes.aggs[b].objective.unwrap_or(f64::NAN));
        let ord = x.total_cmp(&y);
        (if goal == Goal::Maximize { ord.reverse() } else { ord }).then(a.cmp(&b))
    });
    let n_keep = ((alive.len() as f64) * keep).ceil().max(1.0) as usize;
    let survivors: BTreeSet<usize> = alive.into_iter().take(n_keep).collect();
    let next = rung + 1;
    let stop_at = if next + 1 >= rungs.len() { None } else { Some(rungs[next]) };
    Some(Decision::Promote { survivors, stop_at })
}
