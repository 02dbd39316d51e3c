//! `lrx show`.

use crate::cli::{ShowArgs, GlobalArgs};

use super::Exit;

pub(crate) fn run(_args: &ShowArgs, _g: &GlobalArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("`lrx show` is not available in this build yet")
}
