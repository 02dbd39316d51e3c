//! Ctrl-C and SIGTERM, for every command: exit 130 at once, unless work that must end cleanly
//! is under way (a study or a `train` run), where the first signal stops it gracefully
//! (finished runs stay cached) and a second one leaves at once.
//!
//! The handler is installed before a command does anything, so a signal at any moment ends in
//! exit 130, never in a death by signal that scripts would read differently.

use std::sync::{Arc, OnceLock};

use crate::exec::progress::{Event, Observer};
use crate::spec::CancelFlag;

/// What the first signal stops, once a command has armed it.
static ARMED: OnceLock<(CancelFlag, Option<Arc<dyn Observer>>)> = OnceLock::new();

/// Installs the process's one handler (SIGINT and SIGTERM).
pub(crate) fn install() {
    let _ = ctrlc::set_handler(|| match ARMED.get() {
        Some((cancel, observer)) if !cancel.is_cancelled() => {
            let message = "interrupt: stopping active runs (press Ctrl-C again to quit at once)".to_owned();
            match observer {
                // Through the observer, so that live bars do not draw over it.
                Some(o) => o.event(Event::Note(message)),
                None => errln!("\n{message}"),
            }
            cancel.cancel();
        }
        _ => std::process::exit(130),
    });
}

/// From now on the first signal raises `cancel` instead of exiting.
pub(crate) fn arm(cancel: &CancelFlag, observer: Option<Arc<dyn Observer>>) {
    let _ = ARMED.set((cancel.clone(), observer));
}
