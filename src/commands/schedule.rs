//! `lrx schedule EXPR --steps N [--svg FILE]`: prints a schedule's multiplier at ~20 evenly
//! spaced steps (stdout, data), or draws it to an SVG file.

use std::fmt::Write as _;

use anyhow::Context as _;

use crate::cli::{GlobalArgs, ScheduleArgs};
use crate::spec::schema::{self, Lookup};
use crate::spec::{Call, RunConfig, Schedule, Value, Values};

use super::Exit;

pub(crate) fn run(args: &ScheduleArgs, g: &GlobalArgs) -> anyhow::Result<Exit> {
    if args.steps == 0 {
        eprintln!("error: `--steps` must be at least 1");
        return Ok(Exit::Failure);
    }
    let (schedule, canonical) = match parse_schedule_text(&args.expr) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("error: {msg}");
            return Ok(Exit::Failure);
        }
    };
    match &args.svg {
        Some(path) => {
            let svg = crate::report::figures::schedule_svg(&canonical, &schedule, args.steps)?;
            std::fs::write(path, svg).with_context(|| format!("cannot write `{}`", path.display()))?;
            if !g.quiet {
                eprintln!("wrote {}", path.display());
            }
        }
        None => print!("{}", table(&schedule, args.steps)),
    }
    Ok(Exit::Success)
}

/// The multiplier at ~20 evenly spaced steps of `steps`, the first and last included.
fn table(s: &Schedule, steps: u64) -> String {
    let last = steps.saturating_sub(1);
    let n = steps.min(20);
    let mut at: Vec<u64> = (0..n).map(|i| if n <= 1 { 0 } else { (i as f64 * last as f64 / (n - 1) as f64).round() as u64 }).collect();
    at.dedup();
    let mut out = format!("{:>8}  {:>8}  {:>10}\n", "step", "progress", "multiplier");
    for step in at {
        let _ = writeln!(out, "{step:>8}  {:>8.3}  {:>10.4}", crate::spec::schedule::progress(step, steps), s.at_step(step, steps));
    }
    out
}

/// Parses a schedule as written in a study: `name(arg = number, ...)`, positional numbers, or
/// a bare `name`. Checked against the schema (argument names, ranges, defaults) and the
/// cross-key rules of a run config (`warmup + warmdown ≤ 1`).
// The language's expression parser replaces the text parsing when the two meet.
#[allow(dead_code)] // the command uses `parse_schedule_text`; kept as the one entry point to swap
pub(crate) fn parse_schedule(text: &str) -> Result<Schedule, String> {
    parse_schedule_text(text).map(|(s, _)| s)
}

/// The schedule and its canonical text (`cosine(warmup=0.05,min_lr=0.0,cycles=1)`).
fn parse_schedule_text(text: &str) -> Result<(Schedule, String), String> {
    let value = parse_call(text)?;
    let Lookup::Found(key) = schema::lookup(None, "schedule") else {
        return Err("internal: the schema has no `schedule` key".into());
    };
    let checked = key.info().ty.check(key.info().noun, &value)?;
    let mut values = Values::new();
    values.insert(key, checked.clone());
    if let Err(errors) = RunConfig::from_values(&values) {
        return Err(errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; "));
    }
    let Value::Call(call) = &checked else {
        return Err(format!("expected a schedule like `cosine(warmup = 0.05)`, found `{}`", text.trim()));
    };
    Ok((Schedule::from_call(call), checked.to_string()))
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `name`, or `name(a = 1, 2.5, b = 1e-3)`, into a word or a call with literal numbers.
fn parse_call(text: &str) -> Result<Value, String> {
    let t = text.trim();
    let example = "expected a schedule like `cosine(warmup = 0.05, min_lr = 0.1)`";
    let name_end = t.find(|c: char| !is_ident(c)).unwrap_or(t.len());
    let name = &t[..name_end];
    if !name.starts_with(is_ident_start) {
        return Err(format!("{example}, found `{t}`"));
    }
    let rest = t[name_end..].trim();
    if rest.is_empty() {
        return Ok(Value::Word(name.to_owned()));
    }
    let Some(inner) = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')) else {
        return Err(format!("{example}, found `{t}`"));
    };
    let mut args = Vec::new();
    for part in inner.split(',').map(str::trim) {
        if part.is_empty() {
            if inner.trim().is_empty() {
                break;
            }
            return Err(format!("empty argument in `{t}`"));
        }
        let (arg, num) = match part.split_once('=') {
            Some((a, n)) => {
                let a = a.trim();
                if !a.starts_with(is_ident_start) || !a.chars().all(is_ident) {
                    return Err(format!("`{a}` is not an argument name"));
                }
                (a.to_owned(), n.trim())
            }
            None => (String::new(), part),
        };
        args.push((arg, number(num)?));
    }
    Ok(Value::Call(Call { name: name.to_owned(), args }))
}

fn number(s: &str) -> Result<Value, String> {
    let clean = s.replace('_', "");
    if let Ok(i) = clean.parse::<i64>() {
        return Ok(Value::Int(i));
    }
    match clean.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Value::Float(x)),
        _ => Err(format!("expected a number, found `{s}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_bare_names_and_positionals_parse() {
        assert_eq!(parse_schedule("constant").unwrap(), Schedule::Constant);
        assert_eq!(parse_schedule(" cosine(warmup = 0.05, min_lr = 0.1, cycles = 2) ").unwrap(), Schedule::Cosine { warmup: 0.05, min_lr: 0.1, cycles: 2 });
        assert_eq!(parse_schedule("cosine(0.1)").unwrap(), Schedule::Cosine { warmup: 0.1, min_lr: 0.0, cycles: 1 });
        assert_eq!(parse_schedule("cosine()").unwrap(), Schedule::Cosine { warmup: 0.0, min_lr: 0.0, cycles: 1 });
        assert_eq!(parse_schedule("step(every = 0.25, gamma = 1e-1)").unwrap(), Schedule::Step { every: 0.25, gamma: 0.1 });
        let (_, text) = parse_schedule_text("linear(final = 0)").unwrap();
        assert_eq!(text, "linear(warmup=0.0,final=0.0)");
    }

    #[test]
    fn mistakes_read_clearly() {
        assert_eq!(parse_schedule("cosine(min_lt = 0.1)").unwrap_err(), "`cosine` has no argument `min_lt`; did you mean `min_lr`?");
        assert_eq!(parse_schedule("cosin").unwrap_err(), "unknown value `cosin`; did you mean `cosine`?");
        assert_eq!(parse_schedule("cosine(warmup = 1.5)").unwrap_err(), "`cosine.warmup` must be in [0, 1)");
        assert_eq!(parse_schedule("cosine(warmup = x)").unwrap_err(), "expected a number, found `x`");
        assert!(parse_schedule("cosine(warmup = 0.1").unwrap_err().starts_with("expected a schedule like"));
        assert!(parse_schedule("").unwrap_err().starts_with("expected a schedule like"));
        assert_eq!(parse_schedule("warmup_warmdown(warmup = 0.6, warmdown = 0.5)").unwrap_err(), "warmup + warmdown (1.1) must be at most 1");
    }

    #[test]
    fn the_table_has_twenty_rows_from_first_to_last_step() {
        let t = table(&Schedule::Linear { warmup: 0.0, final_lr: 0.0 }, 100);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 21);
        assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["0", "0.000", "1.0000"]);
        assert_eq!(lines[20].split_whitespace().collect::<Vec<_>>(), ["99", "0.990", "0.0100"]);
        assert_eq!(table(&Schedule::Constant, 3).lines().count(), 4);
        assert_eq!(table(&Schedule::Constant, 1).lines().count(), 2);
    }
}
