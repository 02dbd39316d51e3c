//! How a phase's winner and runner-up trained: the gradient norm, each parameter group's
//! learning rate and the MoE balance loss (`aux_loss`) against step, in panels over one step
//! axis. Only what their histories recorded is drawn: the built-in trainer logs all three, a
//! command trainer's script whatever it writes to `progress.jsonl` (often none of them).

use std::collections::BTreeSet;

use plotters::style::RGBColor;

use super::plots::{curve, mean_std};
use super::{FigureError, LineChart, Series, StyleKey, VIRIDIS, lerp_anchors, render_panels};
use crate::report::analysis::PhaseView;
use crate::report::format;
use crate::results::{CandidateResult, RepeatResult};
use crate::spec::Status;

/// The figure, and what it shows.
pub struct Dynamics {
    pub svg: String,
    /// The winner's and the runner-up's indices among the phase's candidates.
    pub winner: usize,
    pub runner_up: Option<usize>,
    /// What was drawn and what neither run recorded, in words (`gradient norm`, ...).
    pub drawn: Vec<&'static str>,
    pub missing: Vec<&'static str>,
    /// Some curve is a mean over repeats.
    pub averaged: bool,
}

/// A candidate's curve of one history metric against step: the mean over its repeats where
/// several finished (at the steps all logged), else its first repeat that recorded it.
fn metric_curve(c: &CandidateResult, metric: &str) -> (Vec<(f64, f64)>, bool) {
    let finished: Vec<&RepeatResult> =
        c.repeats.iter().filter(|r| matches!(r.status, Some(Status::Ok | Status::Pruned))).collect();
    if finished.len() > 1 && finished.len() == c.repeats.len() {
        let mean: Vec<(f64, f64)> = mean_std(&finished, metric, None).into_iter().map(|p| (p.0, p.1)).collect();
        if !mean.is_empty() {
            return (mean, true);
        }
    }
    (c.repeats.iter().map(|r| curve(r, metric, None)).find(|p| !p.is_empty()).unwrap_or_default(), false)
}

/// The figure for a phase with a winner; `None` when neither run recorded any of the three.
pub fn dynamics(view: &PhaseView<'_>) -> Result<Option<Dynamics>, FigureError> {
    let phase = view.phase;
    let Some(winner) = phase.winner else { return Ok(None) };
    let runner_up = phase.lead().map(|l| l.runner_up);
    let runs: Vec<(usize, bool)> = std::iter::once((winner, true)).chain(runner_up.map(|r| (r, false))).collect();
    let groups: BTreeSet<String> = runs
        .iter()
        .flat_map(|&(i, _)| phase.candidates[i].repeats.iter().flat_map(|r| &r.history))
        .flat_map(|h| h.metrics.keys().filter(|k| k.starts_with("lr_")).cloned())
        .collect();
    let group_color =
        |g: usize| lerp_anchors(&VIRIDIS, if groups.len() > 1 { g as f64 / (groups.len() - 1) as f64 } else { 0.0 });
    let single = RGBColor(59, 82, 139);
    let mut averaged = false;
    let mut line = |i: usize, is_winner: bool, metric: &str, color: RGBColor| -> Option<Series> {
        let (points, mean) = metric_curve(&phase.candidates[i], metric);
        averaged |= mean;
        (!points.is_empty()).then(|| {
            let mut s = Series::line(metric, color, points);
            s.width = if is_winner { 3 } else { 2 };
            s.dashed = !is_winner;
            s.in_legend = false;
            s
        })
    };
    let mut panels = Vec::new();
    let (mut drawn, mut missing) = (Vec::new(), Vec::new());
    let wanted: [(&'static str, &str, bool); 3] = [
        ("gradient norm", "grad_norm", true),
        ("learning rate per parameter group", "lr_", true),
        ("MoE balance loss", "aux_loss", false),
    ];
    for (words, metric, log) in wanted {
        let series: Vec<Series> = if metric == "lr_" {
            groups
                .iter()
                .enumerate()
                .flat_map(|(g, name)| runs.iter().map(move |&(i, w)| (g, name, i, w)))
                .filter_map(|(g, name, i, w)| line(i, w, name, group_color(g)))
                .collect()
        } else {
            runs.iter().filter_map(|&(i, w)| line(i, w, metric, single)).collect()
        };
        if series.is_empty() {
            missing.push(words);
            continue;
        }
        drawn.push(words);
        let y_label = match metric {
            "grad_norm" => "gradient norm (log)",
            "lr_" => "learning rate (log)",
            _ => "aux_loss",
        };
        panels.push(LineChart {
            title: if panels.is_empty() { format!("{}: {words}", phase.name) } else { words.to_owned() },
            x_label: "step".into(),
            y_label: y_label.into(),
            y_log: log,
            series,
            ..LineChart::default()
        });
    }
    if panels.is_empty() {
        return Ok(None);
    }
    // One step axis: named under the last panel only.
    let last = panels.len() - 1;
    for p in &mut panels[..last] {
        p.x_label.clear();
    }
    let lr_drawn = drawn.contains(&"learning rate per parameter group");
    let title = lr_drawn.then(|| "LR: parameter group".to_owned());
    let mut legend = LineChart { legend_title: title, ..LineChart::default() };
    legend.style_keys.push(StyleKey {
        label: format!("\u{2605} {} (winner)", format::ellipsize(&view.label(winner), 40)),
        width: 3,
        opacity: 1.0,
        dashed: false,
        marker: false,
        cross: false,
    });
    if let Some(r) = runner_up {
        legend.style_keys.push(StyleKey {
            label: format!("{} (runner-up)", format::ellipsize(&view.label(r), 40)),
            width: 2,
            opacity: 1.0,
            dashed: true,
            marker: false,
            cross: false,
        });
    }
    if lr_drawn {
        for (g, name) in groups.iter().enumerate() {
            let mut s = Series::line(name.trim_start_matches("lr_"), group_color(g), Vec::new());
            s.width = 3;
            legend.series.push(s);
        }
    }
    let svg = render_panels(&panels, &legend)?;
    Ok(Some(Dynamics { svg, winner, runner_up, drawn, missing, averaged }))
}
