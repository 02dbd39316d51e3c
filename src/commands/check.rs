//! `lrx check`.

use crate::cli::{CheckArgs, GlobalArgs};

use super::Exit;

pub(crate) fn run(_args: &CheckArgs, _g: &GlobalArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("`lrx check` is not available in this build yet")
}
