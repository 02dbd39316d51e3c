//! `lrx show FILE`: result tables from the cache (trains nothing).

use crate::cli::{GlobalArgs, ShowArgs};
use crate::report::{TableOptions, render_tables};

use super::Exit;
use super::study::open_read_only;

pub(crate) fn run(args: &ShowArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    let Some(study) = open_read_only(&args.file, &args.device, g)? else { return Ok(Exit::Failure) };
    let results = study.dry()?;
    let opts =
        TableOptions { sort: args.sort.clone(), top: args.top, color: super::use_color(g), phase: args.phase.clone() };
    if let Err(message) = opts.check(&results) {
        errln!("error: {message}");
        return Ok(Exit::Failure);
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&selected_json(&results, &opts))?);
        return Ok(Exit::Success);
    }
    out!("{}", render_tables(&results, &opts));
    note!("{}", super::run::summary(&results));
    Ok(Exit::Success)
}

/// The study's JSON with the selection of the tables: only `--phase` (or only `final`), each
/// phase's candidates in `--sort` order and cut to `--top`.
fn selected_json(results: &crate::results::StudyResults, opts: &TableOptions) -> serde_json::Value {
    let mut json = results.to_json();
    let shown = crate::report::table::shown_candidates(results, opts);
    if let Some(phases) = json.get_mut("phases").and_then(|p| p.as_array_mut()) {
        phases.retain(|p| opts.phase.as_deref().is_none_or(|name| p["name"] == name));
        for p in phases.iter_mut() {
            let order =
                shown.iter().find(|(name, _)| p["name"] == name.as_str()).map(|(_, o)| o.clone()).unwrap_or_default();
            if let Some(cands) = p.get_mut("candidates").and_then(|c| c.as_array_mut()) {
                let all = std::mem::take(cands);
                cands.extend(order.iter().filter_map(|&i| all.get(i).cloned()));
            }
        }
    }
    if opts.phase.as_deref().is_some_and(|name| name != "final") {
        json["final"] = serde_json::Value::Null;
    }
    json
}
