//! Telling people how a study is going, on stderr: live bars on a terminal, plain log lines
//! otherwise (or with `-q`, nothing but problems).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cache::RunKey;
use crate::spec::Status;

/// Identifies an active run in progress events.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RunLabel {
    /// `phase` or `final`.
    pub phase: String,
    pub variant: String,
    /// Set when the candidate has several repeats.
    pub seed: Option<u64>,
}

impl std::fmt::Display for RunLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.phase, self.variant)?;
        if let Some(s) = self.seed {
            write!(f, " (seed {s})")?;
        }
        Ok(())
    }
}

/// What the engine tells its observer.
#[derive(Clone, Debug)]
pub enum Event {
    /// Runs known so far (grows as winners resolve later phases).
    Total(usize),
    Started { label: RunLabel, total_steps: Option<u64> },
    Step { label: RunLabel, step: u64, total_steps: Option<u64>, loss: f64, tokens_per_sec: f64 },
    Finished { label: RunLabel, key: RunKey, status: Status, cached: bool, objective: Option<f64>, seconds: f64 },
    Cancelled { label: RunLabel },
    PhaseDone { phase: String, winner: Option<String>, objective: Option<f64> },
    PhaseFailed { phase: String, message: String },
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
        match event {
            Event::Warning(w) => eprintln!("warning: {w}"),
            Event::PhaseFailed { phase, message } => eprintln!("error: phase `{phase}` failed: {message}"),
            _ => {}
        }
    }
}

fn fmt_obj(o: Option<f64>) -> String {
    o.map_or_else(|| "-".to_owned(), |x| format!("{x:.4}"))
}

/// One line per finished run and per phase decision.
#[derive(Default)]
pub struct Log {
    state: Mutex<(usize, usize)>, // (done, total)
}

impl Observer for Log {
    fn event(&self, event: Event) {
        let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut err = std::io::stderr().lock();
        let _ = match event {
            Event::Total(n) => {
                st.1 = n;
                Ok(())
            }
            Event::Started { label, total_steps } => {
                writeln!(err, "train  {label}{}", total_steps.map(|s| format!(" ({s} steps)")).unwrap_or_default())
            }
            Event::Step { .. } => Ok(()),
            Event::Finished { label, key, status, cached, objective, seconds } => {
                st.0 += 1;
                let how = if cached { "cached".to_owned() } else { format!("{seconds:.1}s") };
                writeln!(err, "[{}/{}] {label}: {status} objective {} ({how}, {})", st.0, st.1, fmt_obj(objective), key.short())
            }
            Event::Cancelled { label } => writeln!(err, "cancelled {label}"),
            Event::PhaseDone { phase, winner, objective } => {
                writeln!(err, "phase `{phase}`: winner {} ({})", winner.as_deref().unwrap_or("-"), fmt_obj(objective))
            }
            Event::PhaseFailed { phase, message } => writeln!(err, "error: phase `{phase}` failed: {message}"),
            Event::Warning(w) => writeln!(err, "warning: {w}"),
        };
    }
}

/// indicatif: an overall bar plus one line per active run.
pub struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    active: Mutex<HashMap<RunLabel, ProgressBar>>,
    cached: Mutex<usize>,
}

impl Bars {
    fn new() -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template("{prefix:>7} [{bar:30.cyan/blue}] {pos}/{len} runs {msg} · {elapsed_precise} (eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        overall.set_prefix("study");
        overall.enable_steady_tick(Duration::from_millis(250));
        Bars { multi, overall, active: Mutex::new(HashMap::new()), cached: Mutex::new(0) }
    }

    fn run_style() -> ProgressStyle {
        ProgressStyle::with_template("  {spinner} {prefix} {pos}/{len} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
    }
}

impl Observer for Bars {
    fn event(&self, event: Event) {
        let mut active = self.active.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            Event::Total(n) => self.overall.set_length(n as u64),
            Event::Started { label, total_steps } => {
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
                    bar.set_message(format!("loss {loss:.4} · {tokens_per_sec:.0} tok/s"));
                }
            }
            Event::Finished { label, key, status, cached, objective, seconds } => {
                if let Some(bar) = active.remove(&label) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                if cached {
                    let mut c = self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    *c += 1;
                    self.overall.set_message(format!("({} cached)", *c));
                } else {
                    let _ = self.multi.println(format!("  {label}: {status} objective {} ({seconds:.1}s, {})", fmt_obj(objective), key.short()));
                }
                self.overall.inc(1);
            }
            Event::Cancelled { label } => {
                if let Some(bar) = active.remove(&label) {
                    bar.abandon_with_message("cancelled");
                }
            }
            Event::PhaseDone { phase, winner, objective } => {
                let _ = self.multi.println(format!("phase `{phase}`: winner {} ({})", winner.as_deref().unwrap_or("-"), fmt_obj(objective)));
            }
            Event::PhaseFailed { phase, message } => {
                let _ = self.multi.println(format!("error: phase `{phase}` failed: {message}"));
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
