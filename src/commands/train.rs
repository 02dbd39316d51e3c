//! `lrx train`: one training run — the defaults, a study's root config, or one of its candidates,
//! with `--set` overrides — with a progress bar on stderr and the result on stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::Exit;
use super::study::{open_read_only, trainers};
use crate::cache::store::history_to_csv;
use crate::cache::{RunKey, Store};
use crate::cli::{GlobalArgs, TrainArgs};
use crate::ops::study::data_fingerprint;
use crate::ops::train::{self, Unresolved};
use crate::spec::{CancelFlag, Progress, RunContext, RunResult, Status, Trainer, TrainerSpec};
use crate::train::Device;

pub(crate) fn run(args: &TrainArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    let device = Device::parse(&args.device)?;
    let study = match &args.file {
        Some(file) => {
            let Some(study) = open_read_only(file, &args.device, g)? else {
                errln!("error: `{}` is not a valid study (see above)", file.display());
                return Ok(Exit::Failure);
            };
            Some(study)
        }
        None => None,
    };
    // After the study: its `params {}` declare keys the `--set`s may set.
    let changes = match train::parse_sets(&args.set) {
        Ok(c) => c,
        Err(bad) => {
            let color = super::use_color(g);
            let rendered: Vec<String> = bad.iter().map(|b| b.diagnostic.render(&b.text, "--set", color)).collect();
            errln!("{}", rendered.iter().map(|r| r.trim_end()).collect::<Vec<_>>().join("\n\n"));
            return Ok(Exit::Failure);
        }
    };
    let resolved = match &study {
        Some(s) => train::study_config(s, args.phase.as_deref(), args.variant.as_deref(), &changes),
        None => train::default_config(&changes),
    };
    let config = match resolved {
        Ok(config) => config,
        Err(Unresolved::Study(e)) => return Err(e.into()),
        Err(e) => {
            errln!("error: {e}");
            return Ok(Exit::Failure);
        }
    };
    let base = match &study {
        Some(s) => s.base_dir.clone(),
        None => std::env::current_dir().context("cannot read the current folder")?,
    };
    let own;
    let (trainers, store) = if let Some(s) = &study {
        (&s.trainer, &s.store)
    } else {
        own = (trainers(device, g, &base), Store::at(&g.cache));
        (&own.0, &own.1)
    };
    let key = train::key_of(&config, trainers, |data| match &study {
        Some(s) => s.fingerprint(data),
        None => data_fingerprint(data, &base),
    })
    .ok();
    // A run the cache holds is read, not trained again (`lrx cache rm KEY` makes it train).
    match key.map(|k| (k, train::cached(store, k))) {
        Some((k, Ok(Some(result)))) => {
            noteln!("cached run {}: nothing trained (`lrx cache rm {}` trains it again)", k.short(), k.short());
            return finish(args, g, &result, Some(k));
        }
        Some((_, Err(why))) => noteln!("note: {why}"),
        _ => {}
    }
    let quiet = !super::printer::shows(super::printer::Verbosity::Normal);

    let cancel = CancelFlag::new();
    super::interrupt::arm(&cancel, None);
    let mut reporter = Reporter::new(quiet);
    let mut on_progress = |p: Progress| reporter.on(p);
    let result = if config.train.trainer == TrainerSpec::Builtin {
        // Load the data first, so that a bad corpus is an input error (exit 1), not a run; a
        // device or download that fails is the environment's (exit 2).
        let data = match trainers.builtin.load_data(&config, &base, &mut |m| noteln!("{m}")) {
            Ok(d) => d,
            Err(e) if train::is_environment(&e) => return Err(e.into()),
            Err(e) => {
                errln!("error: {e}");
                return Ok(Exit::Failure);
            }
        };
        let mut ctx = RunContext::standalone(&cancel, &mut on_progress, base.clone());
        trainers.builtin.train_data(&config, &data, &mut ctx)
    } else {
        let mut ctx = RunContext::standalone(&cancel, &mut on_progress, base.clone());
        trainers.train(&config, &mut ctx)
    };
    reporter.finish();
    let Ok(result) = result else {
        errln!("interrupted");
        return Ok(Exit::Interrupted);
    };
    finish(args, g, &result, key)
}

/// Writes `--out`, prints the result and maps its status to the exit code.
fn finish(args: &TrainArgs, g: &GlobalArgs, result: &RunResult, key: Option<RunKey>) -> anyhow::Result<Exit> {
    let json = result_json(result, key);
    if let Some(out) = &g.out {
        write_outputs(out, &json, result)?;
    }
    if args.json {
        outln!("{}", serde_json::to_string(&json)?);
    } else {
        out!("{}", table(result));
    }
    if let Some(e) = &result.error {
        errln!("error: {e}");
    }
    Ok(if result.status == Status::Failed { Exit::Failure } else { Exit::Success })
}

/// The `train --json` document.
fn result_json(r: &RunResult, key: Option<RunKey>) -> serde_json::Value {
    let mut doc = serde_json::json!({
        // The key the run would have in the cache (`lrx train` itself does not publish).
        "key": key.map(RunKey::to_hex),
        "status": r.status.as_str(),
        "steps": r.steps,
        "tokens": r.tokens,
        "seconds": r.seconds,
        "tokens_per_sec": r.tokens_per_sec,
        "params": r.params,
        "metrics": r.metrics,
        "history": r.history,
    });
    if let Some(at) = r.diverged_at {
        doc["diverged_at"] = at.into();
    }
    if let Some(e) = &r.error {
        doc["error"] = e.clone().into();
    }
    doc
}

fn write_outputs(out: &Path, json: &serde_json::Value, r: &RunResult) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create `{}`", out.display()))?;
    let path = out.join("result.json");
    std::fs::write(&path, serde_json::to_string_pretty(json)? + "\n")
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    let path = out.join("history.csv");
    let csv = history_to_csv(&r.history).map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::write(&path, csv).with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

/// The human summary on stdout.
fn table(r: &RunResult) -> String {
    let mut rows: Vec<(String, String)> = vec![("status".into(), r.status.to_string())];
    if let Some(at) = r.diverged_at {
        rows.push(("diverged_at".into(), at.to_string()));
    }
    rows.push(("steps".into(), r.steps.to_string()));
    rows.push(("tokens".into(), r.tokens.to_string()));
    rows.push(("seconds".into(), format!("{:.1}", r.seconds)));
    rows.push(("tokens_per_sec".into(), format!("{:.0}", r.tokens_per_sec)));
    if let Some(p) = r.params {
        rows.push(("params".into(), format!("{} total, {} active", p.total, p.active)));
    }
    let metrics: BTreeMap<_, _> = r.metrics.iter().collect();
    for (k, v) in metrics {
        rows.push((k.clone(), format!("{v:.4}")));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter().fold(String::new(), |mut out, (k, v)| {
        let _ = writeln!(out, "{k:<width$}  {v}");
        out
    })
}

/// Progress on stderr: a bar on a terminal, plain lines per history row otherwise.
struct Reporter {
    bar: Option<ProgressBar>,
    quiet: bool,
    total: Option<u64>,
}

impl Reporter {
    fn new(quiet: bool) -> Reporter {
        Reporter { bar: None, quiet, total: None }
    }

    fn on(&mut self, p: Progress) {
        if self.quiet {
            return;
        }
        match p {
            Progress::Started { total_steps, params } => {
                self.total = total_steps;
                if let Some(pc) = params {
                    errln!("training {} parameters ({} active per token)", pc.total, pc.active);
                }
                if std::io::stderr().is_terminal() {
                    let bar = total_steps.map_or_else(ProgressBar::new_spinner, ProgressBar::new);
                    let style =
                        ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} {msg} [{elapsed_precise}]")
                            .unwrap_or_else(|_| ProgressStyle::default_bar());
                    bar.set_style(style);
                    self.bar = Some(bar);
                }
            }
            Progress::Step { step, loss, tokens_per_sec, .. } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(step);
                    bar.set_message(format!("loss {loss:.4} · {tokens_per_sec:.0} tok/s"));
                }
            }
            Progress::Row(row) => {
                if self.bar.is_none() {
                    let total = self.total.map_or_else(|| "?".to_owned(), |t| t.to_string());
                    let mut line = format!("step {}/{total}", row.step);
                    for k in ["train_loss", "val_loss", "val_accuracy", "tokens_per_sec"] {
                        if let Some(v) = row.metrics.get(k) {
                            let _ = if k == "tokens_per_sec" {
                                write!(line, "  {k} {v:.0}")
                            } else {
                                write!(line, "  {k} {v:.4}")
                            };
                        }
                    }
                    errln!("{line}");
                } else if let (Some(bar), Some(v)) = (&self.bar, row.metrics.get("val_loss")) {
                    bar.println(format!("step {}: val_loss {v:.4}", row.step));
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
