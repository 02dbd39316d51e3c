//! `lrx train`: one training run — the defaults, a study's root config, or one of its candidates,
//! with `--set` overrides — with a progress bar on stderr and the result on stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::Exit;
use super::study::{Study, data_fingerprint, trainers};
use crate::cache::KeyInput;
use crate::cache::store::history_to_csv;
use crate::cli::{GlobalArgs, TrainArgs};
use crate::plan::{Changes, apply};
use crate::results::CandidateStatus;
use crate::spec::{CancelFlag, Progress, RunConfig, RunContext, RunResult, Status, Trainer, TrainerSpec};
use crate::train::{Device, TrainError};

pub(crate) fn run(args: &TrainArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    let device = Device::parse(&args.device)?;
    let (config, base) = match resolve(args, g)? {
        Ok(found) => found,
        Err(Refused::Sets(rendered)) => {
            err!("{rendered}");
            return Ok(Exit::Failure);
        }
        Err(Refused::Message(message)) => {
            errln!("error: {message}");
            return Ok(Exit::Failure);
        }
    };
    let trainers = trainers(device, g, &base);
    let key = KeyInput::of_run(&config, config.train.seed, None, &trainers, |data| data_fingerprint(data, &base))
        .ok()
        .map(|input| input.key());
    let quiet = !super::printer::shows(super::printer::Verbosity::Normal);

    let cancel = CancelFlag::new();
    super::interrupt::arm(&cancel, None);
    let mut reporter = Reporter::new(quiet);
    let mut on_progress = |p: Progress| reporter.on(p);
    let result = if config.train.trainer == TrainerSpec::Builtin {
        // Load the data first, so that a bad corpus is an input error (exit 1), not a run.
        let data = match trainers.builtin.load_data(&config, &base, &mut |m| noteln!("{m}")) {
            Ok(d) => d,
            Err(e @ (TrainError::CudaUnavailable(_) | TrainError::BadDevice(_))) => return Err(e.into()),
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

    let json = result_json(&result, key);
    if let Some(out) = &g.out {
        write_outputs(out, &json, &result)?;
    }
    if args.json {
        outln!("{}", serde_json::to_string(&json)?);
    } else {
        out!("{}", table(&result));
    }
    if let Some(e) = &result.error {
        errln!("error: {e}");
    }
    Ok(if result.status == Status::Failed { Exit::Failure } else { Exit::Success })
}

/// Parses every `--set KEY=VALUE` with the language's own syntax (`schedule.warmup=0.1`,
/// `"schedule=cosine(warmup = 0.05)"`); all problems at once, rendered like the checker's.
fn parse_sets(sets: &[String], color: bool) -> Result<Changes, String> {
    let mut changes: Changes = Vec::new();
    let mut errors = String::new();
    for set in sets {
        match crate::lang::parse_assignment(set) {
            Ok((key, value)) => {
                changes.retain(|(k, _)| k != &key);
                changes.push((key, value));
            }
            Err(d) => {
                errors.push_str(&d.render(set, "--set", color));
                errors.push_str(if errors.ends_with('\n') { "\n" } else { "\n\n" });
            }
        }
    }
    if errors.is_empty() { Ok(changes) } else { Err(errors) }
}

/// The config to train and the folder its relative paths are resolved against: a study's root
/// config (derived keys evaluated again after `--set`), one of its candidates (its winners read
/// from the cache), or the defaults.
///
/// The `--set`s are read after the study, whose `params {}` declare keys they may set.
fn resolve(args: &TrainArgs, g: &GlobalArgs) -> anyhow::Result<Result<(RunConfig, PathBuf), Refused>> {
    let sets = || parse_sets(&args.set, super::use_color(g)).map_err(Refused::Sets);
    let Some(file) = &args.file else {
        let base = std::env::current_dir().context("cannot read the current folder")?;
        let changes = match sets() {
            Ok(c) => c,
            Err(r) => return Ok(Err(r)),
        };
        return Ok(apply(&RunConfig::defaults(), &changes).map(|c| (c, base)).map_err(Refused::Message));
    };
    let Some(study) = Study::open_read_only(file, &args.device, g)? else {
        return Ok(Err(Refused::Message(format!("`{}` is not a valid study (see above)", file.display()))));
    };
    let changes = match sets() {
        Ok(c) => c,
        Err(r) => return Ok(Err(r)),
    };
    Ok(candidate_config(args, file, &study, &changes)?.map_err(Refused::Message))
}

/// Why `train` does not start: `--set` diagnostics (rendered), or a message.
enum Refused {
    Sets(String),
    Message(String),
}

/// The study's root config or the asked candidate's, with `changes` applied.
fn candidate_config(
    args: &TrainArgs,
    file: &std::path::Path,
    study: &Study,
    changes: &Changes,
) -> anyhow::Result<Result<(RunConfig, PathBuf), String>> {
    let base = study.base_dir.clone();
    let Some(phase) = &args.phase else {
        return Ok(study.plan.root_with(changes).map(|c| (c, base)));
    };
    let results = study.dry()?;
    let Some(p) = results.phases.iter().find(|p| &p.name == phase) else {
        let names = results.phases.iter().map(|p| p.name.as_str());
        let hint =
            crate::spec::schema::suggest(phase, names).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
        return Ok(Err(format!("the study has no phase `{phase}`{hint}")));
    };
    let variant = args.variant.as_deref().unwrap_or("baseline");
    let Some(c) = p.candidates.iter().find(|c| c.variant == variant) else {
        let hint = crate::spec::schema::suggest(variant, p.candidates.iter().map(|c| c.variant.as_str()))
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        return Ok(Err(format!("phase `{phase}` has no candidate `{variant}`{hint}")));
    };
    match &c.config {
        Some(config) => Ok(apply(config, changes).map(|c| (c, base))),
        None if c.status == CandidateStatus::Waiting => Ok(Err(format!(
            "phase `{phase}` waits on winners the cache does not know yet; `lrx run {}` trains the phases before it",
            file.display()
        ))),
        None => {
            Ok(Err(format!("candidate `{variant}` of `{phase}` cannot run: {}", c.reason.clone().unwrap_or_default())))
        }
    }
}

/// The `train --json` document.
fn result_json(r: &RunResult, key: Option<crate::cache::RunKey>) -> serde_json::Value {
    let mut doc = serde_json::json!({
        // The key the run would have in the cache (`lrx train` itself does not publish).
        "key": key.map(crate::cache::RunKey::to_hex),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_use_the_language_and_the_schema() {
        let changes = parse_sets(
            &[
                "steps=20".into(),
                "schedule=cosine(warmup = 0.1)".into(),
                "tokenizer=bpe(vocab = 512)".into(),
                "schedule.min_lr=0.05".into(),
            ],
            false,
        )
        .unwrap();
        let c = apply(&RunConfig::defaults(), &changes).unwrap();
        assert_eq!(c.train.budget, crate::spec::Budget::Steps(20));
        assert_eq!(c.data.tokenizer, crate::spec::Tokenizer::Bpe { vocab: 512 });
        assert_eq!(
            c.train.schedule,
            crate::spec::Schedule::Cosine { warmup: 0.1, min_lr: 0.05, cycles: 1, warmup_start: 0.0, over: None }
        );
        let errs = parse_sets(&["matrx_lr=0.1".into(), "d_model=abc".into(), "steps=-3".into()], false).unwrap_err();
        assert!(errs.contains("did you mean `matrix_lr`"), "{errs}");
        assert!(errs.contains("steps"), "{errs}");
        assert_eq!(errs.matches("error").count(), 3, "every problem at once: {errs}");
    }
}
