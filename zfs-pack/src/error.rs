//! The pack's error type: every problem names the file offset (and oid) it concerns.

use std::fmt;
use std::path::PathBuf;

use zfs_format::{Oid, Tid};

/// A reference from a reachable record to an object that does not exist at the pack time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dangling {
    /// The referring object.
    pub from: Oid,
    /// Position of the referring record (the one whose pickle holds the reference).
    pub offset: u64,
    /// The missing oid's bytes as found in the pickle (8 bytes for a normal oid).
    pub missing: Vec<u8>,
}

/// Dangling references as their sentences (for `serialize_with`).
#[cfg(feature = "serde")]
pub(crate) fn dangling_texts<S: serde::Serializer>(
    v: &[Dangling],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(ToString::to_string))
}

impl fmt::Display for Dangling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match <[u8; 8]>::try_from(self.missing.as_slice()) {
            Ok(b) => write!(
                f,
                "oid {} (record at offset {}) -> missing oid {}",
                self.from,
                self.offset,
                Oid(b)
            ),
            Err(_) => write!(
                f,
                "oid {} (record at offset {}) -> reference {} (not an 8-byte oid)",
                self.from,
                self.offset,
                zfs_format::repr::escape_bytes(&self.missing)
            ),
        }
    }
}

/// Everything that stops a pack. Whatever the error, the original file is unchanged and no
/// `.pack` file is left behind, except for [`PackError::AfterSwap`], which comes after the
/// packed file took the original's place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    /// A file could not be read, written, renamed or removed.
    #[error("'{path}'")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be read as a FileStorage.
    #[error(transparent)]
    Format(zfs_format::Error),
    /// A consistency check of ZODB's packer failed (the message is ZODB's).
    #[error("'{path}': offset {offset}: {what}")]
    Corrupt {
        /// The data file.
        path: PathBuf,
        /// Position of the damaged transaction or record.
        offset: u64,
        /// What is wrong, in the words of ZODB's packer.
        what: String,
    },
    /// Reachable objects refer to objects that do not exist at the pack time.
    #[error("{} dangling reference(s) from reachable objects (ZODB's pack fails with KeyError; --allow-dangling packs anyway): {}", .0.len(), list(.0))]
    Dangling(Vec<Dangling>),
    /// The pickle of a reachable record could not be read, so its references are unknown.
    #[error("cannot read the references of oid {oid} (record at offset {offset})")]
    Pickle {
        /// The object.
        oid: Oid,
        /// Position of the record holding the pickle.
        offset: u64,
        /// The scanner's error.
        #[source]
        source: zfs_format::pickle::PickleError,
    },
    /// The database is open elsewhere (a running ZODB holds its lock file).
    #[error("'{}' is locked by {}: the database is open in another process; nothing was changed",
        path.display(), holder.as_deref().unwrap_or("another process"))]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as its lock file says.
        holder: Option<String>,
    },
    /// Committed transactions follow damage in the middle of the file: packing would keep
    /// only what comes before the damage.
    #[error("'{}': the transactions end at offset {end} ({why}), but a complete transaction \
        follows at offset {next} ({tail} bytes after the damage): packing would drop them; \
        nothing was changed. Run `zodbfs check` to see the damage and `zodbfs recover` to \
        salvage the file, then pack the recovered file", path.display())]
    DamagedMiddle {
        /// The data file.
        path: PathBuf,
        /// Where the readable transactions end.
        end: u64,
        /// Why the walk stopped there.
        why: &'static str,
        /// A complete, plausible transaction found after it.
        next: u64,
        /// Bytes from `end` to the end of the file.
        tail: u64,
    },
    /// A file could not be opened, created, locked or replaced safely.
    #[error(transparent)]
    File(#[from] zfs_files::Error),
    /// A stop tid of zero (ZODB: "Invalid pack time").
    #[error("invalid pack time: the stop tid is zero")]
    InvalidPackTime,
    /// A backpointer after the pack time whose target cannot be found in the packed file.
    #[error("record at offset {offset} (oid {oid}): backpointer to transaction {tid} cannot be re-pointed: {why}")]
    Backpointer {
        /// Position of the record in the input.
        offset: u64,
        /// Its oid.
        oid: Oid,
        /// The transaction the backpointer leads to.
        tid: Tid,
        /// What failed.
        why: &'static str,
    },
    /// Stopped by the run context (SIGINT or SIGTERM in the binary): the original is unchanged and `.pack` removed.
    #[error("interrupted; nothing was changed")]
    Interrupted,
    /// The packed file is in place (the original is `.old` unless `keep_old` is off), but
    /// a later step failed: removing blob files or `.old`.
    #[error("the file was packed, but finishing failed: {0}")]
    AfterSwap(Box<PackError>),
    /// The blob directory given is missing or not a directory (refused before anything
    /// is read or written).
    #[error("'{}': not a blob directory ({why})", path.display())]
    NotBlobDir {
        /// The path given as the blob directory.
        path: PathBuf,
        /// What it is instead.
        why: &'static str,
    },
    /// The saved references (`<file>.refs`) or the saved index do not describe the file,
    /// found while copying: the pack drops that copy and packs the usual way, so this
    /// never reaches a caller of [`crate::pack`].
    #[error("the saved references do not describe the file")]
    StaleReferences,
    /// A line of the blob directory's `.removed` file is neither 16 nor 32 hex digits.
    #[error("'{path}': bad record {line:?}")]
    BadRemovedLine {
        /// The `.removed` file.
        path: PathBuf,
        /// The offending line.
        line: String,
    },
}

fn list(d: &[Dangling]) -> String {
    const SHOWN: usize = 20;
    let mut s: Vec<String> = d.iter().take(SHOWN).map(ToString::to_string).collect();
    if d.len() > SHOWN {
        s.push(format!("... and {} more", d.len() - SHOWN));
    }
    s.join("; ")
}

impl PackError {
    /// Whether the data file was left as it was (every error but [`PackError::AfterSwap`]).
    pub fn original_unchanged(&self) -> bool {
        !matches!(self, PackError::AfterSwap(_))
    }

    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PackError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = PackError> = std::result::Result<T, E>;

/// A format error, except that a run context's interruption is [`PackError::Interrupted`].
impl From<zfs_format::Error> for PackError {
    fn from(e: zfs_format::Error) -> Self {
        match e {
            zfs_format::Error::Interrupted => PackError::Interrupted,
            e => PackError::Format(e),
        }
    }
}
