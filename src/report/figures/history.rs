//! The study-wide optimization history (as Optuna draws it): the objective of every candidate
//! in the order the runs finished, across all phases, one colour per phase, with the
//! best-so-far line; runs without a value (diverged, failed) as ✕ at the top.

use plotters::style::RGBColor;

use crate::results::{CandidateResult, CandidateStatus, StudyResults};
use crate::spec::Goal;

use super::{CATEGORICAL, FigureError, LineChart, Series, StyleKey, render};

/// Whether a candidate has run (so it has a place in the history).
fn ran(c: &CandidateResult) -> bool {
    matches!(
        c.status,
        CandidateStatus::Ok | CandidateStatus::Diverged | CandidateStatus::Failed | CandidateStatus::Pruned
    )
}

/// When a candidate finished: its last repeat's finish time (a failed repeat's, its recorded
/// attempt's), `None` when some repeat has none.
fn finished_at(c: &CandidateResult) -> Option<u64> {
    c.repeats
        .iter()
        .map(|r| r.finished_at.or_else(|| r.failure.as_ref().map(|a| a.when.saturating_mul(1000))))
        .try_fold(None, |last: Option<u64>, t| t.map(|t| Some(last.map_or(t, |l| l.max(t)))))
        .flatten()
}

/// The runs the history shows, in the order they finished: (group, candidate) pairs into
/// `groups`, and how many had no finish time (each of those follows the run listed before it).
fn run_order(groups: &[(&str, bool, Vec<&CandidateResult>)]) -> (Vec<(usize, usize)>, usize) {
    let mut runs = Vec::new();
    let mut untimed = 0;
    let mut before = 0u64;
    for (g, (_, _, cands)) in groups.iter().enumerate() {
        for (i, c) in cands.iter().enumerate().filter(|(_, c)| ran(c)) {
            let t = finished_at(c);
            untimed += usize::from(t.is_none());
            before = t.unwrap_or(before);
            runs.push((before, (g, i)));
        }
    }
    // Stable: runs that finished in the same millisecond (or share a run) stay as listed.
    runs.sort_by_key(|r| r.0);
    (runs.into_iter().map(|r| r.1).collect(), untimed)
}

/// The study-wide history: its SVG, and how many runs had no recorded finish time.
pub struct History {
    pub svg: String,
    pub runs: usize,
    pub untimed: usize,
}

/// The history figure; `None` with fewer than two runs to show.
pub fn history(results: &StudyResults) -> Result<Option<History>, FigureError> {
    let better = |a: f64, b: f64| if results.goal == Goal::Maximize { a > b } else { a < b };
    let groups: Vec<(&str, bool, Vec<&CandidateResult>)> = results
        .phases
        .iter()
        .map(|p| (p.name.as_str(), p.metric == results.metric, p.candidates.iter().collect::<Vec<_>>()))
        .chain(results.final_run.iter().map(|f| ("final", true, vec![f])))
        .collect();
    let (order, untimed) = run_order(&groups);
    if order.len() < 2 {
        return Ok(None);
    }
    let color = |g: usize| -> RGBColor {
        if groups[g].0 == "final" { super::BASELINE } else { CATEGORICAL[g % CATEGORICAL.len()] }
    };
    let mut points: Vec<Vec<(f64, f64)>> = vec![Vec::new(); groups.len()];
    let mut top_crosses = Vec::new();
    let mut best: Vec<(f64, f64)> = Vec::new();
    for (n, &(g, i)) in order.iter().enumerate() {
        let (_, same_metric, cands) = &groups[g];
        let c = cands[i];
        let x = (n + 1) as f64;
        let drawn = !matches!(c.status, CandidateStatus::Failed | CandidateStatus::Diverged);
        match c.objective.filter(|o| o.is_finite() && *same_metric && drawn) {
            Some(y) => {
                points[g].push((x, y));
                match best.last().map(|p| p.1) {
                    Some(b) if !better(y, b) => best.push((x, b)),
                    Some(b) => {
                        best.push((x, b));
                        best.push((x, y));
                    }
                    None => best.push((x, y)),
                }
            }
            None => top_crosses.push((x, color(g))),
        }
    }
    let mut series = vec![Series::line("best so far", RGBColor(200, 30, 30), best)];
    for (g, pts) in points.into_iter().enumerate().filter(|(_, p)| !p.is_empty()) {
        let name = groups[g].0;
        let mut s = Series::line(name, color(g), pts);
        s.line = false;
        s.markers = true;
        s.width = if name == "final" { 4 } else { 3 };
        series.push(s);
    }
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
    let x_label = if untimed == order.len() {
        "run (in listed order: phase by phase, candidates as listed)"
    } else {
        "run (in the order they finished)"
    };
    let chart = LineChart {
        title: format!("{}: every run in order", results.study),
        x_label: x_label.into(),
        y_label: crate::report::format::metric_label(&results.metric),
        series,
        legend_title: Some("phase".into()),
        style_keys,
        top_crosses,
        ..LineChart::default()
    };
    Ok(Some(History { svg: render(&chart)?, runs: order.len(), untimed }))
}
