//! Running the user's script as a process group of its own: output streamed straight into log
//! files, a deadline, cancellation, and the whole group ended whenever the run ends.
//!
//! What survives what: on Ctrl-C or SIGTERM to lrx (which raise the cancel flag), on a timeout,
//! on a failure and after a success, every process of the script's group gets SIGTERM and,
//! after a short grace, SIGKILL. On `kill -9` of lrx nothing of lrx's own code runs any more:
//! the kernel then sends SIGKILL to the script itself (`PR_SET_PDEATHSIG`), and a guard process
//! forked for each script (see [`Guard`]) sees lrx's end of a pipe close and ends the script's
//! whole group the same way, so a data loader or a `torchrun` worker the script started does
//! not hold on to a GPU. A process that leaves the group on purpose (`setsid`, a daemon) is
//! not followed.

use std::fs::File;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::spec::CancelFlag;

/// How often the cancel flag and the deadline are looked at.
const POLL: Duration = Duration::from_millis(20);
/// How long a group gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

/// What to run and where its output goes.
pub(super) struct Job<'a> {
    /// The program and its arguments, already filled.
    pub(super) argv: &'a [String],
    pub(super) cwd: &'a Path,
    /// Added to lrx's own environment.
    pub(super) env: &'a [(&'static str, String)],
    pub(super) stdout: &'a Path,
    pub(super) stderr: &'a Path,
}

/// How a script's run ended.
#[derive(Debug)]
pub(super) enum Ended {
    Exited(ExitStatus),
    TimedOut,
    Cancelled,
    /// `watch` asked for it (the run diverged).
    Stopped,
}

/// Runs a job to its end. `watch` is called at every look (reading the script's progress);
/// `true` stops the job. `Err` only when it could not be started.
pub(super) fn run(
    job: &Job<'_>,
    cancel: &CancelFlag,
    timeout: Option<Duration>,
    watch: &mut dyn FnMut() -> bool,
) -> io::Result<Ended> {
    let (program, args) =
        job.argv.split_first().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the command is empty"))?;
    // The script writes into files, never into a pipe lrx would have to drain: a script may
    // write any amount without blocking, and the logs are on disk while it runs.
    let stdout = File::create(job.stdout)?;
    let stderr = File::create(job.stderr)?;
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(job.cwd)
        .envs(job.env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        // Its own group: signals reach everything the script starts, and a Ctrl-C at the
        // terminal reaches lrx alone, which then stops the script in order.
        .process_group(0);
    die_with_parent(&mut command);
    let mut child = command.spawn()?;
    let group = i32::try_from(child.id()).map_err(io::Error::other)?;
    // Armed until the group has been ended below; dropped, it stands down.
    let guard = Guard::watch(group);
    if guard.is_err() {
        end_group(group, &mut child);
    }
    let _guard = guard?;
    let started = Instant::now();
    let ended = loop {
        if cancel.is_cancelled() {
            break Ended::Cancelled;
        }
        match child.try_wait() {
            Ok(Some(status)) => break Ended::Exited(status),
            Ok(None) => {}
            Err(e) => {
                end_group(group, &mut child);
                return Err(e);
            }
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            break Ended::TimedOut;
        }
        if watch() {
            break Ended::Stopped;
        }
        std::thread::sleep(POLL);
    };
    // Whatever the script left running in its group (background jobs, data loaders) ends with
    // its run.
    end_group(group, &mut child);
    Ok(ended)
}

/// SIGTERM to the group, SIGKILL after the grace to whatever is left; the script is reaped.
fn end_group(group: i32, child: &mut Child) {
    let mut reaped = matches!(child.try_wait(), Ok(Some(_)));
    if !group_exists(group) {
        if !reaped {
            let _ = child.wait();
        }
        return;
    }
    signal_group(group, libc::SIGTERM);
    let start = Instant::now();
    while start.elapsed() < GRACE {
        reaped = reaped || matches!(child.try_wait(), Ok(Some(_)));
        // The group's number stays taken while any member lives, so it cannot name another
        // group here.
        if reaped && !group_exists(group) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    signal_group(group, libc::SIGKILL);
    let _ = child.wait();
}

/// A process that ends a script's group if lrx dies without doing so (`kill -9`, the OOM
/// killer): lrx holds the write end of a pipe, the guard blocks reading it. lrx writes a byte
/// when the run is over (the guard exits quietly); if lrx dies first, the kernel closes its end
/// and the guard's read returns nothing: it sends the group SIGTERM and, after the grace,
/// SIGKILL. The guard is a fork of lrx that never returns to Rust code: between `fork` and
/// `_exit` it makes only async-signal-safe system calls, as a child of a threaded process must.
struct Guard {
    pid: libc::pid_t,
    /// lrx's end of the pipe.
    write: libc::c_int,
}

impl Guard {
    #[allow(unsafe_code, reason = "fork(2) and the raw system calls of the forked guard")]
    fn watch(group: i32) -> io::Result<Guard> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let [read, write] = fds;
        let tick = libc::timespec { tv_sec: 0, tv_nsec: 10_000_000 };
        let ticks = GRACE.as_millis() / 10;
        let root = c"/";
        // SAFETY: the child runs only async-signal-safe system calls on values prepared before
        // the fork (no allocation, no locks, no panics) and leaves with `_exit`.
        match unsafe { libc::fork() } {
            -1 => {
                // SAFETY: both descriptors are ours and open.
                unsafe {
                    libc::close(read);
                    libc::close(write);
                }
                Err(io::Error::last_os_error())
            }
            0 => unsafe {
                // Out of lrx's group, so a Ctrl-C at the terminal does not end the guard
                // before lrx has stopped the script in order.
                libc::setpgid(0, 0);
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                // Holding no folder: a guard must not keep a study's folder or a mount busy.
                libc::chdir(root.as_ptr());
                // Only the read end stays open: a copy of another guard's write end (or of any
                // other descriptor) would keep that guard, or a file, waiting on this one.
                libc::dup2(read, 3);
                if libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) != 0 {
                    for fd in 4..65_536 {
                        libc::close(fd);
                    }
                }
                let mut byte = 0u8;
                let n = loop {
                    let n = libc::read(3, (&raw mut byte).cast(), 1);
                    if n >= 0 || *libc::__errno_location() != libc::EINTR {
                        break n;
                    }
                };
                if n == 0 && libc::kill(-group, 0) == 0 {
                    libc::kill(-group, libc::SIGTERM);
                    // The grace, cut short once the group is gone (its number stays taken while
                    // any member lives, so it names no other group meanwhile).
                    for _ in 0..ticks {
                        if libc::kill(-group, 0) != 0 {
                            libc::_exit(0);
                        }
                        libc::nanosleep(&raw const tick, std::ptr::null_mut());
                    }
                    libc::kill(-group, libc::SIGKILL);
                }
                libc::_exit(0)
            },
            pid => {
                // SAFETY: the read end is the guard's now; lrx keeps only the write end.
                unsafe { libc::close(read) };
                Ok(Guard { pid, write })
            }
        }
    }
}

impl Drop for Guard {
    #[allow(unsafe_code, reason = "the guard's pipe and pid are raw system resources")]
    fn drop(&mut self) {
        let byte = 1u8;
        // SAFETY: `write` is our open end of the pipe; `pid` is our child, reaped once here.
        unsafe {
            libc::write(self.write, (&raw const byte).cast(), 1);
            libc::close(self.write);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// A failed script's exit, in words: `exited with code 3`, `was killed by signal 9`.
pub(super) fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        (None, None) => format!("ended with {status}"),
    }
}

fn group_exists(group: i32) -> bool {
    signal_group(group, 0)
}

/// Sends `signal` to every process of `group` (0 only asks whether any exists).
#[allow(unsafe_code, reason = "std has no safe way to signal a process group")]
fn signal_group(group: i32, signal: i32) -> bool {
    // SAFETY: kill(2) with a negative pid only sends a signal to the group; it touches no memory
    // of this process. `group` is the pid of a child lrx spawned as a group leader (> 1).
    group > 1 && unsafe { libc::kill(-group, signal) } == 0
}

/// Asks the kernel to SIGKILL the script when the thread that spawned it dies, which covers a
/// `kill -9` of lrx (the spawning thread waits for the script, so it lives as long as the run).
#[allow(unsafe_code, reason = "`pre_exec` is unsafe: the closure runs between fork and exec")]
fn die_with_parent(command: &mut Command) {
    let parent = std::process::id();
    let hook = move || {
        // SAFETY: prctl(2) and getppid(2) are async-signal-safe system calls that neither
        // allocate nor take locks, which is all that may run in the forked child.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // lrx may have died before the request was made: then no signal will ever come.
        // SAFETY: as above.
        if u32::try_from(unsafe { libc::getppid() }).ok() != Some(parent) {
            return Err(io::Error::other("lrx exited while starting the script"));
        }
        Ok(())
    };
    // SAFETY: the hook only makes the system calls above.
    unsafe {
        command.pre_exec(hook);
    }
}

/// The last lines of a log, at most `max_lines` and about `max_bytes`, for a failure record.
pub(super) fn tail(path: &Path, max_lines: usize, max_bytes: u64) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let from = len.saturating_sub(max_bytes);
    f.seek(SeekFrom::Start(from)).ok()?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    // A partial first line is dropped, unless it is all there is.
    let text = if from > 0 { text.split_once('\n').map_or(&*text, |(_, rest)| rest) } else { &text };
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let kept = lines[lines.len().saturating_sub(max_lines)..].join("\n");
    (!kept.trim().is_empty()).then_some(kept)
}
