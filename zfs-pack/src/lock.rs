//! The database lock: `<file>.lock` locked exclusively with `flock`, the lock
//! `zc.lockfile` takes for a FileStorage on Linux, so a running ZODB and our pack exclude
//! each other.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::{PackError, Result};

/// A held lock; released when dropped (the file stays, as ZODB leaves it).
#[derive(Debug)]
pub struct DbLock {
    file: File,
    path: PathBuf,
}

impl DbLock {
    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The lock file of a data file: `<file>.lock`.
pub fn lock_path(data: &Path) -> PathBuf {
    let mut s = data.as_os_str().to_os_string();
    s.push(".lock");
    PathBuf::from(s)
}

/// Takes the lock of `data` without waiting; [`PackError::Locked`] if another process
/// holds it. Like zc.lockfile, writes ` <pid>\n` into the file once locked.
pub fn acquire(data: &Path) -> Result<DbLock> {
    let path = lock_path(data);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| PackError::io(&path, e))?;
    if !try_flock(&file, &path, libc::LOCK_EX)? {
        return Err(PackError::Locked(path));
    }
    let mut lock = DbLock { file, path };
    let pid = format!(" {}\n", std::process::id());
    let w = (|| {
        lock.file.seek(SeekFrom::Start(0))?;
        lock.file.write_all(pid.as_bytes())?;
        lock.file.set_len(pid.len() as u64)
    })();
    w.map_err(|e| PackError::io(&lock.path, e))?;
    Ok(lock)
}

/// Whether a process holds the lock of `data` (a running ZODB, or a pack), found without
/// changing anything: the lock file is opened read-only (a missing one means no) and a
/// shared lock is tried and released at once.
pub fn is_held(data: &Path) -> Result<bool> {
    let path = lock_path(data);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(PackError::io(&path, e)),
    };
    // Closing the file releases the shared lock if it was taken.
    Ok(!try_flock(&file, &path, libc::LOCK_SH)?)
}

/// `flock(op | LOCK_NB)` on `file` (at `path`, for messages): `Ok(false)` when another
/// process holds a lock that excludes it.
fn try_flock(file: &File, path: &Path, op: libc::c_int) -> Result<bool> {
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        _ => Err(PackError::io(path, err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_is_seen_without_changing_the_lock_file() {
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("Data.fs");
        assert!(!is_held(&f).expect("no lock file"));
        assert!(!lock_path(&f).exists(), "is_held creates nothing");
        let l = acquire(&f).expect("lock");
        let content = std::fs::read(lock_path(&f)).expect("read");
        assert!(is_held(&f).expect("held"));
        assert_eq!(std::fs::read(lock_path(&f)).expect("read"), content);
        drop(l);
        assert!(!is_held(&f).expect("released"));
        // The probe itself holds nothing afterwards.
        acquire(&f).expect("free");
    }

    #[test]
    fn second_lock_is_refused() {
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("Data.fs");
        let l = acquire(&f).expect("first");
        assert!(matches!(acquire(&f), Err(PackError::Locked(_))));
        drop(l);
        acquire(&f).expect("free again");
        assert!(std::fs::read_to_string(lock_path(&f))
            .expect("lock file")
            .starts_with(' '));
    }
}
