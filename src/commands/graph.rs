//! `lrx graph FILE --format text|dot|mermaid`: draw a study's DAG to stdout.

use crate::cli::{GlobalArgs, GraphArgs, GraphFormat};
use crate::plan::graph;

use super::Exit;
use super::load::{Loaded, load};

pub(crate) fn run(args: &GraphArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    let Loaded::Ok(plan) = load(&args.file, g)? else { return Ok(Exit::Failure) };
    let out = match args.format {
        GraphFormat::Text => graph::text(&plan),
        GraphFormat::Dot => graph::dot(&plan),
        GraphFormat::Mermaid => graph::mermaid(&plan),
    };
    out!("{}", out);
    Ok(Exit::Success)
}
