//! The one printer of the command line: data to stdout, messages to stderr at the verbosity of
//! `--quiet`/`--verbose`, and a closed pipe (`lrx cache ls | head -1`) taken calmly.
//!
//! Every command writes through the macros below, never `println!`: `println!` panics when
//! stdout is a pipe its reader has closed. Here a closed stdout is remembered, later data is
//! dropped, and the command finishes its work (a `gc` still deletes what it was asked to) with
//! its usual exit code, the way `ls | head` ends without complaint. Any other write error on
//! stdout (a full disk) is kept and reported once the command ends (exit 2). Messages on a
//! closed stderr are dropped: there is nowhere left to say anything.
//!
//! The state is process-wide because stdout and stderr are; [`init`] sets the verbosity once
//! per command line.

use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// How much a command says on stderr besides its errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Verbosity {
    /// `--quiet`: only errors (and data on stdout).
    Quiet = 0,
    Normal = 1,
    /// `--verbose`: timings and details too.
    Verbose = 2,
}

static LEVEL: AtomicU8 = AtomicU8::new(Verbosity::Normal as u8);
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDOUT_ERROR: Mutex<Option<io::Error>> = Mutex::new(None);

/// Sets the verbosity for the rest of the process.
pub(crate) fn init(quiet: bool, verbose: bool) {
    let level = if quiet {
        Verbosity::Quiet
    } else if verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// The verbosity [`init`] set.
pub(crate) fn verbosity() -> Verbosity {
    match LEVEL.load(Ordering::Relaxed) {
        0 => Verbosity::Quiet,
        1 => Verbosity::Normal,
        _ => Verbosity::Verbose,
    }
}

/// Whether messages of `level` are shown.
pub(crate) fn shows(level: Verbosity) -> bool {
    level <= verbosity()
}

/// Writes data to stdout (see the module doc for what happens when it is closed).
pub(crate) fn data(args: fmt::Arguments<'_>, newline: bool) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| if newline { out.write_all(b"\n") } else { Ok(()) })
        .and_then(|()| out.flush());
    if let Err(e) = written {
        // Nothing more can reach the reader either way; a closed pipe is the reader's choice,
        // any other failure is reported when the command ends.
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe {
            let mut first = STDOUT_ERROR.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            first.get_or_insert(e);
        }
    }
}

/// Writes a message to stderr when `level` is shown; write errors are dropped.
pub(crate) fn message(level: Verbosity, args: fmt::Arguments<'_>, newline: bool) {
    if !shows(level) {
        return;
    }
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| if newline { err.write_all(b"\n") } else { Ok(()) });
}

/// A note (`Normal` level) as a plain function, for callbacks such as the corpus fetch message.
pub(crate) fn note(text: &str) {
    message(Verbosity::Normal, format_args!("{text}"), true);
}

/// The first stdout error that was not a closed pipe, taken once.
pub(crate) fn take_error() -> Option<io::Error> {
    STDOUT_ERROR.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
}

/// Data on stdout, like `print!`.
macro_rules! out {
    ($($arg:tt)*) => { $crate::commands::printer::data(format_args!($($arg)*), false) };
}

/// Data on stdout, like `println!`.
macro_rules! outln {
    () => { $crate::commands::printer::data(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::commands::printer::data(format_args!($($arg)*), true) };
}

/// An error or diagnostic on stderr (shown even with `--quiet`), like `eprint!`.
macro_rules! err {
    ($($arg:tt)*) => { $crate::commands::printer::message($crate::commands::printer::Verbosity::Quiet, format_args!($($arg)*), false) };
}

/// An error or diagnostic on stderr (shown even with `--quiet`), like `eprintln!`.
macro_rules! errln {
    () => { $crate::commands::printer::message($crate::commands::printer::Verbosity::Quiet, format_args!(""), true) };
    ($($arg:tt)*) => { $crate::commands::printer::message($crate::commands::printer::Verbosity::Quiet, format_args!($($arg)*), true) };
}

/// A message for people on stderr, hidden by `--quiet`, like `eprint!`.
macro_rules! note {
    ($($arg:tt)*) => { $crate::commands::printer::message($crate::commands::printer::Verbosity::Normal, format_args!($($arg)*), false) };
}

/// A message for people on stderr, hidden by `--quiet`, like `eprintln!`.
macro_rules! noteln {
    ($($arg:tt)*) => { $crate::commands::printer::message($crate::commands::printer::Verbosity::Normal, format_args!($($arg)*), true) };
}

/// A detail on stderr shown only with `--verbose`, like `eprintln!`.
macro_rules! verboseln {
    ($($arg:tt)*) => { $crate::commands::printer::message($crate::commands::printer::Verbosity::Verbose, format_args!($($arg)*), true) };
}
