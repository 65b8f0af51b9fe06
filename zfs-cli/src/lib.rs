//! Shared pieces of the `zodbfs` and `zodbfs-repozo` binaries: progress bars, exit codes,
//! signal handling and the version text.
//!
//! The binaries are thin: they parse arguments, call the library crates, draw progress and
//! map errors to exit codes. Everything they print about errors goes to stderr.

pub mod exit;
pub mod signals;
pub mod ui;
pub mod version;
