//! `lrx run --executor slurm` on a real one-node Slurm cluster (`one-node.sh`: Debian's
//! packages, localhost, no munge, no accounting): the same results as a local run, retries of
//! jobs that die, a run that continues after its job's warning signal, a restarted `lrx run`
//! adopting jobs still queued, and Ctrl-C.
//!
//! Each test brings its own cluster up (a second or two) and tears it down when it ends, even
//! when it fails; tests take turns. Where no cluster can start (no Slurm and no way to install
//! it), each test prints a SKIP line and passes, unless `LRX_REQUIRE_SLURM=1` (CI) makes that
//! a failure.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

static TURNS: Mutex<()> = Mutex::new(());

/// A running cluster; dropped, it cancels its jobs and stops its daemons.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
    // Dropped after the cluster is down: the next test waits until then.
    _turn: MutexGuard<'static, ()>,
}

impl Cluster {
    /// A fresh cluster for `test`, or `None` (with a SKIP line) where none can start.
    fn up(test: &str) -> Option<Cluster> {
        static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
        let turn = TURNS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // Ports of their own, so that clusters of other test runs on this machine do not meet.
        let port = 20_000 + ((std::process::id() % 2_000) * 10 + u32::from(n) * 2) as u16 % 20_000;
        let dir = tempfile::tempdir().expect("a temporary folder");
        let cluster = Cluster { dir, port, _turn: turn };
        let out = cluster.script("slurm_up");
        if out.status.success() {
            return Some(cluster);
        }
        let why = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(
            std::env::var_os("LRX_REQUIRE_SLURM").is_none(),
            "{test}: the one-node Slurm cluster did not start (LRX_REQUIRE_SLURM is set):\n{why}"
        );
        // Straight to the process's stderr: the test harness captures `eprintln!` of passing
        // tests, and a skip must be seen.
        let _ = writeln!(std::io::stderr(), "SKIP {test}: no Slurm cluster could start here: {}", why.trim());
        None
    }

    fn script(&self, call: &str) -> Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slurm/one-node.sh");
        Command::new("bash")
            .arg("-c")
            .arg(format!("source \"$0\" && {call}"))
            .arg(script)
            .env("SLURM_CI_DIR", self.dir.path().join("slurm"))
            .env("SLURM_CI_PORT", self.port.to_string())
            .stdin(Stdio::null())
            .output()
            .expect("bash runs")
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm/slurm.conf")
    }

    /// A Slurm client command against this cluster: its stdout.
    fn client(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program).args(args).env("SLURM_CONF", self.conf()).output().expect("a Slurm client");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ARRAY_INDEX STATE` of lrx's tasks still queued or running.
    fn lrx_tasks(&self) -> Vec<(String, String)> {
        self.client("squeue", &["--noheader", "--array", "--format=%i %T %j"])
            .lines()
            .filter_map(|l| {
                let mut p = l.split_whitespace();
                let (id, state, name) = (p.next()?, p.next()?, p.next()?);
                name.starts_with("lrx-").then(|| (id.to_owned(), state.to_owned()))
            })
            .collect()
    }

    /// `lrx` in `dir`, with this cluster's configuration.
    fn lrx(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("lrx"));
        cmd.current_dir(dir).args(args).env_remove("LRX_CACHE").env("NO_COLOR", "1").env("SLURM_CONF", self.conf());
        cmd
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = self.script("slurm_down");
        if !out.status.success() {
            eprintln!("slurm_down: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// A tiny built-in-trainer study on a local corpus.
fn study(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join("study.lrx"), text).expect("the study");
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/genesis.txt");
    std::fs::copy(corpus, dir.path().join("corpus.txt")).expect("the corpus");
    dir
}

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
}

final combine(lr, emb) { repeats = 2 }
"#;

const SLURM: &[&str] = &["--executor", "slurm", "--poll-interval", "0.2"];

/// Waits for a child at most `limit` (then kills it and fails).
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

/// Runs to the end: exit code, JSON, stderr.
fn run_json(mut cmd: Command, limit: Duration) -> (i32, Json, String) {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("lrx starts");
    let out = finish(child, limit, "lrx run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
    (out.status.code().unwrap_or(-1), json, stderr)
}

/// States saved on a stop signal that the cache keeps for the runs' next attempts.
fn kept_states(study: &Path) -> usize {
    std::fs::read_dir(study.join("cache/failures"))
        .map_or(0, |d| d.flatten().filter(|e| e.path().join("kept.ckpt").is_file()).count())
}

/// Polls `cond` every 50 ms for at most `limit`.
fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every candidate and the final run: key, repeats' keys and metrics (means and spreads), less
/// the metrics that measure the machine (speed), which no two runs share.
fn results(json: &Json) -> Vec<(String, Json)> {
    let mut out = Vec::new();
    let mut add = |name: &str, c: &Json| {
        let mut c = c.clone();
        for field in ["metrics", "metrics_std"] {
            if let Some(m) = c[field].as_object_mut() {
                m.retain(|k, _| !["acc_per_min", "tokens_per_sec", "elapsed"].contains(&k.as_str()));
            }
        }
        let kept = ["key", "repeats", "metrics", "metrics_std", "status"].map(|f| (f, c[f].clone()));
        out.push((format!("{name} {}", c["variant"]), serde_json::json!(kept)));
    };
    for p in json["phases"].as_array().into_iter().flatten() {
        for c in p["candidates"].as_array().into_iter().flatten() {
            add(p["name"].as_str().unwrap_or(""), c);
        }
    }
    if !json["final"].is_null() {
        add("final", &json["final"]);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn runs(json: &Json) -> (u64, u64, u64) {
    let r = &json["runs"];
    (r["trained"].as_u64().unwrap(), r["cached"].as_u64().unwrap(), r["failed"].as_u64().unwrap())
}

#[test]
fn slurm_and_local_runs_give_the_same_keys_and_metrics_and_share_the_cache() {
    let Some(cluster) = Cluster::up("slurm_and_local") else { return };
    let on_slurm = study(TINY);
    let mut args = vec!["run", "study.lrx", "--json", "-v"];
    args.extend_from_slice(SLURM);
    let (code, slurm, err) = run_json(cluster.lrx(on_slurm.path(), &args), Duration::from_secs(180));
    assert_eq!(code, 0, "{err}");
    let (trained, cached, failed) = runs(&slurm);
    assert!(trained >= 6 && cached == 0 && failed == 0, "{slurm}");
    assert_eq!(slurm["slurm"]["submitted"].as_u64(), Some(trained), "{slurm}");
    // Runs ready together go as one array: lr's three, emb's two, the final's two.
    assert_eq!(slurm["slurm"]["sbatch_calls"], 3, "{slurm}");

    let local = study(TINY);
    let (code, here, err) =
        run_json(cluster.lrx(local.path(), &["run", "study.lrx", "--json"]), Duration::from_secs(180));
    assert_eq!(code, 0, "{err}");
    let (a, b) = (results(&slurm), results(&here));
    assert!(
        a.len() >= 6
            && a.iter().all(|(_, c)| c[0][1].as_str().is_some_and(|k| k.len() == 64) && c[2][1]["val_loss"].is_f64()),
        "{a:?}"
    );
    assert_eq!(a, b, "Slurm and local runs differ in keys or metrics");

    // The cache is the cache: again on Slurm submits nothing, and locally trains nothing.
    let (code, again, err) = run_json(cluster.lrx(on_slurm.path(), &args), Duration::from_secs(60));
    assert_eq!((code, runs(&again).0), (0, 0), "{err}");
    assert_eq!(again["slurm"]["sbatch_calls"], 0, "{again}");
    let (code, here, err) =
        run_json(cluster.lrx(on_slurm.path(), &["run", "study.lrx", "--json"]), Duration::from_secs(60));
    assert_eq!((code, runs(&here).0), (0, 0), "{err}");
    // Nothing of the jobs' bookkeeping is left behind but the batch script and empty folders.
    for sub in ["jobs", "outcomes", "arrays", "logs"] {
        let left: Vec<_> =
            std::fs::read_dir(on_slurm.path().join("cache/slurm").join(sub)).unwrap().flatten().collect();
        assert!(left.is_empty(), "cache/slurm/{sub} keeps {left:?}");
    }
}

/// A command trainer that kills its worker (the job dies without a result) on the attempts
/// listed in `die`, and else writes a result.
fn dying_study(die: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let script = format!(
        "n=$(cat attempts 2>/dev/null || echo 0); n=$((n+1)); echo $n > attempts\ncase \" {die} \" in *\" $n \"*) kill -9 $PPID; sleep 5;; esac\necho '{{\"val_loss\": 1.5}}' > \"$1/metrics.json\"\n"
    );
    std::fs::write(dir.path().join("t.sh"), script).unwrap();
    std::fs::write(
        dir.path().join("study.lrx"),
        "train {\n  trainer = command(\"sh t.sh {out}\")\n}\n\nphase p {\n  vary seed in [5]\n  baseline = false\n}\n",
    )
    .unwrap();
    dir
}

#[test]
fn a_job_that_dies_is_retried_then_recorded_as_failed_with_its_log() {
    let Some(cluster) = Cluster::up("retry") else { return };
    let once = dying_study("1");
    let mut args = vec!["run", "study.lrx", "--json", "--retries", "1"];
    args.extend_from_slice(SLURM);
    let (code, json, err) = run_json(cluster.lrx(once.path(), &args), Duration::from_secs(120));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("without a result; submitting it again (retry 1 of 1)"), "{err}");
    assert_eq!(runs(&json), (1, 0, 0), "{json}");
    assert_eq!(json["slurm"]["retried"], 1, "{json}");

    let always = dying_study("1 2 3 4");
    let (code, json, err) = run_json(cluster.lrx(always.path(), &args), Duration::from_secs(120));
    assert_eq!(code, 1, "a failed run fails the study: {err}");
    assert_eq!(runs(&json), (0, 0, 1), "{json}");
    assert_eq!(std::fs::read_to_string(always.path().join("attempts")).unwrap().trim(), "2", "one retry");
    let repeat = &json["phases"][0]["candidates"][0]["failures"][0];
    let error = repeat["reason"].as_str().unwrap_or_default();
    assert!(error.contains("ended FAILED without a result"), "{repeat}");
    // The job's log tail is kept with the failure: the worker's first line names the run.
    let tail = repeat["log_tail"].as_str().unwrap_or_default();
    assert!(tail.contains("lrx worker: run"), "{repeat}");
    // The next `lrx run` retries it (and it dies again, now as attempt 2 of the record).
    let (_, json, _) = run_json(cluster.lrx(always.path(), &args), Duration::from_secs(120));
    assert_eq!(json["phases"][0]["candidates"][0]["failures"][0]["attempt"], 2, "{json}");
}

/// One built-in run long enough to be signalled while it trains.
const LONG: &str = r#"
model { d_model = 16  layers = 1  heads = 2  d_ff = 32  experts = 2  top_k = 1  seq_len = 16 }
data  { corpus = "corpus.txt"  tokens = 20_000 }
train { batch_size = 4  steps = 600  eval_every = 100  log_every = 50  val_batches = 2 }

objective minimize val_loss

phase p {
  vary seed in [5]
  baseline = false
}
"#;

/// The log of the first lrx task that says its run started training.
fn training_log(dir: &Path) -> Option<PathBuf> {
    let logs = std::fs::read_dir(dir.join("cache/slurm/logs")).ok()?;
    logs.flatten().map(|e| e.path()).find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(": training (")))
}

#[test]
fn a_signalled_job_saves_its_state_and_its_run_continues_to_the_same_result() {
    let Some(cluster) = Cluster::up("signal") else { return };
    let s = study(LONG);
    let mut args = vec!["run", "study.lrx", "--json", "-v"];
    args.extend_from_slice(SLURM);
    let child = cluster.lrx(s.path(), &args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut log = None;
    wait_for(Duration::from_secs(60), "the run to train", || {
        log = training_log(s.path());
        log.is_some()
    });
    // `log`'s name is `ARRAY_INDEX.log`: the job to signal, as Slurm's warning would.
    let job = log.unwrap().file_stem().unwrap().to_string_lossy().into_owned();
    let out = Command::new("scancel")
        .args(["--signal=USR1", "--batch", &job])
        .env("SLURM_CONF", cluster.conf())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = finish(child, Duration::from_secs(180), "lrx run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let json: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert!(err.contains("saved its state at step"), "{err}");
    assert_eq!(json["slurm"]["continued"], 1, "{json}");
    let repeat = &json["phases"][0]["candidates"][0];
    let step = repeat["continued_from_step"].as_u64().expect("the run continued from a checkpoint");
    assert!(step > 0 && step < 600, "{repeat}");

    let local = study(LONG);
    let (code, here, err) =
        run_json(cluster.lrx(local.path(), &["run", "study.lrx", "--json"]), Duration::from_secs(180));
    assert_eq!(code, 0, "{err}");
    assert_eq!(results(&json), results(&here), "the continued run differs from one trained straight through");
    assert_eq!(kept_states(s.path()), 0, "the saved state is removed once the run is done");
}

#[test]
fn a_restarted_run_adopts_the_jobs_still_queued() {
    let Some(cluster) = Cluster::up("adopt") else { return };
    let s = study(&TINY[..TINY.find("phase emb").unwrap()]);
    // The first `lrx run` submits held jobs, then dies.
    let mut first = vec!["run", "study.lrx", "--sbatch-arg=--hold"];
    first.extend_from_slice(SLURM);
    let mut child = cluster.lrx(s.path(), &first).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_for(Duration::from_secs(30), "three held jobs", || cluster.lrx_tasks().len() == 3);
    child.kill().unwrap();
    child.wait().unwrap();

    let mut args = vec!["run", "study.lrx", "--json", "-v"];
    args.extend_from_slice(SLURM);
    let mut child = cluster.lrx(s.path(), &args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("still queued or running") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let adopted = rx.recv_timeout(Duration::from_secs(30));
    let array = cluster.lrx_tasks()[0].0.split('_').next().unwrap().to_owned();
    cluster.client("scontrol", &["release", &array]);
    let out = finish(child, Duration::from_secs(120), "the restarted lrx run");
    let err = reader.join().unwrap();
    assert!(adopted.is_ok(), "the restarted run did not adopt the held jobs:\n{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
    let json: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["slurm"]["adopted"], 3, "{json}");
    assert_eq!(json["slurm"]["submitted"], 0, "nothing was submitted twice: {json}");
    assert_eq!(runs(&json), (3, 0, 0), "{json}");
}

#[test]
fn ctrl_c_cancels_the_study_jobs_exits_130_and_keeps_finished_runs() {
    let Some(cluster) = Cluster::up("ctrl_c") else { return };
    let text = LONG.replace("vary seed in [5]", "vary steps in [8, 5000]");
    let s = study(&text);
    let mut args = vec!["run", "study.lrx", "--json", "-v"];
    args.extend_from_slice(SLURM);
    let child = cluster.lrx(s.path(), &args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let entries = |dir: &Path| {
        std::fs::read_dir(dir.join("cache/runs"))
            .map_or(0, |shards| shards.flatten().map(|s| std::fs::read_dir(s.path()).map_or(0, Iterator::count)).sum())
    };
    wait_for(Duration::from_secs(60), "the short run to finish and the long one to train", || {
        entries(s.path()) == 1 && training_log(s.path()).is_some()
    });
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let out = finish(child, Duration::from_secs(30), "lrx run after Ctrl-C");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    wait_for(Duration::from_secs(20), "the study's jobs to leave the queue", || cluster.lrx_tasks().is_empty());
    // The finished run stays cached; the cancelled one saved its state on Slurm's SIGTERM.
    let (code, plan, _) = run_json(cluster.lrx(s.path(), &["plan", "study.lrx", "--json"]), Duration::from_secs(30));
    assert_eq!(code, 0);
    assert_eq!(entries(s.path()), 1, "{plan}");
    wait_for(Duration::from_secs(10), "the cancelled run's saved state, kept with its key", || {
        kept_states(s.path()) == 1
    });
}

#[test]
fn a_job_near_its_time_limit_is_warned_saves_its_state_and_continues_in_a_new_job() {
    let Some(cluster) = Cluster::up("time_limit") else { return };
    // Far more steps than a minute holds: the run cannot finish before its job's warning.
    let s = study(&LONG.replace("steps = 600", "steps = 1000000"));
    // A one-minute limit with the warning 55 s before it: Slurm sends USR1 within its check
    // interval (seconds to half a minute) after the job starts.
    let mut args = vec!["run", "study.lrx", "--json", "-v", "--time=1", "--signal-before=55"];
    args.extend_from_slice(SLURM);
    let mut child = cluster.lrx(s.path(), &args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("saved its state at step") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let warned = rx.recv_timeout(Duration::from_secs(90));
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let out = finish(child, Duration::from_secs(30), "lrx run after Ctrl-C");
    let err = reader.join().unwrap();
    assert!(warned.is_ok(), "no job saved its state before its time limit:\n{err}");
    assert_eq!(out.status.code(), Some(130), "{err}");
    let json: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["slurm"]["continued"].as_u64() >= Some(1), "{json}");
}

/// `--report` keeps the page current as the jobs' outcomes come in, as with local runs, and
/// the final page stops reloading.
#[test]
fn the_live_report_follows_the_jobs() {
    let Some(cluster) = Cluster::up("live_report") else { return };
    let dir = study(TINY);
    let mut args = vec!["run", "study.lrx", "--report"];
    args.extend_from_slice(SLURM);
    let mut child =
        cluster.lrx(dir.path(), &args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("lrx starts");
    let page = dir.path().join("runs/study/report.html");
    let start = Instant::now();
    let mut live = std::collections::BTreeSet::new();
    while child.try_wait().expect("wait").is_none() {
        assert!(start.elapsed() < Duration::from_secs(180), "lrx run still running");
        if let Ok(html) = std::fs::read_to_string(&page)
            && html.contains("<meta http-equiv=\"refresh\"")
        {
            let progress = html.split("Running:</strong>").nth(1).and_then(|t| t.split(';').next());
            live.insert(progress.unwrap_or_default().to_owned());
        }
        std::thread::sleep(Duration::from_millis(40));
    }
    let out = child.wait_with_output().expect("output");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(live.len() >= 3, "the page was rewritten as jobs finished: {live:?}");
    let last = std::fs::read_to_string(&page).unwrap();
    assert!(!last.contains("http-equiv=\"refresh\"") && !last.contains("Running:"), "the final page does not reload");
}
