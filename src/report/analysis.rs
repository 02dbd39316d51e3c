//! What the report says about a study, derived from its results alone: each phase's baseline
//! and ranking, the keys it sweeps and their values per candidate, grid and schedule phases,
//! close calls, correlations, failures and compute spent or saved.

use std::collections::HashSet;

use crate::results::{CandidateResult, CandidateStatus, PhaseResult, StudyResults};
use crate::spec::Goal;
use crate::spec::schema::{self, Lookup};
use crate::spec::{RunConfig, Status, Value};

use super::format;
use super::stats;

/// A key a phase varies, with each candidate's value for it.
#[derive(Clone, Debug)]
pub struct SweptKey {
    /// `matrix_lr`, or a constructor's argument: `schedule.warmup`.
    pub name: String,
    /// Per candidate: the value it sets (from its changes), if it sets one.
    pub own: Vec<Option<Value>>,
    /// Per candidate: the value in its resolved config (its own, or the incoming one).
    pub value: Vec<Option<Value>>,
    /// Every value set is a number.
    pub numeric: bool,
    /// The numeric values are log-spaced (plot on a log axis, correlate with the log too).
    pub log: bool,
}

impl SweptKey {
    pub fn x(&self, i: usize) -> Option<f64> {
        self.value.get(i)?.as_ref()?.as_f64().filter(|x| x.is_finite())
    }
}

/// The winner's lead over the runner-up is inside the noise.
#[derive(Clone, Debug)]
pub struct CloseCall {
    pub runner_up: usize,
    pub margin: f64,
    /// Margin relative to the runner-up's objective, in percent.
    pub percent: f64,
    /// The pooled standard error of the difference, when either has repeats.
    pub spread: Option<f64>,
    /// Judged by the standard error (repeats) ...
    pub within_spread: bool,
    /// ... or, without repeats, by the 1 % rule.
    pub within_one_percent: bool,
}

/// One phase, analysed.
pub struct PhaseView<'a> {
    pub phase: &'a PhaseResult,
    /// The incoming config's result: the phase's `baseline` candidate, or the run elsewhere in
    /// the study with the phase's incoming key.
    pub baseline: Option<&'a CandidateResult>,
    /// Index of the baseline among the phase's candidates, when it is one.
    pub baseline_index: Option<usize>,
    /// Candidate indices, best objective first; those without one last, in listed order.
    pub order: Vec<usize>,
    pub keys: Vec<SweptKey>,
    /// Indices into `keys` of two keys varied jointly.
    pub grid: Option<(usize, usize)>,
    pub varies_schedule: bool,
    pub close_call: Option<CloseCall>,
    /// Every final metric any candidate has, in reading order (`acc_per_min` excluded: it has
    /// its own column).
    pub metrics: Vec<String>,
}

impl PhaseView<'_> {
    pub fn goal(&self) -> Goal {
        self.phase.goal
    }

    /// A short label for a candidate: `baseline`, or its swept keys' values.
    pub fn label(&self, i: usize) -> String {
        let c = &self.phase.candidates[i];
        if Some(i) == self.baseline_index || c.changes.is_empty() {
            return if c.variant.is_empty() { "baseline".to_owned() } else { c.variant.clone() };
        }
        let parts: Vec<String> = self
            .keys
            .iter()
            .filter_map(|k| k.own[i].as_ref().map(|v| format!("{}={}", k.name, format::value(v))))
            .collect();
        if parts.is_empty() { c.variant.clone() } else { parts.join(",") }
    }

    /// The winner's objective change over the baseline: (absolute, percent, better).
    pub fn gain(&self) -> Option<(f64, f64, bool)> {
        // A range test passes on a value, not its run: its run's objective is no gain.
        if self.phase.found.is_some() {
            return None;
        }
        let w = self.phase.winner()?.objective?;
        let b = self.baseline?.objective?;
        Some(gain(w, b, self.phase.goal))
    }
}

/// `new − old`, that in percent of `old`, and whether it is an improvement.
pub fn gain(new: f64, old: f64, goal: Goal) -> (f64, f64, bool) {
    let d = new - old;
    let pct = if old == 0.0 { f64::NAN } else { d / old.abs() * 100.0 };
    (d, pct, goal.better(new, old))
}

/// One correlation row.
#[derive(Clone, Debug)]
pub struct Correlation {
    pub phase: String,
    /// `matrix_lr`, or `log10(matrix_lr)`.
    pub key: String,
    pub target: String,
    pub n: usize,
    pub pearson: Option<f64>,
    pub spearman: Option<f64>,
}

/// One run that did not finish well.
#[derive(Clone, Debug)]
pub struct Failure {
    pub phase: String,
    pub variant: String,
    pub seed: Option<u64>,
    pub status: String,
    pub step: Option<u64>,
    pub reason: String,
}

/// Compute over distinct runs: seconds trained by this study's runs, and seconds the cache
/// saved (the recorded training time of runs served from it).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Compute {
    /// Recorded training time of the study's distinct runs.
    pub recorded: f64,
    /// Of that, trained by the invocation that built these results (zero for a report, which
    /// reads the cache only).
    pub trained_now: f64,
    /// Time not spent because candidates that resolve to the same config share one run.
    pub shared: f64,
    /// Runs of the study with no result yet.
    pub missing: usize,
    /// Failed runs, which the next `lrx run` retries.
    pub retry: usize,
}

pub fn compute(results: &StudyResults) -> Compute {
    let mut seen = HashSet::new();
    let mut c = Compute::default();
    for r in results.all_candidates().flat_map(|c| c.repeats.iter()).chain(&results.superseded) {
        if r.status.is_none() {
            c.missing += usize::from(r.key.is_none_or(|k| seen.insert(k)));
            continue;
        }
        if r.status == Some(Status::Failed) {
            c.retry += usize::from(r.key.is_some_and(|k| seen.insert(k)));
            continue;
        }
        let secs = if r.seconds.is_finite() { r.seconds } else { 0.0 };
        if let Some(k) = r.key
            && !seen.insert(k)
        {
            c.shared += secs;
            continue;
        }
        c.recorded += secs;
        if !r.cached {
            c.trained_now += secs;
        }
    }
    c
}

/// Each run's training budget in words (`100 steps`, `120 steps`, `2,048,000 tokens`, `5m`),
/// for the root baseline and the final run, when both configs are known. Tokens per step count:
/// 100 steps of 8 sequences are not 100 steps of 16.
pub fn budgets(a: &CandidateResult, b: &CandidateResult) -> Option<(String, String)> {
    let words = |c: &RunConfig| {
        let per_step = c.train.batch_size * c.model.seq_len;
        match c.train.budget {
            crate::spec::config::Budget::Steps(s) => format!("{s} steps of {per_step} tokens"),
            crate::spec::config::Budget::Tokens(t) => format!("{t} tokens"),
            crate::spec::config::Budget::Time(secs) => format!("{} of training", format::duration(secs)),
        }
    };
    Some((words(a.config.as_ref()?), words(b.config.as_ref()?)))
}

/// The root config's result: the baseline of the first phase that starts from the root.
pub fn root_baseline<'a>(views: &[PhaseView<'a>]) -> Option<(&'a str, &'a CandidateResult)> {
    views.iter().filter(|v| v.phase.after.is_empty()).find_map(|v| Some((v.phase.name.as_str(), v.baseline?)))
}

pub fn analyse(results: &StudyResults) -> Vec<PhaseView<'_>> {
    results.phases.iter().map(|p| analyse_phase(results, p)).collect()
}

fn analyse_phase<'a>(results: &'a StudyResults, phase: &'a PhaseResult) -> PhaseView<'a> {
    let cands = &phase.candidates;
    let baseline_index =
        cands.iter().position(|c| c.variant == "baseline").or_else(|| cands.iter().position(|c| c.changes.is_empty()));
    let baseline = baseline_index.map(|i| &cands[i]).or_else(|| {
        let key = phase.incoming_key?;
        results.all_candidates().find(|c| c.key() == Some(key))
    });
    let keys = swept_keys(phase);
    let grid = find_grid(&keys, cands.len());
    let schedules: Vec<_> = cands.iter().filter_map(|c| c.config.as_ref().map(|k| k.train.schedule.clone())).collect();
    let varies_schedule = keys.iter().any(|k| k.name == "schedule" || k.name.starts_with("schedule."))
        || cands.iter().any(|c| c.changes.iter().any(|(k, _)| k == "schedule" || k.starts_with("schedule.")))
        || schedules.windows(2).any(|w| w[0] != w[1]);
    let order = rank(cands, phase.goal);
    let close_call = close_call(phase);
    let mut metrics: Vec<String> =
        cands.iter().flat_map(|c| c.metrics.keys().cloned()).filter(|m| m != "acc_per_min").collect();
    format::metric_order(&mut metrics);
    PhaseView { phase, baseline, baseline_index, order, keys, grid, varies_schedule, close_call, metrics }
}

/// Candidates that can win, best first (ties keep listed order); then the rest, listed order.
pub fn rank(cands: &[CandidateResult], goal: Goal) -> Vec<usize> {
    let score = |c: &CandidateResult| c.objective.filter(|x| x.is_finite() && c.status == CandidateStatus::Ok);
    let mut good: Vec<usize> = (0..cands.len()).filter(|&i| score(&cands[i]).is_some()).collect();
    good.sort_by(|&a, &b| {
        let (x, y) = (score(&cands[a]).unwrap_or_default(), score(&cands[b]).unwrap_or_default());
        let ord = x.total_cmp(&y);
        let ord = if goal == Goal::Maximize { ord.reverse() } else { ord };
        ord.then(a.cmp(&b))
    });
    good.extend((0..cands.len()).filter(|&i| score(&cands[i]).is_none()));
    good
}

/// The winner's lead when it is inside the noise (`PhaseResult::lead`, the rule `run`, `show`
/// and `winners.json` use too).
fn close_call(phase: &PhaseResult) -> Option<CloseCall> {
    let lead = phase.lead().filter(|l| l.within_noise)?;
    Some(CloseCall {
        runner_up: lead.runner_up,
        margin: lead.margin,
        percent: lead.percent,
        spread: lead.std_error,
        within_spread: lead.std_error.is_some(),
        within_one_percent: lead.std_error.is_none(),
    })
}

/// The value a candidate sets for `name`: a change of that key, or the argument of a changed
/// constructor (`schedule.warmup` inside `schedule=cosine(warmup=0.1,...)`).
fn own_value(c: &CandidateResult, name: &str) -> Option<Value> {
    if let Some((_, v)) = c.changes.iter().find(|(k, _)| k == name) {
        return Some(v.clone());
    }
    let (head, arg) = name.rsplit_once('.')?;
    let (_, v) = c.changes.iter().find(|(k, _)| k == head)?;
    match canonical(head, v) {
        Value::Call(call) => call.arg(arg).cloned(),
        _ => None,
    }
}

/// A changed value with constructor arguments bound and defaulted, when the schema knows it.
fn canonical(key: &str, v: &Value) -> Value {
    if let (Value::Call(_) | Value::Word(_), Lookup::Found(k)) = (v, schema::lookup(None, key)) {
        return k.info().ty.check(k.info().noun, v).unwrap_or_else(|_| v.clone());
    }
    v.clone()
}

/// The phase's swept keys. Names come from `phase.swept` (or the changed keys); a constructor
/// key whose candidates differ in exactly one argument becomes that argument's key.
fn swept_keys(phase: &PhaseResult) -> Vec<SweptKey> {
    let cands = &phase.candidates;
    let mut names: Vec<String> = phase.swept.clone();
    if names.is_empty() {
        for c in cands {
            for (k, _) in &c.changes {
                if !names.contains(k) {
                    names.push(k.clone());
                }
            }
        }
    }
    let mut out: Vec<SweptKey> = Vec::new();
    for name in names {
        let name = refine_ctor_key(cands, &name).unwrap_or(name);
        if out.iter().any(|k| k.name == name) {
            continue;
        }
        let own: Vec<Option<Value>> = cands.iter().map(|c| own_value(c, &name)).collect();
        let value: Vec<Option<Value>> = cands
            .iter()
            .zip(&own)
            .map(|(c, o)| o.clone().or_else(|| c.config.as_ref().and_then(|cfg| config_value(cfg, &name))))
            .collect();
        let set: Vec<&Value> = own.iter().flatten().collect();
        let numeric = !set.is_empty() && set.iter().all(|v| v.as_f64().is_some());
        let xs: Vec<f64> = value.iter().flatten().filter_map(Value::as_f64).collect();
        let log = numeric && stats::is_log_spaced(&xs);
        out.push(SweptKey { name, own, value, numeric, log });
    }
    out
}

/// `schedule` → `schedule.warmup` when every changed `schedule` is the same constructor and the
/// values differ (among themselves and from the incoming one) in exactly one numeric argument.
fn refine_ctor_key(cands: &[CandidateResult], name: &str) -> Option<String> {
    let mut calls = Vec::new();
    for c in cands {
        match c.changes.iter().find(|(k, _)| k == name).map(|(_, v)| canonical(name, v)) {
            Some(Value::Call(call)) => calls.push(call),
            Some(_) => return None,
            None => {
                if let Some(Value::Call(call)) = c.config.as_ref().and_then(|cfg| config_value(cfg, name)) {
                    calls.push(call);
                }
            }
        }
    }
    let first = calls.first()?;
    if calls.iter().any(|c| c.name != first.name) {
        return None;
    }
    let differing: Vec<&str> = first
        .args
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| calls.iter().any(|c| c.arg(n).is_some_and(|v| !v.same(first.arg(n).unwrap_or(v)))))
        .collect();
    match differing.as_slice() {
        [one] if calls.iter().all(|c| c.arg(one).is_some_and(|v| v.as_f64().is_some())) => {
            Some(format!("{name}.{one}"))
        }
        _ => None,
    }
}

/// Two keys set together by some candidates: a grid.
fn find_grid(keys: &[SweptKey], n: usize) -> Option<(usize, usize)> {
    let mut pair = None;
    for i in 0..n {
        let set: Vec<usize> = (0..keys.len()).filter(|&k| keys[k].own[i].is_some()).collect();
        if set.len() == 2 {
            let p = (set[0], set[1]);
            if pair.is_some_and(|q| q != p) {
                return None;
            }
            pair = Some(p);
        } else if set.len() > 2 {
            return None;
        }
    }
    pair
}

/// A key's value in a resolved config: `matrix_lr`, `data.tokens`, `schedule`, or a
/// constructor's argument (`schedule.warmup`). `None` for keys the trainer never reads (`lr`).
pub fn config_value(cfg: &RunConfig, name: &str) -> Option<Value> {
    let json = serde_json::to_value(cfg).ok()?;
    let sections = ["model", "data", "train", "params"];
    let find = |field: &str| sections.iter().find_map(|s| json.get(s)?.get(field).cloned());
    let field = if let Some((head, rest)) = name.split_once('.') {
        if sections.contains(&head) {
            json.get(head)?.get(rest).cloned()
        } else {
            let outer = find(head)?;
            let (ctor, inner) = outer.as_object()?.iter().next()?;
            match inner.get(rest) {
                Some(v) => Some(v.clone()),
                // An implicit argument (`schedule.warmup_start`) is left out at its default.
                None => return implicit_default(head, ctor, rest).map(|v| canonical(name, &v)),
            }
        }
    } else {
        find(name)
    };
    Some(canonical(name, &json_value(&field?)?))
}

/// The default of argument `arg` of constructor `ctor` of key `key`, where it is implicit.
fn implicit_default(key: &str, ctor: &str, arg: &str) -> Option<Value> {
    let crate::spec::schema::Lookup::Found(k) = crate::spec::schema::lookup(None, key) else { return None };
    let crate::spec::schema::Ty::Ctor(ctors) = k.info().ty else { return None };
    let param = ctors.iter().find(|c| c.name == ctor)?.params.iter().find(|p| p.name == arg && p.implicit)?;
    param.default.map(|d| d())
}

fn json_value(j: &serde_json::Value) -> Option<Value> {
    use serde_json::Value as J;
    Some(match j {
        J::Null => Value::Word("none".into()),
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => n.as_i64().map_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN)), Value::Int),
        J::String(s) => Value::Word(s.clone()),
        J::Array(items) => Value::Tuple(items.iter().map(json_value).collect::<Option<_>>()?),
        J::Object(m) => {
            let (name, inner) = m.iter().next()?;
            let args =
                inner.as_object()?.iter().map(|(k, v)| Some((k.clone(), json_value(v)?))).collect::<Option<_>>()?;
            Value::Call(crate::spec::Call { name: name.clone(), args })
        }
    })
}

/// Pearson and Spearman correlations of each numeric swept key (and its log10 when
/// log-spaced) with the objective, loss, accuracy and perplexity, over the phase's finished runs.
pub fn correlations(view: &PhaseView<'_>) -> Vec<Correlation> {
    let phase = view.phase;
    let mut targets = vec![phase.metric.clone()];
    for t in ["val_loss", "val_accuracy", "val_ppl"] {
        if !targets.iter().any(|x| x == t) {
            targets.push(t.to_owned());
        }
    }
    let mut out = Vec::new();
    for (ki, key) in view.keys.iter().enumerate().filter(|(_, k)| k.numeric) {
        let in_grid = view.grid.is_some_and(|(a, b)| a == ki || b == ki);
        // One-factor lines: the candidates that set this key, and the baseline.
        let members: Vec<usize> = (0..phase.candidates.len())
            .filter(|&i| phase.candidates[i].status == CandidateStatus::Ok)
            .filter(|&i| in_grid || key.own[i].is_some() || Some(i) == view.baseline_index)
            .filter(|&i| key.x(i).is_some())
            .collect();
        for target in &targets {
            let pairs: Vec<(f64, f64)> = members
                .iter()
                .filter_map(|&i| {
                    Some((key.x(i)?, phase.candidates[i].metrics.get(target).copied().filter(|y| y.is_finite())?))
                })
                .collect();
            if pairs.len() < 3 {
                continue;
            }
            let (xs, ys): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
            let mut push = |label: String, xs: &[f64]| {
                out.push(Correlation {
                    phase: phase.name.clone(),
                    key: label,
                    target: target.clone(),
                    n: xs.len(),
                    pearson: stats::pearson(xs, &ys),
                    spearman: stats::spearman(xs, &ys),
                });
            };
            push(key.name.clone(), &xs);
            if key.log {
                let logs: Vec<f64> = xs.iter().map(|x| x.log10()).collect();
                push(format!("log10({})", key.name), &logs);
            }
        }
    }
    out
}

/// What to say when results depend on the machine: an objective that measures it, or
/// candidates trained on a time budget.
pub fn machine_note<'a>(metric: &str, cands: impl IntoIterator<Item = &'a CandidateResult>) -> Option<String> {
    let timed = cands.into_iter().filter(|c| c.depends_on_machine()).count();
    match (crate::spec::measures_machine(metric), timed) {
        (true, _) => Some(format!(
            "`{metric}` measures this machine's speed and load as much as the run: it differs between machines and between runs at different load, so its winner is not reproducible"
        )),
        (false, 0) => None,
        (false, n) => Some(format!(
            "{n} candidate{} trained on a time budget: the steps it trained depend on this machine's speed and load (its cache key names the device)",
            if n == 1 { "" } else { "s" }
        )),
    }
}

/// A failed run's reason as the report states it: the reason, the exit code, the attempt and
/// the end of what it wrote to stderr, and that the next `lrx run` retries it.
pub fn failure_text(r: &crate::results::RepeatResult) -> String {
    use std::fmt::Write as _;
    let mut text = r.error.clone().unwrap_or_else(|| "failed".to_owned());
    if let Some(code) = r.exit_code
        && !text.contains(&format!("{code}"))
    {
        let _ = write!(text, " (exit code {code})");
    }
    if let Some(a) = &r.failure {
        let _ = write!(text, "; attempt {}", a.attempt);
    }
    if let Some(tail) = r.log_tail.as_deref().map(str::trim_end).filter(|t| !t.is_empty()) {
        let lines: Vec<&str> = tail.lines().collect();
        let last = lines[lines.len().saturating_sub(3)..].join(" ⏎ ");
        let _ = write!(text, "; stderr ends: {last}");
    }
    if r.key.is_some() {
        text.push_str("; the next `lrx run` retries it");
    }
    text
}

/// Every repeat that diverged, failed or was pruned, and every candidate that failed without
/// a run.
pub fn failures(results: &StudyResults) -> Vec<Failure> {
    let mut out = Vec::new();
    let all = results
        .phases
        .iter()
        .map(|p| (p.name.as_str(), &p.candidates[..]))
        .chain(results.final_run.as_ref().map(|f| ("final", std::slice::from_ref(f))));
    for (phase, cands) in all {
        for c in cands {
            let mut any = false;
            for r in &c.repeats {
                let Some(status) = r.status.filter(|s| *s != Status::Ok) else { continue };
                any = true;
                let last = r.history.iter().map(|h| h.step).max();
                let reason = match status {
                    Status::Diverged => {
                        "loss diverged (non-finite, or above `diverge_factor` × the initial loss)".to_owned()
                    }
                    Status::Pruned => "pruned (stopped early by the pruner)".to_owned(),
                    _ => failure_text(r),
                };
                out.push(Failure {
                    phase: phase.to_owned(),
                    variant: c.variant.clone(),
                    seed: (c.repeats.len() > 1).then_some(r.seed),
                    status: status.to_string(),
                    step: r.diverged_at.or(if status == Status::Diverged {
                        last
                    } else {
                        last.or((r.steps > 0).then_some(r.steps))
                    }),
                    reason,
                });
            }
            if !any && matches!(c.status, CandidateStatus::Failed | CandidateStatus::Diverged) {
                out.push(Failure {
                    phase: phase.to_owned(),
                    variant: c.variant.clone(),
                    seed: None,
                    status: if c.status == CandidateStatus::Failed { "failed".into() } else { "diverged".into() },
                    step: c.diverged_at(),
                    reason: c.reason.clone().unwrap_or_else(|| "no result".into()),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Implicit constructor arguments are left out of the serialized config at their defaults;
    /// their values are still known.
    #[test]
    fn implicit_schedule_arguments_have_values_at_their_defaults() {
        let mut cfg = RunConfig::defaults();
        assert_eq!(config_value(&cfg, "schedule.warmup_start"), Some(Value::Float(0.0)));
        assert_eq!(config_value(&cfg, "schedule.warmup"), Some(Value::Float(0.0)));
        cfg.train.schedule =
            crate::spec::Schedule::Cosine { warmup: 0.05, min_lr: 0.1, cycles: 1, warmup_start: 0.1, over: None };
        assert_eq!(config_value(&cfg, "schedule.warmup_start"), Some(Value::Float(0.1)));
        assert_eq!(config_value(&cfg, "schedule.over"), Some(Value::Word("none".into())));
        assert_eq!(config_value(&cfg, "schedule.nonsense"), None);
    }
}
