//! An LR range test: one run whose LR grows exponentially; the phase's winning change is the
//! LR read off its loss curve (`plan::pick_from_range_test`), not a candidate.

use super::{Decision, Outcomes};
use crate::spec::Value;

pub(super) fn decide(key: &str, from: f64, divisor: f64, outcomes: &Outcomes<'_>) -> Decision {
    // The history's `lr` is the schedule's multiplier of `from`.
    let points: Vec<(f64, f64)> = outcomes
        .first_history
        .iter()
        .filter_map(|r| Some((from * r.metrics.get("lr")?, *r.metrics.get("train_loss")?)))
        .collect();
    match crate::plan::pick_from_range_test(&points, divisor) {
        Some(v) => Decision::Winner { index: 0, found: Some((key.to_owned(), Value::Float(v))) },
        None => Decision::Fail("the LR range test found no usable minimum of the smoothed loss".to_owned()),
    }
}
