//! The command trainer: runs the user's own training script once per run and reads the
//! metrics it writes (`trainer = command("python train.py --lr {matrix_lr} --out {out}")`).
//!
//! Placeholders `{key}` take the run's resolved values (`{matrix_lr}`, `{steps}`, `{seed}`,
//! `{schedule.warmup}`, `{data.tokens}`), `{out}` a fresh folder for the run's outputs and
//! `{config}` a JSON file with the whole resolved config. The script reports by writing
//! `metrics.json` (final metrics, an object of numbers) and/or `metrics.csv` (a history with a
//! `step` column; its last row gives the final metrics where `metrics.json` is absent) into
//! `{out}`. A non-zero exit is a failed run; a non-finite loss a diverged one.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::spec::{Cancelled, HistoryRow, Progress, RunConfig, RunContext, RunResult, Status, Trainer, TrainerIdentity, TrainerSpec};

/// Runs `trainer = command(...)` configs. `deps_fingerprint` hashes the `deps` files (relative
/// to the study's folder) into the trainer's identity; it is supplied by the caller because
/// hashing belongs to the cache's key module.
pub struct CommandTrainer {
    pub base_dir: PathBuf,
    /// Scratch folders for runs' `{out}` live here.
    pub work_dir: PathBuf,
    pub deps_fingerprint: Box<dyn Fn(&Path, &[String]) -> Result<String, String> + Send + Sync>,
}

impl Trainer for CommandTrainer {
    fn identity(&self, config: &RunConfig) -> TrainerIdentity {
        let (cmd, deps) = match &config.train.trainer {
            TrainerSpec::Command { cmd, deps } => (cmd.clone(), deps.clone()),
            TrainerSpec::Builtin => (String::new(), Vec::new()),
        };
        // A missing dependency makes the identity unique to this attempt, so it never matches
        // a cached run; the run itself then fails with the reason.
        let deps = (self.deps_fingerprint)(&self.base_dir, &deps).unwrap_or_else(|e| format!("unreadable: {e}"));
        TrainerIdentity { name: "command".into(), version: format!("{cmd}\n{deps}"), backend: "external".into(), precision: "external".into(), device: None }
    }

    fn train(&self, config: &RunConfig, ctx: &mut RunContext<'_>) -> Result<RunResult, Cancelled> {
        let TrainerSpec::Command { cmd, .. } = &config.train.trainer else {
            return Ok(RunResult::failed("the command trainer got a config without `trainer = command(...)`"));
        };
        let out = match scratch(&self.work_dir) {
            Ok(dir) => dir,
            Err(e) => return Ok(RunResult::failed(format!("cannot make a scratch folder under `{}`: {e}", self.work_dir.display()))),
        };
        let result = self.run_script(cmd, config, &out, ctx);
        let _ = std::fs::remove_dir_all(&out);
        result
    }
}

impl CommandTrainer {
    fn run_script(&self, cmd: &str, config: &RunConfig, out: &Path, ctx: &mut RunContext<'_>) -> Result<RunResult, Cancelled> {
        let config_path = out.join("config.json");
        if let Err(e) = std::fs::write(&config_path, serde_json::to_vec_pretty(config).unwrap_or_default()) {
            return Ok(RunResult::failed(format!("cannot write `{}`: {e}", config_path.display())));
        }
        let line = match fill(cmd, config, out, &config_path) {
            Ok(l) => l,
            Err(e) => return Ok(RunResult::failed(e)),
        };
        (ctx.progress)(Progress::Started { total_steps: config.total_steps(), params: None });
        let started = Instant::now();
        let child = Command::new("sh")
            .arg("-c")
            .arg(&line)
            .current_dir(&self.base_dir)
            .env("LRX_OUT", out)
            .env("LRX_CONFIG", &config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => return Ok(RunResult::failed(format!("cannot start `{line}`: {e}"))),
        };
        let status = loop {
            if ctx.cancel.is_cancelled() {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Cancelled);
            }
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return Ok(RunResult::failed(format!("waiting for `{line}`: {e}"))),
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        let mut stderr = String::new();
        if let Some(mut s) = child.stderr.take() {
            let _ = s.read_to_string(&mut stderr);
        }
        if !status.success() {
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
            return Ok(RunResult::failed(format!("`{line}` exited with {status}{}", if tail.is_empty() { String::new() } else { format!(": {}", tail.join(" | ")) })));
        }
        let mut result = match read_metrics(out) {
            Ok(r) => r,
            Err(e) => return Ok(RunResult::failed(e)),
        };
        result.seconds = seconds;
        Ok(result)
    }
}

fn scratch(root: &Path) -> std::io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = root.join(format!("run-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The run's values by name: `section.key` and, where unambiguous, `key`; constructor
/// arguments as `key.arg`.
fn values(config: &RunConfig) -> BTreeMap<String, String> {
    let json = serde_json::to_value(config).unwrap_or_default();
    let mut qualified = BTreeMap::new();
    for (section, obj) in json.as_object().into_iter().flatten() {
        for (k, v) in obj.as_object().into_iter().flatten() {
            flatten(&format!("{section}.{k}"), v, &mut qualified);
        }
    }
    let mut out = qualified.clone();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for k in qualified.keys() {
        *counts.entry(k.split_once('.').map_or(k.as_str(), |(_, r)| r).to_owned()).or_default() += 1;
    }
    for (k, v) in &qualified {
        let short = k.split_once('.').map_or(k.as_str(), |(_, r)| r);
        if counts[short] == 1 {
            out.insert(short.to_owned(), v.clone());
        }
    }
    // The run's seed and step budget under their usual names.
    if let Some(steps) = config.total_steps() {
        out.insert("steps".into(), steps.to_string());
    }
    out
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, inner) in map {
                // `{"cosine": {"warmup": ..}}`: the variant's name is the value of the key, its
                // fields are its arguments.
                flatten(&format!("{prefix}.{k}"), inner, out);
                if map.len() == 1 {
                    out.insert(prefix.to_owned(), k.clone());
                    if let serde_json::Value::Object(args) = inner {
                        for (a, x) in args {
                            flatten(&format!("{prefix}.{a}"), x, out);
                        }
                    }
                }
            }
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.to_owned(), s.clone());
        }
        serde_json::Value::Number(n) => {
            let text = if n.is_i64() || n.is_u64() { n.to_string() } else { n.as_f64().map_or_else(|| n.to_string(), crate::spec::value::fmt_float) };
            out.insert(prefix.to_owned(), text);
        }
        serde_json::Value::Array(items) => {
            out.insert(prefix.to_owned(), items.iter().map(std::string::ToString::to_string).collect::<Vec<_>>().join(","));
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

/// Fills `{key}` placeholders; an unknown placeholder is an error naming it.
fn fill(cmd: &str, config: &RunConfig, out: &Path, config_path: &Path) -> Result<String, String> {
    let mut vals = values(config);
    vals.insert("out".into(), shell_quote(&out.to_string_lossy()));
    vals.insert("config".into(), shell_quote(&config_path.to_string_lossy()));
    let mut result = String::with_capacity(cmd.len());
    let mut rest = cmd;
    while let Some(open) = rest.find('{') {
        result.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            result.push_str(&rest[open..]);
            return Ok(result);
        };
        let name = &rest[open + 1..open + close];
        if let Some(v) = vals.get(name.trim()) { result.push_str(v) } else {
            let hint = crate::spec::schema::suggest(name, vals.keys().map(String::as_str)).map(|s| format!("; did you mean `{{{s}}}`?")).unwrap_or_default();
            return Err(format!("the command names `{{{name}}}`, which is not a key of the run{hint}"));
        }
        rest = &rest[open + close + 1..];
    }
    result.push_str(rest);
    Ok(result)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Reads `metrics.json` and/or `metrics.csv` from the run's folder.
fn read_metrics(out: &Path) -> Result<RunResult, String> {
    let mut result = RunResult::failed("");
    result.error = None;
    result.status = Status::Ok;
    let csv_path = out.join("metrics.csv");
    if csv_path.is_file() {
        let bytes = std::fs::read(&csv_path).map_err(|e| format!("cannot read `metrics.csv`: {e}"))?;
        result.history = parse_history(&bytes)?;
        if let Some(last) = result.history.last() {
            result.metrics = last.metrics.clone();
            result.steps = last.step;
        }
    }
    let json_path = out.join("metrics.json");
    if json_path.is_file() {
        let text = std::fs::read_to_string(&json_path).map_err(|e| format!("cannot read `metrics.json`: {e}"))?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("`metrics.json` is not JSON: {e}"))?;
        let obj = value.as_object().ok_or("`metrics.json` must be an object of numbers")?;
        for (k, v) in obj {
            match v {
                serde_json::Value::Number(n) => {
                    result.metrics.insert(k.clone(), n.as_f64().unwrap_or(f64::NAN));
                }
                // JSON has no NaN: scripts write it as a string or null.
                serde_json::Value::String(_) | serde_json::Value::Null => {
                    result.metrics.insert(k.clone(), f64::NAN);
                }
                _ => {}
            }
        }
    }
    if !csv_path.is_file() && !json_path.is_file() {
        return Err("the command wrote neither `metrics.json` nor `metrics.csv` into `{out}`".into());
    }
    if let Some(loss) = ["val_loss", "train_loss", "loss"].iter().find_map(|k| result.metrics.get(*k))
        && !loss.is_finite()
    {
        result.status = Status::Diverged;
        result.diverged_at = result.history.iter().find(|r| r.metrics.values().any(|x| !x.is_finite())).map(|r| r.step);
    }
    Ok(result)
}

fn parse_history(bytes: &[u8]) -> Result<Vec<HistoryRow>, String> {
    let mut r = csv::Reader::from_reader(bytes);
    let header: Vec<String> = r.headers().map_err(|e| format!("`metrics.csv`: {e}"))?.iter().map(str::to_owned).collect();
    let step_col = header.iter().position(|h| h == "step").ok_or("`metrics.csv` needs a `step` column")?;
    let mut rows = Vec::new();
    for record in r.records() {
        let record = record.map_err(|e| format!("`metrics.csv`: {e}"))?;
        let step = record.get(step_col).unwrap_or("").trim().parse::<f64>().map_err(|_| format!("`metrics.csv`: bad step `{}`", record.get(step_col).unwrap_or("")))? as u64;
        let mut metrics = BTreeMap::new();
        for (i, (name, cell)) in header.iter().zip(record.iter()).enumerate() {
            if i == step_col || cell.trim().is_empty() {
                continue;
            }
            let x = match cell.trim().to_ascii_lowercase().as_str() {
                "nan" => f64::NAN,
                "inf" | "+inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                t => t.parse::<f64>().map_err(|_| format!("`metrics.csv`: `{name}` = `{cell}` is not a number"))?,
            };
            metrics.insert(name.clone(), x);
        }
        rows.push(HistoryRow { step, metrics });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_take_the_runs_values() {
        let mut c = RunConfig::defaults();
        c.train.matrix_lr = 0.05;
        let line = fill("train.py --lr {matrix_lr} --warmup {schedule.warmup} --tokens {data.tokens} --seed {seed} --out {out}", &c, Path::new("/tmp/x"), Path::new("/tmp/x/c.json")).unwrap();
        assert_eq!(line, "train.py --lr 0.05 --warmup 0.0 --tokens 500000 --seed 1 --out '/tmp/x'");
        let err = fill("train.py --lr {matrx_lr}", &c, Path::new("/o"), Path::new("/c")).unwrap_err();
        assert!(err.contains("did you mean `{matrix_lr}`"), "{err}");
    }

    #[test]
    fn metrics_come_from_json_or_the_last_csv_row() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("metrics.csv"), "step,train_loss,val_loss\n10,3.0,\n20,2.5,2.7\n").unwrap();
        let r = read_metrics(dir.path()).unwrap();
        assert_eq!(r.metrics["val_loss"], 2.7);
        assert_eq!(r.history.len(), 2);
        std::fs::write(dir.path().join("metrics.json"), r#"{"val_loss": "nan"}"#).unwrap();
        let r = read_metrics(dir.path()).unwrap();
        assert_eq!(r.status, Status::Diverged);
    }
}
