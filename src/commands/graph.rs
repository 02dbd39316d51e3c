//! `lrx graph`.

use crate::cli::{GraphArgs, GlobalArgs};

use super::Exit;

pub(crate) fn run(_args: &GraphArgs, _g: &GlobalArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("`lrx graph` is not available in this build yet")
}
