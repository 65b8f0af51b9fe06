//! Writing a generated database to disk at the disk's speed: the Data.fs through a writer
//! thread (generation and writing overlap), blob files in ZODB's bushy layout.
//!
//! Nothing appears under the final names until everything is written and synced: the
//! Data.fs is a [`zfs_files::Output`] (a private temporary beside it, fsynced and renamed),
//! the blob directory is built under a temporary name, synced and renamed.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use zfs_files::{Output, OutputSpec};
use zfs_format::{Progress, Tid};

use super::{generate, Config, Sink, Summary};

/// Bytes handed to the writer thread at once.
const PIECE: usize = 8 << 20;

/// Creates a new file inside the private temporary blob directory: never an existing file,
/// never through a symlink (`O_CREAT | O_EXCL`). Blob files are not fsynced one by one: the
/// whole directory is synced once ([`sync_filesystem`]) before it is renamed into place.
fn create_new(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// A path beside `path` for its temporary twin.
fn temp_twin(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".zfs-gen-tmp");
    path.with_file_name(name)
}

/// ZODB's `tid_repr`/`oid_repr`: `0x` and the hex digits without leading zeros, padded to
/// an even number.
fn id_repr(v: u64) -> String {
    let s = format!("{v:x}");
    if s.len() % 2 == 1 {
        format!("0x0{s}")
    } else {
        format!("0x{s}")
    }
}

/// The path of a blob file in ZODB's bushy layout: one directory per oid byte
/// (`0x00/…/0x2a`), then `<tid_repr>.blob`.
pub fn bushy_blob_path(dir: &Path, oid: u64, tid: Tid) -> PathBuf {
    let mut p = dir.to_path_buf();
    for b in oid.to_be_bytes() {
        p.push(format!("0x{b:02x}"));
    }
    p.push(format!("{}.blob", id_repr(tid.as_u64())));
    p
}

enum Msg {
    Data(Vec<u8>),
    Blob(PathBuf, Vec<u8>),
}

/// A [`Sink`] that batches Data.fs bytes for the writer thread.
struct Channel {
    tx: SyncSender<Msg>,
    buf: Vec<u8>,
    blob_dir: Option<PathBuf>,
    /// Data.fs bytes still to drop before writing (see [`write_files_from`]).
    skip: u64,
}

impl Channel {
    fn send(&self, m: Msg) -> io::Result<()> {
        self.tx
            .send(m)
            .map_err(|_| io::Error::other("the writer thread stopped"))
    }
}

impl Sink for Channel {
    fn data(&mut self, bytes: &[u8]) -> io::Result<()> {
        let dropped = usize::try_from(self.skip).map_or(bytes.len(), |s| s.min(bytes.len()));
        self.skip -= dropped as u64;
        self.buf.extend_from_slice(&bytes[dropped..]);
        if self.buf.len() >= PIECE {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE * 2));
            self.send(Msg::Data(full))?;
        }
        Ok(())
    }
    fn blob(&mut self, oid: u64, tid: Tid, bytes: &[u8]) -> io::Result<()> {
        match &self.blob_dir {
            Some(dir) => self.send(Msg::Blob(bushy_blob_path(dir, oid, tid), bytes.to_vec())),
            None => Ok(()),
        }
    }
}

/// The writer thread's loop.
fn write_all(mut data: Output, rx: Receiver<Msg>) -> io::Result<Output> {
    for m in rx {
        match m {
            Msg::Data(b) => data.write_all(&b)?,
            Msg::Blob(path, b) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                create_new(&path)?.write_all(&b)?;
            }
        }
    }
    Ok(data)
}

/// Flushes every file system write of the blob directory at once (one `syncfs` instead
/// of an fsync per blob file).
fn sync_filesystem(dir: &Path) -> io::Result<()> {
    let f = File::open(dir)?;
    // SAFETY: `syncfs` takes a file descriptor we own for the duration of the call and
    // touches no memory of ours.
    #[allow(unsafe_code)]
    let r = unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Generates a database into the new file `out` (and its blob files into the new
/// directory `blobs`, bushy layout). Neither may exist yet.
pub fn write_files(
    config: &Config,
    out: &Path,
    blobs: Option<&Path>,
    progress: &dyn Progress,
) -> io::Result<Summary> {
    write_files_from(config, out, blobs, 0, progress)
}

/// [`write_files`], writing to `out` only the Data.fs bytes from position `from` on: what
/// a database generated with a smaller size limit (and the same seed and settings) would
/// gain, since generation does not depend on the limit until it stops. `cat` it onto that
/// file to let it grow, as a live database does.
pub fn write_files_from(
    config: &Config,
    out: &Path,
    blobs: Option<&Path>,
    from: u64,
    progress: &dyn Progress,
) -> io::Result<Summary> {
    for p in std::iter::once(out).chain(blobs) {
        if p.symlink_metadata().is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("'{}' exists", p.display()),
            ));
        }
    }
    let data = OutputSpec::new(out)
        .replace(false)
        .create()
        .map_err(io::Error::other)?;
    let blob_tmp = blobs.map(temp_twin);
    if let Some(dir) = &blob_tmp {
        std::fs::create_dir(dir)?;
        create_new(&dir.join(".layout"))?.write_all(b"bushy")?;
    }
    let mut config = config.clone();
    config.blob_files = blob_tmp.is_some();
    let (tx, rx) = sync_channel::<Msg>(4);
    let result = std::thread::scope(|s| {
        let writer = s.spawn(move || write_all(data, rx));
        let mut sink = Channel {
            tx,
            buf: Vec::with_capacity(PIECE * 2),
            blob_dir: blob_tmp.clone(),
            skip: from,
        };
        let summary = generate(&config, &mut sink, progress).and_then(|summary| {
            let rest = std::mem::take(&mut sink.buf);
            sink.send(Msg::Data(rest))?;
            Ok(summary)
        });
        drop(sink);
        let file = writer.join().expect("the writer thread does not panic");
        // The writer's error (disk full) explains a closed channel: it wins.
        let file = file?;
        Ok::<_, io::Error>((summary?, file))
    });
    let (summary, data) = match result {
        Ok(s) => s,
        Err(e) => {
            if let Some(dir) = &blob_tmp {
                let _ = std::fs::remove_dir_all(dir);
            }
            return Err(e);
        }
    };
    if let (Some(dir), Some(done)) = (&blob_tmp, blobs) {
        sync_filesystem(dir)?;
        std::fs::rename(dir, done)?;
        zfs_files::sync_dir(&zfs_files::parent_dir(done))?;
    }
    data.commit().map_err(io::Error::other)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_paths_are_bushy() {
        let p = bushy_blob_path(Path::new("b"), 0x1a, Tid::from_u64(0x039d_bea1_9345_f8bb));
        assert_eq!(
            p,
            Path::new("b/0x00/0x00/0x00/0x00/0x00/0x00/0x00/0x1a/0x039dbea19345f8bb.blob")
        );
        assert_eq!(id_repr(0x0abc), "0x0abc");
        assert_eq!(id_repr(0x1abc), "0x1abc");
    }

    #[test]
    fn refuses_existing_outputs_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("Data.fs");
        std::fs::write(&out, b"FS30").expect("write");
        let cfg = Config::default();
        let e = write_files(&cfg, &out, None, &zfs_format::NoProgress).expect_err("exists");
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&out).expect("read"), b"FS30");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
    }

    #[test]
    fn writes_the_same_bytes_as_in_memory_and_the_blob_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("Data.fs");
        let blobs = dir.path().join("blobs");
        let cfg = Config {
            seed: 3,
            size: Some(300_000),
            ..Config::default()
        };
        let s = write_files(&cfg, &out, Some(&blobs), &zfs_format::NoProgress).expect("written");
        let mut mem = Vec::new();
        let s2 = generate(&cfg, &mut mem, &zfs_format::NoProgress).expect("generated");
        assert_eq!(std::fs::read(&out).expect("read"), mem);
        assert_eq!(s, s2);
        assert_eq!(
            std::fs::read(blobs.join(".layout")).expect("layout"),
            b"bushy"
        );
        let files = walk(&blobs)
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "blob"))
            .count();
        assert!(
            s.blob_records > 0 && files as u64 == s.blob_records,
            "{files} files, {s:?}"
        );
        assert!(!temp_twin(&blobs).exists());
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 2);
    }

    #[test]
    fn a_continuation_grows_a_smaller_file_into_the_larger_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let small = Config {
            seed: 9,
            size: Some(200_000),
            ..Config::default()
        };
        let large = Config {
            size: Some(500_000),
            ..small.clone()
        };
        let mut a = Vec::new();
        let sa = generate(&small, &mut a, &zfs_format::NoProgress).expect("small");
        let mut b = Vec::new();
        generate(&large, &mut b, &zfs_format::NoProgress).expect("large");
        let tail = dir.path().join("tail");
        write_files_from(&large, &tail, None, sa.bytes, &zfs_format::NoProgress).expect("tail");
        a.extend(std::fs::read(&tail).expect("read"));
        assert!(a == b);
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
