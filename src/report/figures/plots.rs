//! The report's line charts: loss curves per phase, the objective against the swept value,
//! each candidate's LR schedule, the final run against the root baseline, and `lrx schedule`.

use std::fmt::Write as _;

use plotters::style::RGBColor;

use super::{BASELINE, CATEGORICAL, FigureError, HLine, LineChart, Series, StyleKey, render};
use crate::report::analysis::PhaseView;
use crate::report::format;
use crate::results::{CandidateResult, CandidateStatus, RepeatResult};
use crate::spec::{Schedule, Status};

/// Points of one history metric against the step (`x` none) or another recorded metric
/// (`tokens`, `elapsed`), cut at the divergence step, finite values only.
pub(super) fn curve(r: &RepeatResult, metric: &str, x: Option<&str>) -> Vec<(f64, f64)> {
    curve_steps(r, metric, x).into_iter().map(|(_, x, y)| (x, y)).collect()
}

/// Like [`curve`], each point with its step.
fn curve_steps(r: &RepeatResult, metric: &str, x: Option<&str>) -> Vec<(u64, f64, f64)> {
    let cut = r.diverged_at.unwrap_or(u64::MAX);
    r.history
        .iter()
        .filter(|h| h.step <= cut)
        .filter_map(|h| {
            let at = match x {
                None => h.step as f64,
                Some(m) => *h.metrics.get(m).filter(|v| v.is_finite())?,
            };
            h.metrics.get(metric).filter(|v| v.is_finite()).map(|v| (h.step, at, *v))
        })
        .collect()
}

fn status_suffix(c: &CandidateResult, winner: bool) -> String {
    match c.status {
        _ if winner => " \u{2605} winner".to_owned(),
        CandidateStatus::Diverged => {
            c.diverged_at().map_or_else(|| " (diverged)".to_owned(), |s| format!(" (diverged @ {s})"))
        }
        CandidateStatus::Failed => " (failed)".to_owned(),
        CandidateStatus::Pruned => " (pruned)".to_owned(),
        _ => String::new(),
    }
}

/// The mean and std over repeats of a metric at the steps every repeat logged, placed at the
/// mean of the repeats' `x` there.
pub(super) fn mean_std(reps: &[&RepeatResult], metric: &str, x: Option<&str>) -> Vec<(f64, f64, f64)> {
    let mut at: std::collections::BTreeMap<u64, Vec<(f64, f64)>> = std::collections::BTreeMap::new();
    for r in reps {
        for (step, x, y) in curve_steps(r, metric, x) {
            at.entry(step).or_default().push((x, y));
        }
    }
    at.into_values()
        .filter(|pts| pts.len() == reps.len())
        .map(|pts| {
            let n = pts.len() as f64;
            let x = pts.iter().map(|p| p.0).sum::<f64>() / n;
            let mean = pts.iter().map(|p| p.1).sum::<f64>() / n;
            let var = pts.iter().map(|p| (p.1 - mean) * (p.1 - mean)).sum::<f64>() / (n - 1.0).max(1.0);
            (x, mean, var.sqrt())
        })
        .collect()
}

/// One candidate's train (thin) and val (thick, dotted at evaluations) loss curves in the
/// candidate's colour; repeats that all finished as their mean with a ± one std band, others
/// one curve each; diverged runs dashed and cut with a ✕ (a run that diverged before its
/// first logged step is its ✕ alone, at the top).
fn candidate_curves(
    c: &CandidateResult,
    label: &str,
    color: RGBColor,
    winner: bool,
    x: Option<&str>,
    out: &mut Vec<Series>,
) {
    let finished: Vec<&RepeatResult> =
        c.repeats.iter().filter(|r| matches!(r.status, Some(Status::Ok | Status::Pruned))).collect();
    if c.repeats.len() > 1 && finished.len() == c.repeats.len() {
        let train = mean_std(&finished, "train_loss", x);
        let val = mean_std(&finished, "val_loss", x);
        let start = out.len();
        if !train.is_empty() {
            let mut s = Series::line(label, color, train.iter().map(|p| (p.0, p.1)).collect());
            s.width = if winner { 2 } else { 1 };
            s.opacity = 0.45;
            s.in_legend = val.is_empty();
            out.push(s);
        }
        if !val.is_empty() {
            let mut s = Series::line(label, color, val.iter().map(|p| (p.0, p.1)).collect());
            s.width = if winner { 4 } else { 2 };
            s.markers = true;
            s.band = val.iter().map(|&(x, m, sd)| (x, m - sd, m + sd)).collect();
            out.push(s);
        }
        if out.len() > start {
            return;
        }
    }
    let mut legend = true;
    for (j, r) in c.repeats.iter().enumerate() {
        let start = out.len();
        let diverged = r.status == Some(Status::Diverged);
        let fade = if j == 0 { 1.0 } else { 0.55 };
        let train = curve(r, "train_loss", x);
        let val = curve(r, "val_loss", x);
        let last = val.last().or(train.last()).copied();
        // The ✕ at the divergence step, or against another x at the last point.
        let at = |d: u64| if x.is_none() { d as f64 } else { last.map_or(0.0, |p| p.0) };
        let cross = if diverged { r.diverged_at.map(|d| (at(d), last.map_or(f64::INFINITY, |p| p.1))) } else { None };
        if !train.is_empty() {
            let mut s = Series::line(label, color, train);
            s.width = if winner { 2 } else { 1 };
            s.opacity = 0.45 * fade;
            s.dashed = diverged;
            s.in_legend = legend && val.is_empty();
            legend &= !s.in_legend;
            out.push(s);
        }
        if !val.is_empty() {
            let mut s = Series::line(label, color, val);
            s.width = if winner { 4 } else { 2 };
            s.opacity = fade;
            s.dashed = diverged;
            s.markers = true;
            s.in_legend = legend;
            legend = false;
            out.push(s);
        }
        if let Some(p) = cross {
            if out.len() > start
                && let Some(s) = out.last_mut()
            {
                s.cross = Some(p);
            } else {
                let mut s = Series::line(label, color, Vec::new());
                s.line = false;
                s.cross = Some(p);
                s.in_legend = legend;
                legend = false;
                out.push(s);
            }
        }
    }
}

/// Train and val loss against step for every candidate of a phase, on one chart.
pub fn loss_curves(view: &PhaseView<'_>, colors: &[RGBColor]) -> Result<Option<String>, FigureError> {
    loss_curves_by(view, colors, None)
}

/// Train and val loss of every candidate against `x`: the step (none), or a metric every
/// history row records (`tokens`, `elapsed`).
pub(super) fn loss_curves_by(
    view: &PhaseView<'_>,
    colors: &[RGBColor],
    x: Option<&str>,
) -> Result<Option<String>, FigureError> {
    let phase = view.phase;
    let mut series = Vec::new();
    let mut ok_ys = Vec::new();
    for (i, c) in phase.candidates.iter().enumerate() {
        let winner = phase.winner == Some(i);
        let label = format!("{}{}", view.label(i), status_suffix(c, winner));
        let before = series.len();
        candidate_curves(c, &label, colors[i], winner, x, &mut series);
        if c.status == CandidateStatus::Ok {
            ok_ys.extend(series[before..].iter().flat_map(|s| s.points.iter().copied()));
        }
    }
    if series.is_empty() {
        return Ok(None);
    }
    // Fit the y axis to the runs that finished, so a diverging run leaves the top of the plot
    // instead of flattening every other curve, and to the last three quarters of their steps:
    // the first steps' loss, far above, would squash the final-loss region where candidates
    // differ (those curves enter from the top).
    let last_step = ok_ys.iter().map(|p| p.0).fold(0.0, f64::max);
    let late = ok_ys.iter().filter(|p| p.0 >= 0.25 * last_step).map(|p| p.1);
    let y_range = super::finite_range(late).map(|(lo, hi)| super::pad(lo, hi, 0.05));
    let any_diverged = series.iter().any(|s| s.dashed);
    let mut style_keys = vec![
        StyleKey { label: "train loss".into(), width: 1, opacity: 0.6, dashed: false, marker: false, cross: false },
        StyleKey {
            label: "val loss (dots: evaluations)".into(),
            width: 2,
            opacity: 1.0,
            dashed: false,
            marker: false,
            cross: false,
        },
    ];
    if any_diverged {
        style_keys.push(StyleKey {
            label: "diverged (cut)".into(),
            width: 2,
            opacity: 1.0,
            dashed: true,
            marker: false,
            cross: false,
        });
        style_keys.push(StyleKey {
            label: "divergence step".into(),
            width: 2,
            opacity: 1.0,
            dashed: false,
            marker: false,
            cross: true,
        });
    }
    let x_label = match x {
        None => "step",
        Some("elapsed") => "wall-clock seconds",
        Some(other) => other,
    };
    let chart = LineChart {
        title: format!("{}: loss vs {x_label}", phase.name),
        x_label: x_label.into(),
        y_label: "loss (nats/token)".into(),
        series,
        legend_title: Some("candidate".into()),
        style_keys,
        y_range,
        ..LineChart::default()
    };
    render(&chart).map(Some)
}

/// The objective against each numeric swept key (one line per key), log x when the values are
/// log-spaced; the baseline as a dashed line, the winner as a large dot, runs without a value
/// as ✕ at the top.
pub fn sweep(view: &PhaseView<'_>, colors: &[RGBColor]) -> Result<Option<String>, FigureError> {
    let phase = view.phase;
    let keys: Vec<usize> = (0..view.keys.len())
        .filter(|&k| view.keys[k].numeric && view.grid.is_none_or(|(a, b)| a != k && b != k))
        .collect();
    if keys.is_empty() {
        return Ok(None);
    }
    // Several keys share one axis as multiples of their incoming value, when all are known.
    let base_x = |k: usize| view.baseline_index.and_then(|b| view.keys[k].x(b)).filter(|x| *x > 0.0);
    // A log or relative axis has no place for a value at 0 (`warmup=0.0`) or below: with one,
    // the values are drawn as they are.
    let positive = |k: usize| (0..phase.candidates.len()).all(|i| view.keys[k].x(i).is_none_or(|x| x > 0.0));
    let relative = keys.len() > 1 && keys.iter().all(|&k| base_x(k).is_some() && positive(k));
    let x_log = relative || keys.iter().all(|&k| view.keys[k].log && positive(k));
    let mut series = Vec::new();
    let mut top_crosses = Vec::new();
    let mut n_points = 0;
    for (n, &k) in keys.iter().enumerate() {
        let key = &view.keys[k];
        let scale = if relative { base_x(k).unwrap_or(1.0) } else { 1.0 };
        let members: Vec<usize> = (0..phase.candidates.len())
            .filter(|&i| key.own[i].is_some() || Some(i) == view.baseline_index)
            .filter(|&i| key.x(i).is_some_and(|x| !x_log || x > 0.0))
            .collect();
        let mut line: Vec<(usize, f64, f64)> = Vec::new();
        for &i in &members {
            let c = &phase.candidates[i];
            let x = key.x(i).unwrap_or_default() / scale;
            match c.objective.filter(|o| o.is_finite() && c.status == CandidateStatus::Ok) {
                Some(y) => line.push((i, x, y)),
                None => top_crosses.push((x, colors[i])),
            }
        }
        line.sort_by(|a, b| a.1.total_cmp(&b.1));
        n_points += line.len();
        // Lines are told apart by grey and dash, leaving colour to the candidates' dots.
        let color = if n % 4 < 2 { RGBColor(80, 80, 80) } else { RGBColor(160, 160, 160) };
        let mut label = key.name.clone();
        if relative {
            let _ = write!(label, " (1\u{00d7} = {})", format::num(scale));
        } else if key.log {
            label.push_str(" (log-spaced)");
        }
        let mut s = Series::line(label, color, line.iter().map(|p| (p.1, p.2)).collect());
        s.width = 2;
        s.opacity = 0.8;
        s.dashed = n % 2 == 1;
        s.errors = line
            .iter()
            .filter_map(|&(i, x, y)| phase.candidates[i].metrics_std.get(&phase.metric).map(|sd| (x, y, *sd)))
            .collect();
        series.push(s);
        for &(i, x, y) in &line {
            let mut dot = Series::line(view.label(i), colors[i], vec![(x, y)]);
            dot.line = false;
            dot.markers = true;
            dot.width = if phase.winner == Some(i) { 5 } else { 2 };
            dot.in_legend = false;
            series.push(dot);
        }
    }
    if n_points < 2 {
        return Ok(None);
    }
    let hlines = view
        .baseline
        .and_then(|b| b.objective.filter(|o| o.is_finite()))
        .map(|y| HLine { y, label: format!("baseline ({})", format::num(y)), color: BASELINE })
        .into_iter()
        .collect();
    let mut style_keys =
        vec![StyleKey { label: "winner".into(), width: 5, opacity: 1.0, dashed: false, marker: true, cross: false }];
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
    let x_label = if keys.len() == 1 {
        view.keys[keys[0]].name.clone()
    } else if relative {
        "value \u{00f7} incoming value".into()
    } else {
        "swept value".into()
    };
    let chart = LineChart {
        title: format!(
            "{}: {} vs {}",
            phase.name,
            phase.metric,
            keys.iter().map(|&k| view.keys[k].name.as_str()).collect::<Vec<_>>().join(", ")
        ),
        x_label: format!("{x_label}{}", if x_log { " (log scale)" } else { "" }),
        y_label: format::metric_label(&phase.metric),
        x_log,
        series,
        hlines,
        legend_title: Some(if keys.len() == 1 { "swept key".into() } else { "swept keys".into() }),
        style_keys,
        top_crosses,
        ..LineChart::default()
    };
    render(&chart).map(Some)
}

/// Steps (or progress) and multipliers of a schedule, at most ~150 points, ending at the
/// run's last step.
fn schedule_points(s: &Schedule, total: Option<u64>) -> Vec<(f64, f64)> {
    match total {
        Some(total) if total > 0 => {
            // ~150 points: smooth at figure resolution without pixel-rounding jaggies.
            let stride = (total / 150).max(1);
            let mut steps: Vec<u64> = (0..total).step_by(stride as usize).collect();
            if steps.last() != Some(&(total - 1)) {
                steps.push(total - 1);
            }
            // Steps just before and at each discontinuity are close enough at this density.
            steps.into_iter().map(|st| (st as f64, s.at_step(st, total))).collect()
        }
        _ => (0..=150).map(|i| f64::from(i) / 150.0).map(|t| (t, s.multiplier(t))).collect(),
    }
}

/// The LR multiplier of every candidate of a phase that varies its schedule (seed 003's figure).
pub fn phase_schedules(view: &PhaseView<'_>, colors: &[RGBColor]) -> Result<Option<String>, FigureError> {
    let phase = view.phase;
    let with: Vec<usize> = (0..phase.candidates.len()).filter(|&i| phase.candidates[i].config.is_some()).collect();
    if with.is_empty() {
        return Ok(None);
    }
    let all_steps = with
        .iter()
        .all(|&i| phase.candidates[i].config.as_ref().and_then(crate::spec::RunConfig::total_steps).is_some());
    let mut series = Vec::new();
    for &i in &with {
        let Some(cfg) = phase.candidates[i].config.as_ref() else { continue };
        let total = if all_steps { cfg.total_steps() } else { None };
        let winner = phase.winner == Some(i);
        let mut s = Series::line(
            format!("{}{}", view.label(i), status_suffix(&phase.candidates[i], winner)),
            colors[i],
            schedule_points(&cfg.train.schedule, total),
        );
        s.width = if winner { 4 } else { 2 };
        s.opacity = if winner || Some(i) == view.baseline_index { 1.0 } else { 0.85 };
        series.push(s);
    }
    let top = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).filter(|v| v.is_finite()).fold(1.0f64, f64::max);
    let chart = LineChart {
        title: format!("{}: LR schedule per candidate", phase.name),
        x_label: if all_steps { "step".into() } else { "progress (fraction of the run)".into() },
        y_label: "LR multiplier".into(),
        series,
        legend_title: Some("candidate".into()),
        y_range: Some((0.0, top * 1.06)),
        ..LineChart::default()
    };
    render(&chart).map(Some)
}

/// The final run's loss curves against the root baseline's.
pub fn final_curves(
    baseline: Option<&CandidateResult>,
    final_run: &CandidateResult,
) -> Result<Option<String>, FigureError> {
    let mut series = Vec::new();
    if let Some(b) = baseline {
        candidate_curves(b, "root baseline", BASELINE, false, None, &mut series);
    }
    let n = series.len();
    candidate_curves(
        final_run,
        &format!("final: {}", format::ellipsize(&final_run.variant, 40)),
        CATEGORICAL[0],
        true,
        None,
        &mut series,
    );
    if series.len() == n {
        return Ok(None);
    }
    let chart = LineChart {
        title: "final run vs root baseline: loss vs step".into(),
        x_label: "step".into(),
        y_label: "loss (nats/token)".into(),
        series,
        legend_title: Some("run".into()),
        style_keys: vec![
            StyleKey { label: "train loss".into(), width: 1, opacity: 0.6, dashed: false, marker: false, cross: false },
            StyleKey { label: "val loss".into(), width: 2, opacity: 1.0, dashed: false, marker: false, cross: false },
        ],
        ..LineChart::default()
    };
    render(&chart).map(Some)
}

/// `lrx schedule EXPR --steps N --svg FILE`: one schedule's multiplier against step.
pub fn schedule_svg(title: &str, schedule: &Schedule, steps: u64) -> Result<String, FigureError> {
    let points = schedule_points(schedule, Some(steps.max(1)));
    let top = points.iter().map(|p| p.1).filter(|v| v.is_finite()).fold(1.0f64, f64::max);
    let chart = LineChart {
        title: title.to_owned(),
        x_label: format!("step (of {steps})"),
        y_label: "LR multiplier".into(),
        series: vec![Series::line(format::ellipsize(title, 48), CATEGORICAL[0], points)],
        legend_title: Some("schedule".into()),
        y_range: Some((0.0, top * 1.06)),
        ..LineChart::default()
    };
    render(&chart)
}

/// An LR range test: training loss (thin) and its smoothed curve (thick) against the learning
/// rate on a log axis, the lowest smoothed loss dotted and the pick drawn as a dashed line.
pub fn range_test(view: &PhaseView<'_>) -> Result<Option<String>, FigureError> {
    let Some(c) = &view.phase.range_test else { return Ok(None) };
    let blue = RGBColor(0x1f, 0x77, 0xb4);
    let raw: Vec<(f64, f64)> = c.points.iter().map(|p| (p.lr, p.loss)).collect();
    let smooth: Vec<(f64, f64)> = c.points.iter().map(|p| (p.lr, p.smoothed)).collect();
    let (lo, hi) = c
        .points
        .iter()
        .map(|p| p.loss)
        .filter(|y| y.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
    if !(lo.is_finite() && hi.is_finite()) {
        return Ok(None);
    }
    let mut loss = Series::line("training loss", blue, raw);
    loss.width = 1;
    loss.opacity = 0.5;
    let mut smoothed = Series::line("smoothed (centred mean)", blue, smooth);
    smoothed.width = 3;
    let min = c.points[c.minimum];
    let mut dot = Series::line(
        format!("lowest smoothed loss ({} = {})", c.key, format::num(min.lr)),
        RGBColor(0xd6, 0x27, 0x28),
        vec![(min.lr, min.smoothed)],
    );
    dot.line = false;
    dot.markers = true;
    dot.width = 5;
    let mut pick = Series::line(
        format!("pick: {} = {} ({})", c.key, format::num(c.pick), c.rule),
        RGBColor(0x2c, 0xa0, 0x2c),
        vec![(c.pick, lo), (c.pick, hi)],
    );
    pick.dashed = true;
    let chart = LineChart {
        title: format!("{}: LR range test", view.phase.name),
        x_label: format!("{} (log scale)", c.key),
        y_label: "training loss".into(),
        x_log: true,
        series: vec![loss, smoothed, dot, pick],
        ..LineChart::default()
    };
    render(&chart).map(Some)
}
