//! What `lrx train` trains: `--set` overrides read with the language's own syntax, the config
//! they apply to (the defaults, a study's root config or one of its candidates), and whether
//! the cache already holds that run.

use crate::cache::{KeyInput, Lookup, RunKey, Store};
use crate::corpus::CorpusError;
use crate::diag::{Diagnostic, Span};
use crate::plan::{Changes, apply};
use crate::results::CandidateStatus;
use crate::spec::schema::{self, Role};
use crate::spec::{RunConfig, RunResult, Trainer, Value};
use crate::train::TrainError;

use super::find::{self, NotFound};
use super::study::{Study, StudyError};

/// A `--set` that cannot be used, with the text it was given in (to render the diagnostic).
#[derive(Debug)]
pub struct BadSet {
    pub text: String,
    pub diagnostic: Diagnostic,
}

/// Parses every `--set KEY=VALUE` with the language's own syntax (`schedule.warmup=0.1`,
/// `"schedule=cosine(warmup = 0.05)"`); all problems at once. A key given twice keeps its last
/// value; two budgets (`steps` and `tokens`) are an error, as in a study, and so are block
/// options (`repeats`): one run has neither several budgets nor repeats.
pub fn parse_sets(sets: &[String]) -> Result<Changes, Vec<BadSet>> {
    let mut changes: Changes = Vec::new();
    let mut errors = Vec::new();
    // The budget set so far: its key and the `--set` that set it.
    let mut budget: Option<(String, String)> = None;
    for set in sets {
        let bad = |diagnostic| BadSet { text: set.clone(), diagnostic };
        let (key, value) = match crate::lang::parse_assignment(set) {
            Ok(kv) => kv,
            Err(d) => {
                errors.push(bad(d));
                continue;
            }
        };
        let written = set.split_once('=').map_or(set.as_str(), |(k, _)| k).trim_end();
        let span = Span::new(set.len() - set.trim_start().len(), written.len());
        let role = match schema::lookup(None, &key) {
            schema::Lookup::Found(k) => Some(k.info().role),
            _ => None,
        };
        if role == Some(Role::Option) {
            errors.push(bad(Diagnostic::error(format!("`{written}` is an option of a phase, not of a run"))
                .at(span, "")
                .help("`lrx train` trains one run; `--set seed=N` trains another seed")));
            continue;
        }
        // `time = none` sets no budget: it leaves `steps` in charge, as in a study.
        let unset = matches!(&value, Value::Word(w) if w == "none");
        if role == Some(Role::Budget) && !unset {
            match &budget {
                Some((other, _)) if *other != key => {
                    errors.push(bad(Diagnostic::error(format!(
                        "`{written}` and `{}` are both set: a run has one budget",
                        schema_name(other)
                    ))
                    .at(span, "")
                    .help("give one of `steps`, `tokens` and `time`")));
                    continue;
                }
                _ => budget = Some((key.clone(), set.clone())),
            }
        }
        changes.retain(|(k, _)| k != &key);
        changes.push((key, value));
    }
    if errors.is_empty() { Ok(changes) } else { Err(errors) }
}

/// A key's name as people write it (`train.steps` → `steps`).
fn schema_name(path: &str) -> &str {
    path.rsplit_once('.').map_or(path, |(_, name)| name)
}

/// Why a study's config cannot be trained.
#[derive(Debug, thiserror::Error)]
pub enum Unresolved {
    #[error(transparent)]
    NotFound(#[from] NotFound),
    #[error("phase `{0}` waits on winners the cache does not know yet; `lrx run` trains the phases before it")]
    Waiting(String),
    #[error("candidate `{variant}` of `{phase}` cannot run: {reason}")]
    CannotRun { phase: String, variant: String, reason: String },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Study(#[from] StudyError),
}

/// The config `lrx train` trains from a study: its root config with `changes` (derived keys
/// evaluated again), or, with `phase`, that phase's candidate `variant` (default `baseline`;
/// its winners read from the cache) with `changes`.
pub fn study_config(
    study: &Study,
    phase: Option<&str>,
    variant: Option<&str>,
    changes: &Changes,
) -> Result<RunConfig, Unresolved> {
    let Some(phase) = phase else {
        return study.plan.root_with(changes).map_err(Unresolved::Config);
    };
    let results = study.dry()?;
    let variant = variant.unwrap_or("baseline");
    let c = find::candidate(&results, phase, variant)?;
    match &c.config {
        Some(config) => apply(config, changes).map_err(Unresolved::Config),
        None if c.status == CandidateStatus::Waiting => Err(Unresolved::Waiting(phase.to_owned())),
        None => Err(Unresolved::CannotRun {
            phase: phase.to_owned(),
            variant: variant.to_owned(),
            reason: c.reason.clone().unwrap_or_default(),
        }),
    }
}

/// The defaults with `changes`.
pub fn default_config(changes: &Changes) -> Result<RunConfig, Unresolved> {
    apply(&RunConfig::defaults(), changes).map_err(Unresolved::Config)
}

/// The key `config` has in the cache when trained by `trainer`, or why it has none.
pub fn key_of(
    config: &RunConfig,
    trainer: &dyn Trainer,
    fingerprint: impl FnOnce(&crate::spec::DataConfig) -> Result<crate::cache::DataFingerprint, String>,
) -> Result<RunKey, String> {
    KeyInput::of_run(config, config.train.seed, None, trainer, fingerprint).map(|input| input.key())
}

/// What the cache holds for `key`: a finished result (`ok` or `diverged`), or why it cannot be
/// used (`None`: not cached).
pub fn cached(store: &Store, key: RunKey) -> Result<Option<RunResult>, String> {
    match store.get(key) {
        Lookup::Hit(entry) => Ok(Some(entry.result)),
        Lookup::Miss => Ok(None),
        Lookup::Corrupt(c) => Err(format!("its cache entry is damaged ({}), so it trains again", c.0)),
    }
}

/// Whether a failure to load a run's data is the environment's (exit 2: no such device, the
/// default corpus could not be downloaded or verified) rather than the input's (exit 1: a
/// missing or too small corpus).
pub fn is_environment(e: &TrainError) -> bool {
    matches!(
        e,
        TrainError::CudaUnavailable(_)
            | TrainError::BadDevice(_)
            | TrainError::Corpus(CorpusError::Fetch(_) | CorpusError::Verify(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(sets: &[&str]) -> Vec<String> {
        let sets: Vec<String> = sets.iter().map(|s| (*s).to_owned()).collect();
        parse_sets(&sets).err().unwrap_or_default().into_iter().map(|b| b.diagnostic.message).collect()
    }

    #[test]
    fn sets_use_the_language_and_the_schema() {
        let changes = parse_sets(&[
            "steps=20".into(),
            "schedule=cosine(warmup = 0.1)".into(),
            "tokenizer=bpe(vocab = 512)".into(),
            "schedule.min_lr=0.05".into(),
        ])
        .unwrap();
        let c = apply(&RunConfig::defaults(), &changes).unwrap();
        assert_eq!(c.train.budget, crate::spec::Budget::Steps(20));
        assert_eq!(c.data.tokenizer, crate::spec::Tokenizer::Bpe { vocab: 512 });
        assert_eq!(
            c.train.schedule,
            crate::spec::Schedule::Cosine { warmup: 0.1, min_lr: 0.05, cycles: 1, warmup_start: 0.0, over: None }
        );
        let errs = parse_sets(&["matrx_lr=0.1".into(), "d_model=abc".into(), "steps=-3".into()]).err().unwrap();
        let text: String = errs.iter().map(|b| b.diagnostic.render(&b.text, "--set", false)).collect();
        assert!(text.contains("did you mean `matrix_lr`"), "{text}");
        assert!(text.contains("steps"), "{text}");
        assert_eq!(errs.len(), 3, "every problem at once: {text}");
    }

    #[test]
    fn two_budgets_are_an_error_and_one_budget_twice_is_not() {
        assert_eq!(messages(&["steps=20", "tokens=5000"]), ["`tokens` and `steps` are both set: a run has one budget"]);
        assert_eq!(messages(&["time=1h", "steps=20"]), ["`steps` and `time` are both set: a run has one budget"]);
        assert!(messages(&["steps=20", "steps=30"]).is_empty());
        assert!(messages(&["steps=20", "time=none"]).is_empty());
        // `data.tokens` is the data set's size, not a budget.
        assert!(messages(&["steps=20", "data.tokens=50_000"]).is_empty());
        let changes = parse_sets(&["steps=20".into(), "steps=30".into()]).unwrap();
        assert_eq!(changes.len(), 1);
    }

    #[test]
    fn a_failed_download_is_the_environments_and_a_missing_corpus_the_inputs() {
        assert!(is_environment(&TrainError::Corpus(CorpusError::Fetch("no route to host".into()))));
        assert!(is_environment(&TrainError::CudaUnavailable("cuda".into())));
        assert!(!is_environment(&TrainError::Corpus(CorpusError::Missing("x.txt".into()))));
        assert!(!is_environment(&TrainError::CorpusTooSmall("3 tokens".into())));
    }

    #[test]
    fn block_options_are_refused() {
        assert_eq!(messages(&["repeats=3"]), ["`repeats` is an option of a phase, not of a run"]);
        assert_eq!(messages(&["seeds=[1, 2]"]).len(), 1);
        assert!(messages(&["timeout=2h"]).is_empty(), "a run's timeout is a config key");
    }
}
