//! Tests of the `.lrx` language and the planner, through the library: bad inputs and their
//! diagnostics, golden expansions of the example studies, formatting properties, the docs.

mod docs;
mod errors;
mod golden;
mod pipelines;
mod props;
mod semantics;
