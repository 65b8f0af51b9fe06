//! `zfs-convert`: a ZODB FileStorage copied into RelStorage on PostgreSQL, and back.
//!
//! It owns the rows RelStorage keeps and how to load them fast:
//!
//! - [`convert`]: a Data.fs (and its blob directory) into a database that already holds
//!   RelStorage's schema, history-preserving or history-free, with the rows RelStorage's own
//!   `zodbconvert` writes: transactions, every revision with its previous tid and MD5, undo
//!   records resolved to the state they restore, undone creations and deletions as NULL
//!   states, `current_object`, blobs as large objects, and `zoid_seq` as RelStorage's copy
//!   leaves it. Rows go in with binary `COPY` on parallel connections, into tables whose
//!   keys and indexes are re-created at the end. A manifest table, committed with every
//!   batch and dropped at the end, makes an interrupted conversion resumable; with
//!   `follow` the transactions appended to a live source are copied too; with `pack_refs`
//!   RelStorage's pack tables are filled from the references we read, so its first pack
//!   has no reference analysis left to do.
//! - [`export`]: a RelStorage database back into a new Data.fs and blob directory, as
//!   `zodbconvert` with a FileStorage destination writes them.
//! - [`schema`]: which RelStorage schema a database holds, and whether we know it.
//!
//! Nothing here prints; long work reports to a [`zfs_format::Progress`] and stops when the
//! caller's interrupt flag is set.

mod blobs;
mod convert;
mod db;
mod ddl;
mod error;
mod export;
mod follow;
mod hf;
mod hp;
pub mod manifest;
mod oidtable;
mod pgcopy;
mod refs;
pub mod schema;
mod sequence;
mod stream;

pub use convert::{convert, ConvertOptions, ConvertReport};
pub use error::{ConvertError, Result};
pub use export::{export, ExportOptions, ExportReport};
pub use schema::Mode;

/// The source as the conversion reads it: a FileStorage over borrowed bytes.
pub(crate) type View<'a> = zfs_format::FileStorage<&'a [u8]>;
