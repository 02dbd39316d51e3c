//! Flush-to-zero for the CPU trainer: subnormal floats are treated and produced as zero on every
//! thread that trains.
//!
//! Why: on some x86 CPUs (Intel Xeons measured here) every FMA that meets a subnormal operand
//! takes a microcode assist costing ~100 cycles. Late in training, gradients and optimizer states
//! hold subnormals, and the GEMM kernels ran 4–5× slower than on a CPU without that penalty.
//! GPUs flush them in their fast paths too; the loss of precision is below 1e-38.
//!
//! Determinism needs the same mode on *every* thread that may compute a chunk of work: burn-flex
//! and `gemm` split work over rayon's global pool by work stealing, so the mode is set there
//! (each worker keeps it; setting it again is idempotent) and on the calling thread.

/// Sets flush-to-zero and denormals-are-zero on this thread and on every thread of rayon's
/// global pool.
pub(crate) fn flush_everywhere() {
    flush_this_thread();
    rayon::broadcast(|_| flush_this_thread());
}

#[cfg(target_arch = "x86_64")]
#[allow(
    unsafe_code,
    deprecated,
    reason = "MXCSR has no safe accessor in std; `_mm_setcsr` is deprecated in favour of inline asm, which would be unsafe too"
)]
fn flush_this_thread() {
    use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
    // FTZ (bit 15): subnormal results become zero; DAZ (bit 6): subnormal inputs read as zero.
    const FTZ_DAZ: u32 = 0x8040;
    // SAFETY: SSE is part of x86-64; changing the rounding/denormal mode of the current thread
    // has no memory effects.
    unsafe { _mm_setcsr(_mm_getcsr() | FTZ_DAZ) }
}

/// Other architectures keep IEEE subnormals (aarch64 handles them at full speed).
#[cfg(not(target_arch = "x86_64"))]
fn flush_this_thread() {}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use std::hint::black_box;

    /// A subnormal operand reads as zero, and a product below the normal range becomes zero.
    fn flushes() -> bool {
        let tiny = black_box(1e-39_f32);
        assert!(tiny.is_subnormal() || tiny == 0.0);
        black_box(tiny) * black_box(1.0_f32) == 0.0 && black_box(1e-30_f32) * black_box(1e-10_f32) == 0.0
    }

    #[test]
    fn every_pool_thread_and_the_caller_flush_subnormals() {
        super::flush_everywhere();
        assert!(flushes(), "the calling thread");
        assert!(rayon::broadcast(|_| flushes()).into_iter().all(|f| f), "a rayon worker");
    }
}
