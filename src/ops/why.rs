//! Why a run is not a cache hit: for each candidate asked about, which of its inputs differ from
//! the closest cached run (or which winner it waits on).

use std::collections::BTreeMap;

use crate::cache::{CacheError, KeyInput, Lookup, Store};
use crate::results::{CandidateResult, CandidateStatus, PhaseStatus, StudyResults};

use super::study::Study;

/// The explanation of each candidate in `targets` (as `super::find::candidates` picks them), one
/// paragraph each; a sentence saying so when every run is cached.
pub fn explain_all(
    study: &Study,
    results: &StudyResults,
    targets: &[(&str, &CandidateResult)],
) -> Result<String, CacheError> {
    let cached = cached_inputs(&study.store)?;
    let mut out = String::new();
    for (phase, c) in targets {
        out.push_str(&explain(study, results, phase, c, &cached));
    }
    if out.is_empty() {
        "every run of the study is cached: nothing would train\n".clone_into(&mut out);
    }
    Ok(out)
}

/// A run's inputs flattened to `path → value` leaves (`config.train.matrix_lr → 0.04`).
type Leaves = BTreeMap<String, String>;

/// Every cached run's inputs, flattened to `path → value` leaves.
fn cached_inputs(store: &Store) -> Result<Vec<(String, Leaves)>, CacheError> {
    let mut out = Vec::new();
    for key in store.keys()? {
        if let Lookup::Hit(e) = store.get(key) {
            out.push((key.short(), leaves(&e.spec.input)));
        }
    }
    Ok(out)
}

fn leaves(input: &KeyInput) -> BTreeMap<String, String> {
    let mut input = input.clone();
    // The corpus location is not part of a run's identity (its content is).
    input.config.data.corpus = String::new();
    let mut out = BTreeMap::new();
    flatten("", &serde_json::to_value(&input).unwrap_or_default(), &mut out);
    out
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                flatten(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, v, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

fn explain(
    study: &Study,
    results: &StudyResults,
    phase: &str,
    c: &CandidateResult,
    cached: &[(String, Leaves)],
) -> String {
    use std::fmt::Write as _;
    let mut s = format!("{phase} {}: ", c.variant);
    if c.status == CandidateStatus::Waiting {
        let p = results.phases.iter().find(|p| p.name == phase);
        let blocking: Vec<String> = p
            .map(|p| {
                let needs = study.plan.phase(&p.name).map(|ph| ph.needs.clone()).unwrap_or_default();
                results
                    .phases
                    .iter()
                    .filter(|q| needs.contains(&q.name) && q.status != PhaseStatus::Done)
                    .map(|q| format!("`{}`", q.name))
                    .collect()
            })
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "waits on the winner of {}, which is not known from the cache yet",
            if blocking.is_empty() { "an earlier phase".to_owned() } else { blocking.join(", ") }
        );
        return s;
    }
    if c.cached() {
        let _ = writeln!(s, "cached ({})", c.key().map(crate::cache::RunKey::short).unwrap_or_default());
        return s;
    }
    let Some(config) = &c.config else {
        let _ = writeln!(s, "cannot run: {}", c.reason.clone().unwrap_or_default());
        return s;
    };
    // A rung's key says whether its phase measures it on a cooldown branch.
    let rule = match study.plan.phase(phase).map(|p| &p.prune) {
        Some(crate::plan::Prune::Halving { cooldown, .. }) => *cooldown,
        _ => crate::spec::CooldownRule::Auto,
    };
    for r in c.repeats.iter().filter(|r| !r.cached) {
        let stop = r.stop_at.map(|at| crate::spec::Stop { at, cooldown: rule });
        let input = match KeyInput::of_run(config, r.seed, stop, &study.trainer, |data| study.fingerprint(data)) {
            Ok(input) => input,
            Err(e) => {
                let _ = writeln!(s, "its corpus cannot be read: {e}");
                continue;
            }
        };
        let mine = leaves(&input);
        let closest = cached
            .iter()
            .map(|(k, theirs)| {
                let diff: Vec<&String> = mine
                    .keys()
                    .chain(theirs.keys())
                    .filter(|p| mine.get(*p) != theirs.get(*p))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                (k, theirs, diff)
            })
            .min_by_key(|(_, _, d)| d.len());
        let seed = if c.repeats.len() > 1 { format!(" (seed {})", r.seed) } else { String::new() };
        match closest {
            None => {
                let _ = writeln!(s, "not cached{seed}: the cache is empty");
            }
            Some((key, theirs, diff)) => {
                let _ = writeln!(
                    s,
                    "not cached{seed}; the closest cached run {key} differs in {} input{}:",
                    diff.len(),
                    if diff.len() == 1 { "" } else { "s" }
                );
                for p in diff {
                    let show = |m: &BTreeMap<String, String>| m.get(p).cloned().unwrap_or_else(|| "(absent)".into());
                    let _ = writeln!(s, "    {p}: {} (cached) → {} (this run)", show(theirs), show(&mine));
                }
            }
        }
    }
    s
}
