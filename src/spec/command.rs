//! The command of `trainer = command("...")` as a template of program arguments: split once
//! with shell-word rules, each `{key}` placeholder filling inside one argument, and the names
//! a run offers its placeholders.
//!
//! No shell ever reads the filled command: a value with spaces, quotes, `;` or `$(...)` reaches
//! the script as exactly one argument, as written. The checker and the command trainer share
//! this module, so `lrx check` accepts exactly the placeholders a run can fill.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::OnceLock;

use super::config::{RunConfig, Values, config_keys};
use super::schema::{self, Ty};
use super::value::{Call, Value};

/// One piece of an argument: text as written, or a placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    /// `{name}`; `span` is its byte range in the command, braces included.
    Slot {
        name: String,
        span: Range<usize>,
    },
}

/// A command split into arguments, placeholders not yet filled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// The arguments, program first; each is a sequence of pieces.
    pub words: Vec<Vec<Piece>>,
}

/// Why a command cannot be split into arguments.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the command is empty")]
    Empty,
    #[error("the command has an unclosed quote")]
    UnclosedQuote,
}

/// Marks a placeholder while the command is split: characters of Unicode's private use area,
/// which shell-word rules treat as plain text, around the placeholder's index.
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

impl Template {
    /// Splits a command with shell-word rules (quotes and backslashes group and escape; no
    /// expansion of any kind). `{name}` (a letter or `_`, then letters, digits, `_` and `.`)
    /// is a placeholder; `{{` and `}}` are literal braces; any other brace is text.
    pub fn parse(cmd: &str) -> Result<Template, TemplateError> {
        let mut marked = String::with_capacity(cmd.len());
        let mut slots: Vec<(String, Range<usize>)> = Vec::new();
        let mut i = 0;
        while i < cmd.len() {
            let rest = &cmd[i..];
            if rest.starts_with("{{") || rest.starts_with("}}") {
                marked.push_str(&rest[..1]);
                i += 2;
                continue;
            }
            if let Some(len) = slot_len(rest) {
                marked.push(OPEN);
                marked.push_str(&slots.len().to_string());
                marked.push(CLOSE);
                slots.push((rest[1..len - 1].to_owned(), i..i + len));
                i += len;
                continue;
            }
            let c = rest.chars().next().unwrap_or_default();
            marked.push(c);
            i += c.len_utf8();
        }
        let words = shell_words::split(&marked).map_err(|_| TemplateError::UnclosedQuote)?;
        if words.is_empty() {
            return Err(TemplateError::Empty);
        }
        let words = words.iter().map(|w| pieces(w, &slots)).collect();
        Ok(Template { words })
    }

    /// Every placeholder, in order.
    pub fn slots(&self) -> impl Iterator<Item = (&str, Range<usize>)> {
        self.words.iter().flatten().filter_map(|p| match p {
            Piece::Slot { name, span } => Some((name.as_str(), span.clone())),
            Piece::Text(_) => None,
        })
    }

    /// The program, when it is written without placeholders.
    pub fn program(&self) -> Option<String> {
        let first = self.words.first()?;
        let mut out = String::new();
        for p in first {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Slot { .. } => return None,
            }
        }
        Some(out)
    }

    /// The arguments with every placeholder filled by `value`; the first placeholder it does
    /// not know is the error.
    pub fn fill(&self, value: impl Fn(&str) -> Option<String>) -> Result<Vec<String>, String> {
        let mut argv = Vec::with_capacity(self.words.len());
        for word in &self.words {
            let mut arg = String::new();
            for p in word {
                match p {
                    Piece::Text(t) => arg.push_str(t),
                    Piece::Slot { name, .. } => arg.push_str(&value(name).ok_or_else(|| name.clone())?),
                }
            }
            argv.push(arg);
        }
        Ok(argv)
    }
}

/// The length of the placeholder `rest` starts with, braces included.
fn slot_len(rest: &str) -> Option<usize> {
    let body = rest.strip_prefix('{')?;
    let end = body.find('}')?;
    let name = &body[..end];
    let mut chars = name.chars();
    let first = chars.next()?;
    let ok = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    ok.then_some(end + 2)
}

/// Splits a marked word back into text and placeholders.
fn pieces(word: &str, slots: &[(String, Range<usize>)]) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut rest = word;
    while let Some(open) = rest.find(OPEN) {
        let after = &rest[open + OPEN.len_utf8()..];
        let Some(close) = after.find(CLOSE) else { break };
        let Some((name, span)) = after[..close].parse::<usize>().ok().and_then(|i| slots.get(i)) else { break };
        if open > 0 {
            out.push(Piece::Text(rest[..open].to_owned()));
        }
        out.push(Piece::Slot { name: name.clone(), span: span.clone() });
        rest = &after[close + CLOSE.len_utf8()..];
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(Piece::Text(rest.to_owned()));
    }
    out
}

/// A run's values by placeholder name: `section.key` and, where unambiguous, `key`; a
/// constructor's name as the key's value and its arguments as `key.arg`; `steps` when the
/// budget fixes it. [`TRAINER_SLOTS`] are the trainer's to add.
pub fn run_values(config: &RunConfig) -> BTreeMap<String, String> {
    let json = serde_json::to_value(config).unwrap_or_default();
    let mut qualified = BTreeMap::new();
    for (section, obj) in json.as_object().into_iter().flatten() {
        for (k, v) in obj.as_object().into_iter().flatten() {
            flatten(&format!("{section}.{k}"), v, &mut qualified);
        }
    }
    let mut out = qualified.clone();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for k in qualified.keys() {
        *counts.entry(short(k)).or_default() += 1;
    }
    for (k, v) in &qualified {
        if counts[short(k)] == 1 {
            out.insert(short(k).to_owned(), v.clone());
        }
    }
    if let Some(steps) = config.total_steps() {
        out.insert("steps".into(), steps.to_string());
    }
    // Left out of the serde form at its default (to keep older keys), but always a value.
    out.insert("precision".into(), config.train.precision.name().to_owned());
    out.insert("train.precision".into(), config.train.precision.name().to_owned());
    out
}

fn short(qualified: &str) -> &str {
    qualified.split_once('.').map_or(qualified, |(_, r)| r)
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, inner) in map {
                // `{"cosine": {"warmup": ..}}`: the variant's name is the value of the key, its
                // fields are its arguments.
                flatten(&format!("{prefix}.{k}"), inner, out);
                if map.len() == 1 {
                    out.insert(prefix.to_owned(), k.clone());
                    if let serde_json::Value::Object(args) = inner {
                        for (a, x) in args {
                            flatten(&format!("{prefix}.{a}"), x, out);
                        }
                    }
                }
            }
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.to_owned(), s.clone());
        }
        serde_json::Value::Number(n) => {
            let text = if n.is_i64() || n.is_u64() {
                n.to_string()
            } else {
                n.as_f64().map_or_else(|| n.to_string(), super::value::fmt_float)
            };
            out.insert(prefix.to_owned(), text);
        }
        serde_json::Value::Array(items) => {
            out.insert(
                prefix.to_owned(),
                items.iter().map(std::string::ToString::to_string).collect::<Vec<_>>().join(","),
            );
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

/// The placeholders the command trainer fills itself: `{out}` (the run's output folder),
/// `{config}` (its resolved config as JSON), `{stop_at}` (the step to stop at and report: a
/// halving rung, else the budget) and `{checkpoint}` (a folder kept for the run across rungs
/// and retries).
pub const TRAINER_SLOTS: [&str; 4] = ["out", "config", "stop_at", "checkpoint"];

/// Whether a command is told where to stop (`{stop_at}` in its template): only then can a
/// halving rung's run stop there and continue later from its checkpoint.
pub fn tells_stop(cmd: &str) -> bool {
    Template::parse(cmd).is_ok_and(|t| t.slots().any(|(name, _)| name == "stop_at"))
}

/// Every name a placeholder may use in some run: the names of [`run_values`] for the default
/// config and for configs with each constructor and budget of the schema, and
/// [`TRAINER_SLOTS`]. A name outside it can never be filled; one inside it may still be missing from a
/// particular run (`{schedule.min_lr}` under a schedule without `min_lr`).
pub fn placeholder_names() -> &'static BTreeSet<String> {
    static NAMES: OnceLock<BTreeSet<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: BTreeSet<String> = TRAINER_SLOTS.into_iter().map(str::to_owned).collect();
        let mut variants = vec![Values::new()];
        for key in config_keys() {
            let samples: Vec<Value> = match key.info().ty {
                Ty::Ctor(ctors) => ctors
                    .iter()
                    .map(|c| {
                        // Required arguments take a sample of their type; the rest their defaults.
                        let args = c
                            .params
                            .iter()
                            .filter(|p| p.default.is_none())
                            .map(|p| (p.name.to_owned(), sample(&p.ty)))
                            .collect();
                        Value::Call(Call { name: c.name.to_owned(), args })
                    })
                    .collect(),
                Ty::OptInt { .. } | Ty::OptFloat(_) | Ty::OptDuration => vec![sample(&key.info().ty)],
                _ => Vec::new(),
            };
            for v in samples {
                if let Ok(checked) = key.info().ty.check(key.info().noun, &v) {
                    variants.push(std::iter::once((key, checked)).collect());
                }
            }
        }
        for values in variants {
            if let Ok(config) = RunConfig::from_values(&values) {
                names.extend(run_values(&config).into_keys());
            }
        }
        names
    })
}

/// A valid value of a type, for [`placeholder_names`].
fn sample(ty: &Ty) -> Value {
    match ty {
        Ty::Int { min, .. } | Ty::OptInt { min } => Value::Int((*min).max(1)),
        Ty::IntList { min } => Value::List(vec![Value::Int((*min).max(1))]),
        Ty::Str => Value::Str("x".into()),
        Ty::OptDuration => Value::Duration(60.0),
        _ => Value::Float(0.5),
    }
}

/// The placeholder names closest to `name`, for a "did you mean".
pub fn suggest(name: &str) -> Option<String> {
    schema::suggest(name, placeholder_names().iter().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(cmd: &str, vals: &[(&str, &str)]) -> Vec<String> {
        let t = Template::parse(cmd).unwrap();
        t.fill(|n| vals.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned())).unwrap()
    }

    #[test]
    fn a_value_is_one_argument_whatever_it_holds() {
        for hostile in [
            "d;touch x;#/a.txt",
            "$(touch y)",
            "`touch z`",
            "my corpus.txt",
            "it's \"quoted\"",
            "a\\b",
            "",
            "{out}",
            "\u{E000}0\u{E001}",
        ] {
            assert_eq!(
                argv("python3 train.py --data {corpus} --out {out}", &[("corpus", hostile), ("out", "/o")]),
                ["python3", "train.py", "--data", hostile, "--out", "/o"]
            );
        }
        // Inside quotes, beside text: still one argument.
        assert_eq!(
            argv("sh -c 'echo {v}' --x={v}.txt \"{v} b\"", &[("v", "a b")]),
            ["sh", "-c", "echo a b", "--x=a b.txt", "a b b"]
        );
    }

    #[test]
    fn shell_words_group_and_braces_escape() {
        assert_eq!(
            argv(r#"a "b c" d\ e 'f "g"' {{x}} {not a slot} {}"#, &[]),
            ["a", "b c", "d e", "f \"g\"", "{x}", "{not", "a", "slot}", "{}"]
        );
        assert_eq!(Template::parse("a 'b"), Err(TemplateError::UnclosedQuote));
        assert_eq!(Template::parse("  "), Err(TemplateError::Empty));
        let t = Template::parse("train.py --lr {matrx_lr}").unwrap();
        assert_eq!(t.slots().collect::<Vec<_>>(), [("matrx_lr", 14..24)]);
        assert_eq!(t.program().as_deref(), Some("train.py"));
        assert_eq!(Template::parse("{python} x").unwrap().program(), None);
        assert_eq!(t.fill(|_| None), Err("matrx_lr".to_owned()));
    }

    #[test]
    fn placeholders_take_the_runs_values() {
        let mut c = RunConfig::defaults();
        c.train.matrix_lr = 0.05;
        let v = run_values(&c);
        let t = Template::parse(
            "train.py --lr {matrix_lr} --warmup {schedule.warmup} --tokens {data.tokens} --seed {seed} --steps {steps}",
        )
        .unwrap();
        let line = t.fill(|n| v.get(n).cloned()).unwrap();
        assert_eq!(line.join(" "), "train.py --lr 0.05 --warmup 0.0 --tokens 4000000 --seed 1 --steps 300");
    }

    #[test]
    fn every_name_a_run_offers_is_a_placeholder_name() {
        let names = placeholder_names();
        for n in [
            "matrix_lr",
            "out",
            "config",
            "steps",
            "schedule.warmup",
            "schedule.min_lr",
            "data.tokens",
            "seed",
            "tokenizer.vocab",
        ] {
            assert!(names.contains(n), "{n}");
        }
        assert!(!names.contains("matrx_lr"));
        assert_eq!(suggest("matrx_lr").as_deref(), Some("matrix_lr"));
    }
}
