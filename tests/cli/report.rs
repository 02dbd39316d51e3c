//! The report from a hand-built study: Markdown numbers match the results, every SVG parses
//! and draws the expected series, the HTML stands alone. Set `LRX_REPORT_OUT=DIR` to keep a
//! copy of the report for looking at.

use super::results_fixture as common;

use std::collections::HashSet;
use std::path::Path;

use lrx::report::{self, ReportOptions};

fn write(results: &lrx::results::StudyResults) -> (tempfile::TempDir, report::ReportFiles) {
    let dir = tempfile::tempdir().unwrap();
    let files = report::write_report(results, dir.path(), &ReportOptions::default()).unwrap();
    (dir, files)
}

#[test]
fn keep_a_copy_when_asked() {
    if let Some(keep) = std::env::var_os("LRX_REPORT_OUT") {
        let results = common::study();
        let files = report::write_report(&results, Path::new(&keep), &ReportOptions::default()).unwrap();
        assert!(files.markdown.exists());
        // The CSV outputs beside it, as `lrx run` leaves them (for trying the pandas snippet).
        lrx::exec::outputs::write_all(&results, Path::new(&keep)).unwrap();
    }
}

/// The Markdown table that follows a phase's heading, as rows of cells.
fn phase_table(md: &str, phase: &str) -> Vec<Vec<String>> {
    let start = md.find(&format!("## Phase `{phase}`")).unwrap_or_else(|| panic!("no section for {phase}"));
    let rest = &md[start..];
    let table_start = rest.find("\n| ").unwrap() + 1;
    rest[table_start..]
        .lines()
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().trim_matches('*').to_owned()).collect())
        .collect()
}

fn svg_texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.descendants().filter(|n| n.has_tag_name("text")).filter_map(|n| n.text()).map(|t| t.trim().to_owned()).collect()
}

fn polyline_colors(doc: &roxmltree::Document<'_>) -> HashSet<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .filter_map(|n| n.attribute("stroke"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn markdown_tables_carry_the_results_numbers() {
    let results = common::study();
    let (_dir, files) = write(&results);
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    let sweep = &results.phases[0];
    let rows = phase_table(&md, "lr_sweep");
    let header = &rows[0];
    let col =
        |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    let (variant, objective, acc, ppl, status) =
        (col("variant"), col("objective (val_loss)"), col("val_accuracy"), col("val_ppl"), col("status"));
    assert_eq!(rows.len() - 2, sweep.candidates.len(), "one row per candidate");
    for row in &rows[2..] {
        let name = row[variant].trim_start_matches('`').split('`').next().unwrap();
        let c = sweep.candidates.iter().find(|c| c.variant == name).unwrap_or_else(|| panic!("row for unknown {name}"));
        let close = |cell: &str, want: f64| {
            let got: f64 = cell.parse().unwrap_or_else(|_| panic!("{cell:?} is not a number"));
            assert!((got - want).abs() <= want.abs() * 1e-4, "{name}: {got} vs {want}");
        };
        match c.objective {
            Some(o) => close(&row[objective], o),
            None => assert_eq!(row[objective], "—"),
        }
        if let Some(a) = c.metrics.get("val_accuracy") {
            close(&row[acc], *a);
        }
        if let Some(p) = c.metrics.get("val_ppl") {
            close(&row[ppl], *p);
        }
        if c.status == lrx::results::CandidateStatus::Diverged {
            assert_eq!(row[status], "diverged @ 120");
        }
    }
    // Sorted best first, the winner marked.
    let w = sweep.winner().unwrap();
    assert!(rows[2][variant].contains(&w.variant) && rows[2][variant].contains('★'), "{:?}", rows[2]);
    // Summary: the final run against the root baseline, in absolute terms and percent.
    let root = sweep.candidates[0].objective.unwrap();
    let fin = results.final_run.as_ref().unwrap().objective.unwrap();
    let want =
        format!("{} (root baseline) → {} (final run)", lrx::report::format::num(root), lrx::report::format::num(fin));
    assert!(md.contains(&want), "summary lacks `{want}`");
    assert!(md.contains(&lrx::report::format::percent((fin - root) / root * 100.0)));
}

#[test]
fn every_figure_parses_and_draws_each_candidate() {
    let results = common::study();
    let (dir, files) = write(&results);
    assert!(!files.figures.is_empty());
    for f in &files.figures {
        let text = std::fs::read_to_string(f).unwrap();
        roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
    let names: HashSet<String> =
        files.figures.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for expected in [
        "lr_sweep-loss.svg",
        "lr_sweep-sweep.svg",
        "warmup-sweep.svg",
        "warmup-schedule.svg",
        "interaction-heatmap.svg",
        "schedule_shape-schedule.svg",
        "adam_lrs-sweep.svg",
        "final-loss.svg",
    ] {
        assert!(names.contains(expected), "missing {expected} in {names:?}");
    }
    assert!(!names.contains("schedule_shape-sweep.svg"), "a non-numeric sweep has no sweep plot");

    // Loss curves: one colour per candidate, a legend label per candidate.
    let sweep = &results.phases[0];
    let text = std::fs::read_to_string(dir.path().join("figures/lr_sweep-loss.svg")).unwrap();
    let svg = roxmltree::Document::parse(&text).unwrap();
    let labels = svg_texts(&svg);
    let colors = lrx::report::figures::palette(sweep.candidates.len(), Some(0));
    let strokes = polyline_colors(&svg);
    for (i, c) in sweep.candidates.iter().enumerate() {
        let short = match c.changes.first() {
            None => "baseline".to_owned(),
            Some((k, v)) => format!("{k}={}", lrx::report::format::value(v)),
        };
        assert!(labels.iter().any(|l| l.starts_with(&short)), "no legend label for {short}: {labels:?}");
        assert!(strokes.contains(&lrx::report::figures::hex(colors[i])), "no curve drawn for {short}");
    }
    assert!(labels.iter().any(|l| l.contains("diverged @ 120")));
    assert!(labels.contains(&"step".to_owned()) && labels.contains(&"loss (nats/token)".to_owned()));

    // The sweep plot is on a log axis, with the baseline as a reference line.
    let text = std::fs::read_to_string(dir.path().join("figures/lr_sweep-sweep.svg")).unwrap();
    let labels = svg_texts(&roxmltree::Document::parse(&text).unwrap());
    assert!(labels.iter().any(|l| l == "matrix_lr (log scale)"), "{labels:?}");
    assert!(labels.iter().any(|l| l.starts_with("baseline (")));

    // Two one-factor sweeps in a phase: one line per key.
    let text = std::fs::read_to_string(dir.path().join("figures/adam_lrs-sweep.svg")).unwrap();
    let labels = svg_texts(&roxmltree::Document::parse(&text).unwrap());
    assert!(
        labels.iter().any(|l| l.starts_with("embedding_lr")) && labels.iter().any(|l| l.starts_with("unembedding_lr")),
        "{labels:?}"
    );

    // The heat map: a cell per grid point, the failed one marked.
    let text = std::fs::read_to_string(dir.path().join("figures/interaction-heatmap.svg")).unwrap();
    let labels = svg_texts(&roxmltree::Document::parse(&text).unwrap());
    assert!(labels.iter().any(|l| l == "✕ failed"), "{labels:?}");
    assert!(labels.iter().any(|l| l == "★ winner"));
    for v in ["0.03", "0.05", "0.08", "0.1", "0.2", "0.4"] {
        assert!(labels.iter().any(|l| l == v), "no tick {v}: {labels:?}");
    }

    // Schedules: one line per candidate, labelled with its schedule.
    let shapes = &results.phases[3];
    let text = std::fs::read_to_string(dir.path().join("figures/schedule_shape-schedule.svg")).unwrap();
    let svg = roxmltree::Document::parse(&text).unwrap();
    let labels = svg_texts(&svg);
    assert!(labels.iter().any(|l| l == "LR multiplier"));
    let strokes = polyline_colors(&svg);
    for (i, c) in lrx::report::figures::palette(shapes.candidates.len(), Some(0)).iter().enumerate() {
        assert!(strokes.contains(&lrx::report::figures::hex(*c)), "no schedule line for candidate {i}");
    }
    assert!(labels.iter().any(|l| l.starts_with("schedule=cosine(")), "{labels:?}");
}

#[test]
fn html_is_self_contained() {
    let results = common::study();
    let (_dir, files) = write(&results);
    let html = std::fs::read_to_string(files.html.as_ref().unwrap()).unwrap();
    assert!(!html.contains("http"), "the page references the network");
    assert!(!html.contains(" src="), "the page loads something");
    assert_eq!(html.matches("<svg").count(), files.figures.len(), "every figure inline");
    assert!(html.contains("<table class=\"sortable\">") && html.contains("<script>"));
    assert!(html.contains("class=\"winner\""));
}

#[test]
fn terminal_tables_mark_the_winner_sort_and_cut() {
    use lrx::report::{TableOptions, render_tables};
    let results = common::study();
    let all = render_tables(&results, &TableOptions::default());
    if std::env::var_os("LRX_REPORT_OUT").is_some() {
        println!("{all}");
    }
    for p in &results.phases {
        assert!(all.contains(&format!("phase {}", p.name)), "no table for {}", p.name);
    }
    assert!(all.contains("final combined"));
    assert!(!all.contains('\u{1b}'), "no escape codes without colour");
    let winner_line =
        all.lines().find(|l| l.contains("matrix_lr=0.03162277660168379") && l.trim_start().starts_with('*'));
    assert!(winner_line.is_some(), "winner marked with `*`:\n{all}");

    let opts = TableOptions { phase: Some("lr_sweep".into()), top: Some(3), ..TableOptions::default() };
    let top = render_tables(&results, &opts);
    assert!(!top.contains("phase warmup") && !top.contains("final"));
    let rows: Vec<&str> = top.lines().filter(|l| l.contains("matrix_lr=") || l.contains("baseline ")).collect();
    assert_eq!(rows.len(), 3 + 1, "three rows and the title line:\n{top}");
    assert!(top.contains("(best 3 of 7 candidates)"));

    let opts =
        TableOptions { phase: Some("lr_sweep".into()), sort: Some("matrix_lr".into()), ..TableOptions::default() };
    let by_lr = render_tables(&results, &opts);
    let order: Vec<usize> =
        ["matrix_lr=0.001 ", "matrix_lr=0.0031622776601683794", " baseline ", "matrix_lr=0.1 ", "matrix_lr=1 "]
            .iter()
            .map(|v| by_lr.find(v).unwrap_or_else(|| panic!("{v} missing:\n{by_lr}")))
            .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "sorted by matrix_lr:\n{by_lr}");

    let colored = render_tables(&results, &TableOptions { color: true, ..TableOptions::default() });
    assert!(colored.contains('\u{1b}'), "colour codes with colour on");

    let bad = TableOptions { sort: Some("val_los".into()), ..TableOptions::default() };
    assert_eq!(bad.check(&results).unwrap_err(), "cannot sort by `val_los`; did you mean `val_loss`?");
    let bad = TableOptions { phase: Some("warmpu".into()), ..TableOptions::default() };
    assert_eq!(bad.check(&results).unwrap_err(), "no phase `warmpu` in study `muon_adamw`; did you mean `warmup`?");
}

/// Seed 000's sweep: 26 log-spaced learning rates, the largest diverging.
#[test]
fn a_26_value_sweep_keeps_every_candidate_apart() {
    use common::{Outcome, candidate, config, phase};
    let m = "val_loss";
    let mut c = vec![candidate("baseline", vec![], config(&[]), 1, &Outcome::Ok, true, m)];
    for i in 0..26 {
        let lr = 10f64.powf(-3.0 + 3.0 * f64::from(i) / 25.0);
        let outcome = if lr > 0.5 { Outcome::Diverged(60 + i as u64) } else { Outcome::Ok };
        c.push(candidate(
            &format!("matrix_lr={lr}"),
            vec![("matrix_lr", lrx::spec::Value::Float(lr))],
            config(&[("matrix_lr", lrx::spec::Value::Float(lr))]),
            1,
            &outcome,
            true,
            m,
        ));
    }
    let mut results = common::study();
    results.phases = vec![phase("lr_26", &[], &["matrix_lr"], c)];
    results.final_run = None;
    let (dir, _files) = write(&results);
    if let Some(keep) = std::env::var_os("LRX_REPORT_OUT") {
        report::write_report(&results, &Path::new(&keep).join("sweep26"), &ReportOptions::default()).unwrap();
    }
    let text = std::fs::read_to_string(dir.path().join("figures/lr_26-loss.svg")).unwrap();
    let svg = roxmltree::Document::parse(&text).unwrap();
    assert_eq!(
        polyline_colors(&svg)
            .iter()
            .filter(|c| lrx::report::figures::palette(27, Some(0)).iter().any(|p| lrx::report::figures::hex(*p) == **c))
            .count(),
        27
    );
    let legend: Vec<String> =
        svg_texts(&svg).into_iter().filter(|t| t.starts_with("matrix_lr=") || t == "baseline").collect();
    assert_eq!(legend.len(), 27, "{legend:?}");
    let root = svg.root_element();
    let height: f64 = root.attribute("height").unwrap().parse().unwrap();
    assert!(height >= 27.0 * 18.0, "the figure grows to fit its legend");
}
