//! The one error type of the crate.

use std::path::PathBuf;

/// Why a conversion or an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The source Data.fs could not be read.
    #[error(transparent)]
    Format(#[from] zfs_format::Error),
    /// An output file could not be created or committed.
    #[error(transparent)]
    Files(#[from] zfs_files::Error),
    /// A request to PostgreSQL failed; `what` says which step.
    #[error("{what}")]
    Db {
        /// The step that failed.
        what: String,
        /// PostgreSQL's answer.
        #[source]
        source: postgres::Error,
    },
    /// A file could not be read or written.
    #[error("'{}'", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Rows could not be sent to the server.
    #[error("{what}")]
    Transfer {
        /// What was being sent.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The destination does not hold a RelStorage schema we know.
    #[error("{0}")]
    Schema(String),
    /// The conversion manifest in the destination is unreadable.
    #[error("{0}")]
    Manifest(String),
    /// A copy stream hung up without reporting an error (a bug if ever seen).
    #[error("a copy stream ended without saying why")]
    StreamLost,
    /// The destination holds data that is not an unfinished conversion of this source.
    #[error("{0}")]
    NotEmpty(String),
    /// The source cannot be converted as zodbconvert would (what and where is said).
    #[error("{0}")]
    Unsupported(String),
    /// The database holds something the export cannot write as a FileStorage.
    #[error("{0}")]
    BadData(String),
    /// The interrupt flag was set; what was committed stays and a rerun resumes.
    #[error("interrupted")]
    Interrupted,
}

/// The crate's result type.
pub type Result<T, E = ConvertError> = std::result::Result<T, E>;

impl ConvertError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ConvertError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Attaches the step's description to a PostgreSQL error.
pub(crate) trait DbContext<T> {
    /// Wraps the error with `what`.
    fn db(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> DbContext<T> for std::result::Result<T, postgres::Error> {
    fn db(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| ConvertError::Db {
            what: what(),
            source,
        })
    }
}
