//! `lrx show`'s tables at a terminal's width: what is left out on a narrow terminal, what
//! stays, and the same tables through the binary with `COLUMNS`.

use super::harness::Test;
use super::results_fixture as common;

use lrx::report::table::short_variant;
use lrx::report::{TableOptions, render_tables};

fn tables(width: Option<usize>) -> String {
    render_tables(&common::study(), &TableOptions { width, ..TableOptions::default() })
}

fn widest(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

#[test]
fn tables_at_80_columns() {
    let t = tables(Some(80));
    assert!(widest(&t) <= 80, "wider than 80:\n{t}");
    insta::assert_snapshot!(t);
}

#[test]
fn tables_at_120_columns() {
    let t = tables(Some(120));
    assert!(widest(&t) <= 120, "wider than 120:\n{t}");
    insta::assert_snapshot!(t);
}

#[test]
fn narrow_tables_keep_the_objective_the_keys_and_the_winner() {
    let wide = tables(None);
    let narrow = tables(Some(80));
    assert!(widest(&wide) > 80, "the fixture's tables need more than 80 columns:\n{wide}");
    for needed in ["val_loss (objective)", "matrix_lr", "status", "phase lr_sweep", "final combined"] {
        assert!(narrow.contains(needed), "`{needed}` left out:\n{narrow}");
    }
    // The winner's row is still marked, and its objective still printed.
    assert!(narrow.lines().any(|l| l.trim_start().starts_with('*') && l.contains("0.031623")), "{narrow}");
    // Nobody asked for throughput, and the always-`yes` cache column is gone.
    for gone in ["tokens/s", "cached"] {
        assert!(!wide.contains(gone), "`{gone}` shown:\n{wide}");
    }
    let with = render_tables(&common::study(), &TableOptions { throughput: true, ..TableOptions::default() });
    assert!(with.contains("tokens/s") && with.contains("time"), "{with}");
}

#[test]
fn variant_names_lose_round_trip_floats_only() {
    assert_eq!(short_variant("matrix_lr=0.0031622776601683794"), "matrix_lr=0.0031623");
    assert_eq!(short_variant("matrix_lr=0.03"), "matrix_lr=0.03");
    assert_eq!(short_variant("lr=1e-3, wd=0.1"), "lr=1e-3, wd=0.1");
    assert_eq!(short_variant("cosine(warmup=0.031622776601683794)"), "cosine(warmup=0.031623)");
    assert_eq!(short_variant("x2=0.12345678"), "x2=0.12346");
    assert_eq!(short_variant("baseline"), "baseline");
}

/// A script trainer: `val_loss` from the learning rate alone, best at 0.01 (no training, no
/// corpus), optionally after a pause.
pub(crate) const SCRIPT: &str = "sleep \"${3:-0}\"\nawk -v lr=\"$1\" 'BEGIN { l = log(lr / 0.01); printf \"{\\\"val_loss\\\": %.6f}\\n\", 2 + l * l }' > \"$2/metrics.json\"\n";

/// A study of the script's runs over `lrs`, each pausing `pause` seconds.
pub(crate) fn script_study(lrs: &str, pause: &str) -> String {
    format!(
        "train {{\n  trainer = command(\"sh train.sh {{matrix_lr}} {{out}} {pause}\")\n}}\n\nobjective minimize val_loss\n\nphase lr {{\n  vary matrix_lr in [{lrs}]\n}}\n"
    )
}

#[test]
fn the_binary_fits_columns_and_prints_full_tables_into_a_pipe() {
    let t = Test::new()
        .file("train.sh", SCRIPT)
        .file("study.lrx", &script_study("0.003162277660168379, 0.01, 0.03", "0"))
        .args(&["run", "study.lrx", "-q"])
        .run();
    assert_eq!(t.code, 0, "{t}");
    let show = |columns: Option<&str>| {
        let mut cmd = super::harness::lrx(&t.dir);
        cmd.args(["show", "study.lrx"]);
        if let Some(c) = columns {
            cmd.env("COLUMNS", c);
        }
        super::harness::text(&cmd.output().expect("lrx runs").stdout)
    };
    let piped = show(None);
    assert!(piped.contains("matrix_lr=0.0031623") && !piped.contains("0.003162277660168379"), "{piped}");
    let narrow = show(Some("40"));
    assert!(widest(&narrow) <= 40, "COLUMNS=40 not honoured:\n{narrow}");
    assert!(widest(&piped) > 40, "{piped}");
}
