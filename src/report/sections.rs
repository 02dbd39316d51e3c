//! The report's sections as document blocks: summary, one section per phase (table, close-call
//! note, figures), the final run, correlations, and runs that diverged or failed.

use crate::results::{CandidateResult, CandidateStatus, PhaseStatus, StudyResults};
use crate::spec::Goal;

use super::analysis::{self, Compute, Correlation, Failure, PhaseView, SweptKey};
use super::doc::{Block, Cell, Doc, Table, Text};
use super::format::{self, num};

fn goal_word(goal: Goal) -> &'static str {
    match goal {
        Goal::Minimize => "minimize",
        Goal::Maximize => "maximize",
    }
}

pub(super) fn status_text(c: &CandidateResult) -> String {
    match c.status {
        CandidateStatus::Ok => "ok".into(),
        CandidateStatus::Diverged => c.diverged_at().map_or_else(|| "diverged".into(), |s| format!("diverged @ {s}")),
        CandidateStatus::Failed => "failed".into(),
        CandidateStatus::Pruned => "pruned".into(),
        CandidateStatus::Waiting => "waiting".into(),
        CandidateStatus::ToRun => "to run".into(),
        CandidateStatus::Cancelled => "cancelled".into(),
        CandidateStatus::Skipped => "skipped (budget)".into(),
    }
}

fn phase_status_text(s: PhaseStatus) -> &'static str {
    match s {
        PhaseStatus::Done => "done",
        PhaseStatus::Failed => "failed",
        PhaseStatus::Blocked => "blocked",
        PhaseStatus::Waiting => "waiting",
        PhaseStatus::Pending => "pending",
        PhaseStatus::Skipped => "skipped (budget)",
    }
}

/// Seed 000's efficiency: validation accuracy per minute of training (per run).
pub(super) fn acc_per_min(c: &CandidateResult) -> Option<f64> {
    if let Some(v) = c.metrics.get("acc_per_min") {
        return Some(*v);
    }
    let acc = *c.metrics.get("val_accuracy")?;
    let runs = c.repeats.iter().filter(|r| r.status.is_some()).count();
    let minutes = c.seconds() / runs.max(1) as f64 / 60.0;
    (minutes > 0.0 && acc.is_finite()).then(|| acc / minutes)
}

/// The objective with its spread over repeats: `5.9123 ± 0.013`.
pub(super) fn objective_text(c: &CandidateResult, metric: &str) -> String {
    match (c.objective, c.metrics_std.get(metric).filter(|_| c.repeats.len() > 1)) {
        (Some(o), Some(sd)) => format!("{} ± {}", num(o), num(*sd)),
        (Some(o), None) => num(o),
        (None, _) => c.metrics.get(metric).map_or_else(|| "—".into(), |v| num(*v)),
    }
}

fn change_text(c: &CandidateResult) -> String {
    if c.changes.is_empty() {
        return "—".into();
    }
    c.changes.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

/// One row of a candidates table.
struct RowSpec<'a> {
    rank: Option<usize>,
    /// Shown instead of the variant name.
    label: Option<&'a str>,
    c: &'a CandidateResult,
    /// Index into the keys' per-candidate values.
    index: Option<usize>,
    winner: bool,
}

fn candidates_table(
    rows: &[RowSpec<'_>],
    keys: &[SweptKey],
    metric: &str,
    metrics: &[String],
    with_changes: bool,
) -> Table {
    let repeats = rows.iter().any(|r| r.c.repeats.len() > 1);
    let mut header: Vec<(String, bool)> = vec![("#".into(), true), ("variant".into(), false)];
    if with_changes {
        header.push(("changes".into(), false));
    }
    header.extend(keys.iter().map(|k| (k.name.clone(), k.numeric)));
    header.push((format!("objective ({metric})"), true));
    header.extend(metrics.iter().filter(|m| *m != metric).map(|m| (m.clone(), true)));
    header.push(("status".into(), false));
    if repeats {
        header.push(("repeats".into(), true));
    }
    header.extend([("tokens/s".into(), true), ("time".into(), true), ("acc/min".into(), true)]);
    let mut t = Table::new(header);
    for r in rows {
        let c = r.c;
        let mut cells = vec![Cell::num(r.rank.map_or_else(|| "—".into(), |n| n.to_string()), r.rank.map(|n| n as f64))];
        let mut variant = Text::new().code(r.label.unwrap_or(&c.variant));
        if r.winner {
            variant = variant.plain(" \u{2605}");
        }
        cells.push(Cell::text(variant));
        if with_changes {
            cells.push(Cell::text(Text::new().code(change_text(c))));
        }
        for k in keys {
            let v = r.index.and_then(|i| k.value[i].as_ref());
            let own = r.index.is_some_and(|i| k.own[i].is_some());
            let text = v.map_or_else(|| "—".to_owned(), format::value);
            let text = if own || v.is_none() { Text::new().plain(text) } else { Text::new().em(text) };
            cells.push(Cell::num(text, v.and_then(crate::spec::Value::as_f64)));
        }
        cells.push(Cell::num(objective_text(c, metric), c.objective));
        for m in metrics.iter().filter(|m| *m != metric) {
            let v = c.metrics.get(m).copied();
            cells.push(Cell::num(v.map_or_else(|| "—".into(), num), v));
        }
        cells.push(Cell::text(status_text(c)));
        if repeats {
            cells.push(Cell::num(c.repeats.len().to_string(), Some(c.repeats.len() as f64)));
        }
        let tps = c.tokens_per_sec();
        cells.push(Cell::num(tps.map_or_else(|| "—".into(), format::rate), tps));
        let secs = c.seconds();
        cells.push(Cell::num(if c.repeats.is_empty() { "—".into() } else { format::duration(secs) }, Some(secs)));
        let apm = acc_per_min(c);
        cells.push(Cell::num(apm.map_or_else(|| "—".into(), num), apm));
        let muted = matches!(c.status, CandidateStatus::Diverged | CandidateStatus::Failed | CandidateStatus::Pruned);
        t.push(cells, r.winner, muted);
    }
    t
}

/// `+0.012 (+0.21 %), worse` / `−0.041 (−0.69 %), better`.
fn gain_text(new: f64, old: f64, goal: Goal) -> String {
    let (d, pct, better) = analysis::gain(new, old, goal);
    let word = if d == 0.0 {
        "unchanged"
    } else if better {
        "better"
    } else {
        "worse"
    };
    format!("{} ({}), {word}", format::signed(d), format::percent(pct))
}

fn key_description(k: &SweptKey) -> Text {
    let vals: Vec<f64> = k.own.iter().flatten().filter_map(crate::spec::Value::as_f64).collect();
    let mut distinct: Vec<&crate::spec::Value> = Vec::new();
    for v in k.own.iter().flatten() {
        if !distinct.iter().any(|d| d.same(v)) {
            distinct.push(v);
        }
    }
    let n = distinct.len();
    let mut t = Text::new().code(&k.name).plain(format!(" ({n} value{}", if n == 1 { "" } else { "s" }));
    if k.numeric && !vals.is_empty() {
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        t = t.plain(format!(" from {} to {}", num(lo), num(hi)));
        if k.log {
            t = t.plain(", log-spaced");
        }
    }
    t.plain(")")
}

#[allow(clippy::many_single_char_names)]
pub(super) fn summary(doc: &mut Doc, results: &StudyResults, views: &[PhaseView<'_>], compute: Compute) {
    doc.heading(2, "Summary");
    let root = analysis::root_baseline(views);
    let mut intro = Text::new()
        .plain("Study ")
        .code(&results.study)
        .plain(format!(", objective: {} ", goal_word(results.goal)))
        .code(&results.metric);
    intro = intro.plain(format!(", {} phase{}.", views.len(), if views.len() == 1 { "" } else { "s" }));
    doc.para(intro);
    // A gain is the phases' only where both trained on the same budget.
    let budgets = match (root, results.final_run.as_ref()) {
        (Some((_, b)), Some(f)) => analysis::budgets(b, f),
        _ => None,
    };
    if let (Some((_, b)), Some(f)) = (root, results.final_run.as_ref())
        && let (Some(bo), Some(fo)) = (b.objective, f.objective)
    {
        let t = Text::new().strong("Result:").plain(" ").code(&results.metric);
        doc.para(match &budgets {
            Some((base, fin)) if base != fin => t.plain(format!(
                " {} (root baseline, {base}) \u{2192} {} (final run, {fin}). The budgets differ, so this is not the phases' gain alone.",
                num(bo),
                num(fo),
            )),
            _ => t.plain(format!(
                " {} (root baseline) \u{2192} {} (final run): {}.",
                num(bo),
                num(fo),
                gain_text(fo, bo, results.goal)
            )),
        });
    }
    let mut items = Vec::new();
    match root {
        Some((phase, b)) => items.push(
            Text::new()
                .plain("Root baseline (the baseline of phase ")
                .code(phase)
                .plain("): ")
                .code(&results.metric)
                .plain(format!(" {}", objective_text(b, &results.metric))),
        ),
        None => items.push(Text::new().plain("Root baseline: no result for the root config in these results.")),
    }
    if let Some(f) = &results.final_run {
        let mut t = Text::new().plain("Final run ").code(&f.variant).plain(": ");
        t = match f.objective {
            Some(o) => {
                let mut t = t.code(&results.metric).plain(format!(" {}", objective_text(f, &results.metric)));
                if f.repeats.len() > 1 {
                    t = t.plain(format!(" over {} repeats", f.repeats.len()));
                }
                match (root.and_then(|(_, b)| b.objective), &budgets) {
                    (Some(_), Some((base, fin))) if base != fin => {
                        t = t.plain(format!("; trained {fin} against the root baseline's {base}"));
                    }
                    (Some(bo), _) => t = t.plain(format!("; {} vs the root baseline", gain_text(o, bo, results.goal))),
                    (None, _) => {}
                }
                t
            }
            None => t.plain(status_text(f)),
        };
        items.push(t);
    }
    let counts = results.counts();
    items.push(Text::new().plain(format!(
        "Runs: {} ({} cache hits, {} trained; {} diverged, {} failed, {} pruned).",
        counts.total, counts.cached, counts.trained, counts.diverged, counts.failed, counts.pruned
    )));
    let left = match (compute.missing, compute.retry) {
        (0, 0) => "every run is cached, so running the study again trains nothing".to_owned(),
        (m, 0) => format!("{m} runs have no result yet (`lrx run` trains them)"),
        (0, f) => format!("{f} failed runs have no result (`lrx run` retries them)"),
        (m, f) => format!("{m} runs have no result yet and {f} failed (`lrx run` trains and retries them)"),
    };
    let shared = if compute.shared > 0.0 {
        format!("; {} saved by candidates that are the same run", format::duration(compute.shared))
    } else {
        String::new()
    };
    items.push(Text::new().plain(format!(
        "Compute: {} of training recorded for these runs{shared}; {left}.",
        format::duration(compute.recorded)
    )));
    doc.push(Block::List(items));

    let mut t = Table::new(vec![
        ("phase".into(), false),
        ("after".into(), false),
        ("candidates".into(), true),
        ("winner".into(), false),
        ("objective".into(), true),
        ("baseline".into(), true),
        ("gain".into(), true),
        ("gain %".into(), true),
        ("status".into(), false),
    ]);
    for v in views {
        let p = v.phase;
        let w = p.winner();
        let b = v.baseline.and_then(|b| b.objective);
        let g = v.gain();
        t.push(
            vec![
                Cell::text(Text::new().code(&p.name)),
                Cell::text(if p.after.is_empty() { Text::from("root") } else { Text::new().code(p.after.join(", ")) }),
                Cell::num(p.candidates.len().to_string(), Some(p.candidates.len() as f64)),
                Cell::text(p.winner_label().map_or_else(|| Text::from("—"), |w| Text::new().code(w))),
                match w.filter(|_| p.found.is_none()) {
                    Some(w) => Cell::num(objective_text(w, &p.metric), w.objective),
                    None => Cell::num("—".to_owned(), None),
                },
                Cell::num(b.map_or_else(|| "—".into(), num), b),
                Cell::num(g.map_or_else(|| "—".into(), |g| format::signed(g.0)), g.map(|g| g.0)),
                Cell::num(g.map_or_else(|| "—".into(), |g| format::percent(g.1)), g.map(|g| g.1)),
                Cell::text(if p.under_budget() {
                    "done, chosen under the budget"
                } else {
                    phase_status_text(p.status)
                }),
            ],
            false,
            matches!(p.status, PhaseStatus::Failed | PhaseStatus::Blocked),
        );
    }
    if !views.is_empty() {
        doc.para(
            Text::new()
                .plain("Gains are each winner's objective minus its phase's baseline (the phase's incoming config)."),
        );
        doc.push(Block::Table(t));
    }
}

/// A phase's section, without its figures (added by the caller).
#[allow(clippy::many_single_char_names)]
pub(super) fn phase(doc: &mut Doc, v: &PhaseView<'_>) {
    let p = v.phase;
    doc.heading(2, Text::new().plain("Phase ").code(&p.name));
    let mut t = if p.after.is_empty() {
        Text::new().plain("Starts from the root config. ")
    } else {
        Text::new().plain("After ").code(p.after.join(", ")).plain(". ")
    };
    if let Some((a, b)) = v.grid {
        t = t.plain("Grid over ").code(&v.keys[a].name).plain(" \u{00d7} ").code(&v.keys[b].name).plain(". ");
    }
    if !v.keys.is_empty() {
        t = t.plain("Varies ");
        for (i, k) in v.keys.iter().enumerate() {
            if i > 0 {
                t = t.plain(", ");
            }
            t.0.extend(key_description(k).0);
        }
        t = t.plain(". ");
    }
    t = t.plain(format!("Objective: {} ", goal_word(p.goal))).code(&p.metric).plain(".");
    doc.para(t);
    if let Some(msg) = &p.message {
        doc.push(Block::Note(
            Text::new().strong(format!("Phase {}:", phase_status_text(p.status))).plain(" ").plain(msg.clone()),
        ));
    } else if p.status != PhaseStatus::Done {
        doc.push(Block::Note(Text::new().strong(format!("Phase {}.", phase_status_text(p.status)))));
    }
    if p.candidates.is_empty() {
        doc.para("No candidates.");
        return;
    }
    if let Some(note) = analysis::machine_note(&p.metric, &p.candidates) {
        doc.push(Block::Note(Text::new().strong("Depends on the machine:").plain(" ").plain(note)));
    }
    let failed = p.candidates.iter().filter(|c| c.status == CandidateStatus::Failed).count();
    if failed > 0 && p.winner.is_some() {
        doc.push(Block::Note(Text::new().strong("Chosen without failed runs:").plain(format!(
            " {failed} candidate{} failed (see \"Diverged and failed runs\"); the winner was picked among the rest, and the next `lrx run` retries {}.",
            if failed == 1 { "" } else { "s" },
            if failed == 1 { "it" } else { "them" }
        ))));
    }
    if let Some(c) = &p.range_test {
        let mut t = Text::new().strong("Pick:").plain(" ").code(format!("{} = {}", c.key, num(c.pick))).plain(format!(
            " ({}): the lowest smoothed training loss is at {} = {}",
            c.rule,
            c.key,
            num(c.minimum_lr())
        ));
        if c.stopped {
            t = t.plain(format!(
                "; the curve is cut after {} = {}, where the loss went past {} × its minimum",
                c.key,
                num(c.points.last().map_or(f64::NAN, |p| p.lr)),
                num(c.stop)
            ));
        }
        doc.para(t.plain(". Later phases start from the pick, not from this run's config."));
    } else if let Some(w) = p.winner() {
        let mut t = Text::new()
            .strong("Winner:")
            .plain(" ")
            .code(&w.variant)
            .plain(" with ")
            .code(&p.metric)
            .plain(format!(" {}", objective_text(w, &p.metric)));
        if let (Some(wo), Some(bo)) = (w.objective, v.baseline.and_then(|b| b.objective))
            && v.baseline_index != p.winner
        {
            t = t.plain(format!(": {} than the baseline ({})", gain_text(wo, bo, p.goal), num(bo)));
        } else if v.baseline_index == p.winner {
            t = t.plain(": the baseline itself; no candidate improved on it");
        }
        doc.para(t.plain("."));
    }
    if let Some(cc) = &v.close_call {
        let w = p.winner().map_or("", |w| w.variant.as_str());
        let r = &p.candidates[cc.runner_up].variant;
        let mut why = Vec::new();
        if cc.within_one_percent {
            why.push("within 1 % of the runner-up, without repeats to measure the noise".to_owned());
        }
        if let (true, Some(s)) = (cc.within_spread, cc.spread) {
            why.push(format!("less than the pooled standard error of their repeats ({})", num(s)));
        }
        doc.push(Block::Note(
            Text::new().strong("Close call:").plain(" ").code(w).plain(" leads the runner-up ").code(r).plain(format!(
                " by {} ({}), {}. Treat them as tied; more repeats would tell them apart.",
                num(cc.margin),
                format::percent(cc.percent).trim_start_matches('+'),
                why.join(" and ")
            )),
        ));
    }
    let rows: Vec<RowSpec<'_>> = v
        .order
        .iter()
        .enumerate()
        .map(|(rank, &i)| {
            let c = &p.candidates[i];
            let ranked = c.status == CandidateStatus::Ok && c.objective.is_some_and(f64::is_finite);
            RowSpec { rank: ranked.then_some(rank + 1), label: None, c, index: Some(i), winner: p.winner == Some(i) }
        })
        .collect();
    doc.push(Block::Table(candidates_table(&rows, &v.keys, &p.metric, &v.metrics, false)));
    if v.keys.iter().any(|k| k.own.iter().any(Option::is_none) && k.value.iter().any(Option::is_some)) {
        doc.para(
            Text::new()
                .plain("Sorted best first. ")
                .em("Italic")
                .plain(" values are inherited from the incoming config; ★ marks the winner."),
        );
    } else {
        doc.para("Sorted best first; ★ marks the winner.");
    }
}

pub(super) fn final_run(doc: &mut Doc, results: &StudyResults, views: &[PhaseView<'_>]) {
    let Some(f) = &results.final_run else { return };
    doc.heading(2, "Final run");
    doc.para(Text::new().plain("Combines the phases' winning changes: ").code(change_text(f)).plain("."));
    let mut rows = vec![RowSpec { rank: None, label: None, c: f, index: None, winner: true }];
    if let Some((_, b)) = analysis::root_baseline(views) {
        rows.push(RowSpec { rank: None, label: Some("root baseline"), c: b, index: None, winner: false });
    }
    let mut metrics: Vec<String> =
        rows.iter().flat_map(|r| r.c.metrics.keys().cloned()).filter(|m| m != "acc_per_min").collect();
    format::metric_order(&mut metrics);
    doc.push(Block::Table(candidates_table(&rows, &[], &results.metric, &metrics, true)));
}

pub(super) fn correlations(doc: &mut Doc, rows: &[Correlation]) {
    doc.heading(2, "Correlations");
    if rows.is_empty() {
        doc.para("No phase has three or more finished runs over a numeric swept key, so no correlation is reported.");
        return;
    }
    doc.para(Text::new().plain(
        "Pearson's r (linear) and Spearman's ρ (rank) between each numeric swept key and the outcome, over each phase's finished runs \
         (the candidates that set the key, and the baseline). n is the number of runs behind each value; with few runs they are indicative only. \
         Sweeps rarely respond linearly: a U-shaped curve gives a small r even when the key matters.",
    ));
    let mut t = Table::new(vec![
        ("phase".into(), false),
        ("key".into(), false),
        ("vs".into(), false),
        ("n".into(), true),
        ("Pearson r".into(), true),
        ("Spearman ρ".into(), true),
    ]);
    let f = |x: Option<f64>| x.map_or_else(|| "—".into(), |v| format!("{v:+.3}").replace('-', "\u{2212}"));
    for r in rows {
        t.push(
            vec![
                Cell::text(Text::new().code(&r.phase)),
                Cell::text(Text::new().code(&r.key)),
                Cell::text(Text::new().code(&r.target)),
                Cell::num(r.n.to_string(), Some(r.n as f64)),
                Cell::num(f(r.pearson), r.pearson),
                Cell::num(f(r.spearman), r.spearman),
            ],
            false,
            false,
        );
    }
    doc.push(Block::Table(t));
}

pub(super) fn failures(doc: &mut Doc, rows: &[Failure], missing: usize) {
    doc.heading(2, "Diverged and failed runs");
    if rows.is_empty() {
        doc.para(if missing == 0 {
            "Every run finished.".to_owned()
        } else {
            format!(
                "No run diverged or failed; {missing} run{} not run yet.",
                if missing == 1 { " has" } else { "s have" }
            )
        });
        return;
    }
    let mut t = Table::new(vec![
        ("phase".into(), false),
        ("variant".into(), false),
        ("seed".into(), true),
        ("status".into(), false),
        ("step".into(), true),
        ("reason".into(), false),
    ]);
    for r in rows {
        t.push(
            vec![
                Cell::text(Text::new().code(&r.phase)),
                Cell::text(Text::new().code(&r.variant)),
                Cell::num(r.seed.map_or_else(|| "—".into(), |s| s.to_string()), r.seed.map(|s| s as f64)),
                Cell::text(r.status.clone()),
                Cell::num(r.step.map_or_else(|| "—".into(), |s| s.to_string()), r.step.map(|s| s as f64)),
                Cell::text(r.reason.clone()),
            ],
            false,
            false,
        );
    }
    doc.push(Block::Table(t));
}

/// The swept keys' insights (`insights.json`): best value, safe range, divergence threshold.
pub(super) fn insights(doc: &mut Doc, results: &StudyResults) {
    let rows = results.insights();
    if rows.is_empty() {
        return;
    }
    doc.heading(2, "Insights");
    let mut t = Table::new(vec![
        ("phase".into(), false),
        ("key".into(), false),
        ("best".into(), true),
        ("objective".into(), true),
        (format!("safe range (within {} %)", num(crate::results::SAFE_PERCENT)), true),
        ("diverges at".into(), true),
        ("values".into(), true),
    ]);
    let dash = || "—".to_owned();
    for i in &rows {
        t.push(
            vec![
                Cell::text(Text::new().code(&i.phase)),
                Cell::text(Text::new().code(&i.key)),
                Cell::num(num(i.best), Some(i.best)),
                Cell::num(i.best_objective.map_or_else(dash, num), i.best_objective),
                Cell::text(Text::from(i.safe_range.map_or_else(dash, |(a, b)| format!("{} – {}", num(a), num(b))))),
                Cell::num(i.diverges_at.map_or_else(dash, num), i.diverges_at),
                Cell::num(i.values.to_string(), Some(i.values as f64)),
            ],
            false,
            false,
        );
    }
    doc.para(
        Text::new()
            .plain(format!(
                "Per key varied alone: the best value, the values around it within {} % of its objective, and the lowest value above it whose run diverged (a range test: where its loss blew up). The same in ",
                num(crate::results::SAFE_PERCENT)
            ))
            .code("insights.json")
            .plain("."),
    );
    doc.push(Block::Table(t));
}
