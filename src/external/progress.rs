//! Live progress of a script: the JSON lines it appends to `{out}/progress.jsonl`
//! (`{"step": 120, "train_loss": 2.31, "tokens": 983040}`), read while it runs, and the
//! divergence rule applied to them.
//!
//! Only whole lines are read (a line the script is still writing waits for its newline), so a
//! reader never sees half a row. A line that is not a JSON object with a numeric `step` is
//! skipped: progress is advisory, the script's `metrics.json` is its result.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use crate::spec::HistoryRow;

/// The file a script appends its progress to, in `{out}`.
pub(super) const FILE: &str = "progress.jsonl";

/// The metrics the divergence rule watches, in order of preference.
const LOSSES: [&str; 3] = ["train_loss", "loss", "val_loss"];

/// Reads the rows a script appended since the last look.
pub(super) struct Tail {
    path: PathBuf,
    offset: u64,
    /// Bytes of a line whose newline has not arrived yet.
    partial: Vec<u8>,
}

impl Tail {
    pub(super) fn new(path: PathBuf) -> Tail {
        Tail { path, offset: 0, partial: Vec::new() }
    }

    /// The whole rows written since the last call (none while the file does not exist).
    pub(super) fn read(&mut self) -> Vec<HistoryRow> {
        let Ok(mut f) = std::fs::File::open(&self.path) else { return Vec::new() };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut bytes = Vec::new();
        let Ok(n) = f.read_to_end(&mut bytes) else { return Vec::new() };
        self.offset += n as u64;
        self.partial.extend_from_slice(&bytes);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else { return Vec::new() };
        let whole: Vec<u8> = self.partial.drain(..=end).collect();
        String::from_utf8_lossy(&whole).lines().filter_map(parse_row).collect()
    }
}

/// One progress line as a history row: `step` and every numeric field (`"NaN"`, `"inf"`,
/// `"-inf"` and `null` read as non-finite, since JSON has no NaN).
pub(super) fn parse_row(line: &str) -> Option<HistoryRow> {
    let value: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    let obj = value.as_object()?;
    let step = obj.get("step")?.as_f64().filter(|s| s.is_finite() && *s >= 0.0)? as u64;
    let mut metrics = BTreeMap::new();
    for (k, v) in obj.iter().filter(|(k, _)| k.as_str() != "step") {
        let x = match v {
            serde_json::Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
            serde_json::Value::Null => f64::NAN,
            serde_json::Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "nan" => f64::NAN,
                "inf" | "+inf" | "infinity" => f64::INFINITY,
                "-inf" | "-infinity" => f64::NEG_INFINITY,
                _ => continue,
            },
            _ => continue,
        };
        metrics.insert(k.clone(), x);
    }
    Some(HistoryRow { step, metrics })
}

/// The loss a row reports, for the progress line and the divergence rule.
pub(super) fn loss(row: &HistoryRow) -> Option<(&'static str, f64)> {
    LOSSES.iter().find_map(|k| row.metrics.get(*k).map(|x| (*k, *x)))
}

/// The divergence rule on a script's progress: a non-finite loss, or a loss above
/// `factor` × the first value of that loss the script reported.
pub(super) struct Divergence {
    factor: f64,
    first: BTreeMap<&'static str, f64>,
}

impl Divergence {
    pub(super) fn new(factor: f64) -> Divergence {
        Divergence { factor, first: BTreeMap::new() }
    }

    /// Whether `row` shows the run diverged.
    pub(super) fn diverged(&mut self, row: &HistoryRow) -> bool {
        LOSSES.iter().any(|&k| {
            let Some(&x) = row.metrics.get(k) else { return false };
            if !x.is_finite() {
                return true;
            }
            let first = *self.first.entry(k).or_insert(x);
            first > 0.0 && x > self.factor * first
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_lines_are_read_and_bad_ones_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let mut tail = Tail::new(path.clone());
        assert!(tail.read().is_empty(), "no file yet");
        std::fs::write(&path, "{\"step\": 1, \"train_loss\": 3.5, \"tokens\": 64}\nnot json\n{\"step\": 2, \"tra")
            .unwrap();
        let rows = tail.read();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].step, 1);
        assert_eq!(rows[0].metrics.len(), 2);
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut f, b"in_loss\": \"NaN\", \"note\": \"x\"}\n").unwrap();
        let rows = tail.read();
        assert_eq!(rows.len(), 1, "the half line completed");
        assert_eq!(rows[0].step, 2);
        assert!(rows[0].metrics["train_loss"].is_nan());
        assert!(!rows[0].metrics.contains_key("note"), "only numbers are metrics");
        assert!(tail.read().is_empty());
    }

    #[test]
    fn a_non_finite_or_exploding_loss_diverges() {
        let row = |step, loss: f64| HistoryRow { step, metrics: [("train_loss".to_owned(), loss)].into() };
        let mut d = Divergence::new(3.0);
        assert!(!d.diverged(&row(1, 2.0)));
        assert!(!d.diverged(&row(2, 5.9)));
        assert!(d.diverged(&row(3, 6.1)));
        assert!(Divergence::new(3.0).diverged(&row(1, f64::INFINITY)));
        assert!(!Divergence::new(3.0).diverged(&HistoryRow { step: 1, metrics: BTreeMap::new() }));
    }
}
