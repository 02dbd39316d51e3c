//! The engine: executes the plan's study graph, runs what is not cached (through an executor),
//! settles selections through their policies, feeds winners forward.

mod budget;
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
