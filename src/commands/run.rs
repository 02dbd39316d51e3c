//! `lrx run`.

use crate::cli::{RunArgs, GlobalArgs};

use super::Exit;

pub(crate) fn run(_args: &RunArgs, _g: &GlobalArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("`lrx run` is not available in this build yet")
}
