//! A phase's candidate colours: a sweep of one numeric key reads as a continuous viridis scale
//! ordered by value (colour-blind safe, light = large), anything else as distinct categories.

use plotters::style::RGBColor;

use crate::report::analysis::PhaseView;

use super::{BASELINE, VIRIDIS, lerp_anchors, palette};

/// One colour per candidate of the phase; the baseline black.
pub fn phase_palette(view: &PhaseView<'_>) -> Vec<RGBColor> {
    let n = view.phase.candidates.len();
    let fallback = || palette(n, view.baseline_index);
    let [key] = view.keys.as_slice() else { return fallback() };
    if !key.numeric {
        return fallback();
    }
    let others: Vec<usize> = (0..n).filter(|&i| Some(i) != view.baseline_index).collect();
    let Some(values) = others.iter().map(|&i| key.x(i)).collect::<Option<Vec<f64>>>() else { return fallback() };
    let mut distinct = values.clone();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    if distinct.len() < 2 {
        return fallback();
    }
    let mut colors = vec![BASELINE; n];
    for (&i, v) in others.iter().zip(&values) {
        let rank = distinct.iter().position(|d| d.total_cmp(v).is_eq()).unwrap_or(0);
        colors[i] = lerp_anchors(&VIRIDIS, rank as f64 / (distinct.len() - 1) as f64);
    }
    colors
}
