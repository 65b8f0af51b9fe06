//! What `check` reports: the kinds of problem, each finding, and the report.

use std::fmt;

use zfs_format::Magic;

/// The kinds of problem `check` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The file has no bytes at all.
    EmptyFile,
    /// The first four bytes are neither `FS30` nor `FS21`.
    BadMagic,
    /// 1 to 22 bytes where a transaction header should start.
    TruncatedHeader,
    /// A transaction id not greater than the one before it.
    TimestampReduction,
    /// A transaction whose length runs past the end of the file.
    TruncatedTransaction,
    /// Status `c`: a commit that was never finished.
    Checkpoint,
    /// A status byte other than `' '`, `p`, `u`, `c`.
    BadStatus,
    /// A transaction length shorter than its own header.
    InvalidHeader,
    /// A data record header that runs past the end of the file.
    TruncatedRecord,
    /// A data record whose transaction position (`tloc`) is not its transaction.
    BadTloc,
    /// A data record that extends beyond the end of its transaction.
    RecordOverrun,
    /// The 8 bytes after a transaction do not repeat its length.
    RedundantLength,
    /// Bytes that could not be read as transactions and were skipped.
    Unreadable,
    /// Status `u`: an obsolete "undone" transaction, whose records ZODB ignores.
    UndoneStatus,
    /// A record's serial differs from its transaction's tid.
    SerialMismatch,
    /// A `prev` pointer that does not point backwards to a record of the same oid.
    BadPrev,
    /// A backpointer that does not point backwards to a record of the same oid.
    BadBackpointer,
    /// The saved `.index` file cannot be decoded.
    IndexUnreadable,
    /// The saved `.index` covers a position that is not a transaction boundary.
    IndexPosition,
    /// The saved `.index` disagrees with the file about an oid.
    IndexMismatch,
}

impl Kind {
    /// A stable, kebab-case name for output and JSON.
    pub fn code(self) -> &'static str {
        match self {
            Kind::EmptyFile => "empty-file",
            Kind::BadMagic => "bad-magic",
            Kind::TruncatedHeader => "truncated-header",
            Kind::TimestampReduction => "timestamp-reduction",
            Kind::TruncatedTransaction => "truncated-transaction",
            Kind::Checkpoint => "checkpoint",
            Kind::BadStatus => "bad-status",
            Kind::InvalidHeader => "invalid-header",
            Kind::TruncatedRecord => "truncated-record",
            Kind::BadTloc => "bad-tloc",
            Kind::RecordOverrun => "record-overrun",
            Kind::RedundantLength => "redundant-length",
            Kind::Unreadable => "unreadable",
            Kind::UndoneStatus => "undone-status",
            Kind::SerialMismatch => "serial-mismatch",
            Kind::BadPrev => "bad-prev",
            Kind::BadBackpointer => "bad-backpointer",
            Kind::IndexUnreadable => "index-unreadable",
            Kind::IndexPosition => "index-position",
            Kind::IndexMismatch => "index-mismatch",
        }
    }

    /// True for the kinds ZODB's `fstest` also detects (it stops at the first of them).
    pub fn fstest_detects(self) -> bool {
        matches!(
            self,
            Kind::EmptyFile
                | Kind::BadMagic
                | Kind::TruncatedHeader
                | Kind::TimestampReduction
                | Kind::TruncatedTransaction
                | Kind::Checkpoint
                | Kind::BadStatus
                | Kind::InvalidHeader
                | Kind::TruncatedRecord
                | Kind::BadTloc
                | Kind::RecordOverrun
                | Kind::RedundantLength
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One problem: where, what kind, and a sentence saying what was expected and found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Absolute byte offset in the Data.fs file (for index findings: the record concerned,
    /// or 0).
    pub offset: u64,
    /// The kind of problem.
    pub kind: Kind,
    /// What was expected and what was found.
    pub message: String,
}

/// The result of a check.
#[derive(Clone, Debug, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Report {
    /// The magic, when it is one of the two known.
    pub magic: Option<Magic>,
    /// Length of the file.
    pub file_len: u64,
    /// Transactions whose header and length were sound.
    pub transactions: u64,
    /// Data records read without a structural error.
    pub records: u64,
    /// Bytes that could not be read as transactions.
    pub skipped_bytes: u64,
    /// True when a saved index was compared with the file.
    pub index_checked: bool,
    /// Every problem found, in file order (index findings last).
    pub findings: Vec<Finding>,
}

impl Report {
    /// True when nothing was found.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

/// A finding as `{"offset", "kind", "fstest_detects", "message"}`.
#[cfg(feature = "serde")]
impl serde::Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut st = s.serialize_struct("Finding", 4)?;
        st.serialize_field("offset", &self.offset)?;
        st.serialize_field("kind", &self.kind)?;
        st.serialize_field("fstest_detects", &self.kind.fstest_detects())?;
        st.serialize_field("message", &self.message)?;
        st.end()
    }
}
