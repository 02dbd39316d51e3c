//! Sound science end to end: an LR range test's pick is the phase's winning change in every
//! output, noise is named where winners are, and halving honours its rungs.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value as Json;

fn lrx(dir: &Path, args: &[&str]) -> Output {
    Command::new(assert_cmd::cargo::cargo_bin("lrx"))
        .current_dir(dir)
        .args(args)
        .env_remove("LRX_CACHE")
        .env("NO_COLOR", "1")
        .output()
        .expect("lrx runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A folder holding `study.lrx` and the test corpus.
fn study(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("study.lrx"), text).unwrap();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/genesis.txt");
    std::fs::copy(corpus, dir.path().join("corpus.txt")).unwrap();
    dir
}

fn run_json(dir: &Path) -> (i32, Json, String) {
    let out = lrx(dir, &["run", "study.lrx", "--json"]);
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Json::Null);
    (out.status.code().unwrap_or(-1), json, text(&out.stderr))
}

fn phase<'a>(json: &'a Json, name: &str) -> &'a Json {
    json["phases"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()
}

const RANGE: &str = r#"
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

#[test]
fn a_range_test_names_its_pick_as_the_winning_change_everywhere() {
    let dir = study(RANGE);
    let d = dir.path();
    let (code, json, err) = run_json(d);
    assert_eq!(code, 0, "{err}");
    let p = phase(&json, "range_test");
    let found = p["found"]["lr"].as_f64().expect("a found lr");
    let curve = &p["range_test"];
    assert_eq!(curve["pick"].as_f64(), Some(found), "{curve}");
    assert_eq!(curve["rule"], "min / 10");
    let points = curve["points"].as_array().unwrap();
    assert!(points.len() >= 2 && points.iter().all(|q| q.as_array().unwrap().len() == 3), "{curve}");
    // The default pick: a tenth of the LR at the lowest smoothed loss, which is a point of the curve.
    let min_lr = curve["minimum_lr"].as_f64().unwrap();
    assert!((found - min_lr / 10.0).abs() <= 1e-12 * min_lr, "{found} vs {min_lr}");
    assert!(points.iter().any(|q| q[0].as_f64() == Some(min_lr)));
    let label = format!("lr={}", p["found"]["lr"]);

    // `run`'s summary, `show`'s table and summary, `winners.json`: the pick, not the run.
    assert!(err.contains(&format!("found lr = {}", p["found"]["lr"])), "{err}");
    let show = lrx(d, &["show", "study.lrx"]);
    let shown = text(&show.stdout);
    assert!(shown.contains(&format!("found {label}")), "{shown}");
    let winners: Json =
        serde_json::from_str(&std::fs::read_to_string(d.join("runs/study/winners.json")).unwrap()).unwrap();
    let w = &winners["phases"]["range_test"];
    assert_eq!(w["variant"], label.as_str(), "{w}");
    assert_eq!(w["changes"], serde_json::json!({"lr": found}), "{w}");
    assert_eq!(w["range_test"]["minimum_lr"].as_f64(), Some(min_lr), "{w}");

    // Every step's (lr, loss, smoothed), as a CSV beside the other outputs.
    let csv = std::fs::read_to_string(d.join("runs/study/range_tests/range_test.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("step,lr,loss,smoothed"));
    assert_eq!(lines.count(), points.len());

    // The report: the pick in the summary table and the phase, and the loss-vs-LR figure.
    let out = lrx(d, &["report", "study.lrx"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let md = std::fs::read_to_string(d.join("runs/study/report.md")).unwrap();
    assert!(md.contains(&format!("`{label}`")), "the summary names the pick:\n{md}");
    assert!(md.contains("**Pick:**"), "{md}");
    let svg = std::fs::read_to_string(d.join("runs/study/figures/range_test-range-test.svg")).unwrap();
    assert!(svg.contains("pick: lr = ") && svg.contains("lowest smoothed loss"), "{svg}");
}

#[test]
fn the_range_test_options_are_checked() {
    let ok = study(&RANGE.replace("(steps = 40)", "(steps = 40, pick = steepest, stop = 10)"));
    let out = lrx(ok.path(), &["check", "study.lrx"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let bad = study(&RANGE.replace("(steps = 40)", "(steps = 40, stop = 1)"));
    let out = lrx(bad.path(), &["check", "study.lrx"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("`stop` of `find` must be a number above 1") && err.contains("study.lrx:"), "{err}");
    let bad = study(&RANGE.replace("(steps = 40)", "(pick = steep)"));
    let err = text(&lrx(bad.path(), &["check", "study.lrx"]).stderr);
    assert!(err.contains("`pick` must be `min`, `min / N` or `steepest`"), "{err}");
}

/// Three LRs of a command trainer, two seeds each: 0.04 (the baseline, listed again by the
/// sweep) and 0.05 differ by less than their repeats' noise; 0.2 is far worse.
const NOISY: &str = r#"
train {
  trainer   = command("sh train.sh {matrix_lr} {seed} {out}")
  deps      = ["train.sh"]
  matrix_lr = 0.04
}
objective minimize val_loss
phase lr {
  repeats = 2
  vary matrix_lr in [0.04, 0.05, 0.2]
}
"#;

const NOISY_SCRIPT: &str = r#"
lr="$1"; odd=$(( $2 % 2 )); out="$3"
case "$lr:$odd" in
  0.04:0) v=2.000 ;;
  0.04:1) v=2.020 ;;
  0.05:0) v=2.005 ;;
  0.05:1) v=2.025 ;;
  *) v=3.0 ;;
esac
printf 'step,val_loss\n1,%s\n' "$v" > "$out/metrics.csv"
"#;

#[test]
fn a_lead_inside_the_noise_is_named_by_run_show_and_winners_json_and_a_repeated_run_is_listed_once() {
    let dir = study(NOISY);
    let d = dir.path();
    std::fs::write(d.join("train.sh"), NOISY_SCRIPT).unwrap();
    let (code, json, err) = run_json(d);
    assert_eq!(code, 0, "{err}");
    let p = phase(&json, "lr");
    // `matrix_lr=0.04` is the baseline's run: listed once, never its own runner-up.
    let variants: Vec<&str> =
        p["candidates"].as_array().unwrap().iter().map(|c| c["variant"].as_str().unwrap()).collect();
    assert_eq!(variants, ["baseline", "matrix_lr=0.05", "matrix_lr=0.2"], "{p}");
    assert_eq!(p["same_runs"]["matrix_lr=0.04"], "baseline", "{p}");
    // `why` still finds it by the name `plan` gives it.
    let why = lrx(d, &["why", "study.lrx", "lr", "matrix_lr=0.04"]);
    assert_eq!(why.status.code(), Some(0), "{}", text(&why.stderr));
    assert_eq!(p["winner"], "baseline");
    let lead = &p["lead"];
    assert_eq!(lead["runner_up"], "matrix_lr=0.05", "{lead}");
    assert_eq!(lead["within_noise"], true, "{lead}");
    // Pooled over two repeats each, both with std 0.01414: 0.01414 × sqrt(1/2 + 1/2).
    let se = lead["std_error"].as_f64().unwrap();
    assert!((se - 0.02f64 / 2f64.sqrt()).abs() < 1e-9, "{se}");
    assert!((lead["margin"].as_f64().unwrap() - 0.005).abs() < 1e-9, "{lead}");
    assert!(err.contains("within noise of matrix_lr=0.05"), "run's summary says so:\n{err}");

    let show = lrx(d, &["show", "study.lrx"]);
    assert!(text(&show.stdout).contains("within noise of matrix_lr=0.05"), "{}", text(&show.stdout));
    let winners: Json =
        serde_json::from_str(&std::fs::read_to_string(d.join("runs/study/winners.json")).unwrap()).unwrap();
    assert_eq!(winners["phases"]["lr"]["within_noise"], true, "{winners}");
    assert_eq!(winners["phases"]["lr"]["lead"]["runner_up"], "matrix_lr=0.05", "{winners}");

    // results.csv: the objective's std and n over repeats.
    let csv = std::fs::read_to_string(d.join("runs/study/results.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let col = |name: &str| rows[0].iter().position(|c| *c == name).unwrap_or_else(|| panic!("no {name}: {csv}"));
    let base = rows.iter().find(|r| r[1] == "baseline").unwrap();
    assert_eq!(base[col("n")], "2", "{csv}");
    let std: f64 = base[col("std")].parse().unwrap();
    assert!((std - 0.02 / 2f64.sqrt()).abs() < 1e-9, "{csv}");
    assert_eq!(rows.len(), 4, "one row per distinct run:\n{csv}");

    // The report agrees, and compares the winner with the real runner-up, not with itself.
    let out = lrx(d, &["report", "study.lrx"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let md = std::fs::read_to_string(d.join("runs/study/report.md")).unwrap();
    assert!(md.contains("**Close call:** `baseline` leads the runner-up `matrix_lr=0.05`"), "{md}");
    assert!(!md.contains("by 0 ("), "{md}");
}

#[test]
fn without_repeats_a_lead_under_one_percent_is_within_noise_and_above_it_is_not() {
    let one = NOISY.replace("  repeats = 2\n", "");
    let dir = study(&one);
    let d = dir.path();
    std::fs::write(d.join("train.sh"), NOISY_SCRIPT).unwrap();
    let (code, json, err) = run_json(d);
    assert_eq!(code, 0, "{err}");
    let lead = &phase(&json, "lr")["lead"];
    // Seed parity decides: the lead is 0.005 on ~2.0 (0.25 %) with no repeats to measure noise.
    assert_eq!(lead["within_noise"], true, "{lead}");
    assert!(lead["std_error"].is_null(), "{lead}");
    let far = one.replace("[0.04, 0.05, 0.2]", "[0.2]");
    std::fs::write(d.join("study.lrx"), far).unwrap();
    let (_, json, err) = run_json(d);
    assert_eq!(phase(&json, "lr")["lead"]["within_noise"], false, "{json}");
    assert!(!err.contains("within noise"), "{err}");
}

#[test]
fn a_last_halving_rung_below_the_budget_is_an_error() {
    let text_ = r"
train { matrix_lr = 0.04  steps = 300 }
objective minimize val_loss
phase lr {
  prune = halving(rungs = [50, 150], keep = 1/2)
  vary matrix_lr in [0.01, 0.02, 0.08]
}
";
    let dir = study(text_);
    let out = lrx(dir.path(), &["check", "study.lrx"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the last rung of `halving` (150) is below the budget of 300 steps"), "{err}");
    assert!(err.contains("study.lrx:5:"), "{err}");
    std::fs::write(dir.path().join("study.lrx"), text_.replace("[50, 150]", "[50, 150, 300]")).unwrap();
    assert_eq!(lrx(dir.path(), &["check", "study.lrx"]).status.code(), Some(0));
}

/// The range test's pick against a 9-point log sweep of the same tiny model and budget: inside
/// the swept interval and within 3× of the sweep's best (BENCHMARKS.md has the same on larger
/// models).
#[test]
fn the_range_tests_pick_lands_near_the_best_of_a_log_sweep() {
    let text_ = r#"
model { d_model = 16  layers = 1  heads = 2  d_ff = 32  experts = 2  top_k = 1  seq_len = 16 }
data  { corpus = "corpus.txt"  tokens = 20_000 }
train {
  optimizer = adamw
  lr = 1e-3   matrix_lr = lr   embedding_lr = lr   unembedding_lr = lr   scalar_lr = lr
  batch_size = 4  steps = 100  eval_every = 50  val_batches = 2
}
objective minimize val_loss
phase range_test {
  find lr from 1e-5 to 10.0 (steps = 100)
}
phase sweep {
  baseline = false
  vary lr in log(1e-4, 1.0, n = 9)
}
"#;
    let dir = study(text_);
    let (code, json, err) = run_json(dir.path());
    assert_eq!(code, 0, "{err}");
    let pick = phase(&json, "range_test")["found"]["lr"].as_f64().unwrap();
    let sweep = phase(&json, "sweep");
    let best = sweep["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["variant"] == sweep["winner"])
        .and_then(|c| c["changes"]["lr"].as_f64())
        .unwrap();
    assert!((1e-4..=1.0).contains(&pick), "pick {pick} outside the swept interval");
    let ratio = if pick > best { pick / best } else { best / pick };
    assert!(ratio <= 3.0, "pick {pick} vs the sweep's best {best}: {ratio:.2}×\n{err}");
}

#[test]
fn pruned_candidates_are_counted_by_run_and_its_json() {
    let text_ = r#"
model { d_model = 16  layers = 1  heads = 2  d_ff = 32  experts = 2  top_k = 1  seq_len = 16 }
data  { corpus = "corpus.txt"  tokens = 20_000 }
train { batch_size = 4  steps = 8  eval_every = 4  log_every = 2  val_batches = 2 }
objective minimize val_loss
phase lr {
  prune = halving(rungs = [4, 8], keep = 1/2)
  vary matrix_lr in [0.01, 0.02, 0.08]
}
"#;
    let dir = study(text_);
    let (code, json, err) = run_json(dir.path());
    assert_eq!(code, 0, "{err}");
    // Four candidates to step 4, two of them on to step 8 (continued from their checkpoints).
    assert_eq!(json["runs"]["pruned"], 2, "{}", json["runs"]);
    assert!(err.contains(", 2 pruned"), "{err}");
    let csv = std::fs::read_to_string(dir.path().join("runs/study/results.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let col = |name: &str| rows[0].iter().position(|c| *c == name).unwrap();
    let (status, steps) = (col("status"), col("steps"));
    let at: Vec<(&str, &str)> = rows[1..].iter().map(|r| (r[status], r[steps])).collect();
    assert_eq!(at.iter().filter(|r| **r == ("pruned", "4")).count(), 2, "{csv}");
    assert_eq!(at.iter().filter(|r| **r == ("ok", "8")).count(), 2, "{csv}");
}

/// Halving under `warmup_warmdown` (warmdown over the last half of 12 steps): the rung at step 4
/// is measured on a cooldown branch of 2 steps (half of 4), which `--json`, `results.csv` and
/// the rung's cache entry record (with the rung's own metrics beside the branch's); the
/// survivors end as the same runs trained straight through (same keys, same metrics).
/// `cooldown = none` measures the rung where it stops, under other keys.
#[test]
fn halving_measures_a_rung_before_the_warmdown_on_a_cooldown_branch() {
    let text_ = r#"
model { d_model = 16  layers = 1  heads = 2  d_ff = 32  experts = 2  top_k = 1  seq_len = 16 }
data  { corpus = "corpus.txt"  tokens = 20_000 }
train {
  batch_size = 4  steps = 12  eval_every = 4  log_every = 2  val_batches = 2
  schedule = warmup_warmdown(warmup = 0.0, warmdown = 0.5, final = 0.0)
}
objective minimize val_loss
phase lr {
  prune = halving(rungs = [4, 12], keep = 1/2)
  vary matrix_lr in [0.01, 0.02, 0.08]
}
"#;
    let dir = study(text_);
    let (code, json, err) = run_json(dir.path());
    assert_eq!(code, 0, "{err}");
    let cands = phase(&json, "lr")["candidates"].as_array().unwrap().clone();
    let pruned: Vec<&Json> = cands.iter().filter(|c| c["status"] == "pruned").collect();
    assert_eq!(pruned.len(), 2, "{cands:?}");
    assert!(pruned.iter().all(|c| c["cooldown_steps"] == 2), "{pruned:?}");
    assert!(cands.iter().filter(|c| c["status"] == "ok").all(|c| c.get("cooldown_steps").is_none()));
    let csv = std::fs::read_to_string(dir.path().join("runs/study/results.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let col = |name: &str| rows[0].iter().position(|c| *c == name).unwrap();
    let at: Vec<(&str, &str, &str)> =
        rows[1..].iter().map(|r| (r[col("status")], r[col("steps")], r[col("cooldown_steps")])).collect();
    assert_eq!(at.iter().filter(|r| **r == ("pruned", "4", "2")).count(), 2, "{csv}");
    assert_eq!(at.iter().filter(|r| **r == ("ok", "12", "")).count(), 2, "{csv}");

    // Each rung's entry keeps both measurements and is keyed as branched.
    let mut branched = 0;
    for entry in walk(&dir.path().join("cache/runs")) {
        if entry.file_name().is_some_and(|n| n == "result.json") {
            let result: Json = serde_json::from_str(&std::fs::read_to_string(&entry).unwrap()).unwrap();
            if let Some(c) = result.get("cooldown") {
                branched += 1;
                assert_eq!((c["steps"].as_u64(), result["steps"].as_u64()), (Some(2), Some(4)), "{result}");
                assert_ne!(c["at_rung"]["val_loss"], result["metrics"]["val_loss"], "{result}");
                let spec = std::fs::read_to_string(entry.with_file_name("spec.json")).unwrap();
                assert!(spec.contains(r#""cooldown""#), "the key says so: {spec}");
            }
        }
    }
    assert_eq!(branched, 4, "one entry per first-rung run");

    // The survivors are the straight runs: same keys and metrics as a sweep without halving.
    let straight = study(&text_.replace("  prune = halving(rungs = [4, 12], keep = 1/2)\n", ""));
    let (code, reference, err) = run_json(straight.path());
    assert_eq!(code, 0, "{err}");
    for c in cands.iter().filter(|c| c["status"] == "ok") {
        let twin = phase(&reference, "lr")["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["variant"] == c["variant"])
            .unwrap()
            .clone();
        assert_eq!(c["key"], twin["key"]);
        assert_eq!(c["metrics"]["val_loss"], twin["metrics"]["val_loss"], "{} resumed vs straight", c["variant"]);
    }

    // `cooldown = none`: the rung is measured where it stops.
    let none = study(&text_.replace("keep = 1/2)", "keep = 1/2, cooldown = none)"));
    let (code, json, err) = run_json(none.path());
    assert_eq!(code, 0, "{err}");
    let cands = phase(&json, "lr")["candidates"].as_array().unwrap();
    assert!(cands.iter().all(|c| c.get("cooldown_steps").is_none()), "{cands:?}");
    let fmt = lrx(none.path(), &["fmt", "study.lrx"]);
    assert_eq!(fmt.status.code(), Some(0), "{}", text(&fmt.stderr));
    let formatted = std::fs::read_to_string(none.path().join("study.lrx")).unwrap();
    assert!(formatted.contains("prune = halving(rungs = [4, 12], keep = 1 / 2, cooldown = none)"), "{formatted}");
}

/// `cooldown` takes `auto` or `none`, with a suggestion for a near miss.
#[test]
fn a_bad_cooldown_rule_is_an_error_with_a_hint() {
    let dir = study(
        "train { steps = 8 }\nobjective minimize val_loss\nphase lr {\n  prune = halving(rungs = [4, 8], cooldown = nome)\n  vary matrix_lr in [0.01, 0.02]\n}\n",
    );
    let out = lrx(dir.path(), &["check", "study.lrx"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("study.lrx:4:"), "{err}");
    assert!(err.contains("expected one of `auto`, `none`; did you mean `none`?"), "{err}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A script stopped at its rungs cannot be branched: given a late-decaying schedule, `check`
/// warns that an early rung compares before the decay, and `cooldown = none` says the user
/// accepts it. A script given no schedule (one of its own) or a cosine is not warned about.
#[test]
fn a_script_stopped_at_rungs_before_a_late_decay_is_warned_about() {
    let text_ = "train {\n  trainer = command(\"sh train.sh {stop_at} {checkpoint} {config} {out}\")\n  steps = 100\n}\nobjective minimize val_loss\nphase lr {\n  prune = halving(rungs = [20, 100])\n  vary matrix_lr in [0.01, 0.02]\n}\n";
    let dir = study(text_);
    let out = lrx(dir.path(), &["check", "study.lrx"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "a warning, not an error: {err}");
    assert!(err.contains("the rung at step 20 compares the script's runs before their schedule's decay"), "{err}");
    assert!(err.contains("study.lrx:7:"), "{err}");
    let accepted = study(&text_.replace("rungs = [20, 100])", "rungs = [20, 100], cooldown = none)"));
    let out = lrx(accepted.path(), &["check", "study.lrx"]);
    assert!(!text(&out.stderr).contains("decay"), "{}", text(&out.stderr));
    let cosine = study(&text_.replace("steps = 100", "steps = 100\n  schedule = cosine"));
    let out = lrx(cosine.path(), &["check", "study.lrx"]);
    assert!(!text(&out.stderr).contains("decay"), "{}", text(&out.stderr));
    let own = study(&text_.replace(" {config}", ""));
    let out = lrx(own.path(), &["check", "study.lrx"]);
    assert!(!text(&out.stderr).contains("decay"), "{}", text(&out.stderr));
    let warmdown = study(&text_.replace("{config}", "--warmdown {schedule.warmdown}"));
    let out = lrx(warmdown.path(), &["check", "study.lrx"]);
    assert!(text(&out.stderr).contains("before their schedule's decay"), "{}", text(&out.stderr));
}
