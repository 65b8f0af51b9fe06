//! New files: written privately beside their target, then renamed over it.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::identity::FileId;
use crate::input::kind_of;
use crate::paths::{parent_dir, sync_dir};
use crate::temp::{remove_stale_temps, temp_name};

/// Where a new file goes and what it must never be.
#[derive(Clone, Debug)]
pub struct OutputSpec {
    target: PathBuf,
    mode: Option<u32>,
    replace: bool,
    inputs: Vec<(PathBuf, FileId)>,
}

impl OutputSpec {
    /// A file at `target`, replacing what is there (a regular file or a symlink, which is
    /// replaced itself, never followed); mode `0666 & !umask` unless [`OutputSpec::mode`]
    /// says otherwise.
    pub fn new(target: impl Into<PathBuf>) -> Self {
        OutputSpec {
            target: target.into(),
            mode: None,
            replace: true,
            inputs: Vec::new(),
        }
    }

    /// The permission bits the file gets once complete (it is 0600 until then).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode & 0o777);
        self
    }

    /// The permission bits of the file at `source` (a copy is never more open than its
    /// source).
    pub fn mode_from(self, source: &Path) -> Result<Self> {
        let m = crate::mode::mode_of(source)?;
        Ok(self.mode(m))
    }

    /// Whether an existing target may be replaced (default: yes). When not, even a
    /// dangling symlink at the target counts as existing.
    pub fn replace(mut self, yes: bool) -> Self {
        self.replace = yes;
        self
    }

    /// The output must not be `input` (an input of the command), by any name.
    pub fn not_input(mut self, input: &Path) -> Result<Self> {
        if let Some(id) =
            FileId::of_path(input).map_err(|e| Error::io("reading the metadata of", input, e))?
        {
            self.inputs.push((input.to_path_buf(), id));
        }
        Ok(self)
    }

    /// The output must not be the open file `input` (at `path`, for messages).
    pub fn not_input_file(mut self, path: &Path, input: &File) -> Result<Self> {
        let id =
            FileId::of_file(input).map_err(|e| Error::io("reading the metadata of", path, e))?;
        self.inputs.push((path.to_path_buf(), id));
        Ok(self)
    }

    /// The target path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Checks the target as [`OutputSpec::create`] and the final rename will: refuses an
    /// input, a directory, FIFO or device, and an existing file when replacing is off.
    pub fn check(&self) -> Result<()> {
        let meta = match std::fs::symlink_metadata(&self.target) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("reading the metadata of", &self.target, e)),
        };
        let t = meta.file_type();
        if !t.is_file() && !t.is_symlink() {
            return Err(Error::NotRegular {
                path: self.target.clone(),
                kind: kind_of(&t),
            });
        }
        if let Some(id) = FileId::of_path(&self.target)
            .map_err(|e| Error::io("reading the metadata of", &self.target, e))?
        {
            if let Some((input, _)) = self.inputs.iter().find(|(_, i)| *i == id) {
                return Err(Error::SameFile {
                    output: self.target.clone(),
                    input: input.clone(),
                });
            }
        }
        if !self.replace {
            return Err(Error::Exists {
                path: self.target.clone(),
            });
        }
        Ok(())
    }

    /// Checks the target, removes temporaries that dead runs left for it, and creates a new
    /// private temporary beside it.
    pub fn create(self) -> Result<Output> {
        self.check()?;
        let dir = parent_dir(&self.target);
        let name = self
            .target
            .file_name()
            .ok_or_else(|| Error::NotRegular {
                path: self.target.clone(),
                kind: "a directory",
            })?
            .to_os_string();
        remove_stale_temps(&dir, &name);
        let (tmp, file) = create_new_in(&dir, &name)
            .map_err(|e| Error::io("creating a temporary file for", &self.target, e))?;
        Ok(Output {
            file: Some(file),
            tmp,
            spec: self,
            behind: None,
        })
    }
}

/// Creates `dir/.NAME.tmp-PID-N`, new, 0600, not through a symlink, locked by us.
fn create_new_in(dir: &Path, name: &OsStr) -> io::Result<(PathBuf, File)> {
    loop {
        let tmp = dir.join(temp_name(name));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => {
                // Marks the temporary as being written: a later run leaves it alone.
                f.try_lock().map_err(|e| match e {
                    std::fs::TryLockError::Error(e) => e,
                    std::fs::TryLockError::WouldBlock => io::Error::from(io::ErrorKind::WouldBlock),
                })?;
                return Ok((tmp, f));
            }
            // A name left by an earlier process with our pid: take the next one.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A file being written; invisible at its target until [`Output::commit`], removed if
/// dropped before.
#[derive(Debug)]
pub struct Output {
    file: Option<File>,
    tmp: PathBuf,
    spec: OutputSpec,
    /// Where writing behind stands, when asked for ([`Output::write_behind`]).
    behind: Option<Behind>,
}

/// Bytes written between two starts of write-back.
const BEHIND_STEP: u64 = 8 << 20;
/// Bytes written out that stay in the page cache behind the last written.
const BEHIND_KEEP: u64 = 32 << 20;

/// How far the bytes appended to an output were handed to the disk and dropped.
#[derive(Debug)]
struct Behind {
    /// Bytes appended by [`Write::write`].
    appended: u64,
    /// Write-back was started for everything before this.
    started: u64,
    /// Everything before this was written out and dropped from the page cache.
    dropped: u64,
    /// Whether written pages are dropped: only once the file is larger than a quarter of
    /// the memory this process may use (a smaller one stays cached, as any write leaves it).
    drop_after: u64,
    /// A write-back failed: the error went to the write that met it, and the final fsync
    /// may not see it again, so the file is never committed.
    failed: bool,
}

impl Output {
    /// Hands what is appended to the disk as it comes, so that the disk writes while the
    /// rest is produced and the final fsync has little left to do; once the file outgrows
    /// a quarter of the memory this process may use, what was written out leaves the page
    /// cache (a memory limit counts the cache, and dirty pages fill it until the disk
    /// catches up). For files written in order with [`Write`]; a write-back error is
    /// returned by the write that meets it.
    pub fn write_behind(mut self) -> Self {
        self.behind = Some(Behind {
            appended: 0,
            started: 0,
            dropped: 0,
            drop_after: crate::memory_limit() / 4,
            failed: false,
        });
        self
    }

    /// The open temporary (for positioned reads and writes, `try_clone`, `set_len`).
    pub fn file(&self) -> &File {
        self.file
            .as_ref()
            .expect("an Output holds its file until commit")
    }

    /// The temporary's path.
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Where the file goes.
    pub fn target(&self) -> &Path {
        &self.spec.target
    }

    /// An I/O error while writing this output, naming its target.
    pub fn write_error(&self, e: io::Error) -> Error {
        Error::io("writing", &self.spec.target, e)
    }

    /// Makes the file durable and visible: fsync, final mode, the target checked again,
    /// rename over it, fsync of the directory.
    pub fn commit(mut self) -> Result<()> {
        let target = self.spec.target.clone();
        let file = self
            .file
            .as_ref()
            .expect("an Output holds its file until commit");
        file.sync_all()
            .map_err(|e| Error::io("writing", &target, e))?;
        if self.behind.as_ref().is_some_and(|b| b.failed) {
            let e = io::Error::other("an earlier write-back of the file failed");
            return Err(Error::io("writing", &target, e));
        }
        let mode = self
            .spec
            .mode
            .unwrap_or_else(|| 0o666 & !crate::mode::current_umask());
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("setting the mode of", &target, e))?;
        self.spec.check()?;
        if self.spec.replace {
            std::fs::rename(&self.tmp, &target)
                .map_err(|e| Error::io("renaming to", &target, e))?;
        } else {
            // A link fails if anything appeared at the target meanwhile.
            std::fs::hard_link(&self.tmp, &target).map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => Error::Exists {
                    path: target.clone(),
                },
                _ => Error::io("creating", &target, e),
            })?;
            let _ = std::fs::remove_file(&self.tmp);
        }
        self.file = None;
        sync_dir(&parent_dir(&target))
            .map_err(|e| Error::io("syncing the directory of", &target, e))?;
        Ok(())
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut file = self
            .file
            .as_ref()
            .expect("an Output holds its file until commit");
        let n = file.write(buf)?;
        if let Some(b) = &mut self.behind {
            b.appended += n as u64;
            if let Err(e) = b.advance(file) {
                b.failed = true;
                return Err(e);
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Behind {
    /// Starts write-back of each step appended, and drops what is [`BEHIND_KEEP`] behind
    /// once written out.
    fn advance(&mut self, file: &File) -> io::Result<()> {
        if self.appended - self.started < BEHIND_STEP {
            return Ok(());
        }
        sync_range(
            file,
            self.started,
            self.appended,
            libc::SYNC_FILE_RANGE_WRITE,
        )?;
        self.started = self.appended;
        if self.appended <= self.drop_after {
            return Ok(());
        }
        let end = self.started.saturating_sub(BEHIND_KEEP);
        if end >= self.dropped + BEHIND_STEP {
            // Waits for the write-back of what is to be dropped (started a while ago).
            let all = libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER;
            sync_range(file, self.dropped, end, all)?;
            crate::advice::fadvise(
                file,
                self.dropped as usize,
                (end - self.dropped) as usize,
                libc::POSIX_FADV_DONTNEED,
            );
            self.dropped = end;
        }
        Ok(())
    }
}

/// `sync_file_range` on `start..end` of `file` with `flags`; a file system that does not
/// support it is not an error.
fn sync_range(file: &File, start: u64, end: u64, flags: libc::c_uint) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(start), Ok(len)) = (
        libc::off64_t::try_from(start),
        libc::off64_t::try_from(end.saturating_sub(start)),
    ) else {
        return Ok(());
    };
    // SAFETY: sync_file_range takes a descriptor we own for the call and touches no memory
    // of ours; it only starts or waits for the write-back of the file's dirty pages.
    #[allow(unsafe_code)]
    let r = unsafe { libc::sync_file_range(file.as_raw_fd(), start, len, flags) };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        // A file system that does not do it: the final fsync writes everything.
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP | libc::ESPIPE) => Ok(()),
        _ => Err(e),
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes a whole file through a buffer: `write` fills it, then it is committed.
pub fn write_file(
    spec: OutputSpec,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    filled(spec, write)?.commit()
}

/// Writes a whole file through a buffer into a new temporary, fsynced (a full disk fails
/// here), and returns it uncommitted: for a caller that renames several files into place
/// only once all are written.
pub fn write_synced(
    spec: OutputSpec,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<Output> {
    let target = spec.target().to_path_buf();
    let out = filled(spec, write)?;
    out.file()
        .sync_all()
        .map_err(|e| Error::io("writing", &target, e))?;
    Ok(out)
}

/// A new temporary for `spec`, filled by `write` through a buffer and flushed.
fn filled(
    spec: OutputSpec,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<Output> {
    let target = spec.target().to_path_buf();
    let failed = |e| Error::io("writing", &target, e);
    let out = spec.create()?;
    let mut w = io::BufWriter::with_capacity(1 << 20, out);
    write(&mut w).and_then(|()| w.flush()).map_err(failed)?;
    // The buffer is empty after a successful flush, so this cannot fail.
    w.into_inner().map_err(|e| failed(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn entries(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Written behind: the file holds what was written, in odd sizes across many steps;
    /// the write-back started as it went; once past the size that starts the dropping,
    /// what was written out long before is no longer cached, the last bytes are.
    #[test]
    fn written_behind_the_bytes_are_the_same_and_the_cache_is_left_behind() {
        // On the repository's file system, not a tmpfs: its pages can leave the cache.
        let d = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("tempdir");
        let t = d.path().join("out.fs");
        let mut o = OutputSpec::new(&t).create().expect("create").write_behind();
        o.behind.as_mut().expect("behind").drop_after = 2 * BEHIND_STEP;
        let mut want = Vec::new();
        let mut i = 0u32;
        while want.len() < 9 * BEHIND_STEP as usize {
            let piece: Vec<u8> = (0..100_003 + i % 7).map(|j| (i + j) as u8).collect();
            o.write_all(&piece).expect("write");
            want.extend_from_slice(&piece);
            i += 1;
        }
        let b = o.behind.as_ref().expect("behind");
        assert_eq!(b.appended, want.len() as u64);
        assert!(b.appended - b.started < BEHIND_STEP, "{b:?}");
        assert!(b.dropped >= b.started - BEHIND_KEEP - BEHIND_STEP, "{b:?}");
        let dropped = b.dropped as usize;
        let map = crate::Map::new(File::open(o.temp_path()).expect("open"), &t).expect("map");
        let early = crate::cached_pages(&map[..dropped]).expect("mincore");
        assert!(
            early < dropped / 4096 / 10,
            "{early} pages of the dropped part cached"
        );
        let last_page = (map.len() - 1) / 4096 * 4096;
        let tail = crate::cached_pages(&map[last_page..]).expect("mincore");
        assert_eq!(tail, 1, "the last page written is cached");
        o.commit().expect("commit");
        assert!(
            std::fs::read(&t).expect("read") == want,
            "the bytes written"
        );
    }

    /// A write-back that failed (its error returned by the write that met it) is never
    /// committed, whatever the final fsync says; nothing stays.
    #[test]
    fn a_failed_write_back_is_never_committed() {
        let d = tempfile::tempdir().expect("tempdir");
        let t = d.path().join("out.fs");
        let mut o = OutputSpec::new(&t).create().expect("create").write_behind();
        o.write_all(b"data").expect("write");
        o.behind.as_mut().expect("behind").failed = true;
        let e = o.commit().expect_err("committed");
        let cause = std::error::Error::source(&e).map(|c| c.to_string());
        assert!(cause.is_some_and(|c| c.contains("write-back")), "{e}");
        assert!(entries(d.path()).is_empty(), "{:?}", entries(d.path()));
    }

    #[test]
    fn nothing_appears_until_commit_and_nothing_stays_on_drop() {
        let d = tempfile::tempdir().expect("tempdir");
        let t = d.path().join("out.fs");
        let mut o = OutputSpec::new(&t).mode(0o640).create().expect("create");
        o.write_all(b"hello").expect("write");
        assert!(!t.exists());
        let tmp = o.temp_path().to_path_buf();
        assert_eq!(std::fs::metadata(&tmp).expect("tmp").mode() & 0o777, 0o600);
        o.commit().expect("commit");
        assert_eq!(std::fs::read(&t).expect("read"), b"hello");
        assert_eq!(std::fs::metadata(&t).expect("meta").mode() & 0o777, 0o640);
        assert_eq!(entries(d.path()), ["out.fs"]);
        let mut o = OutputSpec::new(&t).create().expect("create");
        o.write_all(b"partial").expect("write");
        drop(o);
        assert_eq!(std::fs::read(&t).expect("read"), b"hello");
        assert_eq!(entries(d.path()), ["out.fs"]);
    }

    #[test]
    fn inputs_are_never_outputs() {
        let d = tempfile::tempdir().expect("tempdir");
        let input = d.path().join("Data.fs");
        std::fs::write(&input, b"FS30").expect("write");
        let hard = d.path().join("hard.fs");
        std::fs::hard_link(&input, &hard).expect("link");
        let sym = d.path().join("sym.fs");
        std::os::unix::fs::symlink(&input, &sym).expect("symlink");
        for t in [&input, &hard, &sym] {
            let e = OutputSpec::new(t)
                .not_input(&input)
                .expect("stat")
                .create()
                .expect_err("same file");
            assert!(matches!(e, Error::SameFile { .. }), "{e}");
        }
        assert_eq!(std::fs::read(&input).expect("read"), b"FS30");
    }

    #[test]
    fn symlinks_are_replaced_not_followed_and_specials_refused() {
        let d = tempfile::tempdir().expect("tempdir");
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"keep").expect("write");
        let t = d.path().join("out");
        std::os::unix::fs::symlink(&victim, &t).expect("symlink");
        write_file(OutputSpec::new(&t), |w| w.write_all(b"new")).expect("write");
        assert_eq!(std::fs::read(&victim).expect("read"), b"keep");
        assert!(std::fs::symlink_metadata(&t).expect("meta").is_file());
        let e = OutputSpec::new(d.path()).create().expect_err("dir");
        assert!(matches!(e, Error::NotRegular { .. }), "{e}");
        let e = OutputSpec::new("/dev/null").create().expect_err("device");
        assert!(e.to_string().contains("character device"), "{e}");
    }

    #[test]
    fn no_replace_refuses_even_a_dangling_symlink() {
        let d = tempfile::tempdir().expect("tempdir");
        let t = d.path().join("out");
        std::os::unix::fs::symlink(d.path().join("elsewhere"), &t).expect("symlink");
        let e = OutputSpec::new(&t)
            .replace(false)
            .create()
            .expect_err("exists");
        assert!(matches!(e, Error::Exists { .. }), "{e}");
        assert!(!d.path().join("elsewhere").exists());
        // Something appearing between create and commit is not overwritten either.
        let t2 = d.path().join("out2");
        let mut o = OutputSpec::new(&t2)
            .replace(false)
            .create()
            .expect("create");
        o.write_all(b"ours").expect("write");
        std::fs::write(&t2, b"theirs").expect("write");
        assert!(o.commit().is_err());
        assert_eq!(std::fs::read(&t2).expect("read"), b"theirs");
        assert_eq!(entries(d.path()), ["out", "out2"]);
    }

    #[test]
    fn a_planted_temporary_name_is_not_used() {
        let d = tempfile::tempdir().expect("tempdir");
        let t = d.path().join("out");
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"keep").expect("write");
        // Plant symlinks at the next few names this process could pick.
        for n in 0..64 {
            let p = d
                .path()
                .join(format!(".out.tmp-{}-{n}", std::process::id()));
            let _ = std::os::unix::fs::symlink(&victim, p);
        }
        write_file(OutputSpec::new(&t), |w| w.write_all(b"new")).expect("write");
        assert_eq!(std::fs::read(&victim).expect("read"), b"keep");
        assert_eq!(std::fs::read(&t).expect("read"), b"new");
    }
}
