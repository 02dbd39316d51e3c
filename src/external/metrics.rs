//! What a script reports: `metrics.json` (final metrics) and `metrics.csv` (a history with a
//! `step` column) in its `{out}` folder, read into a [`RunResult`].

use std::collections::BTreeMap;
use std::path::Path;

use crate::spec::{HistoryRow, RunResult, Status};

/// Reads `metrics.json` and/or `metrics.csv` from the run's folder.
pub(super) fn read_metrics(out: &Path) -> Result<RunResult, String> {
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
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("`metrics.json` is not JSON: {e}"))?;
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
    let header: Vec<String> =
        r.headers().map_err(|e| format!("`metrics.csv`: {e}"))?.iter().map(str::to_owned).collect();
    let step_col = header.iter().position(|h| h == "step").ok_or("`metrics.csv` needs a `step` column")?;
    let mut rows = Vec::new();
    for record in r.records() {
        let record = record.map_err(|e| format!("`metrics.csv`: {e}"))?;
        let step = record
            .get(step_col)
            .unwrap_or("")
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("`metrics.csv`: bad step `{}`", record.get(step_col).unwrap_or("")))?
            as u64;
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
    #[allow(clippy::float_cmp, reason = "a number read from text is exact")]
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
