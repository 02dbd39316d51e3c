//! The heat map of a grid phase: the objective over two keys varied jointly, green where it is
//! best, the winner framed, runs without a result greyed with a ✕.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{FONT, FigureError, fig_err, goodness_color};
use crate::report::analysis::PhaseView;
use crate::report::format;
use crate::results::CandidateStatus;
use crate::spec::Value;

/// Distinct values in numeric order (or first-seen order when not numbers).
fn axis_values(vals: impl Iterator<Item = Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for v in vals {
        if !out.iter().any(|o| o.same(&v)) {
            out.push(v);
        }
    }
    if out.iter().all(|v| v.as_f64().is_some()) {
        out.sort_by(|a, b| a.as_f64().unwrap_or_default().total_cmp(&b.as_f64().unwrap_or_default()));
    }
    out
}

fn centered(s: &str, (x, y): (i32, i32), size: u32, color: RGBColor) -> Text<'static, (i32, i32), String> {
    Text::new(s.to_owned(), (x, y), (FONT, size).into_font().color(&color).pos(Pos::new(HPos::Center, VPos::Center)))
}

/// Relative luminance, to pick black or white cell text.
fn dark(c: RGBColor) -> bool {
    0.2126 * f64::from(c.0) + 0.7152 * f64::from(c.1) + 0.0722 * f64::from(c.2) < 130.0
}

/// The heat map, or `None` when the phase is not a grid with at least two cells.
#[allow(clippy::many_single_char_names, clippy::single_match_else)]
pub fn heatmap(view: &PhaseView<'_>) -> Result<Option<String>, FigureError> {
    let Some((a, b)) = view.grid else { return Ok(None) };
    let phase = view.phase;
    let (ka, kb) = (&view.keys[a], &view.keys[b]);
    // Grid members: candidates that set either key; the baseline too if it falls on the grid.
    let setters: Vec<usize> =
        (0..phase.candidates.len()).filter(|&i| ka.own[i].is_some() || kb.own[i].is_some()).collect();
    let xs = axis_values(setters.iter().filter_map(|&i| ka.value[i].clone()));
    let ys = axis_values(setters.iter().filter_map(|&i| kb.value[i].clone()));
    let pos = |i: usize| -> Option<(usize, usize)> {
        let (va, vb) = (ka.value[i].as_ref()?, kb.value[i].as_ref()?);
        Some((xs.iter().position(|x| x.same(va))?, ys.iter().position(|y| y.same(vb))?))
    };
    let mut cells: Vec<(usize, usize, usize)> = Vec::new();
    for i in 0..phase.candidates.len() {
        if let Some((x, y)) = pos(i)
            && (setters.contains(&i) || Some(i) == view.baseline_index)
            && !cells.iter().any(|c| c.0 == x && c.1 == y)
        {
            cells.push((x, y, i));
        }
    }
    if cells.len() < 2 || xs.is_empty() || ys.is_empty() {
        return Ok(None);
    }
    let objective = |i: usize| {
        let c = &phase.candidates[i];
        c.objective.filter(|o| o.is_finite() && c.status == CandidateStatus::Ok)
    };
    let vals: Vec<f64> = cells.iter().filter_map(|c| objective(c.2)).collect();
    let (lo, hi) = vals.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
    let better_high = phase.goal == crate::spec::Goal::Maximize;
    let t = |v: f64| {
        if hi > lo {
            let u = (v - lo) / (hi - lo);
            if better_high { u } else { 1.0 - u }
        } else {
            1.0
        }
    };

    let (nx, ny) = (xs.len() as i32, ys.len() as i32);
    let (left, top) = (150, 70);
    let cw = (620 / nx).clamp(48, 140);
    let ch = (400 / ny).clamp(34, 80);
    let width = (left + cw * nx + 230).max(640) as u32;
    let height = (top + ch * ny + 90) as u32;
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(fig_err)?;
        let title = format!("{}: {} over {} \u{00d7} {}", phase.name, phase.metric, ka.name, kb.name);
        root.draw(&Text::new(
            title,
            (left, 28),
            (FONT, 20).into_font().style(FontStyle::Bold).color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(fig_err)?;
        let grey = RGBColor(238, 238, 238);
        for (yi, _) in ys.iter().enumerate() {
            for (xi, _) in xs.iter().enumerate() {
                let (x0, y0) = (left + cw * xi as i32, top + ch * (ny - 1 - yi as i32));
                let cell = cells.iter().find(|c| c.0 == xi && c.1 == yi);
                let (fill, lines): (RGBColor, Vec<String>) = match cell {
                    None => (grey, vec!["not run".into()]),
                    Some(&(_, _, i)) => {
                        let c = &phase.candidates[i];
                        match objective(i) {
                            Some(v) => {
                                let mut l = vec![format::num(v)];
                                if phase.winner == Some(i) {
                                    l.push("\u{2605} winner".into());
                                } else if Some(i) == view.baseline_index {
                                    l.push("baseline".into());
                                }
                                (goodness_color(t(v)), l)
                            }
                            None => {
                                let what = match c.status {
                                    CandidateStatus::Diverged => "diverged",
                                    CandidateStatus::Failed => "failed",
                                    CandidateStatus::Pruned => "pruned",
                                    _ => "no result",
                                };
                                (RGBColor(190, 190, 190), vec![format!("\u{2715} {what}")])
                            }
                        }
                    }
                };
                root.draw(&Rectangle::new([(x0, y0), (x0 + cw, y0 + ch)], fill.filled())).map_err(fig_err)?;
                root.draw(&Rectangle::new([(x0, y0), (x0 + cw, y0 + ch)], WHITE.stroke_width(2))).map_err(fig_err)?;
                let ink = if dark(fill) { WHITE } else { BLACK };
                let n = lines.len() as i32;
                for (k, line) in lines.iter().enumerate() {
                    let y = y0 + ch / 2 + (k as i32 * 2 - (n - 1)) * 11;
                    root.draw(&centered(line, (x0 + cw / 2, y), 18, ink)).map_err(fig_err)?;
                }
                if cell.is_some_and(|c| phase.winner == Some(c.2)) {
                    root.draw(&Rectangle::new([(x0 + 2, y0 + 2), (x0 + cw - 2, y0 + ch - 2)], BLACK.stroke_width(3)))
                        .map_err(fig_err)?;
                }
            }
        }
        // Axis tick labels at cell centres, and axis names.
        let tick = (FONT, 18).into_font().color(&BLACK);
        for (xi, v) in xs.iter().enumerate() {
            let x = left + cw * xi as i32 + cw / 2;
            root.draw(&Text::new(
                format::ellipsize(&format::value(v), 16),
                (x, top + ch * ny + 16),
                tick.clone().pos(Pos::new(HPos::Center, VPos::Center)),
            ))
            .map_err(fig_err)?;
        }
        for (yi, v) in ys.iter().enumerate() {
            let y = top + ch * (ny - 1 - yi as i32) + ch / 2;
            root.draw(&Text::new(
                format::ellipsize(&format::value(v), 16),
                (left - 10, y),
                tick.clone().pos(Pos::new(HPos::Right, VPos::Center)),
            ))
            .map_err(fig_err)?;
        }
        let axis = (FONT, 18).into_font().color(&BLACK);
        root.draw(&Text::new(
            ka.name.clone(),
            (left + cw * nx / 2, top + ch * ny + 46),
            axis.clone().pos(Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(fig_err)?;
        root.draw(&Text::new(
            kb.name.clone(),
            (22, top + ch * ny / 2),
            axis.transform(FontTransform::Rotate270).pos(Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(fig_err)?;
        // Colour bar: best at the top.
        if lo.is_finite() {
            let (bx, bh) = (left + cw * nx + 40, ch * ny);
            let steps = 40;
            for k in 0..steps {
                let y0 = top + bh * k / steps;
                let y1 = top + bh * (k + 1) / steps;
                let c = goodness_color(1.0 - f64::from(k) / f64::from(steps - 1));
                root.draw(&Rectangle::new([(bx, y0), (bx + 18, y1 + 1)], c.filled())).map_err(fig_err)?;
            }
            let (best, worst) = if better_high { (hi, lo) } else { (lo, hi) };
            let label = (FONT, 18).into_font().color(&BLACK);
            root.draw(&Text::new(
                format!("{} (best)", format::num(best)),
                (bx + 26, top + 6),
                label.clone().pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(fig_err)?;
            root.draw(&Text::new(
                format!("{} (worst)", format::num(worst)),
                (bx + 26, top + bh - 6),
                label.clone().pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(fig_err)?;
            root.draw(&Text::new(
                format::metric_label(&phase.metric),
                (bx + 9, top + bh + 28),
                label.pos(Pos::new(HPos::Center, VPos::Center)),
            ))
            .map_err(fig_err)?;
        }
        root.present().map_err(fig_err)?;
    }
    Ok(Some(buf))
}
