//! One module per subcommand: each turns parsed arguments into calls on the library and
//! prints the results (data on stdout, people's messages on stderr).

use std::process::ExitCode;

use crate::cli::{Cli, Command, GlobalArgs};

// First, so that its macros (`outln!`, `errln!`, `noteln!`, ...) are in scope in every command.
#[macro_use]
pub(crate) mod printer;

mod cache;
mod check;
mod fmt;
mod graph;
mod interrupt;
mod load;
mod plan;
mod report;
mod run;
mod schedule;
mod shell;
mod show;
mod study;
mod train;
mod why;
mod worker;

/// How a command ended: its exit code (README, "When runs fail or diverge").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0
    Success,
    /// 1: the input is wrong, or a study finished with a failed phase.
    Failure,
    /// 130
    Interrupted,
}

/// Installs the process's Ctrl-C / SIGTERM handler (see `interrupt`).
pub(crate) fn install_interrupt_handler() {
    interrupt::install();
}

/// Runs a parsed command line. Errors that escape a command are usage or environment errors
/// (exit 2); commands report bad input themselves and return `Exit::Failure`.
pub(crate) fn dispatch(cli: &Cli) -> ExitCode {
    let g = &cli.global;
    printer::init(g.quiet, g.verbose);
    let result = match &cli.command {
        Command::Check(a) => check::run(a, g),
        Command::Fmt(a) => fmt::run(a, g),
        Command::Graph(a) => graph::run(a, g),
        Command::Plan(a) => plan::run(a, g),
        Command::Run(a) => run::run(a, g),
        Command::Show(a) => show::run(a, g),
        Command::Report(a) => report::run(a, g),
        Command::Why(a) => why::run(a, g),
        Command::Train(a) => train::run(a, g),
        Command::Schedule(a) => schedule::run(a, g),
        Command::Cache(c) => cache::run(c, g),
        Command::Worker(a) => worker::run(a, g),
        Command::Completions(a) => Ok(shell::completions(a)),
        Command::Man => shell::man(),
    };
    let code = match result {
        Ok(Exit::Success) => ExitCode::SUCCESS,
        Ok(Exit::Failure) => ExitCode::from(1),
        Ok(Exit::Interrupted) => ExitCode::from(130),
        Err(err) => {
            errln!("error: {}", error_chain(&err));
            ExitCode::from(2)
        }
    };
    // A closed stdout is the reader's choice and not an error; any other failure to write the
    // data is (the data did not arrive).
    if let Some(e) = printer::take_error() {
        errln!("error: cannot write to stdout: {e}");
        return ExitCode::from(2);
    }
    code
}

/// `outer: inner: innermost`, the way people read a cause chain.
fn error_chain(err: &anyhow::Error) -> String {
    err.chain().map(ToString::to_string).collect::<Vec<_>>().join(": ")
}

/// Whether stderr decorations (colour) are wanted.
pub(crate) fn use_color(g: &GlobalArgs) -> bool {
    use std::io::IsTerminal;
    match g.color {
        crate::cli::ColorChoice::Always => true,
        crate::cli::ColorChoice::Never => false,
        crate::cli::ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
        }
    }
}
