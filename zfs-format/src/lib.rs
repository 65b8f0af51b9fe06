//! `zfs-format`: the ZODB FileStorage file format (`Data.fs`), read zero-copy.
//!
//! It owns everything about the bytes of a FileStorage and of its `.index` file:
//!
//! - [`FileStorage`]: a read-only mmap view, `FS21` and `FS30` alike, with forward
//!   ([`Transactions`]) and backward ([`TransactionsRev`]) walks over [`Transaction`]s and
//!   their [`DataRecord`]s, the end of the last complete transaction ([`End`], ZODB's
//!   `getSize()`), and backpointer resolution ([`chain`]).
//! - [`txn`], [`record`]: the 23-byte transaction header and the 42-byte data record header,
//!   decoded and encoded in one place each ([`txn::RawTxnHeader`], [`record::RawDataHeader`]),
//!   over the bounded big-endian readers of [`bytes`]; [`resync`] finds the next plausible
//!   transaction after damage.
//! - [`Index`]: oid → position of the current record, built by [`scan::build_index`] on
//!   all cores, saved and loaded as ZODB's `.index` file by [`index_file`].
//! - [`refs_file`]: the saved references file (`<file>.refs`) a pack reads instead of the
//!   whole file.
//! - [`pickle`]: persistent references and class names read from pickles without Python.
//! - [`blob`]: blob records and the names of their files in a blob directory.
//! - [`timestamp`]: ZODB's TimeStamp arithmetic and printed form, and the UTC calendar
//!   (dates, `--time`, repository stamps).
//! - [`repr`]: Python's `repr` of bytes and text, and ZODB's `oid_repr`.
//! - [`writer`]: transaction and data record encoding (the packer, `recover` and tests write
//!   through it), and ZODB's two `_data_find`s over a file being written.
//!
//! Nothing here prints or exits; long operations report through [`Progress`], the run
//! context every crate's long walks take (progress, and [`Progress::interrupted`]).
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

pub mod blob;
pub mod bytes;
pub mod chain;
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
pub mod refs_file;
pub mod repr;
pub mod resync;
pub mod scan;
#[cfg(feature = "serde")]
pub mod serde_text;
mod storage;
pub mod timestamp;
pub mod txn;
pub mod walk;
pub mod writer;

pub use error::{Error, Result};
pub use ids::{Oid, Tid};
pub use index::{Index, IndexBuilder};
pub use progress::{Interrupted, Interruptible, NoProgress, Progress};
pub use record::{DataRecord, Payload};
pub use storage::{End, EndReason, FileStorage, Magic, Transactions, TransactionsRev, FIRST_TXN};
pub use txn::{Status, Transaction};
