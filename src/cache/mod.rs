//! The run cache: run identity ([`key`]) and the on-disk store of finished runs ([`store`]).

pub mod key;
pub mod store;

pub use key::{DataFingerprint, KeyInput, RunKey};
pub use store::{CacheError, Entry, Kept, Lookup, Store};
