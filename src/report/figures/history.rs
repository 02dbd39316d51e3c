//! The study-wide optimization history (as Optuna draws it): the objective of every candidate
//! in run order across all phases, one colour per phase, with the best-so-far line; runs
//! without a value (diverged, failed) as ✕ at the top.

use plotters::style::RGBColor;

use crate::results::{CandidateResult, CandidateStatus, StudyResults};
use crate::spec::Goal;

use super::{CATEGORICAL, FigureError, HLine, LineChart, Series, StyleKey, render};

/// Whether a candidate has run (so it has a place in the history).
fn ran(c: &CandidateResult) -> bool {
    matches!(
        c.status,
        CandidateStatus::Ok | CandidateStatus::Diverged | CandidateStatus::Failed | CandidateStatus::Pruned
    )
}

/// The history figure; `None` with fewer than two runs to show.
pub fn history(results: &StudyResults) -> Result<Option<String>, FigureError> {
    let better = |a: f64, b: f64| if results.goal == Goal::Maximize { a > b } else { a < b };
    let mut series = Vec::new();
    let mut top_crosses = Vec::new();
    let mut best: Vec<(f64, f64)> = Vec::new();
    let mut n = 0usize;
    let groups = results
        .phases
        .iter()
        .map(|p| (p.name.as_str(), p.metric == results.metric, p.candidates.iter().collect::<Vec<_>>()))
        .chain(results.final_run.iter().map(|f| ("final", true, vec![f])));
    for (g, (name, same_metric, cands)) in groups.enumerate() {
        let color: RGBColor = if name == "final" { super::BASELINE } else { CATEGORICAL[g % CATEGORICAL.len()] };
        let mut points = Vec::new();
        for c in cands.into_iter().filter(|c| ran(c)) {
            n += 1;
            let x = n as f64;
            match c.objective.filter(|o| o.is_finite() && same_metric && c.status != CandidateStatus::Failed) {
                Some(y) if c.status != CandidateStatus::Diverged => {
                    points.push((x, y));
                    let prev = best.last().map(|p| p.1);
                    match prev {
                        Some(b) if !better(y, b) => best.push((x, b)),
                        Some(b) => {
                            best.push((x, b));
                            best.push((x, y));
                        }
                        None => best.push((x, y)),
                    }
                }
                _ => top_crosses.push((x, color)),
            }
        }
        if !points.is_empty() {
            let mut s = Series::line(name, color, points);
            s.line = false;
            s.markers = true;
            s.width = if name == "final" { 4 } else { 3 };
            series.push(s);
        }
    }
    if n < 2 {
        return Ok(None);
    }
    let mut line = Series::line("best so far", RGBColor(200, 30, 30), best);
    line.width = 2;
    series.insert(0, line);
    let mut style_keys = Vec::new();
    if !top_crosses.is_empty() {
        style_keys.push(StyleKey {
            label: "diverged or failed".into(),
            width: 2,
            opacity: 1.0,
            dashed: false,
            marker: false,
            cross: true,
        });
    }
    let hlines: Vec<HLine> = Vec::new();
    let chart = LineChart {
        title: format!("{}: every run in order", results.study),
        x_label: "run (in order: phase by phase, candidates as listed)".into(),
        y_label: crate::report::format::metric_label(&results.metric),
        x_log: false,
        series,
        hlines,
        legend_title: Some("phase".into()),
        style_keys,
        y_range: None,
        top_crosses,
    };
    render(&chart).map(Some)
}
