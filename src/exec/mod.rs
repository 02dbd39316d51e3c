//! The engine: walks a study's DAG, runs what is not cached, picks winners, feeds them forward.

pub mod engine;
pub mod executor;
pub mod outputs;
pub mod policy;
pub mod progress;
pub mod runner;
pub mod select;
pub mod slurm;

#[cfg(test)]
mod tests;
