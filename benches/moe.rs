//! The MoE layer's cost on the CPU, forward and backward under autodiff: the layer as the CPU
//! runs it (one expert at a time), as accelerators run it (padded groups, two batched matmuls;
//! `--device cpu-generic` takes the same branch), and the experts' GEMMs alone on equal
//! groups, the floor any dispatch adds to. Shapes: the quickstart's (d 64, `d_ff` 128, 4
//! experts, top-2, 256 tokens per shard) and the defaults' (d 384, `d_ff` 1536, 8 experts,
//! top-2, 4,096 tokens per shard: batch 16 × 512 in two shards).
//!
//! `CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo bench --bench moe --profile dev` (prints ms per call).

use std::hint::black_box;
use std::time::Instant;

use burn::backend::flex::FlexDevice;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData};
use lrx::spec::Precision;
use lrx::train::{moe, with_accelerator_path};

type A = Autodiff<Flex>;

struct Shape {
    name: &'static str,
    tokens: usize,
    d: usize,
    f: usize,
    experts: usize,
    top_k: usize,
    reps: usize,
}

/// Deterministic pseudo-random values in [-scale, scale).
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn leaf(shape: [usize; 2], seed: u64, scale: f32) -> Tensor<A, 2> {
    Tensor::from_data(TensorData::new(values(shape[0] * shape[1], seed, scale), shape), &FlexDevice).require_grad()
}

/// Mean milliseconds of `f` over `reps` calls, after one warm-up call.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    for _ in 0..reps {
        f();
    }
    start.elapsed().as_secs_f64() * 1000.0 / reps as f64
}

fn main() {
    let shapes = [
        Shape { name: "quickstart", tokens: 256, d: 64, f: 128, experts: 4, top_k: 2, reps: 200 },
        Shape { name: "defaults", tokens: 4096, d: 384, f: 1536, experts: 8, top_k: 2, reps: 3 },
    ];
    println!(
        "| shape | MoE layer, CPU (loop) | MoE layer, accelerator path (grouped) | expert GEMMs alone | other ops of the layer (loop − GEMMs) |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for s in &shapes {
        let h = leaf([s.tokens, s.d], 1, 1.0);
        let router = leaf([s.d, s.experts], 2, (3.0 / s.d as f32).sqrt());
        let w1: Vec<_> = (0..s.experts).map(|e| leaf([s.d, s.f], 10 + e as u64, (3.0 / s.d as f32).sqrt())).collect();
        let w2: Vec<_> = (0..s.experts).map(|e| leaf([s.f, s.d], 30 + e as u64, (3.0 / s.f as f32).sqrt())).collect();
        let layer = |grouped: bool| {
            with_accelerator_path(grouped, || {
                let (out, aux) = moe::moe(h.clone(), &router, &w1, &w2, s.top_k, None, true, Precision::F32);
                let aux = aux.map(|b| b.term(&moe::fractions([&b]), 1.0)).expect("a balance term");
                black_box((out.sum() + aux).backward());
            });
        };
        let loop_ms = time(s.reps, || layer(false));
        let grouped_ms = time(s.reps, || layer(true));
        // The experts' two GEMMs and SiLU on equal groups, forward and backward: what any
        // dispatch of these tokens has to compute.
        let rows = s.tokens * s.top_k / s.experts;
        let xs: Vec<_> = (0..s.experts).map(|e| leaf([rows, s.d], 50 + e as u64, 1.0)).collect();
        let gemm_ms = time(s.reps, || {
            let outs: Vec<_> = xs
                .iter()
                .zip(w1.iter().zip(&w2))
                .map(|(x, (a, b))| lrx::train::kernels::silu(x.clone().matmul(a.clone())).matmul(b.clone()).sum())
                .collect();
            black_box(Tensor::cat(outs, 0).sum().backward());
        });
        println!(
            "| {} ({} tokens, d {}, d_ff {}, {} experts, top-{}) | {loop_ms:.2} ms | {grouped_ms:.2} ms | {gemm_ms:.2} ms | {:.2} ms ({:.0} %) |",
            s.name,
            s.tokens,
            s.d,
            s.f,
            s.experts,
            s.top_k,
            loop_ms - gemm_ms,
            100.0 * (loop_ms - gemm_ms) / loop_ms
        );
    }
}
