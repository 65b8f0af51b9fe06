//! Names beside a file (`Data.fs.index`, `Data.fs.trN`) and directory durability.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// `path` with `suffix` appended to its last component: `Data.fs` + `.index`.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// The directory holding `path` (`.` for a bare name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Makes the entries of `dir` durable (after a create, rename or unlink in it).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Saves `bytes` in the first free `<path>.trN` (where ZODB saves the bytes it cuts from a
/// file): created new, never through a symlink, with `mode`, fsynced with its directory.
pub fn save_free_trn(path: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf> {
    for n in 0u32.. {
        let p = with_suffix(path, &format!(".tr{n}"));
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o777)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&p);
        match f {
            Ok(mut f) => {
                let written = f.write_all(bytes).and_then(|()| f.sync_all());
                if let Err(e) = written {
                    drop(f);
                    let _ = std::fs::remove_file(&p);
                    return Err(Error::io("writing", &p, e));
                }
                sync_dir(&parent_dir(&p))
                    .map_err(|e| Error::io("syncing the directory of", &p, e))?;
                return Ok(p);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("creating", &p, e)),
        }
    }
    unreachable!("one of 2^32 .trN names is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_and_free_trn() {
        assert_eq!(
            with_suffix(Path::new("/a/Data.fs"), ".index"),
            Path::new("/a/Data.fs.index")
        );
        assert_eq!(parent_dir(Path::new("Data.fs")), Path::new("."));
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("Data.fs");
        std::fs::write(with_suffix(&f, ".tr0"), b"older").expect("write");
        std::os::unix::fs::symlink("/nonexistent", with_suffix(&f, ".tr1")).expect("symlink");
        let p = save_free_trn(&f, b"tail", 0o600).expect("save");
        assert_eq!(p, with_suffix(&f, ".tr2"));
        assert_eq!(std::fs::read(&p).expect("read"), b"tail");
        assert_eq!(
            std::fs::read(with_suffix(&f, ".tr0")).expect("read"),
            b"older"
        );
    }
}
