//! Loading a study for a command: read, check and compile it, printing diagnostics (and
//! warnings) to stderr the way every command does.

use std::path::Path;

use crate::cli::GlobalArgs;
use crate::plan::{LoadError, Plan};

/// How loading went, for the command to map to an exit code.
pub(crate) enum Loaded {
    Ok(Box<Plan>),
    /// Invalid: the diagnostics were printed.
    Invalid,
}

/// Loads a study; diagnostics and warnings go to stderr. An unreadable file is an `Err`
/// (exit 2).
pub(crate) fn load(path: &Path, g: &GlobalArgs) -> anyhow::Result<Loaded> {
    let color = super::use_color(g);
    match Plan::load(path) {
        Ok(plan) => {
            if !plan.warnings.is_empty() {
                note!("{}", crate::diag::render_all(&plan.warnings, &plan.source, &path.display().to_string(), color));
            }
            Ok(Loaded::Ok(Box::new(plan)))
        }
        Err(LoadError::Invalid(failure)) => {
            err!("{}", failure.render(color));
            let n = failure.errors();
            errln!("error: could not check `{}` due to {n} error{}", path.display(), if n == 1 { "" } else { "s" });
            Ok(Loaded::Invalid)
        }
        Err(e @ LoadError::Io { .. }) => Err(e.into()),
    }
}
