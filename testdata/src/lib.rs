//! Test support shared by the workspace's tests and benchmarks: synthetic Data.fs makers,
//! the committed fixtures and the real corpus ([`paths`]), and the Python ZODB oracle
//! ([`oracle`]).
//!
//! Nothing here ships in the binaries: it is a dev-dependency of the other crates, and the
//! home of `zfs-gen`, the generator of large realistic Data.fs files ([`gen`]).
//!
//! Tests that need something a fresh clone lacks (the real corpus, the oracle) are marked
//! `#[ignore = "needs ..."]` and call [`paths::corpus_files`] or [`oracle::require_python`],
//! which fail with a message saying what is missing when run with `--ignored` without it.

pub mod gen;
mod maker;
pub mod oracle;
pub mod paths;

pub use maker::{datafs, linked, linked_pickle, Maker, Noise, TID_BASE};
pub use paths::{fixture, repo_root};
