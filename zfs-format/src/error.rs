//! The crate's error type: every corruption names its absolute byte offset.

use std::path::PathBuf;

use crate::ids::Oid;

/// Everything that can go wrong while reading or writing a FileStorage file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened, mapped, read or written.
    #[error("'{path}'")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file has no bytes at all, so no magic.
    #[error("not a FileStorage file: the file is empty (0 bytes, no \"FS30\" or \"FS21\" magic)")]
    Empty,
    /// The first four bytes are neither `FS21` nor `FS30`.
    #[error("not a FileStorage file: magic {found} at offset 0, expected \"FS30\" or \"FS21\"")]
    BadMagic {
        /// The bytes found, escaped.
        found: String,
    },
    /// A transaction header claims less room than its own fixed fields and strings need,
    /// and it is not junk at the end of the file.
    #[error(
        "transaction at offset {offset}: invalid header, length {tlen} < header length {hlen}"
    )]
    InvalidTxnHeader {
        /// Position of the transaction.
        offset: u64,
        /// Its `tlen` field.
        tlen: u64,
        /// The header length it needs.
        hlen: u64,
    },
    /// The 8 bytes after a transaction do not repeat its length.
    #[error("transaction at offset {txn}: redundant length at offset {offset} is {found}, header says {expected}")]
    RedundantLength {
        /// Position of the transaction.
        txn: u64,
        /// Position of the redundant length.
        offset: u64,
        /// The header's `tlen`.
        expected: u64,
        /// The value found.
        found: u64,
    },
    /// Walking backwards, the length before a boundary leads nowhere sensible.
    #[error(
        "transaction ending at offset {end}: length {tlen} read backwards leads outside the file"
    )]
    BackwardLength {
        /// The boundary walked back from.
        end: u64,
        /// The length read before it.
        tlen: u64,
    },
    /// A position does not hold what it must (a transaction header read backwards, a record).
    #[error("offset {offset}: {what}")]
    Corrupt {
        /// Absolute position of the problem.
        offset: u64,
        /// What was expected and found.
        what: String,
    },
    /// A data record runs past the end of its transaction.
    #[error("data record at offset {offset}: length {len} exceeds its transaction at offset {txn} (records end at {txn_end})")]
    RecordExceedsTxn {
        /// Position of the record.
        offset: u64,
        /// Its length.
        len: u64,
        /// Position of the transaction.
        txn: u64,
        /// Where the transaction's records end.
        txn_end: u64,
    },
    /// A data record's `tloc` is not its transaction's position.
    #[error(
        "data record at offset {offset}: transaction position (tloc) {found}, expected {expected}"
    )]
    BadTloc {
        /// Position of the record.
        offset: u64,
        /// Its `tloc` field.
        found: u64,
        /// The enclosing transaction's position.
        expected: u64,
    },
    /// A backpointer that does not point to an earlier record of the same object.
    #[error("data record at offset {offset} (oid {oid}): bad backpointer {back}: {why}")]
    BadBackpointer {
        /// Position of the record holding the pointer.
        offset: u64,
        /// Its oid.
        oid: Oid,
        /// The pointer.
        back: u64,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A pickle could not be read.
    #[error("data record at offset {offset} (oid {oid})")]
    Pickle {
        /// Position of the data record.
        offset: u64,
        /// The record's oid.
        oid: Oid,
        /// What the scanner found.
        #[source]
        source: crate::pickle::PickleError,
    },
    /// A file could not be opened, mapped, created or replaced safely, or shrank while
    /// it was read.
    #[error(transparent)]
    File(#[from] zfs_files::Error),
    /// A `.index` file that cannot be decoded.
    #[error("index file: {what} at offset {offset}")]
    IndexFile {
        /// Position inside the index file.
        offset: u64,
        /// What was wrong.
        what: String,
    },
    /// A saved references file (`<file>.refs`) that cannot be used.
    #[error("references file: {why} at offset {offset}")]
    BadRefsFile {
        /// Position inside the references file.
        offset: u64,
        /// What was wrong.
        why: String,
    },
    /// The run context said to stop (Ctrl-C); nothing was written.
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::progress::Interrupted> for Error {
    fn from(_: crate::progress::Interrupted) -> Self {
        Error::Interrupted
    }
}
