//! `lrx show FILE`: result tables from the cache (trains nothing).

use crate::cli::{GlobalArgs, ShowArgs};
use crate::report::{TableOptions, render_tables};

use super::Exit;
use super::study::Study;

pub(crate) fn run(args: &ShowArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    let Some(study) = Study::open_read_only(&args.file, &args.device, g)? else { return Ok(Exit::Failure) };
    let results = study.dry()?;
    if args.json {
        let mut json = results.to_json();
        if let (Some(phase), Some(phases)) = (&args.phase, json.get_mut("phases").and_then(|p| p.as_array_mut())) {
            phases.retain(|p| p["name"] == phase.as_str());
        }
        outln!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(Exit::Success);
    }
    let opts =
        TableOptions { sort: args.sort.clone(), top: args.top, color: super::use_color(g), phase: args.phase.clone() };
    if let Err(message) = opts.check(&results) {
        errln!("error: {message}");
        return Ok(Exit::Failure);
    }
    out!("{}", render_tables(&results, &opts));
    note!("{}", super::run::summary(&results));
    Ok(Exit::Success)
}
