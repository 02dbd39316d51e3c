//! The user's own training script, first-class: live progress and divergence through the real
//! binary, and `pipelines/train_tiny.py` under successive halving, continued rung to rung from
//! its own checkpoints (or, declared `resumable = false`, rung runs keyed as runs that long).
//!
//! The tiny example needs `python3`; without it those tests say so and pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as Json;

fn lrx(dir: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("lrx"));
    cmd.current_dir(dir).env_remove("LRX_CACHE").env("NO_COLOR", "1");
    cmd
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("a file");
}

/// `lrx run FILE --json` in `dir`: its output and the JSON.
fn run_json(dir: &Path, file: &str) -> (Output, Json) {
    let out = lrx(dir).args(["run", file, "--json"]).output().expect("run lrx");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("JSON ({e}):\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr)));
    (out, json)
}

fn candidates<'a>(json: &'a Json, phase: &str) -> &'a Vec<Json> {
    let p = json["phases"].as_array().unwrap().iter().find(|p| p["name"] == phase).expect("the phase");
    p["candidates"].as_array().unwrap()
}

fn candidate<'a>(json: &'a Json, phase: &str, variant: &str) -> &'a Json {
    candidates(json, phase).iter().find(|c| c["variant"] == variant).unwrap_or_else(|| panic!("{variant}: {json}"))
}

/// A folder holding a copy of the tiny example, or `None` (said on stderr) without `python3`.
fn tiny_example() -> Option<tempfile::TempDir> {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED: `python3` is not installed; the tiny example needs it");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/train_tiny.py");
    std::fs::copy(script, dir.path().join("train_tiny.py")).expect("copy the example");
    Some(dir)
}

/// What the script says it trained in each cached run (its stdout, kept with the entry):
/// `(resumed at, stopped at, budget)`.
fn trained(cache: &Path) -> Vec<(u64, u64, u64)> {
    let mut logs = Vec::new();
    find(cache, "stdout.log", &mut logs);
    let mut out: Vec<(u64, u64, u64)> = logs
        .iter()
        .map(|log| {
            let text = std::fs::read_to_string(log).unwrap();
            // `trained steps 41..100 (resumed at step 40) of 160`
            let nums: Vec<u64> = text
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap())
                .collect();
            assert_eq!(nums.len(), 4, "{text}");
            (nums[2], nums[1], nums[3])
        })
        .collect();
    out.sort_unstable();
    out
}

fn find(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            find(&p, name, out);
        } else if p.file_name().is_some_and(|n| n == name) {
            out.push(p);
        }
    }
}

const TINY: &str = "python3 train_tiny.py --lr {matrix_lr} --steps {steps} --seed {seed} --out {out}";

/// A halving study; `trainer` is the whole `command(...)`.
fn halving_study(trainer: &str, lrs: &str) -> String {
    format!(
        "train {{\n  trainer = {trainer}\n  deps = [\"train_tiny.py\"]\n  steps = 160\n}}\n\nobjective minimize val_loss\n\nphase lr {{\n  baseline = false\n  vary matrix_lr in [{lrs}]\n  prune = halving(rungs = [40, 100, 160], keep = 1/2)\n}}\n"
    )
}

#[test]
fn halving_continues_the_script_from_its_checkpoints_and_ends_as_a_straight_run() {
    let Some(dir) = tiny_example() else { return };
    let cmd = format!("{TINY} --stop-at {{stop_at}} --checkpoint {{checkpoint}}");
    write(dir.path(), "study.lrx", &halving_study(&format!("command(\"{cmd}\")"), "0.5, 2.0, 5.0"));
    let (out, json) = run_json(dir.path(), "study.lrx");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Three to 40, two on to 100, one on to 160: each run trains only its rung's increment.
    assert_eq!(
        trained(&dir.path().join("cache")),
        [(0, 40, 160), (0, 40, 160), (0, 40, 160), (40, 100, 160), (40, 100, 160), (100, 160, 160)],
        "(resumed at, stopped at, budget) of every run, from the script's own log"
    );
    let winner = candidates(&json, "lr").iter().find(|c| c["status"] == "ok").expect("a survivor").clone();
    let lr =
        winner["config"]["matrix_lr"].as_f64().or_else(|| winner["variant"].as_str()?.split('=').nth(1)?.parse().ok());
    let lr = lr.unwrap_or_else(|| panic!("the winner's lr: {winner}"));

    // The same run trained straight through, in a fresh cache: the same numbers, bit for bit.
    let straight = tiny_example().unwrap();
    let study = format!(
        "train {{\n  trainer = command(\"{cmd}\")\n  deps = [\"train_tiny.py\"]\n  steps = 160\n}}\n\nphase p {{\n  baseline = false\n  vary matrix_lr in [{lr}]\n}}\n"
    );
    write(straight.path(), "study.lrx", &study);
    let (out, again) = run_json(straight.path(), "study.lrx");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(trained(&straight.path().join("cache")), [(0, 160, 160)]);
    assert_eq!(candidates(&again, "p")[0]["metrics"], winner["metrics"], "resumed = straight");
}

#[test]
fn a_script_that_cannot_resume_runs_each_rung_as_its_own_run_that_long() {
    let Some(dir) = tiny_example() else { return };
    // Told where to stop but declared not resumable, and not told at all: the same runs.
    for trainer in
        [format!("command(\"{TINY} --stop-at {{stop_at}}\", resumable = false)"), format!("command(\"{TINY}\")")]
    {
        let study = halving_study(&trainer, "0.5, 2.0, 5.0");
        write(dir.path(), "study.lrx", &study);
        let (out, json) = run_json(dir.path(), "study.lrx");
        assert!(out.status.success(), "{}\n{study}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(candidates(&json, "lr").len(), 3);
    }
    let runs = trained(&dir.path().join("cache"));
    // Each rung's run trained from step 0 over a budget of the rung's length: 40 and 100 as
    // runs of 40 and 100 steps, never a key claiming a stop at a rung.
    assert!(runs.iter().all(|(resumed, stop, budget)| *resumed == 0 && stop == budget), "{runs:?}");
    let mut specs = Vec::new();
    find(&dir.path().join("cache"), "spec.json", &mut specs);
    for spec in &specs {
        let spec: Json = serde_json::from_str(&std::fs::read_to_string(spec).unwrap()).unwrap();
        assert!(spec["input"].get("stop_at").is_none(), "{spec}");
    }
    let budgets: std::collections::BTreeSet<u64> = runs.iter().map(|r| r.2).collect();
    assert_eq!(budgets, [40, 100, 160].into(), "{runs:?}");
}

#[test]
fn progress_lines_show_while_the_script_runs_and_a_nan_line_stops_it_as_diverged() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "t.sh",
        r#"p="$2/progress.jsonl"
echo '{"step": 5, "train_loss": 3.0, "val_loss": 3.1}' >> "$p"
if [ "$1" = 2 ]; then echo '{"step": 7, "train_loss": "NaN", "val_loss": 3.0}' >> "$p"; sleep 60; fi
echo '{"step": 10, "train_loss": 2.5, "val_loss": 2.75}' >> "$p"
echo '{"val_loss": 2.75}' > "$2/metrics.json"
"#,
    );
    write(
        dir.path(),
        "study.lrx",
        "train {\n  trainer = command(\"sh t.sh {seed} {out}\")\n  steps = 10\n}\n\nphase p {\n  baseline = false\n  vary seed in [1, 2]\n}\n",
    );
    let start = std::time::Instant::now();
    let (out, json) = run_json(dir.path(), "study.lrx");
    assert!(start.elapsed() < std::time::Duration::from_secs(30), "the NaN run was stopped");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("step 5/10 · train_loss 3.0000 · val_loss 3.1000"), "{stderr}");
    let ok = candidate(&json, "p", "seed=1");
    assert_eq!(ok["status"], "ok", "{json}");
    let nan = candidate(&json, "p", "seed=2");
    assert_eq!(nan["status"], "diverged", "{json}");
}

#[test]
fn declared_keys_fill_placeholders_as_one_argument_each_and_show_as_columns() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "t.sh",
        "printf '%s|%s|%s|%s\\n' \"$#\" \"$1\" \"$2\" \"$3\" >> seen.txt\necho \"{\\\"val_loss\\\": $2}\" > \"$4/metrics.json\"\n",
    );
    let study = r#"params {
  data_dir = "data/my corpus; $(touch x).txt"
  dropout  = 0.25
  head     = dropout * 2
}

train {
  trainer = command("sh t.sh {data_dir} {head} {params.dropout} {out}")
}

phase p {
  baseline = false
  vary dropout in [0.5, 0.125]
}

phase q after p {
  zip {
    data_dir in ["a b", "`touch y`"]
    dropout  in [base, base * 2]
  }
}
"#;
    write(dir.path(), "study.lrx", study);
    let (out, json) = run_json(dir.path(), "study.lrx");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!dir.path().join("x").exists() && !dir.path().join("y").exists(), "a value ran as a command");
    let seen = std::fs::read_to_string(dir.path().join("seen.txt")).unwrap();
    let mut lines: Vec<&str> = seen.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "4|`touch y`|0.5|0.25",
            "4|a b|0.25|0.125",
            "4|data/my corpus; $(touch x).txt|0.25|0.125",
            "4|data/my corpus; $(touch x).txt|1.0|0.5",
        ],
        "derived `head`, the winner's `dropout` (0.125) flowing into `q`, `base` zoomed"
    );
    assert_eq!(candidate(&json, "q", "data_dir=\"a b\",dropout=0.125")["metrics"]["val_loss"], 0.25, "{json}");
    let csv = std::fs::read_to_string(dir.path().join("runs/study/results.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(header.starts_with("phase,variant,dropout,data_dir,"), "{header}");
    assert!(csv.contains("q,\"data_dir=\"\"a b\"\",dropout=0.125\",0.125,a b,"), "{csv}");
    let show = lrx(dir.path()).args(["show", "study.lrx"]).output().unwrap();
    let table = String::from_utf8_lossy(&show.stdout);
    assert!(table.contains("dropout") && table.contains("data_dir"), "{table}");

    // `lrx train --set` sets a declared key too (derived ones follow), typed as declared.
    let one = lrx(dir.path()).args(["train", "study.lrx", "--set", "dropout=0.7"]).output().unwrap();
    assert!(one.status.success(), "{}", String::from_utf8_lossy(&one.stderr));
    let seen = std::fs::read_to_string(dir.path().join("seen.txt")).unwrap();
    assert_eq!(seen.lines().last(), Some("4|data/my corpus; $(touch x).txt|1.4|0.7"));
    let bad = lrx(dir.path()).args(["train", "study.lrx", "--set", "dropout=\"x\""]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("`dropout = \"x\"`"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
