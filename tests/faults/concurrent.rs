//! Several `lrx run` at once on one cache: three processes on one study (sharing its output
//! folder too), and two overlapping studies. Each key must be trained exactly once, and every
//! output file must be complete, parseable and equal to an uninterrupted single run's.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::{
    Kind, Sandbox, Tally, diff_outputs, heavy, leftovers, print_table, read_outputs, reference, stable_json,
};

const ONCE: &str = "a key trained twice or never";
const EXIT: &str = "a process did not exit 0";
const EQUAL: &str = "results differ from a single uninterrupted run";
const PARSE: &str = "output files incomplete or unparseable";
const CORRUPT: &str = "corrupt entries (cache verify)";
const TEMP: &str = "temporary files left";

/// Study `other`: the first phase and part of the second shared with `study`.
const OTHER_PHASE: (&str, &str) = ("vary embedding_lr in [0.3, 1.0]", "vary embedding_lr in [1.0, 2.0]");

fn three_processes(kind: Kind, tally: &mut Tally) {
    let reference = reference(kind);
    let _turn = heavy();
    let sb = Sandbox::new(kind);
    let procs: Vec<_> = (0..3).map(|i| sb.spawn(&["run", "study.lrx", "--json", "-q"], &format!("p{i}"))).collect();
    let done: Vec<_> = procs.into_iter().map(|p| p.finish(Duration::from_secs(300))).collect();
    let mut trained = 0;
    for (i, d) in done.iter().enumerate() {
        tally.check(EXIT, d.code == Some(0), || {
            format!("{}: process {i}: {}; {}", kind.label(), d.status(), crate::support::tail(&d.stderr, 600))
        });
        match d.json() {
            Ok(j) => {
                trained += j["runs"]["trained"].as_u64().unwrap_or(0);
                tally.check(EQUAL, stable_json(&j) == reference.run_json, || {
                    format!("{}: process {i}'s `--json` differs", kind.label())
                });
            }
            Err(e) => tally.check(PARSE, false, || format!("{}: process {i}: {e}", kind.label())),
        }
    }
    tally.check(ONCE, trained == reference.trained, || {
        format!("{}: {trained} runs trained by three processes, the study has {}", kind.label(), reference.trained)
    });
    tally.check(ONCE, crate::support::entry_keys(&sb.cache()) == reference.keys, || {
        format!("{}: the cache's keys differ from the reference's", kind.label())
    });
    let outputs = read_outputs(&sb.out("study"));
    tally.check(PARSE, outputs.is_ok(), || format!("{}: {}", kind.label(), outputs.clone().err().unwrap_or_default()));
    if let Ok(o) = &outputs {
        tally.check(EQUAL, *o == reference.outputs, || {
            format!("{}: {}", kind.label(), diff_outputs(&reference.outputs, o))
        });
    }
    let (code, text) = sb.verify(&sb.cache());
    tally.check(CORRUPT, code == Some(0), || format!("{}: {text}", kind.label()));
    let left = leftovers(&sb.cache(), &sb.out("study"));
    tally.check(TEMP, left.is_empty(), || format!("{}: {left:?}", kind.label()));
}

fn two_studies(tally: &mut Tally) {
    let a = reference(Kind::Builtin);
    let _turn = heavy();
    let other_text = Kind::Builtin.text().replace(OTHER_PHASE.0, OTHER_PHASE.1);
    assert_ne!(other_text, Kind::Builtin.text(), "the second study differs");
    // The reference of `other`: alone, on a cache that already holds `study`'s runs.
    let solo = a.warm_sandbox();
    std::fs::write(solo.path().join("other.lrx"), &other_text).expect("write the study");
    let b = solo.run(&["run", "other.lrx", "--json", "-q"], Duration::from_secs(300));
    assert_eq!(b.code, Some(0), "{b:?}");
    let b_json = stable_json(&b.json().expect("JSON"));
    let b_outputs = read_outputs(&solo.out("other")).expect("outputs");
    let union: BTreeSet<String> = crate::support::entry_keys(&solo.cache());

    let sb = Sandbox::new(Kind::Builtin);
    std::fs::write(sb.path().join("other.lrx"), &other_text).expect("write the study");
    let pa = sb.spawn(&["run", "study.lrx", "--json", "-q"], "study");
    let pb = sb.spawn(&["run", "other.lrx", "--json", "-q"], "other");
    let (da, db) = (pa.finish(Duration::from_secs(300)), pb.finish(Duration::from_secs(300)));
    let mut trained = 0;
    for (name, d, expected) in [("study", &da, &a.run_json), ("other", &db, &b_json)] {
        tally.check(EXIT, d.code == Some(0), || {
            format!("two studies: `{name}`: {}; {}", d.status(), crate::support::tail(&d.stderr, 600))
        });
        match d.json() {
            Ok(j) => {
                trained += j["runs"]["trained"].as_u64().unwrap_or(0);
                tally.check(EQUAL, stable_json(&j) == *expected, || {
                    format!("two studies: `{name}`'s `--json` differs from its run alone")
                });
            }
            Err(e) => tally.check(PARSE, false, || format!("two studies: `{name}`: {e}")),
        }
    }
    tally.check(ONCE, trained == union.len() as u64, || {
        format!("two studies: {trained} runs trained, the two studies have {} distinct runs", union.len())
    });
    tally.check(ONCE, crate::support::entry_keys(&sb.cache()) == union, || {
        "two studies: the cache's keys differ from the union of the studies' runs".into()
    });
    for (name, expected) in [("study", &a.outputs), ("other", &b_outputs)] {
        let outputs = read_outputs(&sb.out(name));
        tally.check(PARSE, outputs.is_ok(), || {
            format!("two studies: `{name}`: {}", outputs.clone().err().unwrap_or_default())
        });
        if let Ok(o) = &outputs {
            tally.check(EQUAL, o == expected, || format!("two studies: `{name}`: {}", diff_outputs(expected, o)));
        }
    }
    let (code, text) = sb.verify(&sb.cache());
    tally.check(CORRUPT, code == Some(0), || format!("two studies: {text}"));
    let left = leftovers(&sb.cache(), &sb.out("other"));
    tally.check(TEMP, left.is_empty(), || format!("two studies: {left:?}"));
}

#[test]
fn three_processes_on_one_study_and_two_overlapping_studies_train_each_key_once() {
    let mut three = Tally::new("three `lrx run` of one study on one cache and one output folder".into());
    for kind in [Kind::Builtin, Kind::Command] {
        three_processes(kind, &mut three);
    }
    let mut two = Tally::new("two overlapping studies at once on one cache".into());
    two_studies(&mut two);
    print_table(
        "Concurrent runs",
        &format!("{}{}", three.rows("3 processes, one study (both trainers)"), two.rows("2 overlapping studies")),
    );
    three.assert_clean(&[EXIT, ONCE, EQUAL, PARSE, CORRUPT, TEMP]);
    two.assert_clean(&[EXIT, ONCE, EQUAL, PARSE, CORRUPT, TEMP]);
}
