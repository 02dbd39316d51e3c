//! Tokenizers: raw bytes, or byte-level BPE trained on the training text with the
//! `tokenizers` crate and cached under `<cache>/tokenizers/` by a hash of that text.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;

use super::TrainError;
use crate::corpus::{lock_for, sha256_hex, write_atomic};

/// A ready tokenizer.
pub enum Tok {
    Bytes,
    Bpe { tok: Box<tokenizers::Tokenizer>, byte_lens: Vec<u32> },
}

impl Tok {
    /// Byte-level BPE of `vocab` tokens trained on `train_text`, loaded from the cache when the
    /// same text and size were trained before.
    pub fn bpe(vocab: usize, train_text: &str, cache_dir: &Path) -> Result<Tok, TrainError> {
        let path = cache_path(vocab, train_text, cache_dir);
        let tok = load_or_train(&path, &mut || train_bpe(vocab, train_text))?;
        let n = tok.get_vocab_size(true);
        // Byte-level symbols map one byte to one char, so a token's byte length is its char count.
        let byte_lens = (0..n as u32).map(|id| tok.id_to_token(id).map_or(1, |s| s.chars().count() as u32)).collect();
        Ok(Tok::Bpe { tok: Box::new(tok), byte_lens })
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            Tok::Bytes => 256,
            Tok::Bpe { byte_lens, .. } => byte_lens.len(),
        }
    }

    /// Bytes of text a token stands for (for bits per byte).
    pub fn byte_len(&self, id: u32) -> u32 {
        match self {
            Tok::Bytes => 1,
            Tok::Bpe { byte_lens, .. } => byte_lens.get(id as usize).copied().unwrap_or(1),
        }
    }

    /// Encodes text; BPE encodes line by line (newline kept with its line), in parallel.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TrainError> {
        match self {
            Tok::Bytes => Ok(text.bytes().map(u32::from).collect()),
            Tok::Bpe { tok, .. } => {
                let lines: Vec<&str> = text.split_inclusive('\n').collect();
                let encodings = tok.encode_batch(lines, false).map_err(|e| TrainError::Tokenizer(e.to_string()))?;
                Ok(encodings.iter().flat_map(|e| e.get_ids().iter().copied()).collect())
            }
        }
    }
}

/// The tokenizer cached at `path`, trained by `train` and stored there first when absent or
/// unreadable. Made once: per process (a memo by path, and the path names the vocabulary size
/// and the training text's hash), and across threads and processes (under the file's lock,
/// whoever comes second loads what the first stored).
fn load_or_train(
    path: &Path,
    train: &mut dyn FnMut() -> Result<tokenizers::Tokenizer, TrainError>,
) -> Result<tokenizers::Tokenizer, TrainError> {
    static LOADED: Mutex<BTreeMap<PathBuf, tokenizers::Tokenizer>> = Mutex::new(BTreeMap::new());
    let memo = || LOADED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(t) = memo().get(path) {
        return Ok(t.clone());
    }
    let t = if let Ok(t) = tokenizers::Tokenizer::from_file(path) {
        t
    } else {
        let _lock = lock_for(path)?;
        if let Ok(t) = tokenizers::Tokenizer::from_file(path) {
            t
        } else {
            let t = train()?;
            let json = t.to_string(false).map_err(|e| TrainError::Tokenizer(e.to_string()))?;
            write_atomic(path, json.as_bytes())?;
            t
        }
    };
    memo().insert(path.to_path_buf(), t.clone());
    Ok(t)
}

fn cache_path(vocab: usize, train_text: &str, cache_dir: &Path) -> PathBuf {
    let hash = sha256_hex(train_text.as_bytes());
    cache_dir.join("tokenizers").join(format!("bpe-{vocab}-{}.json", &hash[..16]))
}

fn train_bpe(vocab: usize, text: &str) -> Result<tokenizers::Tokenizer, TrainError> {
    let err = |e: tokenizers::Error| TrainError::Tokenizer(e.to_string());
    let mut tok = tokenizers::Tokenizer::new(BPE::default());
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tok.with_decoder(Some(ByteLevel::new(false, true, true)));
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab)
        .min_frequency(0)
        .show_progress(false)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build()
        .into();
    tok.train(&mut trainer, text.split_inclusive('\n')).map_err(err)?;
    Ok(tok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpe_trains_caches_and_counts_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let text = "the cat sat on the mat.\nthe dog sat on the log.\n".repeat(50);
        let a = Tok::bpe(300, &text, dir.path()).unwrap();
        assert!(a.vocab_size() > 256 && a.vocab_size() <= 300, "{}", a.vocab_size());
        let ids = a.encode(&text).unwrap();
        assert!(ids.len() < text.len() / 2, "BPE compresses: {} tokens", ids.len());
        let bytes: u64 = ids.iter().map(|&i| u64::from(a.byte_len(i))).sum();
        assert_eq!(bytes, text.len() as u64);
        // The cached file gives the same tokens, and training twice gives the same file.
        let b = Tok::bpe(300, &text, dir.path()).unwrap();
        assert_eq!(b.encode(&text).unwrap(), ids);
        let fresh = train_bpe(300, &text).unwrap().to_string(false).unwrap();
        let cached = std::fs::read_to_string(cache_path(300, &text, dir.path())).unwrap();
        assert_eq!(fresh, cached);
        assert_eq!(Tok::Bytes.encode("hé").unwrap(), vec![104, 195, 169]);
    }

    /// Runs that start at once with the same training text train its tokenizer once, and all
    /// of them get it (two used to write one temporary name, and one failed).
    #[test]
    fn concurrent_runs_train_one_tokenizer_once() {
        let dir = tempfile::tempdir().unwrap();
        let text = "the cat sat on the mat.\n".repeat(20);
        let path = cache_path(280, &text, dir.path());
        let trained = std::sync::atomic::AtomicUsize::new(0);
        let start = std::sync::Barrier::new(4);
        let vocabs: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        let mut train = || {
                            trained.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(200));
                            train_bpe(280, &text)
                        };
                        load_or_train(&path, &mut train).unwrap().get_vocab_size(true)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(trained.load(std::sync::atomic::Ordering::SeqCst), 1, "trained more than once");
        assert!(vocabs.iter().all(|&v| v == vocabs[0]), "{vocabs:?}");
    }
}
