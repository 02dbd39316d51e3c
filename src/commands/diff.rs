//! `lrx diff A.lrx B.lrx` and `lrx diff study.lrx --rev REV`: two studies side by side from the
//! cache (trains nothing): config changes, each phase's winner and objective, the final run.

use std::path::Path;

use comfy_table::{CellAlignment, ContentArrangement, Table, TableComponent, presets};

use crate::cli::{DiffArgs, GlobalArgs};
use crate::ops::diff::{self, StudyDiff};
use crate::report::compare::{candidates_text, change_text, objective_text, winner_text};
use crate::report::format::num;

use super::Exit;
use super::load::{Loaded, load, load_text};
use super::study::open_loaded;

pub(crate) fn run(args: &DiffArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    let Some((label_a, loaded_a)) = load_side(&args.a, args.rev.as_deref(), g)? else { return Ok(Exit::Failure) };
    let b_file = args.b.as_deref().unwrap_or(&args.a);
    let loaded_b = load(b_file, g)?;
    let (Loaded::Ok(plan_a), Loaded::Ok(plan_b)) = (loaded_a, loaded_b) else { return Ok(Exit::Failure) };
    let study_a = open_loaded(*plan_a, &args.a, &args.device, g)?;
    let study_b = open_loaded(*plan_b, b_file, &args.device, g)?;
    let (results_a, results_b) = (study_a.dry()?, study_b.dry()?);
    let label_b = b_file.display().to_string();
    let d = diff::diff((&label_a, &study_a.plan, &results_a), (&label_b, &study_b.plan, &results_b));
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        out!("{}", render(&d));
    }
    if !d.not_cached.is_empty() {
        noteln!("note: {} runs have no cached result; `lrx run` trains them (nothing was trained)", d.not_cached.len());
    }
    Ok(Exit::Success)
}

/// The study a comparison is against: `file` at git revision `rev`, or as it is, and its label
/// (`path@rev`, `path`). `None` once a revision that cannot be read is reported.
pub(super) fn load_side(file: &Path, rev: Option<&str>, g: &GlobalArgs) -> anyhow::Result<Option<(String, Loaded)>> {
    let Some(rev) = rev else { return Ok(Some((file.display().to_string(), load(file, g)?))) };
    let text = match diff::read_at_revision(file, rev) {
        Ok(text) => text,
        Err(e @ (diff::DiffError::BadRevision(_) | diff::DiffError::NotAtRevision { .. })) => {
            errln!("error: {e}");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let label = format!("{}@{rev}", file.display());
    let loaded = load_text(&text, &label, &crate::ops::study::base_dir(file), g)?;
    Ok(Some((label, loaded)))
}

/// The terminal text: the two sides, config changes, phases side by side, what is not cached.
fn render(d: &StudyDiff) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for (name, side) in [("A", &d.a), ("B", &d.b)] {
        let goal = if side.goal == crate::spec::Goal::Minimize { "minimize" } else { "maximize" };
        let _ = writeln!(
            s,
            "{name}: {} (study {}, {goal} {}; {} of {} runs cached)",
            side.label, side.study, side.metric, side.cached, side.runs
        );
    }
    if d.objective_changed {
        s.push_str("the objective changed: objectives are shown, not compared\n");
    }
    s.push('\n');
    if d.config.is_empty() {
        s.push_str("config: the same root config\n");
    } else {
        s.push_str("config (A → B):\n");
        for c in &d.config {
            let _ = writeln!(
                s,
                "  {}: {} → {}",
                c.key,
                c.a.as_deref().unwrap_or("(unset)"),
                c.b.as_deref().unwrap_or("(unset)")
            );
        }
    }
    s.push('\n');
    let mut t = Table::new();
    t.force_no_tty()
        .load_preset(presets::UTF8_HORIZONTAL_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled)
        .remove_style(TableComponent::HorizontalLines)
        .remove_style(TableComponent::MiddleIntersections)
        .remove_style(TableComponent::LeftBorderIntersections)
        .remove_style(TableComponent::RightBorderIntersections)
        .set_header(["phase", "A winner", "A objective", "B winner", "B objective", "B − A", "candidates"]);
    for (i, right) in [(2, true), (4, true), (5, true)] {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(if right { CellAlignment::Right } else { CellAlignment::Left });
        }
    }
    for p in &d.phases {
        t.add_row([
            p.name.clone(),
            winner_text(p.a.as_ref()),
            objective_text(p.a.as_ref()),
            winner_text(p.b.as_ref()),
            objective_text(p.b.as_ref()),
            change_text(p.delta, p.improved),
            candidates_text(p),
        ]);
    }
    let final_obj = |o: Option<f64>| o.map_or_else(|| "—".into(), num);
    t.add_row([
        "final".to_owned(),
        d.a.final_changes.clone().unwrap_or_else(|| "(none)".into()),
        final_obj(d.a.final_objective),
        d.b.final_changes.clone().unwrap_or_else(|| "(none)".into()),
        final_obj(d.b.final_objective),
        change_text(d.final_delta, d.final_improved()),
        String::new(),
    ]);
    let _ = writeln!(s, "{t}");
    for p in &d.phases {
        if let Some((a, b)) = &p.sweeps {
            let _ = writeln!(s, "  {}: sweeps {} → {}", p.name, a.join(", "), b.join(", "));
        }
        for v in &p.added {
            let _ = writeln!(s, "  {}: + {v}", p.name);
        }
        for v in &p.removed {
            let _ = writeln!(s, "  {}: − {v}", p.name);
        }
    }
    if !d.not_cached.is_empty() {
        s.push_str("\nnot cached (no result to compare yet):\n");
        for n in &d.not_cached {
            let status =
                serde_json::to_value(n.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            let _ = writeln!(s, "  {} {} {} ({status})", n.side.to_uppercase(), n.phase, n.variant);
        }
    }
    s
}
