//! Reading records where they lie with positioned reads (`pread`), for the few random
//! accesses of jobs that otherwise walk the file in order: following backpointer chains.
//!
//! Through the mapping, such a read would fault the page in with the read-ahead around it
//! (megabytes when the device's read-ahead is large) and leave the pages mapped into the
//! process; a positioned read of the record's own bytes does neither. Headers are decoded
//! by [`RawDataHeader`], chains followed by [`chain`] with the rules of
//! [`FileStorage::resolve`] (every link to a record of the same oid).

use std::fs::File;
use std::ops::Deref;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::chain::{self, ChainError, ChainRecord, ChainRules, RecordSource, ShardedMemo};
use crate::error::{Error, Result};
use crate::ids::Oid;
use crate::record::{DataRecord, Payload, RawDataHeader, DATA_HEADER_LEN};
use crate::storage::FileStorage;

/// Bytes read at once for a record (most records fit).
const FIRST_READ: usize = 1024;

/// A FileStorage file opened for positioned reads of records, with a memo of the
/// backpointer chains it resolved.
#[derive(Debug)]
pub struct RecordReader {
    file: File,
    len: u64,
    path: PathBuf,
    /// The ends of the chains resolved so far: undo makes chains that many records share
    /// (an object undone again and again); without the memo, resolving each record reads
    /// every link again.
    chains: ShardedMemo,
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
            chains: ShardedMemo::default(),
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
        let fixed = buf
            .get(..DATA_HEADER_LEN as usize)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| short("header"))?;
        let h = RawDataHeader::from_bytes(fixed, pos);
        if h.vlen > 0 && DATA_HEADER_LEN + h.version_part_len() > left {
            return Err(short("version"));
        }
        let body = if h.is_backpointer() {
            "backpointer"
        } else {
            "pickle"
        };
        let need = h.len().filter(|&n| n <= left).ok_or_else(|| short(body))?;
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
        let mut links = Links {
            reader: self,
            buf,
            last: pos,
            first_oid: None,
        };
        let rules = ChainRules {
            same_oid: true,
            memo: Some(&self.chains),
        };
        // The walk reads the record at `pos` itself, so that a chain resolved before is
        // found in the memo from its first record on.
        let found = chain::resolve(&mut links, pos, rules);
        let oid = links.first_oid.unwrap_or_default();
        let bad = |offset, back, why| Error::BadBackpointer {
            offset,
            oid,
            back,
            why,
        };
        let found = found.map_err(|e| match e {
            ChainError::NotBackwards { at, back } => bad(at, back, "does not point backwards"),
            ChainError::OtherOid { at, back, .. } => bad(at, back, "target has another oid"),
            ChainError::Unreadable {
                from: Some(at),
                pos,
                ..
            } => bad(at, pos, "target is not a readable record"),
            ChainError::Unreadable { source, .. } => source,
        })?;
        if found.is_none() {
            return Ok(None);
        }
        // The chain's end is the record read last.
        let Links { buf, last, .. } = links;
        decoded(last, buf).map(Some)
    }
}

/// What a chain walk learns of a record read with [`RecordReader`].
struct Link {
    oid: Oid,
    back: Option<u64>,
}

impl ChainRecord for Link {
    fn oid(&self) -> Oid {
        self.oid
    }
    fn backpointer(&self) -> Option<u64> {
        self.back
    }
}

/// The records of a chain, read one after another into `buf` (which keeps the last).
struct Links<'r, 'b> {
    reader: &'r RecordReader,
    buf: &'b mut Vec<u8>,
    /// Position of the record in `buf`.
    last: u64,
    /// The oid of the first record read (the chain's).
    first_oid: Option<Oid>,
}

impl RecordSource for Links<'_, '_> {
    type Record = Link;
    type Error = Error;
    fn record(&mut self, pos: u64) -> Result<Link> {
        self.reader.load(pos, self.buf)?;
        self.last = pos;
        let r = decoded(pos, self.buf)?;
        self.first_oid.get_or_insert(r.oid);
        let back = match r.payload {
            Payload::Data(_) => None,
            Payload::Backpointer(b) => Some(b),
        };
        Ok(Link { oid: r.oid, back })
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
