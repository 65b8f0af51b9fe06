//! Which file a path or handle is: device and inode.

use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A file's identity: two paths or handles with the same `FileId` are the same file (the
/// same name, hard links, or symlinks to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The identity of an open file.
    pub fn of_file(f: &File) -> std::io::Result<FileId> {
        Ok(Self::of_metadata(&f.metadata()?))
    }

    /// The identity of the file `path` names, following symlinks; `None` if nothing is
    /// there (or a dangling symlink).
    pub fn of_path(path: &Path) -> std::io::Result<Option<FileId>> {
        match std::fs::metadata(path) {
            Ok(m) => Ok(Some(Self::of_metadata(&m))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The identity recorded in `m`.
    pub fn of_metadata(m: &Metadata) -> FileId {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_the_same_file_and_copies_are_not() {
        let d = tempfile::tempdir().expect("tempdir");
        let a = d.path().join("a");
        std::fs::write(&a, b"x").expect("write");
        let hard = d.path().join("hard");
        std::fs::hard_link(&a, &hard).expect("link");
        let sym = d.path().join("sym");
        std::os::unix::fs::symlink(&a, &sym).expect("symlink");
        let copy = d.path().join("copy");
        std::fs::copy(&a, &copy).expect("copy");
        let id = FileId::of_path(&a).expect("stat").expect("exists");
        assert_eq!(FileId::of_path(&hard).expect("stat"), Some(id));
        assert_eq!(FileId::of_path(&sym).expect("stat"), Some(id));
        assert_ne!(FileId::of_path(&copy).expect("stat"), Some(id));
        let f = File::open(&sym).expect("open");
        assert_eq!(FileId::of_file(&f).expect("fstat"), id);
        assert_eq!(FileId::of_path(&d.path().join("none")).expect("stat"), None);
    }
}
