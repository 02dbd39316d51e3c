//! Two studies side by side (`lrx diff`, `lrx report --compare`): what changed in their configs
//! and phases, and what the cache says each found (winners, objectives), from cached results
//! only. Also reads an older version of a study file out of git, for `--rev HEAD~1`. The
//! comparison's model is `report::compare`, which the terminal view and the report render.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::plan::Plan;
use crate::results::{CandidateResult, CandidateStatus, PhaseResult, StudyResults};
use crate::spec::Goal;

pub use crate::report::compare::{ConfigChange, NotCached, PhaseDiff, PhaseSide, Side, StudyDiff};

/// Why an older version could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A revision git would take for an option (`--output=...`).
    #[error("`{0}` is not a revision (it starts with `-`)")]
    BadRevision(String),
    #[error("cannot run git: {0}")]
    Git(std::io::Error),
    #[error("git cannot show `{file}` at `{rev}`: {message}")]
    NotAtRevision { file: PathBuf, rev: String, message: String },
}

/// The text of `file` at git revision `rev`, through `git show REV:./NAME` run in the file's
/// folder (arguments, no shell).
pub fn read_at_revision(file: &Path, rev: &str) -> Result<String, DiffError> {
    if rev.starts_with('-') || rev.is_empty() {
        return Err(DiffError::BadRevision(rev.to_owned()));
    }
    let dir = super::study::base_dir(file);
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&dir)
        .arg("show")
        .arg(format!("{rev}:./{name}"))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(DiffError::Git)?;
    if !out.status.success() {
        let message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(DiffError::NotAtRevision { file: file.to_owned(), rev: rev.to_owned(), message });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Compares study A (older, or the first named) with study B.
pub fn diff(a: (&str, &Plan, &StudyResults), b: (&str, &Plan, &StudyResults)) -> StudyDiff {
    let (la, pa, ra) = a;
    let (lb, pb, rb) = b;
    let objective_changed = ra.metric != rb.metric || ra.goal != rb.goal;
    let leaves_a = config_leaves(pa);
    let leaves_b = config_leaves(pb);
    let mut config = Vec::new();
    for key in leaves_a.keys().chain(leaves_b.keys()).collect::<std::collections::BTreeSet<_>>() {
        let (x, y) = (leaves_a.get(key), leaves_b.get(key));
        if x != y {
            config.push(ConfigChange { key: key.clone(), a: x.cloned(), b: y.cloned() });
        }
    }
    // B's phases in its order, then those only A has.
    let mut names: Vec<&str> = rb.phases.iter().map(|p| p.name.as_str()).collect();
    names.extend(ra.phases.iter().map(|p| p.name.as_str()).filter(|n| !rb.phases.iter().any(|p| p.name == *n)));
    let find = |r: &'_ StudyResults, n: &str| r.phases.iter().find(|p| p.name == n).cloned();
    let phases = names
        .into_iter()
        .map(|name| {
            let (x, y) = (find(ra, name), find(rb, name));
            phase_diff(name, x.as_ref(), y.as_ref(), objective_changed)
        })
        .collect();
    let final_delta = match (ra.final_run.as_ref().and_then(done), rb.final_run.as_ref().and_then(done)) {
        (Some(x), Some(y)) if !objective_changed => Some(y - x),
        _ => None,
    };
    let mut not_cached = Vec::new();
    for (label, r) in [("a", ra), ("b", rb)] {
        let phases = r.phases.iter().flat_map(|p| p.candidates.iter().map(move |c| (p.name.as_str(), c)));
        for (phase, c) in phases.chain(r.final_run.iter().map(|c| ("final", c))) {
            if !has_result(c) {
                not_cached.push(NotCached {
                    side: label.to_owned(),
                    phase: phase.to_owned(),
                    variant: c.variant.clone(),
                    status: c.status,
                });
            }
        }
    }
    StudyDiff { a: side(la, ra), b: side(lb, rb), objective_changed, config, phases, final_delta, not_cached }
}

/// A candidate's objective where it is a result (cached, all repeats in).
fn done(c: &CandidateResult) -> Option<f64> {
    c.objective.filter(|_| has_result(c))
}

fn has_result(c: &CandidateResult) -> bool {
    matches!(c.status, CandidateStatus::Ok | CandidateStatus::Diverged | CandidateStatus::Pruned)
        || (c.status == CandidateStatus::Failed && !c.repeats.is_empty())
}

fn side(label: &str, r: &StudyResults) -> Side {
    let cands: Vec<&CandidateResult> = r.all_candidates().collect();
    Side {
        label: label.to_owned(),
        study: r.study.clone(),
        metric: r.metric.clone(),
        goal: r.goal,
        final_objective: r.final_run.as_ref().and_then(done),
        final_changes: r.final_run.as_ref().map(changes_text),
        runs: cands.len(),
        cached: cands.iter().filter(|c| has_result(c)).count(),
    }
}

fn changes_text(c: &CandidateResult) -> String {
    if c.changes.is_empty() {
        return "—".to_owned();
    }
    c.changes.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

fn phase_side(p: &PhaseResult) -> PhaseSide {
    PhaseSide {
        status: p.status,
        winner: p.winner().map(|w| w.variant.clone()),
        objective: p.winner().and_then(done),
        candidates: p.candidates.len(),
        cached: p.candidates.iter().filter(|c| has_result(c)).count(),
    }
}

fn phase_diff(name: &str, a: Option<&PhaseResult>, b: Option<&PhaseResult>, objective_changed: bool) -> PhaseDiff {
    let variants = |p: Option<&PhaseResult>| -> Vec<String> {
        p.map(|p| p.candidates.iter().map(|c| c.variant.clone()).collect()).unwrap_or_default()
    };
    let (va, vb) = (variants(a), variants(b));
    let both = a.is_some() && b.is_some();
    let added = if both { vb.iter().filter(|v| !va.contains(v)).cloned().collect() } else { Vec::new() };
    let removed = if both { va.iter().filter(|v| !vb.contains(v)).cloned().collect() } else { Vec::new() };
    let sweeps = match (a, b) {
        (Some(x), Some(y)) if x.swept != y.swept => Some((x.swept.clone(), y.swept.clone())),
        _ => None,
    };
    let (sa, sb) = (a.map(phase_side), b.map(phase_side));
    let comparable = !objective_changed && a.zip(b).is_some_and(|(x, y)| x.metric == y.metric && x.goal == y.goal);
    let objectives = sa.as_ref().and_then(|s| s.objective).zip(sb.as_ref().and_then(|s| s.objective));
    let (delta, improved) = match (objectives, b) {
        (Some((x, y)), Some(pb)) if comparable => {
            let better = if pb.goal == Goal::Maximize { y > x } else { y < x };
            (Some(y - x), Some(better))
        }
        _ => (None, None),
    };
    PhaseDiff { name: name.to_owned(), a: sa, b: sb, delta, improved, added, removed, sweeps }
}

/// The root config as `section.key → value` text, for the keys that differ.
fn config_leaves(plan: &Plan) -> BTreeMap<String, String> {
    let config = plan.root_config();
    let mut out = BTreeMap::new();
    flatten("", &serde_json::to_value(&config).unwrap_or_default(), &mut out);
    out
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                flatten(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, v, out);
            }
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.to_owned(), s.clone());
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::PhaseStatus;

    const A: &str =
        "train { steps = 8 }\nobjective minimize val_loss\nphase lr {\n  vary matrix_lr in [0.01, 0.02]\n}\n";
    const B: &str = "train { steps = 16 }\nobjective minimize val_loss\nphase lr {\n  vary matrix_lr in [0.02, 0.04]\n}\nphase wd after lr {\n  vary weight_decay in [0.1]\n}\n";

    fn plan(text: &str) -> Plan {
        Plan::compile(text, Path::new("s.lrx")).expect("a valid study")
    }

    #[test]
    fn config_and_phase_changes_are_named() {
        let (pa, pb) = (plan(A), plan(B));
        let results = |p: &Plan| StudyResults {
            study: p.name.clone(),
            metric: "val_loss".into(),
            goal: Goal::Minimize,
            phases: p
                .phases
                .iter()
                .map(|ph| PhaseResult {
                    name: ph.name.clone(),
                    after: Vec::new(),
                    status: PhaseStatus::Waiting,
                    metric: "val_loss".into(),
                    goal: Goal::Minimize,
                    winner: None,
                    candidates: p
                        .preview_phase(&ph.name, &BTreeMap::new())
                        .into_iter()
                        .map(|(v, ch)| CandidateResult::waiting(v, ch))
                        .collect(),
                    swept: Vec::new(),
                    incoming_key: None,
                    message: None,
                    found: None,
                    range_test: None,
                    same_runs: Vec::new(),
                })
                .collect(),
            final_run: None,
            final_status: None,
            interrupted: false,
            train_wall: 0.0,
            superseded: Vec::new(),
        };
        let (ra, rb) = (results(&pa), results(&pb));
        let d = diff(("a", &pa, &ra), ("b", &pb, &rb));
        assert!(d.config.iter().any(|c| c.key.ends_with("steps") && c.a.as_deref() == Some("8")), "{:?}", d.config);
        assert_eq!(d.phases.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["lr", "wd"]);
        let lr = &d.phases[0];
        assert!(lr.added.iter().any(|v| v.contains("0.04")) && lr.removed.iter().any(|v| v.contains("0.01")), "{lr:?}");
        assert!(d.phases[1].a.is_none() && d.phases[1].b.is_some());
        assert!(d.not_cached.iter().any(|n| n.side == "a") && d.not_cached.iter().any(|n| n.side == "b"));
    }

    #[test]
    fn a_revision_is_never_an_option() {
        let e = read_at_revision(Path::new("s.lrx"), "--output=/tmp/x").unwrap_err();
        assert!(matches!(e, DiffError::BadRevision(_)), "{e}");
    }
}
