//! Reading records where they lie with positioned reads (`pread`), for the few random
//! accesses of jobs that otherwise walk the file in order: following backpointer chains.
//!
//! Through the mapping, such a read would fault the page in with the read-ahead around it
//! (megabytes when the device's read-ahead is large) and leave the pages mapped into the
//! process; a positioned read of the record's own bytes does neither.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Deref;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::record::{DataRecord, Payload, DATA_HEADER_LEN};
use crate::storage::{FileStorage, FIRST_TXN};

/// Bytes read at once for a record (most records fit).
const FIRST_READ: usize = 1024;

/// A FileStorage file opened for positioned reads of records, with a memo of the
/// backpointer chains it resolved.
#[derive(Debug)]
pub struct RecordReader {
    file: File,
    len: u64,
    path: PathBuf,
    chains: Chains,
}

/// Shards of the chain memo.
const CHAIN_SHARDS: usize = 16;
/// Entries a shard holds before it is emptied (bounds the memo to a few megabytes).
const CHAIN_SHARD_LIMIT: usize = 16 * 1024;

/// A memo of resolved backpointer chains: the position of a backpointer record → the
/// position of the data record its chain ends at (0: the object does not exist). Undo
/// makes chains that many records share (an object undone again and again); without the
/// memo, resolving each record reads every link again. Sharded, so that threads resolving
/// in parallel rarely wait for each other.
#[derive(Debug, Default)]
struct Chains {
    shards: [Mutex<HashMap<u64, u64>>; CHAIN_SHARDS],
}

impl Chains {
    fn shard(&self, pos: u64) -> &Mutex<HashMap<u64, u64>> {
        &self.shards[(pos.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize % CHAIN_SHARDS]
    }
    fn get(&self, pos: u64) -> Option<u64> {
        self.shard(pos).lock().ok()?.get(&pos).copied()
    }
    fn put(&self, hops: &[u64], end: u64) {
        for &pos in hops {
            if let Ok(mut m) = self.shard(pos).lock() {
                if m.len() >= CHAIN_SHARD_LIMIT {
                    m.clear();
                }
                m.insert(pos, end);
            }
        }
    }
}

impl RecordReader {
    /// The file of `fs` opened again for reading, when `fs` is a file on disk of the same
    /// length (`None` for bytes in memory: callers then read through `fs`).
    pub fn open<T: Deref<Target = [u8]>>(fs: &FileStorage<T>) -> Option<Self> {
        let file = File::open(fs.path()).ok()?;
        let len = file.metadata().ok()?.len();
        (len == fs.len()).then(|| RecordReader {
            file,
            len,
            path: fs.path().to_path_buf(),
            chains: Chains::default(),
        })
    }

    fn io(&self, e: std::io::Error) -> Error {
        Error::io(&self.path, e)
    }

    /// Reads `n` bytes at `pos` into `buf[from..]`.
    fn read(&self, buf: &mut Vec<u8>, from: usize, pos: u64, n: usize) -> Result<()> {
        buf.resize(from + n, 0);
        self.file
            .read_exact_at(&mut buf[from..], pos)
            .map_err(|e| self.io(e))
    }

    /// Reads the bytes of the record at `pos` into `buf`; fails as
    /// [`DataRecord::decode`] would on the mapped file when the record runs past its end.
    fn load(&self, pos: u64, buf: &mut Vec<u8>) -> Result<()> {
        let short = |what: &str| Error::Corrupt {
            offset: pos,
            what: format!(
                "data record {what} runs past the end of the file ({})",
                self.len
            ),
        };
        let left = self.len.checked_sub(pos).ok_or_else(|| short("header"))?;
        if left < DATA_HEADER_LEN {
            return Err(short("header"));
        }
        let first = usize::try_from(left).map_or(FIRST_READ, |l| l.min(FIRST_READ));
        self.read(buf, 0, pos, first)?;
        let vlen = u16::from_be_bytes([buf[32], buf[33]]);
        let plen = u64::from_be_bytes(buf[34..42].try_into().expect("8 bytes"));
        let mut need = DATA_HEADER_LEN;
        if vlen > 0 {
            need += 16 + u64::from(vlen);
            if need > left {
                return Err(short("version"));
            }
        }
        need = match plen {
            0 => need + 8,
            p => need.checked_add(p).ok_or_else(|| short("pickle"))?,
        };
        if need > left {
            return Err(short(if plen == 0 { "backpointer" } else { "pickle" }));
        }
        let need = usize::try_from(need).map_err(|_| short("pickle"))?;
        if need > buf.len() {
            let have = buf.len();
            self.read(buf, have, pos + have as u64, need - have)?;
        } else {
            buf.truncate(need);
        }
        Ok(())
    }

    /// The record at `pos`, read into `buf` (its positions are the file's).
    pub fn record<'b>(&self, pos: u64, buf: &'b mut Vec<u8>) -> Result<DataRecord<'b>> {
        self.load(pos, buf)?;
        decoded(pos, buf)
    }

    /// What [`FileStorage::resolve`] gives for the record at `pos`, with positioned reads:
    /// the record holding the state (read into `buf`), or `None` when the object does not
    /// exist as of that record. Every link must point strictly backwards to a record of the
    /// same oid.
    pub fn resolve<'b>(&self, pos: u64, buf: &'b mut Vec<u8>) -> Result<Option<DataRecord<'b>>> {
        // The backpointer records passed on the way, remembered once the chain's end is
        // known.
        let mut hops: Vec<u64> = Vec::new();
        let mut at = pos;
        self.load(at, buf)?;
        loop {
            let r = decoded(at, buf)?;
            let (oid, back) = match r.payload {
                Payload::Data(_) => break,
                Payload::Backpointer(0) => {
                    self.chains.put(&hops, 0);
                    return Ok(None);
                }
                Payload::Backpointer(b) => (r.oid, b),
            };
            hops.push(at);
            if let Some(end) = self.chains.get(at) {
                // Resolved before, from here on (every link after this one was checked).
                self.chains.put(&hops, end);
                if end == 0 {
                    return Ok(None);
                }
                self.load(end, buf)?;
                at = end;
                break;
            }
            let bad = |why| Error::BadBackpointer {
                offset: at,
                oid,
                back,
                why,
            };
            if back >= at || back < FIRST_TXN {
                return Err(bad("does not point backwards"));
            }
            let next_oid = self
                .load(back, buf)
                .and_then(|()| decoded(back, buf).map(|n| n.oid))
                .map_err(|_| bad("target is not a readable record"))?;
            if next_oid != oid {
                return Err(bad("target has another oid"));
            }
            at = back;
        }
        self.chains.put(&hops, at);
        decoded(at, buf).map(Some)
    }
}

/// The state `rec` (a record of `fs`) holds: its own pickle, or the pickle at the end of its
/// backpointer chain, read into `buf` with `reader` when there is one and through `fs`
/// otherwise; `None` when the object does not exist as of that record.
pub fn resolve_data<'b, T: Deref<Target = [u8]>>(
    fs: &'b FileStorage<T>,
    reader: Option<&RecordReader>,
    rec: &DataRecord<'b>,
    buf: &'b mut Vec<u8>,
) -> Result<Option<&'b [u8]>> {
    match (rec.payload, reader) {
        (Payload::Data(d), _) => Ok(Some(d)),
        (Payload::Backpointer(0), _) => Ok(None),
        (Payload::Backpointer(_), Some(r)) => Ok(r
            .resolve(rec.pos, buf)?
            .map(|d| d.data().unwrap_or_default())),
        (Payload::Backpointer(_), None) => {
            Ok(fs.resolve(rec)?.map(|d| d.data().unwrap_or_default()))
        }
    }
}

/// Decodes the record whose bytes (all of them, checked by `load`) fill `buf`.
fn decoded(pos: u64, buf: &[u8]) -> Result<DataRecord<'_>> {
    let mut r = DataRecord::decode(buf, 0).map_err(|e| match e {
        Error::Corrupt { offset, what } => Error::Corrupt {
            offset: offset + pos,
            what,
        },
        other => other,
    })?;
    r.pos = pos;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::FileBuilder;
    use crate::{Oid, Status, Tid};

    #[test]
    fn agrees_with_the_mapped_file() {
        let mut f = FileBuilder::new(*b"FS30");
        let mut positions = Vec::new();
        let mut prev = 0;
        let big = vec![b'y'; 5000];
        for i in 0..20u64 {
            let mut t = f
                .txn(Tid::from_u64(100 + i), Status::Committed, b"", b"", b"")
                .expect("short");
            let p = match i {
                0 => t.data(Oid::from_u64(1), 0, &big),
                5 => t.backpointer(Oid::from_u64(1), prev, 0),
                i if i % 3 == 0 => t.data(Oid::from_u64(1), prev, format!("s{i}").as_bytes()),
                _ => t.backpointer(Oid::from_u64(1), prev, prev),
            };
            // A record of another oid, and a backpointer that points to it (an error).
            let q = t.data(Oid::from_u64(2), 0, b"two");
            positions.push(p);
            positions.push(t.backpointer(Oid::from_u64(3), 0, q));
            prev = p;
            f.push(t);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.fs");
        std::fs::write(&path, f.into_bytes()).expect("write");
        let fs = FileStorage::open(&path).expect("open");
        let reader = RecordReader::open(&fs).expect("a file on disk");
        let mut buf = Vec::new();
        for pos in positions
            .into_iter()
            .chain([7, fs.len() - 10, fs.len() + 5])
        {
            let mapped = fs.record_at(pos);
            let read = reader.record(pos, &mut buf);
            assert_eq!(
                mapped.as_ref().map_err(|e| e.to_string()).ok(),
                read.as_ref().map_err(|e| e.to_string()).ok(),
                "record at {pos}"
            );
            let Ok(rec) = mapped else { continue };
            let want = fs
                .resolve(&rec)
                .map(|x| x.map(|r| (r.pos, r.data().map(<[u8]>::to_vec))));
            let want = want.map_err(|e| e.to_string());
            // Twice: the second time through the memo.
            for _ in 0..2 {
                let got = reader
                    .resolve(pos, &mut buf)
                    .map(|x| x.map(|r| (r.pos, r.data().map(<[u8]>::to_vec))));
                assert_eq!(want, got.map_err(|e| e.to_string()), "resolve {pos}");
            }
        }
        assert!(RecordReader::open(
            &FileStorage::from_data(&b"FS30"[..], "none".into()).expect("FS30")
        )
        .is_none());
    }
}
