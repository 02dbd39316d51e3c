//! A sweep: the best candidate that finished ok wins (ties to the earlier one); when none
//! can, the phase fails with their reasons.

use std::collections::BTreeSet;

use super::{Decision, Outcomes};
use crate::exec::select;
use crate::spec::Goal;

pub(super) fn decide(goal: Goal, outcomes: &Outcomes<'_>) -> Decision {
    if let Some(index) = select::pick_winner(outcomes.aggs, goal) {
        return Decision::Winner { index, found: None };
    }
    let n = outcomes.aggs.len();
    let reasons: BTreeSet<String> = outcomes.aggs.iter().filter_map(|a| a.reason.clone()).collect();
    Decision::Fail(match (reasons.len(), reasons.iter().next()) {
        (1, Some(why)) if n > 1 => format!("all {n} candidates: {why}"),
        (1, Some(why)) => format!("its only candidate: {why}"),
        _ if n == 0 => "it has no candidates".to_owned(),
        _ => {
            format!("none of its {n} candidates finished well: {}", reasons.into_iter().collect::<Vec<_>>().join("; "))
        }
    })
}
