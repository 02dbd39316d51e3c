//! The comparison of two studies (`lrx diff`, and the report's "Compared with" section): its
//! model, which `ops::diff` fills from the two studies' plans and cached results, and its
//! rendering, shared by the terminal view (the cell texts) and the report (the section).

use serde::Serialize;

use crate::results::{CandidateStatus, PhaseStatus};
use crate::spec::Goal;

use super::doc::{Block, Cell, Doc, Table, Text};
use super::format::{num, signed};

/// One study as compared: its label (a path, or `path@rev`) and its results.
#[derive(Clone, Debug, Serialize)]
pub struct Side {
    pub label: String,
    pub study: String,
    pub metric: String,
    pub goal: Goal,
    /// The final run's objective, when cached.
    #[serde(rename = "final")]
    pub final_objective: Option<f64>,
    /// The final run's changes to the root config (`matrix_lr=0.04, ...`).
    pub final_changes: Option<String>,
    pub runs: usize,
    pub cached: usize,
}

/// A root-config key whose value differs (`None`: the key is not set on that side).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigChange {
    pub key: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

/// One phase on one side.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseSide {
    pub status: PhaseStatus,
    pub winner: Option<String>,
    pub objective: Option<f64>,
    pub candidates: usize,
    /// Candidates with a cached result.
    pub cached: usize,
}

/// A phase of either study.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseDiff {
    pub name: String,
    pub a: Option<PhaseSide>,
    pub b: Option<PhaseSide>,
    /// B's objective minus A's, where both have one (same metric).
    pub delta: Option<f64>,
    /// Whether B's winner is better than A's (by B's goal), where both have one.
    pub improved: Option<bool>,
    /// Candidates only B has, and only A has (by variant name).
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// The swept keys differ.
    pub sweeps: Option<(Vec<String>, Vec<String>)>,
}

/// A candidate without a cached result, so its side says nothing about it yet.
#[derive(Clone, Debug, Serialize)]
pub struct NotCached {
    /// `a` or `b`.
    pub side: String,
    pub phase: String,
    pub variant: String,
    pub status: CandidateStatus,
}

/// Everything `lrx diff` shows.
#[derive(Clone, Debug, Serialize)]
pub struct StudyDiff {
    pub a: Side,
    pub b: Side,
    /// The objective changed (metric or goal): deltas are not computed.
    pub objective_changed: bool,
    pub config: Vec<ConfigChange>,
    pub phases: Vec<PhaseDiff>,
    pub final_delta: Option<f64>,
    pub not_cached: Vec<NotCached>,
}

/// A side's winner in a phase: its short variant, `none (status)`, or `(no such phase)`.
pub fn winner_text(s: Option<&PhaseSide>) -> String {
    match s {
        None => "(no such phase)".into(),
        Some(s) => s.winner.as_deref().map_or_else(
            || format!("none ({})", format!("{:?}", s.status).to_lowercase()),
            super::table::short_variant,
        ),
    }
}

/// A side's winning objective in a phase, `—` without one.
pub fn objective_text(s: Option<&PhaseSide>) -> String {
    s.and_then(|s| s.objective).map_or_else(|| "—".into(), num)
}

/// B − A in words: `-0.0123 better`, `+0.01 worse`, `same`, or `—`.
pub fn change_text(delta: Option<f64>, improved: Option<bool>) -> String {
    match (delta, improved) {
        (Some(d), Some(true)) => format!("{} better", signed(d)),
        (Some(d), Some(false)) if d != 0.0 => format!("{} worse", signed(d)),
        (Some(_), _) => "same".into(),
        _ => "—".into(),
    }
}

/// How a phase's candidates changed: `same`, `+2 −1`, `new phase`, `phase removed`.
pub fn candidates_text(p: &PhaseDiff) -> String {
    match (&p.a, &p.b) {
        (Some(_), Some(_)) if p.added.is_empty() && p.removed.is_empty() => "same".to_owned(),
        (Some(_), Some(_)) => format!("+{} \u{2212}{}", p.added.len(), p.removed.len()),
        (None, Some(_)) => "new phase".to_owned(),
        (Some(_), None) => "phase removed".to_owned(),
        (None, None) => String::new(),
    }
}

impl StudyDiff {
    /// Whether B's final run is better than A's, where both have one.
    pub fn final_improved(&self) -> Option<bool> {
        self.final_delta.map(|x| if self.b.goal == Goal::Maximize { x > 0.0 } else { x < 0.0 })
    }
}

fn goal_word(g: Goal) -> &'static str {
    if g == Goal::Minimize { "minimize" } else { "maximize" }
}

/// The report's "Compared with …" section: this study (B) against the other (A).
pub fn section(doc: &mut Doc, d: &StudyDiff) {
    doc.heading(2, Text::new().plain("Compared with ").code(&d.a.label));
    let side = |s: &Side| {
        Text::new()
            .code(&s.label)
            .plain(format!(" (study {}, {} ", s.study, goal_word(s.goal)))
            .code(&s.metric)
            .plain(format!("; {} of {} runs cached)", s.cached, s.runs))
    };
    let labelled = |head: &str, s: &Side| {
        let mut t = Text::new().strong(head).plain(" ");
        t.0.extend(side(s).0);
        t
    };
    let mut items = vec![labelled("A:", &d.a), labelled("B (this study):", &d.b)];
    if d.config.is_empty() {
        items.push(Text::new().plain("The same root config."));
    } else {
        for c in &d.config {
            items.push(
                Text::new()
                    .plain("Root config ")
                    .code(&c.key)
                    .plain(": ")
                    .code(c.a.as_deref().unwrap_or("(unset)"))
                    .plain(" \u{2192} ")
                    .code(c.b.as_deref().unwrap_or("(unset)")),
            );
        }
    }
    doc.push(Block::List(items));
    if d.objective_changed {
        doc.push(Block::Note(
            Text::new().strong("The objective changed:").plain(" objectives are shown side by side, not compared."),
        ));
    }
    let mut t = Table::new(vec![
        ("phase".into(), false),
        ("A winner".into(), false),
        ("A objective".into(), true),
        ("B winner".into(), false),
        ("B objective".into(), true),
        ("B \u{2212} A".into(), true),
        ("candidates".into(), false),
    ]);
    for p in &d.phases {
        let (a, b) = (p.a.as_ref(), p.b.as_ref());
        t.push(
            vec![
                Cell::text(Text::new().code(&p.name)),
                Cell::text(Text::new().code(winner_text(a))),
                Cell::num(objective_text(a), a.and_then(|s| s.objective)),
                Cell::text(Text::new().code(winner_text(b))),
                Cell::num(objective_text(b), b.and_then(|s| s.objective)),
                Cell::num(change_text(p.delta, p.improved), p.delta),
                Cell::text(candidates_text(p)),
            ],
            false,
            b.is_none(),
        );
    }
    let fin = |o: Option<f64>| o.map_or_else(|| "—".into(), num);
    if d.a.final_changes.is_some() || d.b.final_changes.is_some() {
        t.push(
            vec![
                Cell::text("final"),
                Cell::text(Text::new().code(d.a.final_changes.clone().unwrap_or_else(|| "(none)".into()))),
                Cell::num(fin(d.a.final_objective), d.a.final_objective),
                Cell::text(Text::new().code(d.b.final_changes.clone().unwrap_or_else(|| "(none)".into()))),
                Cell::num(fin(d.b.final_objective), d.b.final_objective),
                Cell::num(change_text(d.final_delta, d.final_improved()), d.final_delta),
                Cell::text(""),
            ],
            false,
            false,
        );
    }
    doc.para(Text::new().plain(
        "Each phase's winner and its objective on either side, from cached runs; B \u{2212} A compares them where both have one and the objective is the same.",
    ));
    doc.push(Block::Table(t));
    let mut changes = Vec::new();
    for p in &d.phases {
        if let Some((a, b)) = &p.sweeps {
            changes.push(
                Text::new().code(&p.name).plain(": sweeps ").code(a.join(", ")).plain(" \u{2192} ").code(b.join(", ")),
            );
        }
        for v in &p.added {
            changes.push(Text::new().code(&p.name).plain(": added ").code(v));
        }
        for v in &p.removed {
            changes.push(Text::new().code(&p.name).plain(": removed ").code(v));
        }
    }
    if !changes.is_empty() {
        doc.push(Block::List(changes));
    }
    let (na, nb) =
        (d.not_cached.iter().filter(|n| n.side == "a").count(), d.not_cached.iter().filter(|n| n.side == "b").count());
    if na + nb > 0 {
        doc.para(format!(
            "Not cached, so not compared yet: {na} runs of A and {nb} of B (`lrx diff` lists them; `lrx run` trains them)."
        ));
    }
}
