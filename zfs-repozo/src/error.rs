//! Errors of a repozo run. Their `Display` is the text Python repozo prints for the same
//! condition (scripts grep them); conditions where Python crashes get a clear message of ours.

use std::path::{Path, PathBuf};

/// Everything that ends a repozo run with exit status 1.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The data file of a new backup already exists.
    #[error("Cannot overwrite existing file: {0}")]
    WouldOverwrite(String),
    /// No backup in the repository (as of now).
    #[error("No files in repository")]
    NoFiles,
    /// No backup in the repository as of the date given with `-D`.
    #[error("No files in repository before {0}")]
    NoFilesBefore(String),
    /// Verification: a file listed in the `.dat` cannot be read.
    #[error("{0} is missing")]
    Missing(String),
    /// Verification: a file has the wrong (uncompressed) size.
    #[error("{path} is {found} bytes{when}, should be {expected} bytes")]
    WrongSize {
        /// The file as repozo names it.
        path: String,
        /// Its size.
        found: u64,
        /// The size the `.dat` records.
        expected: u64,
        /// `" (when uncompressed)"` for gzipped files in verify mode, else empty.
        when: &'static str,
    },
    /// Verification: a file has the wrong MD5.
    #[error("{path} has checksum {found}{when} instead of {expected}")]
    WrongChecksum {
        /// The file as repozo names it.
        path: String,
        /// Its MD5.
        found: String,
        /// The MD5 the `.dat` records.
        expected: String,
        /// `" (when uncompressed)"` for gzipped files in verify mode, else empty.
        when: &'static str,
    },
    /// An operating-system error, printed as Python's `OSError`.
    #[error("{}", os_error_text(.source, .path))]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A gzipped data file whose header is not gzip (Python's `BadGzipFile`).
    #[error("Not a gzipped file ({0})")]
    NotGzipped(String),
    /// A gzipped data file that Python's `gzip` module rejects with `BadGzipFile` (an
    /// `OSError`): `CRC check failed 0x… != 0x…`, `Incorrect length of data produced`,
    /// `Unknown compression method`. The text is Python's.
    #[error("{0}")]
    GzipFile(String),
    /// A gzipped data file whose compressed data is corrupt or truncated.
    #[error("{path}: corrupt gzip data: {why}")]
    BadGzip {
        /// The file.
        path: String,
        /// What the decoder said.
        why: String,
    },
    /// A `.dat` line that is not `<path> <start> <end> <md5>`.
    #[error("{path}: line {line}: expected '<file> <start> <end> <md5>', found {text:?}")]
    BadDatLine {
        /// The `.dat` file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// Stopped by [`Hooks::interrupt`](crate::Hooks::interrupt): temporary files were
    /// removed, nothing was renamed into place.
    #[error("interrupted; nothing was changed")]
    Interrupted,
    /// The chain on disk does not agree with its `.dat` (a hole, a truncated file, a splice).
    #[error("{0}")]
    BrokenChain(String),
    /// The source could not be read as a FileStorage.
    #[error("{path}")]
    Format {
        /// The source file.
        path: String,
        /// What is wrong with it.
        #[source]
        source: zfs_format::Error,
    },
    /// The source has no complete transaction to back up (an empty file).
    #[error("{0}: not a FileStorage file (empty), nothing to back up")]
    EmptySource(String),
    /// Fewer bytes could be copied than the source held when the run started.
    #[error("{path}: could copy only {got} of {want} bytes (was the file truncated or replaced during the backup?)")]
    ShortCopy {
        /// The source.
        path: String,
        /// Bytes copied.
        got: u64,
        /// Bytes wanted.
        want: u64,
    },
    /// Not enough free space for a safe restore, and the old output was not removed.
    #[error("{0}")]
    NoSpace(String),
    /// A file could not be created, replaced or locked safely (an output that is an input,
    /// a device, FIFO or symlink where a file must go, a lock held by another process), or
    /// the source shrank while it was read.
    #[error(transparent)]
    Files(zfs_files::Error),
    /// Verification: a file listed in the `.dat` exists but cannot be read.
    #[error("{path} is unreadable: {why}")]
    Unreadable {
        /// The file as repozo names it.
        path: String,
        /// The operating system's words (`[Errno 13] Permission denied`).
        why: String,
    },
    /// The chain as of the date has no full backup: its oldest file is an incremental.
    #[error(
        "{first} is an incremental backup and no full backup precedes it in {repository} \
         (was the full backup deleted?): the chain cannot be restored"
    )]
    NoFullBackup {
        /// The oldest file of the chain.
        first: String,
        /// The repository.
        repository: String,
    },
    /// The chain's full backup does not hold a FileStorage.
    #[error("{path} is not a FileStorage backup: it starts with {found}, not FS30 or FS21")]
    NotFileStorage {
        /// The full backup.
        path: String,
        /// Its first bytes, as Python's `repr`.
        found: String,
    },
    /// The restore target is open in a running ZODB (its `.lock` file is held).
    #[error(
        "{target} is in use: {lock} is locked by {holder} (a running ZODB?); stop it before \
         restoring over it. Nothing was changed"
    )]
    TargetInUse {
        /// The restore target.
        target: String,
        /// Its lock file.
        lock: String,
        /// Who holds it.
        holder: String,
    },
    /// A restore failed or was interrupted after the old target had been deleted to make
    /// room for the new one: the target no longer exists.
    #[error("{}", target_deleted_text(.target, .cause))]
    TargetDeleted {
        /// The restore target.
        target: String,
        /// What stopped the restore.
        cause: Box<Error>,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// True when the run was stopped by [`Hooks::interrupt`](crate::Hooks::interrupt)
    /// (also when the old restore target had been deleted first).
    pub fn is_interrupted(&self) -> bool {
        match self {
            Error::Interrupted => true,
            Error::TargetDeleted { cause, .. } => cause.is_interrupted(),
            _ => false,
        }
    }

    /// An error about the source file (`path`) found while reading it as a FileStorage.
    pub(crate) fn source_format(path: &str, e: zfs_format::Error) -> Self {
        match e {
            zfs_format::Error::Io { path, source } => Error::Io { path, source },
            zfs_format::Error::File(f) => f.into(),
            other => Error::Format {
                path: path.to_string(),
                source: other,
            },
        }
    }
}

impl From<zfs_files::Error> for Error {
    /// OS errors keep Python's `OSError` text (`[Errno 2] No such file or directory: 'x'`),
    /// a directory where a file must be too; the rest keeps zfs-files' words.
    fn from(e: zfs_files::Error) -> Self {
        match e {
            zfs_files::Error::Io { path, source, .. } => Error::Io { path, source },
            zfs_files::Error::NotRegular {
                path,
                kind: "a directory",
            } => Error::Io {
                path,
                source: std::io::Error::from_raw_os_error(rustix::io::Errno::ISDIR.raw_os_error()),
            },
            other => Error::Files(other),
        }
    }
}

/// The words of [`Error::TargetDeleted`]: what stopped the restore, then that the target is
/// gone (never "nothing was changed").
fn target_deleted_text(target: &str, cause: &Error) -> String {
    let gone = format!(
        "{target} had been deleted before the restore to make room for it (the disk cannot \
         hold both), so it does not exist now: restore it again"
    );
    match cause {
        Error::Interrupted => format!("interrupted; temporary files removed. {gone}"),
        other => format!("{other}. {gone} once the cause is fixed"),
    }
}

/// Python's `str(OSError)`: `[Errno 2] No such file or directory: 'path'`.
fn os_error_text(e: &std::io::Error, path: &Path) -> String {
    format!(
        "{}: {}",
        os_error_words(e),
        py_str_repr(&path.to_string_lossy())
    )
}

/// Python's `str(OSError)` without the file name: `[Errno 13] Permission denied`.
pub(crate) fn os_error_words(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let text = e.to_string();
            let strerror = text
                .strip_suffix(&format!(" (os error {code})"))
                .unwrap_or(&text);
            format!("[Errno {code}] {strerror}")
        }
        None => e.to_string(),
    }
}

/// Python's `repr()` of a str, for the common cases (quotes chosen as Python does).
pub fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of bytes: `b'\x1f\x8b'`.
pub fn py_bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::from("b");
    out.push(quote as char);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c as char);
            }
            0x20..=0x7e => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push(quote as char);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_read_like_python() {
        let e = Error::io("/nope/Data.fs", std::io::Error::from_raw_os_error(2));
        assert_eq!(
            e.to_string(),
            "[Errno 2] No such file or directory: '/nope/Data.fs'"
        );
        let e = Error::io("out", std::io::Error::from_raw_os_error(21));
        assert_eq!(e.to_string(), "[Errno 21] Is a directory: 'out'");
    }

    #[test]
    fn messages_match_python() {
        let e = Error::WrongSize {
            path: "r/x.deltafsz".into(),
            found: 3,
            expected: 4,
            when: " (when uncompressed)",
        };
        assert_eq!(
            e.to_string(),
            "r/x.deltafsz is 3 bytes (when uncompressed), should be 4 bytes"
        );
        let e = Error::WrongChecksum {
            path: "r/x.deltafs".into(),
            found: "36486440db255f0ee6ab109d5d231406".into(),
            expected: "f50881ced34c7d9e6bce100bf33dec60".into(),
            when: "",
        };
        assert_eq!(
            e.to_string(),
            "r/x.deltafs has checksum 36486440db255f0ee6ab109d5d231406 instead of f50881ced34c7d9e6bce100bf33dec60"
        );
        assert_eq!(
            Error::NotGzipped(py_bytes_repr(b"XX")).to_string(),
            "Not a gzipped file (b'XX')"
        );
        assert_eq!(py_bytes_repr(b"\x00\xff"), "b'\\x00\\xff'");
    }
}
