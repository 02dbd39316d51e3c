//! `kill -9`, SIGINT and SIGTERM of `lrx run` at random moments, each followed by `cache verify`
//! and a rerun, until the study completes; then the same again on a fresh cache.
//!
//! A moment is either a delay drawn uniformly from the reference run's duration, or the first
//! sign of a window too short to hit by chance: a folder appearing in `cache/tmp` (an entry
//! being published), the n-th entry appearing (a phase's winner being selected, the next run
//! starting) or the output folder appearing (outputs being written). The schedule comes from
//! one seed (`LRX_FAULT_SEED`), printed with every failure.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::{
    Done, Kind, Reference, Rng, Running, Sandbox, Tally, diff_outputs, end_processes, heavy, leftovers, print_table,
    processes_in, read_outputs, reference, seed, stable_json,
};

/// The checks, as they appear in `RELIABILITY.md`.
const LOST: &str = "finished runs lost";
const CORRUPT: &str = "partial or corrupt entries (cache verify)";
const RERUN: &str = "rerun fails";
const EQUAL: &str = "results differ from the uninterrupted run";
const PARSE: &str = "output files unparseable";
const TEMP: &str = "temporary files left after the rerun";
const ORPHANS: &str = "scripts left running";
const EXIT: &str = "exit code not 130";
const STOPS: &str = "does not stop within 20 s";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    Kill,
    Int,
    Term,
}

impl Fault {
    fn signal(self) -> &'static str {
        match self {
            Fault::Kill => "KILL",
            Fault::Int => "INT",
            Fault::Term => "TERM",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Fault::Kill => "kill -9",
            Fault::Int => "SIGINT",
            Fault::Term => "SIGTERM",
        }
    }
}

/// When to strike.
#[derive(Clone, Copy, Debug)]
enum Trigger {
    /// Within the first 25 ms, once lrx handles signals: it is starting up (parsing, opening
    /// the cache).
    Startup(Duration),
    After(Duration),
    /// A new folder in `cache/tmp`: an entry is being written.
    Publishing,
    /// The cache holds this many entries: a run was just published, the next decision is due.
    Entries(usize),
    /// The output folder exists: outputs are being written.
    Outputs,
}

impl Trigger {
    fn name(self) -> &'static str {
        match self {
            Trigger::Startup(_) => "during start-up",
            Trigger::After(_) => "random delay",
            Trigger::Publishing => "entry being published",
            Trigger::Entries(_) => "just after a publish",
            Trigger::Outputs => "outputs being written",
        }
    }
}

/// What a campaign did and found.
pub(crate) struct Campaign {
    pub(crate) faults: usize,
    pub(crate) rounds: usize,
    pub(crate) by_trigger: BTreeMap<&'static str, usize>,
    pub(crate) tally: Tally,
}

/// Names of the folders directly in `cache/tmp`.
fn tmp_names(cache: &Path) -> BTreeSet<String> {
    fs::read_dir(cache.join("tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn fires(trigger: Trigger, sb: &Sandbox, started: Instant, tmp_before: &BTreeSet<String>) -> bool {
    let cache = sb.cache();
    match trigger {
        Trigger::Startup(d) | Trigger::After(d) => started.elapsed() >= d,
        Trigger::Publishing => tmp_names(&cache).iter().any(|n| n != "command" && !tmp_before.contains(n)),
        Trigger::Entries(n) => crate::support::entry_dirs(&cache).len() >= n,
        Trigger::Outputs => sb.out("study").exists(),
    }
}

/// Short keys (12 hex digits) that the progress log of a killed run reported as finished:
/// lines that count runs and give a result (`[3/7] lr baseline: ok objective 2.64 (0.2s, KEY)`)
/// and name a key of the study.
fn reported_finished(stderr: &str, keys: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let finished =
        |l: &&str| l.trim_start().starts_with('[') && [": ok", ": diverged", ": pruned"].iter().any(|s| l.contains(s));
    for line in stderr.lines().filter(finished) {
        for word in line.split(|c: char| !c.is_ascii_hexdigit()) {
            if word.len() == 12
                && let Some(k) = keys.iter().find(|k| k.starts_with(word))
            {
                found.insert(k.clone());
            }
        }
    }
    found
}

/// Runs `faults` faults of one kind against one study, round after round, each round on a
/// fresh cache and ending with a completed run.
fn campaign(kind: Kind, fault: Fault, faults: usize, seed: u64) -> Campaign {
    let reference = reference(kind);
    let _turn = heavy();
    let mut rng = Rng::new(seed);
    let context = format!(
        "{} of `lrx run` ({}), schedule seed {seed} (replay with LRX_FAULT_SEED={seed})",
        fault.label(),
        kind.label()
    );
    let mut tally = Tally::new(context);
    let mut by_trigger = BTreeMap::new();
    let sb = Sandbox::new(kind);
    let cache = sb.cache();
    let out = sb.out("study");
    let mut done = 0;
    let mut rounds = 0;
    let mut attempt = 0;
    let full = Duration::from_secs_f64(reference.seconds);
    let jobs = if kind == Kind::Command { "2" } else { "1" };
    let started_all = Instant::now();
    while done < faults {
        rounds += 1;
        let _ = fs::remove_dir_all(&cache);
        let _ = fs::remove_dir_all(sb.path().join("runs"));
        let mut in_round = 0;
        loop {
            attempt += 1;
            let before = crate::support::entry_keys(&cache);
            let tmp_before = tmp_names(&cache);
            // Enough faults this round or in all: let the study finish.
            let trigger = if done >= faults || in_round >= 6 {
                None
            } else if attempt == 1 {
                // Start-up is a few milliseconds out of seconds: chance alone rarely hits it.
                Some(Trigger::Startup(Duration::from_millis(5).mul_f64(rng.unit())))
            } else {
                let x = rng.unit();
                // What is left to do shrinks as the cache fills: draw from that.
                let left = 1.0 - before.len() as f64 / reference.trained as f64;
                Some(if x < 0.08 {
                    Trigger::Startup(Duration::from_millis(25).mul_f64(rng.unit()))
                } else if x < 0.6 {
                    Trigger::After(full.mul_f64(rng.unit() * left.max(0.2)))
                } else if x < 0.76 {
                    Trigger::Publishing
                } else if x < 0.9 {
                    Trigger::Entries(before.len() + 1 + rng.below(2))
                } else {
                    Trigger::Outputs
                })
            };
            if matches!(trigger, Some(Trigger::Outputs)) {
                // Outputs of an earlier interrupted attempt would fire the trigger at once.
                let _ = fs::remove_dir_all(&out);
            }
            let tag = format!("a{attempt}");
            let where_ = format!("round {rounds}, attempt {attempt}, trigger {trigger:?}");
            let mut child = sb.spawn(&["run", "study.lrx", "--json", "--jobs", jobs], &tag);
            let hit = strike(&mut child, trigger, fault, &sb, &tmp_before);
            let d = child.finish(Duration::from_secs(if hit { 20 } else { 300 }));
            let completed = d.code == Some(0);
            if hit && fault != Fault::Kill && !completed {
                tally.check(STOPS, !d.timed_out, || format!("{where_}: still running 20 s after the signal"));
                tally.check(EXIT, d.code == Some(130), || {
                    format!(
                        "{where_}: {} after {}; stderr: {}",
                        d.status(),
                        fault.label(),
                        crate::support::tail(&d.stderr, 600)
                    )
                });
            }
            if completed || !hit {
                // It ended on its own: it must have succeeded.
                tally.check(RERUN, completed, || {
                    format!("{where_}: {}; stderr: {}", d.status(), crate::support::tail(&d.stderr, 800))
                });
                if completed {
                    completion(&sb, reference, &before, &d, &where_, &mut tally);
                }
                break;
            }
            done += 1;
            in_round += 1;
            *by_trigger.entry(trigger.map_or("none", Trigger::name)).or_default() += 1;
            after_fault(&sb, reference, &before, &d, &where_, &mut tally);
            assert!(
                started_all.elapsed() < Duration::from_secs(600),
                "the campaign takes too long: {done} faults in {rounds} rounds"
            );
        }
    }
    Campaign { faults: done, rounds, by_trigger, tally }
}

/// Whether the process has a handler for SIGINT and SIGTERM (`SigCgt` of `/proc/PID/status`).
fn handles_signals(pid: u32) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else { return false };
    let caught = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .unwrap_or(0);
    let bit = |sig: i32| 1u64 << (sig - 1);
    caught & bit(libc::SIGINT) != 0 && caught & bit(libc::SIGTERM) != 0
}

/// Waits for the trigger and strikes; false when the run ended first.
fn strike(
    child: &mut Running,
    trigger: Option<Trigger>,
    fault: Fault,
    sb: &Sandbox,
    tmp_before: &BTreeSet<String>,
) -> bool {
    let Some(trigger) = trigger else { return false };
    let started = child.started;
    loop {
        if child.try_done().is_some() {
            return false;
        }
        // A signal is sent only once lrx handles it: before its `main` runs (the dynamic
        // loader's few milliseconds) no program can, and the signal's default ends it.
        if fires(trigger, sb, started, tmp_before) && (fault.signal() == "KILL" || handles_signals(child.pid())) {
            child.signal(fault.signal());
            return true;
        }
        if started.elapsed() > Duration::from_secs(300) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The checks after a fault: nothing half-written, nothing lost, no script left behind.
fn after_fault(
    sb: &Sandbox,
    reference: &Reference,
    before: &BTreeSet<String>,
    d: &Done,
    where_: &str,
    tally: &mut Tally,
) {
    let cache = sb.cache();
    if sb.kind == Kind::Command {
        // A correct lrx takes its script down with it; a `sleep` of the script may outlive
        // it by 0.1 s. A script left running has 0.6 s of work.
        std::thread::sleep(Duration::from_millis(250));
        let left = processes_in(sb.path());
        tally.check(ORPHANS, left.is_empty(), || format!("{where_}: {left:?}"));
        end_processes(&left);
    }
    let (code, text) = sb.verify(&cache);
    tally.check(CORRUPT, code == Some(0) && !text.contains("corrupt\t"), || {
        format!("{where_}: verify {code:?}: {}", crate::support::tail(&text, 600))
    });
    let now = crate::support::entry_keys(&cache);
    let lost: Vec<&String> = before.difference(&now).collect();
    let reported = reported_finished(&d.stderr, &reference.keys);
    let unpublished: Vec<&String> = reported.difference(&now).collect();
    tally.check(LOST, lost.is_empty() && unpublished.is_empty(), || {
        format!("{where_}: entries gone {lost:?}; reported finished but not cached {unpublished:?}")
    });
    let foreign: Vec<&String> = now.difference(&reference.keys).collect();
    tally.check(EQUAL, foreign.is_empty(), || {
        format!("{where_}: entries that the uninterrupted run does not have: {foreign:?}")
    });
    let out = sb.out("study");
    if out.exists() {
        let parsed = read_outputs(&out);
        tally.check(PARSE, parsed.is_ok(), || format!("{where_}: {}", parsed.err().unwrap_or_default()));
    }
    if !d.stdout.trim().is_empty() && d.code == Some(130) {
        let parsed = d.json();
        tally.check(PARSE, parsed.is_ok(), || {
            format!("{where_}: `--json` of the interrupted run: {}", parsed.err().unwrap_or_default())
        });
    }
}

/// The checks when a run completed: it reused every finished run, its results are the
/// reference's, and it left nothing temporary behind.
fn completion(
    sb: &Sandbox,
    reference: &Reference,
    before: &BTreeSet<String>,
    d: &Done,
    where_: &str,
    tally: &mut Tally,
) {
    let cache = sb.cache();
    match d.json() {
        Ok(json) => {
            let cached = json["runs"]["cached"].as_u64().unwrap_or(u64::MAX);
            let trained = json["runs"]["trained"].as_u64().unwrap_or(u64::MAX);
            tally.check(LOST, cached == before.len() as u64 && trained + cached == reference.trained, || {
                format!(
                    "{where_}: {} entries before the rerun, which served {cached} from the cache and trained {trained}",
                    before.len()
                )
            });
        }
        Err(e) => tally.check(RERUN, false, || format!("{where_}: {e}")),
    }
    let outputs = read_outputs(&sb.out("study"));
    tally.check(PARSE, outputs.is_ok(), || format!("{where_}: {}", outputs.clone().err().unwrap_or_default()));
    if let Ok(o) = &outputs {
        tally.check(EQUAL, *o == reference.outputs, || format!("{where_}: {}", diff_outputs(&reference.outputs, o)));
    }
    let show = sb.run(&["show", "study.lrx", "--json"], Duration::from_secs(60));
    let same = show.json().is_ok_and(|j| stable_json(&j) == reference.show);
    tally.check(EQUAL, same, || {
        format!("{where_}: `lrx show --json` differs: {}", crate::support::tail(&show.stdout, 400))
    });
    let left = leftovers(&cache, &sb.out("study"));
    tally.check(TEMP, left.is_empty(), || format!("{where_}: {left:?}"));
}

fn run_and_print(kind: Kind, fault: Fault, faults: usize, salt: u64) -> Campaign {
    let seed = seed() ^ salt;
    let c = campaign(kind, fault, faults, seed);
    let triggers: Vec<String> = c.by_trigger.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let title = format!(
        "{} of `lrx run`, {}: {} faults in {} rounds ({}), seed {seed}",
        fault.label(),
        kind.label(),
        c.faults,
        c.rounds,
        triggers.join(", ")
    );
    print_table(&title, &c.tally.rows(&format!("{} ({})", fault.label(), kind.label())));
    c
}

fn kills(kind: Kind) -> &'static Campaign {
    static BUILTIN: OnceLock<Campaign> = OnceLock::new();
    static COMMAND: OnceLock<Campaign> = OnceLock::new();
    match kind {
        Kind::Builtin => BUILTIN.get_or_init(|| run_and_print(kind, Fault::Kill, 24, 0x9)),
        Kind::Command => COMMAND.get_or_init(|| run_and_print(kind, Fault::Kill, 12, 0x99)),
    }
}

fn interrupts(fault: Fault) -> &'static Campaign {
    static INT: OnceLock<Campaign> = OnceLock::new();
    static TERM: OnceLock<Campaign> = OnceLock::new();
    // Half on each study, so that a script is interrupted too.
    let pair = || {
        let salt = if fault == Fault::Int { 0x2 } else { 0xf };
        let a = run_and_print(Kind::Builtin, fault, 6, salt);
        let b = run_and_print(Kind::Command, fault, 4, salt << 8);
        let mut tally = a.tally.clone();
        for name in b.tally.order.clone() {
            let c = &b.tally.checks[name];
            for i in 0..c.tried {
                let failure = c.failures.get(i).cloned();
                tally.check(name, failure.is_none(), || failure.unwrap_or_default());
            }
        }
        tally.context = format!("{}\n{}", a.tally.context, b.tally.context);
        Campaign { faults: a.faults + b.faults, rounds: a.rounds + b.rounds, by_trigger: a.by_trigger, tally }
    };
    match fault {
        Fault::Int => INT.get_or_init(pair),
        Fault::Term => TERM.get_or_init(pair),
        Fault::Kill => unreachable!("kills are campaigns of their own"),
    }
}

#[test]
fn kill_9_at_random_moments_loses_no_finished_run_and_reads_no_partial_entry() {
    for kind in [Kind::Builtin, Kind::Command] {
        let c = kills(kind);
        assert!(c.faults >= if kind == Kind::Builtin { 24 } else { 12 }, "{} faults", c.faults);
        c.tally.assert_clean(&[LOST, CORRUPT, RERUN, EQUAL, PARSE]);
    }
}

#[test]

fn kill_9_at_random_moments_leaves_no_temporary_files_after_the_rerun() {
    for kind in [Kind::Builtin, Kind::Command] {
        kills(kind).tally.assert_clean(&[TEMP]);
    }
}

#[test]

fn kill_9_of_lrx_takes_the_users_script_down_too() {
    kills(Kind::Command).tally.assert_clean(&[ORPHANS]);
}

#[test]
fn sigint_at_random_moments_loses_nothing_and_the_rerun_continues() {
    interrupts(Fault::Int).tally.assert_clean(&[STOPS, LOST, CORRUPT, RERUN, EQUAL, PARSE, TEMP]);
}

#[test]
fn sigterm_at_random_moments_loses_nothing_and_the_rerun_continues() {
    interrupts(Fault::Term).tally.assert_clean(&[STOPS, LOST, CORRUPT, RERUN, EQUAL, PARSE, TEMP]);
}

#[test]

fn sigint_and_sigterm_exit_130_at_any_moment() {
    for fault in [Fault::Int, Fault::Term] {
        interrupts(fault).tally.assert_clean(&[EXIT]);
    }
}

#[test]

fn an_interrupted_run_stops_the_users_script() {
    for fault in [Fault::Int, Fault::Term] {
        interrupts(fault).tally.assert_clean(&[ORPHANS]);
    }
}
