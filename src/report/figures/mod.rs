//! SVG figures drawn with plotters: a line-chart description ([`LineChart`]) and its one
//! renderer (axes, log scales, clipping, a legend beside the plot), the candidate palette, and
//! the phase figures built on them (`plots.rs`, `heatmap.rs`) and the study-wide ones
//! (`history.rs`, `parallel.rs`), loss against tokens and time (`against.rs`), and the winner's
//! and runner-up's gradient norm, learning rates and balance loss (`dynamics.rs`), in panels
//! over one step axis ([`render_panels`]).
//!
//! Text is emitted as SVG `<text>` in a generic `sans-serif` family, so no font files are needed.

mod against;
mod axis;
mod dynamics;
mod heatmap;
mod history;
mod parallel;
mod plots;
mod scale;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub use against::{loss_vs_time, loss_vs_tokens};
pub use dynamics::{Dynamics, dynamics};
pub use heatmap::heatmap;
pub use history::{History, history};
pub use parallel::parallel;
pub use plots::{final_curves, loss_curves, phase_schedules, range_test, schedule_svg, sweep};
pub use scale::phase_palette;

use super::format;

/// A figure could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw a figure: {0}")]
pub struct FigureError(pub String);

fn fig_err(e: impl std::fmt::Display) -> FigureError {
    FigureError(e.to_string())
}

pub const FONT: &str = "sans-serif";
const WIDTH: u32 = 960;
const MIN_HEIGHT: u32 = 480;
const LEGEND_ROW: i32 = 22;

/// The baseline is always black.
pub const BASELINE: RGBColor = RGBColor(0, 0, 0);
const GREY: RGBColor = RGBColor(120, 120, 120);

/// d3's category10 without its grey: distinct on white, readable by most colour-blind readers.
pub const CATEGORICAL: [RGBColor; 9] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// Viridis anchors, stopping short of its pale yellow end.
const VIRIDIS: [(f64, f64, f64); 6] = [
    (68.0, 1.0, 84.0),
    (65.0, 68.0, 135.0),
    (42.0, 120.0, 142.0),
    (34.0, 168.0, 132.0),
    (122.0, 209.0, 81.0),
    (190.0, 215.0, 40.0),
];

#[allow(clippy::many_single_char_names)]
fn lerp_anchors(anchors: &[(f64, f64, f64)], t: f64) -> RGBColor {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let pos = t * (anchors.len() - 1) as f64;
    let i = (pos.floor() as usize).min(anchors.len() - 2);
    let f = pos - i as f64;
    let (a, b) = (anchors[i], anchors[i + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// One colour per candidate, fixed by the candidate's position in the phase: black for the
/// baseline, then category10 colours, or a viridis ramp when there are more than nine (a sweep
/// listed in order then reads as a gradient).
pub fn palette(n: usize, baseline: Option<usize>) -> Vec<RGBColor> {
    let others = n - usize::from(baseline.is_some_and(|b| b < n));
    let mut k = 0;
    (0..n)
        .map(|i| {
            if Some(i) == baseline {
                return BASELINE;
            }
            let c = if others <= CATEGORICAL.len() {
                CATEGORICAL[k % CATEGORICAL.len()]
            } else {
                lerp_anchors(&VIRIDIS, k as f64 / (others - 1) as f64)
            };
            k += 1;
            c
        })
        .collect()
}

/// A red-yellow-green ramp for heat maps: 0 worst (red), 1 best (green).
pub fn goodness_color(t: f64) -> RGBColor {
    lerp_anchors(
        &[
            (215.0, 48.0, 39.0),
            (252.0, 141.0, 89.0),
            (254.0, 224.0, 139.0),
            (217.0, 239.0, 139.0),
            (145.0, 207.0, 96.0),
            (26.0, 152.0, 80.0),
        ],
        t,
    )
}

/// `#rrggbb`, as plotters writes colours into SVG.
pub fn hex(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// One line (or set of markers) on a chart.
#[derive(Clone, Debug)]
#[allow(clippy::struct_excessive_bools)]
pub struct Series {
    pub label: String,
    pub color: RGBColor,
    pub width: u32,
    pub opacity: f64,
    pub dashed: bool,
    /// Dots at every point (evaluations, sweep points).
    pub markers: bool,
    /// Connect the points with a line.
    pub line: bool,
    pub points: Vec<(f64, f64)>,
    /// Vertical error bars (± std) at some points.
    pub errors: Vec<(f64, f64, f64)>,
    /// A ✕ where the run diverged.
    pub cross: Option<(f64, f64)>,
    /// A shaded band (x, low, high): ± one std over repeats.
    pub band: Vec<(f64, f64, f64)>,
    pub in_legend: bool,
}

impl Series {
    pub fn line(label: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Series {
        Series {
            label: label.into(),
            color,
            width: 2,
            opacity: 1.0,
            dashed: false,
            markers: false,
            line: true,
            points,
            errors: Vec::new(),
            cross: None,
            band: Vec::new(),
            in_legend: true,
        }
    }
}

/// A horizontal reference line (the baseline's objective).
#[derive(Clone, Debug)]
pub struct HLine {
    pub y: f64,
    pub label: String,
    pub color: RGBColor,
}

/// A legend entry that explains a line style rather than a candidate.
#[derive(Clone, Debug)]
pub struct StyleKey {
    pub label: String,
    pub width: u32,
    pub opacity: f64,
    pub dashed: bool,
    pub marker: bool,
    pub cross: bool,
}

/// Everything a line chart shows.
#[derive(Clone, Debug, Default)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_log: bool,
    /// A log y axis (values at or below zero are left out).
    pub y_log: bool,
    pub series: Vec<Series>,
    pub hlines: Vec<HLine>,
    pub legend_title: Option<String>,
    pub style_keys: Vec<StyleKey>,
    /// Fixed y range (else fitted to the data).
    pub y_range: Option<(f64, f64)>,
    /// Markers drawn at the top edge for candidates without a value (diverged, failed).
    pub top_crosses: Vec<(f64, RGBColor)>,
}

fn finite_range(vals: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) =
        vals.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    (lo <= hi).then_some((lo, hi))
}

fn pad(lo: f64, hi: f64, frac: f64) -> (f64, f64) {
    if hi > lo {
        let d = (hi - lo) * frac;
        (lo - d, hi + d)
    } else {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - d, hi + d)
    }
}

/// Cuts a polyline to a rectangle (in the chart's possibly log-scaled x): pieces that stay
/// inside, with points interpolated where the line leaves or enters.
pub fn clip(points: &[(f64, f64)], x: (f64, f64), y: (f64, f64), (x_log, y_log): (bool, bool)) -> Vec<Vec<(f64, f64)>> {
    let to_axis = |log: bool| move |v: f64| if log { v.log10() } else { v };
    let from_axis = |log: bool| move |v: f64| if log { 10f64.powf(v) } else { v };
    let (fx, fy, gx, gy) = (to_axis(x_log), to_axis(y_log), from_axis(x_log), from_axis(y_log));
    let (x0, x1) = (fx(x.0), fx(x.1));
    let y = (fy(y.0), fy(y.1));
    let inside = |p: (f64, f64)| p.0 >= x0 && p.0 <= x1 && p.1 >= y.0 && p.1 <= y.1;
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    let pts: Vec<(f64, f64)> = points.iter().map(|&(a, b)| (fx(a), fy(b))).collect();
    let mut flush = |cur: &mut Vec<(f64, f64)>| {
        if !cur.is_empty() {
            out.push(std::mem::take(cur).into_iter().map(|(a, b)| (gx(a), gy(b))).collect());
        }
    };
    for (i, &p) in pts.iter().enumerate() {
        if !(p.0.is_finite() && p.1.is_finite()) {
            flush(&mut cur);
            continue;
        }
        let prev = if i > 0 { Some(pts[i - 1]).filter(|q| q.0.is_finite() && q.1.is_finite()) } else { None };
        match (prev.is_some_and(inside), inside(p), prev) {
            (_, true, Some(q)) if !inside(q) => {
                cur.push(edge(q, p, y));
                cur.push(p);
            }
            (_, true, _) => cur.push(p),
            (true, false, Some(q)) => {
                cur.push(edge(p, q, y));
                flush(&mut cur);
            }
            _ => flush(&mut cur),
        }
    }
    flush(&mut cur);
    out
}

/// Where the segment from `outside` to `inside` crosses the y band's edge.
fn edge(outside: (f64, f64), inside: (f64, f64), y: (f64, f64)) -> (f64, f64) {
    let target = if outside.1 > y.1 {
        y.1
    } else if outside.1 < y.0 {
        y.0
    } else {
        return outside;
    };
    let t = (target - inside.1) / (outside.1 - inside.1);
    (inside.0 + (outside.0 - inside.0) * t, target)
}

fn legend_width(chart: &LineChart) -> u32 {
    let longest = chart
        .series
        .iter()
        .filter(|s| s.in_legend)
        .map(|s| s.label.chars().count())
        .chain(chart.hlines.iter().map(|h| h.label.chars().count()))
        .chain(chart.style_keys.iter().map(|k| k.label.chars().count()))
        .chain(chart.legend_title.iter().map(|t| t.chars().count()))
        .max()
        .unwrap_or(0);
    (longest as u32 * 9 + 56).clamp(150, 500)
}

fn legend_rows(chart: &LineChart) -> usize {
    chart.series.iter().filter(|s| s.in_legend).count()
        + chart.hlines.len()
        + chart.style_keys.len()
        + usize::from(chart.legend_title.is_some())
        + usize::from(!chart.style_keys.is_empty())
}

/// Renders a line chart to an SVG document.
pub fn render(chart: &LineChart) -> Result<String, FigureError> {
    render_panels(std::slice::from_ref(chart), chart)
}

/// Height of each panel of a figure of several.
const PANEL_HEIGHT: u32 = 330;

/// Renders charts stacked over one shared x range (each with its own y axis), with the legend
/// of `legend` beside them.
pub fn render_panels(panels: &[LineChart], legend: &LineChart) -> Result<String, FigureError> {
    let n = panels.len().max(1) as u32;
    let panels_height = if n == 1 { MIN_HEIGHT } else { PANEL_HEIGHT * n };
    let height = panels_height.max(legend_rows(legend) as u32 * LEGEND_ROW as u32 + 90);
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(fig_err)?;
        let lw = legend_width(legend);
        let (plot, legend_area) = root.split_horizontally(WIDTH - lw);
        let x_log = panels.iter().all(|c| c.x_log);
        let xs = panels.iter().flat_map(|c| {
            c.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).chain(c.top_crosses.iter().map(|c| c.0))
        });
        let x = finite_range(xs.filter(|x| !x_log || *x > 0.0)).unwrap_or((0.0, 1.0));
        for (chart, area) in panels.iter().zip(plot.split_evenly((n as usize, 1))) {
            draw_chart(&area, chart, x, x_log)?;
        }
        draw_legend(&legend_area, legend)?;
        root.present().map_err(fig_err)?;
    }
    Ok(buf)
}

/// One chart into `area`, over the data's x range `(x_lo, x_hi)`.
fn draw_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &LineChart,
    (x_lo, x_hi): (f64, f64),
    x_log: bool,
) -> Result<(), FigureError>
where
    DB::ErrorType: 'static,
{
    let y_data = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1).chain(s.errors.iter().flat_map(|e| [e.1 - e.2, e.1 + e.2])));
    let y_data = y_data.chain(chart.hlines.iter().map(|h| h.y)).filter(|y| !chart.y_log || *y > 0.0);
    let y_log = chart.y_log && chart.y_range.is_none_or(|r| r.0 > 0.0);
    let (y_lo, y_hi) = chart.y_range.or_else(|| finite_range(y_data)).unwrap_or((0.0, 1.0));
    let (y_lo, y_hi) = match (chart.y_range.is_some(), y_log) {
        (true, _) => (y_lo, y_hi),
        // 4 % of the decades shown on either side, at least a twentieth of a decade.
        (false, true) => {
            let pad = (0.04 * (y_hi / y_lo).log10()).max(0.05);
            (y_lo / 10f64.powf(pad), y_hi * 10f64.powf(pad))
        }
        (false, false) => pad(y_lo, y_hi, 0.06),
    };
    let y_log = y_log && y_lo > 0.0;
    let (a, b) = if x_log && x_lo > 0.0 { (x_lo / 1.25, x_hi * 1.25) } else { pad(x_lo, x_hi, 0.03) };
    let mut c = chart.clone();
    c.x_log = x_log && x_lo > 0.0;
    c.y_log = y_log;
    let (xr, yr) = ((a, b), (y_lo, y_hi));
    match (c.x_log, y_log) {
        (true, true) => draw_plot(area, &c, axis::LogAxis::new(a, b), axis::LogAxis::new(y_lo, y_hi), xr, yr),
        (true, false) => draw_plot(area, &c, axis::LogAxis::new(a, b), y_lo..y_hi, xr, yr),
        (false, true) => draw_plot(area, &c, a..b, axis::LogAxis::new(y_lo, y_hi), xr, yr),
        (false, false) => draw_plot(area, &c, a..b, y_lo..y_hi, xr, yr),
    }
}

fn tick_label(v: f64) -> String {
    // Ticks sit on round values; trim float noise such as 0.30000000000000004.
    format::num((v * 1e9).round() / 1e9)
}

fn draw_plot<DB: DrawingBackend, X, Y>(
    area: &DrawingArea<DB, Shift>,
    chart: &LineChart,
    x: X,
    y: Y,
    xr: (f64, f64),
    yr: (f64, f64),
) -> Result<(), FigureError>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
    DB::ErrorType: 'static,
{
    let mut ctx = ChartBuilder::on(area)
        .caption(&chart.title, (FONT, 20).into_font().style(FontStyle::Bold))
        .margin(12)
        .x_label_area_size(52)
        .y_label_area_size(78)
        .build_cartesian_2d(x, y)
        .map_err(fig_err)?;
    ctx.configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&|v| tick_label(*v))
        .x_labels(8)
        .y_labels(8)
        .label_style((FONT, 18))
        .axis_desc_style((FONT, 19))
        .bold_line_style(RGBColor(0, 0, 0).mix(0.12))
        .light_line_style(RGBColor(0, 0, 0).mix(0.04))
        .draw()
        .map_err(fig_err)?;
    for h in &chart.hlines {
        let pts = vec![(xr.0, h.y), (xr.1, h.y)];
        if h.y >= yr.0 && h.y <= yr.1 {
            ctx.draw_series(DashedLineSeries::new(pts, 8, 5, h.color.mix(0.8).stroke_width(1))).map_err(fig_err)?;
        }
    }
    for s in chart.series.iter().filter(|s| s.band.len() > 1) {
        let inside = |y: f64| y.clamp(yr.0, yr.1);
        let band = s.band.iter().filter(|b| b.1.is_finite() && b.2.is_finite());
        let mut outline: Vec<(f64, f64)> = band.clone().map(|b| (b.0, inside(b.2))).collect();
        outline.extend(band.rev().map(|b| (b.0, inside(b.1))));
        ctx.draw_series(std::iter::once(Polygon::new(outline, s.color.mix(0.16).filled()))).map_err(fig_err)?;
    }
    for s in &chart.series {
        let style = s.color.mix(s.opacity).stroke_width(s.width);
        if s.line {
            for piece in clip(&s.points, xr, yr, (chart.x_log, chart.y_log)) {
                if s.dashed {
                    ctx.draw_series(DashedLineSeries::new(piece, 7, 4, style)).map_err(fig_err)?;
                } else {
                    ctx.draw_series(LineSeries::new(piece, style)).map_err(fig_err)?;
                }
            }
        }
        for &(px, py, sd) in &s.errors {
            let (a, b) = ((py - sd).max(yr.0), (py + sd).min(yr.1));
            if sd.is_finite() && sd > 0.0 && a < b {
                ctx.draw_series(std::iter::once(PathElement::new(
                    vec![(px, a), (px, b)],
                    s.color.mix(s.opacity).stroke_width(1),
                )))
                .map_err(fig_err)?;
            }
        }
        if s.markers {
            let inside = s.points.iter().copied().filter(|p| p.0.is_finite() && p.1 >= yr.0 && p.1 <= yr.1);
            let r = if s.line { s.width + 1 } else { s.width + 2 };
            ctx.draw_series(inside.map(|p| Circle::new(p, r, s.color.mix(s.opacity).filled()))).map_err(fig_err)?;
        }
        if let Some((cx, cy)) = s.cross {
            let cy = cy.clamp(yr.0, yr.1);
            ctx.draw_series(std::iter::once(Cross::new((cx, cy), 6, s.color.stroke_width(3)))).map_err(fig_err)?;
        }
    }
    for &(cx, color) in &chart.top_crosses {
        let cy = yr.1 - (yr.1 - yr.0) * 0.03;
        ctx.draw_series(std::iter::once(Cross::new((cx, cy), 6, color.stroke_width(3)))).map_err(fig_err)?;
    }
    Ok(())
}

fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, chart: &LineChart) -> Result<(), FigureError>
where
    DB::ErrorType: 'static,
{
    let font = (FONT, 18).into_font();
    let mut y = 56;
    let x0 = 10;
    let text = |area: &DrawingArea<DB, Shift>, s: &str, x: i32, y: i32, f: FontDesc<'_>| {
        area.draw(&Text::new(s.to_owned(), (x, y), f.color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center))))
            .map_err(fig_err)
    };
    if let Some(t) = &chart.legend_title {
        text(area, t, x0, y, (FONT, 18).into_font().style(FontStyle::Bold))?;
        y += LEGEND_ROW + 2;
    }
    for s in chart.series.iter().filter(|s| s.in_legend) {
        sample(
            area,
            (x0, y),
            s.color,
            s.width,
            s.opacity,
            s.dashed,
            s.markers && !s.line,
            s.cross.is_some() && !s.line,
        )?;
        if s.markers && s.line {
            area.draw(&Circle::new((x0 + 14, y), s.width + 1, s.color.filled())).map_err(fig_err)?;
        }
        text(area, &format::ellipsize(&s.label, 56), x0 + 36, y, font.clone())?;
        y += LEGEND_ROW;
    }
    for h in &chart.hlines {
        sample(area, (x0, y), h.color, 1, 0.8, true, false, false)?;
        text(area, &h.label, x0 + 36, y, font.clone())?;
        y += LEGEND_ROW;
    }
    if !chart.style_keys.is_empty() {
        y += LEGEND_ROW / 2;
        for k in &chart.style_keys {
            sample(area, (x0, y), GREY, k.width, k.opacity, k.dashed, k.marker, k.cross)?;
            text(area, &k.label, x0 + 36, y, font.clone())?;
            y += LEGEND_ROW;
        }
    }
    Ok(())
}

/// A legend's line sample: 28 pixels of the series' style.
#[allow(clippy::too_many_arguments, clippy::fn_params_excessive_bools)]
fn sample<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    color: RGBColor,
    width: u32,
    opacity: f64,
    dashed: bool,
    marker_only: bool,
    cross_only: bool,
) -> Result<(), FigureError>
where
    DB::ErrorType: 'static,
{
    let style = color.mix(opacity).stroke_width(width);
    if cross_only {
        return area.draw(&Cross::new((x + 14, y), 5, color.stroke_width(3))).map_err(fig_err);
    }
    if marker_only {
        return area.draw(&Circle::new((x + 14, y), width + 2, color.mix(opacity).filled())).map_err(fig_err);
    }
    if dashed {
        for i in 0..3 {
            area.draw(&PathElement::new(vec![(x + i * 10, y), (x + i * 10 + 6, y)], style)).map_err(fig_err)?;
        }
        Ok(())
    } else {
        area.draw(&PathElement::new(vec![(x, y), (x + 28, y)], style)).map_err(fig_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_is_black_for_the_baseline_and_distinct_otherwise() {
        let p = palette(5, Some(0));
        assert_eq!(p[0], BASELINE);
        assert_eq!(p[1], CATEGORICAL[0]);
        assert_eq!(p[4], CATEGORICAL[3]);
        let many = palette(27, Some(0));
        assert_eq!(many.len(), 27);
        let distinct: std::collections::HashSet<String> = many.iter().map(|c| hex(*c)).collect();
        assert_eq!(distinct.len(), 27);
        assert!(palette(0, None).is_empty());
        assert_eq!(palette(1, Some(0)), vec![BASELINE]);
    }

    #[test]
    fn clipping_cuts_lines_where_they_leave_the_plot() {
        let pts = [(0.0, 1.0), (1.0, 2.0), (2.0, 10.0), (3.0, 2.0), (4.0, f64::NAN), (5.0, 1.0)];
        let pieces = clip(&pts, (0.0, 5.0), (0.0, 3.0), (false, false));
        assert_eq!(pieces.len(), 3, "{pieces:?}");
        assert_eq!(pieces[0].len(), 3);
        assert!((pieces[0][2].1 - 3.0).abs() < 1e-12);
        assert!((pieces[0][2].0 - 1.125).abs() < 1e-12);
        assert_eq!(pieces[1], vec![(2.875, 3.0), (3.0, 2.0)]);
        assert_eq!(pieces[2], vec![(5.0, 1.0)]);
    }

    #[test]
    fn a_chart_with_no_data_still_renders() {
        let svg = render(&LineChart { title: "empty".into(), ..LineChart::default() }).unwrap();
        assert!(svg.starts_with("<svg"));
        roxmltree::Document::parse(&svg).unwrap();
    }
}
