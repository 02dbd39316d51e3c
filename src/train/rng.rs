//! Portable, seeded randomness: ChaCha8 streams derived from the config seed, with our own
//! uniform and Gaussian draws so results never depend on a crate's sampling algorithm or on
//! burn's process-global RNG.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// What a stream is used for; each gets an independent ChaCha8 stream of the same seed.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    Init = 1,
    Batches = 2,
    RouterNoise = 3,
}

/// A seeded generator.
pub struct Rng(ChaCha8Rng);

impl Rng {
    pub fn new(seed: u64, stream: Stream) -> Rng {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(stream as u64);
        Rng(r)
    }

    /// How far the stream has been read (in 32-bit words): with the seed and the stream, all
    /// there is to its state (for checkpoints).
    pub fn position(&self) -> u128 {
        self.0.get_word_pos()
    }

    /// Continues the stream from `position` words in.
    pub fn seek(&mut self, position: u128) {
        self.0.set_word_pos(position);
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `[0, n)` (`n > 0`), by rejection so it is exactly uniform.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - (u64::MAX % n) - 1;
        loop {
            let x = self.next_u64();
            if x <= zone {
                return x % n;
            }
        }
    }

    /// Standard normal by Box–Muller (one draw per call; the partner is discarded so the
    /// stream position depends only on the number of calls).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7, Stream::Init);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = Rng::new(7, Stream::Init);
        assert_eq!(a, (0..4).map(|_| r.next_u64()).collect::<Vec<_>>());
        let mut other = Rng::new(7, Stream::Batches);
        assert_ne!(a[0], other.next_u64());
        let mut n = Rng::new(1, Stream::RouterNoise);
        let xs: Vec<f64> = (0..20_000).map(|_| n.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.03 && (var - 1.0).abs() < 0.05, "{mean} {var}");
        assert!((0..1000).all(|_| n.below(7) < 7));
    }

    #[test]
    fn a_stream_continues_from_its_position() {
        let mut a = Rng::new(5, Stream::Batches);
        // An odd number of 32-bit words in: the position is not at a block or u64 boundary.
        let _ = (a.below(3), a.normal(), a.0.next_u32());
        let mut b = Rng::new(5, Stream::Batches);
        b.seek(a.position());
        assert_eq!(
            (0..100).map(|_| a.next_u64()).collect::<Vec<_>>(),
            (0..100).map(|_| b.next_u64()).collect::<Vec<_>>()
        );
    }
}
