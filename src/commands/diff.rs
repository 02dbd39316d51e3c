//! `lrx diff A.lrx B.lrx` and `lrx diff study.lrx --rev REV`: two studies side by side from the
//! cache (trains nothing): config changes, each phase's winner and objective, the final run.

use comfy_table::{CellAlignment, ContentArrangement, Table, TableComponent, presets};

use crate::cli::{DiffArgs, GlobalArgs};
use crate::ops::diff::{self, PhaseSide, StudyDiff};
use crate::report::format::{num, signed};

use super::Exit;
use super::load::{Loaded, load, load_text};
use super::study::open_loaded;

pub(crate) fn run(args: &DiffArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    let (label_a, loaded_a) = match &args.rev {
        Some(rev) => {
            let text = match diff::read_at_revision(&args.a, rev) {
                Ok(text) => text,
                Err(e @ (diff::DiffError::BadRevision(_) | diff::DiffError::NotAtRevision { .. })) => {
                    errln!("error: {e}");
                    return Ok(Exit::Failure);
                }
                Err(e) => return Err(e.into()),
            };
            let label = format!("{}@{rev}", args.a.display());
            let loaded = load_text(&text, &label, &crate::ops::study::base_dir(&args.a), g)?;
            (label, loaded)
        }
        None => (args.a.display().to_string(), load(&args.a, g)?),
    };
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

fn objective(s: Option<&PhaseSide>) -> String {
    s.and_then(|s| s.objective).map_or_else(|| "—".into(), num)
}

fn winner(s: Option<&PhaseSide>) -> String {
    match s {
        None => "(no such phase)".into(),
        Some(s) => s.winner.as_deref().map_or_else(
            || format!("none ({})", format!("{:?}", s.status).to_lowercase()),
            crate::report::table::short_variant,
        ),
    }
}

fn change(delta: Option<f64>, improved: Option<bool>) -> String {
    match (delta, improved) {
        (Some(d), Some(true)) => format!("{} better", signed(d)),
        (Some(d), Some(false)) if d != 0.0 => format!("{} worse", signed(d)),
        (Some(_), _) => "same".into(),
        _ => "—".into(),
    }
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
        let cands = match (&p.a, &p.b) {
            (Some(_), Some(_)) if p.added.is_empty() && p.removed.is_empty() => "same".to_owned(),
            (Some(_), Some(_)) => format!("+{} −{}", p.added.len(), p.removed.len()),
            (None, Some(_)) => "new phase".to_owned(),
            (Some(_), None) => "phase removed".to_owned(),
            (None, None) => String::new(),
        };
        t.add_row([
            p.name.clone(),
            winner(p.a.as_ref()),
            objective(p.a.as_ref()),
            winner(p.b.as_ref()),
            objective(p.b.as_ref()),
            change(p.delta, p.improved),
            cands,
        ]);
    }
    let final_obj = |o: Option<f64>| o.map_or_else(|| "—".into(), num);
    let improved = d.final_delta.map(|x| if d.b.goal == crate::spec::Goal::Maximize { x > 0.0 } else { x < 0.0 });
    t.add_row([
        "final".to_owned(),
        d.a.final_changes.clone().unwrap_or_else(|| "(none)".into()),
        final_obj(d.a.final_objective),
        d.b.final_changes.clone().unwrap_or_else(|| "(none)".into()),
        final_obj(d.b.final_objective),
        change(d.final_delta, improved),
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
