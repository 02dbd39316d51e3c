//! The engine: walks a study's DAG, runs what is not cached, picks winners, feeds them forward.

pub mod executor;
pub mod runner;
pub mod policy;
pub mod select;
pub mod outputs;
pub mod progress;
pub mod engine;

#[cfg(test)]
mod tests;
