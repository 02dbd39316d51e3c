//! Run identity: the blake3 hash of everything that determines a run's result.
//!
//! This is the only place in lrx that hashes. A key covers the fully resolved run config, a
//! fingerprint of the data, the trainer's identity (with backend and precision) and, for a
//! run stopped early by successive halving, the step it stops at. Phase names, file layout
//! and comments never reach it, so renaming a phase or reformatting a study reruns nothing.

use std::fmt;
use std::fmt::Write as _;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::spec::{CooldownRule, DataConfig, RunConfig, Stop, Trainer, TrainerIdentity};

/// A run's cache key: 32 bytes of blake3, written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunKey([u8; 32]);

impl RunKey {
    pub fn to_hex(self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            let _ = write!(s, "{b:02x}");
        }
        s
    }

    /// The first 12 hex digits, for tables.
    pub fn short(self) -> String {
        self.to_hex()[..12].to_owned()
    }
}

impl fmt::Display for RunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for RunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunKey({})", self.short())
    }
}

/// Not 64 hex digits.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a run key (64 hex digits)")]
pub struct BadKey(String);

impl FromStr for RunKey {
    type Err = BadKey;
    fn from_str(s: &str) -> Result<RunKey, BadKey> {
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BadKey(s.to_owned()));
        }
        let mut out = [0u8; 32];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(chunk).map_err(|_| BadKey(s.to_owned()))?;
            out[i] = u8::from_str_radix(hex, 16).map_err(|_| BadKey(s.to_owned()))?;
        }
        Ok(RunKey(out))
    }
}

impl Serialize for RunKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for RunKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RunKey, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What the data of a run is, independent of where the files sit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// blake3 of the corpus content (or, for the pinned default corpus, its published hash).
    pub corpus: String,
}

/// Everything that determines a run's result: hashed into its key and stored beside it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyInput {
    pub config: RunConfig,
    pub data: DataFingerprint,
    pub trainer: TrainerIdentity,
    /// A successive-halving run cut short at this step (its schedule spans the full budget).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stop_at: Option<u64>,
    /// Such a run measured on a cooldown branch of this many steps (`spec::Schedule::cooldown`):
    /// its metrics are the branch's, not those at `stop_at`. Absent from every other key.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cooldown: Option<u64>,
}

/// Version of the key derivation itself; bumping it invalidates every key.
const KEY_FORMAT: &str = "lrx-run-key/1";

impl KeyInput {
    /// One run's identity: `config` with `seed`, its corpus's fingerprint, the trainer that
    /// trains it, and where it stops (a successive-halving rung; ignored where it is not
    /// before the budget), with the cooldown branch it is measured on where its rule, its
    /// schedule and its trainer give one. The one place a run's `KeyInput` is built, so that
    /// the engine, `lrx train` and `lrx why` always agree on a run's key.
    pub fn of_run(
        config: &RunConfig,
        seed: u64,
        stop: Option<Stop>,
        trainer: &dyn Trainer,
        fingerprint: impl FnOnce(&DataConfig) -> Result<DataFingerprint, String>,
    ) -> Result<KeyInput, String> {
        let mut config = config.clone();
        config.train.seed = seed;
        let data = fingerprint(&config.data)?;
        let total = config.total_steps();
        let stop = stop.filter(|s| total.is_none_or(|t| s.at < t));
        let mut stop_at = stop.map(|s| s.at);
        // Only a trainer that stops there may claim it; for any other the rung is a run of its
        // own, that long (its schedule spanning those steps), and keyed as one.
        if let Some(steps) = stop_at
            && !trainer.stops_early(&config)
        {
            config.train.budget = crate::spec::Budget::Steps(steps);
            stop_at = None;
        }
        let cooldown = match (stop, stop_at, total) {
            (Some(Stop { cooldown: CooldownRule::Auto, .. }), Some(at), Some(total)) if trainer.branches(&config) => {
                config.train.schedule.cooldown(at, total).map(|c| c.steps)
            }
            _ => None,
        };
        Ok(KeyInput { trainer: trainer.identity(&config), config, data, stop_at, cooldown })
    }

    /// The canonical text that is hashed: JSON with object keys sorted at every level and
    /// floats in shortest round-trip form. The corpus location is replaced by the content
    /// fingerprint, so moving a corpus file reruns nothing.
    pub fn canonical(&self) -> String {
        let mut config = self.config.clone();
        config.data.corpus = String::new();
        let input = KeyInput { config, ..self.clone() };
        let value = serde_json::to_value(&input).expect("run specs serialize to JSON");
        let mut out = String::with_capacity(2048);
        out.push_str(KEY_FORMAT);
        out.push('\n');
        write_canonical(&value, &mut out);
        out
    }

    pub fn key(&self) -> RunKey {
        RunKey(*blake3::hash(self.canonical().as_bytes()).as_bytes())
    }
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value as J;
    match value {
        J::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("strings serialize"));
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        J::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// blake3 of some bytes, as hex: content checksums of cache files.
pub fn checksum(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Fingerprint of corpus files: their content in the given order, each prefixed by its
/// name relative to the corpus root and its length, so that splitting text differently
/// between files changes the fingerprint.
pub fn fingerprint_files(root: &Path, files: &[std::path::PathBuf]) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    for file in files {
        let rel = file.strip_prefix(root).unwrap_or(file);
        // Streamed, not read whole: `deps` may name a dataset of many gigabytes. The length
        // goes first (as it always has, so keys stay put); a file that changes size while it is
        // hashed is an error, not a key for contents that never existed.
        let mut f = std::fs::File::open(file)?;
        let len = f.metadata()?.len();
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update(&[0]);
        hasher.update(&len.to_le_bytes());
        let read = std::io::copy(&mut f, &mut hasher)?;
        if read != len {
            return Err(std::io::Error::other(format!(
                "`{}` changed while it was hashed ({len} bytes, then {read})",
                file.display()
            )));
        }
    }
    Ok(hasher.finalize().to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Value;
    use crate::spec::config::{Values, key};
    use proptest::prelude::*;

    fn identity() -> TrainerIdentity {
        TrainerIdentity {
            name: "lrx-builtin".into(),
            version: "1".into(),
            backend: "flex".into(),
            precision: "f32".into(),
            device: None,
        }
    }

    fn input(config: RunConfig) -> KeyInput {
        KeyInput {
            config,
            data: DataFingerprint { corpus: "abc".into() },
            trainer: identity(),
            stop_at: None,
            cooldown: None,
        }
    }

    #[test]
    fn files_are_fingerprinted_as_path_length_and_bytes_so_keys_stay_put() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("train.py"), dir.path().join("data.bin"));
        std::fs::write(&a, "print('hi')\n").unwrap();
        std::fs::write(&b, vec![3u8; 100_000]).unwrap();
        let mut want = blake3::Hasher::new();
        for (name, bytes) in [("train.py", b"print('hi')\n".to_vec()), ("data.bin", vec![3u8; 100_000])] {
            want.update(name.as_bytes());
            want.update(&[0]);
            want.update(&(bytes.len() as u64).to_le_bytes());
            want.update(&bytes);
        }
        assert_eq!(fingerprint_files(dir.path(), &[a, b]).unwrap(), want.finalize().to_hex().to_string());
    }

    #[test]
    fn key_round_trips_through_hex() {
        let k = input(RunConfig::defaults()).key();
        assert_eq!(k.to_hex().parse::<RunKey>().unwrap(), k);
        assert!("xyz".parse::<RunKey>().is_err());
    }

    /// A snapshot of one fixed config's key: if this changes, every cache in the world is
    /// invalidated, so it must only change on purpose (with `KEY_FORMAT` or a trainer version).
    #[test]
    fn default_config_key_is_stable() {
        insta::assert_snapshot!(input(RunConfig::defaults()).key().to_hex());
    }

    #[test]
    fn corpus_location_is_not_identity() {
        let mut moved = RunConfig::defaults();
        moved.data.corpus = "/elsewhere/corpus.txt".into();
        assert_eq!(input(moved).key(), input(RunConfig::defaults()).key());
    }

    #[test]
    fn every_input_part_changes_the_key() {
        let base = input(RunConfig::defaults());
        let mut seed = base.clone();
        seed.config.train.seed = 2;
        let mut data = base.clone();
        data.data.corpus = "abd".into();
        let mut backend = base.clone();
        backend.trainer.backend = "cuda".into();
        let mut stop = base.clone();
        stop.stop_at = Some(50);
        for other in [seed, data, backend, stop] {
            assert_ne!(other.key(), base.key());
        }
    }

    /// A trainer that stops where it is told, or not; and branches a rung off, or not.
    struct Fake {
        stops: bool,
        branches: bool,
    }
    const BRANCHES: Fake = Fake { stops: true, branches: true };
    fn stops(stops: bool) -> Fake {
        Fake { stops, branches: false }
    }

    impl Trainer for Fake {
        fn identity(&self, _: &RunConfig) -> TrainerIdentity {
            identity()
        }
        fn train(
            &self,
            _: &RunConfig,
            _: &mut crate::spec::RunContext<'_>,
        ) -> Result<crate::spec::RunResult, crate::spec::Cancelled> {
            Err(crate::spec::Cancelled)
        }
        fn stops_early(&self, _: &RunConfig) -> bool {
            self.stops
        }
        fn branches(&self, _: &RunConfig) -> bool {
            self.branches
        }
    }

    fn rung(at: u64) -> Stop {
        Stop { at, cooldown: CooldownRule::Auto }
    }

    #[test]
    fn a_rung_is_claimed_only_by_a_trainer_that_stops_there_and_is_otherwise_a_run_that_long() {
        let fp = |_: &DataConfig| Ok(DataFingerprint { corpus: "abc".into() });
        let config = RunConfig::defaults();
        let stopping = KeyInput::of_run(&config, 1, Some(rung(50)), &stops(true), fp).unwrap();
        assert_eq!(stopping.stop_at, Some(50));
        assert_eq!(stopping.config.total_steps(), Some(300), "the schedule spans the budget");
        let own = KeyInput::of_run(&config, 1, Some(rung(50)), &stops(false), fp).unwrap();
        assert_eq!(own.stop_at, None, "never a key that claims a stop the run did not make");
        let mut fifty = config.clone();
        fifty.train.budget = crate::spec::Budget::Steps(50);
        assert_eq!(own.key(), KeyInput::of_run(&fifty, 1, None, &stops(false), fp).unwrap().key());
        assert_ne!(own.key(), stopping.key());
        // The last rung is the budget: the whole run either way.
        let last = KeyInput::of_run(&config, 1, Some(rung(300)), &stops(false), fp).unwrap();
        assert_eq!(last.key(), KeyInput::of_run(&config, 1, None, &stops(true), fp).unwrap().key());
        assert!([stopping, own, last].iter().all(|i| i.cooldown.is_none()), "neither trainer branches");
    }

    /// A rung before the default schedule's warmdown (the last half of 300 steps), with a
    /// trainer that branches, is keyed as measured on a cooldown of half its steps; the rule
    /// `none`, a schedule without a late decay, the last rung and every run that is no rung keep
    /// the keys they had.
    #[test]
    fn a_rung_measured_on_a_cooldown_branch_says_so_in_its_key_and_no_other_key_changes() {
        let fp = |_: &DataConfig| Ok(DataFingerprint { corpus: "abc".into() });
        let config = RunConfig::defaults();
        let branched = KeyInput::of_run(&config, 1, Some(rung(50)), &BRANCHES, fp).unwrap();
        assert_eq!((branched.stop_at, branched.cooldown), (Some(50), Some(25)));
        let plain = KeyInput::of_run(&config, 1, Some(rung(50)), &stops(true), fp).unwrap();
        assert_ne!(branched.key(), plain.key());
        assert!(branched.canonical().contains(r#""cooldown":25"#));
        let none = Some(Stop { at: 50, cooldown: CooldownRule::None });
        assert_eq!(KeyInput::of_run(&config, 1, none, &BRANCHES, fp).unwrap().key(), plain.key());
        let whole = KeyInput::of_run(&config, 1, None, &BRANCHES, fp).unwrap();
        assert_eq!(whole.key(), KeyInput::of_run(&config, 1, None, &stops(true), fp).unwrap().key());
        assert_eq!(KeyInput::of_run(&config, 1, Some(rung(300)), &BRANCHES, fp).unwrap().key(), whole.key());
        assert!(!whole.canonical().contains("cooldown"));
        let mut cosine = config.clone();
        cosine.train.schedule =
            crate::spec::Schedule::Cosine { warmup: 0.0, min_lr: 0.0, cycles: 1, warmup_start: 0.0, over: None };
        let c = KeyInput::of_run(&cosine, 1, Some(rung(50)), &BRANCHES, fp).unwrap();
        assert_eq!(c.cooldown, None);
        assert_eq!(c.key(), KeyInput::of_run(&cosine, 1, Some(rung(50)), &stops(true), fp).unwrap().key());
    }

    proptest! {
        /// However a learning rate was written (`0.05`, `5e-2`, `0.050`), and in whatever order
        /// keys were set, the key is the same.
        #[test]
        fn spelling_and_order_do_not_change_keys(lr in 1e-6f64..10.0, wd in 0.0f64..1.0, flip in any::<bool>()) {
            let spellings = [format!("{lr}"), format!("{lr:e}"), format!("{lr:.30}")];
            let parsed: Vec<f64> = spellings.iter().map(|s| s.parse().unwrap()).collect();
            let mut keys = Vec::new();
            for lr in parsed {
                let mut v = Values::new();
                let pairs = [(key("matrix_lr"), Value::Float(lr)), (key("weight_decay"), Value::Float(wd))];
                if flip {
                    for (k, x) in pairs.into_iter().rev() { v.insert(k, x); }
                } else {
                    for (k, x) in pairs { v.insert(k, x); }
                }
                keys.push(input(RunConfig::from_values(&v).unwrap()).key());
            }
            prop_assert!(keys.windows(2).all(|w| w[0] == w[1]));
        }
    }
}
