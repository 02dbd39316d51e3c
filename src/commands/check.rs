//! `lrx check FILE...`: validate studies (`-`: one from stdin); all diagnostics on stderr.

use crate::cli::{CheckArgs, GlobalArgs};

use super::Exit;
use super::load::{Loaded, load, name};

pub(crate) fn run(args: &CheckArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    let mut invalid = false;
    let mut unreadable = Vec::new();
    for path in &args.files {
        match load(path, g) {
            Ok(Loaded::Ok(plan)) => {
                let candidates: usize = plan.phases.iter().map(|p| p.candidate_count).sum();
                let n = plan.phases.len();
                let s = |k: usize| if k == 1 { "" } else { "s" };
                noteln!("ok: `{}` ({n} phase{}, {candidates} candidate{})", name(path), s(n), s(candidates));
            }
            Ok(Loaded::Invalid) => invalid = true,
            Err(e) if args.files.len() == 1 => return Err(e),
            Err(e) => {
                errln!("error: {e:#}");
                unreadable.push(name(path));
            }
        }
    }
    if !unreadable.is_empty() {
        anyhow::bail!("{} of {} files could not be read", unreadable.len(), args.files.len());
    }
    Ok(if invalid { Exit::Failure } else { Exit::Success })
}
