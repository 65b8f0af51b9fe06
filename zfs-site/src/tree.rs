//! Directory trees: walking one (in parallel) and mirroring one into a new directory, each
//! file hard-linked to an earlier copy or copied (a reflink where the file system offers
//! one), with modes, owners (when run as root) and file times kept.
//!
//! Everything is created inside a directory the caller made private (a
//! [`zfs_files::NewDir`]): directories with `mkdir`, files `O_CREAT|O_EXCL|O_NOFOLLOW`,
//! never through a symlink (the tree is ours from its root down). The caller makes the
//! whole tree durable at once when it commits it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rayon::prelude::*;

use zfs_format::blob::{parse_blob_path, Layout};

use crate::error::{Error, Result};
use crate::Stop;

/// A regular file of a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// Its path under the tree's root, `/`-separated.
    pub rel: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What a walk found.
#[derive(Clone, Debug, Default)]
pub struct Walked {
    /// Every regular file, with its size.
    pub files: Vec<FileInfo>,
    /// Number of directories below the root.
    pub dirs: u64,
    /// Entries that are neither files nor directories (symlinks, FIFOs...).
    pub others: Vec<String>,
}

fn join_rel(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// Walks `root`, stating every file (directories in parallel).
pub fn walk(root: &Path, stop: &Stop<'_>) -> Result<Walked> {
    walk_dir(root, "", stop)
}

fn walk_dir(dir: &Path, rel: &str, stop: &Stop<'_>) -> Result<Walked> {
    stop.check()?;
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io("reading", dir, e))?;
    let mut out = Walked::default();
    let mut subdirs = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::io("reading", dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let t = e
            .file_type()
            .map_err(|err| Error::io("reading", e.path(), err))?;
        let r = join_rel(rel, &name);
        if t.is_dir() {
            subdirs.push((e.path(), r));
        } else if t.is_file() {
            let m = e
                .metadata()
                .map_err(|err| Error::io("reading", e.path(), err))?;
            out.files.push(FileInfo {
                rel: r,
                size: m.len(),
            });
        } else {
            out.others.push(r);
        }
    }
    stop.advance(out.files.len() as u64);
    out.dirs += subdirs.len() as u64;
    let parts: Vec<Walked> = subdirs
        .par_iter()
        .map(|(p, r)| walk_dir(p, r, stop))
        .collect::<Result<_>>()?;
    for p in parts {
        out.files.extend(p.files);
        out.dirs += p.dirs;
        out.others.extend(p.others);
    }
    Ok(out)
}

/// Where the files of a mirror come from.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// Copy every file.
    Copy,
    /// Hard-link each committed blob file (named by oid and tid in `layout`, so immutable)
    /// that the earlier copy `root` holds under the same path (listed in `files`, path to
    /// size); copy the rest.
    LinkFrom {
        /// The earlier copy's root.
        root: &'a Path,
        /// Its files.
        files: &'a HashMap<String, u64>,
        /// The blob directory's layout.
        layout: Layout,
    },
}

/// What a mirror did.
#[derive(Clone, Debug, Default)]
pub struct Mirrored {
    /// Every regular file of the new tree, with its size.
    pub files: Vec<FileInfo>,
    /// Directories created below the root.
    pub dirs: u64,
    /// Files hard-linked to the earlier copy.
    pub linked: u64,
    /// Files copied.
    pub copied: u64,
    /// Bytes copied.
    pub copied_bytes: u64,
    /// Of the files copied, those cloned by the file system (reflink) instead of written.
    pub reflinked: u64,
    /// Files that disappeared between the listing and the copy (a pack removed them).
    pub vanished: Vec<String>,
    /// Entries neither files, directories nor symlinks (FIFOs, sockets...), not copied.
    pub skipped: Vec<String>,
}

impl Mirrored {
    fn merge(&mut self, o: Mirrored) {
        self.files.extend(o.files);
        self.dirs += o.dirs;
        self.linked += o.linked;
        self.copied += o.copied;
        self.copied_bytes += o.copied_bytes;
        self.reflinked += o.reflinked;
        self.vanished.extend(o.vanished);
        self.skipped.extend(o.skipped);
    }
}

struct Ctx<'a> {
    how: Source<'a>,
    stop: &'a Stop<'a>,
    umask: u32,
    root_user: bool,
}

/// Mirrors the tree `src` into the existing, empty directory `dst` (which the caller
/// made and gives its mode).
pub fn mirror(src: &Path, dst: &Path, how: Source<'_>, stop: &Stop<'_>) -> Result<Mirrored> {
    let ctx = Ctx {
        how,
        stop,
        umask: zfs_files::current_umask(),
        root_user: rustix::process::geteuid().is_root(),
    };
    mirror_dir(src, dst, "", &ctx)
}

fn mirror_dir(src: &Path, dst: &Path, rel: &str, ctx: &Ctx<'_>) -> Result<Mirrored> {
    ctx.stop.check()?;
    let rd = std::fs::read_dir(src).map_err(|e| Error::io("reading", src, e))?;
    let mut out = Mirrored::default();
    let mut subdirs = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::io("reading", src, e))?;
        let name = e.file_name();
        let r = join_rel(rel, &name.to_string_lossy());
        let from = e.path();
        let to = dst.join(&name);
        let t = e
            .file_type()
            .map_err(|err| Error::io("reading", &from, err))?;
        if t.is_dir() {
            let m = match e.metadata() {
                Ok(m) => m,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(Error::io("reading", &from, err)),
            };
            let mode = m.mode() & 0o7777;
            // Owner rwx while it is filled; the final mode once it is full.
            std::fs::DirBuilder::new()
                .mode(mode | 0o700)
                .create(&to)
                .map_err(|err| Error::io("creating", &to, err))?;
            let fixup = (mode | 0o700) & !ctx.umask != mode;
            subdirs.push((from, to, r, m, fixup));
        } else if t.is_file() {
            ctx.stop.advance(1);
            if let Source::LinkFrom {
                root,
                files,
                layout,
            } = ctx.how
            {
                if parse_blob_path(&r, layout).is_some() {
                    if let Some(&size) = files.get(&r) {
                        if std::fs::hard_link(root.join(&r), &to).is_ok() {
                            out.linked += 1;
                            out.files.push(FileInfo { rel: r, size });
                            continue;
                        }
                    }
                }
            }
            match copy_file(&from, &to, ctx.root_user) {
                Ok((size, cloned)) => {
                    out.copied += 1;
                    out.copied_bytes += size;
                    out.reflinked += u64::from(cloned);
                    out.files.push(FileInfo { rel: r, size });
                }
                Err(CopyError::Vanished) => out.vanished.push(r),
                Err(CopyError::Io(op, p, err)) => return Err(Error::io(op, p, err)),
            }
        } else if t.is_symlink() {
            let target = match std::fs::read_link(&from) {
                Ok(t) => t,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(Error::io("reading", &from, err)),
            };
            std::os::unix::fs::symlink(&target, &to)
                .map_err(|err| Error::io("creating", &to, err))?;
        } else {
            out.skipped.push(r);
        }
    }
    out.dirs += subdirs.len() as u64;
    let parts: Vec<Mirrored> = subdirs
        .par_iter()
        .map(|(from, to, r, m, fixup)| {
            let part = mirror_dir(from, to, r, ctx)?;
            if *fixup {
                std::fs::set_permissions(to, std::fs::Permissions::from_mode(m.mode() & 0o7777))
                    .map_err(|err| Error::io("setting the mode of", to, err))?;
            }
            if ctx.root_user {
                std::os::unix::fs::lchown(to, Some(m.uid()), Some(m.gid()))
                    .map_err(|err| Error::io("setting the owner of", to, err))?;
            }
            Ok(part)
        })
        .collect::<Result<_>>()?;
    for p in parts {
        out.merge(p);
    }
    Ok(out)
}

enum CopyError {
    Vanished,
    Io(&'static str, std::path::PathBuf, io::Error),
}

/// Copies one file: new target (never through a symlink), a reflink when the file system
/// can, else `copy_file_range`; then the source's mode, owner (as root) and times.
/// Returns the size and whether it was cloned.
fn copy_file(
    from: &Path,
    to: &Path,
    root_user: bool,
) -> std::result::Result<(u64, bool), CopyError> {
    let src = match OpenOptions::new()
        .read(true)
        .custom_flags(libc_flags::NOFOLLOW_NONBLOCK)
        .open(from)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(CopyError::Vanished),
        Err(e) => return Err(CopyError::Io("opening", from.to_path_buf(), e)),
    };
    let m = src
        .metadata()
        .map_err(|e| CopyError::Io("reading", from.to_path_buf(), e))?;
    if !m.is_file() {
        return Err(CopyError::Io(
            "copying",
            from.to_path_buf(),
            io::Error::other("not a regular file"),
        ));
    }
    let mut dst = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc_flags::NOFOLLOW)
        .open(to)
        .map_err(|e| CopyError::Io("creating", to.to_path_buf(), e))?;
    let cloned = rustix::fs::ioctl_ficlone(&dst, &src).is_ok();
    let size = if cloned {
        m.len()
    } else {
        let mut s: &File = &src;
        io::copy(&mut s, &mut dst).map_err(|e| CopyError::Io("copying to", to.to_path_buf(), e))?
    };
    let io = |op| move |e| CopyError::Io(op, to.to_path_buf(), e);
    if root_user {
        std::os::unix::fs::fchown(&dst, Some(m.uid()), Some(m.gid()))
            .map_err(io("setting the owner of"))?;
    }
    dst.set_permissions(std::fs::Permissions::from_mode(m.mode() & 0o7777))
        .map_err(io("setting the mode of"))?;
    if let Ok(mtime) = m.modified() {
        let mut times = std::fs::FileTimes::new().set_modified(mtime);
        if let Ok(atime) = m.accessed() {
            times = times.set_accessed(atime);
        }
        dst.set_times(times).map_err(io("setting the times of"))?;
    }
    Ok((size, cloned))
}

/// `open` flags of this module.
mod libc_flags {
    /// Never follow a symlink at the last component.
    pub const NOFOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;
    /// And never block on a FIFO.
    pub const NOFOLLOW_NONBLOCK: i32 =
        (rustix::fs::OFlags::NOFOLLOW.bits() | rustix::fs::OFlags::NONBLOCK.bits()) as i32;
}

/// The files of `files` as a map from path to size.
pub fn by_path(files: &[FileInfo]) -> HashMap<String, u64> {
    files.iter().map(|f| (f.rel.clone(), f.size)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut v: Vec<FileInfo>) -> Vec<FileInfo> {
        v.sort_by(|a, b| a.rel.cmp(&b.rel));
        v
    }

    #[test]
    fn mirror_links_known_blobs_and_copies_the_rest() {
        let d = tempfile::tempdir().expect("tempdir");
        let src = d.path().join("src");
        std::fs::create_dir_all(src.join("0x01")).expect("mkdir");
        std::fs::create_dir_all(src.join("tmp")).expect("mkdir");
        std::fs::write(src.join(".layout"), b"lawn\n").expect("write");
        std::fs::write(src.join("0x01/0x03.blob"), b"old blob").expect("write");
        std::fs::write(src.join("tmp/0x07.blob"), b"uncommitted").expect("write");
        std::fs::write(src.join("0x01/0x05.blob"), b"new blob!").expect("write");
        std::fs::set_permissions(src.join("0x01"), std::fs::Permissions::from_mode(0o750))
            .expect("chmod");
        let stop = Stop::none();
        let first = d.path().join("first");
        std::fs::create_dir(&first).expect("mkdir");
        let m1 = mirror(&src, &first, Source::Copy, &stop).expect("mirror");
        assert_eq!((m1.copied, m1.linked, m1.dirs), (4, 0, 2));
        // The second mirror links what the first holds and copies the rest.
        std::fs::remove_file(first.join("0x01/0x05.blob")).expect("rm");
        let files = by_path(&m1.files);
        let second = d.path().join("second");
        std::fs::create_dir(&second).expect("mkdir");
        let m2 = mirror(
            &src,
            &second,
            Source::LinkFrom {
                root: &first,
                files: &files,
                layout: Layout::Lawn,
            },
            &stop,
        )
        .expect("mirror");
        // .layout and tmp/ are copied, never linked.
        assert_eq!((m2.copied, m2.linked), (3, 1));
        let ino = |p: &Path| std::fs::metadata(p).expect("meta").ino();
        assert_eq!(
            ino(&first.join("0x01/0x03.blob")),
            ino(&second.join("0x01/0x03.blob"))
        );
        assert_ne!(
            ino(&src.join("0x01/0x05.blob")),
            ino(&second.join("0x01/0x05.blob"))
        );
        assert_eq!(
            std::fs::read(second.join("0x01/0x05.blob")).expect("read"),
            b"new blob!"
        );
        let mode = std::fs::metadata(second.join("0x01")).expect("meta").mode() & 0o777;
        assert_eq!(mode, 0o750);
        let w = walk(&second, &stop).expect("walk");
        assert_eq!(sorted(w.files), sorted(m2.files));
        assert_eq!(w.dirs, 2);
    }
}
