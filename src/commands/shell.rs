//! `lrx completions SHELL` and `lrx man`: a completion script and the manual page, both made
//! from the command line's own definition (so they never fall behind it), on stdout.

use crate::cli::{CompletionsArgs, completions as script, man_page};

use super::Exit;

pub(crate) fn completions(args: &CompletionsArgs) -> Exit {
    out!("{}", String::from_utf8_lossy(&script(args.shell)));
    Exit::Success
}

pub(crate) fn man() -> anyhow::Result<Exit> {
    out!("{}", String::from_utf8_lossy(&man_page()?));
    Ok(Exit::Success)
}
