//! lrx: declarative, cached learning-rate and optimizer studies for language models.
//!
//! Data flows one way: text → AST (`lang`) → checked study → DAG (`plan`) → runs (`exec`,
//! through the `spec::Trainer` contract, implemented by `train`) → cached results (`cache`) →
//! what a study produced (`results`, written by `exec`) → tables and figures (`report`, which
//! reads `results` and never `exec`). The commands call `ops`, the library layer under them.
//! See `ARCHITECTURE.md`.

pub mod cache;
pub mod cli;
mod commands;
pub mod corpus;
pub mod diag;
pub mod exec;
pub mod external;
pub mod lang;
pub mod ops;
pub mod plan;
pub mod report;
pub mod results;
pub mod spec;
pub mod train;
