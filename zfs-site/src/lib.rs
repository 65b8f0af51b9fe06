//! Whole-site backups: a ZODB FileStorage (`Data.fs`) and its blob directory, backed up,
//! listed, verified, pruned and restored together, in the layout Plone's backup tools
//! (collective.backup, collective.recipe.backup) already use, so a site can switch tools
//! either way and keep its history:
//!
//! - the Data.fs half is a repozo repository written by [`zfs_repozo`] (full, incremental,
//!   quick, gzip), unchanged;
//! - the blob half is one tree per backup, `<blob_backups>/NAME.<stamp>/NAME/...` (`NAME`
//!   the blob directory's name, `<stamp>` the newest repozo file's), taken after the Data.fs
//!   copy so every blob a backed-up record names is in it; committed blob files (named by
//!   oid and tid, never changed) are hard links to the previous tree, the rest are copied
//!   (reflinked where the file system can); `latest` points at the newest tree.
//!
//! The modules: [`backup`], [`restore`] (and its drill), [`verify`], [`list`], [`prune`];
//! [`consistency`] checks a blob directory against the blob records of its Data.fs
//! ([`records`]); [`tree`] walks and mirrors directory trees; [`manifest`] and [`checked`]
//! are what a tree we write carries beside its copy; [`names`] the names of it all.
//!
//! Nothing here prints: progress and interruption come through the [`Hooks`] of
//! [`zfs_repozo`], messages are returned in the reports.

pub mod backup;
pub mod checked;
pub mod consistency;
mod error;
pub mod list;
pub mod manifest;
pub mod names;
pub mod prune;
pub mod records;
pub mod restore;
pub mod tree;
pub mod verify;

pub use error::{Error, Result};
pub use zfs_repozo::Hooks;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use zfs_format::Progress;

/// Progress and the interrupt flag of a run, shared by the threads of long loops.
#[derive(Clone, Copy)]
pub struct Stop<'a> {
    progress: &'a dyn Progress,
    interrupt: Option<&'a AtomicBool>,
}

impl<'a> Stop<'a> {
    /// The progress and interrupt parts of `hooks`.
    pub fn of(hooks: &Hooks<'a>) -> Stop<'a> {
        Stop {
            progress: hooks.progress,
            interrupt: hooks.interrupt,
        }
    }

    /// Reports `n` more units done.
    pub fn advance(&self, n: u64) {
        self.progress.advance(n);
    }

    /// Starts a phase counted in `unit`s.
    pub fn start(&self, phase: &str, total: u64, unit: &'static str) {
        self.progress.start_counting(phase, total, unit);
    }

    /// Starts a phase counted in bytes.
    pub fn start_bytes(&self, phase: &str, total: u64) {
        self.progress.start(phase, total);
    }

    /// `Err(Interrupted)` once the interrupt flag is set.
    pub fn check(&self) -> Result<()> {
        match self.interrupt {
            Some(f) if f.load(Ordering::Relaxed) => Err(Error::Interrupted),
            _ => Ok(()),
        }
    }
}

impl Stop<'static> {
    /// No progress, never interrupted.
    pub fn none() -> Stop<'static> {
        Stop {
            progress: &zfs_format::NoProgress,
            interrupt: None,
        }
    }
}

/// An `flock` on a directory (no file added to it), released when dropped.
pub struct DirLock {
    _dir: std::fs::File,
}

/// Locks the directory `dir`: exclusive for work that changes it (backup, prune), shared
/// for readers (restore, verify, list). When another run holds it, `hooks.notice` says so
/// and the call waits.
pub fn lock_dir(dir: &Path, exclusive: bool, hooks: &Hooks<'_>) -> Result<DirLock> {
    use rustix::fs::{flock, FlockOperation};
    let f = std::fs::File::open(dir).map_err(|e| Error::io("opening", dir, e))?;
    let (try_op, op) = if exclusive {
        (
            FlockOperation::NonBlockingLockExclusive,
            FlockOperation::LockExclusive,
        )
    } else {
        (
            FlockOperation::NonBlockingLockShared,
            FlockOperation::LockShared,
        )
    };
    match flock(&f, try_op) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            (hooks.notice)(&format!(
                "another run works in '{}'; waiting for it to finish",
                dir.display()
            ));
            flock(&f, op).map_err(|e| Error::io("locking", dir, e.into()))?;
        }
        // File systems without flock: go on unlocked.
        Err(_) => {}
    }
    Ok(DirLock { _dir: f })
}
