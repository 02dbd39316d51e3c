//! The resolved run config: every model, data and train setting of one training run, typed.
//!
//! This is what the trainer reads and what the cache hashes. It is built from a map of
//! checked [`Value`]s (the planner's working form) by [`RunConfig::from_values`], which also
//! applies the checks that span several keys (`top_k ≤ experts`, `d_model % heads == 0`, ...).
//! Its serde form is canonical: fixed field order, floats in shortest round-trip form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::schedule::{Schedule, WdSchedule};
use super::schema::{self, Key, Lookup, Role, Section};
use super::value::Value;

/// Keys set explicitly, in checked canonical form; a missing key takes its default.
pub type Values = BTreeMap<Key, Value>;

/// A complete training run's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub model: ModelConfig,
    pub data: DataConfig,
    pub train: TrainConfig,
    /// Keys the study declares for its own script (`params { dropout = 0.1 }`), by name, as
    /// JSON numbers, strings and booleans: part of the run's identity, read by a command
    /// trainer's placeholders, never by the built-in trainer (which sees them only through
    /// keys derived from them). Left out of the serde form when empty, so that studies
    /// without declared keys keep their runs' keys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub d_model: usize,
    pub layers: usize,
    pub heads: usize,
    pub d_ff: usize,
    pub experts: usize,
    pub top_k: usize,
    pub seq_len: usize,
    pub router_noise: f64,
    pub balance_loss: f64,
    pub softcap: Option<f64>,
    pub rope_base: f64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tokenizer {
    Bytes,
    Bpe { vocab: usize },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    /// `default`, or a path as written in the study (resolved against the study's folder).
    pub corpus: String,
    pub tokenizer: Tokenizer,
    pub tokens: u64,
    pub val: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    MuonAdamw,
    Adamw,
    Sgd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NsCoeffs {
    Quintic,
    PolarExpress,
}

/// The arithmetic of a run's matmuls (`precision`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// Mixed precision: matmul operands rounded to bf16 (results back in f32); weights,
    /// optimizer state, norms, softmax and the loss stay f32.
    Bf16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// Left out of a config's serde form (and so of its cache key) at its default: the keys
    /// of runs made before the key existed stay the same.
    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }
}

/// How long a run trains.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    Steps(u64),
    Tokens(u64),
    /// Seconds of wall-clock training time.
    Time(f64),
}

/// Which program trains the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainerSpec {
    Builtin,
    Command {
        cmd: String,
        deps: Vec<String>,
        /// `command(..., resumable = false)`: the script cannot continue from its `{checkpoint}`,
        /// so each halving rung is its own run of that length. Not part of a run's identity (a
        /// run the script trained is the same run either way), hence never serialized.
        #[serde(skip_serializing, default = "yes")]
        resumable: bool,
    },
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub optimizer: OptimizerKind,
    pub matrix_lr: f64,
    pub embedding_lr: f64,
    pub unembedding_lr: f64,
    pub scalar_lr: f64,
    pub adam_betas: (f64, f64),
    pub adam_eps: f64,
    pub weight_decay: f64,
    pub adam_wd: f64,
    pub cautious_wd: bool,
    pub wd_schedule: WdSchedule,
    pub muon_momentum: f64,
    pub muon_momentum_warmup: u64,
    pub ns_steps: usize,
    pub ns_coeffs: NsCoeffs,
    pub sgd_momentum: f64,
    pub grad_clip: f64,
    pub schedule: Schedule,
    pub batch_size: usize,
    pub budget: Budget,
    pub eval_every: u64,
    pub log_every: u64,
    pub val_batches: usize,
    pub seed: u64,
    pub diverge_factor: f64,
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
    pub trainer: TrainerSpec,
    /// Seconds a command trainer's run may take (`timeout`). Not part of the run's identity:
    /// a run that finished is the same run under any limit, so changing the limit must not
    /// retrain it; hence never serialized (the cache key hashes the serde form).
    #[serde(skip)]
    pub timeout: Option<f64>,
}

/// A problem with a config, naming the keys involved (so the checker can point at them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub keys: Vec<Key>,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Looks a key up by its qualified or short name. Panics on an unknown name: for internal,
/// literal names only.
pub fn key(name: &str) -> Key {
    // Looked up once per name: building a config reads every key, and the planner builds
    // thousands of configs.
    static BY_NAME: std::sync::OnceLock<std::collections::HashMap<String, Key, std::hash::BuildHasherDefault<Fnv>>> =
        std::sync::OnceLock::new();
    let by_name = BY_NAME.get_or_init(|| {
        let mut map = std::collections::HashMap::default();
        for k in schema::keys() {
            for n in [k.name().to_owned(), k.qualified(), format!("{}.{}", k.section(), k.name())] {
                if let Lookup::Found(found) = schema::lookup(None, &n) {
                    map.insert(n, found);
                }
            }
        }
        map
    });
    match by_name.get(name) {
        Some(k) => *k,
        None => match schema::lookup(None, name) {
            Lookup::Found(k) => k,
            other => panic!("internal: `{name}` is not a schema key ({other:?})"),
        },
    }
}

/// FNV-1a: a fast hash for the short key names of [`key`].
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

struct Reader<'a> {
    values: &'a Values,
    errors: Vec<ConfigError>,
}

impl Reader<'_> {
    fn value(&mut self, name: &str) -> (Key, Value) {
        let k = key(name);
        // Defaults are valid and canonical (a schema test says so): only set values are checked.
        let Some(raw) = self.values.get(&k) else { return (k, k.default_value()) };
        match k.info().ty.check(k.info().noun, raw) {
            Ok(v) => (k, v),
            Err(message) => {
                self.errors.push(ConfigError { keys: vec![k], message: format!("`{k} = {raw}`: {message}") });
                (k, k.default_value())
            }
        }
    }

    fn int(&mut self, name: &str) -> i64 {
        self.value(name).1.as_i64().unwrap_or_default()
    }

    fn uint(&mut self, name: &str) -> u64 {
        u64::try_from(self.int(name)).unwrap_or_default()
    }

    fn usize(&mut self, name: &str) -> usize {
        usize::try_from(self.int(name)).unwrap_or_default()
    }

    fn float(&mut self, name: &str) -> f64 {
        self.value(name).1.as_f64().unwrap_or_default()
    }

    fn word(&mut self, name: &str) -> String {
        match self.value(name).1 {
            Value::Word(w) => w,
            Value::Call(c) => c.name,
            _ => String::new(),
        }
    }
}

impl RunConfig {
    /// Every key at its default.
    pub fn defaults() -> RunConfig {
        RunConfig::from_values(&Values::new()).expect("schema defaults form a valid config")
    }

    /// Builds and checks a config from explicit values (missing keys take their defaults).
    /// Returns every problem found, not just the first.
    pub fn from_values(values: &Values) -> Result<RunConfig, Vec<ConfigError>> {
        let mut r = Reader { values, errors: Vec::new() };
        let model = ModelConfig {
            d_model: r.usize("d_model"),
            layers: r.usize("layers"),
            heads: r.usize("heads"),
            d_ff: r.usize("d_ff"),
            experts: r.usize("experts"),
            top_k: r.usize("top_k"),
            seq_len: r.usize("seq_len"),
            router_noise: r.float("router_noise"),
            balance_loss: r.float("balance_loss"),
            softcap: r.value("softcap").1.as_f64(),
            rope_base: r.float("rope_base"),
        };
        let tokenizer = match r.value("tokenizer").1 {
            Value::Call(c) if c.name == "bpe" => {
                Tokenizer::Bpe { vocab: c.arg("vocab").and_then(Value::as_i64).unwrap_or(4096) as usize }
            }
            _ => Tokenizer::Bytes,
        };
        let corpus = match r.value("corpus").1 {
            Value::Str(s) => s,
            _ => "default".to_owned(),
        };
        let data = DataConfig { corpus, tokenizer, tokens: r.uint("data.tokens"), val: r.float("val") };

        let optimizer = match r.word("optimizer").as_str() {
            "adamw" => OptimizerKind::Adamw,
            "sgd" => OptimizerKind::Sgd,
            _ => OptimizerKind::MuonAdamw,
        };
        let adam_betas = match r.value("adam_betas").1 {
            Value::Tuple(items) if items.len() == 2 => {
                (items[0].as_f64().unwrap_or(0.9), items[1].as_f64().unwrap_or(0.95))
            }
            _ => (0.8, 0.95),
        };
        let wd_schedule = match r.word("wd_schedule").as_str() {
            "constant" => WdSchedule::Constant,
            "cosine" => WdSchedule::Cosine,
            _ => WdSchedule::Linear,
        };
        let ns_coeffs = if r.word("ns_coeffs") == "polar_express" { NsCoeffs::PolarExpress } else { NsCoeffs::Quintic };
        let schedule = match r.value("schedule").1 {
            Value::Call(c) => Schedule::from_call(&c),
            _ => Schedule::Constant,
        };
        let (_, tokens_budget) = r.value("train.tokens");
        let (_, time_budget) = r.value("time");
        let budget = match (tokens_budget.as_i64(), &time_budget) {
            (Some(_), Value::Duration(_)) => {
                r.errors.push(ConfigError {
                    keys: vec![key("train.tokens"), key("time")],
                    message: "a run has one budget: set `tokens` or `time`, not both".to_owned(),
                });
                Budget::Steps(1)
            }
            (Some(t), _) => Budget::Tokens(t as u64),
            (None, Value::Duration(s)) => Budget::Time(*s),
            _ => Budget::Steps(r.uint("steps")),
        };
        let trainer = match r.value("trainer").1 {
            Value::Call(c) if c.name == "command" => {
                let cmd = match c.arg("cmd") {
                    Some(Value::Str(s)) => s.clone(),
                    _ => String::new(),
                };
                let deps = match r.value("deps").1 {
                    Value::List(items) => {
                        items.into_iter().filter_map(|v| if let Value::Str(s) = v { Some(s) } else { None }).collect()
                    }
                    _ => Vec::new(),
                };
                let resumable = !matches!(c.arg("resumable"), Some(Value::Bool(false)));
                TrainerSpec::Command { cmd, deps, resumable }
            }
            _ => TrainerSpec::Builtin,
        };
        let train = TrainConfig {
            optimizer,
            matrix_lr: r.float("matrix_lr"),
            embedding_lr: r.float("embedding_lr"),
            unembedding_lr: r.float("unembedding_lr"),
            scalar_lr: r.float("scalar_lr"),
            adam_betas,
            adam_eps: r.float("adam_eps"),
            weight_decay: r.float("weight_decay"),
            adam_wd: r.float("adam_wd"),
            cautious_wd: matches!(r.value("cautious_wd").1, Value::Bool(true)),
            wd_schedule,
            muon_momentum: r.float("muon_momentum"),
            muon_momentum_warmup: r.uint("muon_momentum_warmup"),
            ns_steps: r.usize("ns_steps"),
            ns_coeffs,
            sgd_momentum: r.float("sgd_momentum"),
            grad_clip: r.float("grad_clip"),
            schedule,
            batch_size: r.usize("batch_size"),
            budget,
            eval_every: r.uint("eval_every"),
            log_every: r.uint("log_every"),
            val_batches: r.usize("val_batches"),
            seed: r.uint("seed"),
            diverge_factor: r.float("diverge_factor"),
            precision: if r.word("precision") == "bf16" { Precision::Bf16 } else { Precision::F32 },
            trainer,
            timeout: match r.value("timeout").1 {
                Value::Duration(s) => Some(s),
                _ => None,
            },
        };
        let mut errors = r.errors;
        let params = values
            .iter()
            .filter(|(k, _)| k.section() == Section::Params)
            .filter_map(|(k, v)| Some((k.name().to_owned(), param_json(v)?)))
            .collect();
        let config = RunConfig { model, data, train, params };
        errors.extend(config.cross_errors());
        if errors.is_empty() { Ok(config) } else { Err(errors) }
    }

    /// Constraints that involve more than one key.
    fn cross_errors(&self) -> Vec<ConfigError> {
        let m = &self.model;
        let mut errors = Vec::new();
        let mut err = |keys: &[&str], message: String| {
            errors.push(ConfigError { keys: keys.iter().map(|k| key(k)).collect(), message });
        };
        if m.heads > 0 && !m.d_model.is_multiple_of(m.heads) {
            err(&["d_model", "heads"], format!("`d_model` ({}) must be divisible by `heads` ({})", m.d_model, m.heads));
        } else if m.heads > 0 && !(m.d_model / m.heads).is_multiple_of(2) {
            err(
                &["d_model", "heads"],
                format!(
                    "the head size `d_model / heads` ({}) must be even for rotary position embeddings",
                    m.d_model / m.heads
                ),
            );
        }
        if m.top_k > m.experts {
            err(&["top_k", "experts"], format!("`top_k` ({}) must be at most `experts` ({})", m.top_k, m.experts));
        }
        if let Schedule::WarmupWarmdown { warmup, warmdown, .. } = self.train.schedule
            && warmup + warmdown > 1.0 + 1e-12
        {
            err(
                &["schedule"],
                format!("warmup + warmdown ({}) must be at most 1", super::value::fmt_float(warmup + warmdown)),
            );
        }
        if let Schedule::Cosine { warmup, over: Some(over), .. } = self.train.schedule
            && warmup + over > 1.0 + 1e-12
        {
            err(&["schedule"], format!("warmup + over ({}) must be at most 1", super::value::fmt_float(warmup + over)));
        }
        if let Schedule::Step { every, at, .. } = &self.train.schedule
            && !at.is_empty()
            && (*every - 0.3).abs() > 1e-12
        {
            err(&["schedule"], "`step` takes `every` or `at`, not both".to_owned());
        }
        let window = (m.seq_len + 1) as f64;
        let val_tokens = (self.data.tokens as f64 * self.data.val).floor();
        let train_tokens = self.data.tokens as f64 - val_tokens;
        if val_tokens < window {
            err(
                &["data.tokens", "val", "seq_len"],
                format!(
                    "the validation split ({val_tokens} tokens) is shorter than one window of `seq_len + 1` ({window}) tokens"
                ),
            );
        }
        if train_tokens < window {
            err(
                &["data.tokens", "val", "seq_len"],
                format!(
                    "the training split ({train_tokens} tokens) is shorter than one window of `seq_len + 1` ({window}) tokens"
                ),
            );
        }
        errors
    }

    /// Steps the run will take, when known before training (not for time budgets).
    pub fn total_steps(&self) -> Option<u64> {
        match self.train.budget {
            Budget::Steps(s) => Some(s),
            Budget::Tokens(t) => Some(t.div_ceil((self.train.batch_size * self.model.seq_len) as u64).max(1)),
            Budget::Time(_) => None,
        }
    }
}

/// A declared key's value as JSON (numbers, strings and booleans are all a declared key holds).
fn param_json(v: &Value) -> Option<serde_json::Value> {
    match v {
        Value::Int(i) => Some((*i).into()),
        Value::Float(x) => serde_json::Number::from_f64(*x).map(serde_json::Value::Number),
        Value::Str(s) => Some(s.clone().into()),
        Value::Bool(b) => Some((*b).into()),
        _ => None,
    }
}

/// Keys whose role is to configure a run (not variables or block options), in schema order.
pub fn config_keys() -> impl Iterator<Item = Key> {
    schema::keys().filter(|k| matches!(k.info().role, Role::Config | Role::Budget) && k.section() != Section::Options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::value::Call;

    #[test]
    fn defaults_are_valid() {
        let c = RunConfig::defaults();
        assert_eq!(c.model.d_model, 384);
        assert_eq!(c.train.budget, Budget::Steps(300));
        assert_eq!(
            c.train.schedule,
            Schedule::WarmupWarmdown { warmup: 0.0, warmdown: 0.5, final_lr: 0.0, warmup_start: 0.0 }
        );
        assert_eq!(c.data.tokenizer, Tokenizer::Bytes);
    }

    #[test]
    fn cross_key_checks_report_every_problem() {
        let mut v = Values::new();
        v.insert(key("d_model"), Value::Int(100));
        v.insert(key("heads"), Value::Int(3));
        v.insert(key("top_k"), Value::Int(9));
        v.insert(
            key("schedule"),
            Value::Call(Call {
                name: "warmup_warmdown".into(),
                args: vec![("warmup".into(), Value::Float(0.6)), ("warmdown".into(), Value::Float(0.5))],
            }),
        );
        let errors = RunConfig::from_values(&v).unwrap_err();
        let text: Vec<_> = errors.iter().map(|e| e.message.as_str()).collect();
        assert!(text.contains(&"`d_model` (100) must be divisible by `heads` (3)"), "{text:?}");
        assert!(text.contains(&"`top_k` (9) must be at most `experts` (8)"), "{text:?}");
        assert!(text.contains(&"warmup + warmdown (1.1) must be at most 1"), "{text:?}");
    }

    #[test]
    fn a_partial_cosine_fits_the_run_and_step_takes_every_or_at() {
        let schedule = |name: &str, args: Vec<(&str, Value)>| {
            let mut v = Values::new();
            v.insert(
                key("schedule"),
                Value::Call(Call {
                    name: name.into(),
                    args: args.into_iter().map(|(n, x)| (n.to_owned(), x)).collect(),
                }),
            );
            RunConfig::from_values(&v)
                .map(|c| c.train.schedule)
                .map_err(|e| e.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; "))
        };
        let over = schedule("cosine", vec![("warmup", Value::Float(0.2)), ("over", Value::Float(0.9))]).unwrap_err();
        assert_eq!(over, "warmup + over (1.1) must be at most 1");
        let fits = schedule(
            "cosine",
            vec![("warmup", Value::Float(0.05)), ("over", Value::Float(0.9)), ("warmup_start", Value::Float(0.1))],
        )
        .unwrap();
        assert_eq!(fits, Schedule::Cosine { warmup: 0.05, min_lr: 0.0, cycles: 1, warmup_start: 0.1, over: Some(0.9) });
        let at = Value::List(vec![Value::Float(0.5), Value::Float(0.75)]);
        assert_eq!(
            schedule("step", vec![("at", at.clone())]).unwrap(),
            Schedule::Step { every: 0.3, gamma: 0.1, at: vec![0.5, 0.75] }
        );
        assert_eq!(
            schedule("step", vec![("at", at), ("every", Value::Float(0.2))]).unwrap_err(),
            "`step` takes `every` or `at`, not both"
        );
    }

    #[test]
    fn token_budget_replaces_steps() {
        let mut v = Values::new();
        v.insert(key("train.tokens"), Value::Int(10_000));
        let c = RunConfig::from_values(&v).unwrap();
        assert_eq!(c.train.budget, Budget::Tokens(10_000));
        assert_eq!(c.total_steps(), Some(10_000u64.div_ceil(16 * 512)));
    }
}
