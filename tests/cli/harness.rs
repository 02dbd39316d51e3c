//! The `Test` builder: files in a temporary folder, the real binary, a normalized outcome.

use std::fmt;
use std::path::{Path, PathBuf};

/// A command to run in a fresh temporary folder holding some files.
pub(crate) struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
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
        Test { dir: tempfile::tempdir().expect("a temporary folder"), args: Vec::new(), env: Vec::new() }
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

    #[allow(dead_code)]
    pub(crate) fn env(mut self, key: &str, value: &str) -> Test {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn run(self) -> Outcome {
        let mut cmd = assert_cmd::Command::cargo_bin("lrx").expect("the lrx binary");
        cmd.current_dir(self.dir.path()).args(&self.args).env_remove("LRX_CACHE").env("NO_COLOR", "1");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("lrx runs");
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
