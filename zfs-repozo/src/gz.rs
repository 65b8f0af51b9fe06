//! gzip: a parallel encoder (pigz-style: independent 1 MiB blocks, each primed with the 32 KiB
//! before it, joined by sync flushes into one member) and a reader that accepts what Python's
//! `gzip` module accepts (several members, NUL padding after a member) and reports a bad
//! header with Python's words.

use std::io::{self, BufRead, Read, Write};

use flate2::{Compress, Compression, FlushCompress, Status};
use rayon::prelude::*;
use zfs_format::Progress;

use crate::error::{py_bytes_repr, Error, Result};

/// Uncompressed bytes per parallel block.
const BLOCK: usize = 1 << 20;
/// The deflate window: each block is primed with this much of the input before it.
const DICT: usize = 32 * 1024;

/// The compression level used unless asked otherwise: level 6 of zlib-rs is 1% larger than
/// Python's level 9 and several times faster.
pub const DEFAULT_LEVEL: u32 = 6;

/// Compresses `data` as one gzip member on all cores and writes it to `out`.
pub fn gzip_parallel(
    data: &[u8],
    level: u32,
    out: &mut dyn Write,
    progress: &dyn Progress,
) -> io::Result<()> {
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    let xfl = match level {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    let mut header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 0xff];
    header[4..8].copy_from_slice(&mtime.to_le_bytes());
    out.write_all(&header)?;
    let nblocks = data.len().div_ceil(BLOCK).max(1);
    let batch = (rayon::current_num_threads() * 2).max(2);
    let mut crc = crc32fast::Hasher::new();
    let mut first = 0;
    while first < nblocks {
        let last = (first + batch).min(nblocks);
        let parts: Vec<io::Result<(Vec<u8>, crc32fast::Hasher)>> = (first..last)
            .into_par_iter()
            .map(|i| {
                let r = compress_block(data, i, i + 1 == nblocks, level);
                let start = i * BLOCK;
                progress.advance((data.len().min(start + BLOCK).saturating_sub(start)) as u64);
                r
            })
            .collect();
        for p in parts {
            let (bytes, c) = p?;
            out.write_all(&bytes)?;
            crc.combine(&c);
        }
        first = last;
    }
    out.write_all(&crc.finalize().to_le_bytes())?;
    out.write_all(&(data.len() as u32).to_le_bytes())?;
    Ok(())
}

/// Raw deflate of block `i`, ending with a sync flush (or the final block).
fn compress_block(
    data: &[u8],
    i: usize,
    last: bool,
    level: u32,
) -> io::Result<(Vec<u8>, crc32fast::Hasher)> {
    let start = (i * BLOCK).min(data.len());
    let end = (start + BLOCK).min(data.len());
    let mut c = Compress::new(Compression::new(level), false);
    if start > 0 {
        c.set_dictionary(&data[start - start.min(DICT)..start])
            .map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity((end - start) / 2 + 1024);
    let mut input = &data[start..end];
    loop {
        if out.capacity() - out.len() < 16 * 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let before = c.total_in();
        let status = c
            .compress_vec(input, &mut out, flush)
            .map_err(io::Error::other)?;
        let used = usize::try_from(c.total_in() - before).expect("fits in memory");
        input = &input[used..];
        let done = if last {
            status == Status::StreamEnd
        } else {
            input.is_empty() && out.len() < out.capacity()
        };
        if done {
            break;
        }
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&data[start..end]);
    Ok((out, crc))
}

/// Reads the uncompressed bytes of a gzip file in chunks, calling `sink` for each. `name`
/// is used in messages. Accepts several members and NUL padding after a member, like Python.
pub fn gunzip(
    reader: impl Read,
    name: &str,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut r = io::BufReader::with_capacity(1 << 20, reader);
    let mut members = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if members > 0 {
            // NUL padding after a member is skipped.
            loop {
                let avail = r.fill_buf().map_err(|e| Error::io(name, e))?;
                if avail.is_empty() {
                    return Ok(());
                }
                let zeros = avail.iter().take_while(|&&b| b == 0).count();
                let all = zeros == avail.len();
                r.consume(zeros);
                if !all {
                    break;
                }
            }
        }
        let avail = r.fill_buf().map_err(|e| Error::io(name, e))?;
        match avail {
            [] => return Ok(()),
            // A lone 0x1f at a buffer boundary: the decoder checks the rest of the header.
            [0x1f] => {}
            [b] => {
                let mut magic = vec![*b];
                r.consume(1);
                let mut next = [0u8; 1];
                if r.read(&mut next).map_err(|e| Error::io(name, e))? == 1 {
                    magic.push(next[0]);
                }
                return Err(Error::NotGzipped(py_bytes_repr(&magic)));
            }
            [a, b, ..] if [*a, *b] != [0x1f, 0x8b] => {
                return Err(Error::NotGzipped(py_bytes_repr(&[*a, *b])))
            }
            _ => {}
        }
        let mut dec = flate2::bufread::GzDecoder::new(&mut r);
        loop {
            let n = match dec.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let why = if e.kind() == io::ErrorKind::UnexpectedEof {
                        "compressed file ended before the end-of-stream marker was reached"
                            .to_string()
                    } else {
                        e.to_string()
                    };
                    return Err(Error::BadGzip {
                        path: name.to_string(),
                        why,
                    });
                }
            };
            if n == 0 {
                break;
            }
            sink(&buf[..n])?;
        }
        members += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zfs_format::NoProgress;

    fn roundtrip(data: &[u8], level: u32) {
        let mut z = Vec::new();
        gzip_parallel(data, level, &mut z, &NoProgress).expect("compress");
        let mut back = Vec::new();
        gunzip(&z[..], "t", &mut |c| {
            back.extend_from_slice(c);
            Ok(())
        })
        .expect("decompress");
        assert_eq!(back, data);
        // An independent decoder agrees.
        let mut other = Vec::new();
        flate2::read::MultiGzDecoder::new(&z[..])
            .read_to_end(&mut other)
            .expect("flate2");
        assert_eq!(other, data);
    }

    #[test]
    fn parallel_gzip_round_trips() {
        roundtrip(b"", 9);
        roundtrip(b"hello", 6);
        let big: Vec<u8> = (0..3 * BLOCK + 12345)
            .map(|i| ((i * 7) % 251 + i / 100_000) as u8)
            .collect();
        roundtrip(&big, 6);
        roundtrip(&big, 1);
    }

    #[test]
    fn reader_accepts_members_and_padding_but_not_junk() {
        let mut z = Vec::new();
        gzip_parallel(b"AAA", 9, &mut z, &NoProgress).expect("compress");
        gzip_parallel(b"", 9, &mut z, &NoProgress).expect("compress");
        gzip_parallel(b"BBBB", 9, &mut z, &NoProgress).expect("compress");
        z.extend_from_slice(&[0; 10]);
        let mut back = Vec::new();
        gunzip(&z[..], "t", &mut |c| {
            back.extend_from_slice(c);
            Ok(())
        })
        .expect("members");
        assert_eq!(back, b"AAABBBB");
        let e = gunzip(&b"XXjunk"[..], "t", &mut |_| Ok(())).expect_err("not gzip");
        assert_eq!(e.to_string(), "Not a gzipped file (b'XX')");
        assert!(gunzip(&b""[..], "t", &mut |_| Ok(())).is_ok());
        let truncated = &z[..z.len() / 2];
        let e = gunzip(truncated, "t", &mut |_| Ok(())).expect_err("truncated");
        assert!(matches!(e, Error::BadGzip { .. }), "{e}");
    }
}
