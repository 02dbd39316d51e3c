//! A hostile environment: a cache on a full file system and on a read-only one, an `--out`
//! that is a file, an unreadable corpus. Each must end in a clear error with the documented
//! exit code (2 for the environment; 1 where the study is reported as failed), and corrupt
//! nothing. File systems are small tmpfs mounts; where this process may not mount, the scenario
//! is skipped with a `SKIPPED:` line on stderr.

use std::fs;
use std::time::Duration;

use crate::support::{Kind, Mount, Tally, diff_outputs, entry_dirs, leftovers, print_table, read_outputs, reference};

const EXIT: &str = "wrong exit code";
const MESSAGE: &str = "no clear error message";
const CORRUPT: &str = "cache corrupted (cache verify)";
const TEMP: &str = "temporary files left";
const RECOVERS: &str = "the rerun does not reach the reference results";
const UNTOUCHED: &str = "a file it should not touch changed";

/// The pages (4 KiB) one cache entry occupies on a tmpfs.
fn entry_pages(reference: &crate::support::Reference) -> u64 {
    let pages: u64 = reference
        .cache_files
        .iter()
        .filter(|(p, _)| p.starts_with("runs"))
        .filter_map(|(_, b)| b.as_ref())
        .map(|b| (b.len() as u64).div_ceil(4096))
        .sum();
    pages.div_ceil(reference.keys.len() as u64)
}

fn full_disk(tally: &mut Tally) -> Result<(), String> {
    let reference = reference(Kind::Builtin);
    let _turn = crate::support::heavy();
    let sb = crate::support::Sandbox::new(Kind::Builtin);
    let mnt = sb.path().join("small");
    // Room for two entries and a half: the third publish finds the disk full.
    let kib = entry_pages(reference) * 4 * 5 / 2;
    let mount = Mount::tmpfs(&mnt, kib)?;
    let cache = mnt.join("cache");
    let c = cache.to_string_lossy().into_owned();
    let run = sb.run(&["run", "study.lrx", "--cache", &c, "--json"], Duration::from_secs(300));
    let kept = entry_dirs(&cache).len();
    tally.check(EXIT, run.code == Some(2), || {
        format!("full disk ({kib} KiB): {}; stderr: {}", run.status(), crate::support::tail(&run.stderr, 800))
    });
    tally.check(MESSAGE, run.stderr.contains("No space left on device") && !run.stderr.contains("panicked"), || {
        format!("full disk: stderr: {}", crate::support::tail(&run.stderr, 800))
    });
    let (code, text) = sb.verify(&cache);
    tally.check(CORRUPT, code == Some(0), || format!("full disk: verify {code:?}: {text}"));
    let left = leftovers(&cache, &sb.out("study"));
    tally.check(TEMP, left.is_empty(), || format!("full disk: {left:?}"));
    // Room again: the rerun keeps what was published and ends at the reference.
    mount.remount("size=16m")?;
    let rerun = sb.run(&["run", "study.lrx", "--cache", &c, "--json", "-q"], Duration::from_secs(300));
    let cached = rerun.json().ok().and_then(|j| j["runs"]["cached"].as_u64());
    let same = read_outputs(&sb.out("study"))
        .map(|o| if o == reference.outputs { String::new() } else { diff_outputs(&reference.outputs, &o) });
    tally.check(RECOVERS, rerun.code == Some(0) && cached == Some(kept as u64) && same.as_deref() == Ok(""), || {
        format!("full disk, then room: {} with {cached:?} cached of {kept} kept; outputs: {same:?}", rerun.status())
    });
    drop(mount);
    Ok(())
}

fn read_only(tally: &mut Tally, populated: bool) -> Result<(), String> {
    let reference = reference(Kind::Builtin);
    let _turn = crate::support::heavy();
    let sb = crate::support::Sandbox::new(Kind::Builtin);
    let mnt = sb.path().join("ro");
    let mount = Mount::tmpfs(&mnt, 16 * 1024)?;
    if populated {
        reference.seed_cache(&mnt);
    }
    mount.remount("ro")?;
    let c = mnt.to_string_lossy().into_owned();
    let what = if populated { "read-only cache holding every run" } else { "empty read-only cache" };
    let run = sb.run(&["run", "study.lrx", "--cache", &c, "--json"], Duration::from_secs(300));
    if populated {
        // Everything is cached: nothing needs writing, so the study is served as it is.
        let outputs = read_outputs(&sb.out("study"));
        let same = outputs.as_ref().is_ok_and(|o| *o == reference.outputs);
        tally.check(EXIT, run.code == Some(0) && same, || {
            format!(
                "{what}: {}; outputs equal: {same}; stderr: {}",
                run.status(),
                crate::support::tail(&run.stderr, 800)
            )
        });
        let show = sb.run(&["show", "study.lrx", "--cache", &c, "--json"], Duration::from_secs(60));
        let shown = show.json().is_ok_and(|j| crate::support::stable_json(&j) == reference.show);
        tally.check(EXIT, show.code == Some(0) && shown, || {
            format!("{what}: show {}: {}", show.status(), crate::support::tail(&show.stderr, 400))
        });
    } else {
        tally.check(EXIT, run.code == Some(2), || {
            format!("{what}: {}; stderr: {}", run.status(), crate::support::tail(&run.stderr, 800))
        });
        tally.check(MESSAGE, run.stderr.contains("Read-only file system") && !run.stderr.contains("panicked"), || {
            format!("{what}: stderr: {}", crate::support::tail(&run.stderr, 800))
        });
    }
    if populated {
        let (code, text) = sb.verify(&mnt);
        tally.check(CORRUPT, code == Some(0), || format!("{what}: verify {code:?}: {text}"));
    }
    drop(mount);
    Ok(())
}

fn out_is_a_file(tally: &mut Tally) {
    let reference = reference(Kind::Builtin);
    let sb = reference.warm_sandbox();
    let precious = "a file the user keeps\n";
    fs::write(sb.path().join("occupied"), precious).expect("write");
    for args in
        [&["run", "study.lrx", "--out", "occupied", "--json"][..], &["report", "study.lrx", "--out", "occupied"][..]]
    {
        let what = format!("`lrx {}`", args.join(" "));
        let d = sb.run(args, Duration::from_secs(120));
        tally.check(EXIT, d.code == Some(2), || {
            format!("{what}: {}; stderr: {}", d.status(), crate::support::tail(&d.stderr, 600))
        });
        tally.check(MESSAGE, d.stderr.contains("occupied") && !d.stderr.contains("panicked"), || {
            format!("{what}: stderr: {}", crate::support::tail(&d.stderr, 600))
        });
        let unchanged = fs::read_to_string(sb.path().join("occupied")).ok().as_deref() == Some(precious);
        let strays: Vec<String> = fs::read_dir(sb.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("occupied") && n != "occupied")
            .collect();
        tally.check(UNTOUCHED, unchanged && strays.is_empty(), || {
            format!("{what}: the file changed: {unchanged}; strays: {strays:?}")
        });
        let (code, text) = sb.verify(&sb.cache());
        tally.check(CORRUPT, code == Some(0), || format!("{what}: verify {code:?}: {text}"));
    }
}

fn unreadable_corpus(tally: &mut Tally) {
    let sb = crate::support::Sandbox::new(Kind::Builtin);
    // Root reads any file whatever its mode, so the corpus is a symlink loop (ELOOP).
    let corpus = sb.path().join("corpus.txt");
    fs::remove_file(&corpus).expect("remove");
    std::os::unix::fs::symlink("corpus.txt", &corpus).expect("symlink loop");
    let what = "a corpus that cannot be read (a symlink loop)";
    let d = sb.run(&["run", "study.lrx", "--json"], Duration::from_secs(120));
    tally.check(EXIT, matches!(d.code, Some(1 | 2)), || {
        format!("{what}: {}; stderr: {}", d.status(), crate::support::tail(&d.stderr, 600))
    });
    tally.check(MESSAGE, d.stderr.contains("corpus.txt") && !d.stderr.contains("panicked"), || {
        format!("{what}: stderr: {}", crate::support::tail(&d.stderr, 600))
    });
    tally.check(CORRUPT, entry_dirs(&sb.cache()).is_empty(), || format!("{what}: runs were cached"));
    let (code, text) = sb.verify(&sb.cache());
    tally.check(CORRUPT, code == Some(0), || format!("{what}: verify {code:?}: {text}"));
}

fn skipped(what: &str, r: Result<(), String>, skips: &mut Vec<String>) {
    if let Err(why) = r {
        eprintln!("SKIPPED: {what}: {why}");
        skips.push(format!("{what} (skipped: {why})"));
    }
}

#[test]
fn a_full_or_read_only_cache_a_file_as_out_and_an_unreadable_corpus_are_clear_errors() {
    let mut tally = Tally::new("hostile environment".into());
    let mut skips = Vec::new();
    let mut full = Tally::new("full disk".into());
    skipped("cache on a full file system", full_disk(&mut full), &mut skips);
    let mut ro = Tally::new("read-only cache".into());
    skipped("empty cache on a read-only file system", read_only(&mut ro, false), &mut skips);
    skipped("full cache on a read-only file system", read_only(&mut ro, true), &mut skips);
    let mut out = Tally::new("--out is a file".into());
    out_is_a_file(&mut out);
    unreadable_corpus(&mut tally);
    let rows = format!(
        "{}{}{}{}",
        full.rows("cache on a full tmpfs"),
        ro.rows("cache on a read-only tmpfs"),
        out.rows("`--out` is a file"),
        tally.rows("unreadable corpus")
    );
    print_table(
        &format!(
            "Hostile environment{}",
            if skips.is_empty() { String::new() } else { format!(" ({})", skips.join("; ")) }
        ),
        &rows,
    );
    for t in [&full, &ro] {
        if !t.order.is_empty() {
            t.assert_clean(&t.order.clone());
        }
    }
    out.assert_clean(&[EXIT, MESSAGE, UNTOUCHED, CORRUPT]);
    tally.assert_clean(&[EXIT, MESSAGE, CORRUPT]);
}
