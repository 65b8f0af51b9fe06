//! Backup, incremental backup, restore and verify of ZODB FileStorage files, byte-compatible
//! with Python repozo (ZODB 6.4): the same file names, data bytes, `.index` bytes and `.dat`
//! lines for the same source and clock, so that either tool reads and extends the other's
//! repositories.
//!
//! - [`backup::backup`]: `repozo -B` (full, incremental, quick mode, gzip, `-k`).
//! - [`restore::restore`]: `repozo -R` (as of a date, to a file or a writer, `-w`; an
//!   existing file is brought up to date by appending what it lacks, unless `-F`).
//! - [`verify::verify`]: `repozo -V`.
//!
//! Where it does better than Python, the files left behind stay the same: it reads the
//! source once, hashes while copying (`copy_file_range`), compresses on all cores, and
//! writes every file through `zfs-files` (a private temporary beside it, never through a
//! symlink, fsynced, renamed, the directory fsynced, with the source's mode). It locks the
//! repository with a lock file only the writer can take (and never waits for it forever),
//! removes the temporaries of an interrupted run of ours, orders the renames of a backup so
//! that a killed run leaves nothing a restore would take for a backup, takes back the data
//! file and `.index` of a backup whose `.dat` line cannot be written, never stamps a backup
//! at or before an existing one, refuses to restore a chain without its full backup, never
//! deletes a restore target (or leaves an old `.index` beside a new one) before its
//! replacement is complete unless the disk cannot hold both (then only after reading the
//! whole chain, and saying so), stops cleanly when [`Hooks::interrupt`] is set, and adds
//! the `.dat` line that a killed run did not write (when the data file matches the source).
//! Nothing here prints: messages that Python repozo logs with `-v` go to `Hooks::log` with
//! the same texts.

pub mod backup;
mod chain;
pub mod error;
pub mod gz;
mod incremental;
mod interrupted;
pub mod md5;
pub mod names;
pub mod repo;
pub mod restore;
mod source;
mod target;
pub mod verify;

pub use error::{Error, Result};
pub use names::Stamp;

use std::sync::atomic::{AtomicBool, Ordering};

use zfs_format::Progress;

/// How a run reports what it does.
#[derive(Clone, Copy)]
pub struct Hooks<'a> {
    /// Python repozo's `-v` messages, one line each, same texts.
    pub log: &'a dyn Fn(&str),
    /// Warnings always worth showing (a lock held by another run, a rejected source index).
    pub notice: &'a dyn Fn(&str),
    /// Progress of long phases, in bytes.
    pub progress: &'a dyn Progress,
    /// True when `Hooks::log` is shown: MD5s that only appear in log lines are computed
    /// only then.
    pub verbose: bool,
    /// Once set (by a binary's SIGINT/SIGTERM handler), long work stops at the next chunk
    /// with [`Error::Interrupted`]; temporary files are removed and nothing is renamed.
    pub interrupt: Option<&'a AtomicBool>,
}

impl Hooks<'static> {
    /// Hooks that discard everything.
    pub fn silent() -> Hooks<'static> {
        Hooks {
            log: &|_| {},
            notice: &|_| {},
            progress: &zfs_format::NoProgress,
            verbose: false,
            interrupt: None,
        }
    }
}

impl Hooks<'_> {
    /// Sends one `-v` line.
    pub(crate) fn log(&self, msg: &str) {
        (self.log)(msg)
    }

    /// The progress and interrupt parts, which threads can share.
    pub(crate) fn ticker(&self) -> Ticker<'_> {
        Ticker {
            progress: self.progress,
            interrupt: self.interrupt,
        }
    }

    /// The interrupt part alone, for work running beside a phase that reports progress.
    pub(crate) fn quiet(&self) -> Ticker<'_> {
        Ticker {
            progress: &zfs_format::NoProgress,
            interrupt: self.interrupt,
        }
    }

    /// Reports `n` more bytes done; `Err(Interrupted)` once the interrupt flag is set.
    pub(crate) fn advance(&self, n: u64) -> Result<()> {
        self.ticker().advance(n)
    }
}

/// Progress reporting and the interrupt check of a run, for long loops on any thread.
#[derive(Clone, Copy)]
pub(crate) struct Ticker<'a> {
    progress: &'a dyn Progress,
    interrupt: Option<&'a AtomicBool>,
}

impl Ticker<'_> {
    /// `Err(Interrupted)` once the interrupt flag is set.
    pub(crate) fn check(&self) -> Result<()> {
        match self.interrupt {
            Some(f) if f.load(Ordering::Relaxed) => Err(Error::Interrupted),
            _ => Ok(()),
        }
    }

    /// True once the interrupt flag is set.
    pub(crate) fn interrupted(&self) -> bool {
        self.check().is_err()
    }

    /// Reports `n` more bytes done, then [`Ticker::check`]s.
    pub(crate) fn advance(&self, n: u64) -> Result<()> {
        self.progress.advance(n);
        self.check()
    }
}

/// Seconds a data file may be stamped after the current time and still count as "now"
/// (stamps are moved forward when backups follow each other within one second).
pub const FUTURE_SLACK_SECS: i64 = 60;

/// The `when` of a run without `-D`: the current stamp, or the newest data file's stamp
/// when that is at most [`FUTURE_SLACK_SECS`] ahead (made by a run in the same second).
pub fn current_when(repository: &str, now: Stamp) -> Result<String> {
    let newest = repo::newest_stamp(repository)?;
    Ok(match newest {
        Some(n) if n > now && n.secs - now.secs <= FUTURE_SLACK_SECS => n.format(),
        _ => now.format(),
    })
}
