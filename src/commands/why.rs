//! `lrx why`.

use crate::cli::{WhyArgs, GlobalArgs};

use super::Exit;

pub(crate) fn run(_args: &WhyArgs, _g: &GlobalArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("`lrx why` is not available in this build yet")
}
