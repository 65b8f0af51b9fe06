//! `repozo -B`: decide between nothing, an incremental and a full backup, then write the
//! data file, its `.index` and the `.dat` line exactly as Python repozo does.
//!
//! `decide.rs` compares the source with the chain into one `Decision`; `write.rs` writes
//! the data file and `.index` as temporaries and puts them (and the `.dat` line) in place.

mod decide;
#[cfg(test)]
mod tests;
mod write;

use std::fs::File;
use std::path::Path;

use zfs_format::FileStorage;

use crate::error::{Error, Result};
use crate::interrupted;
use crate::names::{Kind, Stamp};
use crate::repo::{self, ChainFile, DatLine, Repository};
use crate::source::SourceView;
use crate::Hooks;

use decide::Decision;
use write::write_backup;

/// What `repozo -B` was asked to do.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    /// The repository directory, as given (it prefixes every recorded path).
    pub repository: String,
    /// The source Data.fs, as given.
    pub file: String,
    /// `-F`: always a full backup.
    pub full: bool,
    /// `-Q`: decide from the last `.dat` line only.
    pub quick: bool,
    /// `-z`: gzip the new data file.
    pub gzip: bool,
    /// Compression level for `-z`.
    pub gzip_level: u32,
    /// `-k`: after a full backup, delete older backups.
    pub kill_old: bool,
    /// The clock; `None` reads the system clock.
    pub now: Option<Stamp>,
    /// How long to wait for another run's lock on the repository before failing.
    pub lock_wait: std::time::Duration,
}

impl BackupOptions {
    /// Options for a plain backup of `file` into `repository`.
    pub fn new(repository: impl Into<String>, file: impl Into<String>) -> Self {
        BackupOptions {
            repository: repository.into(),
            file: file.into(),
            full: false,
            quick: false,
            gzip: false,
            gzip_level: crate::gz::DEFAULT_LEVEL,
            kill_old: false,
            now: None,
            lock_wait: repo::DEFAULT_LOCK_WAIT,
        }
    }
}

/// What a backup run did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "kebab-case")
)]
pub enum Action {
    /// The repository already holds the source: nothing written.
    #[cfg_attr(feature = "serde", serde(rename = "nothing"))]
    NothingToDo,
    /// A full backup was written.
    Full,
    /// An incremental backup was written.
    Incremental,
}

/// The result of a backup run.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BackupReport {
    /// What was done.
    pub action: Action,
    /// Why a full backup was made (repozo's log text), if one was.
    pub reason: Option<String>,
    /// The new data file's path as recorded in the `.dat`.
    #[cfg_attr(feature = "serde", serde(rename = "file"))]
    pub data_file: Option<String>,
    /// The `.dat` line written (in JSON: its `start`, `end` and `md5` beside the others).
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub dat_line: Option<DatLine>,
    /// Size of the source file when the run started.
    pub source_size: u64,
    /// Bytes of the new data file on disk (compressed size for `-z`).
    pub written: u64,
    /// Data files removed by `-k`.
    pub removed: Vec<String>,
    /// Committed-looking data the backup could not include: the source is damaged where
    /// its readable data ends, and complete transactions follow the damage.
    pub left_out: Option<LeftOut>,
}

/// Bytes of the source after damage in its middle, which a backup (like Python repozo's)
/// does not hold: only what FileStorage reads up to the damage is copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LeftOut {
    /// Where the readable data ends (the end of the backed-up range).
    pub at: u64,
    /// Where the first complete transaction after the damage starts.
    pub next_transaction: u64,
    /// Bytes from `at` to the end of the source.
    pub bytes: u64,
}

/// The source, opened once: its mapping, a file handle on the same inode, its mode.
struct Source {
    fs: FileStorage,
    file: File,
    path: String,
    /// Its permission bits: every file of the backup gets them (a copy of a database is
    /// never more open than the database).
    mode: u32,
}

impl Source {
    fn open(path: &str) -> Result<Source> {
        // Regular files only, opened without blocking (a FIFO cannot hang the run). The
        // mapping and the handle share one open file, so they are the same file even if
        // a pack replaces it meanwhile.
        let file = zfs_files::open_input(Path::new(path))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        let mapped = file.try_clone().map_err(|e| Error::io(path, e))?;
        let fs = FileStorage::open_file(mapped, Path::new(path))
            .map_err(|e| Error::source_format(path, e))?;
        Ok(Source {
            fs,
            file,
            path: path.to_string(),
            mode: zfs_files::permissions_of(&meta),
        })
    }
    fn len(&self) -> u64 {
        self.fs.len()
    }
    fn view(&self, safe_end: u64) -> SourceView<'_> {
        SourceView {
            map: self.fs.bytes(),
            file: &self.file,
            path: &self.path,
            safe_end,
        }
    }
}

/// Runs a backup.
pub fn backup(opts: &BackupOptions, hooks: &Hooks<'_>) -> Result<BackupReport> {
    let repository = Repository::new(opts.repository.as_str());
    let _lock = repository.lock(true, opts.lock_wait, &mut |holder| {
        (hooks.notice)(&format!(
            "the repository {} is locked by {holder}; waiting up to {} s for it to finish",
            opts.repository,
            opts.lock_wait.as_secs()
        ))
    })?;
    let mut left = repository.remove_stale_temps();
    left.extend(repository.remove_orphans()?);
    for name in left {
        (hooks.notice)(&format!(
            "removed {name}, left in {} by an interrupted run",
            opts.repository
        ));
    }
    let now = opts.now.unwrap_or_else(Stamp::now);
    let when = repository.current_when(now)?;
    hooks.log(&format!(
        "looking for files between last full backup and {when}..."
    ));
    let chain = repository.find_files(&when)?;
    log_chain(hooks, &when, &chain);
    let src = Source::open(&opts.file)?;
    let srcsz = src.len();
    // Only a decision reads the source before the copy (which finds its own end from the
    // index), so a full backup skips the walk over every transaction header that finds the
    // end of the committed data (mapped bytes below it are never truncated under us).
    let decide = !opts.full && !chain.is_empty();
    let committed = if decide {
        src.fs.end().map(|e| e.pos).unwrap_or(0)
    } else {
        0
    };

    let unmatched = if decide {
        interrupted::complete_dat(hooks, &chain, &src.view(committed), srcsz, src.mode)?
    } else {
        None
    };
    let inputs = decide::Inputs {
        chain: &chain,
        src: &src,
        srcsz,
        committed,
    };
    let decision = if !decide {
        hooks.log("doing a full backup");
        Decision::Full { reason: None }
    } else if let Some(path) = unmatched {
        decide::full_because(
            hooks,
            &format!("{path} is not listed in the .dat (full backup)"),
        )
    } else if opts.quick {
        decide::quick(hooks, &inputs)?
    } else {
        decide::by_md5(hooks, &inputs)?
    };
    let mut report = BackupReport {
        action: Action::NothingToDo,
        reason: decision.reason().map(str::to_string),
        data_file: None,
        dat_line: None,
        source_size: srcsz,
        written: 0,
        removed: Vec::new(),
        left_out: None,
    };
    // Whatever was decided from the source's bytes is void if it shrank under us.
    src.fs
        .check_intact()
        .map_err(|e| Error::source_format(&src.path, e))?;
    let start = match decision {
        Decision::NothingToDo => {
            hooks.log("No changes, nothing to do");
            return Ok(report);
        }
        Decision::Incremental { start } => {
            hooks.log(&format!("doing incremental, starting at: {start}"));
            Some(start)
        }
        Decision::Full { .. } => None,
    };
    // Strictly after every data file (two runs in one second would otherwise collide, or
    // sort a full backup after an incremental of the same second), unless the newest file
    // is far in the future (a clock moved back): then it is invisible anyway, as in Python.
    let mut stamp = match repository.newest_stamp()? {
        Some(n) if n >= now && n.secs - now.secs <= crate::FUTURE_SLACK_SECS => n.next(),
        _ => now,
    };
    // A name of that second held by another user's file (no backup of ours, see
    // `Repository::data_files`) is passed by: the backup takes the next free second.
    let trusted = repository.trusted();
    for _ in 0..crate::FUTURE_SLACK_SECS {
        let root = stamp.format();
        let strangers = [".fs", ".fsz", ".deltafs", ".deltafsz", ".index", ".dat"]
            .iter()
            .map(|ext| repository.path(&format!("{root}{ext}")))
            .any(|p| std::fs::symlink_metadata(&p).is_ok() && !trusted.owns(&p));
        if !strangers {
            break;
        }
        stamp = stamp.next();
    }
    let kind = Kind::of(start.is_none(), opts.gzip);
    let name = format!("{}{}", stamp.format(), kind.ext());
    let dest = repository.path(&name);
    if std::fs::symlink_metadata(&dest).is_ok() {
        return Err(Error::WouldOverwrite(dest));
    }
    if src.fs.is_empty() {
        return Err(Error::EmptySource(src.path.clone()));
    }
    let index_path = repository.path(&format!("{}.index", stamp.format()));
    let pending = write_backup(opts, hooks, &src, start.unwrap_or(0), &dest, &index_path)?;
    // Nothing read from the source may be put in place if it shrank while it was read
    // (the temporaries are removed when `pending` is dropped).
    src.fs
        .check_intact()
        .map_err(|e| Error::source_format(&src.path, e))?;
    let line = DatLine {
        path: dest.clone(),
        start: start.unwrap_or(0),
        end: pending.pos,
        md5: pending.md5.clone(),
    };
    let written = pending.written;
    let left_out = pending.left_out;
    if let Some(l) = left_out {
        (hooks.notice)(&format!(
            "{}: the data readable from the start ends at byte {}, but a complete transaction \
             starts at byte {}: the file is damaged there, and this backup (like Python \
             repozo's) holds none of the {} bytes from byte {} on; run `zodbfs check` on it",
            src.path, l.at, l.next_transaction, l.bytes, l.at
        ));
    }
    match start {
        None => {
            let dat = repository.path(&format!("{}.dat", stamp.format()));
            report.action = Action::Full;
            pending.commit_full(&dat, &line, src.mode)?;
        }
        Some(_) => {
            let dat = repo::dat_path_of(&chain[0]);
            report.action = Action::Incremental;
            pending.commit_incremental(&dat, &line, src.mode)?;
        }
    }
    report.data_file = Some(dest);
    report.dat_line = Some(line);
    report.written = written;
    report.left_out = left_out;
    if start.is_none() && opts.kill_old {
        report.removed = repository.kill_old(&|m| hooks.log(m))?;
    }
    Ok(report)
}

/// Logs the chain found, as repozo's `find_files` does.
pub(crate) fn log_chain(hooks: &Hooks<'_>, when: &str, chain: &[ChainFile]) {
    if chain.is_empty() {
        hooks.log("no files found");
        return;
    }
    hooks.log(&format!("files needed to recover state as of {when}:"));
    for c in chain {
        hooks.log(&format!("\t{}", c.path));
    }
}
