//! Test support shared by the workspace's tests, benchmarks and scripts.
//!
//! Nothing here ships in the binaries: it is a dev-dependency of the other crates, and the
//! home of `zfs-gen`, the generator of large realistic Data.fs files ([`gen`]).

pub mod gen;
mod maker;

pub use maker::datafs;
