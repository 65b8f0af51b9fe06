//! The errors of whole-site backups.

use std::path::PathBuf;

/// A `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What stopped a site backup, restore, verify, list or prune.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system call failed on `path`.
    #[error("{op} '{}'", path.display())]
    Io {
        /// What we were doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Creating, replacing or locking a file failed.
    #[error(transparent)]
    Files(#[from] zfs_files::Error),
    /// The Data.fs half: repozo's error, with its own text.
    #[error("{0}")]
    Repozo(zfs_repozo::Error),
    /// The Data.fs (or a restored copy of it) could not be read.
    #[error("'{}'", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        #[source]
        source: zfs_format::Error,
    },
    /// The blob directory to back up is not a directory.
    #[error("'{}' is not a blob directory (no such directory)", path.display())]
    NotBlobDir {
        /// The path given.
        path: PathBuf,
    },
    /// No Data.fs backup makes the state asked for.
    #[error("no Data.fs backup in '{repository}'{}", date.as_ref().map(|d| format!(" at or before {d}")).unwrap_or_default())]
    NoDataFsBackup {
        /// The repository.
        repository: String,
        /// The date asked for.
        date: Option<String>,
    },
    /// No blob backup goes with the Data.fs state: restoring would give a site whose
    /// Data.fs names blobs that are not there.
    #[error("no blob backup in '{}' at or before {stamp} (the Data.fs state to restore); refusing to restore half a site", dir.display())]
    NoBlobBackup {
        /// The blob backup directory.
        dir: PathBuf,
        /// The stamp of the Data.fs state.
        stamp: String,
    },
    /// A blob backup holds no blob directory to restore.
    #[error("blob backup '{}' holds no directory named '{name}' (nor a single directory)", tree.display())]
    NoBlobDirInBackup {
        /// The blob backup.
        tree: PathBuf,
        /// The name looked for.
        name: String,
    },
    /// Blob backups of several blob directories share one backup directory.
    #[error("'{}' holds blob backups of several blob directories ({names}); name the one to use with a blob directory of that name", dir.display())]
    MixedBlobBackups {
        /// The blob backup directory.
        dir: PathBuf,
        /// The prefixes found.
        names: String,
    },
    /// The database is open (its lock file is held): restoring under a running site would
    /// be undone or corrupted by it.
    #[error("'{}' is held: the database is open; stop the site before restoring", path.display())]
    DatabaseOpen {
        /// The lock file.
        path: PathBuf,
    },
    /// A tree's manifest is damaged.
    #[error("'{}': line {line} is not a manifest line", path.display())]
    BadManifest {
        /// The manifest.
        path: PathBuf,
        /// The first bad line (1-based).
        line: usize,
    },
    /// The arguments make no sense together.
    #[error("{0}")]
    Usage(String),
    /// Stopped by the interrupt flag; temporaries removed, nothing switched.
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    /// An I/O error on `path` while doing `op`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// True when the run was interrupted.
    pub fn is_interrupted(&self) -> bool {
        matches!(
            self,
            Error::Interrupted | Error::Repozo(zfs_repozo::Error::Interrupted)
        )
    }
}

impl From<zfs_repozo::Error> for Error {
    fn from(e: zfs_repozo::Error) -> Self {
        match e {
            zfs_repozo::Error::Interrupted => Error::Interrupted,
            e => Error::Repozo(e),
        }
    }
}
