//! Expression evaluation: arithmetic, generated lists (`log`, `lin`), constructor calls, key
//! references and `base`, from a syntax tree to a [`Value`].
//!
//! What a name means is decided here, once, for the checker and the planner alike: `base`, a
//! key of the schema (`lr`, `data.tokens`, `schedule.warmup`), or a bare word (`muon_adamw`).

use std::fmt::Write as _;

use crate::spec::schema::{self, Key, Lookup, Ty};
use crate::spec::value::{Call, Value};

use super::ast::{BinOp, Expr, ExprKind, KeyPath, Number, Span};

/// The most values one generated list may hold.
pub const MAX_GENERATED: usize = 100_000;

/// An evaluation error, pointing at the sub-expression at fault.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    pub message: String,
    pub span: Span,
}

impl EvalError {
    pub fn new(message: impl Into<String>, span: Span) -> EvalError {
        EvalError { message: message.into(), span }
    }
}

/// What a key statement or reference names: a whole key, or an argument of a constructor-valued
/// key (`schedule.warmup`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    pub key: Key,
    /// Empty for the whole key; one argument name for `schedule.warmup`.
    pub arg: Option<String>,
}

impl Target {
    pub fn whole(key: Key) -> Target {
        Target { key, arg: None }
    }

    /// Canonical text: `matrix_lr`, `schedule.warmup`, `data.tokens`, `train.tokens`.
    pub fn path(&self) -> String {
        match &self.arg {
            None => self.key.qualified(),
            Some(a) => format!("{}.{a}", self.key.qualified()),
        }
    }

    /// Whether setting one may change the other (`schedule` and `schedule.warmup` overlap).
    pub fn overlaps(&self, other: &Target) -> bool {
        self.key == other.key && (self.arg.is_none() || other.arg.is_none() || self.arg == other.arg)
    }

    /// The type a value for this target must have: the key's, or the argument's (the first
    /// constructor of the key that has such an argument).
    pub fn ty(&self) -> Option<(Ty, String)> {
        let info = self.key.info();
        match &self.arg {
            None => Some((info.ty, info.noun.to_owned())),
            Some(arg) => match info.ty {
                Ty::Ctor(ctors) => ctors.iter().find_map(|c| {
                    c.params.iter().find(|p| p.name == arg).map(|p| (p.ty, format!("`{}.{arg}`", self.key.name())))
                }),
                _ => None,
            },
        }
    }
}

/// What a name in an expression refers to.
#[derive(Clone, Debug, PartialEq)]
pub enum NameRef {
    Base,
    Key(Target),
    Word(String),
    /// A dotted name that is no key (`schedule.warmpu`), with a suggestion.
    Unknown {
        suggestion: Option<String>,
    },
}

/// Resolves a name: `base`, a key (qualified or not, possibly with a constructor argument),
/// or a bare word.
pub fn resolve_name(path: &KeyPath) -> NameRef {
    if let [single] = path.parts.as_slice() {
        return resolve_single(&single.name);
    }
    let text = path.text();
    if let Lookup::Found(key) = schema::lookup(None, &text) {
        return NameRef::Key(Target::whole(key));
    }
    if path.parts.len() == 1 {
        return NameRef::Word(text);
    }
    let [head, rest @ ..] = path.parts.as_slice() else { return NameRef::Unknown { suggestion: None } };
    // `data.tokens.x` or `schedule.warmup`: the longest key prefix, then one argument.
    let (Lookup::Found(key), args) = (schema::lookup(None, &head.name), rest) else {
        return NameRef::Unknown { suggestion: None };
    };
    match args {
        [arg] => match key.info().ty {
            Ty::Ctor(ctors) => {
                let params = || ctors.iter().flat_map(|c| c.params.iter().map(|p| p.name));
                if params().any(|p| p == arg.name) {
                    NameRef::Key(Target { key, arg: Some(arg.name.clone()) })
                } else {
                    let suggestion = schema::suggest(&arg.name, params()).map(|s| format!("{}.{s}", head.name));
                    NameRef::Unknown { suggestion }
                }
            }
            _ => NameRef::Unknown { suggestion: None },
        },
        _ => NameRef::Unknown { suggestion: None },
    }
}

/// A one-part name: `base`, a key's short name, or a word. Short names are looked up once.
fn resolve_single(name: &str) -> NameRef {
    static SHORT: std::sync::OnceLock<Vec<(&'static str, Key)>> = std::sync::OnceLock::new();
    let short = SHORT.get_or_init(|| {
        let mut names: Vec<(&'static str, Key)> = schema::keys()
            .filter_map(|k| match schema::lookup(None, k.name()) {
                Lookup::Found(found) => Some((k.name(), found)),
                _ => None,
            })
            .collect();
        names.sort_by_key(|(n, _)| *n);
        names.dedup_by_key(|(n, _)| *n);
        names
    });
    if name == "base" {
        return NameRef::Base;
    }
    match short.binary_search_by(|(n, _)| (*n).cmp(name)) {
        Ok(i) => NameRef::Key(Target::whole(short[i].1)),
        Err(_) => match schema::declared(name) {
            // A key the study declares for its own script (`params {}`).
            Some(key) => NameRef::Key(Target::whole(key)),
            None => NameRef::Word(name.to_owned()),
        },
    }
}

/// Where names get their values.
pub trait Env {
    /// The current value of a key (after derivation), or an error.
    fn key(&mut self, target: &Target, span: Span) -> Result<Value, EvalError>;
    /// The value of `base` here, if `base` means something here.
    fn base(&mut self, span: Span) -> Result<Value, EvalError>;
}

/// An environment without keys or `base`: for constants and `lrx schedule`.
pub struct NoEnv;

impl Env for NoEnv {
    fn key(&mut self, target: &Target, span: Span) -> Result<Value, EvalError> {
        Err(EvalError::new(format!("`{}` is a key; a standalone value cannot refer to keys", target.path()), span))
    }
    fn base(&mut self, span: Span) -> Result<Value, EvalError> {
        Err(EvalError::new("`base` is only meaningful inside a phase", span))
    }
}

/// Whether an expression refers to no key and not to `base`.
pub fn is_constant(expr: &Expr) -> bool {
    let mut constant = true;
    expr.walk(&mut |e| {
        if let ExprKind::Name(p) = &e.kind
            && !matches!(resolve_name(p), NameRef::Word(_))
        {
            constant = false;
        }
    });
    constant
}

/// The keys an expression refers to.
pub fn references(expr: &Expr) -> Vec<(Target, Span)> {
    let mut out = Vec::new();
    expr.walk(&mut |e| {
        if let ExprKind::Name(p) = &e.kind
            && let NameRef::Key(t) = resolve_name(p)
        {
            out.push((t, e.span));
        }
    });
    out
}

/// Rounds away the noise of float arithmetic (`0.06 + 0.01` is `0.07`, not
/// `0.06999999999999999`) by keeping 15 significant digits.
pub fn tidy(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    // Scale to a 15-digit integer, round, scale back. Powers of ten up to 1e22 are exact
    // doubles, so the division is correctly rounded: the result is the double nearest to the
    // 15-digit decimal, as parsing that decimal would give.
    let exp = x.abs().log10().floor() as i32;
    let shift = 14 - exp;
    if (0..=22).contains(&shift) {
        let scale = 10f64.powi(shift);
        let r = (x * scale).round() / scale;
        if r.is_finite() {
            return r;
        }
    } else if (-22..0).contains(&shift) {
        let scale = 10f64.powi(-shift);
        let r = (x / scale).round() * scale;
        if r.is_finite() {
            return r;
        }
    }
    format!("{x:.14e}").parse().unwrap_or(x)
}

/// Evaluates an expression.
pub fn eval(expr: &Expr, env: &mut dyn Env) -> Result<Value, EvalError> {
    let span = expr.span;
    match &expr.kind {
        ExprKind::Number { value: Number::Int(i), .. } => Ok(Value::Int(*i)),
        ExprKind::Number { value: Number::Float(x), .. } => Ok(Value::Float(*x)),
        ExprKind::Duration { seconds, .. } => Ok(Value::Duration(*seconds)),
        ExprKind::Str(s) => Ok(Value::Str(s.clone())),
        ExprKind::Bool(b) => Ok(Value::Bool(*b)),
        ExprKind::Name(path) => match resolve_name(path) {
            NameRef::Base => env.base(span),
            NameRef::Key(t) => env.key(&t, span),
            NameRef::Word(w) => Ok(Value::Word(w)),
            NameRef::Unknown { suggestion } => {
                let mut msg = format!("unknown key `{}`", path.text());
                if let Some(s) = suggestion {
                    let _ = write!(msg, "; did you mean `{s}`?");
                }
                Err(EvalError::new(msg, span))
            }
        },
        ExprKind::List(items) => Ok(Value::List(items.iter().map(|e| eval(e, env)).collect::<Result<_, _>>()?)),
        ExprKind::Tuple(items) => Ok(Value::Tuple(items.iter().map(|e| eval(e, env)).collect::<Result<_, _>>()?)),
        ExprKind::Group(e) => eval(e, env),
        ExprKind::Neg(e) => {
            let v = eval(e, env)?;
            match v {
                Value::Int(i) => {
                    i.checked_neg().map(Value::Int).ok_or_else(|| EvalError::new("integer overflow", span))
                }
                Value::Float(x) => Ok(Value::Float(-x)),
                Value::Duration(s) => Ok(Value::Duration(-s)),
                other => Err(EvalError::new(format!("`-` needs a number, found {} `{other}`", other.kind()), e.span)),
            }
        }
        ExprKind::Binary { op, lhs, rhs } => {
            let a = eval(lhs, env)?;
            let b = eval(rhs, env)?;
            arith(*op, &a, &b, lhs.span, rhs.span, span)
        }
        ExprKind::Call { name, args } => match name.name.as_str() {
            "log" | "lin" => generate(&name.name, args, env, span),
            _ => {
                let mut out = Vec::with_capacity(args.len());
                for a in args {
                    out.push((a.name.as_ref().map(|n| n.name.clone()).unwrap_or_default(), eval(&a.value, env)?));
                }
                Ok(Value::Call(Call { name: name.name.clone(), args: out }))
            }
        },
    }
}

#[allow(clippy::many_single_char_names, reason = "operands and their spans: a, b")]
fn arith(op: BinOp, a: &Value, b: &Value, a_span: Span, b_span: Span, span: Span) -> Result<Value, EvalError> {
    let sym = op.symbol();
    let overflow = || EvalError::new("integer overflow", span);
    let finite = |x: f64| {
        if x.is_finite() { Ok(tidy(x)) } else { Err(EvalError::new("the result is not a finite number", span)) }
    };
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => match op {
            BinOp::Add => x.checked_add(*y).map(Value::Int).ok_or_else(overflow),
            BinOp::Sub => x.checked_sub(*y).map(Value::Int).ok_or_else(overflow),
            BinOp::Mul => x.checked_mul(*y).map(Value::Int).ok_or_else(overflow),
            BinOp::Div if *y == 0 => Err(EvalError::new("division by zero", b_span)),
            BinOp::Div => finite(*x as f64 / *y as f64).map(Value::Float),
        },
        (Value::Duration(x), Value::Duration(y)) => match op {
            BinOp::Add => finite(x + y).map(Value::Duration),
            BinOp::Sub => finite(x - y).map(Value::Duration),
            _ => Err(EvalError::new(format!("`{sym}` cannot combine two durations"), span)),
        },
        (Value::Duration(d), n) | (n, Value::Duration(d)) if n.as_f64().is_some() => {
            let x = n.as_f64().unwrap_or_default();
            let duration_first = matches!(a, Value::Duration(_));
            match op {
                BinOp::Mul => finite(d * x).map(Value::Duration),
                BinOp::Div if duration_first && x == 0.0 => Err(EvalError::new("division by zero", b_span)),
                BinOp::Div if duration_first => finite(d / x).map(Value::Duration),
                _ => Err(EvalError::new(format!("`{sym}` cannot combine a duration and a number"), span)),
            }
        }
        _ => {
            let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
                let (bad, bad_span) = if a.as_f64().is_none() { (a, a_span) } else { (b, b_span) };
                return Err(EvalError::new(format!("`{sym}` needs numbers, found {} `{bad}`", bad.kind()), bad_span));
            };
            let r = match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div if y == 0.0 => return Err(EvalError::new("division by zero", b_span)),
                BinOp::Div => x / y,
            };
            finite(r).map(Value::Float)
        }
    }
}

/// `log(a, b, n = N)` and `lin(a, b, step = s)` / `lin(a, b, n = N)`.
fn generate(name: &str, args: &[super::ast::Arg], env: &mut dyn Env, span: Span) -> Result<Value, EvalError> {
    let mut positional = Vec::new();
    let mut n = None;
    let mut step = None;
    for a in args {
        let v = eval(&a.value, env)?;
        let x = v
            .as_f64()
            .ok_or_else(|| EvalError::new(format!("`{name}` needs numbers, found {} `{v}`", v.kind()), a.value.span))?;
        match a.name.as_ref().map(|i| i.name.as_str()) {
            None if positional.len() < 2 => positional.push((x, a.value.span)),
            None if name == "log" && n.is_none() => n = Some((x, a.value.span)),
            None => {
                return Err(EvalError::new(
                    format!("`{name}` takes two bounds and a named `n` or `step`"),
                    a.value.span,
                ));
            }
            Some("n") => n = Some((x, a.value.span)),
            Some("step") if name == "lin" => step = Some((x, a.value.span)),
            Some(other) => {
                let expected = if name == "log" { "`n`" } else { "`n` or `step`" };
                return Err(EvalError::new(
                    format!("`{name}` has no argument `{other}` (it takes {expected})"),
                    a.value.span,
                ));
            }
        }
    }
    let [(lo, lo_span), (hi, _)] = positional[..] else {
        return Err(EvalError::new(format!("`{name}` needs two bounds: `{name}(from, to, n = N)`"), span));
    };
    let count = |x: f64, s: Span| -> Result<usize, EvalError> {
        if x.fract() != 0.0 || x < 1.0 {
            return Err(EvalError::new(format!("`n` must be a whole number of at least 1, found `{x}`"), s));
        }
        if x > MAX_GENERATED as f64 {
            return Err(EvalError::new(format!("`{name}` would make {x} values; at most {MAX_GENERATED}"), s));
        }
        Ok(x as usize)
    };
    let values: Vec<f64> = match (name, n, step) {
        ("log", Some((n, s)), _) => {
            let n = count(n, s)?;
            if lo <= 0.0 || hi <= 0.0 {
                return Err(EvalError::new("`log` needs positive bounds", lo_span));
            }
            let (ll, lh) = (lo.ln(), hi.ln());
            (0..n)
                .map(|i| {
                    if i == 0 {
                        lo
                    } else if i + 1 == n {
                        hi
                    } else {
                        tidy((ll + (lh - ll) * i as f64 / (n - 1) as f64).exp())
                    }
                })
                .collect()
        }
        ("log", None, _) => {
            return Err(EvalError::new("`log` needs the number of values: `log(from, to, n = N)`", span));
        }
        ("lin", Some(_), Some((_, s))) => return Err(EvalError::new("`lin` takes `n` or `step`, not both", s)),
        ("lin", Some((n, s)), None) => {
            let n = count(n, s)?;
            (0..n)
                .map(|i| if i + 1 == n && n > 1 { hi } else { tidy(lo + (hi - lo) * i as f64 / (n.max(2) - 1) as f64) })
                .collect()
        }
        ("lin", None, Some((step, s))) => {
            if step <= 0.0 || !step.is_finite() {
                return Err(EvalError::new("`step` must be positive", s));
            }
            if hi < lo {
                return Err(EvalError::new("`lin` with a `step` needs `from` at most `to`", lo_span));
            }
            let steps = ((hi - lo) / step + 1e-9).floor();
            let n = count(steps + 1.0, s)?;
            (0..n).map(|i| tidy(lo + step * i as f64)).collect()
        }
        _ => return Err(EvalError::new("`lin` needs `n = N` or `step = S`: `lin(from, to, step = 0.01)`", span)),
    };
    Ok(Value::List(values.into_iter().map(Value::Float).collect()))
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;
    use crate::lang::parser::parse_expr;

    fn ev(src: &str) -> Result<Value, String> {
        let e = parse_expr(src).map_err(|d| d.message)?;
        eval(&e, &mut NoEnv).map_err(|e| e.message)
    }

    #[test]
    fn arithmetic_and_lists() {
        assert_eq!(ev("1 + 2 * 3").unwrap(), Value::Int(7));
        assert_eq!(ev("1/3").unwrap().to_string(), "0.333333333333333");
        assert_eq!(ev("0.06 + 0.01").unwrap().to_string(), "0.07");
        assert_eq!(ev("0.05 * 0.75").unwrap().to_string(), "0.0375");
        assert_eq!(ev("1e-12 * 3").unwrap().to_string(), "3e-12");
        assert_eq!(ev("123456789 * 1000000000.0").unwrap().to_string(), "1.23456789e17");
        for x in [0.1, 0.065, 1e-7, 3.3, 12345.678, 0.004] {
            assert_eq!(tidy(x), x, "a short number stays itself");
        }
        assert_eq!(ev("-(2 - 5)").unwrap(), Value::Int(3));
        assert_eq!(ev("2 * 5m").unwrap().to_string(), "10m");
        assert_eq!(
            ev("lin(0.06, 0.14, step = 0.01)").unwrap().to_string(),
            "[0.06,0.07,0.08,0.09,0.1,0.11,0.12,0.13,0.14]"
        );
        assert_eq!(ev("lin(0.06, 0.14, n = 9)").unwrap().to_string(), "[0.06,0.07,0.08,0.09,0.1,0.11,0.12,0.13,0.14]");
        let Value::List(l) = ev("log(0.001, 1.0, n = 26)").unwrap() else { panic!() };
        assert_eq!(l.len(), 26);
        assert_eq!(l[0], Value::Float(0.001));
        assert_eq!(l[25], Value::Float(1.0));
        assert_eq!(ev("cosine(warmup = 0.1, 0.2)").unwrap().to_string(), "cosine(warmup=0.1,0.2)");
        assert_eq!(ev("1 / 0").unwrap_err(), "division by zero");
        assert_eq!(ev("base * 2").unwrap_err(), "`base` is only meaningful inside a phase");
        assert_eq!(ev("\"a\" * 2").unwrap_err(), "`*` needs numbers, found a string `\"a\"`");
        assert!(ev("lin(0, 1, n = 1e9)").unwrap_err().contains("at most 100000"));
    }
}
