//! Writing a study's results under its output folder (default `runs/<study>/`).
//!
//! ```text
//! results.csv           one row per candidate: phase, variant, changed keys, metrics, status, key
//! phases/<phase>.csv    the same rows, one file per phase
//! winners.json          each phase's winner and the final run
//! study.lock.json       per phase: incoming config key, candidates' keys, winner
//! histories/<phase>/<variant>.csv   each run's metrics history
//! ```
//! The CSV files load directly in pandas (`pd.read_csv("runs/quickstart/results.csv")`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json, json};

use super::results::{CandidateResult, PhaseResult, StudyResults, value_json};
use crate::cache::store::history_to_csv;

/// Writes every output file; returns the folder.
pub fn write_all(results: &StudyResults, out: &Path) -> io::Result<PathBuf> {
    fs::create_dir_all(out.join("phases"))?;
    let rows: Vec<(&str, &CandidateResult)> = results
        .phases
        .iter()
        .flat_map(|p| p.candidates.iter().map(move |c| (p.name.as_str(), c)))
        .chain(results.final_run.iter().map(|c| ("final", c)))
        .collect();
    write_atomic(&out.join("results.csv"), &table_csv(&rows)?)?;
    for phase in &results.phases {
        let rows: Vec<_> = phase.candidates.iter().map(|c| (phase.name.as_str(), c)).collect();
        write_atomic(&out.join("phases").join(format!("{}.csv", slug(&phase.name))), &table_csv(&rows)?)?;
    }
    write_atomic(&out.join("winners.json"), &pretty(&winners_json(results))?)?;
    write_atomic(&out.join("study.lock.json"), &pretty(&lock_json(results))?)?;
    for (phase, c) in &rows {
        for r in &c.repeats {
            if r.history.is_empty() {
                continue;
            }
            let dir = out.join("histories").join(slug(phase));
            fs::create_dir_all(&dir)?;
            let name = if c.repeats.len() > 1 { format!("{}.seed{}.csv", slug(&c.variant), r.seed) } else { format!("{}.csv", slug(&c.variant)) };
            let bytes = history_to_csv(&r.history).map_err(io::Error::other)?;
            write_atomic(&dir.join(name), &bytes)?;
        }
    }
    Ok(out.to_owned())
}

/// A file-name-safe form of a phase or variant name.
pub fn slug(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "._=-+,()".contains(c) { c } else { '_' }).collect()
}

fn pretty(v: &Json) -> io::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(v).map_err(io::Error::other)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Writes through a temporary file and a rename, so an interrupted run never leaves half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

/// The union of changed keys and of metric names, in first-seen / sorted order.
fn columns(rows: &[(&str, &CandidateResult)]) -> (Vec<String>, Vec<String>) {
    let mut keys: Vec<String> = Vec::new();
    let mut metrics: Vec<String> = Vec::new();
    for (_, c) in rows {
        for (k, _) in &c.changes {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        metrics.extend(c.metrics.keys().cloned());
    }
    metrics.sort();
    metrics.dedup();
    (keys, metrics)
}

fn table_csv(rows: &[(&str, &CandidateResult)]) -> io::Result<Vec<u8>> {
    let (keys, metrics) = columns(rows);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = vec!["phase".into(), "variant".into()];
    header.extend(keys.iter().cloned());
    header.push("objective".into());
    header.extend(metrics.iter().cloned());
    header.extend(["status", "cached", "repeats", "seconds", "tokens_per_sec", "diverged_at", "key"].map(String::from));
    w.write_record(&header).map_err(io::Error::other)?;
    let f = |x: Option<f64>| x.map(crate::spec::value::fmt_float).unwrap_or_default();
    for (phase, c) in rows {
        let mut rec: Vec<String> = vec![(*phase).to_owned(), c.variant.clone()];
        for k in &keys {
            rec.push(c.changes.iter().find(|(n, _)| n == k).map(|(_, v)| plain(v)).unwrap_or_default());
        }
        rec.push(f(c.objective));
        for m in &metrics {
            rec.push(f(c.metrics.get(m).copied()));
        }
        rec.push(serde_json::to_value(c.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default());
        rec.push(c.cached().to_string());
        rec.push(c.repeats.len().to_string());
        rec.push(f((c.seconds() > 0.0).then(|| c.seconds())));
        rec.push(f(c.tokens_per_sec()));
        rec.push(c.diverged_at().map(|s| s.to_string()).unwrap_or_default());
        rec.push(c.key().map(crate::cache::RunKey::to_hex).unwrap_or_default());
        w.write_record(&rec).map_err(io::Error::other)?;
    }
    w.into_inner().map_err(io::Error::other)
}

/// A changed value in a CSV cell: strings unquoted, the rest in canonical form.
fn plain(v: &crate::spec::Value) -> String {
    match v {
        crate::spec::Value::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

fn changes_json(c: &CandidateResult) -> Json {
    Json::Object(c.changes.iter().map(|(k, v)| (k.clone(), value_json(v))).collect())
}

fn winners_json(results: &StudyResults) -> Json {
    let mut phases = Map::new();
    for p in &results.phases {
        phases.insert(
            p.name.clone(),
            match p.winner() {
                Some(w) => json!({"variant": w.variant, "changes": changes_json(w), "objective": w.objective, "key": w.key().map(crate::cache::RunKey::to_hex)}),
                None => json!({"status": p.status, "message": p.message}),
            },
        );
    }
    json!({
        "study": results.study,
        "objective": {"metric": results.metric, "goal": results.goal},
        "phases": phases,
        "final": results.final_run.as_ref().map(|f| json!({"variant": f.variant, "changes": changes_json(f), "objective": f.objective, "metrics": f.metrics, "key": f.key().map(crate::cache::RunKey::to_hex)})),
    })
}

fn lock_phase(p: &PhaseResult) -> Json {
    json!({
        "after": p.after,
        "incoming": p.incoming_key.map(crate::cache::RunKey::to_hex),
        "candidates": p.candidates.iter().map(|c| json!({
            "variant": c.variant,
            "keys": c.repeats.iter().filter_map(|r| r.key.map(crate::cache::RunKey::to_hex)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "winner": p.winner().map(|w| w.variant.clone()),
    })
}

fn lock_json(results: &StudyResults) -> Json {
    let phases: Map<String, Json> = results.phases.iter().map(|p| (p.name.clone(), lock_phase(p))).collect();
    json!({
        "study": results.study,
        "phases": phases,
        "final": results.final_run.as_ref().map(|f| json!({
            "keys": f.repeats.iter().filter_map(|r| r.key.map(crate::cache::RunKey::to_hex)).collect::<Vec<_>>(),
        })),
    })
}
