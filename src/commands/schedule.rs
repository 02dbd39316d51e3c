//! `lrx schedule`.

use crate::cli::{ScheduleArgs, GlobalArgs};

use super::Exit;

pub(crate) fn run(_args: &ScheduleArgs, _g: &GlobalArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("`lrx schedule` is not available in this build yet")
}
