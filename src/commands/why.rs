//! `lrx why FILE [PHASE [VARIANT]]`: why a run is not a cache hit — which of its inputs differ
//! from the closest cached run.

use crate::cli::{GlobalArgs, WhyArgs};
use crate::ops::{find, why};

use super::Exit;
use super::study::open_read_only;

pub(crate) fn run(args: &WhyArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    let Some(study) = open_read_only(&args.file, &args.device, g)? else { return Ok(Exit::Failure) };
    let results = study.dry()?;
    let targets = match find::candidates(&results, args.phase.as_deref(), args.variant.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            errln!("error: {e}");
            return Ok(Exit::Failure);
        }
    };
    out!("{}", why::explain_all(&study, &results, &targets)?);
    Ok(Exit::Success)
}
