//! `lrx fmt`.

use crate::cli::{FmtArgs, GlobalArgs};

use super::Exit;

pub(crate) fn run(_args: &FmtArgs, _g: &GlobalArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("`lrx fmt` is not available in this build yet")
}
