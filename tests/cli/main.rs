//! End-to-end tests of the `lrx` binary: each writes study files to a temporary folder, runs
//! the real binary there, and snapshots its exit code, stdout and stderr.
//!
//! Add a module per command area; build runs with [`harness::Test`].

mod harness;

mod budget;
mod cache;
mod check;
mod command_trainer;
mod corpus;
mod diff;
mod engine;
mod figures;
mod fmt;
mod gpus;
mod graph;
mod live;
mod outcomes;
mod pipes;
mod plan;
mod report;
mod results_fixture;
mod schedule;
mod science;
mod script;
mod shell;
mod show;
mod train;
