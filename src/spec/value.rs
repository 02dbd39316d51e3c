//! Values of configuration keys, shared by the language, the planner and the trainer.
//!
//! A `Value` is what an expression in a `.lrx` file evaluates to and what a resolved run config
//! is made of. Its `Display` is the compact canonical form used in variant names
//! (`matrix_lr=0.05`, `adam_betas=(0.9,0.95)`, `schedule=cosine(warmup=0.1,min_lr=0.05)`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A configuration value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A bare word naming an enumeration member (`muon_adamw`, `bytes`, `none`).
    Word(String),
    /// A duration in seconds (`90s`, `5m`, `2h`).
    Duration(f64),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// A constructor call with named arguments (`cosine(warmup = 0.05, min_lr = 0.1)`).
    Call(Call),
}

/// A constructor call: a name and its named arguments, in canonical (signature) order once
/// checked against the schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub name: String,
    pub args: Vec<(String, Value)>,
}

impl Call {
    pub fn arg(&self, name: &str) -> Option<&Value> {
        self.args.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn arg_mut(&mut self, name: &str) -> Option<&mut Value> {
        self.args.iter_mut().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

impl Value {
    /// The value as a float, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    /// A short noun for error messages (`expected a number, found a string`).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Word(_) => "a name",
            Value::Duration(_) => "a duration",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Call(_) => "a constructor call",
        }
    }

    /// True when both are numbers with the same numeric value, or structurally equal otherwise.
    /// `1` and `1.0` are the same learning rate.
    pub fn same(&self, other: &Value) -> bool {
        match (self.as_f64(), other.as_f64()) {
            // Exact on purpose: the same bits, or `0.0` and `-0.0`.
            #[allow(clippy::float_cmp)]
            (Some(a), Some(b)) => a.to_bits() == b.to_bits() || a == b,
            _ => self == other,
        }
    }
}

/// Shortest round-trip text of a float: `0.05`, `1.0`, `1e-10`.
pub fn fmt_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".to_owned() } else { "-inf".to_owned() };
    }
    // `Debug` prints the shortest string that parses back to the same bits, switching to
    // exponent notation for very small and very large magnitudes.
    format!("{x:?}")
}

/// A duration as people read it: `0.8 s`, `41.2 s`, `3 m 12 s`, `2 h 05 m`.
pub fn human_duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "—".to_owned();
    }
    if secs < 60.0 {
        return format!("{secs:.1} s");
    }
    let s = secs.round() as u64;
    if s < 3600 { format!("{} m {:02} s", s / 60, s % 60) } else { format!("{} h {:02} m", s / 3600, (s % 3600) / 60) }
}

/// Canonical text of a duration: the largest unit that divides it exactly.
pub fn fmt_duration(secs: f64) -> String {
    if secs > 0.0 && secs.fract() == 0.0 {
        let s = secs as u64;
        if s.is_multiple_of(3600) {
            return format!("{}h", s / 3600);
        }
        if s.is_multiple_of(60) {
            return format!("{}m", s / 60);
        }
        return format!("{s}s");
    }
    format!("{}s", fmt_float(secs))
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => f.write_str(&fmt_float(*x)),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Word(w) => f.write_str(w),
            Value::Duration(s) => f.write_str(&fmt_duration(*s)),
            Value::Tuple(items) => {
                f.write_str("(")?;
                write_joined(f, items)?;
                f.write_str(")")
            }
            Value::List(items) => {
                f.write_str("[")?;
                write_joined(f, items)?;
                f.write_str("]")
            }
            Value::Call(call) => write!(f, "{call}"),
        }
    }
}

impl fmt::Display for Call {
    /// `cosine(warmup=0.1,min_lr=0.05,cycles=1)`; a call without arguments is its bare name
    /// (`constant`), as it is written. A positional argument (not yet bound to its name by
    /// the schema, as in an error about it) prints bare: `cosine(0.1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if self.args.is_empty() {
            return Ok(());
        }
        f.write_str("(")?;
        for (i, (name, value)) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if name.is_empty() {
                write!(f, "{value}")?;
            } else {
                write!(f, "{name}={value}")?;
            }
        }
        f.write_str(")")
    }
}

fn write_joined(f: &mut fmt::Formatter<'_>, items: &[Value]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_shortest_round_trip() {
        assert_eq!(fmt_float(0.05), "0.05");
        assert_eq!(fmt_float(1.0), "1.0");
        assert_eq!(fmt_float(1e-10), "1e-10");
        assert_eq!(fmt_float(0.1 + 0.2), "0.30000000000000004");
        for x in [0.065, 3.4445, 1e-6, 123_456.789, 2.0f64.powi(-30)] {
            assert_eq!(fmt_float(x).parse::<f64>().unwrap().to_bits(), x.to_bits());
        }
    }

    #[test]
    fn compact_display_matches_variant_names() {
        let betas = Value::Tuple(vec![Value::Float(0.9), Value::Float(0.95)]);
        assert_eq!(betas.to_string(), "(0.9,0.95)");
        let call = Value::Call(Call {
            name: "cosine".into(),
            args: vec![("warmup".into(), Value::Float(0.1)), ("min_lr".into(), Value::Float(0.05))],
        });
        assert_eq!(call.to_string(), "cosine(warmup=0.1,min_lr=0.05)");
        let positional = Call { name: "bpe".into(), args: vec![(String::new(), Value::Int(4096))] };
        assert_eq!(positional.to_string(), "bpe(4096)");
        assert_eq!(Value::Duration(300.0).to_string(), "5m");
        assert_eq!(Value::Duration(90.0).to_string(), "90s");
        assert_eq!(Value::Duration(7200.0).to_string(), "2h");
    }
}
