//! The engine end to end: the real binary, the real trainer (tiny models, a few steps), a
//! real cache. What reruns after an edit, what survives a crash, what two processes share.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use super::harness::corpus;

/// A tiny study on a local corpus: 2 + 3 candidates and a final run, 8 steps each.
const STUDY: &str = r#"
model { d_model = 16  layers = 1  heads = 2  d_ff = 32  experts = 2  top_k = 1  seq_len = 16 }
data  { corpus = "corpus.txt"  tokens = 20_000 }
train { batch_size = 4  steps = 8  eval_every = 4  log_every = 2  val_batches = 2 }

objective minimize val_loss

phase lr {
  vary matrix_lr in [0.02, 0.08]
}

phase emb after lr {
  vary embedding_lr in [0.3, 1.0]
  vary scalar_lr in [0.1]
}

final combine(lr, emb) { }
"#;

/// A study folder with its own cache.
struct Study {
    dir: tempfile::TempDir,
}

impl Study {
    fn new(text: &str) -> Study {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("study.lrx"), text).expect("write study");
        std::fs::write(dir.path().join("corpus.txt"), corpus()).expect("write corpus");
        Study { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, text: &str) {
        std::fs::write(self.path().join("study.lrx"), text).expect("write study");
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = super::harness::lrx(self.path());
        cmd.args(args);
        cmd
    }

    /// `lrx run study.lrx --json`: exit code and the JSON.
    fn run(&self, extra: &[&str]) -> (i32, Json) {
        let mut args = vec!["run", "study.lrx", "--json", "-q"];
        args.extend_from_slice(extra);
        let out = self.command(&args).output().expect("lrx runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("JSON ({e}):\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().unwrap_or(-1), json)
    }

    fn cache_entries(&self) -> usize {
        let runs = self.path().join("cache/runs");
        std::fs::read_dir(&runs)
            .map_or(0, |shards| shards.flatten().map(|s| std::fs::read_dir(s.path()).map_or(0, Iterator::count)).sum())
    }

    fn entry_dirs(&self) -> Vec<PathBuf> {
        let runs = self.path().join("cache/runs");
        let mut out = Vec::new();
        for shard in std::fs::read_dir(runs).into_iter().flatten().flatten() {
            out.extend(std::fs::read_dir(shard.path()).into_iter().flatten().flatten().map(|e| e.path()));
        }
        out
    }
}

fn runs(json: &Json) -> (u64, u64, u64) {
    let r = &json["runs"];
    (r["total"].as_u64().unwrap(), r["trained"].as_u64().unwrap(), r["cached"].as_u64().unwrap())
}

fn phase<'a>(json: &'a Json, name: &str) -> &'a Json {
    json["phases"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no phase {name}"))
}

fn trained_variants(json: &Json, name: &str) -> BTreeSet<String> {
    phase(json, name)["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["cached"] == false)
        .map(|c| c["variant"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_second_run_trains_nothing() {
    let s = Study::new(STUDY);
    let (code, first) = s.run(&[]);
    assert_eq!(code, 0, "{first}");
    let (total, trained, cached) = runs(&first);
    // lr: baseline + 2; emb: baseline + 3; final (may equal a candidate: counted once).
    assert!(total >= 6, "{first}");
    assert_eq!((trained, cached), (total, 0));
    assert_eq!(s.cache_entries() as u64, total);

    let (code, second) = s.run(&[]);
    assert_eq!(code, 0);
    assert_eq!(runs(&second), (total, 0, total));
    // Same winners and bit-identical objectives from the cache.
    for p in ["lr", "emb"] {
        assert_eq!(phase(&first, p)["winner"], phase(&second, p)["winner"]);
    }
    assert_eq!(first["final"]["objective"], second["final"]["objective"]);
}

#[test]
fn combine_applies_each_phase_winning_changes() {
    let s = Study::new(STUDY);
    let (code, json) = s.run(&[]);
    assert_eq!(code, 0, "{json}");
    let mut expected = serde_json::Map::new();
    for p in ["lr", "emb"] {
        let w = phase(&json, p)["winner"].as_str().unwrap().to_owned();
        let cand = phase(&json, p)["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["variant"] == w.as_str())
            .unwrap()
            .clone();
        expected.extend(cand["changes"].as_object().unwrap().clone());
    }
    assert_eq!(json["final"]["changes"], Json::Object(expected), "{json}");
    let out = s.path().join("runs/study");
    for f in ["results.csv", "winners.json", "study.lock.json", "phases/lr.csv", "phases/emb.csv"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
}

#[test]
fn a_comment_or_a_rename_trains_nothing() {
    let s = Study::new(STUDY);
    let (_, first) = s.run(&[]);
    let total = runs(&first).0;
    let edited = STUDY
        .replace("phase lr {", "# learning rates first\nphase learning_rate {")
        .replace("after lr", "after learning_rate")
        .replace("combine(lr, emb)", "combine(learning_rate, emb)");
    s.write(&edited);
    let (code, second) = s.run(&[]);
    assert_eq!(code, 0, "{second}");
    assert_eq!(runs(&second), (total, 0, total));
}

#[test]
fn new_values_train_only_new_candidates_when_the_winner_stands() {
    let s = Study::new(STUDY);
    let (_, first) = s.run(&[]);
    // A learning rate far too large cannot win, so nothing downstream reruns.
    s.write(&STUDY.replace("[0.02, 0.08]", "[0.02, 0.08, 40.0]"));
    let (code, second) = s.run(&[]);
    assert_eq!(code, 0, "{second}");
    assert_eq!(phase(&second, "lr")["winner"], phase(&first, "lr")["winner"]);
    assert_eq!(trained_variants(&second, "lr"), BTreeSet::from(["matrix_lr=40.0".to_owned()]));
    assert!(trained_variants(&second, "emb").is_empty(), "{second}");
    assert_eq!(second["final"]["cached"], true);
    assert_eq!(runs(&second).1, 1);
}

#[test]
fn a_changed_winner_reruns_the_phases_after_it() {
    let text = STUDY.replace("phase lr {", "phase lr {\n  baseline = false");
    let s = Study::new(&text);
    let (_, first) = s.run(&[]);
    let winner = phase(&first, "lr")["winner"].as_str().unwrap().to_owned();
    let value = winner.trim_start_matches("matrix_lr=");
    // Without its winner, the phase must pick another value; everything after it reruns.
    let others: Vec<&str> = ["0.02", "0.08"].into_iter().filter(|v| *v != value).collect();
    s.write(&text.replace("[0.02, 0.08]", &format!("[{}, 0.05]", others[0])));
    let (code, second) = s.run(&[]);
    assert_eq!(code, 0, "{second}");
    assert_ne!(phase(&second, "lr")["winner"], phase(&first, "lr")["winner"]);
    assert_eq!(trained_variants(&second, "lr"), BTreeSet::from(["matrix_lr=0.05".to_owned()]));
    let emb = phase(&second, "emb")["candidates"].as_array().unwrap().len();
    assert_eq!(trained_variants(&second, "emb").len(), emb, "every emb candidate starts from a new winner: {second}");
}

#[test]
fn a_changed_corpus_trains_everything() {
    let s = Study::new(STUDY);
    let (_, first) = s.run(&[]);
    let total = runs(&first).0;
    std::fs::write(s.path().join("corpus.txt"), corpus().replace("God", "Elohim")).unwrap();
    let (code, second) = s.run(&[]);
    assert_eq!(code, 0, "{second}");
    assert_eq!(runs(&second), (total, total, 0));
}

#[test]
fn a_failed_phase_stops_only_what_comes_after_it() {
    let text = r#"
model { d_model = 16  layers = 1  heads = 2  d_ff = 32  experts = 2  top_k = 1  seq_len = 16 }
data  { corpus = "corpus.txt"  tokens = 20_000 }
train { batch_size = 4  steps = 8  eval_every = 4  log_every = 2  val_batches = 2 }
objective minimize val_loss

phase broken {
  baseline = false
  corpus = "tiny.txt"
  vary matrix_lr in [0.02, 0.04]
}
phase after_broken after broken { vary matrix_lr in [0.03] }
phase fine { vary matrix_lr in [0.02] }
phase after_fine after fine { vary embedding_lr in [0.3] }
"#;
    let s = Study::new(text);
    // Too short for one window: every run of the phase fails (a missing file is refused by
    // the check, before anything runs).
    std::fs::write(s.path().join("tiny.txt"), "In the beginning.").unwrap();
    let (code, json) = s.run(&[]);
    assert_eq!(code, 1, "{json}");
    assert_eq!(phase(&json, "broken")["status"], "failed");
    assert_eq!(phase(&json, "after_broken")["status"], "blocked");
    assert_eq!(phase(&json, "fine")["status"], "done");
    assert_eq!(phase(&json, "after_fine")["status"], "done");
    let reason = phase(&json, "broken")["candidates"][0]["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("too few for windows"), "{reason}");
}

#[test]
fn a_flipped_byte_is_found_by_verify_and_recomputed_by_run() {
    let s = Study::new(STUDY);
    let (_, first) = s.run(&[]);
    let total = runs(&first).0;
    let entry = s.entry_dirs().into_iter().next().unwrap();
    let file = entry.join("result.json");
    let mut bytes = std::fs::read(&file).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x04;
    std::fs::write(&file, bytes).unwrap();

    let verify = s.command(&["cache", "verify"]).output().unwrap();
    assert_eq!(verify.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("corrupt"));

    let (code, second) = s.run(&[]);
    assert_eq!(code, 0, "{second}");
    assert_eq!(runs(&second), (total, 1, total - 1));
    assert_eq!(second["final"]["objective"], first["final"]["objective"], "recomputed bit for bit");
    assert_eq!(s.command(&["cache", "verify"]).output().unwrap().status.code(), Some(0));
}

/// A study slow enough to be interrupted: 6 runs of 40 steps.
fn slow_study() -> String {
    STUDY.replace("steps = 8  eval_every = 4", "steps = 40  eval_every = 20").replace("[0.3, 1.0]", "[0.3, 1.0, 2.0]")
}

fn spawn_run(s: &Study) -> Child {
    s.command(&["run", "study.lrx", "-q"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn lrx")
}

#[test]
fn kill_9_at_any_point_loses_no_finished_run() {
    let s = Study::new(&slow_study());
    let mut last_entries = 0;
    for delay_ms in [300u64, 1500, 3000] {
        let mut child = spawn_run(&s);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().expect("kill -9");
        let _ = child.wait();
        let entries = s.cache_entries();
        assert!(entries >= last_entries, "entries never disappear");
        last_entries = entries;
        // Whatever is in the cache verifies: a killed writer leaves no partial entry.
        let verify = s.command(&["cache", "verify"]).output().unwrap();
        assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stdout));
    }
    let (code, json) = s.run(&[]);
    assert_eq!(code, 0, "{json}");
    let (total, trained, cached) = runs(&json);
    assert_eq!(cached as usize, last_entries, "every finished run is reused");
    assert_eq!(trained + cached, total);
}

#[test]
fn ctrl_c_stops_gracefully_and_a_rerun_continues() {
    let s = Study::new(&slow_study());
    let child = s.command(&["run", "study.lrx"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    // Wait for the first run to be published, then interrupt the next one.
    let start = Instant::now();
    while s.cache_entries() == 0 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let pid = child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().expect("kill -INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let kept = s.cache_entries();
    assert!(kept >= 1);
    let verify = s.command(&["cache", "verify"]).output().unwrap();
    assert_eq!(verify.status.code(), Some(0));
    let (code, json) = s.run(&[]);
    assert_eq!(code, 0);
    assert_eq!(runs(&json).2 as usize, kept);
}

#[test]
fn two_processes_on_one_cache_train_each_key_once() {
    let s = Study::new(&STUDY.replace("steps = 8  eval_every = 4", "steps = 24  eval_every = 12"));
    let spawn = || {
        s.command(&["run", "study.lrx", "--json", "-q"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn lrx")
    };
    let (a, b) = (spawn(), spawn());
    let parse = |c: Child| -> Json {
        let out = c.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (ja, jb) = (parse(a), parse(b));
    let (total, ta, _) = runs(&ja);
    let (_, tb, _) = runs(&jb);
    assert_eq!(ta + tb, total, "each key trained by exactly one process: {ta} + {tb} != {total}");
    assert_eq!(s.cache_entries() as u64, total);
    assert_eq!(ja["final"]["objective"], jb["final"]["objective"]);
}

#[test]
fn show_reads_the_cache_and_plan_reports_it() {
    let s = Study::new(STUDY);
    let before = s.command(&["show", "study.lrx", "--json"]).output().unwrap();
    assert_eq!(before.status.code(), Some(0));
    let before: Json = serde_json::from_slice(&before.stdout).unwrap();
    assert_eq!(phase(&before, "emb")["status"], "waiting");
    assert!(!s.path().join("cache").exists(), "reading commands leave no cache folder behind");
    let plan = |s: &Study| -> Json {
        serde_json::from_slice(&s.command(&["plan", "study.lrx", "--json"]).output().unwrap().stdout).unwrap()
    };
    let fresh = plan(&s);
    assert_eq!(fresh["estimate"]["runs_cached"], 0);
    assert_eq!(fresh["estimate"]["runs_to_train"], 3, "the first phase's runs are known");
    assert_eq!(fresh["final"]["status"], "waiting");
    let (_, ran) = s.run(&[]);
    let after_plan = plan(&s);
    assert_eq!(after_plan["estimate"]["runs_to_train"], 0);
    assert_eq!(after_plan["estimate"]["runs_waiting"], 0);
    assert_eq!(after_plan["estimate"]["runs_cached"].as_u64(), Some(runs(&ran).0));
    let after = s.command(&["show", "study.lrx", "--json"]).output().unwrap();
    let after: Json = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(phase(&after, "emb")["status"], "done");
    assert_eq!(runs(&after).1, 0, "show trains nothing");
}

#[test]
fn an_lr_range_test_feeds_the_phase_after_it() {
    let text = r#"
model { d_model = 16  layers = 1  heads = 2  d_ff = 32  experts = 2  top_k = 1  seq_len = 16 }
data  { corpus = "corpus.txt"  tokens = 20_000 }
train {
  optimizer = adamw
  lr = 1e-3   matrix_lr = lr   embedding_lr = lr   unembedding_lr = lr   scalar_lr = lr
  batch_size = 4  steps = 8  eval_every = 4  log_every = 2  val_batches = 2
}
objective minimize val_loss
phase range_test {
  find lr from 1e-5 to 10.0 (steps = 40)
}
phase refine after range_test {
  vary lr in [base * 0.5, base * 2]
}
"#;
    let s = Study::new(text);
    let (code, json) = s.run(&[]);
    assert_eq!(code, 0, "{json}");
    let found = phase(&json, "range_test")["found"]["lr"].as_f64().expect("a found lr");
    assert!(found > 1e-6 && found < 1.0, "{found}");
    let refine = phase(&json, "refine");
    assert_eq!(refine["status"], "done");
    // The refine phase starts from the found value: its variants are relative to it.
    let lrs: Vec<f64> =
        refine["candidates"].as_array().unwrap().iter().filter_map(|c| c["changes"]["lr"].as_f64()).collect();
    assert_eq!(lrs.len(), 2, "{refine}");
    assert!(
        (lrs[0] - found * 0.5).abs() < 1e-12 * found.max(1.0) && (lrs[1] - found * 2.0).abs() < 1e-9,
        "{lrs:?} vs {found}"
    );
}

#[test]
fn successive_halving_trains_the_best_to_the_full_budget() {
    let text = STUDY.replace(
        "vary matrix_lr in [0.02, 0.08]",
        "prune = halving(rungs = [4, 8], keep = 1/2)\n  vary matrix_lr in [0.01, 0.02, 0.08]",
    );
    let s = Study::new(&text);
    let (code, json) = s.run(&[]);
    assert_eq!(code, 0, "{json}");
    let cands = phase(&json, "lr")["candidates"].as_array().unwrap().clone();
    assert_eq!(cands.len(), 4);
    let pruned = cands.iter().filter(|c| c["status"] == "pruned").count();
    assert_eq!(pruned, 2, "half of four are dropped at the first rung: {cands:?}");
    let winner = phase(&json, "lr")["winner"].as_str().unwrap();
    let w = cands.iter().find(|c| c["variant"] == winner).unwrap();
    assert_eq!(w["status"], "ok");
    // 4 runs to step 4, 2 more to the full budget (a different key: the early stop is identity).
    let (total, trained, _) = runs(&json);
    let emb = phase(&json, "emb")["candidates"].as_array().unwrap().len() as u64;
    assert!(total >= 6 + emb - 1 && trained == total, "{total} {trained}");
}

/// The cells of the Markdown table row whose variant cell is `` `variant` `` (winner rows are
/// bold and starred).
fn report_row(md: &str, section: &str, variant: &str) -> Vec<String> {
    let body = md.split(&format!("## Phase `{section}`")).nth(1).unwrap_or_else(|| panic!("no section {section}"));
    let body = body.split("\n## ").next().unwrap();
    body.lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| l.split('|').map(|c| c.trim().to_owned()).collect::<Vec<_>>())
        .find(|cells| cells.iter().any(|c| c.trim_matches('*').trim_end_matches(" ★").trim_matches('`') == variant))
        .unwrap_or_else(|| panic!("no row for {variant} in {section}"))
}

#[test]
fn the_report_of_a_real_study_matches_its_cached_results() {
    let s = Study::new(STUDY);
    let (code, ran) = s.run(&[]);
    assert_eq!(code, 0);
    let out = s.command(&["report", "study.lrx"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let md = std::fs::read_to_string(s.path().join("runs/study/report.md")).unwrap();
    for p in ["lr", "emb"] {
        let header = md
            .split(&format!("## Phase `{p}`"))
            .nth(1)
            .unwrap()
            .lines()
            .find(|l| l.starts_with("| # "))
            .unwrap()
            .to_owned();
        let columns: Vec<String> = header.split('|').map(|c| c.trim().to_owned()).collect();
        let col = |name: &str| {
            columns.iter().position(|c| c.starts_with(name)).unwrap_or_else(|| panic!("no column {name} in {header}"))
        };
        for c in phase(&ran, p)["candidates"].as_array().unwrap() {
            let row = report_row(&md, p, c["variant"].as_str().unwrap());
            let objective = c["objective"].as_f64().unwrap();
            assert_eq!(row[col("objective")], lrx::report::format::num(objective), "{p} {}", c["variant"]);
            let acc = c["metrics"]["val_accuracy"].as_f64().unwrap();
            assert_eq!(row[col("val_accuracy")], lrx::report::format::num(acc));
            if c["variant"] == phase(&ran, p)["winner"] {
                assert!(row.iter().any(|cell| cell.contains('★')), "winner marked: {row:?}");
            }
        }
    }
    // Every figure is an SVG that names each candidate of its phase.
    let figures = s.path().join("runs/study/figures");
    let loss = std::fs::read_to_string(figures.join("lr-loss.svg")).unwrap();
    for c in phase(&ran, "lr")["candidates"].as_array().unwrap() {
        assert!(loss.contains(c["variant"].as_str().unwrap()), "legend lists {}", c["variant"]);
    }
    assert!(loss.starts_with("<svg") || loss.starts_with("<?xml"), "an SVG document");
    let html = std::fs::read_to_string(s.path().join("runs/study/report.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("src=\"http") && !html.contains("href=\"http"), "self-contained");
    // Nothing was trained by the report.
    assert_eq!(runs(&s.run(&[]).1).1, 0);
}

#[test]
fn a_command_trainer_runs_the_users_script_and_its_deps_are_part_of_identity() {
    // The user's "training script": writes a loss that is lowest at lr = 0.05, and a history.
    let script = r#"#!/bin/sh
# usage: train.sh LR OUT
lr=$1; out=$2
awk -v lr="$lr" 'BEGIN { d = lr - 0.05; printf "{\"val_loss\": %.6f, \"val_accuracy\": 0.5}\n", 1 + d * d * 100 }' > "$out/metrics.json"
printf 'step,train_loss\n1,2.0\n2,1.5\n' > "$out/metrics.csv"
"#;
    let text = r#"
train {
  trainer = command("sh train.sh {matrix_lr} {out}")
  deps = ["train.sh"]
}
objective minimize val_loss
phase lr { vary matrix_lr in [0.01, 0.05, 0.2] }
phase fails after lr { vary matrix_lr in [base * 2] trainer = command("sh missing.sh {out}") baseline = false }
"#;
    let s = Study::new(text);
    std::fs::write(s.path().join("train.sh"), script).unwrap();
    let (code, json) = s.run(&[]);
    assert_eq!(code, 1, "the `fails` phase fails: {json}");
    assert_eq!(phase(&json, "lr")["winner"], "matrix_lr=0.05");
    assert_eq!(phase(&json, "fails")["status"], "failed");
    let reason = phase(&json, "fails")["candidates"][0]["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("missing.sh") && reason.contains("exited"), "{reason}");
    let (_, again) = s.run(&[]);
    assert_eq!(trained_variants(&again, "lr").len(), 0, "cached");
    // A changed dependency is a different trainer: everything of it reruns.
    std::fs::write(s.path().join("train.sh"), format!("{script}\n# v2\n")).unwrap();
    let (_, third) = s.run(&[]);
    assert_eq!(trained_variants(&third, "lr").len(), 4);
}

#[test]
fn train_of_a_candidate_reproduces_the_engines_run_bit_for_bit() {
    let s = Study::new(STUDY);
    let (_, ran) = s.run(&[]);
    let cand = phase(&ran, "emb")["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["variant"] == "embedding_lr=1.0")
        .unwrap()
        .clone();
    let out = s
        .command(&["train", "study.lrx", "--phase", "emb", "--variant", "embedding_lr=1.0", "--json", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let one: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(one["key"], cand["key"], "the same run has the same key");
    assert_eq!(one["metrics"]["val_loss"], cand["metrics"]["val_loss"], "and the same result");
    // The root config with an override, and a phase that does not exist.
    let root = s.command(&["train", "study.lrx", "--set", "steps=4", "--json", "-q"]).output().unwrap();
    let root: Json = serde_json::from_slice(&root.stdout).unwrap();
    assert_eq!(root["steps"], 4);
    let bad = s.command(&["train", "study.lrx", "--phase", "embb"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("did you mean `emb`?"));
}
