//! The command line: clap definitions, and their one conversion into the commands' inputs.
//!
//! Clap appears only here. Each subcommand's work lives in `crate::commands::<name>`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands;

#[derive(Parser, Debug)]
#[command(name = "lrx", version, about = "Declarative, cached learning-rate and optimizer studies", propagate_version = true)]
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
    /// Explain why a run is not a cache hit
    Why(WhyArgs),
    /// Train one run (a study's root config, one of its candidates, or the defaults)
    Train(TrainArgs),
    /// Print or draw an LR schedule
    Schedule(ScheduleArgs),
    /// Inspect and maintain the run cache
    #[command(subcommand)]
    Cache(CacheCommand),
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct FmtArgs {
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
    pub file: PathBuf,
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    pub file: PathBuf,
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
    pub file: PathBuf,
    /// Runs at once (default: 1 on CPU, one per GPU with `--device cuda`)
    #[arg(long, short)]
    pub jobs: Option<usize>,
    #[arg(long, value_enum, default_value_t = ExecutorKind::Local)]
    pub executor: ExecutorKind,
    /// `cpu`, `cuda` or `cuda:N`
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long)]
    pub json: bool,
    /// Train this phase's candidates again even when cached (repeatable)
    #[arg(long)]
    pub rerun: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    pub file: PathBuf,
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
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    pub file: PathBuf,
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Args, Debug)]
pub struct WhyArgs {
    pub file: PathBuf,
    pub phase: Option<String>,
    pub variant: Option<String>,
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// A study whose root config (or one candidate's) to train; defaults without it
    pub file: Option<PathBuf>,
    #[arg(long, requires = "file")]
    pub phase: Option<String>,
    #[arg(long, requires = "phase")]
    pub variant: Option<String>,
    /// Override a key: `--set steps=200 --set "schedule=cosine(warmup = 0.1)"`
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
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
        #[arg(long)]
        json: bool,
    },
    /// Check every entry's content against its recorded hashes
    Verify,
    /// Delete entries not used by the given studies (all entries without `--keep`)
    Gc {
        #[arg(long)]
        keep: Vec<PathBuf>,
        /// Only list what would be deleted
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete entries by key (a unique prefix is enough)
    Rm {
        #[arg(required = true)]
        keys: Vec<String>,
    },
}

/// Parses the command line and runs the command, mapping outcomes to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    commands::dispatch(cli)
}
