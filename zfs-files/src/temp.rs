//! Names of our temporary files, and the removal of those whose writer died.
//!
//! A temporary for `DIR/NAME` is `DIR/.NAME.tmp-PID-N`: hidden, beside its target (so the
//! rename stays on one file system), and naming the process that writes it. The writer
//! holds an exclusive `flock` on it while it writes. A later run removes a temporary of a
//! target when it is ours (same owner), a regular file, its process is gone and nobody
//! holds its lock. Names of earlier versions (`.NAME.tmp.PID[.N]`) are recognised too.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh temporary name for a file named `name`: `.NAME.tmp-PID-N`.
pub fn temp_name(name: &OsStr) -> std::ffi::OsString {
    static N: AtomicU64 = AtomicU64::new(0);
    let mut s = std::ffi::OsString::from(".");
    s.push(name);
    s.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    s
}

/// If `file` is a temporary name of ours for `name`, the pid that made it.
pub fn is_temp_of(file: &OsStr, name: &OsStr) -> Option<u32> {
    let f = file.as_bytes();
    let rest = f
        .strip_prefix(b".")?
        .strip_prefix(name.as_bytes())?
        .strip_prefix(b".tmp")?;
    let rest = rest
        .strip_prefix(b"-")
        .or_else(|| rest.strip_prefix(b"."))?;
    let digits: &[u8] = rest.split(|&b| b == b'-' || b == b'.').next()?;
    let tail = &rest[digits.len()..];
    let tail_ok = tail.is_empty()
        || (tail.len() > 1
            && (tail[0] == b'-' || tail[0] == b'.')
            && tail[1..].iter().all(u8::is_ascii_digit));
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || !tail_ok {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Removes the temporaries left in `dir` for the target named `name` by runs that died
/// (kill -9, power loss): ours, regular, their process gone and their lock free. Returns
/// the paths removed. Errors reading the directory are ignored (nothing is removed).
pub fn remove_stale_temps(dir: &Path, name: &OsStr) -> Vec<PathBuf> {
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
        if pid == std::process::id() || process_exists(pid) {
            continue;
        }
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_file() || (meta.uid() != uid && uid != 0) {
            continue;
        }
        let Ok(f) = open_nofollow(&path) else {
            continue;
        };
        if f.try_lock().is_ok() && std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

fn open_nofollow(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_recognised() {
        let name = OsStr::new("Data.fs");
        let t = temp_name(name);
        assert_eq!(is_temp_of(&t, name), Some(std::process::id()));
        assert_eq!(
            is_temp_of(OsStr::new(".Data.fs.tmp.123.9"), name),
            Some(123)
        );
        assert_eq!(is_temp_of(OsStr::new(".Data.fs.tmp.77"), name), Some(77));
        for not in [
            "Data.fs",
            ".Data.fs",
            ".Data.fs.tmp",
            ".Data.fs.tmp-",
            ".Data.fs.tmp-x-1",
            ".Data.fs.index.tmp-1-2",
            ".Data.fs.tmp-1-2x",
            ".Other.fs.tmp-1-2",
        ] {
            assert_eq!(is_temp_of(OsStr::new(not), name), None, "{not}");
        }
    }

    #[test]
    fn only_dead_writers_temporaries_go() {
        let d = tempfile::tempdir().expect("tempdir");
        let name = OsStr::new("Data.fs");
        // pid 0x7ffffff0 does not exist (above the kernel's pid_max).
        let dead = d.path().join(".Data.fs.tmp-2147483632-0");
        std::fs::write(&dead, b"partial").expect("write");
        let alive = d
            .path()
            .join(format!(".Data.fs.tmp-{}-99", std::process::id()));
        std::fs::write(&alive, b"ours").expect("write");
        let held = d.path().join(".Data.fs.tmp-2147483633-0");
        std::fs::write(&held, b"held").expect("write");
        let h = std::fs::File::open(&held).expect("open");
        h.lock().expect("lock");
        let other = d.path().join(".Other.fs.tmp-2147483632-0");
        std::fs::write(&other, b"x").expect("write");
        let removed = remove_stale_temps(d.path(), name);
        assert_eq!(removed, vec![dead.clone()]);
        assert!(!dead.exists() && alive.exists() && held.exists() && other.exists());
    }
}
