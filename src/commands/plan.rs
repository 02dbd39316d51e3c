//! `lrx plan FILE [--json]`: per phase, its candidates and what they wait on.

use std::collections::BTreeMap;

use crate::cli::{GlobalArgs, PlanArgs};
use crate::plan::report;

use super::Exit;
use super::load::{Loaded, load, print_data};

pub(crate) fn run(args: &PlanArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    let Loaded::Ok(plan) = load(&args.file, g)? else { return Ok(Exit::Failure) };
    let r = report::build(&plan, &BTreeMap::new());
    if args.json {
        print_data(&format!("{}\n", serde_json::to_string_pretty(&r)?))?;
    } else {
        print_data(&report::text(&plan, &r))?;
    }
    Ok(Exit::Success)
}
