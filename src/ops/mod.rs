//! The library layer under the commands (as cargo's `ops`): what a command does, apart from reading
//! its arguments and printing. Opening a study (`study`), finding a phase or candidate by name
//! (`find`), why a run is not cached (`why`), what a plan costs (`estimate`), schedule expressions
//! (`schedule`), what `lrx train` trains (`train`), what `cache gc` and `cache rm` delete (`cache`)
//! and what a Slurm job's `lrx worker` does (`worker`) each live here once; the commands turn
//! arguments into these calls and print what they return. Nothing here prints.

pub mod cache;
pub mod estimate;
pub mod find;
pub mod schedule;
pub mod study;
pub mod train;
pub mod why;
pub mod worker;
