//! Writing a study's results under its output folder (default `runs/<study>/`).
//!
//! ```text
//! results.csv           one row per candidate: phase, variant, changed keys, objective (its std
//!                       and n over repeats), metrics, status, key
//! phases/<phase>.csv    the same rows, one file per phase
//! winners.json          each phase's winner and the final run
//! insights.json         per swept key: best value, safe range, divergence threshold
//! study.lock.json       per phase: incoming config key, candidates' keys, winner
//! histories/<phase>/<variant>.csv   each run's metrics history
//! range_tests/<phase>.csv           an LR range test's step, lr, loss and smoothed loss
//! ```
//! The CSV files load directly in pandas (`pd.read_csv("runs/quickstart/results.csv")`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json, json};

use crate::cache::store::history_to_csv;
use crate::results::{CandidateResult, PhaseResult, StudyResults, value_json};

/// Why outputs could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("`{}` holds the outputs of another study (`{other}`); give this one its own `--out`", .dir.display())]
    Foreign { dir: PathBuf, other: String },
    #[error("`{}` is not a folder", .0.display())]
    NotAFolder(PathBuf),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Writes every output file; returns the folder.
///
/// The folder belongs to one study (named in its `study.lock.json`): another study's outputs
/// are never overwritten or mixed in. `phases/` and `histories/` are written whole into a
/// fresh folder and swapped in, so files of candidates the study no longer has do not stay.
pub fn write_all(results: &StudyResults, out: &Path) -> Result<PathBuf, OutputError> {
    if out.exists() && !out.is_dir() {
        return Err(OutputError::NotAFolder(out.to_owned()));
    }
    if let Some(other) = owner(out)
        && other != results.study
    {
        return Err(OutputError::Foreign { dir: out.to_owned(), other });
    }
    fs::create_dir_all(out)?;
    // One writer at a time (several `lrx run` of one study may finish together): an `flock` on
    // the folder itself, so no lock file is left behind; released when the handle closes, also
    // when the process dies.
    let lock = fs::File::open(out)?;
    lock.lock()?;
    remove_leftovers(out);
    let rows: Vec<(&str, &CandidateResult)> = results
        .phases
        .iter()
        .flat_map(|p| p.candidates.iter().map(move |c| (p.name.as_str(), c)))
        .chain(results.final_run.iter().map(|c| ("final", c)))
        .collect();
    // The lock file first: it names the folder's study before anything else lands there.
    write_atomic(&out.join("study.lock.json"), &pretty(&lock_json(results))?)?;
    write_atomic(&out.join("results.csv"), &table_csv(results, &rows)?)?;
    let staging = out.join(format!(".staging.{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(staging.join("phases"))?;
    fs::create_dir_all(staging.join("histories"))?;
    for phase in &results.phases {
        let rows: Vec<_> = phase.candidates.iter().map(|c| (phase.name.as_str(), c)).collect();
        fs::write(staging.join("phases").join(format!("{}.csv", slug(&phase.name))), &table_csv(results, &rows)?)?;
    }
    for (phase, c) in &rows {
        for r in &c.repeats {
            if r.history.is_empty() {
                continue;
            }
            let dir = staging.join("histories").join(slug(phase));
            fs::create_dir_all(&dir)?;
            let name = if c.repeats.len() > 1 { format!("{}.seed{}", c.variant, r.seed) } else { c.variant.clone() };
            let bytes = history_to_csv(&r.history).map_err(io::Error::other)?;
            fs::write(dir.join(format!("{}.csv", slug(&name))), &bytes)?;
        }
    }
    for phase in &results.phases {
        if let Some(c) = &phase.range_test {
            fs::create_dir_all(staging.join("range_tests"))?;
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(["step", "lr", "loss", "smoothed"]).map_err(io::Error::other)?;
            let f = crate::spec::value::fmt_float;
            for (i, p) in c.points.iter().enumerate() {
                w.write_record([(i + 1).to_string(), f(p.lr), f(p.loss), f(p.smoothed)]).map_err(io::Error::other)?;
            }
            let bytes = w.into_inner().map_err(io::Error::other)?;
            fs::write(staging.join("range_tests").join(format!("{}.csv", slug(&phase.name))), bytes)?;
        }
    }
    for sub in ["phases", "histories", "range_tests"] {
        let old = out.join(format!(".old.{sub}.{}", std::process::id()));
        match fs::rename(out.join(sub), &old) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        if staging.join(sub).exists() {
            fs::rename(staging.join(sub), out.join(sub))?;
        }
        let _ = fs::remove_dir_all(&old);
    }
    let _ = fs::remove_dir_all(&staging);
    write_atomic(&out.join("winners.json"), &pretty(&winners_json(results))?)?;
    write_atomic(&out.join("insights.json"), &pretty(&insights_json(results))?)?;
    Ok(out.to_owned())
}

/// What writers killed mid-write left in `out`: `.staging.<pid>` and `.old.<sub>.<pid>`
/// folders and `<file>.tmp.<pid>` files of processes that are gone.
fn remove_leftovers(out: &Path) {
    let dead = |pid: &str| {
        pid.parse::<u32>().is_ok_and(|p| p != std::process::id() && !Path::new(&format!("/proc/{p}")).exists())
    };
    let mut folders = vec![out.to_owned(), out.join("phases")];
    folders.extend(fs::read_dir(out.join("histories")).into_iter().flatten().flatten().map(|e| e.path()));
    for folder in folders {
        for entry in fs::read_dir(&folder).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.rsplit('.').next().unwrap_or("");
            let ours = name.starts_with(".staging.") || name.starts_with(".old.") || name.contains(".tmp.");
            if ours && dead(pid) {
                let path = entry.path();
                let _ = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
            }
        }
    }
}

/// The study whose outputs a folder holds, if it holds any.
fn owner(out: &Path) -> Option<String> {
    let bytes = fs::read(out.join("study.lock.json")).ok()?;
    serde_json::from_slice::<Json>(&bytes).ok()?.get("study")?.as_str().map(str::to_owned)
}

/// The longest file name (in bytes) `slug` makes: 255 is the limit of common filesystems,
/// and room is left for an extension and a temporary suffix.
const MAX_NAME: usize = 160;

/// A file-name-safe form of a phase or variant name: one path component (never `.`, `..` or
/// hidden), at most [`MAX_NAME`] bytes, and distinct for distinct names: where characters
/// had to be replaced or the name shortened, a short hash of the original is appended.
pub fn slug(name: &str) -> String {
    let mut safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._=-+,()".contains(c) { c } else { '_' }).collect();
    if safe.starts_with('.') || safe.is_empty() {
        safe.insert(0, '_');
    }
    if safe == name && safe.len() <= MAX_NAME {
        return safe;
    }
    let hash = &crate::cache::key::checksum(name.as_bytes())[..10];
    safe.truncate(MAX_NAME - hash.len() - 1);
    format!("{safe}~{hash}")
}

fn pretty(v: &Json) -> io::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(v).map_err(io::Error::other)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Writes through a temporary file and a rename, so an interrupted run never leaves half a file
/// (a kill between the two leaves a `.tmp` file, removed by the next write of that path).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let written = fs::write(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
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
        metrics.extend(c.metrics.keys().filter(|m| !crate::spec::measures_machine(m)).cloned());
    }
    metrics.sort();
    metrics.dedup();
    (keys, metrics)
}

fn table_csv(results: &StudyResults, rows: &[(&str, &CandidateResult)]) -> io::Result<Vec<u8>> {
    let (keys, metrics) = columns(rows);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = vec!["phase".into(), "variant".into()];
    header.extend(keys.iter().cloned());
    // The objective's spread over repeats and how many repeats have it.
    header.extend(["objective".into(), "std".into(), "n".into()]);
    header.extend(metrics.iter().cloned());
    // Metrics first; what measures the machine (throughput, time) after them, apart.
    header.extend(
        [
            "status",
            "reason",
            "cached",
            "repeats",
            "steps",
            "cooldown_steps",
            "diverged_at",
            "depends_on_machine",
            "seconds",
            "tokens_per_sec",
            "acc_per_min",
            "key",
        ]
        .map(String::from),
    );
    w.write_record(&header).map_err(io::Error::other)?;
    let f = |x: Option<f64>| x.map(crate::spec::value::fmt_float).unwrap_or_default();
    for (phase, c) in rows {
        let objective_metric = results.phases.iter().find(|p| p.name == *phase).map_or(&results.metric, |p| &p.metric);
        let mut rec: Vec<String> = vec![(*phase).to_owned(), c.variant.clone()];
        for k in &keys {
            rec.push(c.changes.iter().find(|(n, _)| n == k).map(|(_, v)| plain(v)).unwrap_or_default());
        }
        rec.push(f(c.objective));
        rec.push(f(c.metrics_std.get(objective_metric).copied().filter(|_| c.repeats.len() > 1)));
        let n = c.repeats.iter().filter(|r| r.status.is_some_and(|s| s != crate::spec::Status::Failed)).count();
        rec.push(if c.objective.is_some() { n.to_string() } else { String::new() });
        for m in &metrics {
            rec.push(f(c.metrics.get(m).copied()));
        }
        rec.push(serde_json::to_value(c.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default());
        rec.push(reason(c));
        rec.push(c.cached().to_string());
        rec.push(c.repeats.len().to_string());
        // Where the objective was measured: a pruned candidate's at its last rung.
        rec.push(c.repeats.iter().map(|r| r.steps).max().filter(|s| *s > 0).map(|s| s.to_string()).unwrap_or_default());
        // A rung measured on a cooldown branch: the steps trained after `steps` for it.
        rec.push(c.repeats.iter().filter_map(|r| r.cooldown).max().map(|s| s.to_string()).unwrap_or_default());
        rec.push(c.diverged_at().map(|s| s.to_string()).unwrap_or_default());
        rec.push((c.depends_on_machine() || crate::spec::measures_machine(objective_metric)).to_string());
        rec.push(f((c.seconds() > 0.0).then(|| c.seconds())));
        rec.push(f(c.tokens_per_sec()));
        rec.push(f(c.metrics.get("acc_per_min").copied()));
        rec.push(c.key().map(crate::cache::RunKey::to_hex).unwrap_or_default());
        w.write_record(&rec).map_err(io::Error::other)?;
    }
    w.into_inner().map_err(io::Error::other)
}

/// Why a candidate has no usable result: its own reason, or its failed repeats' reasons.
fn reason(c: &CandidateResult) -> String {
    use crate::results::CandidateStatus;
    let failed: Vec<String> = c
        .repeats
        .iter()
        .filter(|r| r.status == Some(crate::spec::Status::Failed))
        .map(|r| {
            let why = r.error.as_deref().unwrap_or("failed");
            if c.repeats.len() > 1 { format!("seed {}: {why}", r.seed) } else { why.to_owned() }
        })
        .collect();
    match c.status {
        _ if !failed.is_empty() => failed.join("; "),
        CandidateStatus::Ok | CandidateStatus::Waiting | CandidateStatus::ToRun => String::new(),
        CandidateStatus::Cancelled => {
            let done = c.repeats.iter().filter(|r| r.status.is_some()).count();
            format!("interrupted: {done} of {} repeats finished", c.repeats.len())
        }
        _ => c.reason.clone().unwrap_or_default(),
    }
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
                // A range test passes on its pick, not its own run's config.
                Some(w) if p.found.is_some() => {
                    let changes: Map<String, Json> = p.winning_changes().unwrap_or_default().iter().map(|(k, v)| (k.clone(), value_json(v))).collect();
                    let mut entry = json!({"variant": p.winner_label(), "changes": changes, "objective": null, "key": w.key().map(crate::cache::RunKey::to_hex)});
                    if let Some(c) = &p.range_test {
                        entry["range_test"] = json!({"rule": c.rule, "minimum_lr": c.minimum_lr(), "pick": c.pick, "stop": c.stop, "stopped": c.stopped});
                    }
                    entry
                }
                Some(w) => {
                    let mut entry = json!({"variant": w.variant, "changes": changes_json(w), "objective": w.objective, "key": w.key().map(crate::cache::RunKey::to_hex)});
                    // Chosen without these: scripts must be able to tell.
                    if let Some(l) = p.lead() {
                        entry["lead"] = crate::results::lead_json(p, &l);
                        entry["within_noise"] = json!(l.within_noise);
                    }
                    let failed: Vec<&str> = p.candidates.iter().filter(|c| c.status == crate::results::CandidateStatus::Failed).map(|c| c.variant.as_str()).collect();
                    if !failed.is_empty() {
                        entry["chosen_without_failed"] = json!(failed);
                    }
                    if p.under_budget() {
                        entry["chosen_under_budget"] = json!(p.skipped().map(|c| c.variant.as_str()).collect::<Vec<_>>());
                    }
                    entry
                }
                None => json!({"status": p.status, "message": p.message}),
            },
        );
    }
    json!({
        "study": results.study,
        "objective": {"metric": results.metric, "goal": results.goal},
        "phases": phases,
        // Only a complete final run is a result; otherwise its status says what it lacks.
        "final": results.final_run.as_ref().map(|f| if results.final_status == Some(crate::results::PhaseStatus::Done) {
            json!({"variant": f.variant, "changes": changes_json(f), "objective": f.objective, "metrics": f.metrics, "key": f.key().map(crate::cache::RunKey::to_hex)})
        } else {
            json!({"variant": f.variant, "status": f.status, "reason": reason(f)})
        }),
    })
}

fn insights_json(results: &StudyResults) -> Json {
    json!({
        "study": results.study,
        "objective": {"metric": results.metric, "goal": results.goal},
        "safe_range_percent": crate::results::SAFE_PERCENT,
        "keys": results.insights().iter().map(|i| json!({
            "phase": i.phase,
            "key": i.key,
            "best": i.best,
            "best_objective": i.best_objective,
            "safe_range": i.safe_range.map(|(a, b)| [a, b]),
            "diverges_at": i.diverges_at,
            "values": i.values,
        })).collect::<Vec<_>>(),
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
        "found": p.winner_label().filter(|_| p.found.is_some()),
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
