//! The final run (`combine(...)` or `after P`): nothing to choose; it is done when its run
//! (every repeat) finished well, and failed, with the reason, otherwise.

use super::{Decision, Outcomes};
use crate::spec::Status;

pub(super) fn decide(outcomes: &Outcomes<'_>) -> Decision {
    match outcomes.aggs.first() {
        Some(a) if a.status == Status::Ok => Decision::Winner { index: 0, found: None },
        Some(a) => Decision::Fail(a.reason.clone().unwrap_or_default()),
        None => Decision::Fail("it has no run".to_owned()),
    }
}
