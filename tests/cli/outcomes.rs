//! Every outcome kept and shown: a study whose candidates fail, diverge to NaN and succeed runs
//! to the end, and `run`, `show`, `report`, `results.csv` and `winners.json` all say what
//! became of each, with reasons; the next `run` retries only the failed one.

use std::path::Path;

use super::harness::{output, text};

/// One phase of four command-trainer candidates: `0.01` fails (exit 3 with a message on
/// stderr), `0.02` reports a NaN loss, `0.03` writes a lot to stderr and succeeds, and the
/// baseline `0.04` succeeds quietly.
const STUDY: &str = r#"
train {
  trainer   = command("sh train.sh {matrix_lr} {out}")
  deps      = ["train.sh"]
  matrix_lr = 0.04
}

objective minimize val_loss

phase lr {
  vary matrix_lr in [0.01, 0.02, 0.03]
}
"#;

/// `$1` is the LR, `$2` the output folder. `FAIL_ONCE` makes 0.01 fail only while the marker
/// file is absent, so a rerun can succeed.
const SCRIPT: &str = r#"
lr="$1"; out="$2"
case "$lr" in
  0.01)
    if [ ! -f fixed ]; then
      echo "loading data..." >&2
      echo "RuntimeError: CUDA out of memory (tried to allocate 2 GiB)" >&2
      exit 3
    fi
    printf 'step,val_loss\n1,2.5\n' > "$out/metrics.csv" ;;
  0.02) printf 'step,val_loss\n1,3.0\n2,nan\n' > "$out/metrics.csv" ;;
  0.03)
    i=0; while [ $i -lt 65536 ]; do echo "warning: line $i of a chatty script, padded to eighty bytes per line....." >&2; i=$((i+1)); done
    printf 'step,val_loss\n1,2.0\n' > "$out/metrics.csv" ;;
  *) printf 'step,val_loss\n1,2.2\n' > "$out/metrics.csv" ;;
esac
"#;

#[test]
fn failed_diverged_and_ok_runs_are_all_shown_and_only_the_failure_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("study.lrx"), STUDY).unwrap();
    std::fs::write(d.join("train.sh"), SCRIPT).unwrap();

    let run = output(d, &["run", "study.lrx"]);
    let err = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "a study with a failed run exits 1:\n{err}");
    assert!(err.contains("CUDA out of memory"), "run prints the reason of the failure:\n{err}");
    assert!(err.contains("failed runs (1; the next `lrx run` retries them)"), "and lists it in its summary:\n{err}");
    assert!(err.contains("exit code 3"), "{err}");

    // The chatty run's whole stderr is kept with its entry; the failed one's with its record.
    let logs: Vec<u64> = std::fs::read_dir(d.join("cache/runs"))
        .unwrap()
        .flatten()
        .flat_map(|shard| std::fs::read_dir(shard.path()).unwrap().flatten())
        .filter_map(|entry| std::fs::metadata(entry.path().join("logs/stderr.log")).ok().map(|m| m.len()))
        .collect();
    assert!(logs.iter().any(|&n| n > 5_000_000), "stderr logs kept: {logs:?}");
    let failures: Vec<_> = std::fs::read_dir(d.join("cache/failures")).unwrap().flatten().collect();
    assert_eq!(failures.len(), 1);
    let kept = std::fs::read_to_string(failures[0].path().join("stderr.log")).unwrap();
    assert!(kept.contains("CUDA out of memory"), "{kept}");

    // The diverged run is a cached result (read back, not quarantined as corrupt).
    assert!(!d.join("cache/corrupt").exists(), "nothing was quarantined:\n{err}");
    let verify = output(d, &["cache", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}{}", text(&verify.stdout), text(&verify.stderr));

    let show = output(d, &["show", "study.lrx"]);
    let out = text(&show.stdout);
    assert!(out.contains("failed: matrix_lr=0.01"), "show lists the failed run:\n{out}");
    assert!(out.contains("CUDA out of memory"), "with its reason:\n{out}");
    assert!(out.contains("diverged"), "and the diverged one:\n{out}");

    let plan = text(&output(d, &["plan", "study.lrx"]).stdout);
    assert!(
        plan.contains("3 cached, 1 to train") && plan.contains("failed, to retry"),
        "plan counts the failure as to train:\n{plan}"
    );

    let csv = std::fs::read_to_string(d.join("runs/study/results.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(header.contains("status") && header.contains("reason"), "{header}");
    // By the variant: other columns (seconds) may hold `0.01` too.
    let failed_row = csv.lines().find(|l| l.starts_with("lr,matrix_lr=0.01,")).unwrap();
    assert!(failed_row.contains("failed") && failed_row.contains("exit"), "{failed_row}");
    assert!(csv.lines().any(|l| l.starts_with("lr,matrix_lr=0.02,") && l.contains("diverged")), "{csv}");

    let winners: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("runs/study/winners.json")).unwrap()).unwrap();
    assert_eq!(winners["phases"]["lr"]["variant"], "matrix_lr=0.03", "{winners}");
    assert_eq!(winners["phases"]["lr"]["chosen_without_failed"][0], "matrix_lr=0.01", "{winners}");

    let report = output(d, &["report", "study.lrx"]);
    assert_eq!(report.status.code(), Some(0), "{}", text(&report.stderr));
    let md = std::fs::read_to_string(d.join("runs/study/report.md")).unwrap();
    assert!(md.contains("CUDA out of memory"), "the report gives the reason");
    assert!(!md.contains("Every run finished"), "and does not claim every run finished");

    // Rerun: only the failed run trains again, and the output says it is a retry.
    std::fs::write(d.join("fixed"), "").unwrap();
    let again = output(d, &["run", "study.lrx", "--json"]);
    let err = text(&again.stderr);
    assert_eq!(again.status.code(), Some(0), "{err}");
    assert!(err.contains("retry") && err.contains("attempt 2"), "the rerun says it retries the failure:\n{err}");
    let json: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(json["runs"]["trained"], 1, "only the failed run trained again: {json}");
    assert_eq!(json["runs"]["failed"], 0, "{json}");
}

/// A tiny built-in-trainer study on a local corpus: 3 + 4 candidates and a final run.
const TINY: &str = r#"
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

final combine(lr, emb) { repeats = 2 }
"#;

fn tiny(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("study.lrx"), text).unwrap();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/genesis.txt");
    std::fs::copy(corpus, dir.path().join("corpus.txt")).unwrap();
    dir
}

/// `[done/total]` of each finished-run line of a log.
fn counts(log: &str) -> Vec<(usize, usize)> {
    log.lines()
        .filter_map(|l| {
            let inner = l.split_once('[')?.1.split_once(']')?.0;
            let (a, b) = inner.split_once('/')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

#[test]
fn the_log_counts_cache_hits_keeps_its_total_and_stamps_every_line() {
    let dir = tiny(TINY);
    let d = dir.path();
    let first = output(d, &["run", "study.lrx"]);
    let log = text(&first.stderr);
    assert_eq!(first.status.code(), Some(0), "{log}");
    let c = counts(&log);
    // 3 + 4 candidates (one of them the same run as `lr`'s winner) and 2 final seeds.
    assert!(c.iter().all(|(_, t)| *t == 9), "the total is known from the start and stays put: {c:?}\n{log}");
    assert!(c.windows(2).all(|w| w[0].0 <= w[1].0), "done never goes back: {c:?}");
    assert_eq!(c.last().map(|x| x.0), Some(9), "{log}");
    let body: Vec<&str> = log.lines().take_while(|l| !l.starts_with("9 runs") && !l.contains(" runs: ")).collect();
    for line in body.iter().filter(|l| !l.starts_with(' ')) {
        let stamp = line.get(..8).unwrap_or("");
        assert!(
            stamp.len() == 8 && stamp.as_bytes()[2] == b':' && stamp.as_bytes()[5] == b':',
            "no timestamp on `{line}`"
        );
    }
    assert!(log.contains("step 4/8") && log.contains("val_loss"), "each evaluation is logged:\n{log}");

    // One new value, too low to win: everything else is a cache hit, and the count says so.
    std::fs::write(d.join("study.lrx"), TINY.replace("[0.02, 0.08]", "[0.02, 0.08, 0.001]")).unwrap();
    let second = output(d, &["run", "study.lrx"]);
    let log = text(&second.stderr);
    let c = counts(&log);
    // The one new run trains after the phase's three cached candidates: it is the 4th of 10.
    assert_eq!(c, vec![(4, 10)], "cache hits count as done:\n{log}");
}

#[test]
fn a_final_run_missing_a_repeat_is_never_shown_as_a_result() {
    let dir = tiny(TINY);
    let d = dir.path();
    let (code, json) = run_json(d);
    assert_eq!(code, 0);
    let final_keys: Vec<String> = std::fs::read_to_string(d.join("runs/study/study.lock.json"))
        .map(|t| {
            serde_json::from_str::<serde_json::Value>(&t).unwrap()["final"]["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap();
    assert_eq!(final_keys.len(), 2, "{json}");
    let rm = output(d, &["cache", "rm", &final_keys[1]]);
    assert_eq!(rm.status.code(), Some(0), "{}", text(&rm.stderr));

    let show = output(d, &["show", "study.lrx", "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert!(shown["final"]["objective"].is_null(), "a partial mean is not the final result: {}", shown["final"]);
    assert_ne!(shown["final"]["status"], "ok", "{}", shown["final"]);
    let table = text(&output(d, &["show", "study.lrx"]).stdout);
    assert!(table.contains("incomplete: 1 of 2 repeats"), "{table}");
    output(d, &["report", "study.lrx"]);
    let md = std::fs::read_to_string(d.join("runs/study/report.md")).unwrap();
    let objective = shown_objective(&json);
    assert!(
        !md.contains(&format!("{objective:.4}")) || !md.contains("(final run)"),
        "the report shows no final result"
    );
}

fn run_json(d: &Path) -> (i32, serde_json::Value) {
    let out = output(d, &["run", "study.lrx", "--json", "-q"]);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stderr)));
    (out.status.code().unwrap_or(-1), json)
}

fn shown_objective(json: &serde_json::Value) -> f64 {
    json["final"]["objective"].as_f64().expect("a complete final run has an objective")
}

#[test]
fn a_throughput_objective_is_warned_about_and_kept_apart_in_tables() {
    let dir = tiny(
        &TINY
            .replace("minimize val_loss", "maximize acc_per_min")
            .replace("final combine(lr, emb) { repeats = 2 }", ""),
    );
    let d = dir.path();
    let out = output(d, &["run", "study.lrx"]);
    let err = text(&out.stderr);
    assert!(err.contains("warning: the objective `acc_per_min`") && err.contains("speed and load"), "{err}");
    let csv = std::fs::read_to_string(d.join("runs/study/results.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let pos =
        |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no `{name}` in {header:?}"));
    assert!(
        pos("acc_per_min") > pos("val_loss") && pos("acc_per_min") > pos("status"),
        "throughput after the metrics: {header:?}"
    );
    assert!(pos("tokens_per_sec") > pos("val_loss"), "{header:?}");
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(row[pos("depends_on_machine")], "true", "{csv}");
}

#[test]
fn outputs_stay_in_their_folder_are_unique_and_fit_the_filesystem() {
    // A study named `...lrx` has the stem `..`: its outputs must not land in the current folder.
    let dir = tiny(TINY);
    let d = dir.path();
    std::fs::write(d.join("...lrx"), TINY.replace("final combine(lr, emb) { repeats = 2 }", "")).unwrap();
    let out = output(d, &["run", "...lrx", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !d.join("results.csv").exists() && !d.join("winners.json").exists(),
        "outputs escaped into the study's folder"
    );
    let folders: Vec<String> = std::fs::read_dir(d.join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    assert!(!folders[0].starts_with('.'), "{folders:?}");

    // Variants whose names differ only in characters a file name cannot hold; a phase name
    // longer than a file name may be.
    let long = "p".repeat(300);
    let study = format!(
        "{}\nphase {long} {{\n  vary data.corpus in [\"a b.txt\", \"a_b.txt\"]\n}}\n",
        TINY.split("phase lr").next().unwrap()
    );
    let dir = tiny(&study);
    let d = dir.path();
    // Different texts: candidates with the same corpus content are one run, listed once.
    let corpus = std::fs::read_to_string(d.join("corpus.txt")).unwrap();
    std::fs::write(d.join("a b.txt"), format!("{corpus}\nAmen.\n")).unwrap();
    std::fs::write(d.join("a_b.txt"), format!("{corpus}\nSelah.\n")).unwrap();
    let out = output(d, &["run", "study.lrx", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let phases: Vec<_> = std::fs::read_dir(d.join("runs/study/histories")).unwrap().flatten().collect();
    assert_eq!(phases.len(), 1);
    assert!(phases[0].file_name().len() <= 255);
    let histories: Vec<String> = std::fs::read_dir(phases[0].path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(histories.len(), 3, "baseline and two variants, none overwriting another: {histories:?}");

    // Another study with the same `--out` is refused; the first one's files stay its own.
    let other = tiny(TINY);
    std::fs::rename(other.path().join("study.lrx"), other.path().join("other.lrx")).unwrap();
    let shared = d.join("runs/study");
    let out = output(other.path(), &["run", "other.lrx", "-q", "--out", shared.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("holds the outputs of another study"), "{}", text(&out.stderr));
}

#[test]
fn files_of_candidates_the_study_no_longer_has_do_not_stay() {
    let dir = tiny(TINY);
    let d = dir.path();
    assert_eq!(run_json(d).0, 0);
    let before = std::fs::read_dir(d.join("runs/study/histories/lr")).unwrap().count();
    std::fs::write(d.join("study.lrx"), TINY.replace("[0.02, 0.08]", "[0.02]")).unwrap();
    assert_eq!(run_json(d).0, 0);
    let after = std::fs::read_dir(d.join("runs/study/histories/lr")).unwrap().count();
    assert_eq!((before, after), (3, 2));
}

#[test]
fn jobs_are_bounded_and_leftovers_are_reported_then_removed() {
    let dir = tiny(TINY);
    let d = dir.path();
    let out = output(d, &["run", "study.lrx", "--jobs", "100000"]);
    assert_eq!(out.status.code(), Some(2), "a usage error, not a panic: {}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("panicked"));

    // Many jobs on a small study: as many threads as runs, not as asked.
    let out = output(d, &["run", "study.lrx", "--jobs", "1000", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_dir(d.join("cache/locks")).unwrap().count(), 0, "lock files are removed");

    // What a process killed while publishing leaves behind.
    let dead = d.join(format!("cache/tmp/{}.999999999.1", "ab".repeat(32)));
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(dead.join("result.json"), "{").unwrap();
    let verify = output(d, &["cache", "verify"]);
    assert!(text(&verify.stdout).contains("leftover"), "verify reports it: {}", text(&verify.stdout));
    let out = output(d, &["run", "study.lrx", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!dead.exists(), "run removes it");
}

#[test]
fn halving_rungs_are_shown_and_pruned_runs_counted() {
    let study = TINY.replace(
        "phase lr {\n  vary matrix_lr in [0.02, 0.08]\n}",
        "phase lr {\n  vary matrix_lr in [0.01, 0.02, 0.04, 0.08]\n  prune = halving(rungs = [4, 8], keep = 1/2)\n}",
    );
    let dir = tiny(&study.replace("final combine(lr, emb) { repeats = 2 }", ""));
    let d = dir.path();
    let out = output(d, &["run", "study.lrx"]);
    let log = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("[rung to step 4]"), "the first rung is shown as such:\n{log}");
    let c = counts(&log);
    let total = c.first().map(|x| x.1);
    assert!(c.iter().all(|x| Some(x.1) == total), "the total counts the rungs to come: {c:?}\n{log}");
    assert!(
        log.contains("2 pruned") || log.contains("3 pruned"),
        "pruned candidates are counted in the summary:\n{log}"
    );
    output(d, &["report", "study.lrx"]);
    let md = std::fs::read_to_string(d.join("runs/study/report.md")).unwrap();
    assert!(!md.contains("0 pruned"), "and in the report");
    // results.csv says at which step each objective was measured.
    let csv = std::fs::read_to_string(d.join("runs/study/results.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let (status, steps) =
        (header.iter().position(|h| *h == "status").unwrap(), header.iter().position(|h| *h == "steps").unwrap());
    for row in csv.lines().skip(1).map(|l| l.split(',').collect::<Vec<_>>()).filter(|r| r[0] == "lr") {
        let want = if row[status] == "pruned" { "4" } else { "8" };
        assert_eq!(row[steps], want, "{row:?}");
    }
}

/// Every metric but those that time the machine (`acc_per_min`).
fn numerics(metrics: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    metrics
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !lrx::spec::measures_machine(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn halving_survivors_continue_from_their_rung_and_end_as_if_trained_straight() {
    let halving = TINY.replace(
        "phase lr {\n  vary matrix_lr in [0.02, 0.08]\n}",
        "phase lr {\n  vary matrix_lr in [0.01, 0.02, 0.04, 0.08]\n  prune = halving(rungs = [4, 8], keep = 1/2)\n}",
    );
    let halving = halving
        .replace("final combine(lr, emb) { repeats = 2 }", "")
        .replace("phase emb after lr {\n  vary embedding_lr in [0.3, 1.0]\n  vary scalar_lr in [0.1]\n}", "");
    let dir = tiny(&halving);
    let (code, json) = run_json(dir.path());
    assert_eq!(code, 0, "{json}");
    let cands = json["phases"][0]["candidates"].as_array().unwrap();
    let survivors: Vec<&serde_json::Value> = cands.iter().filter(|c| c["status"] == "ok").collect();
    assert!(!survivors.is_empty());
    for c in &survivors {
        assert_eq!(c["continued_from_step"], 4, "a survivor trains only the increment from its rung's checkpoint: {c}");
    }
    // The same candidates trained straight to the budget, in a fresh cache: same keys, same
    // metrics, bit for bit.
    let straight = tiny(&halving.replace("  prune = halving(rungs = [4, 8], keep = 1/2)\n", ""));
    let (code, reference) = run_json(straight.path());
    assert_eq!(code, 0);
    for c in &survivors {
        let twin = reference["phases"][0]["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["variant"] == c["variant"])
            .unwrap();
        assert_eq!(c["key"], twin["key"]);
        assert_eq!(numerics(&c["metrics"]), numerics(&twin["metrics"]), "{} resumed vs straight", c["variant"]);
    }
    // The rungs' entries keep their checkpoints; the cache verifies.
    let ls = output(dir.path(), &["cache", "ls", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    assert_eq!(
        rows.as_array().unwrap().iter().filter(|r| r["checkpoint"] == true).count(),
        4,
        "each distinct rung run keeps one: {rows}"
    );
    assert_eq!(output(dir.path(), &["cache", "verify"]).status.code(), Some(0));

    // `gc --checkpoints` deletes them and keeps every result: the cache still verifies and
    // the study is all cache hits.
    let gc = output(dir.path(), &["cache", "gc", "--checkpoints"]);
    assert_eq!(gc.status.code(), Some(0), "{}", text(&gc.stderr));
    assert_eq!(text(&gc.stdout).lines().count(), 4, "each dropped checkpoint's key: {}", text(&gc.stdout));
    assert!(text(&gc.stderr).contains("deleted 4 checkpoints"), "{}", text(&gc.stderr));
    let ls = output(dir.path(), &["cache", "ls", "--json"]);
    let after: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    assert_eq!(after.as_array().unwrap().len(), rows.as_array().unwrap().len(), "no entry is gone");
    assert!(after.as_array().unwrap().iter().all(|r| r["checkpoint"] == false), "{after}");
    assert_eq!(output(dir.path(), &["cache", "verify"]).status.code(), Some(0));
    let (code, again) = run_json(dir.path());
    assert_eq!(code, 0);
    let again_cands = again["phases"][0]["candidates"].as_array().unwrap();
    assert!(again_cands.iter().all(|c| c["cached"] == true), "{again}");
    // A survivor's full run, deleted, trains again from step 0 (its rung's checkpoint is gone)
    // to the same bits.
    let survivor = survivors[0];
    let key = survivor["key"].as_str().unwrap();
    assert_eq!(output(dir.path(), &["cache", "rm", key]).status.code(), Some(0));
    let (code, retrained) = run_json(dir.path());
    assert_eq!(code, 0);
    let twin = retrained["phases"][0]["candidates"].as_array().unwrap().iter().find(|c| c["key"] == key).unwrap();
    assert_eq!(twin["cached"], false);
    assert!(twin["continued_from_step"].is_null(), "trained from the start: {twin}");
    assert_eq!(numerics(&twin["metrics"]), numerics(&survivor["metrics"]));
}

/// A command trainer not told where a rung stops (no `{stop_at}`): its runs must never be
/// keyed as stopped there. Each rung's run is a run of the rung's length, keyed as one.
#[test]
fn a_command_trainer_under_halving_is_keyed_as_what_it_trained() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let study = STUDY.replace(
        "vary matrix_lr in [0.01, 0.02, 0.03]",
        "vary matrix_lr in [0.02, 0.03]\n  prune = halving(rungs = [100, 300], keep = 1/2)",
    );
    std::fs::write(d.join("study.lrx"), &study).unwrap();
    std::fs::write(d.join("train.sh"), SCRIPT).unwrap();
    let (code, json) = run_json(d);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["runs"]["trained"], 4, "three runs of 100 steps, the survivor's of 300: {json}");
    // Without halving, the survivor's run is the same run (cached); the others train 300 steps.
    std::fs::write(d.join("study.lrx"), study.replace("\n  prune = halving(rungs = [100, 300], keep = 1/2)", ""))
        .unwrap();
    let (code, again) = run_json(d);
    assert_eq!(code, 0);
    assert_eq!(again["runs"]["trained"], 2, "only the whole budget's run is shared: {again}");
}

/// `show --json` selects what the tables select: `--phase`, `--top`, `--sort`, and an unknown
/// phase is an error there too.
#[test]
fn show_json_honours_the_table_options() {
    let dir = tiny(TINY);
    let d = dir.path();
    assert_eq!(run_json(d).0, 0);
    let show = |args: &[&str]| {
        let mut all = vec!["show", "study.lrx", "--json"];
        all.extend_from_slice(args);
        let out = output(d, &all);
        (out.status.code(), serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or(serde_json::Value::Null))
    };
    let (code, top) = show(&["--phase", "emb", "--top", "2"]);
    assert_eq!(code, Some(0));
    let phases = top["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 1);
    assert_eq!(phases[0]["name"], "emb");
    let cands = phases[0]["candidates"].as_array().unwrap();
    assert_eq!(cands.len(), 2, "the best two: {cands:?}");
    assert!(cands[0]["objective"].as_f64() <= cands[1]["objective"].as_f64(), "best first");
    assert!(top["final"].is_null(), "another phase than `final` was asked for");
    let (_, by_variant) = show(&["--sort", "variant", "--phase", "lr"]);
    let names: Vec<&str> = by_variant["phases"][0]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["variant"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    assert_eq!(show(&["--phase", "nope"]).0, Some(1), "an unknown phase fails as in text mode");
}
