//! `zfs-format`: the ZODB FileStorage file format (`Data.fs`), read zero-copy.
//!
//! It owns everything about the bytes of a FileStorage and of its `.index` file:
//!
//! - [`FileStorage`]: a read-only mmap view, `FS21` and `FS30` alike, with forward
//!   ([`Transactions`]) and backward ([`TransactionsRev`]) walks over [`Transaction`]s and
//!   their [`DataRecord`]s, the end of the last complete transaction ([`End`], ZODB's
//!   `getSize()`), and backpointer resolution.
//! - [`Index`]: oid → position of the current record, built by [`scan::build_index`] on
//!   all cores, saved and loaded as ZODB's `.index` file by [`index_file`].
//! - [`pickle`]: persistent references and class names read from pickles without Python.
//! - [`timestamp`]: ZODB's TimeStamp arithmetic and printed form.
//! - [`writer`]: transaction and data record encoding, for the packer and for tests.
//!
//! Nothing here prints or exits; long operations report through [`Progress`].
//!
//! ```no_run
//! let fs = zfs_format::FileStorage::open("Data.fs")?;
//! for txn in fs.transactions() {
//!     let txn = txn?;
//!     for rec in txn.records() {
//!         let rec = rec?;
//!         println!("{} {} {}", txn.tid(), rec.oid, rec.pos);
//!     }
//! }
//! # Ok::<(), zfs_format::Error>(())
//! ```

mod bytes;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod ids;
pub mod index;
pub mod index_file;
pub mod pickle;
pub mod progress;
pub mod reader;
pub mod record;
pub mod repr;
pub mod scan;
mod storage;
pub mod timestamp;
pub mod txn;
pub mod walk;
pub mod writer;

pub use error::{Error, Result};
pub use ids::{Oid, Tid};
pub use index::{Index, IndexBuilder};
pub use progress::{NoProgress, Progress};
pub use record::{DataRecord, Payload};
pub use storage::{End, EndReason, FileStorage, Magic, Transactions, TransactionsRev, FIRST_TXN};
pub use txn::{Status, Transaction};
