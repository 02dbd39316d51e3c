//! An LR range test: one run whose LR grows exponentially; the phase's winning change is the
//! LR read off its loss curve (`plan::range_test::analyse`), not a candidate.

use super::{Decision, Outcomes};
use crate::plan::range_test::{self, Analysis, Pick};
use crate::plan::{Phase, PhaseKind};
use crate::results::{RangeCurve, RangePoint};
use crate::spec::{HistoryRow, Value};

/// The curve of a run's history: the history's `lr` is the schedule's multiplier of `from`.
fn analyse(from: f64, pick: Pick, stop: f64, history: &[HistoryRow]) -> Option<Analysis> {
    let points: Vec<(f64, f64)> =
        history.iter().filter_map(|r| Some((from * r.metrics.get("lr")?, *r.metrics.get("train_loss")?))).collect();
    range_test::analyse(&points, pick, stop)
}

pub(super) fn decide(key: &str, from: f64, pick: Pick, stop: f64, outcomes: &Outcomes<'_>) -> Decision {
    match analyse(from, pick, stop, outcomes.first_history) {
        Some(a) => Decision::Winner { index: 0, found: Some((key.to_owned(), Value::Float(a.value))) },
        None => Decision::Fail(match pick {
            Pick::Steepest => "the LR range test's loss never falls: no steepest point to pick".to_owned(),
            Pick::Min { .. } => "the LR range test has fewer than two finite losses to pick from".to_owned(),
        }),
    }
}

/// What a range-test phase's run says, for the results: its (lr, loss, smoothed) points, the
/// minimum and the pick. `None` for other phases and before the run has a history.
pub fn curve(phase: &Phase, history: &[HistoryRow]) -> Option<RangeCurve> {
    let PhaseKind::Find { key, from, pick, stop, .. } = &phase.kind else { return None };
    let a = analyse(*from, *pick, *stop, history)?;
    Some(RangeCurve {
        key: key.clone(),
        rule: pick.to_string(),
        stop: *stop,
        minimum: a.minimum,
        pick: a.value,
        stopped: a.stopped,
        points: a.points.iter().map(|p| RangePoint { lr: p.lr, loss: p.loss, smoothed: p.smoothed }).collect(),
    })
}
