//! lrx: declarative, cached learning-rate and optimizer studies for language models.
//!
//! Data flows one way: text → AST (`lang`) → checked study → DAG (`plan`) → runs (`exec`,
//! through the `spec::Trainer` contract, implemented by `train`) → cached results (`cache`) →
//! tables and figures (`report`). See `ARCHITECTURE.md`.

pub mod cache;
pub mod exec;
pub mod report;
pub mod spec;
pub mod plan;
pub mod diag;
pub mod lang;
pub mod corpus;
pub mod external;
pub mod train;
pub mod cli;
mod commands;
