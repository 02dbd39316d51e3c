//! Telling people how a study is going, on stderr: live bars on a terminal, plain log lines
//! otherwise (or with `-q`, nothing but problems).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cache::RunKey;
use crate::spec::{HistoryRow, Status};

/// Identifies an active run in progress events.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RunLabel {
    /// `phase` or `final`.
    pub phase: String,
    pub variant: String,
    /// Set when the candidate has several repeats.
    pub seed: Option<u64>,
    /// Set for a successive-halving rung that stops before the budget: the step it stops at.
    pub rung: Option<u64>,
}

impl std::fmt::Display for RunLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.phase, self.variant)?;
        if let Some(s) = self.seed {
            write!(f, " (seed {s})")?;
        }
        if let Some(r) = self.rung {
            write!(f, " [rung to step {r}]")?;
        }
        Ok(())
    }
}

/// What the engine tells its observer.
#[derive(Clone, Debug)]
pub enum Event {
    /// Runs settled (trained, served from the cache, failed or pruned) out of all the runs the
    /// study will take, as far as the plan can tell: runs of phases still waiting on a winner
    /// are counted from their candidates, so the total does not grow as phases resolve.
    Counts {
        done: usize,
        total: usize,
    },
    Started {
        label: RunLabel,
        total_steps: Option<u64>,
    },
    Step {
        label: RunLabel,
        step: u64,
        total_steps: Option<u64>,
        loss: f64,
        tokens_per_sec: f64,
    },
    /// A row of the run's history with validation metrics: an evaluation.
    Eval {
        label: RunLabel,
        row: HistoryRow,
        total_steps: Option<u64>,
    },
    Finished {
        label: RunLabel,
        key: RunKey,
        status: Status,
        cached: bool,
        objective: Option<f64>,
        seconds: f64,
        reason: Option<String>,
    },
    /// A run whose earlier attempt failed is trained again.
    Retrying {
        label: RunLabel,
        attempt: u32,
        reason: String,
    },
    Cancelled {
        label: RunLabel,
    },
    PhaseDone {
        phase: String,
        winner: Option<String>,
        objective: Option<f64>,
    },
    PhaseFailed {
        phase: String,
        message: String,
    },
    /// A run the study's budget leaves out: it does not train, and is no failure.
    Skipped {
        label: RunLabel,
    },
    /// A phase (or the final run) the budget left without a winner.
    PhaseSkipped {
        phase: String,
        message: String,
    },
    /// Something the user should know that is not a problem (a corpus being fetched).
    Note(String),
    Warning(String),
}

/// Receives engine events; called from several worker threads.
pub trait Observer: Send + Sync {
    fn event(&self, event: Event);
    /// Clears live displays before the final summary is printed.
    fn finish(&self) {}
}

/// Picks the display: bars on a terminal, log lines otherwise, silence with `quiet`.
pub fn for_stderr(quiet: bool) -> Box<dyn Observer> {
    if quiet {
        Box::new(Quiet)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bars::new())
    } else {
        Box::new(Log::default())
    }
}

/// Nothing at all: for walks that only read the cache (`plan`, `show`), whose commands report
/// what they find themselves.
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _: Event) {}
}

/// Only problems.
pub struct Quiet;

impl Observer for Quiet {
    fn event(&self, event: Event) {
        // `writeln!`, not `eprintln!`: a closed stderr must not panic a study.
        let mut err = std::io::stderr().lock();
        let _ = match event {
            Event::Warning(w) => writeln!(err, "warning: {w}"),
            Event::PhaseFailed { phase, message } => writeln!(err, "error: phase `{phase}` failed: {message}"),
            Event::Finished { label, status: Status::Failed, reason, .. } => {
                writeln!(err, "error: {label} failed: {}", first_lines(reason.as_deref()))
            }
            _ => Ok(()),
        };
    }
}

fn fmt_obj(o: Option<f64>) -> String {
    o.map_or_else(|| "-".to_owned(), |x| format!("{x:.4}"))
}

/// The first lines of a failure's reason, indented under the run's line: enough to act on,
/// the rest is in the failure record (`lrx show`).
pub fn first_lines(reason: Option<&str>) -> String {
    const LINES: usize = 6;
    let reason = reason.unwrap_or("no reason given").trim_end();
    let mut lines = reason.lines();
    let mut out: Vec<&str> = lines.by_ref().take(LINES).collect();
    let rest = lines.count();
    if out.is_empty() {
        out.push("no reason given");
    }
    let mut text = out.join("\n      ");
    if rest > 0 {
        let _ = write!(text, "\n      ({rest} more lines: `lrx show`)");
    }
    text
}

/// The time of day (UTC), for log lines that are read next to other logs.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{:02}:{:02}:{:02}", secs / 3600 % 24, secs / 60 % 60, secs % 60)
}

/// An evaluation row as a short line: step, losses, throughput.
fn eval_line(row: &HistoryRow, total_steps: Option<u64>) -> String {
    let mut parts = vec![match total_steps {
        Some(t) => format!("step {}/{t}", row.step),
        None => format!("step {}", row.step),
    }];
    for name in ["train_loss", "val_loss", "val_accuracy"] {
        if let Some(v) = row.metrics.get(name) {
            parts.push(format!("{name} {v:.4}"));
        }
    }
    if let Some(t) = row.metrics.get("tokens_per_sec") {
        parts.push(format!("{t:.0} tok/s"));
    }
    parts.join(" · ")
}

/// One line per finished run, per evaluation and per phase decision, each with the time of
/// day: what a log file of a long study needs.
#[derive(Default)]
pub struct Log {
    state: Mutex<(usize, usize)>, // (done, total)
}

impl Observer for Log {
    fn event(&self, event: Event) {
        let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let line = match event {
            Event::Counts { done, total } => {
                *st = (done, total);
                return;
            }
            Event::Started { label, total_steps } => {
                format!("train  {label}{}", total_steps.map(|s| format!(" ({s} steps)")).unwrap_or_default())
            }
            Event::Step { .. } => return,
            Event::Eval { label, row, total_steps } => format!("       {label}: {}", eval_line(&row, total_steps)),
            Event::Finished { label, key, status, cached, objective, seconds, reason } => {
                let how = if cached { "cached".to_owned() } else { format!("{seconds:.1}s") };
                let mut line = format!(
                    "[{}/{}] {label}: {status} objective {} ({how}, {})",
                    st.0,
                    st.1,
                    fmt_obj(objective),
                    key.short()
                );
                if status == Status::Failed {
                    let _ = write!(line, "\n      {}", first_lines(reason.as_deref()));
                }
                line
            }
            Event::Retrying { label, attempt, reason } => {
                format!("retry  {label} (attempt {attempt}; the last one failed: {reason})")
            }
            Event::Cancelled { label } => format!("cancelled {label}"),
            Event::PhaseDone { phase, winner, objective } => {
                format!("phase `{phase}`: winner {} ({})", winner.as_deref().unwrap_or("-"), fmt_obj(objective))
            }
            Event::PhaseFailed { phase, message } => format!("error: phase `{phase}` failed: {message}"),
            Event::Skipped { label } => format!("skip   {label} (the study's budget is spent)"),
            Event::PhaseSkipped { phase, message } => format!("phase `{phase}`: skipped: {message}"),
            Event::Note(n) => n,
            Event::Warning(w) => format!("warning: {w}"),
        };
        let _ = writeln!(std::io::stderr().lock(), "{} {line}", timestamp());
    }
}

/// indicatif: an overall bar plus one line per active run.
pub struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    active: Mutex<HashMap<RunLabel, ProgressBar>>,
    /// Runs served from the cache, and the trained ones with when the first started: the ETA
    /// comes from the rate of trained runs only (cache hits would make it far too short).
    tally: Mutex<Tally>,
}

#[derive(Default)]
struct Tally {
    cached: usize,
    trained: usize,
    first_start: Option<std::time::Instant>,
    done: usize,
    total: usize,
}

impl Tally {
    fn message(&self) -> String {
        let mut parts = Vec::new();
        if self.cached > 0 {
            parts.push(format!("{} cached", self.cached));
        }
        if let Some(t0) = self.first_start
            && self.trained > 0
        {
            let per_run = t0.elapsed().as_secs_f64() / self.trained as f64;
            let left = self.total.saturating_sub(self.done) as f64 * per_run;
            parts.push(format!("eta ~{}", crate::spec::value::human_duration(left)));
        }
        if parts.is_empty() { String::new() } else { format!("({})", parts.join(", ")) }
    }
}

impl Bars {
    fn new() -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template("{prefix:>7} [{bar:30.cyan/blue}] {pos}/{len} runs {msg} · {elapsed_precise}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        overall.set_prefix("study");
        overall.enable_steady_tick(Duration::from_millis(250));
        Bars { multi, overall, active: Mutex::new(HashMap::new()), tally: Mutex::new(Tally::default()) }
    }

    fn run_style() -> ProgressStyle {
        ProgressStyle::with_template("  {spinner} {prefix} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
    }
}

impl Observer for Bars {
    fn event(&self, event: Event) {
        let mut active = self.active.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut tally = self.tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            Event::Counts { done, total } => {
                tally.done = done;
                tally.total = total;
                self.overall.set_length(total as u64);
                self.overall.set_position(done as u64);
                self.overall.set_message(tally.message());
            }
            Event::Started { label, total_steps } => {
                tally.first_start.get_or_insert_with(std::time::Instant::now);
                let bar = self.multi.add(ProgressBar::new(total_steps.unwrap_or(0)));
                bar.set_style(Bars::run_style());
                bar.set_prefix(label.to_string());
                bar.enable_steady_tick(Duration::from_millis(200));
                active.insert(label, bar);
            }
            Event::Step { label, step, total_steps, loss, tokens_per_sec } => {
                if let Some(bar) = active.get(&label) {
                    if let Some(t) = total_steps {
                        bar.set_length(t);
                    }
                    bar.set_position(step);
                    // A script's progress may lack either (no throughput, no loss yet).
                    let mut message = format!("loss {loss:.4}");
                    if tokens_per_sec.is_finite() {
                        let _ = write!(message, " · {tokens_per_sec:.0} tok/s");
                    }
                    bar.set_message(message);
                }
            }
            Event::Eval { .. } => {}
            Event::Finished { label, key, status, cached, objective, seconds, reason } => {
                if let Some(bar) = active.remove(&label) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                if cached {
                    tally.cached += 1;
                } else {
                    tally.trained += 1;
                    let mut line = format!(
                        "  {label}: {status} objective {} ({seconds:.1}s, {})",
                        fmt_obj(objective),
                        key.short()
                    );
                    if status == Status::Failed {
                        let _ = write!(line, "\n      {}", first_lines(reason.as_deref()));
                    }
                    let _ = self.multi.println(line);
                }
                self.overall.set_message(tally.message());
            }
            Event::Retrying { label, attempt, reason } => {
                let _ =
                    self.multi.println(format!("retry  {label} (attempt {attempt}; the last one failed: {reason})"));
            }
            Event::Note(n) => {
                let _ = self.multi.println(n);
            }
            Event::Cancelled { label } => {
                if let Some(bar) = active.remove(&label) {
                    bar.abandon_with_message("cancelled");
                }
            }
            Event::PhaseDone { phase, winner, objective } => {
                let _ = self.multi.println(format!(
                    "phase `{phase}`: winner {} ({})",
                    winner.as_deref().unwrap_or("-"),
                    fmt_obj(objective)
                ));
            }
            Event::PhaseFailed { phase, message } => {
                let _ = self.multi.println(format!("error: phase `{phase}` failed: {message}"));
            }
            Event::Skipped { label } => {
                let _ = self.multi.println(format!("skip   {label} (the study's budget is spent)"));
            }
            Event::PhaseSkipped { phase, message } => {
                let _ = self.multi.println(format!("phase `{phase}`: skipped: {message}"));
            }
            Event::Warning(w) => {
                let _ = self.multi.println(format!("warning: {w}"));
            }
        }
    }

    fn finish(&self) {
        for (_, bar) in self.active.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain() {
            bar.finish_and_clear();
        }
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}
