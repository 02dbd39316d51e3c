//! `lrx train`.

use crate::cli::{TrainArgs, GlobalArgs};

use super::Exit;

pub(crate) fn run(_args: &TrainArgs, _g: &GlobalArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("`lrx train` is not available in this build yet")
}
