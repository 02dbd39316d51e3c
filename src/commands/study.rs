//! Loading a study and computing what it needs from the cache, shared by several commands.

use std::path::Path;

use crate::cache::RunKey;
use crate::cli::GlobalArgs;

/// Every run key a study uses, as far as its cached winners let it be resolved.
pub(crate) fn reachable_keys(_file: &Path, _g: &GlobalArgs) -> anyhow::Result<Vec<RunKey>> {
    anyhow::bail!("`--keep` needs the study planner, which this build lacks")
}
