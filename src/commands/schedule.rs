//! `lrx schedule EXPR --steps N [--svg FILE]`: prints a schedule's multiplier at ~20 evenly
//! spaced steps (stdout, data), or draws it to an SVG file.

use anyhow::Context as _;

use crate::cli::{GlobalArgs, ScheduleArgs};
use crate::ops::schedule;

use super::Exit;

pub(crate) fn run(args: &ScheduleArgs, _g: &GlobalArgs) -> anyhow::Result<Exit> {
    if args.steps == 0 {
        errln!("error: `--steps` must be at least 1");
        return Ok(Exit::Failure);
    }
    let (parsed, canonical) = match schedule::parse(&args.expr) {
        Ok(s) => s,
        Err(msg) => {
            errln!("error: {msg}");
            return Ok(Exit::Failure);
        }
    };
    match &args.svg {
        Some(path) => {
            let svg = crate::report::figures::schedule_svg(&canonical, &parsed, args.steps)?;
            std::fs::write(path, svg).with_context(|| format!("cannot write `{}`", path.display()))?;
            noteln!("wrote {}", path.display());
        }
        None => out!("{}", schedule::table(&parsed, args.steps)),
    }
    Ok(Exit::Success)
}
