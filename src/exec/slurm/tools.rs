//! Slurm's commands as lrx calls them: `sbatch` (one job array per batch of runs), `squeue`
//! (one call for all of the user's jobs) and `scancel`, each through argv (never a shell), and
//! the parsing of what they print.

use std::collections::HashMap;
use std::process::Command;

/// One task of a job array: `ARRAYID_INDEX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Task {
    pub array: u64,
    pub index: u32,
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}", self.array, self.index)
    }
}

/// A Slurm command that could not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("cannot run `{program}`: {source} (is Slurm's client installed and on PATH?)")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{program}` failed ({status}): {stderr}")]
    Failed { program: String, status: String, stderr: String },
    #[error("`{program}` printed something unexpected: {output:?}")]
    Unexpected { program: String, output: String },
}

/// Runs a program with arguments, returning its stdout.
pub fn call(program: &str, args: &[String]) -> Result<String, SlurmError> {
    let out = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| SlurmError::Spawn { program: program.to_owned(), source })?;
    if !out.status.success() {
        return Err(SlurmError::Failed {
            program: program.to_owned(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The job id `sbatch --parsable` prints (`ID` or `ID;CLUSTER`).
pub fn parse_job_id(stdout: &str) -> Result<u64, SlurmError> {
    let first = stdout.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    first
        .split(';')
        .next()
        .and_then(|id| id.trim().parse().ok())
        .ok_or_else(|| SlurmError::Unexpected { program: "sbatch".into(), output: stdout.trim().to_owned() })
}

/// The `squeue` arguments of a poll: every job of this user, one line per array task, in every
/// state Slurm still remembers (finished jobs stay for `MinJobAge`), as `ARRAY|INDEX|STATE|NAME`.
pub fn squeue_args() -> Vec<String> {
    ["--me", "--noheader", "--array", "--states=all", "--format=%F|%K|%T|%j"].map(String::from).to_vec()
}

/// One task's line of [`squeue_args`]'s output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    pub task: Task,
    pub state: String,
    pub name: String,
}

/// Parses `squeue`'s lines; lines of jobs that are not array tasks are skipped (lrx submits
/// arrays only).
pub fn parse_squeue(stdout: &str) -> Vec<Queued> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut parts = line.trim().splitn(4, '|');
            let array = parts.next()?.trim().parse().ok()?;
            let index = parts.next()?.trim().parse().ok()?;
            let state = parts.next()?.trim().to_owned();
            let name = parts.next()?.trim().to_owned();
            Some(Queued { task: Task { array, index }, state, name })
        })
        .collect()
}

/// Tasks by their state.
pub fn states(queued: &[Queued]) -> HashMap<Task, &str> {
    queued.iter().map(|q| (q.task, q.state.as_str())).collect()
}

/// Whether a job in this state has ended (Slurm's base states; flags such as `+` are not in
/// `%T`'s output).
pub fn is_final(state: &str) -> bool {
    matches!(
        state,
        "COMPLETED"
            | "FAILED"
            | "CANCELLED"
            | "TIMEOUT"
            | "NODE_FAIL"
            | "OUT_OF_MEMORY"
            | "BOOT_FAIL"
            | "DEADLINE"
            | "PREEMPTED"
            | "REVOKED"
    )
}

/// Whether a job in this state waits to run again (requeued by Slurm, or not started yet).
pub fn is_waiting(state: &str) -> bool {
    matches!(state, "PENDING" | "REQUEUED" | "REQUEUE_FED" | "REQUEUE_HOLD" | "SPECIAL_EXIT" | "SUSPENDED")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbatch_ids_are_read_with_or_without_a_cluster() {
        assert_eq!(parse_job_id("1234\n").unwrap(), 1234);
        assert_eq!(parse_job_id("77;ci\n").unwrap(), 77);
        assert!(parse_job_id("Submitted batch job 5\n").is_err());
    }

    #[test]
    fn squeue_lines_become_tasks_and_other_jobs_are_skipped() {
        let out = "1|0|COMPLETED|lrx-a\n1|1|FAILED|lrx-a\n9|N/A|RUNNING|someone else's\n2|3|PENDING|lrx-b|x\n";
        let q = parse_squeue(out);
        assert_eq!(q.len(), 3);
        assert_eq!(q[0].task.to_string(), "1_0");
        assert_eq!(q[2], Queued { task: Task { array: 2, index: 3 }, state: "PENDING".into(), name: "lrx-b|x".into() });
        assert!(is_final("OUT_OF_MEMORY") && !is_final("RUNNING") && is_waiting("REQUEUED"));
    }
}
