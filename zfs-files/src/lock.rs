//! Lock files: `flock` with a bounded wait, opened without following symlinks, naming
//! their holder.
//!
//! A lock can only block us if its file can be opened: a private lock file (mode 0600,
//! ours) cannot be taken by other users. ZODB's `Data.fs.lock` is shared with ZODB
//! (zc.lockfile locks it with `flock` too), so it keeps the content zc.lockfile writes.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::input::kind_of;

/// How to take a lock.
#[derive(Clone, Debug)]
pub struct LockOptions {
    /// Exclusive (writers) or shared (readers).
    pub exclusive: bool,
    /// How long to wait for a holder to let go before failing with [`Error::Locked`].
    pub wait: Duration,
    /// Mode of a lock file we create. 0600 makes a lock only its owner (and root) can take.
    pub mode: u32,
    /// Refuse a lock file that belongs to another user (unless we are root), and make ours
    /// private if its mode was widened.
    pub private: bool,
    /// Written into the file once locked (replacing its content); `None` leaves it.
    pub holder: Option<String>,
}

impl LockOptions {
    /// An exclusive, private lock waiting up to `wait`, recording this process.
    pub fn private(wait: Duration) -> Self {
        LockOptions {
            exclusive: true,
            wait,
            mode: 0o600,
            private: true,
            holder: Some(describe_self()),
        }
    }
}

/// A held lock; released when dropped. The lock file stays.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

impl Lock {
    /// Takes the lock on `path` (created if missing), waiting up to `opts.wait`;
    /// `on_wait` is called once, with the holder's description, if we have to wait.
    pub fn acquire(path: &Path, opts: &LockOptions, on_wait: &mut dyn FnMut(&str)) -> Result<Lock> {
        let mut file = open_lock_file(path, opts)?;
        let start = Instant::now();
        let mut told = false;
        loop {
            let r = if opts.exclusive {
                file.try_lock()
            } else {
                file.try_lock_shared()
            };
            match r {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let waited = start.elapsed();
                    if waited >= opts.wait {
                        return Err(Error::Locked {
                            path: path.to_path_buf(),
                            holder: Some(holder_of(&mut file)),
                            waited,
                        });
                    }
                    if !told {
                        told = true;
                        on_wait(&holder_of(&mut file));
                    }
                    std::thread::sleep(Duration::from_millis(100).min(opts.wait - waited));
                }
                Err(TryLockError::Error(e)) => return Err(Error::io("locking", path, e)),
            }
        }
        if let Some(h) = &opts.holder {
            let w = (|| -> io::Result<()> {
                file.seek(SeekFrom::Start(0))?;
                file.write_all(h.as_bytes())?;
                file.set_len(h.len() as u64)
            })();
            w.map_err(|e| Error::io("writing", path, e))?;
        }
        Ok(Lock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The locked file (to compare its identity with what its path names now, when lock
    /// files are removed by their holders).
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Whether some process holds a lock on `path`, found without creating or changing
/// anything (a missing file means no).
pub fn is_held(path: &Path) -> Result<bool> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("opening", path, e)),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(e)) => Err(Error::io("locking", path, e)),
    }
}

fn open_lock_file(path: &Path, opts: &LockOptions) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(opts.mode & 0o777)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => Error::NotRegular {
                path: path.to_path_buf(),
                kind: "a symlink",
            },
            _ => Error::io("opening the lock file", path, e),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io("reading the metadata of", path, e))?;
    if !meta.is_file() {
        return Err(Error::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(&meta.file_type()),
        });
    }
    if opts.private {
        // SAFETY: geteuid has no preconditions.
        #[allow(unsafe_code)]
        let us = unsafe { libc::geteuid() };
        if meta.uid() != us && us != 0 {
            return Err(Error::ForeignLock {
                path: path.to_path_buf(),
                owner: meta.uid(),
                us,
            });
        }
        if meta.uid() == us && meta.mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io("setting the mode of", path, e))?;
        }
    }
    Ok(file)
}

/// What the lock file says about its holder, checked against the running processes.
fn holder_of(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.take(512).read_to_string(&mut text);
    let text = text.trim();
    let pid = text
        .split_whitespace()
        .next()
        .and_then(|w| w.parse::<u32>().ok());
    match pid {
        Some(pid) if Path::new(&format!("/proc/{pid}")).exists() => {
            let rest = text.split_once(char::is_whitespace).map(|(_, r)| r.trim());
            let cmd = rest
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .or_else(|| cmdline(pid));
            match cmd {
                Some(c) => format!("process {pid} ({c})"),
                None => format!("process {pid}"),
            }
        }
        Some(pid) => format!(
            "another process (the lock file names process {pid}, which is no longer running)"
        ),
        None => "another process".to_string(),
    }
}

fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let s: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (!s.is_empty()).then(|| s.join(" "))
}

/// This process as a lock holder: its pid and command line.
pub(crate) fn describe_self() -> String {
    let pid = std::process::id();
    match cmdline(pid) {
        Some(c) => format!("{pid} {c}\n"),
        None => format!("{pid}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_waited_for_boundedly_and_its_holder_named() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("repo.lock");
        let opts = LockOptions::private(Duration::from_millis(300));
        let held = Lock::acquire(&p, &opts, &mut |_| panic!("free")).expect("first");
        // A second handle in this process conflicts like another process would.
        let mut waited_for = None;
        let e =
            Lock::acquire(&p, &opts, &mut |h| waited_for = Some(h.to_string())).expect_err("held");
        let Error::Locked { holder, waited, .. } = &e else {
            panic!("{e}");
        };
        assert!(*waited >= Duration::from_millis(300));
        let h = holder.as_deref().expect("holder");
        assert!(
            h.starts_with(&format!("process {}", std::process::id())),
            "{h}"
        );
        assert_eq!(waited_for.as_deref(), Some(h));
        assert_eq!(std::fs::metadata(&p).expect("meta").mode() & 0o777, 0o600);
        assert!(is_held(&p).expect("probe"));
        drop(held);
        assert!(!is_held(&p).expect("probe"));
        Lock::acquire(&p, &opts, &mut |_| panic!("free")).expect("free again");
    }

    #[test]
    fn lock_files_are_not_reached_through_symlinks() {
        let d = tempfile::tempdir().expect("tempdir");
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"precious").expect("write");
        let p = d.path().join("Data.fs.lock");
        std::os::unix::fs::symlink(&victim, &p).expect("symlink");
        let opts = LockOptions {
            exclusive: true,
            wait: Duration::ZERO,
            mode: 0o644,
            private: false,
            holder: Some(" 1\n".into()),
        };
        let e = Lock::acquire(&p, &opts, &mut |_| {}).expect_err("symlink");
        assert!(e.to_string().contains("symlink"), "{e}");
        assert_eq!(std::fs::read(&victim).expect("read"), b"precious");
        assert!(!is_held(&p).unwrap_or(false));
    }

    #[test]
    fn a_widened_private_lock_file_is_made_private_again() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("l");
        std::fs::write(&p, b"").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let _l =
            Lock::acquire(&p, &LockOptions::private(Duration::ZERO), &mut |_| {}).expect("lock");
        assert_eq!(std::fs::metadata(&p).expect("meta").mode() & 0o777, 0o600);
    }
}
