//! `lrx report FILE`: Markdown and HTML report with SVG figures, from the cache only; with
//! `--compare OTHER` or `--compare-rev REV`, a section comparing it with another study (or its
//! older version), the comparison `lrx diff` prints.

use crate::cli::{GlobalArgs, ReportArgs};
use crate::ops::diff;
use crate::report::{ReportOptions, write_report};

use super::Exit;
use super::diff::load_side;
use super::load::Loaded;
use super::study::{open_loaded, open_read_only};

pub(crate) fn run(args: &ReportArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    // The other side first: a study that does not load stops the report before anything is written.
    let other = match (&args.compare, &args.compare_rev) {
        (Some(file), _) => Some(load_side(file, None, g)?),
        (None, Some(rev)) => Some(load_side(&args.file, Some(rev), g)?),
        (None, None) => None,
    };
    let other = match other {
        Some(Some((label, Loaded::Ok(plan)))) => {
            let file = args.compare.as_deref().unwrap_or(&args.file);
            Some((label, open_loaded(*plan, file, &args.device, g)?))
        }
        Some(_) => return Ok(Exit::Failure),
        None => None,
    };
    let Some(study) = open_read_only(&args.file, &args.device, g)? else { return Ok(Exit::Failure) };
    let results = study.dry()?;
    let compare = match &other {
        Some((label, o)) => {
            let theirs = o.dry()?;
            let label_b = args.file.display().to_string();
            Some(diff::diff((label, &o.plan, &theirs), (&label_b, &study.plan, &results)))
        }
        None => None,
    };
    let out = study.out_dir(g.out.as_deref());
    let files = write_report(&results, &out, &ReportOptions { compare, ..ReportOptions::default() })?;
    outln!("{}", files.markdown.display());
    if let Some(html) = &files.html {
        outln!("{}", html.display());
    }
    let c = results.counts();
    noteln!("report of {} cached runs ({} figures); nothing was trained", c.cached, files.figures.len());
    // Runs the study's budget leaves out are not to be trained.
    if c.total > c.cached + c.skipped {
        noteln!(
            "note: {} runs of the study are not cached yet; `lrx run {}` trains them",
            c.total - c.cached - c.skipped,
            args.file.display()
        );
    }
    if c.skipped > 0 {
        noteln!("note: {} runs are skipped by the study's budget", c.skipped);
    }
    Ok(Exit::Success)
}
