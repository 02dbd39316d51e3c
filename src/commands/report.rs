//! `lrx report FILE`: Markdown and HTML report with SVG figures, from the cache only.

use crate::cli::{GlobalArgs, ReportArgs};
use crate::report::{ReportOptions, write_report};

use super::Exit;
use super::study::open_read_only;

pub(crate) fn run(args: &ReportArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    let Some(study) = open_read_only(&args.file, &args.device, g)? else { return Ok(Exit::Failure) };
    let results = study.dry()?;
    let out = study.out_dir(g.out.as_deref());
    let files = write_report(&results, &out, &ReportOptions::default())?;
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
