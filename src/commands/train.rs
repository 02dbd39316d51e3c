//! `lrx train`: one training run of the defaults with `--set` overrides (a study's root config
//! once the language module lands), with a progress bar on stderr and the result on stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::Exit;
use crate::cli::{GlobalArgs, TrainArgs};
use crate::spec::schema::{self, Lookup, Role};
use crate::spec::{CancelFlag, Call, Progress, RunConfig, RunContext, RunResult, Status, Value, Values};
use crate::train::{BurnTrainer, Device, TrainError};

pub(crate) fn run(args: &TrainArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    if args.file.is_some() || args.phase.is_some() || args.variant.is_some() {
        anyhow::bail!("training a study's config (`lrx train FILE [--phase P --variant V]`) needs the language module, which this build does not have yet; use `lrx train --set KEY=VALUE ...`");
    }
    let device = Device::parse(&args.device)?;
    let config = match config_from_sets(&args.set) {
        Ok(c) => c,
        Err(messages) => {
            for m in messages {
                eprintln!("error: {m}");
            }
            return Ok(Exit::Failure);
        }
    };
    let trainer = BurnTrainer::new(device, &g.cache);
    let base = std::env::current_dir().context("cannot read the current folder")?;
    let quiet = g.quiet;
    let data = match trainer.load_data(&config, &base, &mut |m| {
        if !quiet {
            eprintln!("{m}");
        }
    }) {
        Ok(d) => d,
        Err(e @ (TrainError::CudaUnavailable(_) | TrainError::BadDevice(_))) => return Err(e.into()),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Exit::Failure);
        }
    };

    let cancel = CancelFlag::new();
    {
        let cancel = cancel.clone();
        // Only the first handler of a process can be installed; a second `run` keeps the first.
        let _ = ctrlc::set_handler(move || cancel.cancel());
    }
    let mut reporter = Reporter::new(quiet);
    let mut on_progress = |p: Progress| reporter.on(p);
    let mut ctx = RunContext { cancel: &cancel, progress: &mut on_progress, workdir: None, base_dir: base, stop_at: None };
    let result = trainer.train_data(&config, &data, &mut ctx);
    drop(ctx);
    reporter.finish();
    let Ok(result) = result else {
        eprintln!("interrupted");
        return Ok(Exit::Interrupted);
    };

    let json = result_json(&result);
    if let Some(out) = &g.out {
        write_outputs(out, &json, &result)?;
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{}", serde_json::to_string(&json)?)?;
    } else {
        write!(stdout, "{}", table(&result))?;
    }
    if let Some(e) = &result.error {
        eprintln!("error: {e}");
    }
    Ok(if result.status == Status::Failed { Exit::Failure } else { Exit::Success })
}

/// Builds the run config from the defaults and `KEY=VALUE` overrides; all problems at once.
fn config_from_sets(sets: &[String]) -> Result<RunConfig, Vec<String>> {
    let mut values = Values::new();
    let mut errors = Vec::new();
    for set in sets {
        let Some((name, text)) = set.split_once('=') else {
            errors.push(format!("`--set {set}`: expected `KEY=VALUE`"));
            continue;
        };
        let name = name.trim();
        let key = match schema::lookup(None, name) {
            Lookup::Found(k) => k,
            Lookup::WrongSection { key } => key,
            Lookup::Unknown { suggestion } => {
                errors.push(match suggestion {
                    Some(s) => format!("unknown key `{name}`; did you mean `{s}`?"),
                    None => format!("unknown key `{name}`"),
                });
                continue;
            }
        };
        match key.info().role {
            Role::Config | Role::Budget => {}
            Role::Variable => {
                errors.push(format!("`{name}` is a free variable for derived keys; set the keys it feeds, like `matrix_lr`"));
                continue;
            }
            Role::Option => {
                errors.push(format!("`{name}` is a study option; it means nothing for a single run"));
                continue;
            }
        }
        match parse_value(text.trim()) {
            Ok(v) => {
                // A budget replaces the others.
                if key.info().role == Role::Budget {
                    values.retain(|k, _| k.info().role != Role::Budget);
                }
                values.insert(key, v);
            }
            Err(e) => errors.push(format!("`--set {set}`: {e}")),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    RunConfig::from_values(&values).map_err(|errs| errs.into_iter().map(|e| e.message).collect())
}

/// Parses a `--set` value: numbers (`3e-4`, `1_000`), booleans, bare words, quoted strings,
/// durations (`90s`, `5m`, `2h`), tuples `(0.9, 0.95)`, lists `[1, 2]`, and constructor calls
/// `cosine(warmup = 0.1, min_lr = 0.05)`. (To be replaced by the language's own parser.)
pub(crate) fn parse_value(text: &str) -> Result<Value, String> {
    let mut p = ValueParser { s: text.as_bytes(), i: 0 };
    let v = p.value()?;
    p.ws();
    if p.i < p.s.len() {
        return Err(format!("unexpected `{}` in `{text}`", &text[p.i..]));
    }
    Ok(v)
}

struct ValueParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl ValueParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> String {
        let start = self.i;
        while self.i < self.s.len() && f(self.s[self.i]) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            None => Err("expected a value".into()),
            Some(b'(') => {
                self.i += 1;
                Ok(Value::Tuple(self.items(b')')?))
            }
            Some(b'[') => {
                self.i += 1;
                Ok(Value::List(self.items(b']')?))
            }
            Some(q @ (b'"' | b'\'')) => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    match self.s.get(self.i).copied() {
                        None => return Err("unterminated string".into()),
                        Some(b'\\') if self.i + 1 < self.s.len() => {
                            out.push(self.s[self.i + 1]);
                            self.i += 2;
                        }
                        Some(c) if c == q => {
                            self.i += 1;
                            return Ok(Value::Str(String::from_utf8_lossy(&out).into_owned()));
                        }
                        Some(c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.' => self.number(),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let word = self.take_while(|c| c.is_ascii_alphanumeric() || c == b'_');
                if self.eat(b'(') {
                    return Ok(Value::Call(Call { name: word, args: self.args()? }));
                }
                Ok(match word.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => Value::Word(word),
                })
            }
            Some(c) => Err(format!("unexpected `{}`", char::from(c))),
        }
    }

    fn items(&mut self, close: u8) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Ok(items);
        }
        loop {
            items.push(self.value()?);
            if self.eat(close) {
                return Ok(items);
            }
            if !self.eat(b',') {
                return Err(format!("expected `,` or `{}`", char::from(close)));
            }
        }
    }

    fn args(&mut self) -> Result<Vec<(String, Value)>, String> {
        let mut args = Vec::new();
        if self.eat(b')') {
            return Ok(args);
        }
        loop {
            let save = self.i;
            self.ws();
            let name = self.take_while(|c| c.is_ascii_alphanumeric() || c == b'_');
            let named = !name.is_empty() && !name.as_bytes()[0].is_ascii_digit() && self.eat(b'=');
            if !named {
                self.i = save;
            }
            let value = self.value()?;
            args.push((if named { name } else { String::new() }, value));
            if self.eat(b')') {
                return Ok(args);
            }
            if !self.eat(b',') {
                return Err("expected `,` or `)` in the arguments".into());
            }
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let text = self.take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'+'));
        let clean: String = text.chars().filter(|&c| c != '_').collect();
        for (unit, secs) in [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0), ("d", 86400.0)] {
            if let Some(n) = clean.strip_suffix(unit)
                && let Ok(x) = n.parse::<f64>()
                && !n.ends_with(['e', 'E'])
            {
                return Ok(Value::Duration(x * secs));
            }
        }
        if let Ok(i) = clean.parse::<i64>() {
            return Ok(Value::Int(i));
        }
        match clean.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Value::Float(x)),
            _ => Err(format!("`{text}` is not a number")),
        }
    }
}

/// The `train --json` document of `cli.md`.
fn result_json(r: &RunResult) -> serde_json::Value {
    let mut doc = serde_json::json!({
        // The run's cache key comes from the cache module once it is merged.
        "key": serde_json::Value::Null,
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
    std::fs::write(&path, serde_json::to_string_pretty(json)? + "\n").with_context(|| format!("cannot write `{}`", path.display()))?;
    let columns: Vec<&String> = r.history.iter().flat_map(|row| row.metrics.keys()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let path = out.join("history.csv");
    let mut w = csv::Writer::from_path(&path).with_context(|| format!("cannot write `{}`", path.display()))?;
    w.write_record(std::iter::once("step").chain(columns.iter().map(|c| c.as_str())))?;
    for row in &r.history {
        let cells = columns.iter().map(|c| row.metrics.get(*c).map(ToString::to_string).unwrap_or_default());
        w.write_record(std::iter::once(row.step.to_string()).chain(cells))?;
    }
    w.flush()?;
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
                    eprintln!("training {} parameters ({} active per token)", pc.total, pc.active);
                }
                if std::io::stderr().is_terminal() {
                    let bar = total_steps.map_or_else(ProgressBar::new_spinner, ProgressBar::new);
                    let style = ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} {msg} [{elapsed_precise}]").unwrap_or_else(|_| ProgressStyle::default_bar());
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
                            let _ = if k == "tokens_per_sec" { write!(line, "  {k} {v:.0}") } else { write!(line, "  {k} {v:.4}") };
                        }
                    }
                    eprintln!("{line}");
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
    fn parses_set_values() {
        assert_eq!(parse_value("1_000").unwrap(), Value::Int(1000));
        assert_eq!(parse_value("3e-4").unwrap(), Value::Float(3e-4));
        assert_eq!(parse_value("-0.5").unwrap(), Value::Float(-0.5));
        assert_eq!(parse_value("true").unwrap(), Value::Bool(true));
        assert_eq!(parse_value("adamw").unwrap(), Value::Word("adamw".into()));
        assert_eq!(parse_value("\"a b\"").unwrap(), Value::Str("a b".into()));
        assert_eq!(parse_value("5m").unwrap(), Value::Duration(300.0));
        assert_eq!(parse_value("1.5h").unwrap(), Value::Duration(5400.0));
        assert_eq!(parse_value("(0.9, 0.95)").unwrap(), Value::Tuple(vec![Value::Float(0.9), Value::Float(0.95)]));
        assert_eq!(parse_value("[1,2]").unwrap(), Value::List(vec![Value::Int(1), Value::Int(2)]));
        let call = parse_value("cosine(warmup = 0.1, min_lr=0.05)").unwrap();
        assert_eq!(call.to_string(), "cosine(warmup=0.1,min_lr=0.05)");
        assert_eq!(parse_value("bpe(512)").unwrap().to_string(), "bpe(=512)");
        assert!(parse_value("(1,").is_err());
        assert!(parse_value("1x").is_err());
    }

    #[test]
    fn sets_are_checked_against_the_schema() {
        let c = config_from_sets(&["steps=20".into(), "schedule=cosine(warmup=0.1)".into(), "tokenizer=bpe(vocab=512)".into()]).unwrap();
        assert_eq!(c.train.budget, crate::spec::Budget::Steps(20));
        assert_eq!(c.data.tokenizer, crate::spec::Tokenizer::Bpe { vocab: 512 });
        let errs = config_from_sets(&["matrx_lr=0.1".into(), "lr=1".into(), "d_model=abc".into()]).unwrap_err();
        assert!(errs[0].contains("did you mean `matrix_lr`"), "{errs:?}");
        assert!(errs[1].contains("free variable"), "{errs:?}");
        assert_eq!(errs.len(), 2, "the last error waits for the first ones: {errs:?}");
        let c = config_from_sets(&["time=30s".into()]).unwrap();
        assert_eq!(c.train.budget, crate::spec::Budget::Time(30.0));
    }
}
