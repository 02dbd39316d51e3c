//! The on-disk run cache: one folder per run key, published atomically, verified on read.
//!
//! Layout under the cache root:
//! ```text
//! runs/ab/abcdef…/spec.json      what the run is (the hashed `KeyInput`) + when it was made
//!                 result.json    the final result (history left out)
//!                 history.csv    the metrics history, one row per logged step
//!                 manifest.json  blake3 of each file above; written last
//! tmp/            entries being written (never read)
//! locks/          one lock file per key being trained
//! corrupt/        entries that failed verification, kept for inspection
//! ```
//! An entry is written in `tmp/`, fsynced, then renamed into `runs/` in one step, so a crash
//! leaves either nothing or a whole entry. Every read checks the manifest's hashes.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::key::{KeyInput, RunKey, checksum};
use crate::spec::{HistoryRow, RunResult};

const FILES: [&str; 3] = ["spec.json", "result.json", "history.csv"];
const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache I/O at `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot encode a cache entry: {0}")]
    Encode(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Io { path: path.to_owned(), source }
}

/// Why an entry could not be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Corruption(pub String);

/// What is stored about a run besides its result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredSpec {
    pub format: u32,
    pub key: RunKey,
    pub input: KeyInput,
    /// Seconds since the Unix epoch when the entry was published.
    pub created: u64,
    pub lrx_version: String,
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: u32,
    files: BTreeMap<String, String>,
}

/// A verified cache entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub spec: StoredSpec,
    pub result: RunResult,
}

/// The result of looking a key up.
#[derive(Debug)]
pub enum Lookup {
    Hit(Box<Entry>),
    Miss,
    /// Present but not trustworthy; the caller reports it and recomputes.
    Corrupt(Corruption),
}

/// A held lock on one key: while it lives, no other `lrx` process trains that key.
#[derive(Debug)]
pub struct KeyLock {
    _file: File,
}

/// The run cache at a root folder.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the cache at `root`.
    pub fn open(root: &Path) -> Result<Store, CacheError> {
        for sub in ["runs", "tmp", "locks"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        Ok(Store { root: root.to_owned() })
    }

    /// The cache at `root` for reading only: nothing is created, and a missing folder is an
    /// empty cache (`plan`, `show` and `why` leave no trace).
    pub fn at(root: &Path) -> Store {
        Store { root: root.to_owned() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn entry_dir(&self, key: RunKey) -> PathBuf {
        let hex = key.to_hex();
        self.root.join("runs").join(&hex[..2]).join(hex)
    }

    /// Whether a complete entry exists (without verifying it).
    pub fn contains(&self, key: RunKey) -> bool {
        self.entry_dir(key).join("manifest.json").is_file()
    }

    /// Reads and verifies an entry.
    pub fn get(&self, key: RunKey) -> Lookup {
        let dir = self.entry_dir(key);
        if !dir.exists() {
            return Lookup::Miss;
        }
        match read_entry(&dir, key) {
            Ok(entry) => Lookup::Hit(Box::new(entry)),
            Err(c) => Lookup::Corrupt(c),
        }
    }

    /// Checks an entry thoroughly: checksums, decoding, and that its spec hashes to its key.
    pub fn verify(&self, key: RunKey) -> Result<(), Corruption> {
        let entry = read_entry(&self.entry_dir(key), key)?;
        if entry.spec.input.key() != key {
            return Err(Corruption("the stored spec does not hash to this entry's key".into()));
        }
        Ok(())
    }

    /// Publishes a finished run. If another process published the same key meanwhile, its
    /// entry is kept (both are results of the same deterministic run).
    pub fn put(&self, input: &KeyInput, result: &RunResult) -> Result<RunKey, CacheError> {
        let key = input.key();
        let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let spec = StoredSpec { format: FORMAT, key, input: input.clone(), created, lrx_version: env!("CARGO_PKG_VERSION").to_owned() };
        let mut stripped = result.clone();
        stripped.history = Vec::new();
        let files = [
            ("spec.json", to_json(&spec)?),
            ("result.json", to_json(&stripped)?),
            ("history.csv", history_to_csv(&result.history)?),
        ];
        let manifest = Manifest { format: FORMAT, files: files.iter().map(|(n, b)| ((*n).to_owned(), checksum(b))).collect() };

        let tmp = self.root.join("tmp").join(format!("{}.{}.{}", key.to_hex(), std::process::id(), unique()));
        fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        let write_all = || -> Result<(), CacheError> {
            for (name, bytes) in &files {
                write_synced(&tmp.join(name), bytes)?;
            }
            write_synced(&tmp.join("manifest.json"), &to_json(&manifest)?)?;
            sync_dir(&tmp)?;
            let dest = self.entry_dir(key);
            let parent = dest.parent().expect("entry dirs have a parent");
            fs::create_dir_all(parent).map_err(io_err(parent))?;
            if dest.exists() {
                if read_entry(&dest, key).is_ok() {
                    return Ok(()); // someone else published it first
                }
                self.quarantine(key)?;
            }
            match fs::rename(&tmp, &dest) {
                Ok(()) => sync_dir(parent),
                // Lost a race with a concurrent publisher: theirs stands.
                Err(_) if dest.join("manifest.json").exists() => Ok(()),
                Err(e) => Err(io_err(&dest)(e)),
            }
        };
        let outcome = write_all();
        let _ = fs::remove_dir_all(&tmp);
        outcome.map(|()| key)
    }

    /// Moves a bad entry out of the way (to `corrupt/`), so it is recomputed.
    pub fn quarantine(&self, key: RunKey) -> Result<(), CacheError> {
        let dir = self.entry_dir(key);
        let dest_root = self.root.join("corrupt");
        fs::create_dir_all(&dest_root).map_err(io_err(&dest_root))?;
        let dest = dest_root.join(format!("{}.{}", key.to_hex(), unique()));
        match fs::rename(&dir, &dest) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&dir)(e)),
        }
    }

    /// Deletes an entry.
    pub fn remove(&self, key: RunKey) -> Result<bool, CacheError> {
        let dir = self.entry_dir(key);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&dir)(e)),
        }
    }

    /// Every key with an entry folder (complete or not), sorted.
    pub fn keys(&self) -> Result<Vec<RunKey>, CacheError> {
        let runs = self.root.join("runs");
        let mut keys = Vec::new();
        if !runs.is_dir() {
            return Ok(keys);
        }
        for shard in fs::read_dir(&runs).map_err(io_err(&runs))? {
            let shard = shard.map_err(io_err(&runs))?.path();
            if !shard.is_dir() {
                continue;
            }
            for entry in fs::read_dir(&shard).map_err(io_err(&shard))? {
                let entry = entry.map_err(io_err(&shard))?;
                if let Some(k) = entry.file_name().to_str().and_then(|s| s.parse::<RunKey>().ok()) {
                    keys.push(k);
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Blocks until this process holds the training lock of `key`. The lock is released when
    /// the returned guard drops, or when the process dies (the OS drops `flock`s).
    pub fn lock(&self, key: RunKey) -> Result<KeyLock, CacheError> {
        let path = self.root.join("locks").join(format!("{}.lock", key.to_hex()));
        let file = File::options().create(true).truncate(false).write(true).open(&path).map_err(io_err(&path))?;
        file.lock().map_err(io_err(&path))?;
        Ok(KeyLock { _file: file })
    }

    /// Tries to take the lock without waiting.
    pub fn try_lock(&self, key: RunKey) -> Result<Option<KeyLock>, CacheError> {
        let path = self.root.join("locks").join(format!("{}.lock", key.to_hex()));
        let file = File::options().create(true).truncate(false).write(true).open(&path).map_err(io_err(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(KeyLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
        }
    }

    /// Removes leftovers of writers that died mid-publish (never read, only disk space).
    pub fn clean_tmp(&self) -> Result<usize, CacheError> {
        let tmp = self.root.join("tmp");
        let mut n = 0;
        for entry in fs::read_dir(&tmp).map_err(io_err(&tmp))? {
            let path = entry.map_err(io_err(&tmp))?.path();
            // `<key>.<pid>.<n>`: only remove folders of processes that are gone.
            let pid = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.split('.').nth(1)).and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_some_and(|p| p == std::process::id() || Path::new(&format!("/proc/{p}")).exists());
            if !alive && fs::remove_dir_all(&path).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }
}

fn unique() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    nanos ^ u128::from(COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, CacheError> {
    serde_json::to_vec_pretty(value).map_err(|e| CacheError::Encode(e.to_string()))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let mut f = File::create(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

fn sync_dir(dir: &Path) -> Result<(), CacheError> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(io_err(dir))
}

fn read_entry(dir: &Path, key: RunKey) -> Result<Entry, Corruption> {
    let read = |name: &str| fs::read(dir.join(name)).map_err(|e| Corruption(format!("cannot read `{name}`: {e}")));
    let manifest: Manifest = serde_json::from_slice(&read("manifest.json")?).map_err(|e| Corruption(format!("bad manifest: {e}")))?;
    if manifest.format != FORMAT {
        return Err(Corruption(format!("entry format {} (this lrx reads {FORMAT})", manifest.format)));
    }
    let mut contents = BTreeMap::new();
    for name in FILES {
        let bytes = read(name)?;
        let expected = manifest.files.get(name).ok_or_else(|| Corruption(format!("manifest lacks `{name}`")))?;
        if &checksum(&bytes) != expected {
            return Err(Corruption(format!("`{name}` does not match its checksum")));
        }
        contents.insert(name, bytes);
    }
    let spec: StoredSpec = serde_json::from_slice(&contents["spec.json"]).map_err(|e| Corruption(format!("bad spec.json: {e}")))?;
    // The manifest's checksum vouches for `spec.json`'s bytes; `cache verify` also rehashes
    // the spec, which the hot read path skips (it is a third of `lrx plan`'s time).
    if spec.key != key {
        return Err(Corruption("the stored spec names another key".into()));
    }
    let mut result: RunResult = serde_json::from_slice(&contents["result.json"]).map_err(|e| Corruption(format!("bad result.json: {e}")))?;
    result.history = history_from_csv(&contents["history.csv"]).map_err(|e| Corruption(format!("bad history.csv: {e}")))?;
    Ok(Entry { spec, result })
}

/// The columns of a history: `step`, then every metric name that occurs, sorted.
pub fn history_columns(history: &[HistoryRow]) -> Vec<String> {
    let mut names: Vec<String> = history.iter().flat_map(|r| r.metrics.keys().cloned()).collect();
    names.sort();
    names.dedup();
    names
}

/// A history as CSV: one row per logged step, empty cells where a metric was not measured.
/// Floats are written in shortest round-trip form, so reading back gives the same bits.
pub fn history_to_csv(history: &[HistoryRow]) -> Result<Vec<u8>, CacheError> {
    let names = history_columns(history);
    let mut w = csv::Writer::from_writer(Vec::new());
    let enc = |e: csv::Error| CacheError::Encode(e.to_string());
    let mut header = vec!["step".to_owned()];
    header.extend(names.iter().cloned());
    w.write_record(&header).map_err(enc)?;
    for row in history {
        let mut record = vec![row.step.to_string()];
        record.extend(names.iter().map(|n| row.metrics.get(n).map(|x| crate::spec::value::fmt_float(*x)).unwrap_or_default()));
        w.write_record(&record).map_err(enc)?;
    }
    w.into_inner().map_err(|e| CacheError::Encode(e.to_string()))
}

pub fn history_from_csv(bytes: &[u8]) -> Result<Vec<HistoryRow>, String> {
    let mut r = csv::Reader::from_reader(bytes);
    let header: Vec<String> = r.headers().map_err(|e| e.to_string())?.iter().map(str::to_owned).collect();
    if header.first().map(String::as_str) != Some("step") {
        return Err("first column is not `step`".into());
    }
    let mut rows = Vec::new();
    for record in r.records() {
        let record = record.map_err(|e| e.to_string())?;
        let step = record.get(0).unwrap_or("").parse::<u64>().map_err(|e| format!("step: {e}"))?;
        let mut metrics = BTreeMap::new();
        for (name, cell) in header.iter().zip(record.iter()).skip(1) {
            if !cell.is_empty() {
                metrics.insert(name.clone(), cell.parse::<f64>().map_err(|e| format!("{name}: {e}"))?);
            }
        }
        rows.push(HistoryRow { step, metrics });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::key::DataFingerprint;
    use crate::spec::{RunConfig, Status, TrainerIdentity};

    fn input(seed: u64) -> KeyInput {
        let mut config = RunConfig::defaults();
        config.train.seed = seed;
        KeyInput {
            config,
            data: DataFingerprint { corpus: "c".into() },
            trainer: TrainerIdentity { name: "t".into(), version: "1".into(), backend: "flex".into(), precision: "f32".into(), device: None },
            stop_at: None,
        }
    }

    fn result() -> RunResult {
        let mut r = RunResult::failed("x");
        r.status = Status::Ok;
        r.error = None;
        r.metrics.insert("val_loss".into(), 1.0 / 3.0);
        r.history = vec![
            HistoryRow { step: 10, metrics: [("train_loss".to_owned(), 2.5)].into() },
            HistoryRow { step: 20, metrics: [("train_loss".to_owned(), 0.1 + 0.2), ("val_loss".to_owned(), 1e-10)].into() },
        ];
        r
    }

    #[test]
    fn put_then_get_round_trips_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = store.put(&input(1), &result()).unwrap();
        match store.get(key) {
            Lookup::Hit(e) => {
                assert_eq!(e.result, result());
                assert_eq!(e.spec.input, input(1));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(store.get(input(2).key()), Lookup::Miss));
        assert_eq!(store.keys().unwrap(), vec![key]);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn a_flipped_byte_is_detected_and_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = store.put(&input(1), &result()).unwrap();
        let file = store.entry_dir(key).join("history.csv");
        let mut bytes = fs::read(&file).unwrap();
        bytes[12] ^= 0x01;
        fs::write(&file, bytes).unwrap();
        assert!(matches!(store.get(key), Lookup::Corrupt(_)));
        assert!(store.verify(key).is_err());
        store.quarantine(key).unwrap();
        assert!(matches!(store.get(key), Lookup::Miss));
        // Publishing again replaces it.
        store.put(&input(1), &result()).unwrap();
        assert!(matches!(store.get(key), Lookup::Hit(_)));
    }

    #[test]
    fn an_entry_without_manifest_is_not_valid() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = store.put(&input(1), &result()).unwrap();
        fs::remove_file(store.entry_dir(key).join("manifest.json")).unwrap();
        assert!(matches!(store.get(key), Lookup::Corrupt(_)));
    }

    #[test]
    fn locks_exclude_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = input(1).key();
        let held = store.lock(key).unwrap();
        assert!(store.try_lock(key).unwrap().is_none());
        drop(held);
        assert!(store.try_lock(key).unwrap().is_some());
    }
}
