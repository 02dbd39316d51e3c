//! Token streams of one run: tokenize the corpus, split training and validation blocks, draw
//! training windows from the seeded batch stream, and fix the validation windows.
//!
//! The split is made on the text before tokenizing, so a BPE tokenizer only ever sees the
//! training block: the used text is the first `tokens × c` bytes of the corpus (`c` = 1 for
//! bytes, 4 for BPE, which encodes English at under 4 bytes per token), its last `val`
//! fraction is the validation block and the rest the training block. Each block is then
//! tokenized and cut to its share of `data.tokens` (`tokens − ⌊tokens·val⌋` and
//! `⌊tokens·val⌋`). Training windows never reach into validation text.

use std::path::Path;

use super::TrainError;
use super::rng::{Rng, Stream};
use super::tokenizer::Tok;
use crate::spec::{RunConfig, Tokenizer};

/// A run's data.
pub struct Dataset {
    pub tok: Tok,
    pub train: Vec<u32>,
    pub val: Vec<u32>,
    /// Start offsets of the fixed validation windows (`val_batches × batch_size`).
    pub val_starts: Vec<usize>,
}

/// Largest char boundary of `s` at or below `i`.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Bytes of corpus text a run uses: the first `data.tokens × c` (see the module doc). Reading
/// more of the corpus changes nothing.
pub fn text_bytes(config: &RunConfig) -> usize {
    let per_token = match config.data.tokenizer {
        Tokenizer::Bytes => 1,
        Tokenizer::Bpe { .. } => 4,
    };
    usize::try_from(config.data.tokens).unwrap_or(usize::MAX).saturating_mul(per_token)
}

impl Dataset {
    /// Tokenizes and splits `text` as `config.data` says. BPE tokenizers are cached under
    /// `cache_dir`.
    pub fn prepare(config: &RunConfig, text: &str, cache_dir: &Path) -> Result<Dataset, TrainError> {
        let data = &config.data;
        let want_val = (data.tokens as f64 * data.val).floor() as usize;
        let want_train = data.tokens as usize - want_val;
        let (tok, train, val) = match data.tokenizer {
            Tokenizer::Bytes => {
                let bytes = text.as_bytes();
                let used = bytes.len().min(text_bytes(config));
                let n_val = (used as f64 * data.val).floor() as usize;
                let cut = used - n_val;
                let train = bytes[..cut].iter().map(|&b| u32::from(b)).collect();
                let val = bytes[cut..used].iter().map(|&b| u32::from(b)).collect();
                (Tok::Bytes, train, val)
            }
            Tokenizer::Bpe { vocab } => {
                let used = floor_boundary(text, text_bytes(config));
                let cut = floor_boundary(text, (used as f64 * (1.0 - data.val)) as usize);
                let tok = Tok::bpe(vocab, &text[..cut], cache_dir)?;
                let mut train = tok.encode(&text[..cut])?;
                let mut val = tok.encode(&text[cut..used])?;
                train.truncate(want_train);
                val.truncate(want_val);
                (tok, train, val)
            }
        };
        let window = config.model.seq_len + 1;
        for (name, block) in [("training", &train), ("validation", &val)] {
            if block.len() < window + 1 {
                return Err(TrainError::CorpusTooSmall(format!(
                    "the {name} block has {} tokens, too few for windows of `seq_len + 1` = {window} tokens; use a larger corpus or `data.tokens`, or a smaller `seq_len`",
                    block.len()
                )));
            }
        }
        let n_windows = config.train.val_batches * config.train.batch_size;
        let val_starts = spread_windows(val.len(), window, n_windows);
        Ok(Dataset { tok, train, val, val_starts })
    }

    /// Draws `batch` training windows of `seq + 1` tokens from the batch stream.
    pub fn sample(&self, rng: &mut Rng, batch: usize, seq: usize, out: &mut Vec<u32>) {
        out.clear();
        let starts = (self.train.len() - seq) as u64;
        for _ in 0..batch {
            let s = rng.below(starts) as usize;
            out.extend_from_slice(&self.train[s..=s + seq]);
        }
    }

    /// The validation windows of batch `b` (`batch` windows of `seq + 1`).
    pub fn val_batch(&self, b: usize, batch: usize, seq: usize, out: &mut Vec<u32>) {
        out.clear();
        for &s in &self.val_starts[b * batch..(b + 1) * batch] {
            out.extend_from_slice(&self.val[s..=s + seq]);
        }
    }
}

/// A fresh batch stream for a seed.
pub fn batch_rng(seed: u64) -> Rng {
    Rng::new(seed, Stream::Batches)
}

/// `n` window starts spread evenly over a block of `len` tokens: consecutive, non-overlapping
/// windows when they fit, evenly spaced (overlapping) otherwise.
fn spread_windows(len: usize, window: usize, n: usize) -> Vec<usize> {
    let last = len - window;
    if n * window <= len {
        let stride = len / n; // ≥ window
        (0..n).map(|i| (i * stride).min(last)).collect()
    } else if n == 1 {
        vec![0]
    } else {
        (0..n).map(|i| i * last / (n - 1)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::config::key;
    use crate::spec::{Value, Values};

    fn config(tokens: i64, seq: i64) -> RunConfig {
        let mut v = Values::new();
        v.insert(key("data.tokens"), Value::Int(tokens));
        v.insert(key("seq_len"), Value::Int(seq));
        v.insert(key("val_batches"), Value::Int(2));
        v.insert(key("batch_size"), Value::Int(2));
        RunConfig::from_values(&v).unwrap()
    }

    #[test]
    fn split_is_contiguous_and_windows_stay_inside() {
        let text: String = (0..3000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let c = config(2000, 16);
        let d = Dataset::prepare(&c, &text, Path::new("/nonexistent")).unwrap();
        assert_eq!(d.train.len(), 1800);
        assert_eq!(d.val.len(), 200);
        assert_eq!(d.val[0], u32::from(text.as_bytes()[1800]));
        assert_eq!(d.val_starts, vec![0, 50, 100, 150]);
        let mut rng = batch_rng(3);
        let mut out = Vec::new();
        for _ in 0..200 {
            d.sample(&mut rng, 2, 16, &mut out);
            assert_eq!(out.len(), 34);
        }
        d.val_batch(1, 2, 16, &mut out);
        assert_eq!(out[0], d.val[100]);
        assert_eq!(spread_windows(30, 10, 5), vec![0, 5, 10, 15, 20]);
    }

    #[test]
    fn too_small_corpus_is_an_error_not_a_panic() {
        let c = config(2000, 16);
        let err = Dataset::prepare(&c, "tiny text", Path::new("/nonexistent")).err().unwrap();
        assert!(err.to_string().contains("too few for windows"), "{err}");
    }
}
