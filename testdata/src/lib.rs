//! Test support shared by the workspace's tests, benchmarks and scripts.
//!
//! Nothing here ships in the binaries: it is a dev-dependency of the other crates.

mod maker;

pub use maker::datafs;
