//! What every fault test needs: the two small studies, a sandbox folder per scenario, the binary
//! with its output on files, the uninterrupted reference run of each study, the normalized form
//! of a study's results (what must be equal bit for bit), the seeded schedule and the tally of
//! checks that becomes a table of `RELIABILITY.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde_json::Value as Json;

/// The built-in trainer on a tiny model: 6 distinct runs (two phases, a final run with two seeds),
/// about three seconds on two cores. 60 steps per run so that a kill lands inside training.
pub(crate) const BUILTIN_STUDY: &str = r#"
model { d_model = 16  layers = 1  heads = 2  d_ff = 32  experts = 2  top_k = 1  seq_len = 16 }
data  { corpus = "corpus.txt"  tokens = 20_000 }
train { batch_size = 4  steps = 60  eval_every = 20  log_every = 5  val_batches = 2 }

objective minimize val_loss

phase lr {
  vary matrix_lr in [0.02, 0.08]
}

phase emb after lr {
  vary embedding_lr in [0.3, 1.0]
}

final combine(lr, emb) { repeats = 2 }
"#;

/// The user's own script (`sh`, no Python needed): six "steps" of 0.1 s, then a history and
/// final metrics that depend on the learning rates and the seed only. Each step is a short
/// `sleep`, so a script left running after lrx died is still there when the harness looks.
pub(crate) const SCRIPT: &str = r#"#!/bin/sh
# usage: sh train.sh MATRIX_LR EMBEDDING_LR SEED OUT
lr=$1; emb=$2; seed=$3; out=$4
for step in 1 2 3 4 5 6; do
  sleep 0.1
done
awk -v lr="$lr" -v emb="$emb" -v seed="$seed" -v out="$out" 'BEGIN {
  d = lr - 0.05; e = emb - 0.6; noise = (seed % 7) / 1000
  printf "step,train_loss\n" > (out "/metrics.csv")
  for (s = 1; s <= 4; s++) printf "%d,%.6f\n", s, 2 + 1 / s + d * d * 100 + e * e + noise >> (out "/metrics.csv")
  printf "{\"val_loss\": %.6f, \"val_accuracy\": %.4f}\n", 1.2 + d * d * 100 + e * e + noise, 0.5 - e * e / 10 > (out "/metrics.json")
}'
"#;

/// The same shape of study with the command trainer: 7 runs of about 0.6 s each.
pub(crate) const COMMAND_STUDY: &str = r#"
train {
  trainer = command("sh train.sh {matrix_lr} {embedding_lr} {seed} {out}")
  deps    = ["train.sh"]
}

objective minimize val_loss

phase lr {
  vary matrix_lr in [0.01, 0.05, 0.2]
}

phase emb after lr {
  vary embedding_lr in [0.3, 1.0]
}

final combine(lr, emb) { repeats = 2 }
"#;

/// One of the two studies the harness runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    Builtin,
    Command,
}

impl Kind {
    pub(crate) fn text(self) -> &'static str {
        match self {
            Kind::Builtin => BUILTIN_STUDY,
            Kind::Command => COMMAND_STUDY,
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Builtin => "built-in trainer",
            Kind::Command => "command trainer",
        }
    }
}

/// The expensive scenarios take turns: two at once on two cores would stretch every run and
/// make the moments drawn from the reference's duration meaningless.
pub(crate) fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The seed of every random schedule: `LRX_FAULT_SEED`, or a fixed default.
pub(crate) fn seed() -> u64 {
    std::env::var("LRX_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_130)
}

/// A seeded random source for fault moments.
pub(crate) struct Rng(ChaCha8Rng);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }
}

/// A folder holding a study, its corpus and script, its cache and its outputs.
pub(crate) struct Sandbox {
    _dir: tempfile::TempDir,
    root: PathBuf,
    pub(crate) kind: Kind,
}

pub(crate) fn corpus() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/genesis.txt"))
        .expect("the fixture corpus")
}

impl Sandbox {
    pub(crate) fn new(kind: Kind) -> Sandbox {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let root = dir.path().canonicalize().expect("a canonical path");
        fs::write(root.join("study.lrx"), kind.text()).expect("write the study");
        fs::write(root.join("corpus.txt"), corpus()).expect("write the corpus");
        fs::write(root.join("train.sh"), SCRIPT).expect("write the script");
        Sandbox { _dir: dir, root, kind }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.root
    }

    pub(crate) fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// The default output folder of a study file `<stem>.lrx`.
    pub(crate) fn out(&self, stem: &str) -> PathBuf {
        self.root.join("runs").join(stem)
    }

    /// `lrx ARGS` in the sandbox, with the environment of a user's shell minus colours.
    pub(crate) fn lrx(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lrx"));
        cmd.current_dir(&self.root).args(args).env_remove("LRX_CACHE").env("NO_COLOR", "1").stdin(Stdio::null());
        cmd
    }

    /// Starts `lrx ARGS` with stdout and stderr going to files named after `tag`.
    pub(crate) fn spawn(&self, args: &[&str], tag: &str) -> Running {
        let logs = self.root.join("logs");
        fs::create_dir_all(&logs).expect("a log folder");
        let stdout = logs.join(format!("{tag}.out"));
        let stderr = logs.join(format!("{tag}.err"));
        let child = self
            .lrx(args)
            .stdout(fs::File::create(&stdout).expect("a log file"))
            .stderr(fs::File::create(&stderr).expect("a log file"))
            .spawn()
            .expect("lrx starts");
        Running { child, stdout, stderr, started: Instant::now() }
    }

    /// Runs `lrx ARGS` to its end (at most `limit`; then it is killed and reported).
    pub(crate) fn run(&self, args: &[&str], limit: Duration) -> Done {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let tag = format!("run-{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        self.spawn(args, &tag).finish(limit)
    }

    /// `lrx cache verify`: `(exit code, stdout + stderr)`.
    pub(crate) fn verify(&self, cache: &Path) -> (Option<i32>, String) {
        let d = self.run(&["cache", "verify", "--cache", &cache.to_string_lossy()], Duration::from_secs(60));
        (d.code, format!("{}{}", d.stdout, d.stderr))
    }
}

/// The keys of every entry folder under `cache/runs/`.
pub(crate) fn entry_keys(cache: &Path) -> BTreeSet<String> {
    entry_dirs(cache).into_iter().filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).collect()
}

/// Entry folders (or whatever stands where one would): `runs/<2 hex>/<64 hex>`.
pub(crate) fn entry_dirs(cache: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for shard in fs::read_dir(cache.join("runs")).into_iter().flatten().flatten() {
        for e in fs::read_dir(shard.path()).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// A running `lrx`.
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) stdout: PathBuf,
    pub(crate) stderr: PathBuf,
    pub(crate) started: Instant,
}

/// A finished `lrx`.
#[derive(Debug)]
pub(crate) struct Done {
    /// The exit code; `None` when a signal ended it.
    pub(crate) code: Option<i32>,
    pub(crate) signal: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) seconds: f64,
    pub(crate) timed_out: bool,
}

impl Done {
    pub(crate) fn json(&self) -> Result<Json, String> {
        serde_json::from_str(&self.stdout).map_err(|e| format!("stdout is not JSON ({e}): {}", tail(&self.stdout, 400)))
    }

    /// The exit status in words: `exit 0`, `signal 9`, `timed out`.
    pub(crate) fn status(&self) -> String {
        match (self.code, self.signal, self.timed_out) {
            (_, _, true) => "timed out".into(),
            (Some(c), _, _) => format!("exit {c}"),
            (None, Some(s), _) => format!("signal {s}"),
            (None, None, _) => "unknown status".into(),
        }
    }
}

/// The last `n` bytes of a text, on a character boundary.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let mut start = text.len().saturating_sub(n);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

impl Running {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`KILL`, `INT`, `TERM`).
    pub(crate) fn signal(&mut self, name: &str) {
        if name == "KILL" {
            let _ = self.child.kill();
        } else {
            signal(self.pid(), name);
        }
    }

    pub(crate) fn try_done(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for the end (killing it after `limit`) and reads its output.
    pub(crate) fn finish(mut self, limit: Duration) -> Done {
        let deadline = Instant::now() + limit;
        let mut timed_out = false;
        let status = loop {
            if let Some(s) = self.try_done() {
                break s;
            }
            if Instant::now() > deadline {
                timed_out = true;
                let _ = self.child.kill();
                break self.child.wait().expect("a killed child is reaped");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let read = |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
        Done {
            code: status.code(),
            signal: status.signal(),
            stdout: read(&self.stdout),
            stderr: read(&self.stderr),
            seconds: self.started.elapsed().as_secs_f64(),
            timed_out,
        }
    }
}

/// Keys whose values change from one execution of the same study to the next (time, whether a
/// run came from the cache, counts of what this invocation trained), left out of comparisons.
const VOLATILE: [&str; 9] =
    ["cached", "seconds", "tokens_per_sec", "elapsed", "acc_per_min", "timing", "runs", "wall", "train_wall"];

/// A JSON document without its volatile keys.
pub(crate) fn stable_json(v: &Json) -> Json {
    match v {
        Json::Object(m) => Json::Object(
            m.iter()
                .filter(|(k, _)| !VOLATILE.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), stable_json(v)))
                .collect(),
        ),
        Json::Array(a) => Json::Array(a.iter().map(stable_json).collect()),
        other => other.clone(),
    }
}

/// A CSV file as rows of cells, volatile columns left out; an error if it does not parse.
pub(crate) fn stable_csv(bytes: &[u8]) -> Result<Vec<Vec<String>>, String> {
    let mut r = csv::ReaderBuilder::new().has_headers(false).from_reader(bytes);
    let mut rows: Vec<Vec<String>> = Vec::new();
    for rec in r.records() {
        rows.push(rec.map_err(|e| e.to_string())?.iter().map(str::to_owned).collect());
    }
    let Some(header) = rows.first().cloned() else { return Err("an empty CSV file".into()) };
    if rows.iter().any(|r| r.len() != header.len()) {
        return Err("rows of different lengths".into());
    }
    let keep: Vec<usize> = (0..header.len()).filter(|&i| !VOLATILE.contains(&header[i].as_str())).collect();
    Ok(rows.into_iter().map(|r| keep.iter().map(|&i| r[i].clone()).collect()).collect())
}

/// Every file of an output folder, parsed and without volatile fields: what must equal the
/// reference. Reports (`report.*`, figures) are not compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Outputs(pub(crate) BTreeMap<String, String>);

/// Reads an output folder; `Err` lists files that do not parse (a half-written file) and
/// temporary files.
pub(crate) fn read_outputs(out: &Path) -> Result<Outputs, String> {
    let mut files = BTreeMap::new();
    let mut problems = Vec::new();
    let mut stack = vec![out.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path();
            let rel = path.strip_prefix(out).expect("under the folder").to_string_lossy().into_owned();
            // Temporary and staging files are counted by `leftovers`, not read as outputs.
            if is_temporary(&e.file_name().to_string_lossy()) {
                continue;
            }
            if path.is_dir() {
                if rel != "figures" {
                    stack.push(path);
                }
                continue;
            }
            // Reports are not `run`'s.
            if rel.starts_with("report.") {
                continue;
            }
            let bytes = fs::read(&path).unwrap_or_default();
            let ext = Path::new(&rel).extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
            let parsed = if ext == "csv" {
                stable_csv(&bytes).map(|rows| rows.iter().map(|r| r.join("\u{1f}")).collect::<Vec<_>>().join("\n"))
            } else if ext == "json" {
                serde_json::from_slice::<Json>(&bytes).map(|j| stable_json(&j).to_string()).map_err(|e| e.to_string())
            } else {
                Err("not an output file lrx writes (a temporary file?)".to_owned())
            };
            match parsed {
                Ok(text) => {
                    files.insert(rel, text);
                }
                Err(e) => problems.push(format!("`{rel}`: {e}")),
            }
        }
    }
    if problems.is_empty() { Ok(Outputs(files)) } else { Err(problems.join("; ")) }
}

/// What differs between two sets of outputs, briefly.
pub(crate) fn diff_outputs(expected: &Outputs, got: &Outputs) -> String {
    let mut s = String::new();
    for (k, v) in &expected.0 {
        match got.0.get(k) {
            None => {
                let _ = write!(s, "missing `{k}`; ");
            }
            Some(g) if g != v => {
                let first = v
                    .lines()
                    .zip(g.lines())
                    .find(|(a, b)| a != b)
                    .map_or_else(|| "lengths differ".into(), |(a, b)| format!("{a:?} != {b:?}"));
                let _ = write!(s, "`{k}` differs: {}; ", tail(&first, 300));
            }
            Some(_) => {}
        }
    }
    for k in got.0.keys().filter(|k| !expected.0.contains_key(*k)) {
        let _ = write!(s, "extra `{k}`; ");
    }
    s
}

/// What is left under a cache's `tmp/` and an output folder that nobody will clean: under
/// `tmp/`, files and folders whose names carry a process id or key (fixed infrastructure
/// folders such as `tmp/command` may stay, empty); in the output folder, temporary and hidden
/// staging files and folders.
pub(crate) fn leftovers(cache: &Path, out: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![cache.join("tmp")];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if !is_dir || name.bytes().any(|b| b.is_ascii_digit()) {
                found.push(
                    path.strip_prefix(cache).map_or_else(|_| path.display().to_string(), |p| p.display().to_string()),
                );
            } else {
                stack.push(path);
            }
        }
    }
    let mut stack = vec![out.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path();
            if is_temporary(&e.file_name().to_string_lossy()) {
                found.push(path.display().to_string());
            } else if path.is_dir() {
                stack.push(path);
            }
        }
    }
    found
}

/// A name in an output folder that is not an output: a temporary file (`results.tmp.123`) or a
/// hidden staging file or folder (`.staging.123`).
fn is_temporary(name: &str) -> bool {
    name.starts_with('.') || name.contains(".tmp")
}

/// Processes whose working folder is inside `root` (the user's script runs in the study's
/// folder): after lrx is gone, any such process was left running.
pub(crate) fn processes_in(root: &Path) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid == std::process::id() {
            continue;
        }
        let Ok(cwd) = fs::read_link(e.path().join("cwd")) else { continue };
        if !cwd.starts_with(root) {
            continue;
        }
        // A zombie is dead already; only its parent has not reaped it.
        let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        if stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')) {
            continue;
        }
        let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
        found.push((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ").trim().to_owned()));
    }
    found
}

/// Sends a signal by name at once. Not through `kill(1)`: it is not on every machine, and
/// spawning it (or `sh -c kill`) takes milliseconds, longer than lrx's start-up window.
#[allow(unsafe_code, reason = "kill(2) is FFI")]
pub(crate) fn signal(pid: u32, name: &str) {
    let sig = match name {
        "INT" => libc::SIGINT,
        "TERM" => libc::SIGTERM,
        _ => libc::SIGKILL,
    };
    // SAFETY: kill(2) reads no memory of ours; the pid is a child of this process or one of its
    // descendants, which the harness may end.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Ends processes the harness's own `lrx` left behind, so that one leak is counted once.
pub(crate) fn end_processes(procs: &[(u32, String)]) {
    for (pid, _) in procs {
        // It may have ended by itself meanwhile.
        signal(*pid, "KILL");
    }
}

/// An uninterrupted run of a study on a fresh cache: what every fault must leave unchanged.
pub(crate) struct Reference {
    pub(crate) kind: Kind,
    /// Wall time of the whole `lrx run`, start to exit.
    pub(crate) seconds: f64,
    pub(crate) keys: BTreeSet<String>,
    /// `runs.trained` of the uninterrupted run: the study's distinct runs.
    pub(crate) trained: u64,
    pub(crate) outputs: Outputs,
    /// `lrx run --json` of the uninterrupted run, without volatile fields.
    pub(crate) run_json: Json,
    /// `lrx show --json` afterwards, without volatile fields.
    pub(crate) show: Json,
    /// `runs/study/report.md` of `lrx report`.
    pub(crate) report_md: String,
    /// The cache's folders and files (path relative to the cache; bytes, `None` for a folder),
    /// to seed other scenarios with a cache as lrx leaves it.
    pub(crate) cache_files: Vec<(PathBuf, Option<Vec<u8>>)>,
}

/// The reference of a study, computed once per process.
pub(crate) fn reference(kind: Kind) -> &'static Reference {
    static BUILTIN: OnceLock<Reference> = OnceLock::new();
    static COMMAND: OnceLock<Reference> = OnceLock::new();
    let cell = match kind {
        Kind::Builtin => &BUILTIN,
        Kind::Command => &COMMAND,
    };
    cell.get_or_init(|| {
        let _turn = heavy();
        compute_reference(kind)
    })
}

fn compute_reference(kind: Kind) -> Reference {
    let sb = Sandbox::new(kind);
    let run = sb.run(&["run", "study.lrx", "--json", "-q"], Duration::from_secs(300));
    assert_eq!(run.code, Some(0), "the reference run of the {} study: {run:?}", kind.label());
    let json = run.json().expect("the reference run's JSON");
    let trained = json["runs"]["trained"].as_u64().expect("runs.trained");
    let keys = entry_keys(&sb.cache());
    assert_eq!(keys.len() as u64, trained, "one cache entry per trained run");
    let outputs = read_outputs(&sb.out("study")).expect("the reference outputs parse");
    let show = sb.run(&["show", "study.lrx", "--json"], Duration::from_secs(60));
    assert_eq!(show.code, Some(0), "{show:?}");
    let report = sb.run(&["report", "study.lrx"], Duration::from_secs(60));
    assert_eq!(report.code, Some(0), "{report:?}");
    let report_md = fs::read_to_string(sb.out("study").join("report.md")).expect("report.md");
    let mut cache_files = Vec::new();
    let cache = sb.cache();
    let mut stack = vec![cache.clone()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).expect("a cache folder").flatten() {
            let path = e.path();
            let rel = path.strip_prefix(&cache).expect("in the cache").to_owned();
            if path.is_dir() {
                cache_files.push((rel, None));
                stack.push(path);
            } else {
                cache_files.push((rel, Some(fs::read(&path).expect("a cache file"))));
            }
        }
    }
    cache_files.sort();
    eprintln!("reference ({}): {} runs in {:.2} s", kind.label(), trained, run.seconds);
    Reference {
        kind,
        seconds: run.seconds,
        keys,
        trained,
        outputs,
        run_json: stable_json(&json),
        show: stable_json(&show.json().expect("show --json")),
        report_md,
        cache_files,
    }
}

impl Reference {
    /// Writes the reference's cache entries under `cache`.
    pub(crate) fn seed_cache(&self, cache: &Path) {
        for (rel, bytes) in &self.cache_files {
            let path = cache.join(rel);
            match bytes {
                None => fs::create_dir_all(&path).expect("a cache folder"),
                Some(bytes) => {
                    fs::create_dir_all(path.parent().expect("a parent")).expect("a cache folder");
                    fs::write(&path, bytes).expect("a cache file");
                }
            }
        }
    }

    /// A sandbox whose cache holds every run of the study.
    pub(crate) fn warm_sandbox(&self) -> Sandbox {
        let sb = Sandbox::new(self.kind);
        self.seed_cache(&sb.cache());
        sb
    }
}

/// Counts of one check over a scenario: how often it was made, and each time it failed.
#[derive(Default, Debug, Clone)]
pub(crate) struct Check {
    pub(crate) tried: usize,
    pub(crate) failures: Vec<String>,
}

/// The checks of one scenario, by name, in the order they were first made.
#[derive(Default, Debug, Clone)]
pub(crate) struct Tally {
    pub(crate) order: Vec<&'static str>,
    pub(crate) checks: BTreeMap<&'static str, Check>,
    /// Printed with every failure: how to replay.
    pub(crate) context: String,
}

impl Tally {
    pub(crate) fn new(context: String) -> Tally {
        Tally { context, ..Tally::default() }
    }

    /// Records one check; `detail` says what went wrong when `ok` is false.
    pub(crate) fn check(&mut self, name: &'static str, ok: bool, detail: impl FnOnce() -> String) {
        if !self.checks.contains_key(name) {
            self.order.push(name);
        }
        let c = self.checks.entry(name).or_default();
        c.tried += 1;
        if !ok {
            c.failures.push(detail());
        }
    }

    /// Markdown rows: `| scenario | check | tried | failed |`.
    pub(crate) fn rows(&self, scenario: &str) -> String {
        let mut s = String::new();
        for name in &self.order {
            let c = &self.checks[name];
            let _ = writeln!(s, "| {scenario} | {name} | {} | {} |", c.tried, c.failures.len());
        }
        s
    }

    /// Panics, listing the failures, when any of these checks failed or was never made.
    pub(crate) fn assert_clean(&self, names: &[&'static str]) {
        let mut report = String::new();
        for name in names {
            match self.checks.get(name) {
                None => {
                    let _ = writeln!(report, "check `{name}` was never made");
                }
                Some(c) if !c.failures.is_empty() => {
                    let _ = writeln!(report, "`{name}` failed {} of {} times:", c.failures.len(), c.tried);
                    for f in c.failures.iter().take(8) {
                        let _ = writeln!(report, "  - {f}");
                    }
                }
                Some(_) => {}
            }
        }
        assert!(report.is_empty(), "{}\n{report}", self.context);
    }
}

/// The header of the tables the tests print (`--nocapture`), to paste into `RELIABILITY.md`.
pub(crate) const TABLE_HEADER: &str = "| scenario | check | tried | failed |\n|---|---|---:|---:|\n";

/// Prints a finished scenario's table in one write, so parallel tests do not interleave.
pub(crate) fn print_table(title: &str, rows: &str) {
    println!("\n{title}\n\n{TABLE_HEADER}{rows}");
}

/// A tmpfs mounted for one test, unmounted when dropped. `None` (with the reason) where this
/// process may not mount file systems.
pub(crate) struct Mount {
    pub(crate) path: PathBuf,
}

impl Mount {
    pub(crate) fn tmpfs(path: &Path, size_kib: u64) -> Result<Mount, String> {
        fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k,mode=0755"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(Mount { path: path.to_owned() })
        } else {
            Err(format!("mount -t tmpfs: {}", String::from_utf8_lossy(&out.stderr).trim()))
        }
    }

    /// `mount -o remount,OPTIONS`.
    pub(crate) fn remount(&self, options: &str) -> Result<(), String> {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.path)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()) }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
