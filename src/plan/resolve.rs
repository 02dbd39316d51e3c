//! Resolving configs: layers of settings (root ⊕ winners ⊕ overrides ⊕ variant) merged with
//! "the last layer wins" (and "the last budget set wins"), derived keys evaluated last on the
//! merged config, and the result checked into a [`RunConfig`].

use crate::lang::ast::{Expr, Ident, KeyPath, Span};
use crate::lang::eval::{self, EvalError, NameRef, Target};
use crate::lang::study::Binding;
use crate::spec::config::{RunConfig, Values};
use crate::spec::schema::{Key, Role};
use crate::spec::value::Value;

/// A problem found while resolving, with the span of the statement responsible, if any.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Problem {
    pub message: String,
    pub span: Option<Span>,
    /// The keys whose values are at fault, where known (`top_k` and `experts`).
    pub keys: Vec<Key>,
}

impl Problem {
    pub(crate) fn new(message: impl Into<String>, span: Option<Span>) -> Problem {
        Problem { message: message.into(), span, keys: Vec::new() }
    }
}

impl From<EvalError> for Problem {
    fn from(e: EvalError) -> Problem {
        Problem::new(e.message, Some(e.span))
    }
}

/// Where a setting's value comes from: a constant, or an expression evaluated last.
#[derive(Clone, Debug)]
enum Src<'s> {
    Value(Value),
    Expr(&'s Expr),
}

#[derive(Clone, Debug)]
struct Slot<'s> {
    base: Src<'s>,
    /// Constructor arguments set on top (`schedule.warmup = 0.05`), in order.
    patches: Vec<(String, Src<'s>, Option<Span>)>,
    origin: Option<Span>,
}

/// A config under construction. Keys never set take their schema default.
///
/// A handful of keys are set, and thousands of candidates are resolved: a small vector
/// searched by the key's identity beats a map ordered by name.
#[derive(Clone, Debug, Default)]
pub(crate) struct Layers<'s> {
    slots: Vec<(Key, Slot<'s>)>,
}

/// Whether two keys are the same schema entry (cheaper than comparing names).
fn same(a: Key, b: Key) -> bool {
    std::ptr::eq(a.info(), b.info())
}

impl<'s> Layers<'s> {
    fn slot(&self, key: Key) -> Option<&Slot<'s>> {
        self.slots.iter().find(|(k, _)| same(*k, key)).map(|(_, s)| s)
    }
}

/// Parses a canonical key path (`matrix_lr`, `schedule.warmup`, `data.tokens`).
pub fn target_of(path: &str) -> Option<Target> {
    let parts = path.split('.').map(|p| Ident { name: p.to_owned(), span: Span::default() }).collect();
    match eval::resolve_name(&KeyPath { parts, span: Span::default() }) {
        NameRef::Key(t) => Some(t),
        _ => None,
    }
}

impl<'s> Layers<'s> {
    fn set(&mut self, target: &Target, src: Src<'s>, origin: Option<Span>) {
        let key = target.key;
        let unset = matches!(&src, Src::Value(Value::Word(w)) if w == "none");
        if key.info().role == Role::Budget && target.arg.is_none() && !unset {
            // The last budget set wins: setting one resets the others. `time = none` sets no
            // budget, so it resets nothing.
            self.slots.retain(|(k, _)| same(*k, key) || k.info().role != Role::Budget);
        }
        match &target.arg {
            None => {
                let slot = Slot { base: src, patches: Vec::new(), origin };
                match self.slots.iter_mut().find(|(k, _)| same(*k, key)) {
                    Some((_, s)) => *s = slot,
                    None => self.slots.push((key, slot)),
                }
            }
            Some(arg) => {
                if !self.slots.iter().any(|(k, _)| same(*k, key)) {
                    self.slots
                        .push((key, Slot { base: Src::Value(key.default_value()), patches: Vec::new(), origin: None }));
                }
                if let Some((_, slot)) = self.slots.iter_mut().find(|(k, _)| same(*k, key)) {
                    slot.patches.push((arg.clone(), src, origin));
                }
            }
        }
    }

    /// Sets a target to a constant.
    pub(crate) fn set_value(&mut self, target: &Target, value: Value, origin: Option<Span>) {
        self.set(target, Src::Value(value), origin);
    }

    /// Applies a block's statement. `base` (the incoming value of the key) and constants are
    /// evaluated now, against this config; other expressions are derived keys, evaluated last.
    pub(crate) fn apply_binding(&mut self, b: &'s Binding) -> Result<(), Problem> {
        let src = if b.value.uses_base() {
            let base = self.value_of(&b.target, b.key_span)?;
            let mut env = Evaluator { layers: self, memo: Vec::new(), stack: Vec::new(), base: Some(base) };
            Src::Value(eval::eval(&b.value, &mut env)?)
        } else if eval::is_constant(&b.value) {
            Src::Value(eval::eval(&b.value, &mut eval::NoEnv)?)
        } else {
            Src::Expr(&b.value)
        };
        // Problems with the key point at its name, not at the whole statement.
        self.set(&b.target, src, Some(b.key_span));
        Ok(())
    }

    /// Applies changes given as canonical key paths.
    pub(crate) fn apply_changes(&mut self, changes: &[(String, Value)], origin: Option<Span>) -> Result<(), Problem> {
        for (path, value) in changes {
            let target = target_of(path).ok_or_else(|| Problem::new(format!("unknown key `{path}`"), origin))?;
            self.set_value(&target, value.clone(), origin);
        }
        Ok(())
    }

    /// The current value of one target, derived keys evaluated.
    pub(crate) fn value_of(&self, target: &Target, span: Span) -> Result<Value, Problem> {
        let mut env = Evaluator { layers: self, memo: Vec::new(), stack: Vec::new(), base: None };
        eval::Env::key(&mut env, target, span).map_err(Problem::from)
    }

    /// Evaluates an expression against this config, with `base` the value of `base_of`.
    pub(crate) fn eval_with_base(&self, expr: &Expr, base_of: &Target) -> Result<Value, Problem> {
        let needs_base = expr.uses_base();
        let base = if needs_base { Some(self.value_of(base_of, expr.span)?) } else { None };
        if eval::is_constant(expr) {
            return eval::eval(expr, &mut eval::NoEnv).map_err(Problem::from);
        }
        let mut env = Evaluator { layers: self, memo: Vec::new(), stack: Vec::new(), base };
        eval::eval(expr, &mut env).map_err(Problem::from)
    }

    /// Every set key, evaluated.
    pub(crate) fn values(&self) -> Result<Values, Vec<Problem>> {
        let mut env = Evaluator { layers: self, memo: Vec::new(), stack: Vec::new(), base: None };
        let mut errors = Vec::new();
        for (key, slot) in &self.slots {
            let key = *key;
            if let Err(e) = eval::Env::key(&mut env, &Target::whole(key), slot.origin.unwrap_or_default()) {
                let mut p = Problem::from(e);
                p.keys.push(key);
                if p.span.is_some_and(|s| s.start == 0 && s.end == 0) {
                    p.span = slot.origin;
                }
                errors.push(p);
            }
        }
        if errors.is_empty() { Ok(env.memo.into_iter().collect()) } else { Err(errors) }
    }

    /// The resolved, checked run config; every problem, each pointing at the statement
    /// that set the key at fault (the latest one where several keys are involved).
    pub(crate) fn config(&self) -> Result<RunConfig, Vec<Problem>> {
        let values = self.values()?;
        RunConfig::from_values(&values).map_err(|errors| {
            errors
                .into_iter()
                .map(|e| {
                    let span = e
                        .keys
                        .iter()
                        .filter_map(|k| self.slot(*k).and_then(|s| s.patches.last().and_then(|p| p.2).or(s.origin)))
                        .max_by_key(|s| s.start);
                    Problem { message: e.message, span, keys: e.keys }
                })
                .collect()
        })
    }
}

/// Evaluates keys of a [`Layers`] on demand, each once, refusing cycles.
struct Evaluator<'a, 's> {
    layers: &'a Layers<'s>,
    memo: Vec<(Key, Value)>,
    stack: Vec<Key>,
    base: Option<Value>,
}

impl Evaluator<'_, '_> {
    fn whole(&mut self, key: Key, span: Span) -> Result<Value, EvalError> {
        if let Some((_, v)) = self.memo.iter().find(|(k, _)| same(*k, key)) {
            return Ok(v.clone());
        }
        if self.stack.iter().any(|k| same(*k, key)) {
            let mut names: Vec<String> = self.stack.iter().map(|k| format!("`{}`", k.qualified())).collect();
            names.push(format!("`{}`", key.qualified()));
            return Err(EvalError::new(format!("derived keys form a cycle: {}", names.join(" -> ")), span));
        }
        let Some(slot) = self.layers.slot(key) else {
            return Ok(key.default_value());
        };
        self.stack.push(key);
        let result = self.slot(key, slot);
        self.stack.pop();
        let v = result?;
        self.memo.push((key, v.clone()));
        Ok(v)
    }

    fn src(&mut self, src: &Src<'_>) -> Result<Value, EvalError> {
        match src {
            Src::Value(v) => Ok(v.clone()),
            Src::Expr(e) => {
                let saved = self.base.take();
                let r = eval::eval(e, self);
                self.base = saved;
                r
            }
        }
    }

    fn slot(&mut self, key: Key, slot: &Slot<'_>) -> Result<Value, EvalError> {
        let raw = self.src(&slot.base)?;
        if slot.patches.is_empty() {
            return Ok(raw);
        }
        let info = key.info();
        let origin = slot.patches.first().and_then(|p| p.2).or(slot.origin).unwrap_or_default();
        // A call that already has every argument being set needs no binding first.
        if let Value::Call(mut call) = raw.clone()
            && slot.patches.iter().all(|(arg, _, _)| call.arg(arg).is_some())
        {
            for (arg, src, _) in &slot.patches {
                let v = self.src(src)?;
                if let Some(a) = call.arg_mut(arg) {
                    *a = v;
                }
            }
            return Ok(Value::Call(call));
        }
        let Ok(Value::Call(mut call)) = info.ty.check(info.noun, &raw) else {
            return Err(EvalError::new(
                format!("`{}` is `{raw}`, which has no arguments to set", key.qualified()),
                origin,
            ));
        };
        crate::spec::schema::with_implicit_args(info.ty, &mut call);
        for (arg, src, span) in &slot.patches {
            let v = self.src(src)?;
            match call.arg_mut(arg) {
                Some(slot) => *slot = v,
                None => {
                    return Err(EvalError::new(
                        format!("`{}.{arg}`: `{}` has no argument `{arg}`", key.qualified(), call.name),
                        span.unwrap_or(origin),
                    ));
                }
            }
        }
        Ok(Value::Call(call))
    }
}

impl eval::Env for Evaluator<'_, '_> {
    fn key(&mut self, target: &Target, span: Span) -> Result<Value, EvalError> {
        let whole = self.whole(target.key, span)?;
        let Some(arg) = &target.arg else { return Ok(whole) };
        let info = target.key.info();
        match info.ty.check(info.noun, &whole) {
            Ok(Value::Call(mut c)) => {
                crate::spec::schema::with_implicit_args(info.ty, &mut c);
                c.arg(arg).cloned().ok_or_else(|| {
                    EvalError::new(
                        format!("`{}` is `{c}`, which has no argument `{arg}`", target.key.qualified()),
                        span,
                    )
                })
            }
            _ => Err(EvalError::new(
                format!("`{}` is `{whole}`, which has no argument `{arg}`", target.key.qualified()),
                span,
            )),
        }
    }

    fn base(&mut self, span: Span) -> Result<Value, EvalError> {
        self.base.clone().ok_or_else(|| EvalError::new("`base` is only meaningful inside a phase", span))
    }
}

/// Applies changes (canonical key path → value) to a config, as a winner's changes are
/// applied: derived keys are evaluated again on the result.
pub fn apply(config: &RunConfig, changes: &[(String, Value)]) -> Result<RunConfig, String> {
    let mut layers = Layers::default();
    let json = serde_json::to_value(config).unwrap_or_default();
    for key in crate::spec::config::config_keys() {
        // Setting a budget replaces the others, so only the active one is set.
        if key.info().role == crate::spec::schema::Role::Budget && !is_active_budget(config, key) {
            continue;
        }
        layers.set_value(&Target::whole(key), config_value(config, &json, key), None);
    }
    for name in config.params.keys() {
        let key = crate::spec::schema::declared(name).ok_or_else(|| format!("`{name}` is not a declared key"))?;
        layers.set_value(&Target::whole(key), config_value(config, &json, key), None);
    }
    layers.apply_changes(changes, None).map_err(|p| p.message)?;
    layers.config().map_err(|ps| ps.into_iter().map(|p| p.message).collect::<Vec<_>>().join("; "))
}

fn is_active_budget(config: &RunConfig, key: Key) -> bool {
    use crate::spec::config::Budget;
    matches!(
        (key.name(), &config.train.budget),
        ("steps", Budget::Steps(_)) | ("tokens", Budget::Tokens(_)) | ("time", Budget::Time(_))
    )
}

/// The value of one key in a resolved config (`json` is its serde form), in canonical form.
fn config_value(config: &RunConfig, json: &serde_json::Value, key: Key) -> Value {
    let section = json.get(key.section().name());
    let raw = section.and_then(|s| s.get(key.name()));
    let name = key.name();
    let t = &config.train;
    match name {
        "optimizer" | "wd_schedule" | "ns_coeffs" => {
            Value::Word(raw.and_then(|v| v.as_str()).unwrap_or_default().to_owned())
        }
        "softcap" => config.model.softcap.map_or(Value::Word("none".into()), Value::Float),
        "tokenizer" => match config.data.tokenizer {
            crate::spec::config::Tokenizer::Bytes => Value::Word("bytes".into()),
            crate::spec::config::Tokenizer::Bpe { vocab } => Value::Call(crate::spec::value::Call {
                name: "bpe".into(),
                args: vec![("vocab".into(), Value::Int(vocab as i64))],
            }),
        },
        "adam_betas" => Value::Tuple(vec![Value::Float(t.adam_betas.0), Value::Float(t.adam_betas.1)]),
        "schedule" => schedule_value(&t.schedule),
        "steps" => match t.budget {
            crate::spec::config::Budget::Steps(s) => Value::Int(s as i64),
            _ => key.default_value(),
        },
        "tokens" if key.section() == crate::spec::schema::Section::Train => match t.budget {
            crate::spec::config::Budget::Tokens(n) => Value::Int(n as i64),
            _ => Value::Word("none".into()),
        },
        "time" => match t.budget {
            crate::spec::config::Budget::Time(s) => Value::Duration(s),
            _ => Value::Word("none".into()),
        },
        "trainer" => match &t.trainer {
            crate::spec::config::TrainerSpec::Builtin => Value::Word("builtin".into()),
            crate::spec::config::TrainerSpec::Command { cmd, resumable, .. } => Value::Call(crate::spec::value::Call {
                name: "command".into(),
                // `resumable` is implicit while it has its default, as in the study's text.
                args: std::iter::once(("cmd".into(), Value::Str(cmd.clone())))
                    .chain((!resumable).then(|| ("resumable".into(), Value::Bool(false))))
                    .collect(),
            }),
        },
        "timeout" => t.timeout.map_or_else(|| Value::Word("none".into()), Value::Duration),
        "deps" => match &t.trainer {
            crate::spec::config::TrainerSpec::Command { deps, .. } => {
                Value::List(deps.iter().cloned().map(Value::Str).collect())
            }
            crate::spec::config::TrainerSpec::Builtin => Value::List(Vec::new()),
        },
        _ => match raw {
            Some(serde_json::Value::Bool(b)) => Value::Bool(*b),
            Some(serde_json::Value::String(s)) => Value::Str(s.clone()),
            Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => {
                Value::Int(n.as_i64().unwrap_or(i64::MAX))
            }
            Some(serde_json::Value::Number(n)) => Value::Float(n.as_f64().unwrap_or_default()),
            _ => key.default_value(),
        },
    }
}

fn schedule_value(s: &crate::spec::schedule::Schedule) -> Value {
    use crate::spec::schedule::Schedule;
    let call = |name: &str, args: &[(&str, Value)]| {
        Value::Call(crate::spec::value::Call {
            name: name.into(),
            args: args.iter().map(|(n, v)| ((*n).to_owned(), v.clone())).collect(),
        })
    };
    // Arguments added later (`warmup_start`, `over`, `at`) only where they differ from their
    // defaults, as `Ctor::bind` writes them.
    let start = |w: f64| (w != 0.0).then_some(("warmup_start", Value::Float(w)));
    match s {
        Schedule::Constant => call("constant", &[]),
        Schedule::WarmupWarmdown { warmup, warmdown, final_lr, warmup_start } => {
            let args = [
                ("warmup", Value::Float(*warmup)),
                ("warmdown", Value::Float(*warmdown)),
                ("final", Value::Float(*final_lr)),
            ];
            call("warmup_warmdown", &args.into_iter().chain(start(*warmup_start)).collect::<Vec<_>>())
        }
        Schedule::Cosine { warmup, min_lr, cycles, warmup_start, over } => {
            let args = [
                ("warmup", Value::Float(*warmup)),
                ("min_lr", Value::Float(*min_lr)),
                ("cycles", Value::Int(i64::from(*cycles))),
            ];
            let over = over.map(|o| ("over", Value::Float(o)));
            call("cosine", &args.into_iter().chain(start(*warmup_start)).chain(over).collect::<Vec<_>>())
        }
        Schedule::Step { every, gamma, at } => {
            let at = (!at.is_empty()).then(|| ("at", Value::List(at.iter().map(|&x| Value::Float(x)).collect())));
            call(
                "step",
                &[("every", Value::Float(*every)), ("gamma", Value::Float(*gamma))]
                    .into_iter()
                    .chain(at)
                    .collect::<Vec<_>>(),
            )
        }
        Schedule::Exponential { gamma } => call("exponential", &[("gamma", Value::Float(*gamma))]),
        Schedule::Linear { warmup, final_lr, warmup_start } => call(
            "linear",
            &[("warmup", Value::Float(*warmup)), ("final", Value::Float(*final_lr))]
                .into_iter()
                .chain(start(*warmup_start))
                .collect::<Vec<_>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applying_no_changes_round_trips_every_pipeline_config() {
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "lrx") {
                continue;
            }
            let plan = crate::plan::Plan::load(&path).unwrap_or_else(|_| panic!("{}", path.display()));
            let root = plan.root_with(&[]).unwrap();
            let again = apply(&root, &[]).unwrap();
            assert_eq!(
                serde_json::to_value(&root).unwrap(),
                serde_json::to_value(&again).unwrap(),
                "{}",
                path.display()
            );
            for phase in plan.phases.iter().filter(|p| p.needs.is_empty()) {
                for c in plan
                    .resolve_phase(&phase.name, &std::collections::BTreeMap::default())
                    .unwrap()
                    .into_iter()
                    .flatten()
                {
                    let again = apply(&c.config, &[]).unwrap();
                    assert_eq!(
                        serde_json::to_value(&c.config).unwrap(),
                        serde_json::to_value(&again).unwrap(),
                        "{} {}",
                        path.display(),
                        c.variant
                    );
                }
            }
        }
        let d = RunConfig::defaults();
        assert_eq!(serde_json::to_value(&d).unwrap(), serde_json::to_value(apply(&d, &[]).unwrap()).unwrap());
    }
}
