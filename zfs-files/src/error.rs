//! The errors of file handling; each names the file, and the OS error is its source.

use std::io;
use std::path::PathBuf;

/// A `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong with a file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system call failed on `path`.
    #[error("{op} '{}'", path.display())]
    Io {
        /// What we were doing ("creating", "writing", "renaming to", ...).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The output is one of the inputs (the same path, a hard link or a symlink to it).
    #[error(
        "'{}' is the input file '{}' (the same file under another name or through a link); \
         choose another output",
        output.display(),
        input.display()
    )]
    SameFile {
        /// The output path as given.
        output: PathBuf,
        /// The input it resolves to.
        input: PathBuf,
    },
    /// The target exists and replacing it was not allowed.
    #[error("'{}' exists", path.display())]
    Exists {
        /// The target.
        path: PathBuf,
    },
    /// The path names something other than a regular file (or, for an output, than a
    /// regular file or a symlink we may replace).
    #[error("'{}' is {kind}, not a regular file", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// "a directory", "a FIFO", "a character device", ...
        kind: &'static str,
    },
    /// Another process holds the lock; `holder` is what the lock file says about it.
    #[error("'{}' is locked by {}{}", path.display(), holder.as_deref().unwrap_or("another process"),
        if waited.is_zero() { String::new() } else { format!(" (waited {} s)", waited.as_secs()) })]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as recorded in the file.
        holder: Option<String>,
        /// How long we waited.
        waited: std::time::Duration,
    },
    /// The lock file belongs to another user, who could block us with it.
    #[error("lock file '{}' belongs to uid {owner}, not to us (uid {us}); remove it or run as its owner", path.display())]
    ForeignLock {
        /// The lock file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our uid.
        us: u32,
    },
    /// The mapped file became shorter while it was read.
    #[error("'{}' shrank while it was read (it was {len} bytes when opened, now {now}); nothing was written from it", path.display())]
    Shrunk {
        /// The file.
        path: PathBuf,
        /// Its length when mapped.
        len: u64,
        /// Its length now (0 if it cannot be read).
        now: u64,
    },
}

impl Error {
    /// An I/O error while doing `op` on `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// The OS error, if this is one.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The file this error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Error::Io { path, .. }
            | Error::Exists { path }
            | Error::NotRegular { path, .. }
            | Error::Locked { path, .. }
            | Error::ForeignLock { path, .. }
            | Error::Shrunk { path, .. } => path,
            Error::SameFile { output, .. } => output,
        }
    }

    /// The error as an `io::Error` (kind kept), for callers whose errors carry one.
    pub fn into_io(self) -> io::Error {
        match self {
            Error::Io { source, .. } => source,
            Error::Exists { .. } => io::Error::new(io::ErrorKind::AlreadyExists, self.to_string()),
            Error::NotRegular {
                kind: "a directory",
                ..
            } => io::Error::new(io::ErrorKind::IsADirectory, self.to_string()),
            Error::Locked { .. } => io::Error::new(io::ErrorKind::WouldBlock, self.to_string()),
            Error::ForeignLock { .. } => {
                io::Error::new(io::ErrorKind::PermissionDenied, self.to_string())
            }
            other => io::Error::new(io::ErrorKind::InvalidInput, other.to_string()),
        }
    }
}
