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
    /// The study's budget left it without a winner: none of its runs is in, or a winner it
    /// needs was never chosen. Not a failure.
    Skipped,
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
    /// Left out by the study's budget (some or all of its runs): no result, not a failure.
    Skipped,
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
    /// A rung measured on a cooldown branch of this many steps after `stop_at` (its metrics
    /// are the branch's; its cache entry keeps the rung's own).
    pub cooldown: Option<u64>,
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
    /// When it finished (ms since the Unix epoch), where recorded: the report's run order.
    pub finished_at: Option<u64>,
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
    /// For an LR range test: its curve as the pick read it.
    pub range_test: Option<RangeCurve>,
    /// Candidates that are the same run as an earlier one (same key: a grid cell equal to the
    /// baseline), listed once: (the dropped variant, the kept one's index in `candidates`).
    pub same_runs: Vec<(String, usize)>,
}

/// How far a phase's winner leads its runner-up, and whether that is inside the noise.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Lead {
    /// Index of the runner-up among the phase's candidates.
    pub runner_up: usize,
    /// The lead, as a non-negative difference of objectives.
    pub margin: f64,
    /// The lead in percent of the runner-up's objective.
    pub percent: f64,
    /// The pooled standard error of the difference of the two means, where either has
    /// repeats.
    pub std_error: Option<f64>,
    /// The lead is smaller than `std_error`, or (without repeats) under 1 %.
    pub within_noise: bool,
}

/// The pooled standard error of the difference of two means, from their sample standard
/// deviations and counts; `None` when neither has more than one sample.
pub fn pooled_std_error((s1, n1): (f64, usize), (s2, n2): (f64, usize)) -> Option<f64> {
    if n1 + n2 <= 2 || n1 == 0 || n2 == 0 {
        return None;
    }
    let df = (n1 + n2 - 2) as f64;
    let var = ((n1 - 1) as f64 * s1 * s1 + (n2 - 1) as f64 * s2 * s2) / df;
    Some((var * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt()).filter(|x| x.is_finite())
}

/// An LR range test's curve: each step's learning rate, training loss and smoothed loss, up
/// to where the loss blew up, with the minimum and the pick.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RangeCurve {
    /// The key the test varies (`lr`).
    pub key: String,
    /// How the pick is read: `min / 10`, `min`, `steepest`.
    pub rule: String,
    /// The curve ends where the loss exceeds `stop` times its minimum.
    pub stop: f64,
    pub points: Vec<RangePoint>,
    /// Index into `points` of the lowest smoothed loss.
    pub minimum: usize,
    /// The picked value: the phase's winning change.
    pub pick: f64,
    /// Whether the curve was cut before the run's last step.
    pub stopped: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RangePoint {
    pub lr: f64,
    pub loss: f64,
    pub smoothed: f64,
}

impl RangeCurve {
    /// The learning rate at the lowest smoothed loss.
    pub fn minimum_lr(&self) -> f64 {
        self.points[self.minimum].lr
    }
}

impl PhaseResult {
    pub fn winner(&self) -> Option<&CandidateResult> {
        self.winner.map(|i| &self.candidates[i])
    }

    /// The changes the phase passes on: a range test's pick, or its winner's changes.
    pub fn winning_changes(&self) -> Option<Vec<(String, Value)>> {
        match &self.found {
            Some(found) => Some(vec![found.clone()]),
            None => self.winner().map(|w| w.changes.clone()),
        }
    }

    /// The winner's lead over the best other candidate that can win (never a candidate that
    /// is the same run). `None` for a range test, which passes on a value, and where there is
    /// no runner-up.
    pub fn lead(&self) -> Option<Lead> {
        if self.found.is_some() {
            return None;
        }
        let w = self.winner?;
        let wc = &self.candidates[w];
        let wo = wc.objective.filter(|x| x.is_finite())?;
        let better = |a: f64, b: f64| if self.goal == Goal::Minimize { a < b } else { a > b };
        let mut runner_up: Option<(usize, f64)> = None;
        for (i, c) in self.candidates.iter().enumerate() {
            let same_run = c.key().is_some() && c.key() == wc.key();
            let Some(o) = c.objective.filter(|x| x.is_finite() && c.status == CandidateStatus::Ok) else { continue };
            if i == w || same_run {
                continue;
            }
            if runner_up.is_none_or(|(_, b)| better(o, b)) {
                runner_up = Some((i, o));
            }
        }
        let (r, ro) = runner_up?;
        let margin = (wo - ro).abs();
        let percent = if ro == 0.0 { f64::INFINITY } else { margin / ro.abs() * 100.0 };
        let spread =
            |c: &CandidateResult| (c.metrics_std.get(&self.metric).copied().unwrap_or(0.0), c.repeats.len().max(1));
        let std_error = pooled_std_error(spread(wc), spread(&self.candidates[r]));
        let within_noise = match std_error {
            Some(se) => margin < se,
            None => percent < 1.0,
        };
        Some(Lead { runner_up: r, margin, percent, std_error, within_noise })
    }

    /// Lists each run once: a candidate with the same keys as an earlier one (a grid cell equal
    /// to the baseline) is dropped and remembered in `same_runs`, so it is never compared with
    /// itself.
    pub fn merge_same_runs(&mut self) {
        let keys = |c: &CandidateResult| -> Option<Vec<RunKey>> {
            let ks: Option<Vec<RunKey>> = c.repeats.iter().map(|r| r.key).collect();
            ks.filter(|k| !k.is_empty())
        };
        let mut kept: Vec<CandidateResult> = Vec::new();
        let mut index = Vec::new(); // old index -> new index
        for c in std::mem::take(&mut self.candidates) {
            let same = keys(&c).and_then(|k| kept.iter().position(|d| keys(d).as_ref() == Some(&k)));
            if let Some(j) = same {
                self.same_runs.push((c.variant.clone(), j));
                index.push(j);
            } else {
                index.push(kept.len());
                kept.push(c);
            }
        }
        self.candidates = kept;
        self.winner = self.winner.map(|w| index[w]);
    }

    /// Whether its winner was chosen while the study's budget left some of its candidates out
    /// ("chosen under a budget").
    pub fn under_budget(&self) -> bool {
        self.winner.is_some() && self.skipped().next().is_some()
    }

    /// Its candidates the budget left out.
    pub fn skipped(&self) -> impl Iterator<Item = &CandidateResult> {
        self.candidates.iter().filter(|c| c.status == CandidateStatus::Skipped)
    }

    /// How the winning change reads: `lr=0.0275` for a range test, the winner's variant
    /// otherwise (a range test's own run is not what it passes on).
    pub fn winner_label(&self) -> Option<String> {
        match &self.found {
            Some((k, v)) => Some(format!("{k}={v}")),
            None => self.winner().map(|w| w.variant.clone()),
        }
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
    /// Left out by the study's budget.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: usize,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // the signature serde asks for
fn is_zero(n: &usize) -> bool {
    *n == 0
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
            .flat_map(|c| c.repeats.iter().map(move |r| (r, c.status)))
            .chain(self.superseded.iter().map(|r| (r, CandidateStatus::Ok)));
        for (r, of) in repeats {
            let pruned = of == CandidateStatus::Pruned;
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
                None if of == CandidateStatus::Skipped => c.skipped += 1,
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
    if let Some(steps) = c.repeats.iter().find_map(|r| r.cooldown) {
        m.insert("cooldown_steps".into(), json!(steps));
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

/// A winner's lead over its runner-up, as `run --json`, `show --json` and `winners.json` give it.
pub fn lead_json(p: &PhaseResult, l: &Lead) -> Json {
    json!({
        "runner_up": p.candidates[l.runner_up].variant,
        "margin": num(l.margin),
        "percent": num(l.percent),
        "std_error": l.std_error.map(num),
        "within_noise": l.within_noise,
    })
}

fn phase_json(p: &PhaseResult) -> Json {
    let mut m = Map::new();
    m.insert("name".into(), json!(p.name));
    m.insert("after".into(), json!(p.after));
    m.insert("status".into(), json!(p.status));
    m.insert("winner".into(), p.winner().map_or(Json::Null, |w| json!(w.variant)));
    if p.under_budget() {
        m.insert("under_budget".into(), json!(true));
    }
    if let Some(msg) = &p.message {
        m.insert("message".into(), json!(msg));
    }
    if let Some((k, v)) = &p.found {
        m.insert("found".into(), json!({ k: value_json(v) }));
    }
    if let Some(l) = p.lead() {
        m.insert("lead".into(), lead_json(p, &l));
    }
    if !p.same_runs.is_empty() {
        m.insert(
            "same_runs".into(),
            Json::Object(p.same_runs.iter().map(|(v, j)| (v.clone(), json!(p.candidates[*j].variant))).collect()),
        );
    }
    if let Some(c) = &p.range_test {
        m.insert(
            "range_test".into(),
            json!({
                "key": c.key,
                "pick": num(c.pick),
                "rule": c.rule,
                "minimum_lr": num(c.minimum_lr()),
                "stop": num(c.stop),
                "stopped": c.stopped,
                "points": c.points.iter().map(|p| json!([num(p.lr), num(p.loss), num(p.smoothed)])).collect::<Vec<_>>(),
            }),
        );
    }
    m.insert("candidates".into(), Json::Array(p.candidates.iter().map(candidate_json).collect()));
    Json::Object(m)
}

/// What a study says about one swept numeric key, like the seeds' `insights.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Insight {
    pub phase: String,
    pub key: String,
    /// The best value (a range test's pick).
    pub best: f64,
    /// Its objective (none for a range test, whose pick was not trained).
    pub best_objective: Option<f64>,
    /// The values around the best, contiguous in value order, whose objective is within
    /// [`SAFE_PERCENT`] of the best's.
    pub safe_range: Option<(f64, f64)>,
    /// The lowest value above the best whose run diverged (a range test: where its loss blew
    /// up), if any did.
    pub diverges_at: Option<f64>,
    /// How many values were tried.
    pub values: usize,
}

/// The "safe range" holds values within this percentage of the best objective.
pub const SAFE_PERCENT: f64 = 2.0;

impl StudyResults {
    /// Per phase and numeric key it varies one at a time: the best value, the safe range and
    /// the divergence threshold. Grid phases are left out: a value's objective there depends on
    /// the other key too.
    pub fn insights(&self) -> Vec<Insight> {
        let mut out = Vec::new();
        for p in &self.phases {
            if let Some(c) = &p.range_test {
                out.push(Insight {
                    phase: p.name.clone(),
                    key: c.key.clone(),
                    best: c.pick,
                    best_objective: None,
                    safe_range: None,
                    diverges_at: c.stopped.then(|| c.points.last().map(|q| q.lr)).flatten(),
                    values: c.points.len(),
                });
                continue;
            }
            for key in &p.swept {
                // Candidates that change this key alone, with a numeric value.
                let mut pts: Vec<(f64, &CandidateResult)> = p
                    .candidates
                    .iter()
                    .filter(|c| c.changes.len() == 1 && c.changes[0].0 == *key)
                    .filter_map(|c| Some((c.changes[0].1.as_f64().filter(|x| x.is_finite())?, c)))
                    .collect();
                if pts.len() < 2 {
                    continue;
                }
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                let ok = |c: &CandidateResult| c.objective.filter(|o| o.is_finite() && c.status == CandidateStatus::Ok);
                let Some(b) = (0..pts.len()).filter(|&i| ok(pts[i].1).is_some()).reduce(|a, i| {
                    if p.goal.better(ok(pts[i].1).unwrap_or(f64::NAN), ok(pts[a].1).unwrap_or(f64::NAN)) {
                        i
                    } else {
                        a
                    }
                }) else {
                    continue;
                };
                let best = ok(pts[b].1).unwrap_or(f64::NAN);
                let close =
                    |i: usize| ok(pts[i].1).is_some_and(|o| (o - best).abs() <= best.abs() * SAFE_PERCENT / 100.0);
                let (mut lo, mut hi) = (b, b);
                while lo > 0 && close(lo - 1) {
                    lo -= 1;
                }
                while hi + 1 < pts.len() && close(hi + 1) {
                    hi += 1;
                }
                out.push(Insight {
                    phase: p.name.clone(),
                    key: key.clone(),
                    best: pts[b].0,
                    best_objective: Some(best),
                    safe_range: Some((pts[lo].0, pts[hi].0)),
                    diverges_at: pts[b..].iter().find(|(_, c)| c.status == CandidateStatus::Diverged).map(|(x, _)| *x),
                    values: pts.len(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A candidate with `n` repeats of run keys `key`, `key + 1`, ... and the objective's std.
    fn cand(
        variant: &str,
        change: Option<f64>,
        objective: f64,
        std: Option<f64>,
        n: usize,
        key: u8,
    ) -> CandidateResult {
        let mut c = CandidateResult::waiting(
            variant.to_owned(),
            change.map(|x| vec![("lr".to_owned(), Value::Float(x))]).unwrap_or_default(),
        );
        c.status = CandidateStatus::Ok;
        c.objective = Some(objective).filter(|o| o.is_finite());
        c.metrics.insert("val_loss".into(), objective);
        if let Some(s) = std {
            c.metrics_std.insert("val_loss".into(), s);
        }
        c.repeats = (0..n)
            .map(|i| RepeatResult {
                seed: i as u64,
                key: Some(format!("{:02x}", key + i as u8).repeat(32).parse().unwrap()),
                stop_at: None,
                resumed_at: None,
                cooldown: None,
                cached: true,
                status: Some(Status::Ok),
                seconds: 1.0,
                tokens_per_sec: 1.0,
                steps: 10,
                diverged_at: None,
                error: None,
                exit_code: None,
                log_tail: None,
                failure: None,
                finished_at: None,
                history: Vec::new(),
            })
            .collect();
        c
    }

    fn phase(candidates: Vec<CandidateResult>, winner: usize) -> PhaseResult {
        PhaseResult {
            name: "p".into(),
            after: Vec::new(),
            status: PhaseStatus::Done,
            metric: "val_loss".into(),
            goal: Goal::Minimize,
            winner: Some(winner),
            candidates,
            swept: vec!["lr".into()],
            incoming_key: None,
            message: None,
            found: None,
            range_test: None,
            same_runs: Vec::new(),
        }
    }

    #[test]
    fn the_pooled_standard_error_weighs_each_side_by_its_repeats() {
        // Two of std 0.1 and three of std 0.2: pooled variance (0.01 + 2 × 0.04) / 3 = 0.03.
        let se = pooled_std_error((0.1, 2), (0.2, 3)).unwrap();
        assert!((se - (0.03f64 * (1.0 / 2.0 + 1.0 / 3.0)).sqrt()).abs() < 1e-12, "{se}");
        assert_eq!(pooled_std_error((0.0, 1), (0.0, 1)), None);
    }

    #[test]
    fn a_lead_is_within_noise_below_the_standard_error_or_one_percent() {
        let p =
            phase(vec![cand("a", Some(0.1), 2.00, Some(0.05), 2, 0), cand("b", Some(0.2), 2.04, Some(0.05), 2, 10)], 0);
        let l = p.lead().unwrap();
        assert_eq!(l.runner_up, 1);
        assert!((l.std_error.unwrap() - 0.05).abs() < 1e-12 && l.within_noise, "{l:?}");
        let p =
            phase(vec![cand("a", Some(0.1), 2.00, Some(0.01), 2, 0), cand("b", Some(0.2), 2.04, Some(0.01), 2, 10)], 0);
        assert!(!p.lead().unwrap().within_noise, "a lead of 4 standard errors is real");
        // Without repeats: the 1 % rule.
        let p = phase(vec![cand("a", Some(0.1), 2.00, None, 1, 0), cand("b", Some(0.2), 2.019, None, 1, 10)], 0);
        let l = p.lead().unwrap();
        assert!(l.std_error.is_none() && l.within_noise && l.percent < 1.0, "{l:?}");
        let p = phase(vec![cand("a", Some(0.1), 2.00, None, 1, 0), cand("b", Some(0.2), 2.03, None, 1, 10)], 0);
        assert!(!p.lead().unwrap().within_noise);
    }

    #[test]
    fn a_candidate_that_is_the_same_run_is_listed_once_and_never_the_runner_up() {
        let mut p = phase(
            vec![
                cand("baseline", None, 2.0, None, 1, 0),
                cand("lr=0.2", Some(0.2), 2.5, None, 1, 10),
                cand("lr=0.1", Some(0.1), 2.0, None, 1, 0),
            ],
            0,
        );
        // Before merging, too: the same key is not a runner-up.
        assert_eq!(p.lead().unwrap().runner_up, 1);
        p.merge_same_runs();
        let names: Vec<&str> = p.candidates.iter().map(|c| c.variant.as_str()).collect();
        assert_eq!(names, ["baseline", "lr=0.2"]);
        assert_eq!(p.same_runs, vec![("lr=0.1".to_owned(), 0)]);
        assert_eq!(p.winner, Some(0));
        let l = p.lead().unwrap();
        assert!(l.runner_up == 1 && !l.within_noise && l.margin > 0.0, "{l:?}");
        // A winner listed after a dropped duplicate keeps pointing at itself.
        let mut q = phase(
            vec![
                cand("a", Some(0.3), 3.0, None, 1, 0),
                cand("b", Some(0.3), 3.0, None, 1, 0),
                cand("c", Some(0.1), 1.0, None, 1, 20),
            ],
            2,
        );
        q.merge_same_runs();
        assert_eq!(q.winner().unwrap().variant, "c");
    }

    #[test]
    fn insights_give_the_best_value_its_safe_range_and_where_runs_diverge() {
        let mut diverged = cand("lr=0.8", Some(0.8), f64::NAN, None, 1, 40);
        diverged.status = CandidateStatus::Diverged;
        let p = phase(
            vec![
                cand("lr=0.01", Some(0.01), 2.50, None, 1, 0),
                cand("lr=0.05", Some(0.05), 2.03, None, 1, 10),
                cand("lr=0.1", Some(0.1), 2.00, None, 1, 20),
                cand("lr=0.3", Some(0.3), 2.02, None, 1, 30),
                diverged,
            ],
            2,
        );
        let results = StudyResults {
            study: "s".into(),
            metric: "val_loss".into(),
            goal: Goal::Minimize,
            phases: vec![p],
            final_run: None,
            final_status: None,
            interrupted: false,
            train_wall: 0.0,
            superseded: Vec::new(),
        };
        let i = &results.insights()[0];
        assert_eq!((i.key.as_str(), i.best, i.values), ("lr", 0.1, 5));
        // Within 2 % of 2.00: 0.05 (2.03) and 0.3 (2.02), not 0.01 (2.5).
        assert_eq!(i.safe_range, Some((0.05, 0.3)));
        assert_eq!(i.diverges_at, Some(0.8));
    }
}
