//! `lrx plan`.

use crate::cli::{PlanArgs, GlobalArgs};

use super::Exit;

pub(crate) fn run(_args: &PlanArgs, _g: &GlobalArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("`lrx plan` is not available in this build yet")
}
