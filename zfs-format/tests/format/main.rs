//! Integration tests of `zfs-format` against files made by real ZODB.

mod corpus;
mod fixtures;
mod mutated;

/// The committed fixtures: `(name, Data.fs path, expected-outputs dir)`.
pub fn fixtures() -> Vec<(String, std::path::PathBuf, std::path::PathBuf)> {
    zfs_testdata::paths::expected_fixtures()
}
