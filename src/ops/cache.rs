//! Looking after the cache: which entries `gc` deletes (all but the runs of kept studies, with
//! failure records, dead writers' leftovers and orphaned scratch folders), and which entries
//! the key prefixes of `rm` name.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::cache::{CacheError, RunKey, Store};

#[derive(Debug, thiserror::Error)]
pub enum MaintainError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("cannot clean `{}`", path.display())]
    Scratch {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What `gc` removed (or, dry, would remove).
pub struct Swept {
    /// Entries not kept, in key order.
    pub removed: Vec<RunKey>,
    /// Unfinished writes and orphaned scratch folders cleaned (none when dry).
    pub cleaned: usize,
}

/// Entries and failure records in the cache: what a `gc` without `--keep` deletes.
pub fn count(store: &Store) -> Result<usize, CacheError> {
    Ok(store.keys()?.len() + store.failed_keys().len())
}

/// Deletes every entry and failure record whose key is not in `keep`, and what dead writers
/// left behind; with `dry_run`, deletes nothing and says what it would delete.
pub fn gc(store: &Store, keep: &BTreeSet<RunKey>, dry_run: bool) -> Result<Swept, MaintainError> {
    let removed: Vec<RunKey> = store.keys()?.into_iter().filter(|k| !keep.contains(k)).collect();
    if dry_run {
        return Ok(Swept { removed, cleaned: 0 });
    }
    for key in &removed {
        store.remove(*key)?;
    }
    for key in store.failed_keys() {
        if !keep.contains(&key) {
            store.clear_failure(key)?;
        }
    }
    let tmp = store.clean_tmp()? + store.clean_work()?;
    // Scratch folders of command runs whose lrx is gone; live ones hold a lock.
    let path = store.root().join("scratch");
    let scratch = crate::external::scratch::clean(&path).map_err(|source| MaintainError::Scratch { path, source })?;
    Ok(Swept { removed, cleaned: tmp + scratch })
}

/// Deletes the checkpoints stored with entries, keeping every result (see
/// [`Store::drop_checkpoint`]); with `dry_run`, deletes nothing. Returns each entry that had
/// one, with its checkpoint's bytes. The checkpoints unfinished attempts kept for their next
/// attempt stay: they are what lets an interrupted run go on.
pub fn drop_checkpoints(store: &Store, dry_run: bool) -> Result<Vec<(RunKey, u64)>, CacheError> {
    let mut dropped = Vec::new();
    for key in store.keys()? {
        let Some(path) = store.checkpoint(key) else { continue };
        let bytes = if dry_run { crate::cache::store::bytes_under(&path) } else { store.drop_checkpoint(key)? };
        if bytes > 0 || dry_run {
            dropped.push((key, bytes));
        }
    }
    Ok(dropped)
}

/// A key prefix that names no entry, or more than one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadPrefix {
    #[error("no cache entry has a key starting with `{0}`")]
    None(String),
    #[error("`{0}` matches {1} entries; give more digits")]
    Many(String, usize),
}

/// The entries (or failure records) `prefixes` name, one each; every prefix that names none or
/// several is an error, and then nothing is named.
pub fn find_keys(store: &Store, prefixes: &[String]) -> Result<Result<Vec<RunKey>, Vec<BadPrefix>>, CacheError> {
    let mut keys = store.keys()?;
    keys.extend(store.failed_keys());
    keys.sort();
    keys.dedup();
    let mut found = Vec::new();
    let mut bad = Vec::new();
    for p in prefixes {
        let lower = p.to_ascii_lowercase();
        let matching: Vec<RunKey> = keys.iter().copied().filter(|k| k.to_hex().starts_with(&lower)).collect();
        match matching.len() {
            0 => bad.push(BadPrefix::None(p.clone())),
            1 => found.push(matching[0]),
            n => bad.push(BadPrefix::Many(p.clone(), n)),
        }
    }
    Ok(if bad.is_empty() { Ok(found) } else { Err(bad) })
}

/// Deletes an entry and its failure record.
pub fn remove(store: &Store, key: RunKey) -> Result<(), CacheError> {
    store.remove(key)?;
    store.clear_failure(key)
}
