//! Tests of the `.lrx` language and the planner, through the library: bad inputs and their
//! diagnostics, golden expansions of the example studies, formatting properties, the docs.

#![allow(clippy::float_cmp)] // exact values are the point of these tests

mod bad_input;
mod budget;
mod docs;
mod errors;
mod golden;
mod params;
mod pipelines;
mod props;
mod semantics;
mod trial;
