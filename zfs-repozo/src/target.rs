//! The file a restore writes (`-o`): what it may be, its lock, its mode, the room beside
//! it, and how it and its `.index` are replaced.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use zfs_files::{Lock, LockOptions, Output, OutputSpec};

use crate::error::{Error, Result};
use crate::names::strip_ext;
use crate::repo::{self, ChainFile};
use crate::Hooks;

/// Free space kept beyond the restored file's size before the old target may stay while the
/// new one is written.
pub(crate) const ROOM_MARGIN: u64 = 1 << 20;

/// A restore target, checked and locked.
pub(crate) struct Target {
    /// The target as given.
    pub path: PathBuf,
    /// The target as text, for messages.
    pub name: String,
    /// `<target>.index`.
    pub index: PathBuf,
    /// Size of the regular file at the target now, if there is one.
    pub existing: Option<u64>,
    spec: OutputSpec,
    index_spec: OutputSpec,
    _lock: Option<Lock>,
}

impl Target {
    /// Checks that `out` and `out.index` may be written (a regular file, a symlink that is
    /// replaced, or nothing; never a directory, device or FIFO; never a file of the
    /// chain), and takes `out.lock` when `out` (or that lock file) exists: the lock a
    /// running ZODB holds on the file, so that a database in use is not restored over. The new files get the existing target's mode,
    /// else the full backup's.
    pub fn prepare(out: &Path, chain: &[ChainFile]) -> Result<Target> {
        let name = out.to_string_lossy().into_owned();
        let index = zfs_files::with_suffix(out, ".index");
        let existing = std::fs::metadata(out)
            .ok()
            .filter(std::fs::Metadata::is_file);
        let mode = match &existing {
            Some(m) => zfs_files::permissions_of(m),
            None => zfs_files::mode_of(Path::new(&chain[0].path))?,
        };
        let mut spec = OutputSpec::new(out).mode(mode);
        let mut index_spec = OutputSpec::new(&index).mode(mode);
        let dat = repo::dat_path_of(&chain[0]);
        for c in chain {
            let idx = format!("{}.index", strip_ext(&c.path));
            for input in [c.path.as_str(), idx.as_str()] {
                spec = spec.not_input(Path::new(input))?;
                index_spec = index_spec.not_input(Path::new(input))?;
            }
        }
        spec = spec.not_input(Path::new(&dat))?;
        index_spec = index_spec.not_input(Path::new(&dat))?;
        spec.check()?;
        index_spec.check()?;
        // Where nothing exists yet no database can be open: no lock file is made for it.
        let lock_file = zfs_files::with_suffix(out, ".lock");
        let lock = if existing.is_some() || std::fs::symlink_metadata(&lock_file).is_ok() {
            lock_target(out, &name)?
        } else {
            None
        };
        Ok(Target {
            path: out.to_path_buf(),
            name,
            index,
            existing: existing.map(|m| m.len()),
            spec,
            index_spec,
            _lock: lock,
        })
    }

    /// Bytes free for us in the target's directory (`u64::MAX` when unknown).
    pub fn free_space(&self) -> u64 {
        rustix::fs::statvfs(zfs_files::parent_dir(&self.path))
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
            .unwrap_or(u64::MAX)
    }

    /// Deletes the old target and its `.index` (to make room), durably.
    pub fn delete_old(&mut self) -> Result<()> {
        for p in [&self.path, &self.index] {
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(p, e)),
            }
        }
        zfs_files::sync_dir(&zfs_files::parent_dir(&self.path))
            .map_err(|e| Error::io(&self.path, e))?;
        self.existing = None;
        Ok(())
    }

    /// A new private temporary for the target's data.
    pub fn create(&self) -> Result<Output> {
        Ok(self.spec.clone().create()?)
    }

    /// Puts `data` (complete) in place with the chain's `.index`: the new index is written
    /// first under a temporary name, the old one removed, the data renamed over the target,
    /// then the index renamed beside it. A crash in between leaves the old or the new data
    /// with its own index or none (ZODB rebuilds a missing one). Returns the index path
    /// when one was written.
    pub fn replace(
        &self,
        data: Output,
        chain: &[ChainFile],
        hooks: &Hooks<'_>,
    ) -> Result<Option<String>> {
        let index = self.new_index(chain, hooks)?;
        self.remove_index()?;
        data.commit()?;
        let Some((index, _)) = index else {
            return Ok(None);
        };
        index.commit()?;
        Ok(Some(self.index_name()))
    }

    /// Puts the chain's `.index` beside the target, which already holds the chain's state
    /// (brought up to date in place), once it passes ZODB's sanity check against the file.
    /// One that does not fit is not written, and the old one is removed (ZODB rebuilds it);
    /// without an index in the repository, an old one stays only if it fits the file.
    pub fn install_index(&self, chain: &[ChainFile], hooks: &Hooks<'_>) -> Result<Option<String>> {
        let Some((index, bytes)) = self.new_index(chain, hooks)? else {
            // None in the repository: an index already beside the file stays if it fits it.
            let fits = std::fs::read(&self.index)
                .is_ok_and(|old| crate::incremental::index_fits(&self.path, &old));
            if !fits {
                self.remove_index()?;
            }
            return Ok(None);
        };
        if !crate::incremental::index_fits(&self.path, &bytes) {
            (hooks.notice)(&format!(
                "the repository's index for this state does not fit {}: it is not restored, \
                 and ZODB rebuilds the index when it opens the file",
                self.name
            ));
            drop(index);
            self.remove_index()?;
            return Ok(None);
        }
        index.commit()?;
        Ok(Some(self.index_name()))
    }

    fn index_name(&self) -> String {
        self.index.to_string_lossy().into_owned()
    }

    /// Removes the target's `.index` (a missing one is fine).
    pub fn remove_index(&self) -> Result<()> {
        match std::fs::remove_file(&self.index) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&self.index, e)),
        }
    }

    /// Removes the target's `.index` durably, before the target changes in place: an
    /// index always describes exactly the file beside it, or there is none.
    pub fn drop_index(&self) -> Result<()> {
        if std::fs::symlink_metadata(&self.index).is_err() {
            return Ok(());
        }
        self.remove_index()?;
        zfs_files::sync_dir(&zfs_files::parent_dir(&self.index))
            .map_err(|e| Error::io(&self.index, e))
    }

    /// The repository's `.index` for the chain's state, written to a private temporary for
    /// `<target>.index` (not yet in place), with its bytes; `None` when the repository has
    /// none.
    fn new_index(
        &self,
        chain: &[ChainFile],
        hooks: &Hooks<'_>,
    ) -> Result<Option<(Output, Vec<u8>)>> {
        let last = chain.last().expect("the chain is not empty");
        let source = format!("{}.index", strip_ext(&last.path));
        let index_out = self.index.to_string_lossy();
        let mut f = match zfs_files::open_input(Path::new(&source)) {
            Ok(f) => f,
            Err(e)
                if e.io_error()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound) =>
            {
                hooks.log(&format!("No index file to restore: {source}"));
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        hooks.log(&format!("Restoring index file {source} to {index_out}"));
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)
            .map_err(|e| Error::io(&source, e))?;
        let mut out = self.index_spec.clone().create()?;
        out.write_all(&bytes)
            .and_then(|()| out.file().sync_all())
            .map_err(|e| Error::io(&self.index, e))?;
        Ok(Some((out, bytes)))
    }
}

/// Takes `<target>.lock` as ZODB (zc.lockfile) does, without waiting: a running ZODB that
/// has the target open holds it. Where the lock file cannot be opened for writing (another
/// user's), it is only probed. File systems without `flock` go on unlocked.
fn lock_target(out: &Path, name: &str) -> Result<Option<Lock>> {
    let path = zfs_files::with_suffix(out, ".lock");
    let opts = LockOptions {
        exclusive: true,
        wait: Duration::ZERO,
        mode: 0o666,
        private: false,
        holder: Some(format!(" {}\n", std::process::id())),
    };
    let in_use = |holder: String| Error::TargetInUse {
        target: name.to_string(),
        lock: path.to_string_lossy().into_owned(),
        holder,
    };
    match Lock::acquire(&path, &opts, &mut |_| {}) {
        Ok(l) => Ok(Some(l)),
        Err(zfs_files::Error::Locked { holder, .. }) => Err(in_use(
            holder.unwrap_or_else(|| "another process".to_string()),
        )),
        Err(e) => {
            let Some(code) = e.io_error().and_then(std::io::Error::raw_os_error) else {
                return Err(e.into());
            };
            use rustix::io::Errno;
            let unsupported = [Errno::NOLCK, Errno::OPNOTSUPP, Errno::NOSYS];
            let unwritable = [Errno::ACCESS, Errno::PERM, Errno::ROFS];
            let no_dir = [Errno::NOENT, Errno::NOTDIR];
            if unsupported.iter().any(|x| x.raw_os_error() == code) {
                Ok(None)
            } else if no_dir.iter().any(|x| x.raw_os_error() == code) {
                // The target's directory is missing: say so about the target.
                Err(Error::io(out, std::io::Error::from_raw_os_error(code)))
            } else if unwritable.iter().any(|x| x.raw_os_error() == code) {
                if zfs_files::is_held(&path)? {
                    Err(in_use("another process".to_string()))
                } else {
                    Ok(None)
                }
            } else {
                Err(e.into())
            }
        }
    }
}
