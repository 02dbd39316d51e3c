//! Compact terminal tables of a study's results for `lrx show`: per phase, its candidates with
//! their swept values, objective (± std over repeats), key metrics, status, cache hit,
//! throughput and time; the winner marked `*` (and bold green with colour on).

use std::cmp::Ordering;
use std::fmt::Write as _;

use comfy_table::{Attribute, Cell, CellAlignment, Color, ContentArrangement, Table, TableComponent, presets};

use crate::results::{CandidateResult, CandidateStatus, StudyResults};
use crate::spec::Goal;

use super::analysis::{self, PhaseView};
use super::format::{self, num};
use super::sections::{objective_text, status_text};

/// How `lrx show` lays its tables out.
#[derive(Clone, Debug, Default)]
pub struct TableOptions {
    /// Sort candidates by this column: `objective` (the default, best first), a metric
    /// (best first), a swept key (ascending), `variant`, `status`, `tokens_per_sec`, `time`.
    pub sort: Option<String>,
    /// Only the best K candidates of each phase (by objective), then sorted by `sort`.
    pub top: Option<usize>,
    /// Bold and colour the winner, dim runs that diverged or failed.
    pub color: bool,
    /// Only this phase (`final` for the final run).
    pub phase: Option<String>,
}

/// Metrics shown besides the objective, when present.
const KEY_METRICS: [&str; 5] = ["val_loss", "val_accuracy", "val_ppl", "val_bpb", "train_loss"];
const FIXED_COLUMNS: [&str; 6] = ["objective", "variant", "status", "tokens_per_sec", "time", "cached"];

impl TableOptions {
    /// Checks `phase` and `sort` against the results; the message suggests a near name.
    pub fn check(&self, results: &StudyResults) -> Result<(), String> {
        if let Some(p) = &self.phase
            && p != "final"
            && !results.phases.iter().any(|ph| &ph.name == p)
        {
            let names = results.phases.iter().map(|ph| ph.name.as_str()).chain(["final"]);
            let hint =
                crate::spec::schema::suggest(p, names).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
            return Err(format!("no phase `{p}` in study `{}`{hint}", results.study));
        }
        if let Some(s) = &self.sort {
            let cols = sort_columns(results);
            if !cols.iter().any(|c| c == s) {
                let hint = crate::spec::schema::suggest(s, cols.iter().map(String::as_str))
                    .map_or_else(|| format!(" (one of {})", cols.join(", ")), |c| format!("; did you mean `{c}`?"));
                return Err(format!("cannot sort by `{s}`{hint}"));
            }
        }
        Ok(())
    }
}

/// The names `--sort` accepts for these results.
pub fn sort_columns(results: &StudyResults) -> Vec<String> {
    let mut cols: Vec<String> = FIXED_COLUMNS.iter().map(|s| (*s).to_owned()).collect();
    for v in analysis::analyse(results) {
        for k in &v.keys {
            if !cols.contains(&k.name) {
                cols.push(k.name.clone());
            }
        }
    }
    for c in results.all_candidates() {
        for m in c.metrics.keys() {
            if !cols.contains(m) {
                cols.push(m.clone());
            }
        }
    }
    cols
}

/// Compares two optional numbers, missing last, `goal` deciding which end is first.
#[allow(clippy::many_single_char_names)]
fn by(a: Option<f64>, b: Option<f64>, goal: Goal) -> Ordering {
    match (a.filter(|x| x.is_finite()), b.filter(|x| x.is_finite())) {
        (Some(x), Some(y)) => {
            let o = x.total_cmp(&y);
            if goal == Goal::Maximize { o.reverse() } else { o }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Each phase's candidates (indices) in the order and number its table shows them (`--sort`,
/// `--top`), for `show --json` to give the same selection as the tables.
pub fn shown_candidates(results: &StudyResults, opts: &TableOptions) -> Vec<(String, Vec<usize>)> {
    analysis::analyse(results).iter().map(|v| (v.phase.name.clone(), sorted(v, opts))).collect()
}

fn sorted(v: &PhaseView<'_>, opts: &TableOptions) -> Vec<usize> {
    let mut rows = v.order.clone();
    if let Some(k) = opts.top {
        rows.truncate(k);
    }
    let cands = &v.phase.candidates;
    let col = opts.sort.as_deref().unwrap_or("objective");
    let key = v.keys.iter().find(|k| k.name == col);
    let key_order = |k: &analysis::SweptKey, a: usize, b: usize| match (k.x(a), k.x(b)) {
        (None, None) => {
            let text = |i: usize| k.value[i].as_ref().map(format::value).unwrap_or_default();
            text(a).cmp(&text(b))
        }
        (x, y) => by(x, y, Goal::Minimize),
    };
    rows.sort_by(|&a, &b| {
        let (ca, cb) = (&cands[a], &cands[b]);
        let o = match col {
            _ if !FIXED_COLUMNS.contains(&col) && key.is_some() => key.map_or(Ordering::Equal, |k| key_order(k, a, b)),
            "objective" => v.order.iter().position(|&i| i == a).cmp(&v.order.iter().position(|&i| i == b)),
            "variant" => ca.variant.cmp(&cb.variant),
            "status" => status_text(ca).cmp(&status_text(cb)),
            "cached" => cb.cached().cmp(&ca.cached()),
            "tokens_per_sec" => by(ca.tokens_per_sec(), cb.tokens_per_sec(), Goal::Maximize),
            "time" => by(Some(ca.seconds()), Some(cb.seconds()), Goal::Minimize),
            m => {
                let goal = if m == v.phase.metric { v.phase.goal } else { format::metric_goal(m) };
                by(ca.metrics.get(m).copied(), cb.metrics.get(m).copied(), goal)
            }
        };
        o.then(a.cmp(&b))
    });
    rows
}

fn new_table(header: Vec<String>, numeric: &[bool], color: bool) -> Table {
    let mut t = Table::new();
    if color {
        // The caller decided (`--color`, `NO_COLOR`, a terminal): style even into a pipe.
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t.load_preset(presets::UTF8_HORIZONTAL_ONLY).set_content_arrangement(ContentArrangement::Disabled);
    // A rule under the header and around the table; none between rows.
    for c in [
        TableComponent::HorizontalLines,
        TableComponent::MiddleIntersections,
        TableComponent::LeftBorderIntersections,
        TableComponent::RightBorderIntersections,
    ] {
        t.remove_style(c);
    }
    t.set_header(
        header.into_iter().map(|h| if color { Cell::new(h).add_attribute(Attribute::Bold) } else { Cell::new(h) }),
    );
    for (i, n) in numeric.iter().enumerate() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(if *n { CellAlignment::Right } else { CellAlignment::Left });
        }
    }
    t
}

fn style(cells: Vec<String>, winner: bool, muted: bool, color: bool) -> Vec<Cell> {
    cells
        .into_iter()
        .map(|s| {
            let c = Cell::new(s);
            match (color, winner, muted) {
                (true, true, _) => c.add_attribute(Attribute::Bold).fg(Color::Green),
                (true, false, true) => c.fg(Color::DarkGrey),
                _ => c,
            }
        })
        .collect()
}

/// The cells shared by phase and final rows, after the marker, variant and key columns.
fn tail_cells(c: &CandidateResult, metric: &str, metrics: &[&str]) -> Vec<String> {
    let mut cells = vec![objective_text(c, metric)];
    cells.extend(metrics.iter().map(|m| c.metrics.get(*m).map_or_else(|| "—".into(), |v| num(*v))));
    cells.push(status_text(c));
    cells.push(if c.repeats.is_empty() {
        "—".into()
    } else if c.cached() {
        "yes".into()
    } else {
        "no".into()
    });
    cells.push(c.tokens_per_sec().map_or_else(|| "—".into(), format::rate));
    cells.push(if c.repeats.is_empty() { "—".into() } else { format::duration(c.seconds()) });
    cells
}

fn tail_header(metric: &str, metrics: &[&str]) -> Vec<String> {
    let mut h = vec![format!("{metric} (objective)")];
    h.extend(metrics.iter().map(|m| (*m).to_owned()));
    h.extend(["status", "cached", "tokens/s", "time"].map(String::from));
    h
}

fn key_metrics<'a>(cands: &(impl Iterator<Item = &'a CandidateResult> + Clone), metric: &str) -> Vec<&'static str> {
    KEY_METRICS.iter().copied().filter(|m| *m != metric && cands.clone().any(|c| c.metrics.contains_key(*m))).collect()
}

fn phase_table(v: &PhaseView<'_>, opts: &TableOptions) -> String {
    let p = v.phase;
    let mut out = String::new();
    let _ = write!(out, "phase {}", p.name);
    if !p.after.is_empty() {
        let _ = write!(out, " (after {})", p.after.join(", "));
    }
    let goal = if p.goal == Goal::Minimize { "minimize" } else { "maximize" };
    let _ = write!(out, ": {goal} {}", p.metric);
    match (p.winner(), v.gain()) {
        (Some(_), _) if p.found.is_some() => {
            let _ = write!(out, ", found {}", p.winner_label().unwrap_or_default());
        }
        (Some(w), Some((d, pct, _))) if v.baseline_index != p.winner => {
            let _ =
                write!(out, ", winner {} ({} = {} vs baseline)", w.variant, format::signed(d), format::percent(pct));
        }
        (Some(w), _) => {
            let _ = write!(out, ", winner {}", w.variant);
        }
        (None, _) => {
            let _ = write!(out, ", no winner ({})", format!("{:?}", p.status).to_lowercase());
        }
    }
    if let Some(l) = p.lead().filter(|l| l.within_noise) {
        let _ = write!(out, "; within noise of {}", p.candidates[l.runner_up].variant);
    }
    out.push('\n');
    if let Some(m) = &p.message {
        let _ = writeln!(out, "  {m}");
    }
    if p.candidates.is_empty() {
        out.push_str("  no candidates\n");
        return out;
    }
    let metrics = key_metrics(&p.candidates.iter(), &p.metric);
    let mut header: Vec<String> = vec![String::new(), "variant".into()];
    header.extend(v.keys.iter().map(|k| k.name.clone()));
    header.extend(tail_header(&p.metric, &metrics));
    let mut numeric = vec![false, false];
    numeric.extend(v.keys.iter().map(|k| k.numeric));
    numeric.extend(std::iter::once(true).chain(metrics.iter().map(|_| true)).chain([false, false, true, true]));
    let mut t = new_table(header, &numeric, opts.color);
    for i in sorted(v, opts) {
        let c = &p.candidates[i];
        let winner = p.winner == Some(i);
        let mut cells = vec![if winner { "*".to_owned() } else { String::new() }, c.variant.clone()];
        cells.extend(v.keys.iter().map(|k| k.value[i].as_ref().map_or_else(|| "—".into(), format::value)));
        cells.extend(tail_cells(c, &p.metric, &metrics));
        let muted = matches!(c.status, CandidateStatus::Diverged | CandidateStatus::Failed | CandidateStatus::Pruned);
        t.add_row(style(cells, winner, muted, opts.color));
    }
    let _ = writeln!(out, "{t}");
    if let Some(k) = opts.top.filter(|k| *k < p.candidates.len()) {
        let _ = writeln!(out, "  (best {k} of {} candidates)", p.candidates.len());
    }
    for c in &p.candidates {
        failure_lines(&mut out, c);
    }
    if let Some(note) = analysis::machine_note(&p.metric, &p.candidates) {
        let _ = writeln!(out, "  note: {note}");
    }
    out
}

/// `  failed: variant (seed): reason…` for each failed run of a candidate.
fn failure_lines(out: &mut String, c: &CandidateResult) {
    for r in c.repeats.iter().filter(|r| r.status == Some(crate::spec::Status::Failed)) {
        let seed = if c.repeats.len() > 1 { format!(" (seed {})", r.seed) } else { String::new() };
        let _ = writeln!(out, "  failed: {}{seed}: {}", c.variant, analysis::failure_text(r));
    }
    if c.status == CandidateStatus::Failed && c.repeats.iter().all(|r| r.status != Some(crate::spec::Status::Failed)) {
        let _ = writeln!(out, "  failed: {}: {}", c.variant, c.reason.as_deref().unwrap_or("no result"));
    }
}

fn final_table(results: &StudyResults, views: &[PhaseView<'_>], opts: &TableOptions) -> String {
    let Some(f) = &results.final_run else { return String::new() };
    let root = analysis::root_baseline(views).map(|(_, b)| b);
    let mut out = format!("final {}", f.variant);
    if let (Some(fo), Some(bo)) = (f.objective, root.and_then(|b| b.objective)) {
        let (d, pct, _) = analysis::gain(fo, bo, results.goal);
        let _ = write!(
            out,
            ": {} {} ({} = {} vs root baseline)",
            results.metric,
            num(fo),
            format::signed(d),
            format::percent(pct)
        );
    }
    out.push('\n');
    let rows: Vec<(&str, &CandidateResult)> =
        std::iter::once(("final", f)).chain(root.map(|b| ("root baseline", b))).collect();
    let metrics = key_metrics(&rows.iter().map(|r| r.1), &results.metric);
    let mut header = vec![String::new(), "run".into(), "changes".into()];
    header.extend(tail_header(&results.metric, &metrics));
    let mut numeric = vec![false, false, false, true];
    numeric.extend(metrics.iter().map(|_| true).chain([false, false, true, true]));
    let mut t = new_table(header, &numeric, opts.color);
    for (i, (name, c)) in rows.iter().enumerate() {
        let changes = if c.changes.is_empty() {
            "—".to_owned()
        } else {
            c.changes.iter().map(|(k, v)| format!("{k}={}", format::value(v))).collect::<Vec<_>>().join(", ")
        };
        let mut cells = vec![if i == 0 { "*".to_owned() } else { String::new() }, (*name).to_owned(), changes];
        cells.extend(tail_cells(c, &results.metric, &metrics));
        t.add_row(style(cells, i == 0, false, opts.color));
    }
    let _ = writeln!(out, "{t}");
    failure_lines(&mut out, f);
    if f.status != CandidateStatus::Ok && f.repeats.iter().any(|r| r.status.is_none()) {
        let done = f.repeats.iter().filter(|r| r.status.is_some()).count();
        let _ = writeln!(out, "  incomplete: {done} of {} repeats have results; no final result yet", f.repeats.len());
    }
    if let Some(note) = analysis::machine_note(&results.metric, [f]) {
        let _ = writeln!(out, "  note: {note}");
    }
    out
}

/// Every phase's table (or the one asked for), then the final run's, separated by blank lines.
pub fn render_tables(results: &StudyResults, opts: &TableOptions) -> String {
    let views = analysis::analyse(results);
    let mut parts = Vec::new();
    for v in views.iter().filter(|v| opts.phase.as_ref().is_none_or(|p| *p == v.phase.name)) {
        parts.push(phase_table(v, opts));
    }
    if opts.phase.as_ref().is_none_or(|p| p == "final") {
        let f = final_table(results, &views, opts);
        if !f.is_empty() {
            parts.push(f);
        }
    }
    if parts.is_empty() && opts.phase.is_none() {
        return format!("study {}: no phases\n", results.study);
    }
    parts.join("\n")
}
