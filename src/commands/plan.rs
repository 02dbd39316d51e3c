//! `lrx plan FILE [--json]`: per phase, which candidates are cached, which will train and which
//! wait on a winner (with the cached winner where known), and what the rest will cost.

use crate::cli::{GlobalArgs, PlanArgs};
use crate::ops::estimate::{self, Estimate};

use super::Exit;
use super::study::open_read_only;

pub(crate) fn run(args: &PlanArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    let Some(study) = open_read_only(&args.file, &args.device, g)? else { return Ok(Exit::Failure) };
    let results = study.dry()?;
    let estimate = Estimate::new(&study.plan, &results);
    if args.json {
        let mut j = results.to_json();
        j["estimate"] = estimate.to_json();
        outln!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        out!("{}", estimate::text(&study.plan, &results, &estimate));
    }
    if !estimate.cannot_run.is_empty() {
        for (phase, variant, why) in &estimate.cannot_run {
            errln!("error: {phase} {variant} cannot run: {why}");
        }
        return Ok(Exit::Failure);
    }
    Ok(Exit::Success)
}
