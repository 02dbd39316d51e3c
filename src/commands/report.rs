//! `lrx report`.

use crate::cli::{ReportArgs, GlobalArgs};

use super::Exit;

pub(crate) fn run(_args: &ReportArgs, _g: &GlobalArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("`lrx report` is not available in this build yet")
}
