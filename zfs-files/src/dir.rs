//! New directory trees and symlinks: built privately beside their target, then renamed.
//!
//! A [`NewDir`] is the directory counterpart of [`Output`](crate::Output): a new directory
//! `.NAME.tmp-PID-N` beside the target, mode 0700 and `flock`-ed while it is filled, so
//! nothing in it is visible under the target's name or to other users until
//! [`NewDir::commit`] makes the whole tree durable (`syncfs` of its file system: one call
//! instead of an fsync per file and directory), gives it its final mode and renames it into
//! place without replacing anything. Dropped before that, it is removed with its contents;
//! left by a run that died, it is removed by the next [`NewDir::create`] for the same
//! target ([`remove_stale_temp_dirs`]).

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::paths::{parent_dir, sync_dir};
use crate::temp::{is_temp_of, temp_name};

/// A directory being filled; invisible at its target until [`NewDir::commit`].
#[derive(Debug)]
pub struct NewDir {
    tmp: PathBuf,
    target: PathBuf,
    handle: Option<File>,
}

impl NewDir {
    /// Removes what dead runs left for `target`, then creates a new private directory beside
    /// it. Fails with [`Error::Exists`] when something is at `target` already.
    pub fn create(target: impl Into<PathBuf>) -> Result<NewDir> {
        let target = target.into();
        if std::fs::symlink_metadata(&target).is_ok() {
            return Err(Error::Exists { path: target });
        }
        NewDir::create_beside(target)
    }

    fn create_beside(target: PathBuf) -> Result<NewDir> {
        let dir = parent_dir(&target);
        let name = target
            .file_name()
            .ok_or_else(|| Error::NotRegular {
                path: target.clone(),
                kind: "not a name",
            })?
            .to_os_string();
        remove_stale_temp_dirs(&dir, &name);
        loop {
            let tmp = dir.join(temp_name(&name));
            match std::fs::DirBuilder::new().mode(0o700).create(&tmp) {
                Ok(()) => {
                    let handle = File::open(&tmp).map_err(|e| Error::io("opening", &tmp, e))?;
                    // Marks the directory as being filled: a later run leaves it alone.
                    let _ = handle.try_lock();
                    return Ok(NewDir {
                        tmp,
                        target,
                        handle: Some(handle),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("creating a temporary directory for", &target, e)),
            }
        }
    }

    /// Like [`NewDir::create`], for a target that may exist: [`NewDir::commit_exchange`]
    /// then swaps the two.
    pub fn create_replacing(target: impl Into<PathBuf>) -> Result<NewDir> {
        NewDir::create_beside(target.into())
    }

    /// The temporary directory to fill.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// The final name.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Makes everything under the directory durable, gives it `mode` and renames it to its
    /// target (refusing if something appeared there), then syncs the parent directory.
    pub fn commit(mut self, mode: u32) -> Result<()> {
        let handle = self
            .handle
            .as_ref()
            .expect("a NewDir holds its handle until commit");
        syncfs(handle).map_err(|e| Error::io("syncing", &self.tmp, e))?;
        std::fs::set_permissions(&self.tmp, std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| Error::io("setting the mode of", &self.tmp, e))?;
        rename_noreplace(&self.tmp, &self.target).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => Error::Exists {
                path: self.target.clone(),
            },
            _ => Error::io("renaming to", &self.target, e),
        })?;
        self.handle = None;
        sync_dir(&parent_dir(&self.target))
            .map_err(|e| Error::io("syncing the directory of", &self.target, e))
    }
}

impl NewDir {
    /// Makes the tree durable, gives it `mode` and puts it at its target in one atomic
    /// step: swapped with what is there (`RENAME_EXCHANGE`), or renamed when nothing is.
    /// Returns the replaced tree, now at the temporary name, for the caller to remove once
    /// it is no longer needed (or to swap back with [`exchange`]).
    pub fn commit_exchange(mut self, mode: u32) -> Result<Option<PathBuf>> {
        let handle = self
            .handle
            .as_ref()
            .expect("a NewDir holds its handle until commit");
        syncfs(handle).map_err(|e| Error::io("syncing", &self.tmp, e))?;
        std::fs::set_permissions(&self.tmp, std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| Error::io("setting the mode of", &self.tmp, e))?;
        let old = if std::fs::symlink_metadata(&self.target).is_ok() {
            exchange(&self.tmp, &self.target)?;
            Some(self.tmp.clone())
        } else {
            rename_noreplace(&self.tmp, &self.target)
                .map_err(|e| Error::io("renaming to", &self.target, e))?;
            None
        };
        self.handle = None;
        sync_dir(&parent_dir(&self.target))
            .map_err(|e| Error::io("syncing the directory of", &self.target, e))?;
        Ok(old)
    }
}

/// Swaps two paths atomically (`renameat2(RENAME_EXCHANGE)`).
pub fn exchange(a: &Path, b: &Path) -> Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let cs = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|e| Error::io("renaming", p, io::Error::other(e)))
    };
    let (ca, cb) = (cs(a)?, cs(b)?);
    // SAFETY: both strings are NUL-terminated and live across the call.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(Error::io("swapping with", b, io::Error::last_os_error()))
    }
}

impl Drop for NewDir {
    fn drop(&mut self) {
        if self.handle.take().is_some() {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Removes the temporary directories that dead runs left in `dir` for the target `name`:
/// ours (same owner), directories, their process gone and their lock free. Returns the
/// paths removed.
pub fn remove_stale_temp_dirs(dir: &Path, name: &OsStr) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return removed;
    };
    // SAFETY: geteuid has no preconditions.
    #[allow(unsafe_code)]
    let uid = unsafe { libc::geteuid() };
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(pid) = is_temp_of(&file_name, name) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || (meta.uid() != uid && uid != 0) {
            continue;
        }
        let Ok(f) = File::open(&path) else {
            continue;
        };
        if f.try_lock().is_ok() && std::fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// Points the symlink `link` at `target` atomically: a new symlink beside it, renamed over
/// it, the directory synced. Refuses to replace anything but a symlink.
pub fn replace_symlink(link: &Path, target: &Path) -> Result<()> {
    match std::fs::symlink_metadata(link) {
        Ok(m) if !m.file_type().is_symlink() => {
            return Err(Error::NotRegular {
                path: link.to_path_buf(),
                kind: if m.is_dir() {
                    "a directory"
                } else {
                    "not a symlink"
                },
            })
        }
        _ => {}
    }
    let dir = parent_dir(link);
    let name = link.file_name().ok_or_else(|| Error::NotRegular {
        path: link.to_path_buf(),
        kind: "not a name",
    })?;
    let tmp = loop {
        let tmp = dir.join(temp_name(name));
        match std::os::unix::fs::symlink(target, &tmp) {
            Ok(()) => break tmp,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("creating a symlink beside", link, e)),
        }
    };
    if let Err(e) = std::fs::rename(&tmp, link) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("renaming to", link, e));
    }
    sync_dir(&dir).map_err(|e| Error::io("syncing the directory of", link, e))
}

/// Flushes the file system holding `f` (data and metadata of everything written on it).
fn syncfs(f: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the duration of the call.
    #[allow(unsafe_code)]
    let r = unsafe { libc::syncfs(f.as_raw_fd()) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `rename` that fails with `AlreadyExists` instead of replacing the target.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let f = CString::new(from.as_os_str().as_bytes())?;
    let t = CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: both strings are NUL-terminated and live across the call.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        // File systems without RENAME_NOREPLACE: check, then rename (a narrow race).
        Some(libc::EINVAL) | Some(libc::ENOSYS) => {
            if std::fs::symlink_metadata(to).is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            std::fs::rename(from, to)
        }
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_appears_whole_or_not_at_all() {
        let d = tempfile::tempdir().expect("tempdir");
        let target = d.path().join("tree");
        let nd = NewDir::create(&target).expect("create");
        std::fs::create_dir(nd.path().join("a")).expect("mkdir");
        std::fs::write(nd.path().join("a/f"), b"x").expect("write");
        assert!(!target.exists());
        let mode = std::fs::metadata(nd.path()).expect("meta").mode() & 0o777;
        assert_eq!(mode, 0o700);
        nd.commit(0o750).expect("commit");
        assert_eq!(std::fs::read(target.join("a/f")).expect("read"), b"x");
        assert_eq!(
            std::fs::metadata(&target).expect("meta").mode() & 0o777,
            0o750
        );
        // Something at the target: refused.
        assert!(matches!(NewDir::create(&target), Err(Error::Exists { .. })));
    }

    #[test]
    fn an_existing_tree_is_swapped_whole() {
        let d = tempfile::tempdir().expect("tempdir");
        let target = d.path().join("blobs");
        std::fs::create_dir(&target).expect("mkdir");
        std::fs::write(target.join("old"), b"o").expect("write");
        let nd = NewDir::create_replacing(&target).expect("create");
        std::fs::write(nd.path().join("new"), b"n").expect("write");
        let old = nd
            .commit_exchange(0o700)
            .expect("commit")
            .expect("old tree");
        assert!(target.join("new").exists() && !target.join("old").exists());
        assert!(old.join("old").exists());
        exchange(&old, &target).expect("swap back");
        assert!(target.join("old").exists());
        // Nothing at the target: a plain rename.
        let t2 = d.path().join("fresh");
        let nd = NewDir::create_replacing(&t2).expect("create");
        assert_eq!(nd.commit_exchange(0o700).expect("commit"), None);
        assert!(t2.is_dir());
    }

    #[test]
    fn dropped_and_dead_runs_temporaries_go() {
        let d = tempfile::tempdir().expect("tempdir");
        let target = d.path().join("tree");
        let nd = NewDir::create(&target).expect("create");
        let tmp = nd.path().to_path_buf();
        std::fs::write(tmp.join("f"), b"x").expect("write");
        drop(nd);
        assert!(!tmp.exists());
        // pid 0x7ffffff0 does not exist (above the kernel's pid_max).
        let dead = d.path().join(".tree.tmp-2147483632-0");
        std::fs::create_dir_all(dead.join("sub")).expect("mkdir");
        let other = d.path().join(".other.tmp-2147483632-0");
        std::fs::create_dir(&other).expect("mkdir");
        let nd = NewDir::create(&target).expect("create");
        assert!(!dead.exists() && other.exists());
        drop(nd);
    }

    #[test]
    fn symlinks_are_replaced_atomically_and_only_symlinks() {
        let d = tempfile::tempdir().expect("tempdir");
        let link = d.path().join("latest");
        replace_symlink(&link, Path::new("a")).expect("first");
        replace_symlink(&link, Path::new("b")).expect("second");
        assert_eq!(std::fs::read_link(&link).expect("readlink"), Path::new("b"));
        let names: Vec<_> = std::fs::read_dir(d.path())
            .expect("ls")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary left: {names:?}");
        let dir = d.path().join("real");
        std::fs::create_dir(&dir).expect("mkdir");
        assert!(replace_symlink(&dir, Path::new("b")).is_err());
    }
}
