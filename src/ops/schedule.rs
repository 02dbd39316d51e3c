//! Schedule expressions outside a study (`lrx schedule`): parsed with the language's own syntax
//! and checked against the schema, and tabulated at evenly spaced steps.

use std::fmt::Write as _;

use crate::spec::schema::{self, Lookup};
use crate::spec::{RunConfig, Schedule, Value, Values};

/// The multiplier at ~20 evenly spaced steps of `steps`, the first and last included.
pub fn table(s: &Schedule, steps: u64) -> String {
    let last = steps.saturating_sub(1);
    let n = steps.min(20);
    let mut at: Vec<u64> =
        (0..n).map(|i| if n <= 1 { 0 } else { (i as f64 * last as f64 / (n - 1) as f64).round() as u64 }).collect();
    at.dedup();
    let mut out = format!("{:>8}  {:>8}  {:>10}\n", "step", "progress", "multiplier");
    for step in at {
        let _ = writeln!(
            out,
            "{step:>8}  {:>8.3}  {:>10.4}",
            crate::spec::schedule::progress(step, steps),
            s.at_step(step, steps)
        );
    }
    out
}

/// Parses a schedule as written in a study (the language's own expression syntax), checked
/// against the schema (argument names, ranges, defaults) and the cross-key rules of a run
/// config (`warmup + warmdown ≤ 1`). The schedule and its canonical text
/// (`cosine(warmup=0.05,min_lr=0.0,cycles=1)`).
pub fn parse(text: &str) -> Result<(Schedule, String), String> {
    let value = crate::lang::eval_standalone(text).map_err(|d| {
        format!("{} in `{}`; expected a schedule like `cosine(warmup = 0.05, min_lr = 0.1)`", d.message, text.trim())
    })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_schedule(text: &str) -> Result<Schedule, String> {
        parse(text).map(|(s, _)| s)
    }

    #[test]
    fn calls_bare_names_and_positionals_parse() {
        assert_eq!(parse_schedule("constant").unwrap(), Schedule::Constant);
        assert_eq!(
            parse_schedule(" cosine(warmup = 0.05, min_lr = 0.1, cycles = 2) ").unwrap(),
            Schedule::Cosine { warmup: 0.05, min_lr: 0.1, cycles: 2, warmup_start: 0.0, over: None }
        );
        assert_eq!(
            parse_schedule("cosine(0.1)").unwrap(),
            Schedule::Cosine { warmup: 0.1, min_lr: 0.0, cycles: 1, warmup_start: 0.0, over: None }
        );
        assert_eq!(
            parse_schedule("cosine()").unwrap(),
            Schedule::Cosine { warmup: 0.0, min_lr: 0.0, cycles: 1, warmup_start: 0.0, over: None }
        );
        assert_eq!(
            parse_schedule("step(every = 0.25, gamma = 1e-1)").unwrap(),
            Schedule::Step { every: 0.25, gamma: 0.1, at: Vec::new() }
        );
        let (_, text) = parse("linear(final = 0)").unwrap();
        assert_eq!(text, "linear(warmup=0.0,final=0.0)");
    }

    #[test]
    fn mistakes_read_clearly() {
        assert_eq!(
            parse_schedule("cosine(min_lt = 0.1)").unwrap_err(),
            "`cosine` has no argument `min_lt`; did you mean `min_lr`?"
        );
        assert_eq!(
            parse_schedule("cosin").unwrap_err(),
            "unknown value `cosin`, expected one of `constant`, `warmup_warmdown`, `cosine`, `step`, `exponential`, `linear`; did you mean `cosine`?"
        );
        assert_eq!(parse_schedule("cosine(warmup = 1.5)").unwrap_err(), "`cosine.warmup` must be in [0, 1)");
        assert_eq!(parse_schedule("cosine(warmup = x)").unwrap_err(), "expected a number, found a name `x`");
        assert!(parse_schedule("cosine(warmup = 0.1").unwrap_err().contains("expected a schedule like"));
        assert!(parse_schedule("").unwrap_err().contains("expected a schedule like"));
        assert_eq!(
            parse_schedule("warmup_warmdown(warmup = 0.6, warmdown = 0.5)").unwrap_err(),
            "warmup + warmdown (1.1) must be at most 1"
        );
    }

    #[test]
    fn the_table_has_twenty_rows_from_first_to_last_step() {
        let t = table(&Schedule::Linear { warmup: 0.0, final_lr: 0.0, warmup_start: 0.0 }, 100);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 21);
        assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["0", "0.000", "1.0000"]);
        assert_eq!(lines[20].split_whitespace().collect::<Vec<_>>(), ["99", "0.990", "0.0100"]);
        assert_eq!(table(&Schedule::Constant, 3).lines().count(), 4);
        assert_eq!(table(&Schedule::Constant, 1).lines().count(), 2);
    }
}
