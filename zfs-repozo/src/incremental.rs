//! Incremental restore: bringing an existing restore target up to a state by appending only
//! what it lacks.
//!
//! A restored Data.fs is a prefix of every later state of its chain, so the backups after
//! its end are all it lacks. The rules are those proposed for Python repozo (ZODB's
//! `repozo-incremental-recover` branch), so that a Python repozo with that change and ours
//! treat a target alike: the target's real size is taken; every chain file that lies
//! wholly inside it is checked against the target by MD5 (with `-Q`, only the last one);
//! a mismatch, a target shorter than the full backup or longer than the state means a full
//! restore; equal sizes mean nothing to write. Ours adds: a target whose bytes after the
//! last backup inside it are not the next backup's bytes (written to since it was
//! restored) is rebuilt, never extended; a target with other hard links, a symlink, or one
//! we may not write in place is rebuilt too; and the result is byte-identical to a full
//! restore whenever the checked ranges hold.
//!
//! Nothing is lost on the way: the target is appended to in place (a full copy would cost
//! what the increment saves) under its `.lock`, its old size is kept, and any failure or
//! interruption cuts it back to that size before returning. A process killed while
//! appending leaves the old bytes followed by a prefix of the missing ones (the target is
//! then a prefix of the new state, never shorter than before), and the next run checks
//! that tail against the chain and completes it. The old `.index` is removed before the
//! first byte is appended (an index always describes exactly the file beside it, or there
//! is none); the target is fsynced before the new one is put beside it and the run reports
//! success.

use std::fs::File;
use std::os::unix::fs::{FileExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;

use crate::chain::Expected;
use crate::error::{Error, Result};
use crate::md5::Md5;
use crate::repo::ChainFile;
use crate::source::{read_uncompressed, CHUNK};
use crate::target::Target;
use crate::Hooks;

/// What an incremental restore will do with an existing target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// The target holds the state already.
    UpToDate,
    /// Write chain files `first..` at offset `at` (the end of the last file the target
    /// holds whole; bytes of the next file it holds already were found equal to them).
    Append { first: usize, at: u64 },
    /// Restore in full, for this reason.
    Full(String),
}

/// The target opened for an in-place append.
pub(crate) struct Existing {
    pub file: File,
    /// Its size when opened: what a failure cuts it back to.
    pub len: u64,
}

/// Opens the existing target for reading and writing in place, or says why it must be
/// rebuilt instead.
pub(crate) fn open_existing(target: &Target) -> Result<std::result::Result<Existing, String>> {
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(&target.path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Ok(Err(format!(
                "{} is a symlink: it is replaced by the restored file, not appended to",
                target.name
            )))
        }
        Err(e) => {
            return Ok(Err(format!(
                "{} cannot be written in place ({}): it is replaced by a new file",
                target.name,
                crate::error::os_error_words(&e)
            )))
        }
    };
    let meta = file.metadata().map_err(|e| Error::io(&target.path, e))?;
    if !meta.is_file() {
        return Ok(Err(format!("{} is not a regular file", target.name)));
    }
    if meta.nlink() > 1 {
        return Ok(Err(format!(
            "{} has {} hard links: appending in place would change the other names too",
            target.name,
            meta.nlink()
        )));
    }
    Ok(Ok(Existing {
        len: meta.len(),
        file,
    }))
}

/// Where each chain file lies in the restored file: `(start, end, md5)` (no MD5 for a file
/// the `.dat` does not list).
fn ranges(chain: &[ChainFile], expected: &Expected) -> Vec<(u64, u64, Option<String>)> {
    let mut at = 0u64;
    chain
        .iter()
        .map(|c| {
            let want = expected
                .get(&c.path)
                .cloned()
                .expect("every file of the chain was checked");
            let r = (at, at + want.size, want.md5);
            at += want.size;
            r
        })
        .collect()
}

/// Decides what to do with `existing` (see the module docs), reading at most the target
/// once (its MD5s) and the first bytes of one chain file. The `-v` texts of the fallbacks
/// are the ones proposed for Python repozo.
pub(crate) fn plan(
    quick: bool,
    hooks: &Hooks<'_>,
    chain: &[ChainFile],
    expected: &Expected,
    existing: &Existing,
    name: &str,
) -> Result<Plan> {
    let ranges = ranges(chain, expected);
    let len = existing.len;
    let state_end = ranges.last().map_or(0, |r| r.1);
    // The chain files the target holds whole.
    let inside = ranges.iter().take_while(|r| r.1 <= len).count();
    if inside == 0 {
        return Ok(Plan::Full(
            "Target file smaller than full backup, falling back to a full recover.".into(),
        ));
    }
    if len > state_end {
        return Ok(Plan::Full(
            "Target file is larger than latest backup, falling back to a full recover.".into(),
        ));
    }
    let checked = if quick { inside - 1..inside } else { 0..inside };
    let total: u64 = ranges[checked.clone()].iter().map(|r| r.1 - r.0).sum();
    hooks.progress.start("checking", total);
    let ticker = hooks.ticker();
    // Hashed from a mapping (no copy through a buffer); the file is ours while the
    // target's lock is held, and a shrink would be reported, not crash.
    let file = existing.file.try_clone().map_err(|e| Error::io(name, e))?;
    let map = zfs_files::Map::new(file, Path::new(name))?;
    if (map.len() as u64) < len {
        return Err(Error::io(
            name,
            std::io::Error::other("the file became shorter while it was opened"),
        ));
    }
    for i in checked {
        let (start, end, md5) = &ranges[i];
        let Some(md5) = md5 else {
            return Ok(Plan::Full(format!(
                "{} is not listed in the .dat, so the target cannot be checked against it, \
                 falling back to a full recover.",
                chain[i].path
            )));
        };
        let found = hash_range(&map, *start, *end, &ticker)?;
        map.check_intact()?;
        if found != *md5 {
            return Ok(Plan::Full(format!(
                "Target file is not consistent with backup {}, falling back to a full recover.",
                chain[i].path
            )));
        }
    }
    let at = ranges[inside - 1].1;
    if len == state_end {
        return Ok(Plan::UpToDate);
    }
    if len > at && !tail_matches(&existing.file, &chain[inside], at, len, name)? {
        return Ok(Plan::Full(format!(
            "Target file was written to since it was restored (its bytes from {at} on are not \
             those of backup {}), falling back to a full recover.",
            chain[inside].path
        )));
    }
    Ok(Plan::Append { first: inside, at })
}

/// MD5 of the mapped target's bytes `[start, end)` (within its length, which the caller
/// checked).
fn hash_range(
    map: &zfs_files::Map,
    start: u64,
    end: u64,
    ticker: &crate::Ticker<'_>,
) -> Result<String> {
    let bytes = &map[start as usize..end as usize];
    let mut h = Md5::new();
    for c in bytes.chunks(CHUNK) {
        h.update(c);
        ticker.advance(c.len() as u64)?;
    }
    map.release(start, end);
    Ok(h.hex())
}

/// Whether the target's bytes `[at, len)` are the first bytes of chain file `next` (which
/// starts at `at`): the tail a killed restore of ours leaves, not one written by a database.
fn tail_matches(file: &File, next: &ChainFile, at: u64, len: u64, name: &str) -> Result<bool> {
    let want = len - at;
    let mut seen = 0u64;
    let mut same = true;
    let mut buf = Vec::new();
    let read = read_uncompressed(&next.path, next.kind.is_gzip(), &mut |b| {
        let take = usize::try_from(want - seen)
            .unwrap_or(usize::MAX)
            .min(b.len());
        buf.resize(take, 0);
        file.read_exact_at(&mut buf, at + seen)
            .map_err(|e| Error::io(name, e))?;
        same = buf[..] == b[..take];
        seen += take as u64;
        if !same || seen == want {
            // Decided: stop reading (this error is never shown).
            return Err(Error::Interrupted);
        }
        Ok(())
    });
    match read {
        Ok(()) => Ok(same && seen == want),
        Err(Error::Interrupted) if seen == want || !same => Ok(same),
        Err(e) => Err(e),
    }
}

/// Cuts the target back to its size before the run and makes that durable; what a failed
/// append leaves is then the old file.
pub(crate) fn cut_back(existing: &Existing, name: &str) -> Result<()> {
    existing
        .file
        .set_len(existing.len)
        .and_then(|()| existing.file.sync_all())
        .map_err(|e| Error::io(name, e))
}

/// Checks the repository's `.index` for the state against the restored file (ZODB's
/// sanity check, and its position at the file's end) before it goes beside it.
pub(crate) fn index_fits(target: &Path, index: &[u8]) -> bool {
    let Ok((pos, ix)) = zfs_format::index_file::load_index(index) else {
        return false;
    };
    let Ok(fs) = zfs_format::FileStorage::open(target) else {
        return false;
    };
    pos == fs.len()
        && zfs_format::index_file::check_sanity(&fs, &ix, pos).is_some()
        && fs.check_intact().is_ok()
}
