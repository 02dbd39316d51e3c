//! Tests of the command trainer with real `sh` scripts: logs, failures, cancellation,
//! timeouts and the scratch folders `gc` must leave alone.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::external::CommandTrainer;
use crate::spec::{CancelFlag, Cancelled, RunConfig, RunContext, RunResult, Status, Trainer, TrainerSpec};

fn trainer(dir: &Path) -> CommandTrainer {
    CommandTrainer {
        base_dir: dir.to_owned(),
        work_dir: dir.join("scratch"),
        deps_fingerprint: Box::new(|_, _| Ok(String::new())),
    }
}

fn config(cmd: &str) -> RunConfig {
    let mut c = RunConfig::defaults();
    c.train.trainer = TrainerSpec::Command { cmd: cmd.to_owned(), deps: Vec::new(), resumable: true };
    c
}

/// Trains `config` in `dir` on another thread; the result arrives on the channel.
fn spawn(
    dir: &Path,
    config: RunConfig,
    workdir: Option<PathBuf>,
    cancel: &CancelFlag,
) -> mpsc::Receiver<Result<RunResult, Cancelled>> {
    let (tx, rx) = mpsc::channel();
    let (dir, cancel) = (dir.to_owned(), cancel.clone());
    std::thread::spawn(move || {
        let t = trainer(&dir);
        let mut progress = |_| {};
        let mut ctx = RunContext {
            cancel: &cancel,
            progress: &mut progress,
            workdir,
            run_key: None,
            base_dir: dir.clone(),
            stop_at: None,
            cooldown: false,
            checkpoints: crate::spec::Checkpoints::default(),
            device: None,
        };
        let _ = tx.send(t.train(&config, &mut ctx));
    });
    rx
}

fn train(dir: &Path, config: RunConfig, workdir: Option<PathBuf>) -> RunResult {
    let rx = spawn(dir, config, workdir, &CancelFlag::new());
    rx.recv_timeout(Duration::from_secs(60)).expect("the run finishes within a minute").expect("not cancelled")
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(')').next().and_then(|r| r.split_whitespace().next()) != Some("Z"))
}

fn wait_for_pid(path: &Path) -> i32 {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text.trim().parse().expect("a pid");
        }
        assert!(start.elapsed() < Duration::from_secs(20), "`{}` never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

const METRICS: &str = "echo '{\"val_loss\": 1.5}' > \"$1/metrics.json\"\n";

#[test]
#[allow(clippy::float_cmp, reason = "a number read from text is exact")]
fn a_flooding_scripts_logs_are_complete_in_the_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let script =
        format!("head -c 10485760 /dev/zero | tr '\\0' o\nhead -c 10485760 /dev/zero | tr '\\0' e >&2\n{METRICS}");
    std::fs::write(dir.path().join("big.sh"), script).unwrap();
    let work = dir.path().join("w");
    std::fs::create_dir(&work).unwrap();
    let r = train(dir.path(), config("sh big.sh {out}"), Some(work.clone()));
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.metrics["val_loss"], 1.5);
    assert_eq!(std::fs::metadata(work.join("stdout.log")).unwrap().len(), 10_485_760);
    assert_eq!(std::fs::metadata(work.join("stderr.log")).unwrap().len(), 10_485_760);
    assert!(work.join("out/metrics.json").is_file(), "`{{out}}` is the run folder's `out`");
}

#[test]
fn a_failed_script_reports_its_exit_code_and_the_tail_of_stderr() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fail.sh"),
        "i=1\nwhile [ $i -le 300 ]; do echo \"line $i\" >&2; i=$((i+1)); done\nexit 3\n",
    )
    .unwrap();
    let r = train(dir.path(), config("sh fail.sh"), None);
    assert_eq!(r.status, Status::Failed);
    assert_eq!(r.exit_code, Some(3), "{r:?}");
    let tail = r.log_tail.expect("a stderr tail");
    assert!(tail.ends_with("line 300") || tail.ends_with("line 300\n"), "{tail}");
    assert!(!tail.contains("line 1\n"), "only the tail: {tail}");
    assert!(r.error.as_deref().unwrap_or_default().contains("exited with code 3"), "{:?}", r.error);
}

#[test]
fn cancelling_kills_the_script_and_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sleeper.sh"), "echo $$ > script.pid\nsleep 300 &\necho $! > sleep.pid\nwait\n")
        .unwrap();
    let cancel = CancelFlag::new();
    let rx = spawn(dir.path(), config("sh sleeper.sh {out}"), None, &cancel);
    let script = wait_for_pid(&dir.path().join("script.pid"));
    let sleep = wait_for_pid(&dir.path().join("sleep.pid"));
    let start = Instant::now();
    cancel.cancel();
    let result = rx.recv_timeout(Duration::from_secs(10)).expect("the trainer returns");
    let took = start.elapsed();
    let (script_alive, sleep_alive) = (alive(script), alive(sleep));
    for pid in [script, sleep] {
        let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
    assert_eq!(result, Err(Cancelled));
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(!script_alive, "the script survived");
    assert!(!sleep_alive, "the script's child survived");
}

#[test]
fn a_run_past_its_timeout_is_killed_and_failed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("slow.sh"), format!("echo $$ > script.pid\necho working >&2\nsleep 30\n{METRICS}"))
        .unwrap();
    let mut c = config("sh slow.sh {out}");
    c.train.timeout = Some(1.0);
    let start = Instant::now();
    let r = train(dir.path(), c, None);
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    assert_eq!(r.status, Status::Failed);
    assert_eq!(r.error.as_deref(), Some("timed out after 1s"));
    assert_eq!(r.log_tail.as_deref(), Some("working"));
    assert!(!alive(wait_for_pid(&dir.path().join("script.pid"))));
}

#[test]
fn the_script_gets_absolute_paths_its_folder_and_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("study dir");
    std::fs::create_dir(&sub).unwrap();
    let script = r#"for p in "$1" "$2"; do case "$p" in /*) ;; *) echo "relative: $p" >&2; exit 3;; esac; done
test -f "$2" && test -f here.txt && test "$LRX_OUT" = "$1" && test "$LRX_CONFIG" = "$2" && test "$LRX_SEED" = 1 || exit 4
printf '%s\n' "$3" > "$1/arg"
echo '{"val_loss": 2.0}' > "$1/metrics.json"
"#;
    std::fs::write(sub.join("t.sh"), script).unwrap();
    std::fs::write(sub.join("here.txt"), "").unwrap();
    // A relative study folder: lrx's own folder is elsewhere.
    let t = CommandTrainer {
        base_dir: sub.clone(),
        work_dir: PathBuf::from("target/lrx-test-scratch"),
        deps_fingerprint: Box::new(|_, _| Ok(String::new())),
    };
    let mut progress = |_| {};
    let cancel = CancelFlag::new();
    let work = dir.path().join("w");
    let mut ctx = RunContext {
        cancel: &cancel,
        progress: &mut progress,
        workdir: Some(work.clone()),
        run_key: None,
        base_dir: sub.clone(),
        stop_at: None,
        cooldown: false,
        checkpoints: crate::spec::Checkpoints::default(),
        device: None,
    };
    let r = t.train(&config("./t.sh {out} {config} 'a b'\\ {seed}"), &mut ctx).unwrap();
    assert_eq!(r.status, Status::Failed, "not executable yet: {r:?}");
    std::fs::set_permissions(sub.join("t.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = t.train(&config("./t.sh {out} {config} 'a b'\\ {seed}"), &mut ctx).unwrap();
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(std::fs::read_to_string(work.join("out/arg")).unwrap(), "a b 1\n");
}

#[test]
fn an_unknown_placeholder_or_program_fails_the_run_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let r = train(dir.path(), config("sh x.sh {matrx_lr}"), None);
    assert_eq!(
        r.error.as_deref(),
        Some("the command names `{matrx_lr}`, which is not a key of the run; did you mean `{matrix_lr}`?")
    );
    let r = train(dir.path(), config("no-such-program-lrx {out}"), None);
    assert!(r.error.as_deref().unwrap_or_default().starts_with("cannot start `no-such-program-lrx`"), "{r:?}");
    let r = train(dir.path(), config("sh -c 'exit 0'"), None);
    assert_eq!(r.error.as_deref(), Some("the command wrote neither `metrics.json` nor `metrics.csv` into `{out}`"));
    assert_eq!(std::fs::read_dir(dir.path().join("scratch")).unwrap().count(), 0, "scratch folders are removed");
}

/// Trains `config` in `dir`, collecting what it reports while it runs.
fn train_watching(dir: &Path, config: &RunConfig) -> (RunResult, Vec<crate::spec::Progress>) {
    let mut seen = Vec::new();
    let mut progress = |p| seen.push(p);
    let cancel = CancelFlag::new();
    let mut ctx = RunContext::standalone(&cancel, &mut progress, dir.to_owned());
    let r = trainer(dir).train(config, &mut ctx).expect("not cancelled");
    (r, seen)
}

#[test]
#[allow(clippy::float_cmp, reason = "numbers read from text are exact")]
fn progress_lines_are_shown_and_kept_as_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"for s in 1 2 3; do echo "{\"step\": $s, \"train_loss\": 3.$s, \"tokens\": $((s * 64)), \"mine\": 7}" >> "$1/progress.jsonl"; done
echo '{"step": 3, "val_loss": 3.25}' >> "$1/progress.jsonl"
echo '{"val_loss": 3.25}' > "$1/metrics.json"
"#;
    std::fs::write(dir.path().join("p.sh"), script).unwrap();
    let (r, seen) = train_watching(dir.path(), &config("sh p.sh {out}"));
    assert_eq!(r.status, Status::Ok, "{r:?}");
    let steps: Vec<(u64, f64)> = seen
        .iter()
        .filter_map(|p| match p {
            crate::spec::Progress::Step { step, loss, .. } => Some((*step, *loss)),
            _ => None,
        })
        .collect();
    assert_eq!(steps, [(1, 3.1), (2, 3.2), (3, 3.3), (3, 3.25)]);
    assert_eq!(r.history.len(), 4, "{:?}", r.history);
    assert_eq!(r.history[1].metrics["mine"], 7.0, "extra numeric fields are kept");
    assert_eq!(r.steps, 3);
    assert_eq!(r.tokens, 192);
}

#[test]
fn a_nan_progress_line_stops_the_script_as_diverged_at_that_step() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"echo $$ > script.pid
echo '{"step": 10, "train_loss": 4.0}' >> "$1/progress.jsonl"
echo '{"step": 20, "train_loss": "NaN"}' >> "$1/progress.jsonl"
sleep 30
echo '{"val_loss": 1.0}' > "$1/metrics.json"
"#;
    std::fs::write(dir.path().join("nan.sh"), script).unwrap();
    let start = Instant::now();
    let (r, _) = train_watching(dir.path(), &config("sh nan.sh {out}"));
    assert!(start.elapsed() < Duration::from_secs(10), "the script was stopped: {:?}", start.elapsed());
    assert_eq!(r.status, Status::Diverged, "{r:?}");
    assert_eq!(r.diverged_at, Some(20));
    assert_eq!(r.steps, 20);
    assert!(r.metrics["train_loss"].is_nan() && r.metrics["val_loss"].is_nan(), "{:?}", r.metrics);
    assert_eq!(r.history.len(), 2);
    assert!(!alive(wait_for_pid(&dir.path().join("script.pid"))));

    // A loss above `diverge_factor` × its first value diverges too.
    std::fs::write(
        dir.path().join("up.sh"),
        "echo '{\"step\": 1, \"loss\": 2.0}' >> \"$1/progress.jsonl\"\necho '{\"step\": 2, \"loss\": 9.0}' >> \"$1/progress.jsonl\"\nsleep 30\n",
    )
    .unwrap();
    let (r, _) = train_watching(dir.path(), &config("sh up.sh {out}"));
    assert_eq!((r.status, r.diverged_at), (Status::Diverged, Some(2)));
}

#[test]
#[allow(clippy::float_cmp, reason = "a number read from text is exact")]
fn stop_at_is_the_rung_or_the_budget_and_a_time_budget_has_none() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.sh"), "echo \"{\\\"val_loss\\\": $1}\" > \"$2/metrics.json\"\n").unwrap();
    let (r, _) = train_watching(dir.path(), &config("sh s.sh {stop_at} {out}"));
    assert_eq!(r.metrics["val_loss"], 300.0, "the budget: {r:?}");
    let mut c = config("sh s.sh {stop_at} {out}");
    c.train.budget = crate::spec::Budget::Time(60.0);
    let (r, _) = train_watching(dir.path(), &c);
    assert!(r.error.as_deref().unwrap_or_default().contains("a `time` budget has no step to stop at"), "{r:?}");
}
