//! Reading chain files and source ranges: uncompressed chunks of a data file, and MD5s of
//! source ranges that never touch mapped bytes a live writer may truncate.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;

use crate::error::{Error, Result};
use crate::gz::gunzip;
use crate::md5::Md5;
use crate::repo::ChainFile;
use crate::Ticker;

/// Bytes per read.
pub(crate) const CHUNK: usize = 1 << 20;

/// Bytes per kernel copy (`copy_range`) between checks of the interrupt flag, and per
/// parallel copy job.
pub(crate) const COPY_PIECE: u64 = 64 << 20;

/// Calls `sink` with the uncompressed bytes of a chain file, in order.
pub(crate) fn read_uncompressed(
    path: &str,
    gzip: bool,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    // Regular files only, opened without blocking: a FIFO planted in a repository cannot
    // hang a run.
    let f = zfs_files::open_input(std::path::Path::new(path))?;
    if gzip {
        return gunzip_pipelined(f, path, sink);
    }
    let mut f = f;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, e)),
        };
        sink(&buf[..n])?;
    }
}

/// Decompresses on a second thread while `sink` (hashing, writing) runs on this one.
fn gunzip_pipelined(f: File, path: &str, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
    std::thread::scope(|s| {
        let decoder = s.spawn(move || {
            let mut pending: Vec<u8> = Vec::with_capacity(CHUNK);
            let r = gunzip(f, path, &mut |b| {
                pending.extend_from_slice(b);
                if pending.len() >= CHUNK {
                    let full = std::mem::replace(&mut pending, Vec::with_capacity(CHUNK));
                    // A closed channel means the consumer failed; its error wins.
                    tx.send(full)
                        .map_err(|_| Error::BrokenChain("stopped".into()))?;
                }
                Ok(())
            });
            if r.is_ok() && !pending.is_empty() {
                let _ = tx.send(pending);
            }
            r
        });
        let mut sink_result = Ok(());
        for chunk in rx {
            if sink_result.is_ok() {
                sink_result = sink(&chunk);
            }
            if sink_result.is_err() {
                break;
            }
        }
        let decode_result = decoder.join().expect("the decoding thread does not panic");
        sink_result.and(decode_result)
    })
}

/// Size and MD5 of the concatenated uncompressed chain.
pub(crate) fn chain_md5(chain: &[ChainFile], ticker: &Ticker<'_>) -> Result<(u64, String)> {
    let mut h = Md5::new();
    let mut n = 0u64;
    for c in chain {
        read_uncompressed(&c.path, c.kind.is_gzip(), &mut |b| {
            h.update(b);
            n += b.len() as u64;
            ticker.advance(b.len() as u64)
        })?;
    }
    Ok((n, h.hex()))
}

/// The bytes of a source file as found at the start of a run.
pub(crate) struct SourceView<'a> {
    /// The mapping of the file.
    pub map: &'a [u8],
    /// A handle on the same file.
    pub file: &'a File,
    /// Its path, for messages.
    pub path: &'a str,
    /// The end of the committed data: mapped bytes below it are never truncated by a live
    /// storage; bytes above it are read with `pread`.
    pub safe_end: u64,
}

impl SourceView<'_> {
    /// True when the source holds exactly `chunk` at `offset` (false past its end).
    pub(crate) fn matches(&self, offset: u64, chunk: &[u8], buf: &mut Vec<u8>) -> Result<bool> {
        let end = offset + chunk.len() as u64;
        if end > self.map.len() as u64 {
            return Ok(false);
        }
        let mapped = end.min(self.safe_end).max(offset);
        let split = (mapped - offset) as usize;
        if self.map[offset as usize..mapped as usize] != chunk[..split] {
            return Ok(false);
        }
        let rest = &chunk[split..];
        if rest.is_empty() {
            return Ok(true);
        }
        buf.resize(rest.len(), 0);
        match self.file.read_exact_at(buf, mapped) {
            Ok(()) => {}
            // Truncated since the run started: it no longer holds these bytes.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(Error::io(self.path, e)),
        }
        Ok(buf[..] == *rest)
    }

    /// Feeds bytes `[start, end)` to `h` (fewer if the file is shorter); returns the count.
    pub(crate) fn hash(
        &self,
        h: &mut Md5,
        start: u64,
        end: u64,
        ticker: &Ticker<'_>,
    ) -> Result<u64> {
        let mut pos = start;
        let mapped_end = end.min(self.safe_end).min(self.map.len() as u64);
        // Read ahead of the hashing, pages handed back behind it: a source larger than
        // memory streams through.
        let mut stream = zfs_files::Stream::new(self.map, pos, 64 << 20);
        while pos < mapped_end {
            let stop = (pos + CHUNK as u64).min(mapped_end);
            h.update(&self.map[pos as usize..stop as usize]);
            stream.advance(self.map, stop);
            ticker.advance(stop - pos)?;
            pos = stop;
        }
        stream.finish(self.map);
        let mut buf = vec![0u8; CHUNK];
        while pos < end {
            let want = ((end - pos) as usize).min(CHUNK);
            let n = match self.file.read_at(&mut buf[..want], pos) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(self.path, e)),
            };
            h.update(&buf[..n]);
            ticker.advance(n as u64)?;
            pos += n as u64;
        }
        Ok(pos - start)
    }
}

/// Runs `work`, which writes `file`, while another thread keeps calling `fdatasync` on it,
/// so the disk writes the first bytes while the last ones are still being produced and
/// the final `fsync` has little left to wait for. (`sync_file_range` would do it with less
/// waiting but needs `unsafe` here; `fdatasync` on a growing file is correct, only coarser.)
/// A write-back error is reported to one `fsync` of a file handle only, so the flusher's
/// errors are returned here (as errors of `path`), not left for the caller's last `fsync`.
pub(crate) fn flushing_behind<T>(
    file: &File,
    path: &str,
    work: impl FnOnce() -> Result<T>,
) -> Result<T> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let flusher = s.spawn(|| -> std::io::Result<()> {
            while !done.load(Ordering::Acquire) {
                let t = std::time::Instant::now();
                file.sync_data()?;
                if t.elapsed() < std::time::Duration::from_millis(20) {
                    std::thread::park_timeout(std::time::Duration::from_millis(20));
                }
            }
            Ok(())
        });
        let r = work();
        done.store(true, Ordering::Release);
        flusher.thread().unpark();
        let flushed = flusher.join().expect("the flushing thread does not panic");
        let r = r?;
        flushed.map_err(|e| Error::io(path, e))?;
        Ok(r)
    })
}

/// Copies `len` bytes from `src` at `src_off` to `dst` at `dst_off` with `copy_file_range`
/// (the kernel copies, or shares blocks where the file system can), falling back to
/// `pread`/`pwrite` where it is not supported. Returns the bytes copied (fewer at EOF).
pub(crate) fn copy_range(
    src: &File,
    mut src_off: u64,
    dst: &File,
    mut dst_off: u64,
    len: u64,
) -> std::io::Result<u64> {
    let mut done = 0u64;
    while done < len {
        let want = usize::try_from(len - done)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        match rustix::fs::copy_file_range(src, Some(&mut src_off), dst, Some(&mut dst_off), want) {
            Ok(0) => return Ok(done),
            Ok(n) => done += n as u64,
            Err(rustix::io::Errno::INTR) => continue,
            Err(
                rustix::io::Errno::XDEV
                | rustix::io::Errno::INVAL
                | rustix::io::Errno::NOSYS
                | rustix::io::Errno::OPNOTSUPP
                | rustix::io::Errno::PERM,
            ) => return Ok(done + copy_by_reading(src, src_off, dst, dst_off, len - done)?),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}

fn copy_by_reading(
    src: &File,
    mut src_off: u64,
    dst: &File,
    mut dst_off: u64,
    len: u64,
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    while done < len {
        let want = usize::try_from(len - done).unwrap_or(CHUNK).min(CHUNK);
        let n = match src.read_at(&mut buf[..want], src_off) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        dst.write_all_at(&buf[..n], dst_off)?;
        src_off += n as u64;
        dst_off += n as u64;
        done += n as u64;
    }
    Ok(done)
}
