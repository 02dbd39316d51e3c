//! Parse, check and compile a generated study of 10,000 variants (a 100 × 100 grid over a
//! derived `lr` and a schedule argument, every candidate resolved to a checked run config).

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group};

/// A study whose one phase has 100 × 100 = 10,000 variants (and the baseline).
fn study() -> String {
    "model { d_model = 64   layers = 2   heads = 4   d_ff = 128   experts = 4   seq_len = 64 }\n\
     train {\n  lr = 0.04\n  matrix_lr = lr\n  embedding_lr = lr * 10\n  unembedding_lr = lr * 0.1\n  scalar_lr = lr * 0.5\n}\n\
     phase big {\n  grid {\n    lr in log(0.0001, 1.0, n = 100)\n    schedule.warmup in lin(0.0, 0.4, n = 100)\n  }\n}\n\
     phase after_big after big {\n  vary lr in [base * 0.5, base * 2]\n}\n\
     final combine(big, after_big)\n"
        .to_owned()
}

fn bench(c: &mut Criterion) {
    let src = study();
    let plan = lrx::plan::Plan::compile(&src, Path::new("big.lrx")).expect("the generated study is valid");
    assert_eq!(plan.phases[0].candidate_count, 10_001);
    c.bench_function("parse + check + compile, 10,000 variants", |b| {
        b.iter(|| lrx::plan::Plan::compile(black_box(&src), Path::new("big.lrx")).expect("valid"));
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
/// `LRX_BENCH_LOOP=N` compiles N times and exits, for measuring CPU time on a busy machine
/// (`perf stat -e task-clock`); otherwise the usual criterion run.
fn main() {
    if let Some(n) = std::env::var("LRX_BENCH_LOOP").ok().and_then(|n| n.parse::<u32>().ok()) {
        let src = study();
        for _ in 0..n {
            black_box(lrx::plan::Plan::compile(black_box(&src), Path::new("big.lrx")).expect("valid"));
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
