//! The database lock: `<file>.lock` locked exclusively with `flock`, the lock
//! `zc.lockfile` takes for a FileStorage on Linux, so a running ZODB and our pack exclude
//! each other. The lock file is never reached through a symlink (see `zfs_files::Lock`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use zfs_files::{Lock, LockOptions};

use crate::error::{PackError, Result};

/// A held lock; released when dropped (the file stays, as ZODB leaves it).
pub type DbLock = Lock;

/// The lock file of a data file: `<file>.lock`.
pub fn lock_path(data: &Path) -> PathBuf {
    zfs_files::with_suffix(data, ".lock")
}

/// Takes the lock of `data` without waiting; [`PackError::Locked`] if another process
/// holds it. Like zc.lockfile, writes ` <pid>\n` into the file once locked. The data file
/// must exist and be a regular file: no lock file is created for a wrong path.
pub fn acquire(data: &Path) -> Result<DbLock> {
    zfs_files::regular_len(data)?;
    let path = lock_path(data);
    let opts = LockOptions {
        exclusive: true,
        wait: Duration::ZERO,
        mode: 0o666 & !zfs_files::current_umask(),
        private: false,
        holder: Some(format!(" {}\n", std::process::id())),
    };
    Lock::acquire(&path, &opts, &mut |_| {}).map_err(|e| match e {
        zfs_files::Error::Locked { path, holder, .. } => PackError::Locked { path, holder },
        other => other.into(),
    })
}

/// Whether a process holds the lock of `data` (a running ZODB, or a pack), found without
/// changing anything: the lock file is opened read-only (a missing one means no) and a
/// shared lock is tried and released at once.
pub fn is_held(data: &Path) -> Result<bool> {
    Ok(zfs_files::is_held(&lock_path(data))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_is_seen_without_changing_the_lock_file() {
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("Data.fs");
        std::fs::write(&f, b"FS30").expect("write");
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
        std::fs::write(&f, b"FS30").expect("write");
        let l = acquire(&f).expect("first");
        assert!(matches!(acquire(&f), Err(PackError::Locked { .. })));
        drop(l);
        acquire(&f).expect("free again");
        assert!(std::fs::read_to_string(lock_path(&f))
            .expect("lock file")
            .starts_with(' '));
    }

    #[test]
    fn no_lock_file_for_a_wrong_path_and_none_through_a_symlink() {
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("nosuch.fs");
        assert!(acquire(&f).is_err());
        assert!(!lock_path(&f).exists());
        assert!(acquire(d.path()).is_err(), "a directory is no database");
        let f = d.path().join("Data.fs");
        std::fs::write(&f, b"FS30").expect("write");
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"precious").expect("write");
        std::os::unix::fs::symlink(&victim, lock_path(&f)).expect("symlink");
        assert!(acquire(&f).is_err());
        assert_eq!(std::fs::read(&victim).expect("read"), b"precious");
    }
}
