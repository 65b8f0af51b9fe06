//! Integrity checks and inspection of FileStorage files.
//!
//! It owns what `zodbfs` reads a FileStorage for without changing it: `dump` (fsdump's
//! text), `tail` (fstail's text), `info` (the summary), `check` (everything fstest checks,
//! and more), `refs` (dangling references), `stats`, `oids` (an object's history), and
//! `recover` (fsrecover: a new file of what can be read from a damaged one).
//!
//! The walks here decode no header bytes themselves: record and transaction layouts, the
//! resynchronisation after damage, backpointer chains and `_data_find` are
//! `zfs_format`'s.

pub mod check;
pub mod dump;
#[doc(hidden)]
pub mod fuzzing;
pub mod info;
pub mod oids;
pub mod recover;
pub mod refs;
pub mod stats;
pub mod tail;
