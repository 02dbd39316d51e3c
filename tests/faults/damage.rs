//! A cache damaged behind lrx's back: every file of an entry bit-flipped, truncated or deleted,
//! and foreign files, folders and symlinks among the entries. `cache verify` must find each,
//! `show` and `report` must never show a damaged entry's numbers, and `run` must recompute
//! exactly the damaged runs and come back to the reference's results.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value as Json;

use crate::support::{
    Kind, Reference, Rng, Sandbox, Tally, diff_outputs, entry_dirs, print_table, read_outputs, reference, seed,
    stable_json,
};

const DETECTED: &str = "not reported by cache verify";
const SHOWN: &str = "damaged data shown by show/report";
const RECOMPUTED: &str = "not recomputed exactly once by run";
const EQUAL: &str = "results differ from the reference after the rerun";
const CLEAN: &str = "cache verify fails after the rerun";

const FILES: [&str; 4] = ["spec.json", "result.json", "history.csv", "manifest.json"];

#[derive(Clone, Copy, Debug)]
enum Harm {
    /// One bit of one ASCII digit, so the file still parses and only its numbers lie.
    Flip,
    /// Cut to half its length.
    Truncate,
    Delete,
}

/// Flips the lowest bit of a digit (`3` → `2`): the file stays well-formed. In `result.json`
/// the digit is one of `val_loss`'s first decimals, so a lie would be visible in every table.
/// Returns the damaged text of `val_loss` where that is what changed.
fn flip(path: &Path, rng: &mut Rng) -> Option<String> {
    let mut bytes = fs::read(path).expect("an entry file");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let at = text
        .find("\"val_loss\":")
        .and_then(|i| text[i..].find('.').map(|j| i + j + 2))
        .filter(|_| path.ends_with("result.json"));
    let i = at.unwrap_or_else(|| {
        let digits: Vec<usize> = bytes.iter().enumerate().filter(|(_, b)| b.is_ascii_digit()).map(|(i, _)| i).collect();
        digits[rng.below(digits.len())]
    });
    assert!(bytes[i].is_ascii_digit(), "a digit at {i} of {}", path.display());
    bytes[i] ^= 1;
    fs::write(path, &bytes).expect("write the damage");
    at.map(|i| {
        let damaged = String::from_utf8_lossy(&bytes).into_owned();
        let end = damaged[i..]
            .find(|c: char| !c.is_ascii_digit() && c != '.' && c != 'e' && c != '-')
            .map_or(damaged.len(), |j| i + j);
        let start = damaged[..i].rfind(' ').map_or(0, |s| s + 1);
        damaged[start..end].to_owned()
    })
}

fn harm(path: &Path, how: Harm, rng: &mut Rng) -> Option<String> {
    match how {
        Harm::Flip => flip(path, rng),
        Harm::Truncate => {
            let bytes = fs::read(path).expect("an entry file");
            fs::write(path, &bytes[..bytes.len() / 2]).expect("truncate");
            None
        }
        Harm::Delete => {
            fs::remove_file(path).expect("delete");
            None
        }
    }
}

/// Every candidate of `show --json` with a key, as `(key, candidate)`.
fn candidates(show: &Json) -> Vec<(String, Json)> {
    let mut out = Vec::new();
    for p in show["phases"].as_array().into_iter().flatten() {
        for c in p["candidates"].as_array().into_iter().flatten() {
            out.push(c.clone());
        }
    }
    out.extend(show.get("final").filter(|f| !f.is_null()).cloned());
    out.into_iter().filter_map(|c| c["key"].as_str().map(|k| (k.to_owned(), c.clone()))).collect()
}

/// `show --json` must not present the damaged run as a result, and every other result it shows
/// must be the reference's.
fn check_show(sb: &Sandbox, reference: &Reference, damaged: &str, what: &str, tally: &mut Tally) {
    let show = sb.run(&["show", "study.lrx", "--json"], Duration::from_secs(60));
    let Ok(json) = show.json() else {
        tally.check(SHOWN, false, || {
            format!("{what}: `show --json` fails: {}", crate::support::tail(&show.stderr, 400))
        });
        return;
    };
    let expected = candidates(&reference.show);
    let mut problems = Vec::new();
    for (key, c) in candidates(&json) {
        if key == damaged {
            if c["status"] == "ok" || c.get("objective").is_some_and(|o| !o.is_null()) {
                problems.push(format!("the damaged run is shown: {c}"));
            }
        } else if c["status"] == "ok"
            // A run can stand in two phases (a phase's baseline is the winner before it), under
            // another name in each: the reference's twin is the same run under the same name.
            && let Some((_, e)) = expected.iter().find(|(k, e)| *k == key && e["variant"] == c["variant"])
            && stable_json(&c) != stable_json(e)
        {
            problems.push(format!("{key} differs from the reference: {c}"));
        }
    }
    tally.check(SHOWN, problems.is_empty(), || format!("{what}: {}", problems.join("; ")));
}

/// The report must not print a damaged `val_loss` that the reference's report does not have.
fn check_report(sb: &Sandbox, reference: &Reference, lie: Option<&str>, what: &str, tally: &mut Tally) {
    let report = sb.run(&["report", "study.lrx", "--out", "report"], Duration::from_secs(60));
    if report.code != Some(0) {
        tally.check(SHOWN, false, || {
            format!("{what}: `report` {}: {}", report.status(), crate::support::tail(&report.stderr, 400))
        });
        return;
    }
    let Some(lie) = lie.and_then(|l| l.parse::<f64>().ok()) else { return };
    let text = lrx::report::format::num(lie);
    let md = fs::read_to_string(sb.path().join("report/report.md")).unwrap_or_default();
    let shown = md.contains(&text) && !reference.report_md.contains(&text);
    tally.check(SHOWN, !shown, || format!("{what}: report.md shows the damaged val_loss {text}"));
}

/// `run` recomputes exactly `n` runs and ends at the reference's results; `cache verify` then
/// no longer mentions `recomputed` (and, when `clean`, reports nothing at all).
fn check_rerun(
    sb: &Sandbox,
    reference: &Reference,
    n: u64,
    recomputed: &str,
    clean: bool,
    what: &str,
    tally: &mut Tally,
) {
    let run = sb.run(&["run", "study.lrx", "--json", "-q"], Duration::from_secs(300));
    let trained = run.json().ok().and_then(|j| j["runs"]["trained"].as_u64());
    tally.check(RECOMPUTED, run.code == Some(0) && trained == Some(n), || {
        format!(
            "{what}: run {} trained {trained:?} runs, expected {n}; {}",
            run.status(),
            crate::support::tail(&run.stderr, 400)
        )
    });
    match read_outputs(&sb.out("study")) {
        Ok(o) => {
            tally.check(EQUAL, o == reference.outputs, || format!("{what}: {}", diff_outputs(&reference.outputs, &o)));
        }
        Err(e) => tally.check(EQUAL, false, || format!("{what}: {e}")),
    }
    let (code, text) = sb.verify(&sb.cache());
    tally.check(CLEAN, (code == Some(0) || !clean) && !text.contains(recomputed), || format!("{what}: {text}"));
}

fn damaged_entries() -> Tally {
    let reference = reference(Kind::Builtin);
    let _turn = crate::support::heavy();
    let seed = seed();
    let mut rng = Rng::new(seed ^ 0xd);
    let mut tally = Tally::new(format!("damaged cache entries, seed {seed} (replay with LRX_FAULT_SEED={seed})"));
    let keys: Vec<&String> = reference.keys.iter().collect();
    let mut case = 0;
    for file in FILES {
        for how in [Harm::Flip, Harm::Truncate, Harm::Delete] {
            let sb = reference.warm_sandbox();
            // A different entry each time: the first phase's, later phases', the final run's.
            let key = keys[case % keys.len()].clone();
            case += 1;
            let dir = entry_dirs(&sb.cache()).into_iter().find(|d| d.ends_with(&key)).expect("the entry");
            let lie = harm(&dir.join(file), how, &mut rng);
            let what = format!("{how:?} of `{file}` of entry {}", &key[..12]);
            let (code, text) = sb.verify(&sb.cache());
            tally.check(DETECTED, code == Some(1) && text.contains(&key), || {
                format!("{what}: verify {code:?}: {}", crate::support::tail(&text, 300))
            });
            check_show(&sb, reference, &key, &what, &mut tally);
            check_report(&sb, reference, lie.as_deref(), &what, &mut tally);
            check_rerun(&sb, reference, 1, &key, true, &what, &mut tally);
        }
    }
    tally
}

/// Puts foreign things into a full cache. Returns their names (what `verify` should report)
/// and the key of the entry replaced by a symlink to another entry.
fn add_foreign(cache: &Path, reference: &Reference) -> (Vec<String>, String) {
    let runs = cache.join("runs");
    let entries: Vec<PathBuf> = entry_dirs(cache);
    let shard = entries[0].parent().expect("a shard").to_owned();
    let keys: Vec<&String> = reference.keys.iter().collect();
    fs::write(runs.join("README.txt"), "notes\n").expect("foreign file");
    fs::write(shard.join("notes.txt"), "notes\n").expect("foreign file in a shard");
    fs::create_dir_all(runs.join("zz").join("not-a-key")).expect("foreign folder");
    fs::write(runs.join("zz").join("not-a-key").join("data.bin"), [0u8, 1, 2]).expect("foreign file");
    fs::write(entries[0].join("extra.bin"), [7u8; 16]).expect("foreign file in an entry");
    let fake = "ee".repeat(32);
    fs::create_dir_all(runs.join("ee").join(&fake)).expect("an empty key-named folder");
    // An entry replaced by a symlink to another entry: valid files, wrong key.
    let victim = entries[1].clone();
    let victim_key = victim.file_name().expect("a name").to_string_lossy().into_owned();
    fs::remove_dir_all(&victim).expect("remove an entry");
    std::os::unix::fs::symlink(&entries[2], &victim).expect("symlink an entry");
    // A file of an entry replaced by a symlink to an identical copy outside the cache.
    let outside = cache.parent().expect("the sandbox").join("outside-result.json");
    let target = entries[3].join("result.json");
    fs::copy(&target, &outside).expect("copy");
    fs::remove_file(&target).expect("remove");
    std::os::unix::fs::symlink(&outside, &target).expect("symlink a file");
    assert!(keys.len() >= 4, "the study has enough runs");
    (
        vec![
            "README.txt".into(),
            "notes.txt".into(),
            "not-a-key".into(),
            "extra.bin".into(),
            fake,
            victim_key.clone(),
            "result.json".into(),
        ],
        victim_key,
    )
}

fn foreign(verify_only: bool) -> Tally {
    let reference = reference(Kind::Builtin);
    let _turn = crate::support::heavy();
    let mut tally = Tally::new("foreign files, folders and symlinks in the cache".into());
    let sb = reference.warm_sandbox();
    let (names, victim) = add_foreign(&sb.cache(), reference);
    let (code, text) = sb.verify(&sb.cache());
    for name in &names {
        tally.check(DETECTED, code == Some(1) && text.contains(name.as_str()), || {
            format!("`{name}`: verify {code:?}: {}", crate::support::tail(&text, 600))
        });
    }
    if verify_only {
        return tally;
    }
    check_show(&sb, reference, &victim, "an entry replaced by a symlink to another", &mut tally);
    check_report(&sb, reference, None, "foreign files", &mut tally);
    // The foreign things stay (they are not lrx's to delete), so `verify` may still list them.
    check_rerun(&sb, reference, 1, &victim, false, "foreign files", &mut tally);
    tally
}

#[test]
fn every_file_of_an_entry_flipped_truncated_or_deleted_is_found_never_shown_and_recomputed() {
    let tally = damaged_entries();
    print_table("Damaged cache entries (4 files × flip, truncate, delete)", &tally.rows("damaged entry file"));
    tally.assert_clean(&[DETECTED, SHOWN, RECOMPUTED, EQUAL, CLEAN]);
}

#[test]
fn foreign_files_folders_and_symlinks_in_the_cache_are_never_shown_or_read() {
    let tally = foreign(false);
    print_table("Foreign files, folders and symlinks in the cache", &tally.rows("foreign things in the cache"));
    tally.assert_clean(&[SHOWN, RECOMPUTED, EQUAL, CLEAN]);
}

#[test]

fn foreign_files_folders_and_symlinks_in_the_cache_are_reported_by_verify() {
    foreign(true).assert_clean(&[DETECTED]);
}
