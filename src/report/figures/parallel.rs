//! Parallel coordinates over the whole study: one vertical axis per numeric key any phase
//! sweeps (log where some phase spaces it so), and the objective last; each run with a result
//! is a line through its config's values, coloured by its objective on viridis (dark best), the
//! best drawn on top.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{FONT, FigureError, VIRIDIS, fig_err, lerp_anchors};
use crate::report::analysis::{PhaseView, config_value};
use crate::report::format;
use crate::results::{CandidateStatus, StudyResults};
use crate::spec::Goal;

const WIDTH: u32 = 960;
const HEIGHT: u32 = 520;

/// One axis: its name, whether it is drawn on a log scale, and its range.
struct Axis {
    name: String,
    log: bool,
    lo: f64,
    hi: f64,
}

impl Axis {
    /// Where `v` sits on the axis, 0 (bottom) to 1 (top).
    fn t(&self, v: f64) -> f64 {
        let f = |x: f64| if self.log { x.log10() } else { x };
        let (a, b) = (f(self.lo), f(self.hi));
        if b > a { (f(v) - a) / (b - a) } else { 0.5 }
    }
}

/// The figure, or `None` when the study sweeps fewer than two numeric keys or has fewer than
/// three runs with a result.
pub fn parallel(results: &StudyResults, views: &[PhaseView<'_>]) -> Result<Option<String>, FigureError> {
    let mut keys: Vec<(String, bool)> = Vec::new();
    for v in views {
        for k in v.keys.iter().filter(|k| k.numeric) {
            match keys.iter_mut().find(|(n, _)| *n == k.name) {
                Some(entry) => entry.1 |= k.log,
                None => keys.push((k.name.clone(), k.log)),
            }
        }
    }
    if keys.len() < 2 {
        return Ok(None);
    }
    // Each run with a result of the study's metric: its values on every key, and its objective.
    let mut runs: Vec<(Vec<f64>, f64)> = Vec::new();
    let cands = results.phases.iter().filter(|p| p.metric == results.metric).flat_map(|p| p.candidates.iter());
    for c in cands.chain(results.final_run.iter()) {
        let (Some(cfg), Some(o)) = (&c.config, c.objective.filter(|o| o.is_finite())) else { continue };
        if c.status != CandidateStatus::Ok {
            continue;
        }
        let xs: Option<Vec<f64>> =
            keys.iter().map(|(k, _)| config_value(cfg, k).and_then(|v| v.as_f64()).filter(|x| x.is_finite())).collect();
        if let Some(xs) = xs {
            runs.push((xs, o));
        }
    }
    if runs.len() < 3 {
        return Ok(None);
    }
    let mut axes: Vec<Axis> = keys
        .iter()
        .enumerate()
        .map(|(i, (name, log))| {
            let vals = runs.iter().map(|r| r.0[i]);
            let lo = vals.clone().fold(f64::INFINITY, f64::min);
            let hi = vals.fold(f64::NEG_INFINITY, f64::max);
            Axis { name: name.clone(), log: *log && lo > 0.0, lo, hi }
        })
        .collect();
    let (olo, ohi) = runs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), r| (a.min(r.1), b.max(r.1)));
    axes.push(Axis { name: results.metric.clone(), log: false, lo: olo, hi: ohi });
    // Worst first, so the best lines lie on top.
    let best_first = |a: &f64, b: &f64| if results.goal == Goal::Maximize { b.total_cmp(a) } else { a.total_cmp(b) };
    runs.sort_by(|a, b| best_first(&b.1, &a.1));
    let n = runs.len();

    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(fig_err)?;
        let text = |s: &str, (x, y): (i32, i32), size: u32, h: HPos| {
            Text::new(s.to_owned(), (x, y), (FONT, size).into_font().color(&BLACK).pos(Pos::new(h, VPos::Center)))
        };
        root.draw(&Text::new(
            format!("{}: every run across the swept keys", results.study),
            (WIDTH as i32 / 2, 22),
            (FONT, 20).into_font().style(FontStyle::Bold).color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(fig_err)?;
        let (left, right, top, bottom) = (90, WIDTH as i32 - 150, 70, HEIGHT as i32 - 90);
        let step = (right - left) / (axes.len() as i32 - 1);
        let x_of = |i: usize| left + step * i as i32;
        let y_of = |t: f64| bottom - (f64::from(bottom - top) * t.clamp(0.0, 1.0)).round() as i32;
        for (rank, (xs, o)) in runs.iter().enumerate() {
            // Dark (viridis' start) for the best: `rank` counts from the worst.
            let color = lerp_anchors(&VIRIDIS, 1.0 - rank as f64 / (n - 1).max(1) as f64);
            let mut pts: Vec<(i32, i32)> = xs.iter().enumerate().map(|(i, x)| (x_of(i), y_of(axes[i].t(*x)))).collect();
            pts.push((x_of(axes.len() - 1), y_of(axes[axes.len() - 1].t(*o))));
            root.draw(&PathElement::new(pts, color.mix(0.85).stroke_width(2))).map_err(fig_err)?;
        }
        let width = step.max(64) as usize / 8;
        for (i, a) in axes.iter().enumerate() {
            let x = x_of(i);
            root.draw(&PathElement::new(vec![(x, top), (x, bottom)], BLACK.stroke_width(1))).map_err(fig_err)?;
            root.draw(&text(&format::num(a.hi), (x, top - 14), 18, HPos::Center)).map_err(fig_err)?;
            root.draw(&text(&format::num(a.lo), (x, bottom + 16), 18, HPos::Center)).map_err(fig_err)?;
            let name = format!("{}{}", a.name, if a.log { " (log)" } else { "" });
            root.draw(&text(&format::ellipsize(&name, width), (x, bottom + 44), 18, HPos::Center)).map_err(fig_err)?;
        }
        // The colour key: best at the top.
        let bx = right + 50;
        for k in 0..40 {
            let y0 = top + (bottom - top) * k / 40;
            let y1 = top + (bottom - top) * (k + 1) / 40;
            let c = lerp_anchors(&VIRIDIS, f64::from(k) / 39.0);
            root.draw(&Rectangle::new([(bx, y0), (bx + 16, y1 + 1)], c.filled())).map_err(fig_err)?;
        }
        root.draw(&text("best", (bx + 22, top + 6), 18, HPos::Left)).map_err(fig_err)?;
        root.draw(&text("worst", (bx + 22, bottom - 6), 18, HPos::Left)).map_err(fig_err)?;
        root.present().map_err(fig_err)?;
    }
    Ok(Some(buf))
}
