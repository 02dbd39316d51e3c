//! Loading a study for a command: read (a file, or stdin for `-`), check and compile it,
//! printing diagnostics (and warnings) to stderr the way every command does.

use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;

use crate::cli::GlobalArgs;
use crate::plan::{LoadError, Plan};

/// How loading went, for the command to map to an exit code.
pub(crate) enum Loaded {
    Ok(Box<Plan>),
    /// Invalid: the diagnostics were printed.
    Invalid,
}

/// The name of stdin in diagnostics.
pub(crate) const STDIN: &str = "<stdin>";

/// Whether a path argument means stdin.
pub(crate) fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// How a path argument is named in messages: `<stdin>` for `-`.
pub(crate) fn name(path: &Path) -> String {
    if is_stdin(path) { STDIN.to_owned() } else { path.display().to_string() }
}

/// All of stdin, as text.
pub(crate) fn read_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).context("cannot read the study from stdin")?;
    Ok(text)
}

/// Loads a study (`-`: from stdin, its relative paths against the current folder);
/// diagnostics and warnings go to stderr. An unreadable file is an `Err` (exit 2).
pub(crate) fn load(path: &Path, g: &GlobalArgs) -> anyhow::Result<Loaded> {
    let color = super::use_color(g);
    let loaded = if is_stdin(path) {
        Plan::load_source(&read_stdin()?, Path::new(STDIN), Path::new("."))
    } else {
        Plan::load(path)
    };
    let name = name(path);
    match loaded {
        Ok(plan) => {
            if !plan.warnings.is_empty() {
                note!("{}", crate::diag::render_all(&plan.warnings, &plan.source, &name, color));
            }
            Ok(Loaded::Ok(Box::new(plan)))
        }
        Err(LoadError::Invalid(failure)) => {
            err!("{}", failure.render(color));
            let n = failure.errors();
            errln!("error: could not check `{name}` due to {n} error{}", if n == 1 { "" } else { "s" });
            Ok(Loaded::Invalid)
        }
        Err(e @ LoadError::Io { .. }) => Err(e.into()),
    }
}
