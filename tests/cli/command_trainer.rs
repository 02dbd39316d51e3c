//! The command trainer through the real binary: scripts that flood their streams, hostile
//! values, interrupted and killed runs, a study outside the current folder, timeouts, and what
//! `lrx check` says about commands that cannot run.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use super::harness::lrx;

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("a folder");
    }
    std::fs::write(path, text).expect("a file");
}

/// Waits for a child at most `limit`; a child still running then is killed and the test fails
/// (a deadlocked lrx must fail the test, not hang it).
fn finish(mut child: Child, limit: Duration, what: &str) -> Output {
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// `lrx run FILE --json -q` in `dir`, at most `limit`: exit code and JSON.
fn run_json(dir: &Path, file: &str, limit: Duration) -> (i32, Json) {
    let child = lrx(dir)
        .args(["run", file, "--json", "-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lrx");
    let out = finish(child, limit, "lrx run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("JSON ({e}):\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), json)
}

fn candidates<'a>(json: &'a Json, phase: &str) -> &'a Vec<Json> {
    let p = json["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == phase)
        .unwrap_or_else(|| panic!("no phase {phase}: {json}"));
    p["candidates"].as_array().unwrap()
}

/// Whether a process is running (a zombie waiting for its reaper counts as gone).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(')').next().and_then(|r| r.split_whitespace().next()) != Some("Z"))
}

fn wait_for_file(path: &Path, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text.trim().to_owned();
        }
        assert!(start.elapsed() < limit, "`{}` never appeared", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn gone_within(pid: i32, limit: Duration) -> bool {
    let start = Instant::now();
    while alive(pid) {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// A study of one run of `cmd`.
fn one_run(cmd: &str, extra: &str) -> String {
    format!(
        "train {{\n  trainer = command(\"{cmd}\")\n{extra}}}\n\nphase p {{\n  vary seed in [5]\n  baseline = false\n}}\n"
    )
}

#[test]
fn a_script_flooding_both_streams_finishes() {
    let dir = tempfile::tempdir().unwrap();
    // 10 MB on each stream: far beyond a pipe's 64 KB buffer.
    write(
        dir.path(),
        "big.sh",
        "head -c 10485760 /dev/zero | tr '\\0' o\nhead -c 10485760 /dev/zero | tr '\\0' e >&2\necho '{\"val_loss\": 1.5}' > \"$1/metrics.json\"\n",
    );
    write(dir.path(), "study.lrx", &one_run("sh big.sh {out}", ""));
    let (code, json) = run_json(dir.path(), "study.lrx", Duration::from_secs(120));
    assert_eq!(code, 0, "{json}");
    assert_eq!(candidates(&json, "p")[0]["metrics"]["val_loss"], 1.5, "{json}");
}

#[test]
fn hostile_values_reach_the_script_as_one_argument_each_and_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let values = ["d;touch x;#/a.txt", "$(touch y).txt", "`touch z`.txt", "my corpus.txt", "q'uote\".txt"];
    // Different contents: runs differ by their corpus's content, not its name.
    for (i, v) in values.iter().enumerate() {
        write(dir.path(), v, &format!("corpus number {i}\n"));
    }
    write(
        dir.path(),
        "args.sh",
        "printf '%s|%s\\n' \"$#\" \"$1\" >> seen.txt\necho '{\"val_loss\": 1.0}' > \"$2/metrics.json\"\n",
    );
    let list = values.iter().map(|v| format!("\"{}\"", v.replace('"', "\\\""))).collect::<Vec<_>>().join(", ");
    let study = format!(
        "data {{\n  corpus = \"my corpus.txt\"\n}}\n\ntrain {{\n  trainer = command(\"sh args.sh {{corpus}} {{out}}\")\n}}\n\nphase hostile {{\n  vary corpus in [{list}]\n  baseline = false\n}}\n"
    );
    write(dir.path(), "study.lrx", &study);
    let (code, json) = run_json(dir.path(), "study.lrx", Duration::from_secs(60));
    assert_eq!(code, 0, "{json}");
    for name in ["x", "y", "z"] {
        assert!(!dir.path().join(name).exists(), "`{name}` was created: a value ran as a command");
    }
    let mut seen: Vec<String> =
        std::fs::read_to_string(dir.path().join("seen.txt")).unwrap().lines().map(str::to_owned).collect();
    seen.sort();
    let mut expected: Vec<String> = values.iter().map(|v| format!("2|{v}")).collect();
    expected.sort();
    assert_eq!(seen, expected);
}

/// A script that starts a child of its own and waits: both pids land in the study's folder.
const SLEEPER: &str = "echo $$ > script.pid\nsleep 300 &\necho $! > sleep.pid\nwait\n";

#[test]
fn ctrl_c_or_sigterm_stops_the_script_and_everything_it_started() {
    for signal in ["-INT", "-TERM"] {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "sleeper.sh", SLEEPER);
        write(dir.path(), "study.lrx", &one_run("sh sleeper.sh {out}", ""));
        let child = lrx(dir.path())
            .args(["run", "study.lrx", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let script: i32 = wait_for_file(&dir.path().join("script.pid"), Duration::from_secs(30)).parse().unwrap();
        let sleep: i32 = wait_for_file(&dir.path().join("sleep.pid"), Duration::from_secs(30)).parse().unwrap();
        let lrx_pid = child.id().to_string();
        Command::new("kill").args([signal, &lrx_pid]).status().expect("kill");
        let out = finish(child, Duration::from_secs(20), "interrupted lrx");
        let (script_gone, sleep_gone) =
            (gone_within(script, Duration::from_secs(3)), gone_within(sleep, Duration::from_secs(3)));
        for pid in [script, sleep] {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        assert_eq!(out.status.code(), Some(130), "{signal}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(script_gone, "{signal}: the script outlived an interrupted lrx");
        assert!(sleep_gone, "{signal}: the script's own child outlived an interrupted lrx");
    }
}

#[test]
fn kill_9_of_lrx_takes_the_script_and_everything_it_started_with_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "sleeper.sh", SLEEPER);
    write(dir.path(), "study.lrx", &one_run("sh sleeper.sh {out}", ""));
    let mut child =
        lrx(dir.path()).args(["run", "study.lrx", "-q"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let script: i32 = wait_for_file(&dir.path().join("script.pid"), Duration::from_secs(30)).parse().unwrap();
    let sleep: i32 = wait_for_file(&dir.path().join("sleep.pid"), Duration::from_secs(30)).parse().unwrap();
    child.kill().expect("kill -9");
    let _ = child.wait();
    let (script_gone, sleep_gone) =
        (gone_within(script, Duration::from_secs(3)), gone_within(sleep, Duration::from_secs(5)));
    for pid in [script, sleep] {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
    assert!(script_gone, "the script outlived lrx's kill -9");
    // A data loader or a torchrun worker the script started holds a GPU: it must not outlive
    // the run either.
    assert!(sleep_gone, "the script's own child outlived lrx's kill -9");
}

#[test]
fn a_study_in_another_folder_gets_absolute_paths_and_runs_in_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"case "$1" in /*) ;; *) echo "out not absolute: $1" >&2; exit 3;; esac
case "$2" in /*) ;; *) echo "config not absolute: $2" >&2; exit 4;; esac
test -d "$1" || exit 5
test -f "$2" || exit 6
test -f study.lrx || { echo "runs in $(pwd)" >&2; exit 7; }
test "$LRX_OUT" = "$1" || exit 8
test "$LRX_CONFIG" = "$2" || exit 9
test "$LRX_SEED" = 5 || exit 10
echo '{"val_loss": 1.0}' > "$1/metrics.json"
"#;
    write(dir.path(), "sub/train.sh", script);
    write(dir.path(), "sub/study.lrx", &one_run("sh train.sh {out} {config}", "  deps    = [\"train.sh\"]\n"));
    // The default cache, `cache`, is relative to lrx's folder, not the study's.
    let (code, json) = run_json(dir.path(), "sub/study.lrx", Duration::from_secs(60));
    assert_eq!(code, 0, "{json}");
    assert_eq!(candidates(&json, "p")[0]["status"], "ok", "{json}");
}

#[test]
fn a_run_past_its_timeout_is_killed_and_failed() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "slow.sh", "sleep 30\necho '{\"val_loss\": 1.0}' > \"$1/metrics.json\"\n");
    write(dir.path(), "study.lrx", &one_run("sh slow.sh {out}", "  timeout = 1s\n"));
    let start = Instant::now();
    let (code, json) = run_json(dir.path(), "study.lrx", Duration::from_secs(60));
    assert!(start.elapsed() < Duration::from_secs(20), "the timeout did not stop the run: {:?}", start.elapsed());
    assert_eq!(code, 1, "{json}");
    let reason = candidates(&json, "p")[0]["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("timed out after 1s"), "{json}");
}

#[test]
fn gc_during_a_run_leaves_its_folder_alone() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "slow.sh",
        "echo started > started.txt\nsleep 2\necho '{\"val_loss\": 1.0}' > \"$1/metrics.json\"\n",
    );
    write(dir.path(), "study.lrx", &one_run("sh slow.sh {out}", ""));
    let run = lrx(dir.path())
        .args(["run", "study.lrx", "--json", "-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_file(&dir.path().join("started.txt"), Duration::from_secs(30));
    let gc = lrx(dir.path()).args(["cache", "gc", "--all"]).output().unwrap();
    assert_eq!(gc.status.code(), Some(0), "{}", String::from_utf8_lossy(&gc.stderr));
    let out = finish(run, Duration::from_secs(60), "lrx run");
    let json: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(candidates(&json, "p")[0]["status"], "ok", "{json}");
}

#[test]
fn check_reports_commands_that_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "train.py", "print('hi')\n");
    let study = "train {
  trainer = command(\"sh train.py --lr {matrx_lr} --out {out}\")
  deps    = [\"train.py\", \"model.py\"]
}

phase other {
  vary matrix_lr in [0.01]
  trainer = command(\"no-such-program-lrx --out {out}\")
}

phase local {
  vary matrix_lr in [0.02]
  trainer = command(\"train.py {out}\")
}

phase quoted {
  vary matrix_lr in [0.03]
  trainer = command(\"sh train.py 'unclosed {out}\")
}
";
    write(dir.path(), "study.lrx", study);
    let out = lrx(dir.path()).args(["check", "study.lrx"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The placeholder, pointed at inside the string, with a near miss.
    assert!(stderr.contains("`{matrx_lr}` is not a key of the run"), "{stderr}");
    assert!(stderr.contains("--> study.lrx:2:39"), "{stderr}");
    assert!(stderr.contains("did you mean `{matrix_lr}`?"), "{stderr}");
    assert!(stderr.contains("`deps` file `model.py` does not exist"), "{stderr}");
    assert!(stderr.contains("--> study.lrx:3:26"), "{stderr}");
    assert!(stderr.contains("`no-such-program-lrx` is not a program on PATH"), "{stderr}");
    assert!(stderr.contains("--> study.lrx:8:22"), "{stderr}");
    // A file of the study's folder is not looked up on PATH: the hint says how to name it.
    assert!(stderr.contains("`./train.py`"), "{stderr}");
    assert!(stderr.contains("--> study.lrx:13:22"), "{stderr}");
    assert!(stderr.contains("unclosed quote"), "{stderr}");
    assert!(stderr.contains("due to 5 errors"), "{stderr}");
}

#[test]
fn lrx_train_of_a_candidate_keeps_the_studys_timeout_under_overrides() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "slow.sh", "sleep 30\necho '{\"val_loss\": 1.0}' > \"$1/metrics.json\"\n");
    write(dir.path(), "study.lrx", &one_run("sh slow.sh {out}", "  timeout = 1s\n"));
    let start = Instant::now();
    let child = lrx(dir.path())
        .args(["train", "study.lrx", "--phase", "p", "--variant", "seed=5", "--set", "steps=10", "-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish(child, Duration::from_secs(60), "lrx train");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(start.elapsed() < Duration::from_secs(20), "the timeout was lost: {:?}", start.elapsed());
    assert!(stderr.contains("timed out after 1s"), "{stderr}");
}
