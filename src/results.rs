//! What a study's execution produced: phases, candidates, winners, counts — the model behind
//! `run --json`, `show`, the output files and the report.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value as Json, json};

use crate::cache::RunKey;
use crate::spec::{Goal, HistoryRow, RunConfig, Status, Value};

/// Where a phase stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseStatus {
    /// Its winner is known.
    Done,
    /// Every candidate failed or diverged.
    Failed,
    /// A phase it comes after failed, so it never ran.
    Blocked,
    /// Waiting on a winner that is not known yet (plan, show).
    Waiting,
    /// Its candidates are known but not all have results (plan, show, interrupted runs).
    Pending,
}

/// Where a candidate stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateStatus {
    Ok,
    Diverged,
    Failed,
    Pruned,
    /// Its config depends on a winner not yet known.
    Waiting,
    /// Known config, no result yet.
    ToRun,
    /// Stopped by Ctrl-C.
    Cancelled,
}

impl From<Status> for CandidateStatus {
    fn from(s: Status) -> CandidateStatus {
        match s {
            Status::Ok => CandidateStatus::Ok,
            Status::Diverged => CandidateStatus::Diverged,
            Status::Failed => CandidateStatus::Failed,
            Status::Pruned => CandidateStatus::Pruned,
        }
    }
}

/// One repeat of a candidate.
#[derive(Clone, Debug)]
pub struct RepeatResult {
    pub seed: u64,
    pub key: Option<RunKey>,
    /// The step the run stops at (a successive-halving rung before the budget), as in its key.
    pub stop_at: Option<u64>,
    /// Trained by this invocation from an earlier rung's checkpoint at this step.
    pub resumed_at: Option<u64>,
    pub cached: bool,
    pub status: Option<Status>,
    pub seconds: f64,
    pub tokens_per_sec: f64,
    pub steps: u64,
    pub diverged_at: Option<u64>,
    pub error: Option<String>,
    /// A failed run's exit code and stderr tail, where a process ran it.
    pub exit_code: Option<i32>,
    pub log_tail: Option<String>,
    /// A failed run's recorded attempt (number and time), whether failed now or earlier.
    pub failure: Option<crate::cache::store::Attempt>,
    pub history: Vec<HistoryRow>,
}

/// One candidate of a phase, or the final run.
#[derive(Clone, Debug)]
pub struct CandidateResult {
    pub variant: String,
    pub changes: Vec<(String, Value)>,
    pub status: CandidateStatus,
    pub objective: Option<f64>,
    pub metrics: BTreeMap<String, f64>,
    pub metrics_std: BTreeMap<String, f64>,
    /// Why it cannot win, when it cannot.
    pub reason: Option<String>,
    pub repeats: Vec<RepeatResult>,
    /// The resolved config (first seed's), when known.
    pub config: Option<RunConfig>,
}

impl CandidateResult {
    /// A candidate that waits on a winner: nothing known of it but what it will change.
    pub(crate) fn waiting(variant: String, changes: Vec<(String, Value)>) -> CandidateResult {
        CandidateResult {
            variant,
            changes,
            status: CandidateStatus::Waiting,
            objective: None,
            metrics: BTreeMap::new(),
            metrics_std: BTreeMap::new(),
            reason: None,
            repeats: Vec::new(),
            config: None,
        }
    }

    /// Every repeat has a result served from the cache (a recorded failure is not one).
    pub fn cached(&self) -> bool {
        !self.repeats.is_empty() && self.repeats.iter().all(|r| r.cached && r.status != Some(Status::Failed))
    }
    pub fn seconds(&self) -> f64 {
        self.repeats.iter().map(|r| r.seconds).sum()
    }
    pub fn tokens_per_sec(&self) -> Option<f64> {
        let xs: Vec<f64> = self.repeats.iter().filter(|r| r.status.is_some()).map(|r| r.tokens_per_sec).collect();
        (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
    }
    pub fn key(&self) -> Option<RunKey> {
        self.repeats.first().and_then(|r| r.key)
    }
    pub fn diverged_at(&self) -> Option<u64> {
        self.repeats.iter().find_map(|r| r.diverged_at)
    }
    /// Whether its result depends on the machine and its load (a time budget).
    pub fn depends_on_machine(&self) -> bool {
        self.config.as_ref().is_some_and(crate::spec::depends_on_machine)
    }
}

/// One phase.
#[derive(Clone, Debug)]
pub struct PhaseResult {
    pub name: String,
    pub after: Vec<String>,
    pub status: PhaseStatus,
    pub metric: String,
    pub goal: Goal,
    /// Index into `candidates` of the winner.
    pub winner: Option<usize>,
    pub candidates: Vec<CandidateResult>,
    /// Keys the phase varies (for tables and plots).
    pub swept: Vec<String>,
    /// Key of the incoming config run (its baseline), when known.
    pub incoming_key: Option<RunKey>,
    /// Why the phase failed or is blocked.
    pub message: Option<String>,
    /// For an LR range test: the value it picked.
    pub found: Option<(String, Value)>,
}

impl PhaseResult {
    pub fn winner(&self) -> Option<&CandidateResult> {
        self.winner.map(|i| &self.candidates[i])
    }
}

/// Run counts: distinct runs of the study and what became of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunCounts {
    pub total: usize,
    pub trained: usize,
    pub cached: usize,
    pub failed: usize,
    pub diverged: usize,
    pub pruned: usize,
}

/// Everything about one study's runs.
#[derive(Clone, Debug)]
pub struct StudyResults {
    pub study: String,
    pub metric: String,
    pub goal: Goal,
    pub phases: Vec<PhaseResult>,
    pub final_run: Option<CandidateResult>,
    pub final_status: Option<PhaseStatus>,
    pub interrupted: bool,
    /// Wall-clock seconds spent inside trainer calls by this invocation.
    pub train_wall: f64,
    /// Runs no candidate shows any more: the early rungs of successive-halving survivors.
    pub superseded: Vec<RepeatResult>,
}

impl StudyResults {
    /// Every candidate, the final run included.
    pub fn all_candidates(&self) -> impl Iterator<Item = &CandidateResult> {
        self.phases.iter().flat_map(|p| p.candidates.iter()).chain(self.final_run.iter())
    }

    /// Counts over distinct run keys (a run shared by two candidates counts once).
    pub fn counts(&self) -> RunCounts {
        let mut seen = std::collections::HashSet::new();
        let mut c = RunCounts::default();
        // A pruned candidate's last rung finished `ok`; it counts as pruned.
        let repeats = self
            .all_candidates()
            .flat_map(|c| c.repeats.iter().map(move |r| (r, c.status == CandidateStatus::Pruned)))
            .chain(self.superseded.iter().map(|r| (r, false)));
        for (r, pruned) in repeats {
            if let Some(k) = r.key
                && !seen.insert(k)
            {
                continue;
            }
            c.total += 1;
            match r.status {
                Some(Status::Failed) => c.failed += 1,
                Some(Status::Diverged) => c.diverged += 1,
                Some(Status::Pruned) => c.pruned += 1,
                Some(_) if pruned => c.pruned += 1,
                _ => {}
            }
            if r.status.is_some_and(|s| s != Status::Failed) {
                if r.cached {
                    c.cached += 1;
                } else {
                    c.trained += 1;
                }
            }
        }
        c
    }

    /// True when some phase failed or was blocked, or some run failed (exit code 1): a study
    /// with failed runs is not finished, even where its phases could pick winners without
    /// them.
    pub fn has_failure(&self) -> bool {
        self.phases.iter().any(|p| matches!(p.status, PhaseStatus::Failed | PhaseStatus::Blocked))
            || matches!(self.final_status, Some(PhaseStatus::Failed | PhaseStatus::Blocked))
            || self.failed_runs().next().is_some()
    }

    /// Every failed run (or candidate that failed without a run): phase, candidate, repeat.
    pub fn failed_runs(&self) -> impl Iterator<Item = (&str, &CandidateResult, Option<&RepeatResult>)> {
        let phases = self.phases.iter().flat_map(|p| p.candidates.iter().map(move |c| (p.name.as_str(), c)));
        phases.chain(self.final_run.iter().map(|c| ("final", c))).flat_map(|(phase, c)| {
            let failed: Vec<&RepeatResult> = c.repeats.iter().filter(|r| r.status == Some(Status::Failed)).collect();
            let whole = (failed.is_empty() && c.status == CandidateStatus::Failed).then_some((phase, c, None));
            failed.into_iter().map(move |r| (phase, c, Some(r))).chain(whole)
        })
    }

    /// The JSON of `run --json`, `show --json` and `plan --json`.
    pub fn to_json(&self) -> Json {
        json!({
            "study": self.study,
            "objective": {"metric": self.metric, "goal": self.goal},
            "runs": self.counts(),
            "phases": self.phases.iter().map(phase_json).collect::<Vec<_>>(),
            "final": self.final_run.as_ref().map(candidate_json),
            "interrupted": self.interrupted,
        })
    }
}

/// A config value as JSON: numbers and booleans as such, tuples and lists as arrays, and
/// everything else (names, durations, constructor calls) as its canonical text.
pub fn value_json(v: &Value) -> Json {
    match v {
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => json!(i),
        Value::Float(x) => serde_json::Number::from_f64(*x).map_or_else(|| Json::String(v.to_string()), Json::Number),
        Value::Str(s) => Json::String(s.clone()),
        Value::Tuple(items) | Value::List(items) => Json::Array(items.iter().map(value_json).collect()),
        Value::Word(_) | Value::Duration(_) | Value::Call(_) => Json::String(v.to_string()),
    }
}

fn num(x: f64) -> Json {
    serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number)
}

fn candidate_json(c: &CandidateResult) -> Json {
    let mut m = Map::new();
    m.insert("variant".into(), json!(c.variant));
    m.insert("changes".into(), Json::Object(c.changes.iter().map(|(k, v)| (k.clone(), value_json(v))).collect()));
    if let Some(k) = c.key() {
        m.insert("key".into(), json!(k.to_hex()));
    }
    m.insert("status".into(), json!(c.status));
    if !matches!(c.status, CandidateStatus::Waiting) {
        m.insert("cached".into(), json!(c.cached()));
    }
    if let Some(o) = c.objective {
        m.insert("objective".into(), num(o));
    }
    m.insert("metrics".into(), Json::Object(c.metrics.iter().map(|(k, v)| (k.clone(), num(*v))).collect()));
    if c.repeats.len() > 1 {
        m.insert("metrics_std".into(), Json::Object(c.metrics_std.iter().map(|(k, v)| (k.clone(), num(*v))).collect()));
        m.insert(
            "repeats".into(),
            Json::Array(c.repeats.iter().filter_map(|r| r.key.map(|k| json!(k.to_hex()))).collect()),
        );
    }
    if let Some(step) = c.diverged_at() {
        m.insert("diverged_at".into(), json!(step));
    }
    if c.depends_on_machine() {
        m.insert("depends_on_machine".into(), json!(true));
    }
    if let Some(step) = c.repeats.iter().find_map(|r| r.resumed_at) {
        m.insert("continued_from_step".into(), json!(step));
    }
    if let Some(reason) = &c.reason
        && c.status != CandidateStatus::Ok
    {
        m.insert("reason".into(), json!(reason));
    }
    let failures: Vec<Json> = c.repeats.iter().filter(|r| r.status == Some(Status::Failed)).map(failure_json).collect();
    if !failures.is_empty() {
        m.insert("failures".into(), Json::Array(failures));
    }
    Json::Object(m)
}

/// A failed run: its reason, exit code, stderr tail, attempt and when.
fn failure_json(r: &RepeatResult) -> Json {
    json!({
        "seed": r.seed,
        "key": r.key.map(RunKey::to_hex),
        "reason": r.error,
        "exit_code": r.exit_code,
        "log_tail": r.log_tail,
        "attempt": r.failure.as_ref().map(|a| a.attempt),
        "when": r.failure.as_ref().map(|a| a.when),
    })
}

fn phase_json(p: &PhaseResult) -> Json {
    let mut m = Map::new();
    m.insert("name".into(), json!(p.name));
    m.insert("after".into(), json!(p.after));
    m.insert("status".into(), json!(p.status));
    m.insert("winner".into(), p.winner().map_or(Json::Null, |w| json!(w.variant)));
    if let Some(msg) = &p.message {
        m.insert("message".into(), json!(msg));
    }
    if let Some((k, v)) = &p.found {
        m.insert("found".into(), json!({ k: value_json(v) }));
    }
    m.insert("candidates".into(), Json::Array(p.candidates.iter().map(candidate_json).collect()));
    Json::Object(m)
}
