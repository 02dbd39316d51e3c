//! `lrx why FILE [PHASE [VARIANT]]`: why a run is not a cache hit — which of its inputs differ
//! from the closest cached run.

use std::collections::BTreeMap;

use crate::cache::{KeyInput, Lookup};
use crate::cli::{GlobalArgs, WhyArgs};
use crate::results::{CandidateResult, CandidateStatus, PhaseStatus, StudyResults};

use super::Exit;
use super::study::Study;

pub(crate) fn run(args: &WhyArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    let Some(study) = Study::open_read_only(&args.file, &args.device, g)? else { return Ok(Exit::Failure) };
    let results = study.dry()?;
    let targets = match select(&results, args.phase.as_deref(), args.variant.as_deref()) {
        Ok(t) => t,
        Err(message) => {
            errln!("error: {message}");
            return Ok(Exit::Failure);
        }
    };
    let cached = cached_inputs(&study)?;
    let mut out = String::new();
    for (phase, c) in targets {
        out.push_str(&explain(&study, &results, phase, c, &cached));
    }
    if out.is_empty() {
        "every run of the study is cached: nothing would train\n".clone_into(&mut out);
    }
    out!("{}", out);
    Ok(Exit::Success)
}

/// The candidates asked about: one, a phase's, or every one that is not cached.
fn select<'r>(
    results: &'r StudyResults,
    phase: Option<&str>,
    variant: Option<&str>,
) -> Result<Vec<(&'r str, &'r CandidateResult)>, String> {
    let all: Vec<(&str, &CandidateResult)> = results
        .phases
        .iter()
        .flat_map(|p| p.candidates.iter().map(move |c| (p.name.as_str(), c)))
        .chain(results.final_run.iter().map(|c| ("final", c)))
        .collect();
    let Some(phase) = phase else {
        return Ok(all.into_iter().filter(|(_, c)| !c.cached()).collect());
    };
    let in_phase: Vec<_> = all.iter().copied().filter(|(p, _)| *p == phase).collect();
    if in_phase.is_empty() && phase != "final" && !results.phases.iter().any(|p| p.name == phase) {
        let names = results.phases.iter().map(|p| p.name.as_str()).chain(["final"]);
        let hint =
            crate::spec::schema::suggest(phase, names).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
        return Err(format!("the study has no phase `{phase}`{hint}"));
    }
    match variant {
        None => Ok(in_phase),
        Some(v) => {
            // A candidate that is another's run is listed under the other's name.
            let alias = results
                .phases
                .iter()
                .filter(|p| p.name == phase)
                .flat_map(|p| {
                    p.same_runs.iter().filter(|(a, _)| a == v).map(|(_, j)| p.candidates[*j].variant.as_str())
                })
                .next();
            let v = alias.unwrap_or(v);
            let found: Vec<_> = in_phase.iter().copied().filter(|(_, c)| c.variant == v).collect();
            if found.is_empty() {
                let hint = crate::spec::schema::suggest(v, in_phase.iter().map(|(_, c)| c.variant.as_str()))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                return Err(format!("phase `{phase}` has no candidate `{v}`{hint}"));
            }
            Ok(found)
        }
    }
}

/// Every cached run's inputs, flattened to `path → value` leaves.
fn cached_inputs(study: &Study) -> anyhow::Result<Vec<(String, BTreeMap<String, String>)>> {
    let mut out = Vec::new();
    for key in study.store.keys()? {
        if let Lookup::Hit(e) = study.store.get(key) {
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
    cached: &[(String, BTreeMap<String, String>)],
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
    for r in c.repeats.iter().filter(|r| !r.cached) {
        let input = match KeyInput::of_run(config, r.seed, r.stop_at, &study.trainer, |data| study.fingerprint(data)) {
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
