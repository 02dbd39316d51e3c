//! The report's study-wide figure and what was seen wrong in its figures: the optimization
//! history, a candidate at 0 on a two-key sweep, text that stays readable on a narrow page,
//! and backticks in the HTML.

use super::results_fixture as common;

use common::{Outcome, candidate, config, phase};
use lrx::report::figures::{hex, palette};
use lrx::report::{self, ReportOptions};
use lrx::spec::Value;

fn texts(svg: &roxmltree::Document<'_>) -> Vec<String> {
    svg.descendants().filter(|n| n.has_tag_name("text")).filter_map(|n| n.text()).map(|t| t.trim().to_owned()).collect()
}

#[test]
fn the_history_shows_every_run_in_order_with_the_best_so_far() {
    let results = common::study();
    let dir = tempfile::tempdir().unwrap();
    let files = report::write_report(&results, dir.path(), &ReportOptions::default()).unwrap();
    let path = dir.path().join("figures/history.svg");
    assert!(files.figures.contains(&path), "{:?}", files.figures);
    let text = std::fs::read_to_string(&path).unwrap();
    let svg = roxmltree::Document::parse(&text).unwrap();
    let labels = texts(&svg);
    for p in &results.phases {
        assert!(labels.contains(&p.name), "{} not in the legend: {labels:?}", p.name);
    }
    assert!(labels.iter().any(|l| l == "best so far") && labels.iter().any(|l| l == "final"), "{labels:?}");
    assert!(labels.iter().any(|l| l == "diverged or failed"), "the diverged and failed runs are marked");
    let html = std::fs::read_to_string(files.html.unwrap()).unwrap();
    assert!(html.contains("every run in order"), "the history is in the page");
}

#[test]
fn a_candidate_at_zero_stays_on_a_two_key_sweep() {
    let m = "val_loss";
    let wd = |x: f64| ("weight_decay", Value::Float(x));
    let lr = |x: f64| ("matrix_lr", Value::Float(x));
    let base = config(&[wd(0.1), lr(0.02)]);
    let mut c = vec![candidate("baseline", vec![], base, 1, &Outcome::Ok, true, m)];
    for (name, change) in [("weight_decay=0.0", wd(0.0)), ("weight_decay=0.2", wd(0.2))] {
        c.push(candidate(name, vec![change.clone()], config(&[change, lr(0.02)]), 1, &Outcome::Ok, true, m));
    }
    for (name, change) in [("matrix_lr=0.01", lr(0.01)), ("matrix_lr=0.05", lr(0.05))] {
        c.push(candidate(name, vec![change.clone()], config(&[change, wd(0.1)]), 1, &Outcome::Ok, true, m));
    }
    let mut results = common::study();
    results.phases = vec![phase("two", &[], &["weight_decay", "matrix_lr"], c)];
    results.final_run = None;
    let dir = tempfile::tempdir().unwrap();
    report::write_report(&results, dir.path(), &ReportOptions::default()).unwrap();
    let text = std::fs::read_to_string(dir.path().join("figures/two-sweep.svg")).unwrap();
    let svg = roxmltree::Document::parse(&text).unwrap();
    let zero = hex(palette(5, Some(0))[1]);
    let dots = svg.descendants().filter(|n| n.has_tag_name("circle") && n.attribute("fill") == Some(zero.as_str()));
    assert_eq!(dots.count(), 1, "weight_decay=0.0 is drawn:\n{text}");
    assert!(!texts(&svg).iter().any(|t| t.contains('\u{f7}')), "no value ÷ incoming value axis");
}

/// At 800 px the page's figures are drawn at about 0.8 of their 960 px: text written at 14 px
/// (plotters writes a font of size 18 as 14.5 px) reads at 11 px.
#[test]
fn figure_text_stays_readable_on_a_narrow_page_and_backticks_become_code() {
    let dir = tempfile::tempdir().unwrap();
    let files = report::write_report(&common::study(), dir.path(), &ReportOptions::default()).unwrap();
    for f in &files.figures {
        let text = std::fs::read_to_string(f).unwrap();
        let svg = roxmltree::Document::parse(&text).unwrap();
        for n in svg.descendants().filter(|n| n.has_tag_name("text")) {
            let size: f64 = n.attribute("font-size").and_then(|s| s.trim_end_matches("px").parse().ok()).unwrap_or(0.0);
            assert!(size >= 14.0, "{}: `{}` at {size} px", f.display(), n.text().unwrap_or_default());
        }
    }
    let html = std::fs::read_to_string(files.html.unwrap()).unwrap();
    let body = html.split("<body>").nth(1).unwrap();
    let prose: String = body.split("<svg").map(|part| part.split("</svg>").last().unwrap_or_default()).collect();
    assert!(!prose.contains('`'), "backticks shown as such in the HTML");
    assert!(prose.contains("<code>lrx run</code>"), "commands in messages are code");
    let md = std::fs::read_to_string(files.markdown).unwrap();
    assert!(!md.contains("\\`"), "escaped backticks in the Markdown");
}

#[test]
fn loss_curves_show_the_final_region_repeats_as_bands_and_runs_that_diverged_at_once() {
    let mut results = common::study();
    // A candidate of the first phase diverged before its first logged step: no curve at all.
    let gone = &mut results.phases[0].candidates[1];
    let name = gone.variant.clone();
    gone.status = lrx::results::CandidateStatus::Diverged;
    gone.objective = None;
    for r in &mut gone.repeats {
        r.status = Some(lrx::spec::Status::Diverged);
        r.diverged_at = Some(0);
        r.history.clear();
    }
    let first = results.phases[0].name.clone();
    let with_repeats = results.phases.iter().find(|p| p.candidates.iter().any(|c| c.repeats.len() > 1)).unwrap();
    let repeated = with_repeats.name.clone();
    let dir = tempfile::tempdir().unwrap();
    report::write_report(&results, dir.path(), &ReportOptions::default()).unwrap();
    let read = |phase: &str| std::fs::read_to_string(dir.path().join(format!("figures/{phase}-loss.svg"))).unwrap();

    let text = read(&first);
    let svg = roxmltree::Document::parse(&text).unwrap();
    let labels = texts(&svg);
    assert!(labels.iter().any(|l| l.starts_with(&name) && l.contains("diverged")), "{name} in the legend: {labels:?}");
    // Every loss starts near 5.5; the axis shows where they end instead.
    // (x ticks are steps: 0, 50, 100, ...)
    let ticks: Vec<f64> = labels.iter().filter_map(|l| l.parse::<f64>().ok()).collect();
    assert!(ticks.iter().all(|v| !(4.9..6.0).contains(v)), "the y axis reaches the first steps' loss: {ticks:?}");

    let text = read(&repeated);
    let svg = roxmltree::Document::parse(&text).unwrap();
    assert!(svg.descendants().any(|n| n.has_tag_name("polygon")), "repeats drawn as a band:\n{text}");
}

/// A learning-rate sweep reads dark to light by value, the baseline black.
#[test]
fn a_numeric_sweep_is_coloured_by_value() {
    let results = common::study();
    let views = lrx::report::analysis::analyse(&results);
    let lr = views.iter().find(|v| v.keys.len() == 1 && v.keys[0].name == "matrix_lr").expect("the LR sweep");
    let colors = lrx::report::figures::phase_palette(lr);
    let mut by_value: Vec<(f64, String)> = (0..lr.phase.candidates.len())
        .filter(|&i| Some(i) != lr.baseline_index)
        .map(|i| (lr.keys[0].x(i).unwrap(), hex(colors[i])))
        .collect();
    by_value.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(by_value.first().unwrap().1, "#440154", "the smallest value is viridis' dark end: {by_value:?}");
    assert_eq!(by_value.last().unwrap().1, "#BED728", "the largest its light end: {by_value:?}");
    assert_eq!(hex(colors[lr.baseline_index.unwrap()]), "#000000");
}

#[test]
fn parallel_coordinates_draw_every_run_over_the_swept_keys() {
    let results = common::study();
    let dir = tempfile::tempdir().unwrap();
    let files = report::write_report(&results, dir.path(), &ReportOptions::default()).unwrap();
    let path = dir.path().join("figures/parallel.svg");
    assert!(files.figures.contains(&path), "{:?}", files.figures);
    let text = std::fs::read_to_string(&path).unwrap();
    let svg = roxmltree::Document::parse(&text).unwrap();
    let labels = texts(&svg);
    for key in ["matrix_lr (log)", "weight_decay", "embedding_lr", "val_loss"] {
        assert!(labels.iter().any(|l| l.starts_with(key)), "no `{key}` axis: {labels:?}");
    }
    let ok = results
        .all_candidates()
        .filter(|c| c.status == lrx::results::CandidateStatus::Ok && c.objective.is_some_and(f64::is_finite))
        .count();
    // One line per run with a result, and one per axis.
    let lines = svg.descendants().filter(|n| n.has_tag_name("polyline")).count();
    let axes = labels.iter().filter(|l| l.starts_with("val_loss") || l.contains('_')).count();
    assert!(lines >= ok && lines <= ok + axes + 1, "{lines} lines for {ok} runs");
}

#[test]
fn losses_are_drawn_against_tokens_and_wall_clock_time_too() {
    let mut results = common::study();
    for c in results.phases.iter_mut().flat_map(|p| p.candidates.iter_mut()) {
        for r in &mut c.repeats {
            for h in &mut r.history {
                h.metrics.insert("tokens".into(), h.step as f64 * 4096.0);
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let files = report::write_report(&results, dir.path(), &ReportOptions::default()).unwrap();
    let phase = &results.phases[0].name;
    for (file, axis) in [("loss-tokens", "tokens"), ("loss-time", "wall-clock seconds")] {
        let path = dir.path().join(format!("figures/{phase}-{file}.svg"));
        assert!(files.figures.contains(&path), "no {file} figure: {:?}", files.figures);
        let text = std::fs::read_to_string(&path).unwrap();
        let labels = texts(&roxmltree::Document::parse(&text).unwrap());
        assert!(labels.iter().any(|l| l == axis), "{labels:?}");
        // The x axis reaches the last step's tokens or seconds (300 steps: 1.2M tokens, 60 s).
        let top = labels.iter().filter_map(|l| l.parse::<f64>().ok()).fold(0.0, f64::max);
        assert!(if axis == "tokens" { top >= 1.0e6 } else { (50.0..100.0).contains(&top) }, "{axis}: {top}");
    }
}

/// The circles drawn in `fill`, left to right, without the legend's (the rightmost).
fn dots_x(svg: &roxmltree::Document<'_>, fill: &str) -> Vec<f64> {
    let mut xs: Vec<f64> = svg
        .descendants()
        .filter(|n| n.has_tag_name("circle") && n.attribute("fill") == Some(fill))
        .filter_map(|n| n.attribute("cx")?.parse().ok())
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.pop();
    xs
}

/// A candidate added to the first phase after the second phase ran is drawn after it: the
/// history follows when runs finished, not the order the study lists them in.
#[test]
fn the_history_orders_runs_by_when_they_finished() {
    let m = "val_loss";
    let lr = |x: f64| ("matrix_lr", Value::Float(x));
    let run = |name: &str, changes: Vec<(&'static str, Value)>, finished: Option<u64>| {
        let cfg = config(&changes);
        let mut c = candidate(name, changes, cfg, 1, &Outcome::Ok, true, m);
        for r in &mut c.repeats {
            r.finished_at = finished;
        }
        c
    };
    let write = |first_finished: [Option<u64>; 2], second_finished: Option<u64>| {
        let mut results = common::study();
        results.phases = vec![
            phase(
                "first",
                &[],
                &["matrix_lr"],
                vec![
                    run("baseline", vec![], first_finished[0]),
                    run("matrix_lr=0.02", vec![lr(0.02)], first_finished[1]),
                ],
            ),
            phase("second", &["first"], &["matrix_lr"], vec![run("matrix_lr=0.05", vec![lr(0.05)], second_finished)]),
        ];
        results.final_run = None;
        let dir = tempfile::tempdir().unwrap();
        let files = report::write_report(&results, dir.path(), &ReportOptions::default()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("figures/history.svg")).unwrap();
        (text, std::fs::read_to_string(files.markdown).unwrap())
    };
    let (first, second) = (hex(lrx::report::figures::CATEGORICAL[0]), hex(lrx::report::figures::CATEGORICAL[1]));

    let (text, md) = write([Some(1_000), Some(9_000)], Some(5_000));
    let svg = roxmltree::Document::parse(&text).unwrap();
    let (a, b) = (dots_x(&svg, &first), dots_x(&svg, &second));
    assert_eq!((a.len(), b.len()), (2, 1), "{a:?} {b:?}\n{text}");
    assert!(a[0] < b[0] && b[0] < a[1], "the second phase's run finished between the first's two: {a:?} {b:?}");
    assert!(md.contains("in the order the runs finished, one colour per phase"), "{md}");
    assert!(texts(&svg).iter().any(|t| t == "run (in the order they finished)"), "{:?}", texts(&svg));

    // Without finish times (results of an older lrx): listed order, and the caption says so.
    let (text, md) = write([None, None], None);
    let svg = roxmltree::Document::parse(&text).unwrap();
    let (a, b) = (dots_x(&svg, &first), dots_x(&svg, &second));
    assert!(a[1] < b[0], "listed order: {a:?} {b:?}");
    assert!(md.contains("in listed order (phase by phase, candidates as listed): no run has a recorded finish time"));

    // Some without: each follows the run listed before it.
    let (text, md) = write([Some(1_000), None], Some(500));
    let svg = roxmltree::Document::parse(&text).unwrap();
    let (a, b) = (dots_x(&svg, &first), dots_x(&svg, &second));
    assert!(b[0] < a[0] && a[0] < a[1], "{a:?} {b:?}");
    assert!(md.contains("(1 of 3 have no recorded finish time and follow the run listed before them)"), "{md}");
}

/// Gradient norm, learning rates and balance loss from a history as the built-in trainer
/// logs them.
fn with_dynamics(history: &mut [lrx::spec::HistoryRow], lr: f64, grad: bool, lrs: bool, aux: bool) {
    for h in history {
        let t = h.step as f64;
        if grad {
            h.metrics.insert("grad_norm".into(), 2.0 / (1.0 + t / 50.0));
        }
        if lrs {
            h.metrics.insert("lr_matrix".into(), lr * h.metrics["lr"]);
            h.metrics.insert("lr_embedding".into(), 15.0 * lr * h.metrics["lr"]);
        }
        if aux {
            h.metrics.insert("aux_loss".into(), 0.01 + 0.002 * (-t / 80.0).exp());
        }
    }
}

#[test]
fn the_winner_and_runner_up_show_their_gradient_norm_learning_rates_and_balance_loss() {
    let mut results = common::study();
    let p = &mut results.phases[0];
    let lead = p.lead().expect("a runner-up");
    let (w, r) = (p.winner.unwrap(), lead.runner_up);
    for i in [w, r] {
        let lr = p.candidates[i].config.as_ref().unwrap().train.matrix_lr;
        for rep in &mut p.candidates[i].repeats {
            with_dynamics(&mut rep.history, lr, true, true, true);
        }
    }
    let (winner, runner_up) = (p.candidates[w].variant.clone(), p.candidates[r].variant.clone());
    let name = p.name.clone();
    // A phase whose trainer (a script) recorded only the gradient norm.
    let q = &mut results.phases[2];
    let qw = q.winner.unwrap();
    for rep in &mut q.candidates[qw].repeats {
        with_dynamics(&mut rep.history, 0.01, true, false, false);
    }
    let script = q.name.clone();
    let dir = tempfile::tempdir().unwrap();
    let files = report::write_report(&results, dir.path(), &ReportOptions::default()).unwrap();
    let path = dir.path().join(format!("figures/{name}-dynamics.svg"));
    assert!(files.figures.contains(&path), "{:?}", files.figures);
    let text = std::fs::read_to_string(&path).unwrap();
    let svg = roxmltree::Document::parse(&text).unwrap();
    let labels = texts(&svg);
    for want in [
        format!("{name}: gradient norm"),
        "learning rate per parameter group".to_owned(),
        "MoE balance loss".to_owned(),
        "matrix".to_owned(),
        "embedding".to_owned(),
    ] {
        assert!(labels.contains(&want), "no `{want}`: {labels:?}");
    }
    assert!(labels.iter().any(|l| l.ends_with("(winner)")) && labels.iter().any(|l| l.ends_with("(runner-up)")));
    // Two runs: each quantity drawn once per run, the runner-up's dashed (drawn in pieces).
    let paths = svg.descendants().filter(|n| n.has_tag_name("polyline")).count();
    assert!(paths >= 8, "{paths} lines:\n{text}");
    // The LR axis is logarithmic: the groups differ fifteenfold.
    assert!(labels.iter().any(|l| l == "learning rate (log)"), "{labels:?}");
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    // The italic caption under the figure's line.
    let caption_of = |stem: &str| {
        let lines: Vec<&str> = md.lines().collect();
        let at = lines.iter().position(|l| l.contains(&format!("{stem}-dynamics.svg)")))?;
        lines[at + 1..].iter().find(|l| !l.trim().is_empty()).map(|l| (*l).to_owned())
    };
    let caption = caption_of(&name).expect("a caption");
    assert!(
        caption.contains(&format!("`{winner}` (solid) and the runner-up `{runner_up}` (dashed)"))
            && caption.contains("gradient norm, learning rate per parameter group, MoE balance loss"),
        "{caption}"
    );

    // What the script did not record is named, and not drawn.
    let caption = caption_of(&script).expect("the script's figure");
    assert!(
        caption.contains("learning rate per parameter group and MoE balance loss were not recorded by this trainer"),
        "{caption}"
    );
    let text = std::fs::read_to_string(dir.path().join(format!("figures/{script}-dynamics.svg"))).unwrap();
    let labels = texts(&roxmltree::Document::parse(&text).unwrap());
    assert!(!labels.iter().any(|l| l.contains("learning rate") || l.contains("balance")), "{labels:?}");
    // A phase where neither run recorded any of them has no such figure.
    let none = &results.phases[1].name;
    assert!(!dir.path().join(format!("figures/{none}-dynamics.svg")).exists());
}
