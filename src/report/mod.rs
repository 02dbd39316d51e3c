//! Reports a researcher would otherwise make by hand, from a study's results alone (the
//! report never trains): `report.md` and a self-contained `report.html` with SVG figures, and
//! the terminal tables of `lrx show`.
//!
//! ```text
//! report.md              summary, one section per phase, final run, correlations, failures
//! report.html            the same, one file: figures inline, sortable tables, no network
//! figures/<phase>-loss.svg       train and val loss vs step, every candidate
//! figures/<phase>-sweep.svg      the objective vs each numeric swept key
//! figures/<phase>-heatmap.svg    the objective over a grid's two keys
//! figures/<phase>-schedule.svg   each candidate's LR multiplier, when the phase varies it
//! figures/final-loss.svg         the final run against the root baseline
//! ```
//!
//! Entry points: [`write_report`] and [`table::render_tables`].

pub mod analysis;
pub mod doc;
pub mod figures;
pub mod format;
pub mod html;
pub mod markdown;
mod sections;
pub mod stats;
pub mod table;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::exec::results::StudyResults;

pub use figures::FigureError;
pub use table::{TableOptions, render_tables};

use doc::{Block, Doc, Figure, Text};

/// What to write.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// Also write `report.html`.
    pub html: bool,
    /// Draw figures (`figures/*.svg`).
    pub figures: bool,
    /// The report's title; default `Study <name>`.
    pub title: Option<String>,
}

impl Default for ReportOptions {
    fn default() -> ReportOptions {
        ReportOptions { html: true, figures: true, title: None }
    }
}

/// The files a report wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportFiles {
    pub markdown: PathBuf,
    pub html: Option<PathBuf>,
    pub figures: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write `{}`: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Figure(#[from] FigureError),
}

/// A file-name-safe form of a phase name.
fn slug(name: &str) -> String {
    let s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    if s.is_empty() { "phase".to_owned() } else { s }
}

/// Builds the report document (figures included as SVG text) without writing anything.
pub fn build(results: &StudyResults, opts: &ReportOptions) -> Result<Doc, FigureError> {
    let views = analysis::analyse(results);
    let mut doc = Doc { title: opts.title.clone().unwrap_or_else(|| format!("Study {}", results.study)), blocks: Vec::new() };
    if results.interrupted {
        doc.push(Block::Note(Text::new().strong("Interrupted:").plain(" ").plain("the study was stopped before it finished; some results are missing.")));
    }
    sections::summary(&mut doc, results, &views, analysis::compute(results));
    let mut used = std::collections::HashSet::new();
    for v in &views {
        sections::phase(&mut doc, v);
        if !opts.figures {
            continue;
        }
        let mut stem = slug(&v.phase.name);
        while !used.insert(stem.clone()) {
            stem.push('_');
        }
        let colors = figures::palette(v.phase.candidates.len(), v.baseline_index);
        let mut add = |kind: &str, svg: Option<String>, caption: Text| {
            if let Some(svg) = svg {
                doc.push(Block::Figure(Figure { path: format!("figures/{stem}-{kind}.svg"), svg, caption }));
            }
        };
        let name = Text::new().code(&v.phase.name);
        add(
            "loss",
            figures::loss_curves(v, &colors)?,
            Text::new().plain("Phase ").code(&v.phase.name).plain(": train loss (thin) and val loss (thick, dots at evaluations) against step. The baseline is black, the winner thickest; diverged runs are dashed and cut at the ✕."),
        );
        add(
            "sweep",
            figures::sweep(v, &colors)?,
            name.clone().plain(": the objective against the swept value; the dashed line is the baseline, the large dot the winner, ✕ runs without a result; bars are ± one std over repeats."),
        );
        add(
            "heatmap",
            figures::heatmap(v)?,
            name.clone().plain(": the objective over the grid, green best; the framed cell is the winner."),
        );
        if v.varies_schedule {
            add("schedule", figures::phase_schedules(v, &colors)?, name.clone().plain(": each candidate's LR multiplier over its run."));
        }
    }
    sections::final_run(&mut doc, results, &views);
    if opts.figures
        && let Some(f) = &results.final_run
        && let Some(svg) = figures::final_curves(analysis::root_baseline(&views).map(|(_, b)| b), f)?
    {
        doc.push(Block::Figure(Figure {
            path: "figures/final-loss.svg".into(),
            svg,
            caption: Text::new().plain("The final run (blue) against the root baseline (black): train loss thin, val loss thick."),
        }));
    }
    let corr: Vec<_> = views.iter().flat_map(analysis::correlations).collect();
    sections::correlations(&mut doc, &corr);
    sections::failures(&mut doc, &analysis::failures(results));
    Ok(doc)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let err = |source| ReportError::Write { path: path.to_owned(), source };
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    fs::write(&tmp, bytes).map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

/// Writes `report.md`, `report.html` and `figures/*.svg` into `out` (created if needed).
pub fn write_report(results: &StudyResults, out: &Path, opts: &ReportOptions) -> Result<ReportFiles, ReportError> {
    let doc = build(results, opts)?;
    fs::create_dir_all(out).map_err(|source| ReportError::Write { path: out.to_owned(), source })?;
    let mut figures = Vec::new();
    for f in doc.figures() {
        let path = out.join(&f.path);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|source| ReportError::Write { path: dir.to_owned(), source })?;
        }
        write(&path, f.svg.as_bytes())?;
        figures.push(path);
    }
    let markdown = out.join("report.md");
    write(&markdown, markdown::render(&doc).as_bytes())?;
    let html = if opts.html {
        let path = out.join("report.html");
        write(&path, html::render(&doc).as_bytes())?;
        Some(path)
    } else {
        None
    };
    Ok(ReportFiles { markdown, html, figures })
}
