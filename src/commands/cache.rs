//! `lrx cache ls | verify | gc | rm`.

use crate::cli::{CacheCommand, GlobalArgs};

use super::Exit;

pub(crate) fn run(_cmd: &CacheCommand, _g: &GlobalArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("`lrx cache` is not available in this build yet")
}
