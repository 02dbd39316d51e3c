//! The command line: clap definitions, and their one conversion into the commands' inputs.
//!
//! Clap appears only here. Each subcommand's work lives in `crate::commands::<name>`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::commands;

#[derive(Parser, Debug)]
#[command(
    name = "lrx",
    version,
    about = "Declarative, cached learning-rate and optimizer studies",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// The run cache
    #[arg(long, global = true, env = "LRX_CACHE", default_value = "cache")]
    pub cache: PathBuf,
    /// Where outputs go (default: `runs/<study>`)
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
    /// Print only errors and data
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more about what happens
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Colour diagnostics and tables
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate study files
    Check(CheckArgs),
    /// Rewrite study files in canonical form
    Fmt(FmtArgs),
    /// Draw a study's DAG
    Graph(GraphArgs),
    /// Show what a run would do: per phase, cached, to train, or waiting on a winner
    Plan(PlanArgs),
    /// Run a study: train what is not cached, pick winners, run the final config
    Run(RunArgs),
    /// Print a study's result tables from the cache (trains nothing)
    Show(ShowArgs),
    /// Write a Markdown + HTML report with SVG figures from the cache
    Report(ReportArgs),
    /// Compare two studies (or a study with its version at a git revision) from the cache
    Diff(DiffArgs),
    /// Explain why a run is not a cache hit
    Why(WhyArgs),
    /// Train one run (a study's root config, one of its candidates, or the defaults)
    Train(TrainArgs),
    /// Print or draw an LR schedule
    Schedule(ScheduleArgs),
    /// Inspect and maintain the run cache
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Train one task of a Slurm job array (what `lrx run --executor slurm` submits)
    #[command(hide = true)]
    Worker(WorkerArgs),
    /// Print a shell completion script: `lrx completions bash > ~/.local/share/bash-completion/completions/lrx`
    Completions(CompletionsArgs),
    /// Print the manual page (roff): `lrx man > lrx.1 && man ./lrx.1`
    Man,
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The array's manifest (`<cache>/slurm/arrays/*.keys`, one run key a line)
    pub manifest: PathBuf,
    /// The manifest's line to train (default: `SLURM_ARRAY_TASK_ID`, else 0)
    #[arg(long)]
    pub index: Option<usize>,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells `lrx completions` writes scripts for.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

/// The completion script of `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    use clap_complete::Shell as S;
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Powershell => S::PowerShell,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "lrx", &mut out);
    out
}

/// The manual page, in roff.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    Ok(out)
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Study files (`.lrx`); `-` reads one from stdin
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct FmtArgs {
    /// Study files to rewrite in place; `-` formats stdin to stdout
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Only report files that are not formatted (exit 1 if any)
    #[arg(long)]
    pub check: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphFormat {
    Text,
    Dot,
    Mermaid,
}

#[derive(Args, Debug)]
pub struct GraphArgs {
    /// A study file
    pub file: PathBuf,
    /// `text` (a tree), `dot` (Graphviz) or `mermaid` (renders on GitHub)
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// A study file; `-` reads it from stdin (relative paths then from the current folder)
    pub file: PathBuf,
    /// Print the plan as JSON (the shape of `run --json`)
    #[arg(long)]
    pub json: bool,
    /// The device the study would run on (it is part of each run's cache key)
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutorKind {
    Local,
    Slurm,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A study file
    pub file: PathBuf,
    /// Runs at once, 1 to 1024 (default: 1; one per GPU with `--gpus`)
    #[arg(long, short, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub jobs: Option<usize>,
    /// Where runs execute: threads of this process, or Slurm jobs (each runs `lrx worker`
    /// against the cache, which must be on a filesystem every node shares)
    #[arg(long, value_enum, default_value_t = ExecutorKind::Local)]
    pub executor: ExecutorKind,
    /// `cpu` (the default), `cuda` or `cuda:N` (`cuda` with `--gpus`)
    #[arg(long)]
    pub device: Option<String>,
    /// Train on these GPUs, one run on each at a time: `0,1,2,3`, or `all` (every GPU
    /// `nvidia-smi -L` lists). The built-in trainer runs on `cuda:N`, a command trainer with
    /// `CUDA_VISIBLE_DEVICES=N`; which GPU a run lands on is not part of its identity
    #[arg(long, value_name = "LIST")]
    pub gpus: Option<String>,
    /// Print the results as JSON on stdout (progress stays on stderr)
    #[arg(long)]
    pub json: bool,
    /// Train this phase's candidates again even when cached (repeatable)
    #[arg(long)]
    pub rerun: Vec<String>,
    /// Keep report.html and report.md current while the study runs (rewritten as each run
    /// finishes; the page reloads itself until the study ends)
    #[arg(long)]
    pub report: bool,
    #[command(flatten)]
    pub slurm: SlurmArgs,
}

/// What every Slurm job asks for, and how lrx follows its jobs (with `--executor slurm`;
/// `--jobs` is the number of jobs in flight, default 100).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Slurm (with --executor slurm)")]
pub struct SlurmArgs {
    /// `sbatch --partition`
    #[arg(long)]
    pub partition: Option<String>,
    /// `sbatch --account`
    #[arg(long)]
    pub account: Option<String>,
    /// `sbatch --qos`
    #[arg(long)]
    pub qos: Option<String>,
    /// Each job's time limit (`sbatch --time`: `MM`, `HH:MM:SS`, `D-HH:MM`)
    #[arg(long)]
    pub time: Option<String>,
    /// `sbatch --cpus-per-task`
    #[arg(long, value_name = "N")]
    pub cpus_per_task: Option<u32>,
    /// Memory per job (`sbatch --mem`: `4G`)
    #[arg(long)]
    pub mem: Option<String>,
    /// Generic resources per job (`sbatch --gres`: `gpu:1`)
    #[arg(long)]
    pub gres: Option<String>,
    /// One more `sbatch` argument, passed as it is (repeatable): `--sbatch-arg=--constraint=a100`
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch_arg: Vec<String>,
    /// Times a job that ends without a result (killed, out of memory, node failure) is
    /// submitted again before its run counts as failed [default: 2]
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Seconds between `squeue` polls, backing off to five times that while nothing changes
    /// [default: 5]
    #[arg(long, value_name = "SECONDS")]
    pub poll_interval: Option<f64>,
    /// Seconds before its time limit at which a job saves its run's state
    /// (`sbatch --signal=B:USR1@N`) [default: 120]
    #[arg(long, value_name = "SECONDS")]
    pub signal_before: Option<u32>,
}

impl SlurmArgs {
    /// The flags given, by name (they mean something only with `--executor slurm`).
    pub fn given(&self) -> Vec<&'static str> {
        let flags = [
            ("--partition", self.partition.is_some()),
            ("--account", self.account.is_some()),
            ("--qos", self.qos.is_some()),
            ("--time", self.time.is_some()),
            ("--cpus-per-task", self.cpus_per_task.is_some()),
            ("--mem", self.mem.is_some()),
            ("--gres", self.gres.is_some()),
            ("--sbatch-arg", !self.sbatch_arg.is_empty()),
            ("--retries", self.retries.is_some()),
            ("--poll-interval", self.poll_interval.is_some()),
            ("--signal-before", self.signal_before.is_some()),
        ];
        flags.into_iter().filter(|(_, given)| *given).map(|(name, _)| name).collect()
    }
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// A study file
    pub file: PathBuf,
    /// Print the results as JSON (the shape of `lrx run --json`)
    #[arg(long)]
    pub json: bool,
    /// Only this phase (`final` for the final run)
    #[arg(long)]
    pub phase: Option<String>,
    /// Sort candidates by this column (`objective`, a metric, or a changed key)
    #[arg(long)]
    pub sort: Option<String>,
    /// Show only the best K candidates of each phase
    #[arg(long)]
    pub top: Option<usize>,
    /// Also show each candidate's throughput (tokens/s) and training time
    #[arg(long)]
    pub throughput: bool,
    /// The device the study ran on (it is part of each run's cache key)
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// A study file (its report goes to `--out`, default `runs/<study>/`)
    pub file: PathBuf,
    /// Add a section comparing the study with another one (as `lrx diff OTHER FILE` does)
    #[arg(long, value_name = "OTHER", conflicts_with = "compare_rev")]
    pub compare: Option<PathBuf>,
    /// Add a section comparing the study with its version at this git revision (`HEAD~1`)
    #[arg(long, value_name = "REV")]
    pub compare_rev: Option<String>,
    /// The device the study ran on (it is part of each run's cache key)
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The first study (with `--rev`: the study whose older version it is compared with)
    pub a: PathBuf,
    /// The second study
    #[arg(required_unless_present = "rev", conflicts_with = "rev")]
    pub b: Option<PathBuf>,
    /// Compare the study with its version at this git revision (`HEAD~1`, a tag, a commit)
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
    /// Print the comparison as JSON
    #[arg(long)]
    pub json: bool,
    /// The device the studies ran on (it is part of each run's cache key)
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Args, Debug)]
pub struct WhyArgs {
    /// A study file
    pub file: PathBuf,
    /// A phase (`final` for the final run); every phase without it
    pub phase: Option<String>,
    /// A candidate, as `lrx plan` names it (`baseline`, `matrix_lr=0.08`); all without it
    pub variant: Option<String>,
    /// The device the study would run on (it is part of each run's cache key)
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// A study whose root config (or one candidate's) to train; defaults without it
    pub file: Option<PathBuf>,
    /// Train a candidate of this phase instead (its winners read from the cache)
    #[arg(long, requires = "file")]
    pub phase: Option<String>,
    /// The candidate, as `lrx plan` names it (default: `baseline`)
    #[arg(long, requires = "phase")]
    pub variant: Option<String>,
    /// Override a key: `--set steps=200 --set "schedule=cosine(warmup = 0.1)"` (one budget of
    /// `steps`, `tokens` and `time`; no block options such as `repeats`: a train is one run)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Print the result as JSON (`key`, `status`, `metrics`, `history`, ...)
    #[arg(long)]
    pub json: bool,
    /// `cpu`, `cuda` or `cuda:N`
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Args, Debug)]
pub struct ScheduleArgs {
    /// A schedule, as written in a study: `cosine(warmup = 0.05, min_lr = 0.1, cycles = 2)`
    pub expr: String,
    /// Training steps the schedule spans
    #[arg(long, default_value_t = 100)]
    pub steps: u64,
    /// Draw it to this SVG file instead of printing a table
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// List cached runs
    Ls {
        /// Print a JSON array, one object per entry
        #[arg(long)]
        json: bool,
    },
    /// Check every entry's content against its recorded hashes
    Verify,
    /// Delete entries not used by the given studies (all entries with `--all`)
    Gc {
        /// Keep every run these studies use (repeatable)
        #[arg(long)]
        keep: Vec<PathBuf>,
        /// Delete every entry without asking (needed when stdin is not a terminal to ask on)
        #[arg(long, conflicts_with = "keep")]
        all: bool,
        /// Only list what would be deleted
        #[arg(long)]
        dry_run: bool,
        /// Delete only the checkpoints stored with entries (halving rungs' saved states), keeping
        /// every result; a rung that would have continued from one trains from step 0 instead
        #[arg(long, conflicts_with_all = ["keep", "all"])]
        checkpoints: bool,
    },
    /// Delete entries by key (a unique prefix is enough)
    Rm {
        /// Keys or unique key prefixes
        #[arg(required = true)]
        keys: Vec<String>,
    },
}

/// Parses the command line and runs the command, mapping outcomes to exit codes.
pub fn main() -> ExitCode {
    // First of all, so that a signal at any moment after start-up ends in exit 130.
    commands::install_interrupt_handler();
    let cli = Cli::parse();
    commands::dispatch(&cli)
}
