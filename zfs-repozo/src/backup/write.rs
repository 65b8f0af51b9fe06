//! Writing a backup: the data file (gzipped with `-z`) and its `.index` as private
//! temporaries, hashed as they are copied, then put in place with the `.dat` line in the
//! order that leaves a killed run restorable.

use std::io::{BufWriter, Write};
use std::path::Path;

use zfs_format::index_file::{open_index, write_index, IndexSource};

use crate::error::{Error, Result};
use crate::md5::Md5;
use crate::repo::{self, DatLine};
use crate::{Hooks, Ticker};

use super::{BackupOptions, LeftOut, Source};

/// A backup written but not yet in place: its data file and `.index` as private
/// temporaries (removed if this is dropped), with what its `.dat` line needs.
pub(super) struct Pending {
    data: zfs_files::Output,
    index: zfs_files::Output,
    /// The end of the copied range in the source.
    pub(super) pos: u64,
    /// Bytes of the data file on disk (compressed size for `-z`).
    pub(super) written: u64,
    /// MD5 of the copied (uncompressed) bytes.
    pub(super) md5: String,
    /// What lies after damage and is not copied.
    pub(super) left_out: Option<LeftOut>,
}

impl Pending {
    /// Puts a full backup in place: its `.dat`, its `.index`, then its data file. A run
    /// killed before the last rename leaves a `.dat` (and maybe an `.index`) that no data
    /// file goes with: both tools restore the repository as before, and the next backup
    /// removes them ([`Repository::remove_orphans`](crate::Repository::remove_orphans)). A failure takes back what was put in place.
    pub(super) fn commit_full(self, dat: &str, line: &DatLine, mode: u32) -> Result<()> {
        let index_path = self.index.target().to_path_buf();
        repo::write_atomically(dat, line.to_line().as_bytes(), mode)?;
        if let Err(e) = self.index.commit() {
            let _ = std::fs::remove_file(dat);
            return Err(e.into());
        }
        if let Err(e) = self.data.commit() {
            let _ = std::fs::remove_file(&index_path);
            let _ = std::fs::remove_file(dat);
            return Err(e.into());
        }
        Ok(())
    }

    /// Puts an incremental backup in place: its `.index`, its data file, then its `.dat`
    /// with the new line, prepared and fsynced before the first rename so that only a
    /// rename separates the data file from its line. A run killed in between leaves a
    /// data file that the next backup lists when it holds the source's bytes
    /// (`interrupted::complete_dat`). A failure takes back what was put in place.
    pub(super) fn commit_incremental(self, dat: &str, line: &DatLine, mode: u32) -> Result<()> {
        let index_path = self.index.target().to_path_buf();
        let data_path = self.data.target().to_path_buf();
        let dat = repo::dat_with_line(dat, line, mode)?;
        self.index.commit()?;
        if let Err(e) = self.data.commit() {
            let _ = std::fs::remove_file(&index_path);
            return Err(e.into());
        }
        if let Err(e) = dat.commit() {
            // Without its .dat line the new file is no backup: take it back.
            let _ = std::fs::remove_file(&data_path);
            let _ = std::fs::remove_file(&index_path);
            return Err(e.into());
        }
        Ok(())
    }
}

/// Writes the `.index` and the data file `[start, pos)` as temporaries beside their
/// names, with the source's mode; nothing is put in place.
pub(super) fn write_backup(
    opts: &BackupOptions,
    hooks: &Hooks<'_>,
    src: &Source,
    start: u64,
    dest: &str,
    index_path: &str,
) -> Result<Pending> {
    let source_index = format!("{}.index", src.path);
    let (scan, how) = open_index(&src.fs, Path::new(&source_index), hooks.progress)
        .map_err(|e| Error::source_format(&src.path, e))?;
    if how == IndexSource::Rejected {
        let abs = std::fs::canonicalize(&src.path).unwrap_or_else(|_| src.path.clone().into());
        (hooks.notice)(&format!("Ignoring index for {}", abs.display()));
    }
    let pos = scan.end.pos;
    let left_out = src
        .fs
        .next_complete_txn(pos, scan.end.last_complete_tid)
        .map(|next_transaction| LeftOut {
            at: pos,
            next_transaction,
            bytes: src.len().saturating_sub(pos),
        });
    if pos < start {
        return Err(Error::ShortCopy {
            path: src.path.clone(),
            got: pos,
            want: start,
        });
    }
    let spec = |path: &str| -> Result<zfs_files::OutputSpec> {
        Ok(zfs_files::OutputSpec::new(path)
            .mode(src.mode)
            .not_input_file(Path::new(&src.path), &src.file)?)
    };
    let (index_spec, data_spec) = (spec(index_path)?, spec(dest)?);
    hooks.log("writing index");
    let (index, data) = std::thread::scope(|s| {
        let index = s.spawn(|| write_index_file(index_spec, &scan.index, pos));
        if start == 0 {
            hooks.log(&format!("writing full backup: {pos} bytes to {dest}"));
        } else {
            hooks.log(&format!(
                "writing incremental: {} bytes to {dest}",
                pos - start
            ));
        }
        let data = copy_out(opts, hooks, src, start, pos, data_spec);
        (index.join().expect("the index thread does not panic"), data)
    });
    // A data error (an interruption among them) wins over an index error.
    let (data, written, md5) = data?;
    let index = index?;
    Ok(Pending {
        data,
        index,
        pos,
        written,
        md5,
        left_out,
    })
}

/// Writes the `.index` bytes of `index` at `pos` to a new temporary for `spec`, fsynced.
fn write_index_file(
    spec: zfs_files::OutputSpec,
    index: &zfs_format::index::Index,
    pos: u64,
) -> Result<zfs_files::Output> {
    let out = spec.create()?;
    let target = out.target().to_path_buf();
    let written = (|| {
        let mut w = BufWriter::with_capacity(1 << 20, out.file());
        write_index(&mut w, index, pos)?;
        w.flush()?;
        out.file().sync_all()
    })();
    written.map_err(|e| Error::io(&target, e))?;
    Ok(out)
}

/// A writer that fails once the run is interrupted (so that a long compression stops at
/// its next write).
struct StopWriter<'a, W> {
    inner: W,
    ticker: Ticker<'a>,
}

impl<W: Write> Write for StopWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.ticker.interrupted() {
            // Not `ErrorKind::Interrupted`: `write_all` would retry that.
            return Err(std::io::Error::other("interrupted"));
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The error of a kernel copy from the source to a repository file: what the output's file
/// system refused (no space, quota, size, read-only) names the repository file, the rest
/// the source.
fn copy_error(e: std::io::Error, src: &str, dest: &Path) -> Error {
    use rustix::io::Errno;
    let output_side = [Errno::NOSPC, Errno::DQUOT, Errno::FBIG, Errno::ROFS]
        .iter()
        .any(|x| e.raw_os_error() == Some(x.raw_os_error()));
    if output_side {
        Error::io(dest, e)
    } else {
        Error::io(src, e)
    }
}

/// Copies source `[start, end)` to a new temporary for `spec` (gzipped with `-z`), hashing
/// the bytes as they go, and fsyncs it. Returns it with its size on disk and the MD5.
fn copy_out(
    opts: &BackupOptions,
    hooks: &Hooks<'_>,
    src: &Source,
    start: u64,
    end: u64,
    spec: zfs_files::OutputSpec,
) -> Result<(zfs_files::Output, u64, String)> {
    let out = spec.create()?;
    let dest = out.target().to_path_buf();
    let file = out.file();
    let data = &src.fs.bytes()[start as usize..end as usize];
    hooks.progress.start(
        if opts.gzip { "compressing" } else { "copying" },
        end - start,
    );
    let (copied, md5) = std::thread::scope(|s| -> Result<(u64, String)> {
        if opts.gzip {
            let hasher = s.spawn(|| {
                let mut h = Md5::new();
                // Compression reads the same pages beside the hashing.
                let mut stream = src.fs.stream(start).keep_cached();
                let mut done = start;
                for c in data.chunks(crate::source::CHUNK) {
                    h.update(c);
                    done += c.len() as u64;
                    stream.advance(src.fs.bytes(), done);
                }
                stream.finish(src.fs.bytes());
                h.hex()
            });
            let ticker = hooks.ticker();
            let mut w = BufWriter::with_capacity(
                1 << 20,
                StopWriter {
                    inner: file,
                    ticker,
                },
            );
            crate::gz::gzip_parallel(data, opts.gzip_level, &mut w, hooks.progress)
                .and_then(|_| w.flush())
                .map_err(|e| match ticker.check() {
                    Err(stop) => stop,
                    Ok(()) => Error::io(&dest, e),
                })?;
            Ok((
                end - start,
                hasher.join().expect("the hashing thread does not panic"),
            ))
        } else {
            let ticker = hooks.ticker();
            let copier = s.spawn(move || -> std::io::Result<u64> {
                // The kernel copies, in pieces so that an interruption is seen soon.
                let mut done = 0u64;
                while done < end - start {
                    if ticker.interrupted() {
                        return Ok(done);
                    }
                    let want = crate::source::COPY_PIECE.min(end - start - done);
                    let n = crate::source::copy_range(&src.file, start + done, file, done, want)?;
                    done += n;
                    if n < want {
                        return Ok(done);
                    }
                }
                // Flush to disk while the main thread is still hashing.
                file.sync_data()?;
                Ok(done)
            });
            let mut h = Md5::new();
            // The kernel's copy reads the same pages beside the hashing: they stay cached
            // for it.
            let mut stream = src.fs.stream(start).keep_cached();
            let mut done = start;
            for c in data.chunks(crate::source::CHUNK) {
                h.update(c);
                done += c.len() as u64;
                stream.advance(src.fs.bytes(), done);
                hooks.advance(c.len() as u64)?;
            }
            stream.finish(src.fs.bytes());
            let copied = copier
                .join()
                .expect("the copying thread does not panic")
                .map_err(|e| copy_error(e, &src.path, &dest))?;
            hooks.ticker().check()?;
            Ok((copied, h.hex()))
        }
    })?;
    if copied != end - start {
        return Err(Error::ShortCopy {
            path: src.path.clone(),
            got: copied,
            want: end - start,
        });
    }
    file.sync_all().map_err(|e| Error::io(&dest, e))?;
    let written = file.metadata().map_err(|e| Error::io(&dest, e))?.len();
    Ok((out, written, md5))
}
