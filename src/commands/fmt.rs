//! `lrx fmt FILE... [--check]`: rewrite studies in canonical form, or only name the files
//! that are not (exit 1); `-` formats stdin to stdout.

use crate::cli::{FmtArgs, GlobalArgs};
use crate::lang::fmt;

use super::Exit;
use super::load::{is_stdin, name, read_stdin};

pub(crate) fn run(args: &FmtArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    let color = super::use_color(g);
    let mut failed = false;
    let mut unformatted = Vec::new();
    for path in &args.files {
        let source = if is_stdin(path) {
            read_stdin()?
        } else {
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", path.display()))?
        };
        let formatted = match fmt::format(&source) {
            Ok(f) => f,
            Err(d) => {
                err!("{}", crate::diag::render_all(&[d], &source, &name(path), color));
                failed = true;
                continue;
            }
        };
        // Stdin has nowhere to be rewritten: its canonical form goes to stdout.
        if is_stdin(path) && !args.check {
            out!("{formatted}");
            continue;
        }
        if formatted == source {
            continue;
        }
        if args.check {
            unformatted.push(name(path));
        } else {
            std::fs::write(path, &formatted).map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", path.display()))?;
            noteln!("formatted `{}`", path.display());
        }
    }
    for p in &unformatted {
        errln!("not formatted: `{p}`");
    }
    Ok(if failed || !unformatted.is_empty() { Exit::Failure } else { Exit::Success })
}
