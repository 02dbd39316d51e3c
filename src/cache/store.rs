//! The on-disk run cache: one folder per run key, published atomically, verified on read.
//!
//! Layout under the cache root:
//! ```text
//! runs/ab/abcdef…/spec.json      what the run is (the hashed `KeyInput`) + when it was made
//!                 result.json    the final result (history left out)
//!                 history.csv    the metrics history, one row per logged step
//!                 logs/*.log     what the run printed (command trainers), when it printed
//!                 checkpoint.ckpt  a run stopped early: its full state, to continue from
//!                 checkpoint/…     the same, as a command trainer's `{checkpoint}` folder
//!                 manifest.json  blake3 of each file above; written last
//! failures/abcdef…/record.json  every failed attempt of a key not (yet) in `runs/`
//!                  *.log         the last failed attempt's logs
//!                  checkpoint/   a command trainer's `{checkpoint}` folder as the last failed
//!                                or interrupted attempt left it, for the next attempt
//!                  kept.ckpt     the built-in trainer's state saved on a stop signal (a batch
//!                  kept.step     job warned of its end), and its step, for the next attempt
//! work/abcdef…/   a run's private folder while it trains (alive while its key is locked)
//! tmp/            entries being written (never read)
//! locks/          one lock file per key being trained (removed by its holder)
//! corrupt/        entries that failed verification, kept for inspection
//! ```
//! An entry is written in `tmp/`, fsynced, then renamed into `runs/` in one step, so a crash
//! leaves either nothing or a whole entry. Every read checks the manifest's hashes. A failed
//! run is not a result (it is retried), but it is not forgotten either: its record says why,
//! how often, and when, until the key succeeds.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::key::{KeyInput, RunKey, checksum};
use crate::spec::{HistoryRow, RunResult};

const FILES: [&str; 3] = ["spec.json", "result.json", "history.csv"];
/// Where an entry keeps the checkpoint of a run stopped early (a successive-halving rung).
const CHECKPOINT: &str = "checkpoint.ckpt";
/// The same, where the checkpoint is a folder (a command trainer's `{checkpoint}`).
const CHECKPOINT_DIR: &str = "checkpoint";
/// An unfinished attempt's saved state (the built-in trainer's file) and the step it holds.
const KEPT_STATE: &str = "kept.ckpt";
const KEPT_STEP: &str = "kept.step";

/// What an earlier, unfinished attempt at a key kept for the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kept {
    /// A command trainer's `{checkpoint}` folder: the script continues from its own saves.
    Folder,
    /// The built-in trainer's state, saved at `step`.
    State { step: u64 },
}
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

/// A held lock on one key: while it lives, no other `lrx` process trains that key. Its file
/// is removed when the lock is released (see [`Store::lock`] for why that is safe).
#[derive(Debug)]
pub struct KeyLock {
    file: File,
    path: PathBuf,
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        // Unlinked while still held: a process that opened the old file before this point
        // sees, once it gets the lock, that the path no longer names its file, and retries.
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// One failed attempt at a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first attempt at this key, counting every failed one before it.
    pub attempt: u32,
    /// Seconds since the Unix epoch when it failed.
    pub when: u64,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub log_tail: Option<String>,
}

/// The failed attempts at one key, newest last; kept until the key succeeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureRecord {
    pub format: u32,
    pub key: RunKey,
    pub input: KeyInput,
    pub attempts: Vec<Attempt>,
}

impl FailureRecord {
    /// The newest attempt (a record always has one).
    pub fn last(&self) -> Option<&Attempt> {
        self.attempts.last()
    }
}

/// The run cache at a root folder.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the cache at `root`.
    pub fn open(root: &Path) -> Result<Store, CacheError> {
        for sub in ["runs", "tmp", "locks", "failures", "work"] {
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

    /// Checks an entry thoroughly: checksums of every file (logs included), decoding, that its
    /// spec hashes to its key, and that it holds nothing the manifest does not list.
    pub fn verify(&self, key: RunKey) -> Result<(), Corruption> {
        let dir = self.entry_dir(key);
        let entry = read_entry(&dir, key)?;
        if entry.spec.input.key() != key {
            return Err(Corruption("the stored spec does not hash to this entry's key".into()));
        }
        let manifest: Manifest = serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap_or_default())
            .map_err(|e| Corruption(format!("bad manifest: {e}")))?;
        for (name, expected) in manifest.files.iter().filter(|(n, _)| !FILES.contains(&n.as_str())) {
            let bytes = fs::read(dir.join(name)).map_err(|e| Corruption(format!("cannot read `{name}`: {e}")))?;
            if &checksum(&bytes) != expected {
                return Err(Corruption(format!("`{name}` does not match its checksum")));
            }
        }
        let mut found = Vec::new();
        list_files(&dir, &dir, &mut found);
        if let Some(extra) =
            found.iter().find(|f| f.as_str() != "manifest.json" && !manifest.files.contains_key(f.as_str()))
        {
            return Err(Corruption(format!("`{extra}` is not part of the entry")));
        }
        // An entry's files are its own: a symlink may point anywhere, and change under it.
        if let Some(link) =
            found.iter().find(|f| dir.join(f.as_str()).symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()))
        {
            return Err(Corruption(format!("`{link}` is a symbolic link, not a file of the entry")));
        }
        Ok(())
    }

    /// Things under `runs/` that are not entries (stray files, folders, symlinks): `verify`
    /// reports them; nothing reads them.
    pub fn foreign(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let Ok(shards) = fs::read_dir(self.root.join("runs")) else { return found };
        for shard in shards.flatten() {
            let path = shard.path();
            let name = shard.file_name().to_string_lossy().into_owned();
            let is_dir = shard.file_type().is_ok_and(|t| t.is_dir());
            if !is_dir || name.len() != 2 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                // Named one by one, so the report says what they are.
                let before = found.len();
                if is_dir {
                    list_paths(&path, &mut found);
                }
                if found.len() == before {
                    found.push(path);
                }
                continue;
            }
            for entry in fs::read_dir(&path).into_iter().flatten().flatten() {
                let key = entry.file_name().to_str().and_then(|s| s.parse::<RunKey>().ok());
                let ok =
                    entry.file_type().is_ok_and(|t| t.is_dir()) && key.is_some_and(|k| k.to_hex().starts_with(&name));
                if !ok {
                    found.push(entry.path());
                }
            }
        }
        found.sort();
        found
    }

    /// Publishes a finished run. If another process published the same key meanwhile, its
    /// entry is kept (both are results of the same deterministic run).
    pub fn put(&self, input: &KeyInput, result: &RunResult) -> Result<RunKey, CacheError> {
        self.put_with_files(input, result, &[], None)
    }

    /// Publishes a finished run with the log files it wrote (stored as `logs/<name>`) and the
    /// checkpoint it ended with (`checkpoint.ckpt`, for a run stopped early), each covered by
    /// the manifest's checksum like every other file, and forgets the key's failed attempts.
    pub fn put_with_files(
        &self,
        input: &KeyInput,
        result: &RunResult,
        logs: &[PathBuf],
        checkpoint: Option<&Path>,
    ) -> Result<RunKey, CacheError> {
        let key = input.key();
        let spec = StoredSpec {
            format: FORMAT,
            key,
            input: input.clone(),
            created: now(),
            lrx_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        let mut stripped = result.clone();
        stripped.history = Vec::new();
        let mut files = vec![
            ("spec.json".to_owned(), to_json(&spec)?),
            ("result.json".to_owned(), to_json(&stripped)?),
            ("history.csv".to_owned(), history_to_csv(&result.history)?),
        ];
        for log in logs {
            let name = log.file_name().and_then(|n| n.to_str()).unwrap_or("run.log");
            files.push((format!("logs/{name}"), fs::read(log).map_err(io_err(log))?));
        }
        if let Some(path) = checkpoint {
            if path.is_dir() {
                let mut names = Vec::new();
                list_files(path, path, &mut names);
                names.sort();
                for name in names {
                    let file = path.join(&name);
                    files.push((format!("{CHECKPOINT_DIR}/{name}"), fs::read(&file).map_err(io_err(&file))?));
                }
            } else {
                files.push((CHECKPOINT.to_owned(), fs::read(path).map_err(io_err(path))?));
            }
        }
        let manifest =
            Manifest { format: FORMAT, files: files.iter().map(|(n, b)| (n.clone(), checksum(b))).collect() };

        let tmp = self.root.join("tmp").join(format!("{}.{}.{}", key.to_hex(), std::process::id(), unique()));
        fs::create_dir_all(tmp.join("logs")).map_err(io_err(&tmp))?;
        let write_all = || -> Result<(), CacheError> {
            for (name, bytes) in &files {
                let path = tmp.join(name);
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(io_err(parent))?;
                }
                write_synced(&path, bytes)?;
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
        outcome?;
        self.clear_failure(key)?;
        Ok(key)
    }

    fn failure_dir(&self, key: RunKey) -> PathBuf {
        self.root.join("failures").join(key.to_hex())
    }

    /// Records a failed attempt at `input`'s key (with the logs of this attempt, replacing
    /// the previous attempt's), and returns the record. The caller holds the key's lock.
    pub fn record_failure(
        &self,
        input: &KeyInput,
        result: &RunResult,
        logs: &[PathBuf],
    ) -> Result<FailureRecord, CacheError> {
        let key = input.key();
        let dir = self.failure_dir(key);
        let mut record = self.failure(key).unwrap_or_else(|| FailureRecord {
            format: FORMAT,
            key,
            input: input.clone(),
            attempts: Vec::new(),
        });
        let attempt = record.attempts.last().map_or(1, |a| a.attempt + 1);
        record.attempts.push(Attempt {
            attempt,
            when: now(),
            reason: result.error.clone().unwrap_or_else(|| "the run failed without saying why".to_owned()),
            exit_code: result.exit_code,
            log_tail: result.log_tail.clone(),
        });
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        for old in fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
            if old.path().extension().is_some_and(|e| e == "log") {
                let _ = fs::remove_file(old.path());
            }
        }
        for log in logs {
            if let Some(name) = log.file_name() {
                let dest = dir.join(name);
                fs::copy(log, &dest).map_err(io_err(&dest))?;
            }
        }
        // Written aside and renamed over the old record: a reader sees one whole record.
        let tmp = dir.join(format!(".record.{}.{}.tmp", std::process::id(), unique()));
        write_synced(&tmp, &to_json(&record)?)?;
        let path = dir.join("record.json");
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        Ok(record)
    }

    /// The failed attempts at a key that has no entry yet, if any (an unreadable record
    /// counts as none: it only ever describes a run that must be retried anyway).
    pub fn failure(&self, key: RunKey) -> Option<FailureRecord> {
        let bytes = fs::read(self.failure_dir(key).join("record.json")).ok()?;
        serde_json::from_slice::<FailureRecord>(&bytes).ok().filter(|r| r.key == key && !r.attempts.is_empty())
    }

    /// The logs kept with a key's last failed attempt.
    pub fn failure_logs(&self, key: RunKey) -> Vec<PathBuf> {
        let mut logs: Vec<PathBuf> = fs::read_dir(self.failure_dir(key))
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "log")).collect())
            .unwrap_or_default();
        logs.sort();
        logs
    }

    /// The checkpoint stored with an entry (a run stopped early), if it has one: a file, or a
    /// command trainer's folder.
    pub fn checkpoint(&self, key: RunKey) -> Option<PathBuf> {
        let dir = self.entry_dir(key);
        Some(dir.join(CHECKPOINT))
            .filter(|p| p.is_file())
            .or_else(|| Some(dir.join(CHECKPOINT_DIR)).filter(|p| p.is_dir()))
    }

    /// Keeps what an unfinished attempt at `key` (failed, interrupted, or told to stop by its
    /// batch job) saved, for the key's next attempt, replacing an older one: a command trainer's
    /// `{checkpoint}` folder as the script left it (`step` unknown), or the built-in trainer's
    /// state file saved at `step`. It goes with the key's failure record: cleared when the key
    /// succeeds, or when `gc` or `rm` forget the key. The caller holds the key's lock.
    pub fn keep_checkpoint(&self, key: RunKey, saved: &Path, step: Option<u64>) -> Result<(), CacheError> {
        let dir = self.failure_dir(key);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let (folder, file, step_file) = (dir.join(CHECKPOINT_DIR), dir.join(KEPT_STATE), dir.join(KEPT_STEP));
        for old in [&folder, &file, &step_file] {
            let gone = if old.is_dir() { fs::remove_dir_all(old) } else { fs::remove_file(old) };
            match gone {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(old)(e)),
            }
        }
        if saved.is_dir() {
            return fs::rename(saved, &folder).map_err(io_err(&folder));
        }
        // The step first: a state without its step is never taken.
        let step = step.unwrap_or(0);
        fs::write(&step_file, step.to_string()).map_err(io_err(&step_file))?;
        fs::rename(saved, &file).map_err(io_err(&file))
    }

    /// The step of the state an unfinished attempt at `key` kept, if it kept one.
    pub fn kept_step(&self, key: RunKey) -> Option<u64> {
        let dir = self.failure_dir(key);
        let step = fs::read_to_string(dir.join(KEPT_STEP)).ok()?.trim().parse().ok()?;
        dir.join(KEPT_STATE).is_file().then_some(step)
    }

    /// Takes what an earlier, unfinished attempt at `key` kept ([`Store::keep_checkpoint`]),
    /// moving a folder to `folder_to` or a state file to `file_to`. The caller holds the key's
    /// lock.
    pub fn take_checkpoint(&self, key: RunKey, folder_to: &Path, file_to: &Path) -> Option<Kept> {
        let dir = self.failure_dir(key);
        let folder = dir.join(CHECKPOINT_DIR);
        if folder.is_dir() {
            return fs::rename(&folder, folder_to).is_ok().then_some(Kept::Folder);
        }
        let step = self.kept_step(key)?;
        fs::rename(dir.join(KEPT_STATE), file_to).ok()?;
        let _ = fs::remove_file(dir.join(KEPT_STEP));
        Some(Kept::State { step })
    }

    /// Bytes an entry takes on disk (its checkpoint and logs included).
    pub fn entry_size(&self, key: RunKey) -> u64 {
        let dir = self.entry_dir(key);
        let mut files = Vec::new();
        list_files(&dir, &dir, &mut files);
        files.iter().filter_map(|f| fs::metadata(dir.join(f)).ok()).map(|m| m.len()).sum()
    }

    /// The logs stored with a finished entry.
    pub fn entry_logs(&self, key: RunKey) -> Vec<PathBuf> {
        let mut logs: Vec<PathBuf> = fs::read_dir(self.entry_dir(key).join("logs"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        logs.sort();
        logs
    }

    /// Forgets a key's failed attempts (it succeeded, or the user removed it).
    pub fn clear_failure(&self, key: RunKey) -> Result<(), CacheError> {
        let dir = self.failure_dir(key);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&dir)(e)),
        }
    }

    /// Every key with a failure record or a kept checkpoint (see
    /// [`Store::keep_checkpoint`]), sorted.
    pub fn failed_keys(&self) -> Vec<RunKey> {
        let mut keys: Vec<RunKey> = fs::read_dir(self.root.join("failures"))
            .map(|d| d.flatten().filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok())).collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }

    /// A fresh private folder for a run of `key` while it trains. The caller holds the key's
    /// lock, which is what tells `gc` the folder is alive; anything left there by a dead
    /// attempt is removed first.
    pub fn work_dir(&self, key: RunKey) -> Result<PathBuf, CacheError> {
        let dir = self.root.join("work").join(key.to_hex());
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&dir)(e)),
        }
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        // Absolute, so that a script running in another folder finds it.
        fs::canonicalize(&dir).map_err(io_err(&dir))
    }

    /// Removes the work folders of runs no process is training (their key is not locked).
    pub fn clean_work(&self) -> Result<usize, CacheError> {
        let work = self.root.join("work");
        let mut n = 0;
        let Ok(entries) = fs::read_dir(&work) else { return Ok(0) };
        for entry in entries.flatten() {
            let Some(key) = entry.file_name().to_str().and_then(|s| s.parse::<RunKey>().ok()) else { continue };
            if let Some(_lock) = self.try_lock(key)?
                && fs::remove_dir_all(entry.path()).is_ok()
            {
                n += 1;
            }
        }
        Ok(n)
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

    /// Deletes the checkpoint stored with an entry (a halving rung's saved state), keeping its
    /// result, and returns the bytes freed (0 when it had none). A later rung that would have
    /// continued from it trains from step 0 instead, to the same result.
    ///
    /// Entries are never edited in place: the entry without its checkpoint is written beside it
    /// in `tmp/` (its files hard-linked where the file system allows, a new manifest), then the
    /// two folders are swapped in one step, so a reader sees the old entry or the new one, each
    /// whole. Where the swap is not supported the old entry is moved out before the new one
    /// moves in: a reader in between sees a miss, never a damaged entry.
    pub fn drop_checkpoint(&self, key: RunKey) -> Result<u64, CacheError> {
        let dir = self.entry_dir(key);
        if self.checkpoint(key).is_none() || read_entry(&dir, key).is_err() {
            return Ok(0);
        }
        let manifest_path = dir.join("manifest.json");
        let manifest: Manifest = serde_json::from_slice(&fs::read(&manifest_path).map_err(io_err(&manifest_path))?)
            .map_err(|e| CacheError::Encode(format!("bad manifest: {e}")))?;
        let is_checkpoint = |name: &str| name == CHECKPOINT || name.starts_with(&format!("{CHECKPOINT_DIR}/"));
        let freed = manifest
            .files
            .keys()
            .filter(|n| is_checkpoint(n))
            .filter_map(|n| fs::metadata(dir.join(n)).ok())
            .map(|m| m.len())
            .sum();
        let kept = Manifest {
            format: manifest.format,
            files: manifest.files.into_iter().filter(|(n, _)| !is_checkpoint(n)).collect(),
        };
        let tmp = self.root.join("tmp").join(format!("{}.{}.{}", key.to_hex(), std::process::id(), unique()));
        let swap = || -> Result<(), CacheError> {
            for name in kept.files.keys() {
                let (from, to) = (dir.join(name), tmp.join(name));
                if let Some(parent) = to.parent() {
                    fs::create_dir_all(parent).map_err(io_err(parent))?;
                }
                if fs::hard_link(&from, &to).is_err() {
                    fs::copy(&from, &to).map_err(io_err(&from))?;
                }
            }
            write_synced(&tmp.join("manifest.json"), &to_json(&kept)?)?;
            sync_dir(&tmp)?;
            exchange(&tmp, &dir)
        };
        let outcome = swap();
        // After the swap `tmp` holds the old entry; before it, the half-built new one.
        let _ = fs::remove_dir_all(&tmp);
        outcome?;
        Ok(freed)
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
    ///
    /// The holder removes the lock file when it is done, so `locks/` does not grow with every
    /// key ever trained. That is safe because a lock only counts once its file is still the
    /// one at the path: whoever locked a file that was meanwhile unlinked (or replaced) lets go
    /// and tries again on the current one.
    pub fn lock(&self, key: RunKey) -> Result<KeyLock, CacheError> {
        loop {
            let (file, path) = self.lock_file(key)?;
            file.lock().map_err(io_err(&path))?;
            if still_at(&file, &path) {
                return Ok(KeyLock { file, path });
            }
        }
    }

    /// Tries to take the lock without waiting.
    pub fn try_lock(&self, key: RunKey) -> Result<Option<KeyLock>, CacheError> {
        loop {
            let (file, path) = self.lock_file(key)?;
            match file.try_lock() {
                Ok(()) if still_at(&file, &path) => return Ok(Some(KeyLock { file, path })),
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => return Ok(None),
                Err(fs::TryLockError::Error(e)) => return Err(io_err(&path)(e)),
            }
        }
    }

    fn lock_file(&self, key: RunKey) -> Result<(File, PathBuf), CacheError> {
        let dir = self.root.join("locks");
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let path = dir.join(format!("{}.lock", key.to_hex()));
        let file = File::options().create(true).truncate(false).write(true).open(&path).map_err(io_err(&path))?;
        Ok((file, path))
    }

    /// Leftovers that are not entries: unfinished writes in `tmp/` and work folders of runs
    /// no process holds, with what each is (`cache verify` reports them; `run` and `gc`
    /// remove them).
    pub fn leftovers(&self) -> Vec<(PathBuf, &'static str)> {
        let mut found = Vec::new();
        if let Ok(entries) = fs::read_dir(self.root.join("tmp")) {
            for e in entries.flatten() {
                if tmp_owner(&e.path()).is_some_and(|pid| !alive(pid)) {
                    found.push((e.path(), "an unfinished write of a process that died"));
                }
            }
        }
        if let Ok(entries) = fs::read_dir(self.root.join("work")) {
            for e in entries.flatten() {
                let key = e.file_name().to_str().and_then(|s| s.parse::<RunKey>().ok());
                if key.is_some_and(|k| matches!(self.try_lock(k), Ok(Some(_)))) {
                    found.push((e.path(), "the work folder of a run that is not running"));
                }
            }
        }
        found.sort();
        found
    }

    /// Removes leftovers of writers that died mid-publish (never read, only disk space).
    /// Only `<key>.<pid>.<n>` folders of processes that are gone are touched: anything else in
    /// `tmp/` belongs to someone else.
    pub fn clean_tmp(&self) -> Result<usize, CacheError> {
        let tmp = self.root.join("tmp");
        let mut n = 0;
        let Ok(entries) = fs::read_dir(&tmp) else { return Ok(0) };
        for entry in entries {
            let path = entry.map_err(io_err(&tmp))?.path();
            if tmp_owner(&path).is_some_and(|pid| !alive(pid)) && fs::remove_dir_all(&path).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }
}

/// The process that writes a `tmp/<key>.<pid>.<n>` folder.
/// Every file (or symlink, or other non-folder) under `dir`, as a `/`-separated path relative
/// to `root`.
fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            list_files(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// Every file, symlink and empty folder under `dir`.
fn list_paths(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut any = false;
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        any = true;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            list_paths(&entry.path(), out);
        } else {
            out.push(entry.path());
        }
    }
    if !any {
        out.push(dir.to_owned());
    }
}

fn tmp_owner(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    let mut parts = name.split('.');
    parts.next()?.parse::<RunKey>().ok()?;
    parts.next()?.parse().ok()
}

fn alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether `file` is still the file at `path` (not unlinked or replaced since it was opened).
fn still_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Bytes of the file at `path`, or of every file under the folder at `path`.
pub fn bytes_under(path: &Path) -> u64 {
    if path.is_file() {
        return fs::metadata(path).map_or(0, |m| m.len());
    }
    let mut files = Vec::new();
    list_files(path, path, &mut files);
    files.iter().filter_map(|f| fs::metadata(path.join(f)).ok()).map(|m| m.len()).sum()
}

/// Swaps the folders `a` and `b` (both exist) in one step where the OS can (Linux's
/// `renameat2(RENAME_EXCHANGE)`); elsewhere moves `b` aside, `a` to `b`, and what was `b` to `a`.
fn exchange(a: &Path, b: &Path) -> Result<(), CacheError> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(|e| CacheError::Encode(e.to_string()));
        let (ca, cb) = (c(a)?, c(b)?);
        // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
        #[allow(unsafe_code, reason = "std has no atomic exchange of two paths")]
        let rc =
            unsafe { libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE) };
        if rc == 0 {
            return b.parent().map_or(Ok(()), sync_dir);
        }
    }
    let aside = a.with_extension("old");
    fs::rename(b, &aside).map_err(io_err(b))?;
    fs::rename(a, b).map_err(io_err(b))?;
    fs::rename(&aside, a).map_err(io_err(a))
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
    let manifest: Manifest =
        serde_json::from_slice(&read("manifest.json")?).map_err(|e| Corruption(format!("bad manifest: {e}")))?;
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
    let spec: StoredSpec =
        serde_json::from_slice(&contents["spec.json"]).map_err(|e| Corruption(format!("bad spec.json: {e}")))?;
    // The manifest's checksum vouches for `spec.json`'s bytes; `cache verify` also rehashes
    // the spec, which the hot read path skips (it is a third of `lrx plan`'s time).
    if spec.key != key {
        return Err(Corruption("the stored spec names another key".into()));
    }
    let mut result: RunResult =
        serde_json::from_slice(&contents["result.json"]).map_err(|e| Corruption(format!("bad result.json: {e}")))?;
    result.history =
        history_from_csv(&contents["history.csv"]).map_err(|e| Corruption(format!("bad history.csv: {e}")))?;
    // Entries of older versions have no finish time: they were published when they finished.
    result.finished_at.get_or_insert(spec.created.saturating_mul(1000));
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
        record.extend(
            names.iter().map(|n| row.metrics.get(n).map(|x| crate::spec::value::fmt_float(*x)).unwrap_or_default()),
        );
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
#[allow(clippy::float_cmp, reason = "a cache entry must give back the exact bits")]
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
            trainer: TrainerIdentity {
                name: "t".into(),
                version: "1".into(),
                backend: "flex".into(),
                precision: "f32".into(),
                device: None,
            },
            stop_at: None,
            cooldown: None,
        }
    }

    fn result() -> RunResult {
        let mut r = RunResult::failed("x");
        r.status = Status::Ok;
        r.error = None;
        r.metrics.insert("val_loss".into(), 1.0 / 3.0);
        r.history = vec![
            HistoryRow { step: 10, metrics: [("train_loss".to_owned(), 2.5)].into() },
            HistoryRow {
                step: 20,
                metrics: [("train_loss".to_owned(), 0.1 + 0.2), ("val_loss".to_owned(), 1e-10)].into(),
            },
        ];
        r
    }

    #[test]
    fn dropping_a_checkpoint_keeps_the_result_and_a_verified_entry_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ckpt = dir.path().join("state.ckpt");
        fs::write(&ckpt, vec![7u8; 4096]).unwrap();
        let log = dir.path().join("stdout.log");
        fs::write(&log, "hello").unwrap();
        let key = store.put_with_files(&input(1), &result(), std::slice::from_ref(&log), Some(&ckpt)).unwrap();
        let before = match store.get(key) {
            Lookup::Hit(e) => e.result,
            other => panic!("{other:?}"),
        };
        assert!(store.checkpoint(key).is_some());

        assert_eq!(store.drop_checkpoint(key).unwrap(), 4096);
        assert_eq!(store.checkpoint(key), None);
        store.verify(key).expect("the entry without its checkpoint is whole");
        match store.get(key) {
            Lookup::Hit(e) => assert_eq!(e.result, before),
            other => panic!("{other:?}"),
        }
        assert_eq!(store.entry_logs(key).len(), 1, "the logs stay");
        assert_eq!(store.drop_checkpoint(key).unwrap(), 0, "nothing left to drop");
        assert_eq!(store.clean_tmp().unwrap(), 0, "nothing left behind in tmp/");

        // A folder checkpoint (a script's) goes the same way.
        let folder = dir.path().join("ckpt");
        fs::create_dir_all(folder.join("sub")).unwrap();
        fs::write(folder.join("sub/model.pt"), b"weights").unwrap();
        let other = store.put_with_files(&input(2), &result(), &[], Some(&folder)).unwrap();
        assert_eq!(store.drop_checkpoint(other).unwrap(), 7);
        assert_eq!(store.checkpoint(other), None);
        store.verify(other).unwrap();
    }

    #[test]
    fn a_checkpoint_folder_is_stored_verified_and_kept_across_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ckpt = dir.path().join("ckpt");
        std::fs::create_dir_all(ckpt.join("sub")).unwrap();
        std::fs::write(ckpt.join("state.json"), "{}").unwrap();
        std::fs::write(ckpt.join("sub/weights.bin"), [1u8, 2, 3]).unwrap();
        let key = store.put_with_files(&input(1), &result(), &[], Some(&ckpt)).unwrap();
        store.verify(key).unwrap();
        let stored = store.checkpoint(key).expect("a folder checkpoint");
        assert_eq!(std::fs::read(stored.join("sub/weights.bin")).unwrap(), [1, 2, 3]);
        std::fs::write(stored.join("sub/weights.bin"), [1u8, 2, 4]).unwrap();
        assert!(store.verify(key).is_err(), "the folder's files are covered by the manifest");

        // A failed attempt's folder waits for the next attempt, and goes when the key succeeds.
        let other = input(2).key();
        let (to, file_to) = (dir.path().join("again"), dir.path().join("again.ckpt"));
        store.keep_checkpoint(other, &ckpt, None).unwrap();
        assert!(!ckpt.exists());
        assert_eq!(store.take_checkpoint(other, &to, &file_to), Some(Kept::Folder));
        assert!(to.join("state.json").is_file());
        store.keep_checkpoint(other, &to, None).unwrap();
        store.put(&input(2), &result()).unwrap();
        assert_eq!(store.take_checkpoint(other, &to, &file_to), None, "cleared with the failure");

        // A state saved on a stop signal waits with its step, and replaces an older folder.
        let third = input(3).key();
        std::fs::create_dir_all(&to).unwrap();
        std::fs::write(to.join("x"), "old").unwrap();
        store.keep_checkpoint(third, &to, None).unwrap();
        let state = dir.path().join("state.ckpt");
        std::fs::write(&state, "saved at 40").unwrap();
        store.keep_checkpoint(third, &state, Some(40)).unwrap();
        assert_eq!(store.kept_step(third), Some(40));
        assert!(store.failure(third).is_none(), "kept state is no failure record");
        assert_eq!(store.take_checkpoint(third, &to, &file_to), Some(Kept::State { step: 40 }));
        assert_eq!(std::fs::read_to_string(&file_to).unwrap(), "saved at 40");
        assert_eq!((store.kept_step(third), store.take_checkpoint(third, &to, &file_to)), (None, None));
    }

    #[test]
    fn put_then_get_round_trips_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let finished = RunResult { finished_at: Some(1_700_000_000_123), ..result() };
        let key = store.put(&input(1), &finished).unwrap();
        match store.get(key) {
            Lookup::Hit(e) => {
                assert_eq!(e.result, finished);
                assert_eq!(e.spec.input, input(1));
            }
            other => panic!("{other:?}"),
        }
        // An entry written without a finish time (by an older lrx) reads its publication time.
        let older = store.put(&input(3), &result()).unwrap();
        match store.get(older) {
            Lookup::Hit(e) => assert_eq!(e.result, RunResult { finished_at: Some(e.spec.created * 1000), ..result() }),
            other => panic!("{other:?}"),
        }
        assert!(matches!(store.get(input(2).key()), Lookup::Miss));
        let mut keys = vec![key, older];
        keys.sort();
        assert_eq!(store.keys().unwrap(), keys);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn a_diverged_run_with_non_finite_metrics_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut diverged = result();
        diverged.status = Status::Diverged;
        diverged.diverged_at = Some(20);
        diverged.metrics.insert("train_loss".into(), f64::NAN);
        diverged.metrics.insert("val_loss".into(), f64::INFINITY);
        diverged.metrics.insert("aux_loss".into(), f64::NEG_INFINITY);
        diverged.history[1].metrics.insert("train_loss".into(), f64::NAN);
        diverged.history[1].metrics.insert("grad_norm".into(), f64::INFINITY);
        let key = store.put(&input(1), &diverged).unwrap();
        let Lookup::Hit(e) = store.get(key) else { panic!("a diverged run must read back, not as corrupt") };
        assert!(e.result.metrics["train_loss"].is_nan());
        assert_eq!(e.result.metrics["val_loss"], f64::INFINITY);
        assert_eq!(e.result.metrics["aux_loss"], f64::NEG_INFINITY);
        assert!(e.result.history[1].metrics["train_loss"].is_nan());
        assert_eq!(e.result.history[1].metrics["grad_norm"], f64::INFINITY);
        assert_eq!(e.result.status, Status::Diverged);
        store.verify(key).unwrap();
    }

    /// Entries written before non-finite numbers had a spelling hold `null`: they are a
    /// non-finite result, not a corrupt entry.
    #[test]
    fn an_entry_written_with_null_metrics_reads_back_as_non_finite() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = store.put(&input(1), &result()).unwrap();
        let entry = store.entry_dir(key);
        let text = fs::read_to_string(entry.join("result.json")).unwrap();
        let legacy = text.replace("0.3333333333333333", "null");
        assert_ne!(text, legacy);
        fs::write(entry.join("result.json"), &legacy).unwrap();
        let mut manifest: Manifest = serde_json::from_slice(&fs::read(entry.join("manifest.json")).unwrap()).unwrap();
        manifest.files.insert("result.json".into(), checksum(legacy.as_bytes()));
        fs::write(entry.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
        let Lookup::Hit(e) = store.get(key) else { panic!("a legacy entry with null must not be corrupt") };
        assert!(e.result.metrics["val_loss"].is_nan());
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
