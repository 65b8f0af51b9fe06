//! The blob backup directory: `<name>.<stamp>` trees, the `latest` symlink, and what a
//! tree holds besides the blob directory copy.
//!
//! collective.backup and collective.recipe.backup (with `blob_timestamps`, their default)
//! back up a blob directory `.../NAME` to `<blob_backup_location>/NAME.<stamp>/NAME/`, where
//! `<stamp>` is the stamp of the newest repozo data file at that moment, and point
//! `<blob_backup_location>/latest` at the newest tree. We write and read the same names. A
//! tree we write also holds, beside `NAME/`, the files [`MANIFEST`] and [`CHECKED`]; their
//! restore copies only `NAME/`, so these never reach a live site.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The symlink to the newest tree.
pub const LATEST: &str = "latest";
/// The list of a tree's files and of the blob records of its Data.fs state.
pub const MANIFEST: &str = ".zodbfs-manifest";
/// The result of the last consistency check of a tree (JSON).
pub const CHECKED: &str = ".zodbfs-checked";

/// One blob backup tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobTree {
    /// The directory's name, `NAME.<stamp>`.
    pub name: String,
    /// The name of the blob directory it backs up (`NAME`).
    pub prefix: String,
    /// The repozo stamp.
    pub stamp: String,
    /// Its path.
    pub path: PathBuf,
}

impl BlobTree {
    /// The tree of the blob directory `prefix` at `stamp`, under `dir`.
    pub fn new(dir: &Path, prefix: &str, stamp: &str) -> BlobTree {
        let name = format!("{prefix}.{stamp}");
        BlobTree {
            path: dir.join(&name),
            name,
            prefix: prefix.to_string(),
            stamp: stamp.to_string(),
        }
    }

    /// Where the blob directory's copy is: `NAME.<stamp>/<want>` if it is there, else the
    /// tree's only directory (a tree taken from a blob directory of another name).
    pub fn blob_dir(&self, want: &str) -> Result<PathBuf> {
        let p = self.path.join(want);
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            return Ok(p);
        }
        let p = self.path.join(&self.prefix);
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            return Ok(p);
        }
        let rd = std::fs::read_dir(&self.path).map_err(|e| Error::io("reading", &self.path, e))?;
        let dirs: Vec<PathBuf> = rd
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        match <[PathBuf; 1]>::try_from(dirs) {
            Ok([one]) => Ok(one),
            Err(_) => Err(Error::NoBlobDirInBackup {
                tree: self.path.clone(),
                name: want.to_string(),
            }),
        }
    }
}

/// Whether `s` is a repozo stamp, `YYYY-MM-DD-HH-MM-SS`.
pub fn is_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, &c)| {
            if matches!(i, 4 | 7 | 10 | 13 | 16) {
                c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// The trees in `dir` (real directories named `NAME.<stamp>`), oldest stamp first. Names
/// with a number instead of a stamp (`blobstorage.0`, from `blob_timestamps = false`) are
/// not ours to order and are left out. A missing `dir` has no trees.
pub fn trees(dir: &Path) -> Result<Vec<BlobTree>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("reading", dir, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::io("reading", dir, e))?;
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Some((prefix, stamp)) = name.rsplit_once('.') else {
            continue;
        };
        if prefix.is_empty() || !is_stamp(stamp) {
            continue;
        }
        out.push(BlobTree {
            path: e.path(),
            prefix: prefix.to_string(),
            stamp: stamp.to_string(),
            name,
        });
    }
    out.sort_by(|a, b| a.stamp.cmp(&b.stamp).then_with(|| a.prefix.cmp(&b.prefix)));
    Ok(out)
}

/// The trees of one blob directory: those named `want.<stamp>` when there are any, else
/// all trees if they share one name; several other names are an error (as in
/// collective.backup, which refuses to order them).
pub fn trees_of(dir: &Path, want: &str) -> Result<Vec<BlobTree>> {
    let all = trees(dir)?;
    if all.iter().any(|t| t.prefix == want) {
        return Ok(all.into_iter().filter(|t| t.prefix == want).collect());
    }
    let mut names: Vec<&str> = all.iter().map(|t| t.prefix.as_str()).collect();
    names.dedup();
    names.sort_unstable();
    names.dedup();
    if names.len() > 1 {
        return Err(Error::MixedBlobBackups {
            dir: dir.to_path_buf(),
            names: names.join(", "),
        });
    }
    Ok(all)
}

/// The last component of `path` as UTF-8 (the blob directory's name), trailing slashes
/// ignored.
pub fn dir_name(path: &Path) -> Result<String> {
    path.components()
        .next_back()
        .and_then(|c| c.as_os_str().to_str())
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .map(str::to_string)
        .ok_or_else(|| {
            Error::Usage(format!(
                "'{}': a blob directory needs a UTF-8 name (it names its backups)",
                path.display()
            ))
        })
}

/// Points `dir/latest` at `tree` (atomically; a `latest` that is not a symlink is left
/// alone and reported by the error).
pub fn point_latest(dir: &Path, tree: &str) -> Result<()> {
    zfs_files::replace_symlink(&dir.join(LATEST), Path::new(tree))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps() {
        assert!(is_stamp("2026-10-01-03-00-05"));
        assert!(!is_stamp("2026-10-01-03-00"));
        assert!(!is_stamp("2026-10-01-03-00-0x"));
        assert!(!is_stamp("2026_10-01-03-00-05"));
    }

    #[test]
    fn trees_are_listed_by_stamp_and_name() {
        let d = tempfile::tempdir().expect("tempdir");
        for n in [
            "blobstorage.2026-01-02-00-00-00",
            "blobstorage.2025-01-02-00-00-00",
            "blobstorage.0",
            ".blobstorage.2027-01-01-00-00-00.tmp-1-0",
        ] {
            std::fs::create_dir(d.path().join(n)).expect("mkdir");
        }
        std::fs::write(d.path().join("x.2024-01-01-00-00-00"), b"").expect("file");
        std::os::unix::fs::symlink("blobstorage.2026-01-02-00-00-00", d.path().join(LATEST))
            .expect("symlink");
        let t = trees_of(d.path(), "blobstorage").expect("trees");
        let names: Vec<_> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "blobstorage.2025-01-02-00-00-00",
                "blobstorage.2026-01-02-00-00-00"
            ]
        );
        // Another name alone: its trees (a blob directory renamed since).
        assert_eq!(trees_of(d.path(), "blobs").expect("trees").len(), 2);
        std::fs::create_dir(d.path().join("other.2026-01-02-00-00-00")).expect("mkdir");
        assert!(matches!(
            trees_of(d.path(), "blobs"),
            Err(Error::MixedBlobBackups { .. })
        ));
        assert_eq!(trees_of(d.path(), "other").expect("trees").len(), 1);
    }
}
