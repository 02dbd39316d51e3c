//! Opening a study for a command: load it (printing its diagnostics), then open it in the
//! library (`ops::study`) against `--cache`, with downloads announced as notes.

use std::path::Path;

use crate::cli::GlobalArgs;
use crate::ops::study::{Access, Study, Trainers};
use crate::train::{Device, Notify};

use super::load::{Loaded, load};

/// Like `open_on`, for commands that only read the cache: nothing is created on disk.
pub(super) fn open_read_only(file: &Path, device: &str, g: &GlobalArgs) -> anyhow::Result<Option<Study>> {
    open_with(file, device, g, Access::Read)
}

/// Loads and opens a study for `run` on `device` (the cache is made if missing); `None` when
/// it is invalid (its diagnostics were printed). `run --gpus` picks CUDA even in a build
/// without it: only the built-in trainer's runs fail there, saying why.
pub(super) fn open_on(file: &Path, device: Device, g: &GlobalArgs) -> anyhow::Result<Option<Study>> {
    open_device(file, device, g, Access::Write)
}

fn open_with(file: &Path, device: &str, g: &GlobalArgs, access: Access) -> anyhow::Result<Option<Study>> {
    open_device(file, Device::parse(device)?, g, access)
}

fn open_device(file: &Path, device: Device, g: &GlobalArgs, access: Access) -> anyhow::Result<Option<Study>> {
    let Loaded::Ok(plan) = load(file, g)? else { return Ok(None) };
    Ok(Some(Study::open(*plan, file, device, &g.cache, access, notify())?))
}

/// Opens a study already loaded from `file` (or from an older version of it) read-only.
pub(super) fn open_loaded(plan: crate::plan::Plan, file: &Path, device: &str, g: &GlobalArgs) -> anyhow::Result<Study> {
    Ok(Study::open(plan, file, Device::parse(device)?, &g.cache, Access::Read, notify())?)
}

/// The trainers for a run outside a study (`lrx train` of the defaults).
pub(super) fn trainers(device: Device, g: &GlobalArgs, base_dir: &Path) -> Trainers {
    Trainers::new(device, &g.cache, base_dir, notify())
}

/// The corpus download is announced like any other note (hidden by `--quiet`).
fn notify() -> Notify {
    std::sync::Arc::new(super::printer::note)
}

/// Every run key a study uses, as far as its cached winners let it be resolved.
pub(crate) fn reachable_keys(file: &Path, g: &GlobalArgs) -> anyhow::Result<Vec<crate::cache::RunKey>> {
    let Some(study) = open_read_only(file, "cpu", g)? else {
        anyhow::bail!("the study is invalid (see above); refusing to collect garbage against it")
    };
    Ok(study.reachable_keys()?)
}
