//! The one way these tests run lrx: [`lrx`] (the real binary in a folder, with no cache or
//! colour from the environment), and on it the `Test` builder: files in a temporary folder, the
//! command, a normalized outcome for snapshots.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `lrx` binary, to run in `dir`: no `LRX_CACHE` from the environment (each test has its
/// own `cache/` in its folder) and no colour.
pub(crate) fn lrx(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lrx"));
    cmd.current_dir(dir).env_remove("LRX_CACHE").env("NO_COLOR", "1");
    cmd
}

/// `lrx ARGS` in `dir`, run to its end.
pub(crate) fn output(dir: &Path, args: &[&str]) -> Output {
    lrx(dir).args(args).output().expect("lrx runs")
}

/// Bytes a command printed, as text.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The text of the small public-domain corpus of the tests (the opening of Genesis).
pub(crate) fn corpus() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/genesis.txt"))
        .expect("the fixture corpus")
}

/// A command to run in a fresh temporary folder holding some files.
pub(crate) struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    stdin: Option<String>,
}

/// What a run produced, with the temporary folder's path replaced by `[TMP]`.
pub(crate) struct Outcome {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) dir: PathBuf,
}

impl Test {
    pub(crate) fn new() -> Test {
        Test { dir: tempfile::tempdir().expect("a temporary folder"), args: Vec::new(), stdin: None }
    }

    /// Writes a file (relative to the folder), creating parent folders.
    pub(crate) fn file(self, name: &str, contents: &str) -> Test {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("a folder");
        }
        std::fs::write(path, contents).expect("a file");
        self
    }

    /// Copies one of the repository's example studies in, under the same name.
    pub(crate) fn pipeline(self, name: &str) -> Test {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines").join(name);
        let text = std::fs::read_to_string(src).expect("an example study");
        self.file(&format!("pipelines/{name}"), &text)
    }

    pub(crate) fn args(mut self, args: &[&str]) -> Test {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Text for the command's stdin (otherwise it reads nothing: stdin is empty).
    pub(crate) fn stdin(mut self, text: &str) -> Test {
        self.stdin = Some(text.to_owned());
        self
    }

    pub(crate) fn run(self) -> Outcome {
        let mut cmd = lrx(self.dir.path());
        cmd.args(&self.args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("lrx runs");
        let input = self.stdin.clone().unwrap_or_default();
        let mut pipe = child.stdin.take().expect("a stdin pipe");
        // Written from a thread: a command that prints much before reading must not deadlock.
        let writer = std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
        let out = child.wait_with_output().expect("lrx runs");
        writer.join().expect("the stdin writer");
        let tmp = self.dir.path().display().to_string();
        let clean = |b: &[u8]| hide_keys(&String::from_utf8_lossy(b).replace(&tmp, "[TMP]"));
        let dir = self.dir.keep();
        Outcome { code: out.status.code().unwrap_or(-1), stdout: clean(&out.stdout), stderr: clean(&out.stderr), dir }
    }
}

/// Replaces run keys (12 or 64 lowercase hex digits standing alone: short and full keys) by
/// `[KEY]`: they change whenever the trainer's version does, which is not what these snapshots
/// are about. A short key may be all digits (`700476717213`).
fn hide_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let boundary = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        let run = chars[i..].iter().take_while(|c| c.is_ascii_digit() || ('a'..='f').contains(*c)).count();
        let after_ok = chars.get(i + run).is_none_or(|c| !c.is_ascii_alphanumeric());
        if boundary && (run == 12 || run == 64) && after_ok {
            out.push_str("[KEY]");
            i += run;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

impl Outcome {
    /// A file's contents after the run.
    pub(crate) fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).expect("a file")
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit: {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
