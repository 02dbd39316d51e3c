//! Scratch folders for command runs that get no run folder from the engine (`lrx train`, tests):
//! each holds a locked `.alive` file while its run lives, which is how `lrx cache gc` tells a
//! live folder from one a killed lrx left behind.
//!
//! The lock is an `flock` on an open file: the kernel drops it when its holder exits, however
//! it exits, so a folder is never held by a process that is gone.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const ALIVE: &str = ".alive";

/// A private folder, locked while this value lives and removed when it is dropped.
pub(crate) struct Scratch {
    dir: PathBuf,
    /// Held for the folder's lifetime; closing it releases the lock.
    _alive: File,
}

impl Scratch {
    /// Makes a fresh folder under `root` (created if needed) and locks it. The path is
    /// absolute, so the script may run in any folder.
    pub(crate) fn create(root: &Path) -> io::Result<Scratch> {
        static N: AtomicU64 = AtomicU64::new(0);
        fs::create_dir_all(root)?;
        let root = fs::canonicalize(root)?;
        for _ in 0..16 {
            let dir = root.join(format!("run-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
            match fs::create_dir(&dir) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                other => other?,
            }
            let path = dir.join(ALIVE);
            let alive = match OpenOptions::new().create(true).truncate(false).write(true).open(&path) {
                // `gc` removed the folder before it was locked: take another.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                other => other?,
            };
            alive.lock()?;
            // `gc` may have locked and removed the folder between the open and the lock: then
            // the file held is no longer the one at the path.
            if fs::metadata(&path).is_ok_and(|m| same_file(&m, &alive)) {
                return Ok(Scratch { dir, _alive: alive });
            }
        }
        Err(io::Error::other(format!("no scratch folder could be made under `{}`", root.display())))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Removed while still locked, so `gc` never sees it half removed and unlocked.
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn same_file(m: &fs::Metadata, f: &File) -> bool {
    f.metadata().is_ok_and(|n| n.dev() == m.dev() && n.ino() == m.ino())
}

/// Removes every scratch folder under `root` whose lock can be taken (its run is over), and
/// returns how many. A missing `root` holds none.
pub fn clean(root: &Path) -> io::Result<usize> {
    let entries = match fs::read_dir(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        other => other?,
    };
    let mut removed = 0;
    for entry in entries {
        let dir = entry?.path();
        if !dir.is_dir() {
            continue;
        }
        // Created if missing, so that a folder whose creator has not locked it yet is locked
        // here instead; the creator then notices and takes another.
        let Ok(alive) = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(ALIVE)) else {
            continue;
        };
        match alive.try_lock() {
            Ok(()) => {
                if fs::remove_dir_all(&dir).is_ok() {
                    removed += 1;
                }
            }
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(e),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_removes_only_folders_nobody_holds() {
        let root = tempfile::tempdir().unwrap();
        let live = Scratch::create(root.path()).unwrap();
        std::fs::write(live.path().join("metrics.json"), "{}").unwrap();
        assert!(live.path().is_absolute());
        // Folders a killed lrx left (its lock died with it), and one without a lock file.
        let dead = root.path().join("run-1-0");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join(ALIVE), "").unwrap();
        let stray = root.path().join("run-left-by-an-old-lrx");
        std::fs::create_dir(&stray).unwrap();

        assert_eq!(clean(root.path()).unwrap(), 2);
        assert!(!dead.exists() && !stray.exists());
        assert!(live.path().join("metrics.json").is_file(), "a live folder is left alone");
        let live_path = live.path().to_owned();
        drop(live);
        assert!(!live_path.exists(), "a finished run removes its folder");
        assert_eq!(clean(Path::new("/nonexistent/lrx/scratch")).unwrap(), 0);
    }
}
