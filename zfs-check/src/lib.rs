//! Integrity checks and inspection of FileStorage files.
//!
//! `dump` (fsdump's text), `tail` (fstail's text) and `info` are here, with the checks of
//! the integrity issue (`check`, `refs`, `recover`, `stats`, `oids`).
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
