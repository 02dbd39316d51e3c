//! The Slurm executor: each run the engine hands over becomes a task of a job array that runs
//! `lrx worker MANIFEST` against the shared cache; one `squeue` per poll follows all of them.
//!
//! A run's job trains it through `runner::execute` on whatever node Slurm picks and publishes
//! it to the cache like a local run would (same key, same entry), then leaves an outcome file
//! in `<cache>/slurm/`. lrx reads outcomes from there, never from Slurm's accounting (which a
//! cluster may not keep): `squeue` only says whether a job still exists. A job that ends
//! without an outcome (killed, out of memory, node failure) is retried up to `retries` times,
//! then recorded as a failed run with its log's tail. A job told to stop (a warning signal
//! before its time limit, preemption) saves its run's state; the run continues in a new job
//! from there. Arrays are named `lrx-<manifest>`, and the manifest in the cache lists their
//! runs: a restarted `lrx run` adopts the tasks still queued or running instead of submitting
//! the same runs again.

pub mod files;
pub mod tools;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use self::files::{JobFile, Layout, OutcomeFile, WorkerOutcome};
use self::tools::{Queued, SlurmError, Task};
use super::executor::{Done, Executor, Job, Session};
use super::progress::{Event, Observer};
use super::runner::{Finished, Outcome, Source};
use crate::cache::{Lookup, RunKey, Store};
use crate::spec::{CancelFlag, RunResult};

/// The most tasks in one array (Slurm's default `MaxArraySize` is 1001).
const MAX_ARRAY: usize = 1000;

/// What every job asks of Slurm, and how lrx follows them.
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// `--time` (Slurm's formats: `MM`, `HH:MM:SS`, `D-HH`, ...).
    pub time: Option<String>,
    pub cpus_per_task: Option<u32>,
    pub mem: Option<String>,
    pub gres: Option<String>,
    /// More `sbatch` arguments, passed as they are, after lrx's own.
    pub extra: Vec<String>,
    /// Jobs in flight at once.
    pub max_jobs: usize,
    /// Times a job that ends without a result is submitted again before its run counts as failed.
    pub retries: u32,
    /// Seconds between polls while something changes; up to five times that while nothing does.
    pub poll: Duration,
    /// Seconds before the time limit at which a job is told to save its state (`--signal`).
    pub signal_before: u32,
}

/// What the executor did, for `--verbose` and the benchmark.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub sbatch_calls: usize,
    pub squeue_calls: usize,
    pub submitted: usize,
    pub adopted: usize,
    pub retried: usize,
    pub resubmitted_suspended: usize,
}

/// Runs a study's runs as Slurm jobs.
pub struct SlurmExecutor<'a> {
    pub store: &'a Store,
    pub observer: &'a dyn Observer,
    /// Raised by Ctrl-C: the study's jobs are cancelled (`scancel`).
    pub cancel: CancelFlag,
    pub options: SlurmOptions,
    /// The `lrx` binary jobs run (on a filesystem every node sees).
    pub lrx: PathBuf,
    /// The shared cache, absolute.
    pub cache: PathBuf,
    /// The study's folder, absolute.
    pub base_dir: PathBuf,
    /// The jobs' working folder (`--chdir`), absolute.
    pub workdir: PathBuf,
    pub device: String,
    pub stats: Mutex<Stats>,
}

impl Executor for SlurmExecutor<'_> {
    fn capacity(&self) -> usize {
        self.options.max_jobs.max(1)
    }

    fn session(&self, body: &mut dyn FnMut(&mut dyn Session)) {
        let mut session = SlurmSession {
            ex: self,
            layout: Layout::new(&self.cache),
            queue: Vec::new(),
            tracked: BTreeMap::new(),
            arrays: HashMap::new(),
            done: VecDeque::new(),
            adoptable: None,
            wait: self.options.poll,
            cancelled: false,
            squeue_failing: false,
        };
        body(&mut session);
        // The engine collects every job before it leaves; anything left (an early return) is
        // not left running.
        if !session.tracked.is_empty() {
            session.cancel_all();
        }
    }
}

/// A run waiting to be submitted, and how many of its jobs failed so far.
struct Queued_ {
    job: Job,
    failures: u32,
}

/// A run whose job is in Slurm's hands.
struct Tracked {
    job: Job,
    failures: u32,
    started: bool,
    /// Polls that found the job ended (or gone) without a final outcome: one is allowed for
    /// the outcome file to show up on a shared filesystem.
    ended_polls: u32,
}

/// An array this session submitted: its manifest, removed once none of its tasks is followed.
struct Array {
    manifest: PathBuf,
    open: usize,
    ours: bool,
}

struct SlurmSession<'s, 'a> {
    ex: &'s SlurmExecutor<'a>,
    layout: Layout,
    queue: Vec<Queued_>,
    tracked: BTreeMap<Task, Tracked>,
    arrays: HashMap<u64, Array>,
    done: VecDeque<Done>,
    /// Tasks of earlier invocations still queued or running, by run key (read once).
    adoptable: Option<HashMap<RunKey, Task>>,
    wait: Duration,
    cancelled: bool,
    squeue_failing: bool,
}

impl Session for SlurmSession<'_, '_> {
    fn submit(&mut self, job: Job) {
        // Batched: everything submitted before the next `next` goes as one array.
        self.queue.push(Queued_ { job, failures: 0 });
    }

    fn next(&mut self) -> Option<Done> {
        loop {
            if let Some(done) = self.done.pop_front() {
                return Some(done);
            }
            if self.ex.cancel.is_cancelled() {
                self.cancel_all();
                // Runs queued again after the cancellation (a retry) are not submitted.
                for q in std::mem::take(&mut self.queue) {
                    self.done.push_back((q.job, Ok(Outcome::Cancelled)));
                }
                if let Some(done) = self.done.pop_front() {
                    return Some(done);
                }
            }
            self.flush();
            if !self.done.is_empty() {
                continue;
            }
            if self.tracked.is_empty() {
                return None;
            }
            self.sleep();
            if self.ex.cancel.is_cancelled() {
                continue;
            }
            let changed = self.poll();
            let cap = (self.ex.options.poll * 5).max(self.ex.options.poll);
            self.wait = if changed { self.ex.options.poll } else { (self.wait.mul_f64(1.5)).min(cap) };
        }
    }

    fn cancel_all(&mut self) {
        if self.cancelled {
            return;
        }
        self.cancelled = true;
        let mut arrays: Vec<u64> = self.tracked.keys().map(|t| t.array).collect();
        arrays.dedup();
        if !arrays.is_empty() {
            let args: Vec<String> = arrays.iter().map(u64::to_string).collect();
            if let Err(e) = tools::call("scancel", &args) {
                self.warn(format!("cannot cancel the study's Slurm jobs: {e}"));
            }
        }
        // Runs that finished meanwhile are kept; the rest are cancelled.
        let tasks: Vec<Task> = self.tracked.keys().copied().collect();
        for task in tasks {
            if let Some(OutcomeFile { outcome: WorkerOutcome::Finished { trained, train_wall, resumed_at }, .. }) =
                self.outcome(task)
            {
                self.finish(task, trained, train_wall, resumed_at);
            } else if let Some(t) = self.untrack(task) {
                self.done.push_back((t.job, Ok(Outcome::Cancelled)));
            }
        }
        for q in std::mem::take(&mut self.queue) {
            self.done.push_back((q.job, Ok(Outcome::Cancelled)));
        }
    }
}

impl SlurmSession<'_, '_> {
    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.ex.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn warn(&self, message: String) {
        self.ex.observer.event(Event::Warning(message));
    }

    /// Waits for the next poll, waking early for Ctrl-C.
    fn sleep(&self) {
        let until = Instant::now() + self.wait;
        while Instant::now() < until && !self.ex.cancel.is_cancelled() {
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
    }

    /// One `squeue` for every job of this user.
    fn squeue(&mut self) -> Result<Vec<Queued>, SlurmError> {
        self.stats().squeue_calls += 1;
        let out = tools::call("squeue", &tools::squeue_args());
        match &out {
            Err(e) if !self.squeue_failing => {
                self.squeue_failing = true;
                self.warn(format!("{e}; polling again"));
            }
            Ok(_) => self.squeue_failing = false,
            Err(_) => {}
        }
        out.map(|o| tools::parse_squeue(&o))
    }

    /// Tasks of earlier `lrx run`s on this cache still queued or running, by run key.
    fn adoptable(&mut self) -> &mut HashMap<RunKey, Task> {
        if self.adoptable.is_none() {
            let mut found = HashMap::new();
            let mut manifests: HashMap<String, Option<Vec<RunKey>>> = HashMap::new();
            for q in self.squeue().unwrap_or_default() {
                let Some(id) = q.name.strip_prefix("lrx-") else { continue };
                if tools::is_final(&q.state) || id.contains(['/', '\\']) || id.starts_with('.') {
                    continue;
                }
                let keys = manifests.entry(id.to_owned()).or_insert_with(|| read_manifest(&self.layout.manifest(id)));
                if let Some(key) = keys.as_ref().and_then(|k| k.get(q.task.index as usize)) {
                    found.insert(*key, q.task);
                }
            }
            self.adoptable = Some(found);
        }
        self.adoptable.get_or_insert_with(HashMap::new)
    }

    /// Submits the queued runs: adopted where an earlier job of the run is still alive, the
    /// rest as job arrays.
    fn flush(&mut self) {
        if self.queue.is_empty() || self.cancelled {
            return;
        }
        let queue = std::mem::take(&mut self.queue);
        let mut fresh = Vec::new();
        let mut adopted = 0;
        for q in queue {
            let key = q.job.input.key();
            let task = if q.job.force { None } else { self.adoptable().remove(&key) };
            if let Some(task) = task {
                adopted += 1;
                self.track(task, q.job, q.failures);
                self.arrays
                    .entry(task.array)
                    .or_insert_with(|| Array { manifest: PathBuf::new(), open: 0, ours: false })
                    .open += 1;
            } else {
                fresh.push(q);
            }
        }
        if adopted > 0 {
            self.stats().adopted += adopted;
            self.ex.observer.event(Event::Note(format!(
                "slurm: following {adopted} job(s) of an earlier `lrx run` that are still queued or running"
            )));
        }
        while !fresh.is_empty() {
            let rest = fresh.split_off(fresh.len().min(MAX_ARRAY));
            let batch = std::mem::replace(&mut fresh, rest);
            self.submit_array(batch);
        }
    }

    fn track(&mut self, task: Task, job: Job, failures: u32) {
        self.tracked.insert(task, Tracked { job, failures, started: false, ended_polls: 0 });
    }

    /// One `sbatch --array` for `batch`; a batch Slurm refuses ends as failed runs.
    fn submit_array(&mut self, batch: Vec<Queued_>) {
        let first = batch[0].job.input.key();
        let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
        let id = format!("{}-{millis}-{}", first.short(), files::unique());
        let manifest = self.layout.manifest(&id);
        let prepared = self.prepare(&batch, &manifest);
        let submitted = prepared.map_err(|e| e.to_string()).and_then(|()| {
            let args = self.sbatch_args(&id, batch.len(), &manifest);
            let mut tries = 0;
            loop {
                self.stats().sbatch_calls += 1;
                match tools::call("sbatch", &args).and_then(|out| tools::parse_job_id(&out)) {
                    Ok(array) => break Ok(array),
                    // A busy controller times out now and then; a refusal is not retried.
                    Err(e @ SlurmError::Failed { .. }) if tries < 2 && e.to_string().contains("timed out") => {
                        tries += 1;
                        std::thread::sleep(Duration::from_secs(1 << tries));
                    }
                    Err(e) => break Err(e.to_string()),
                }
            }
        });
        match submitted {
            Ok(array) => {
                {
                    let mut s = self.stats();
                    s.submitted += batch.len();
                }
                self.arrays.insert(array, Array { manifest, open: batch.len(), ours: true });
                for (index, q) in batch.into_iter().enumerate() {
                    self.track(Task { array, index: index as u32 }, q.job, q.failures);
                }
            }
            Err(reason) => {
                let _ = std::fs::remove_file(&manifest);
                for q in batch {
                    let done = self.record_failure(q.job, &format!("cannot submit to Slurm: {reason}"), None);
                    self.done.push_back(done);
                }
            }
        }
    }

    /// Writes the batch's job files and manifest (and the batch script), clearing outcomes of
    /// earlier jobs of the same runs.
    fn prepare(&self, batch: &[Queued_], manifest: &Path) -> std::io::Result<()> {
        // Slurm creates no folder for `--output`: a job whose log cannot be opened fails at once.
        if let Some(logs) = self.layout.log_pattern().parent() {
            std::fs::create_dir_all(logs)?;
        }
        let script = self.layout.script();
        if std::fs::read_to_string(&script).ok().as_deref() != Some(files::SCRIPT) {
            files::write_atomic(&script, files::SCRIPT.as_bytes())?;
        }
        let mut keys = String::new();
        for q in batch {
            let key = q.job.input.key();
            let job = JobFile {
                input: q.job.input.clone(),
                force: q.job.force,
                resume_from: q.job.resume_from,
                device: self.ex.device.clone(),
                base_dir: self.ex.base_dir.clone(),
                cache: self.ex.cache.clone(),
            };
            files::write_json(&self.layout.job_file(key), &job)?;
            match std::fs::remove_file(self.layout.outcome_file(key)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            keys.push_str(&key.to_hex());
            keys.push('\n');
        }
        files::write_atomic(manifest, keys.as_bytes())
    }

    fn sbatch_args(&self, id: &str, tasks: usize, manifest: &Path) -> Vec<String> {
        let o = &self.ex.options;
        let path = |p: &Path| p.display().to_string();
        let mut args = vec![
            "--parsable".to_owned(),
            format!("--array=0-{}", tasks - 1),
            format!("--job-name=lrx-{id}"),
            format!("--output={}", path(&self.layout.log_pattern())),
            "--open-mode=append".to_owned(),
            format!("--chdir={}", path(&self.ex.workdir)),
            format!("--signal=B:USR1@{}", o.signal_before),
        ];
        let mut opt = |flag: &str, value: Option<String>| {
            if let Some(v) = value {
                args.push(format!("--{flag}={v}"));
            }
        };
        opt("partition", o.partition.clone());
        opt("account", o.account.clone());
        opt("qos", o.qos.clone());
        opt("time", o.time.clone());
        opt("cpus-per-task", o.cpus_per_task.map(|c| c.to_string()));
        opt("mem", o.mem.clone());
        opt("gres", o.gres.clone());
        args.extend(o.extra.iter().cloned());
        args.push(path(&self.layout.script()));
        args.push(path(&self.ex.lrx));
        args.push("worker".to_owned());
        args.push(path(manifest));
        args
    }

    /// A task's outcome file, if its worker left one.
    fn outcome(&self, task: Task) -> Option<OutcomeFile> {
        let key = self.tracked.get(&task)?.job.input.key();
        files::read_json::<OutcomeFile>(&self.layout.outcome_file(key)).filter(|o| o.job == task.to_string())
    }

    /// One poll: settles every task whose job ended. Returns whether anything changed.
    fn poll(&mut self) -> bool {
        let Ok(queued) = self.squeue() else { return false };
        let states = tools::states(&queued);
        let mut changed = false;
        let tasks: Vec<Task> = self.tracked.keys().copied().collect();
        for task in tasks {
            let state = states.get(&task).copied();
            if state == Some("RUNNING")
                && let Some(t) = self.tracked.get_mut(&task)
                && !t.started
            {
                t.started = true;
                changed = true;
                let label = t.job.label.clone();
                self.ex.observer.event(Event::Started { label, total_steps: None });
            }
            // A pending task has not run yet: no outcome of its own can exist.
            if state == Some("PENDING") {
                continue;
            }
            let ended = state.is_none_or(tools::is_final);
            match self.outcome(task).map(|o| o.outcome) {
                Some(WorkerOutcome::Finished { trained, train_wall, resumed_at }) => {
                    self.finish(task, trained, train_wall, resumed_at);
                    changed = true;
                }
                Some(WorkerOutcome::Suspended { step }) => {
                    if state.is_some_and(tools::is_waiting) {
                        // Slurm requeued the job itself (preemption): its next start resumes.
                        if let Some(t) = self.tracked.get(&task) {
                            let _ = std::fs::remove_file(self.layout.outcome_file(t.job.input.key()));
                        }
                    } else if ended {
                        self.resubmit_suspended(task, step);
                        changed = true;
                    }
                }
                other if ended => {
                    let Some(t) = self.tracked.get_mut(&task) else { continue };
                    t.ended_polls += 1;
                    if other.is_none() && t.ended_polls < 2 {
                        continue;
                    }
                    let reason = match other {
                        Some(WorkerOutcome::Error { message }) => message,
                        Some(WorkerOutcome::Stopped) => {
                            "stopped by Slurm's signal before it could save a checkpoint".into()
                        }
                        _ => format!(
                            "Slurm job {task} {} without a result",
                            state.map_or_else(|| "left the queue".to_owned(), |s| format!("ended {s}"))
                        ),
                    };
                    self.failed(task, &reason);
                    changed = true;
                }
                _ => {}
            }
        }
        changed
    }

    /// Stops following a task; the manifest of an array of ours goes with its last task.
    fn untrack(&mut self, task: Task) -> Option<Tracked> {
        let t = self.tracked.remove(&task)?;
        let key = t.job.input.key();
        let _ = std::fs::remove_file(self.layout.outcome_file(key));
        if let Some(a) = self.arrays.get_mut(&task.array) {
            a.open = a.open.saturating_sub(1);
            if a.open == 0 {
                if a.ours {
                    let _ = std::fs::remove_file(&a.manifest);
                }
                self.arrays.remove(&task.array);
            }
        }
        Some(t)
    }

    /// The worker put the run in the cache (its entry or its failure record).
    fn finish(&mut self, task: Task, trained: bool, train_wall: f64, resumed_at: Option<u64>) {
        let Some(t) = self.untrack(task) else { return };
        let key = t.job.input.key();
        let source = if trained { Source::Trained } else { Source::Cached };
        let finished = match self.ex.store.get(key) {
            Lookup::Hit(entry) => Some(Finished {
                key,
                result: entry.result,
                source,
                train_wall: Duration::from_secs_f64(train_wall.max(0.0)),
                failure: None,
                resumed_at,
            }),
            _ => self
                .ex
                .store
                .failure(key)
                .and_then(|r| r.last().cloned())
                .map(|attempt| Finished { source, ..Finished::recorded_failure(key, attempt) }),
        };
        let _ = std::fs::remove_file(self.layout.job_file(key));
        let _ = std::fs::remove_file(self.layout.log(task.array, task.index));
        if let Some(f) = finished {
            self.done.push_back((t.job, Ok(Outcome::Finished(Box::new(f)))));
        } else {
            let reason = format!("Slurm job {task} reported a result that the cache does not hold");
            self.track(task, t.job, t.failures);
            self.failed(task, &reason);
        }
    }

    /// A job saved its run's state and stopped: the run continues in a new job.
    fn resubmit_suspended(&mut self, task: Task, step: u64) {
        let Some(t) = self.untrack(task) else { return };
        let _ = std::fs::remove_file(self.layout.log(task.array, task.index));
        self.stats().resubmitted_suspended += 1;
        self.ex.observer.event(Event::Note(format!(
            "slurm: {} saved its state at step {step} (time limit or preemption); it continues in a new job",
            t.job.label
        )));
        self.queue.push(Queued_ { job: t.job, failures: t.failures });
    }

    /// A job ended without a result: submitted again, or recorded as failed.
    fn failed(&mut self, task: Task, reason: &str) {
        let Some(t) = self.untrack(task) else { return };
        let failures = t.failures + 1;
        let log = self.layout.log(task.array, task.index);
        if failures <= self.ex.options.retries {
            self.stats().retried += 1;
            self.warn(format!(
                "{}: {reason}; submitting it again (retry {failures} of {})",
                t.job.label, self.ex.options.retries
            ));
            self.queue.push(Queued_ { job: t.job, failures });
            return;
        }
        let _ = std::fs::remove_file(self.layout.job_file(t.job.input.key()));
        let done = self.record_failure(t.job, reason, Some(&log));
        let _ = std::fs::remove_file(&log);
        self.done.push_back(done);
    }

    /// Records a failed attempt at a run with the tail of its job's log, as the runner would.
    fn record_failure(&self, job: Job, reason: &str, log: Option<&Path>) -> Done {
        let mut result = RunResult::failed(reason.to_owned());
        result.log_tail = log.and_then(|l| files::tail(l, 20));
        let store = self.ex.store;
        let key = job.input.key();
        // The lock is the runner's rule for failure records; a job that still holds it (it
        // cannot be told apart from a dead one here) does not stop the record.
        let _lock = store.try_lock(key).ok().flatten();
        let logs: Vec<PathBuf> = log.filter(|l| l.is_file()).map(Path::to_path_buf).into_iter().collect();
        let recorded = store.record_failure(&job.input, &result, &logs);
        let outcome = recorded.map(|record| {
            let attempt = record.last().cloned();
            let finished = match attempt {
                Some(a) => Finished { source: Source::Trained, ..Finished::recorded_failure(key, a) },
                None => Finished {
                    source: Source::Trained,
                    result,
                    ..Finished::from_cache(key, RunResult::failed(reason.to_owned()))
                },
            };
            Outcome::Finished(Box::new(finished))
        });
        (job, outcome)
    }
}

/// An array's run keys, one a line.
fn read_manifest(path: &Path) -> Option<Vec<RunKey>> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().map(|l| l.trim().parse().ok()).collect()
}
