//! A study budget end to end, on a tiny built-in-trainer study: `max_runs` smaller than the
//! study trains the first runs in listed order and skips the rest; `plan`, `run`, `show`,
//! `results.csv` and `winners.json` say which were skipped and which winners were chosen under
//! the budget; raising `max_runs` trains only the runs that were skipped.

use std::collections::BTreeSet;
use std::path::Path;

use super::harness::{output, text};

/// `lr`: 3 runs; `emb`: its baseline (`lr`'s winner, already a run) and 3 of its own; the final
/// run: 2 seeds. Under `max_runs = 4`, `lr`'s 3 and `emb`'s first are in.
const STUDY: &str = r#"
model { d_model = 16  layers = 1  heads = 2  d_ff = 32  experts = 2  top_k = 1  seq_len = 16 }
data  { corpus = "corpus.txt"  tokens = 20_000 }
train { batch_size = 4  steps = 8  eval_every = 4  log_every = 2  val_batches = 2 }

budget { max_runs = 4 }

objective minimize val_loss

phase lr {
  vary matrix_lr in [0.02, 0.08]
}

phase emb after lr {
  vary embedding_lr in [0.3, 1.0]
  vary scalar_lr in [0.1]
}

final combine(lr, emb) { repeats = 2 }
"#;

fn study(max_runs: usize) -> String {
    STUDY.replace("max_runs = 4", &format!("max_runs = {max_runs}"))
}

/// The labels of the progress lines starting with `word` (`train`, `skip`), phases only.
fn labels(log: &str, word: &str) -> BTreeSet<String> {
    log.lines()
        .filter_map(|l| l.get(9..)?.strip_prefix(word)?.trim_start().split(" (").next().map(str::to_owned))
        .filter(|l| !l.starts_with("final"))
        .collect()
}

#[test]
fn max_runs_skips_the_tail_and_raising_it_trains_only_the_skipped_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("study.lrx"), study(4)).unwrap();
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/genesis.txt"), d.join("corpus.txt"))
        .unwrap();

    let plan = output(d, &["plan", "study.lrx"]);
    let out = text(&plan.stdout);
    assert_eq!(plan.status.code(), Some(0), "{out}{}", text(&plan.stderr));
    assert!(out.contains("budget: at most 4 runs (cached ones count)"), "{out}");
    assert!(out.contains("skipped (budget)"), "plan shows the runs beyond the budget:\n{out}");
    let plan_json: serde_json::Value =
        serde_json::from_slice(&output(d, &["plan", "study.lrx", "--json"]).stdout).unwrap();
    assert_eq!(plan_json["estimate"]["budget"]["max_runs"], 4, "{plan_json}");

    let first = output(d, &["run", "study.lrx"]);
    let log = text(&first.stderr);
    assert_eq!(first.status.code(), Some(0), "skipping is no failure:\n{log}");
    let trained = labels(&log, "train");
    assert_eq!(
        trained,
        BTreeSet::from(
            ["lr baseline", "lr matrix_lr=0.02", "lr matrix_lr=0.08", "emb embedding_lr=0.3"].map(String::from)
        ),
        "the first four runs in listed order:\n{log}"
    );
    let skipped = labels(&log, "skip");
    assert_eq!(skipped, BTreeSet::from(["emb embedding_lr=1.0", "emb scalar_lr=0.1"].map(String::from)), "{log}");
    assert!(log.contains("skipped by the budget") && log.contains("chosen under the budget"), "{log}");

    let show = output(d, &["show", "study.lrx"]);
    let out = text(&show.stdout);
    let row = out.lines().find(|l| l.contains("embedding_lr=1.0") || l.contains("1.0")).unwrap_or_default();
    assert!(out.contains("skipped (budget)"), "show marks the skipped runs:\n{out}\n{row}");
    assert!(text(&show.stderr).contains("chosen under the budget"), "{}", text(&show.stderr));

    let csv = std::fs::read_to_string(d.join("runs/study/results.csv")).unwrap();
    let row = csv.lines().find(|l| l.starts_with("emb,embedding_lr=1.0,")).unwrap();
    assert!(row.contains("skipped") && row.contains("budget"), "{row}");
    assert!(csv.lines().any(|l| l.starts_with("lr,matrix_lr=0.08,") && l.contains(",ok,")), "{csv}");

    let winners: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("runs/study/winners.json")).unwrap()).unwrap();
    let under: BTreeSet<&str> = winners["phases"]["emb"]["chosen_under_budget"]
        .as_array()
        .unwrap_or_else(|| panic!("{winners}"))
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(under, BTreeSet::from(["embedding_lr=1.0", "scalar_lr=0.1"]), "{winners}");
    assert!(winners["phases"]["lr"].get("chosen_under_budget").is_none(), "{winners}");
    assert_eq!(winners["final"]["status"], "skipped", "the final run's second seed is beyond the budget: {winners}");

    // With `time` instead, plan says what is expected to fit, from the cached runs' speed.
    std::fs::write(d.join("study.lrx"), STUDY.replace("max_runs = 4", "time = 1h")).unwrap();
    let out = text(&output(d, &["plan", "study.lrx"]).stdout);
    assert!(out.contains("budget: 1h of training") && out.contains("expected to fit (an estimate)"), "{out}");
    let plan_json: serde_json::Value =
        serde_json::from_slice(&output(d, &["plan", "study.lrx", "--json"]).stdout).unwrap();
    let estimate = &plan_json["estimate"];
    assert_eq!(estimate["budget"]["time_seconds"], 3600.0, "{estimate}");
    let left = estimate["runs_to_train"].as_u64().unwrap() + estimate["runs_waiting"].as_u64().unwrap();
    assert!(left > 0, "{estimate}");
    assert_eq!(estimate["budget"]["expected_to_fit"].as_u64(), Some(left), "tiny runs all fit in an hour: {estimate}");

    // Raised: only what was skipped trains; the four runs in are cache hits.
    std::fs::write(d.join("study.lrx"), study(100)).unwrap();
    let second = output(d, &["run", "study.lrx"]);
    let log = text(&second.stderr);
    assert_eq!(second.status.code(), Some(0), "{log}");
    assert_eq!(labels(&log, "train"), skipped, "{log}");
    assert!(labels(&log, "skip").is_empty(), "{log}");
    let json: serde_json::Value = serde_json::from_slice(&output(d, &["show", "study.lrx", "--json"]).stdout).unwrap();
    assert!(json["runs"].get("skipped").is_none(), "nothing is skipped any more: {json}");
    assert!(
        json["phases"].as_array().unwrap().iter().all(|p| p["status"] == "done" && p.get("under_budget").is_none())
    );
}
