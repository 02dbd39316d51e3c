//! The fault-injection harness of `RELIABILITY.md`: the real `lrx` binary on small real studies,
//! killed (`kill -9`), interrupted (SIGINT, SIGTERM), run three at a time, given a full or
//! read-only cache, a file as `--out`, an unreadable corpus, and a cache whose entries were
//! damaged or mixed with foreign files. Every fault is followed by `lrx cache verify` and a
//! rerun whose results must equal an uninterrupted run's, bit for bit.
//!
//! The expensive campaigns run once per process and are shared by several tests, each of which
//! asserts one kind of loss, so a kind that still fails can be marked `#[ignore]` alone. Run
//! `cargo test --test faults -- --include-ignored --nocapture` to see every table;
//! `LRX_FAULT_SEED=N` replays a schedule of fault moments.

mod support;

mod concurrent;
mod damage;
mod environment;
mod interrupt;
