//! Reading records where they lie, for both pack phases: the data file opened for
//! positioned reads, a memo of resolved backpointer chains, and the same chain walk over
//! the mapping when the file cannot be opened.
//!
//! Tracing (phase B) and the copies (phases C and D) read records at random. Reading them
//! with `pread` keeps their pages out of this process (a fault on a mapping maps a whole
//! large folio of the page cache, up to megabytes, for one record). Chains are followed by
//! [`zfs_format::chain`] with ZODB's `_loadBack_impl` rule (oids are not compared); the
//! headers are decoded by [`RawDataHeader`].

use std::ops::Deref;
use std::os::unix::fs::FileExt;

use zfs_format::bytes::to_usize;
use zfs_format::chain::{self, ChainError, ChainRecord, ChainRules, RecordSource, ShardedMemo};
use zfs_format::record::{RawDataHeader, DATA_HEADER_LEN};
use zfs_format::{DataRecord, FileStorage, Oid, Tid};

use crate::error::{PackError, Result};

/// Bytes read at once for a record (most records fit, header and pickle).
const READ_AHEAD: usize = 1024;

/// A corruption of `fs` at `offset`.
pub(crate) fn corrupt<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    offset: u64,
    what: String,
) -> PackError {
    PackError::Corrupt {
        path: fs.path().to_path_buf(),
        offset,
        what,
    }
}

/// The packer's words for a chain that cannot be followed.
fn chain_error<T: Deref<Target = [u8]>, E: Into<PackError>>(
    fs: &FileStorage<T>,
    e: ChainError<E>,
) -> PackError {
    match e {
        ChainError::NotBackwards { at, back } => corrupt(
            fs,
            at,
            format!("backpointer chain does not go backwards: {back}"),
        ),
        ChainError::OtherOid { at, back, found } => corrupt(
            fs,
            at,
            format!("backpointer {back} leads to a record of oid {found}"),
        ),
        ChainError::Unreadable { source, .. } => source.into(),
    }
}

/// Follows the backpointer chain from the record at `pos` to the record holding data over
/// the mapping, as ZODB's `_loadBack_impl` does (no oid check): `None` when the chain ends
/// in "does not exist" (or `pos` is 0).
pub fn state_at<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    pos: u64,
) -> Result<Option<DataRecord<'_>>> {
    chain::resolve(&mut fs.bytes(), pos, ChainRules::ANY_OID).map_err(|e| chain_error(fs, e))
}

/// The data file opened for positioned reads, if it is the file `fs` maps (same length).
pub fn open_for_reads<T: Deref<Target = [u8]>>(fs: &FileStorage<T>) -> Option<RecordFile> {
    std::fs::File::open(fs.path())
        .ok()
        .filter(|f| f.metadata().is_ok_and(|m| m.len() == fs.len()))
        .map(|file| RecordFile {
            file,
            chains: ShardedMemo::default(),
        })
}

/// The data file opened for positioned reads, with the backpointer chains resolved so far.
pub struct RecordFile {
    file: std::fs::File,
    /// The ends of the backpointer chains resolved so far.
    chains: ShardedMemo,
}

impl Deref for RecordFile {
    type Target = std::fs::File;
    fn deref(&self) -> &std::fs::File {
        &self.file
    }
}

impl RecordFile {
    /// Starts reading the record at `pos` (its header and, usually, its whole pickle) into
    /// the page cache without waiting for it; [`read_state_at`] then finds it there.
    pub fn will_read(&self, pos: u64) {
        zfs_files::will_read(&self.file, pos, READ_AHEAD as u64);
    }

    /// When the record at `pos` is a backpointer, starts reading the record it leads to,
    /// as [`RecordFile::will_read`] does (reading the header waits for it, unless it was
    /// asked for before). Anything it cannot read is left to [`read_state_at`] to report.
    pub fn will_follow(&self, pos: u64) {
        let mut h = [0u8; DATA_HEADER_LEN as usize + 8];
        if self.file.read_exact_at(&mut h, pos).is_err() {
            return;
        }
        let Some(head) = RawDataHeader::decode(&h, 0) else {
            return;
        };
        if let Some(back) = head.backpointer_in(&h).filter(|&b| b != 0) {
            self.will_read(back);
        }
    }
}

/// What a positioned read learns of a record.
struct ReadRecord {
    header: RawDataHeader,
    /// The backpointer, for a backpointer record.
    back: Option<u64>,
}

impl ChainRecord for ReadRecord {
    fn oid(&self) -> Oid {
        self.header.oid
    }
    fn backpointer(&self) -> Option<u64> {
        self.back
    }
}

/// Reads records with one `pread` each into `buf`, which keeps the bytes of the last one.
struct Pread<'a, T: Deref<Target = [u8]>> {
    fs: &'a FileStorage<T>,
    file: &'a RecordFile,
    buf: &'a mut Vec<u8>,
    /// Position of the record whose first bytes `buf` holds, and how many were read.
    last: Option<(u64, usize)>,
}

impl<T: Deref<Target = [u8]>> RecordSource for Pread<'_, T> {
    type Record = ReadRecord;
    type Error = PackError;

    fn record(&mut self, at: u64) -> Result<ReadRecord> {
        let fs = self.fs;
        // One read for the header and, usually, the whole pickle.
        self.buf.resize(READ_AHEAD, 0);
        let n = self
            .file
            .read_at(self.buf, at)
            .map_err(|e| PackError::io(fs.path(), e))?;
        self.last = Some((at, n));
        // Decoded at position 0: positions in the header are then offsets in `buf`.
        let read = &self.buf[..n];
        let rel = RawDataHeader::decode(read, 0).ok_or_else(|| {
            corrupt(
                fs,
                at,
                "data record header runs past the end of the file".into(),
            )
        })?;
        let header = RawDataHeader { pos: at, ..rel };
        if header.vlen != 0 {
            return Err(corrupt(
                fs,
                at,
                "non-zero version length: versions are not supported".into(),
            ));
        }
        if !header.is_backpointer() {
            if header.end().is_none_or(|e| e > fs.len()) {
                return Err(corrupt(
                    fs,
                    at,
                    format!("data length {} runs past the end of the file", header.plen),
                ));
            }
            return Ok(ReadRecord { header, back: None });
        }
        let back = rel
            .backpointer_in(read)
            .ok_or_else(|| corrupt(fs, at, "backpointer runs past the end of the file".into()))?;
        Ok(ReadRecord {
            header,
            back: Some(back),
        })
    }
}

impl<T: Deref<Target = [u8]>> Pread<'_, T> {
    /// Leaves the pickle of `rec` (a record with data, read last or not) in `buf`.
    fn take_data(&mut self, rec: &RawDataHeader) -> Result<()> {
        let fs = self.fs;
        let too_long = || {
            corrupt(
                fs,
                rec.pos,
                format!("data length {} runs past the end of the file", rec.plen),
            )
        };
        let len = to_usize(rec.plen).ok_or_else(too_long)?;
        // The pickle's offset from the start of the record.
        let start = RawDataHeader { pos: 0, ..*rec }
            .body_pos()
            .and_then(to_usize)
            .ok_or_else(too_long)?;
        let end = start.checked_add(len).ok_or_else(too_long)?;
        match self.last {
            Some((pos, n)) if pos == rec.pos && end <= n => {
                self.buf.copy_within(start..end, 0);
                self.buf.truncate(len);
            }
            _ => {
                let body = rec.body_pos().ok_or_else(too_long)?;
                self.buf.resize(len, 0);
                self.file
                    .read_exact_at(self.buf, body)
                    .map_err(|e| PackError::io(fs.path(), e))?;
            }
        }
        Ok(())
    }
}

/// Follows the backpointer chain from `pos` with positioned reads on `file` (as
/// [`state_at`] does on the mapping, remembering chain ends in the file's memo) and leaves
/// the data of the record found in `buf`: `(its oid, its position)`, or `None` when the
/// chain ends in "does not exist".
pub fn read_state_at<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    file: &RecordFile,
    buf: &mut Vec<u8>,
    pos: u64,
) -> Result<Option<(Oid, u64)>> {
    let mut src = Pread {
        fs,
        file,
        buf,
        last: None,
    };
    let rules = ChainRules {
        same_oid: false,
        memo: Some(&file.chains),
    };
    let found = chain::resolve(&mut src, pos, rules).map_err(|e| chain_error(fs, e))?;
    let Some(rec) = found else {
        return Ok(None);
    };
    src.take_data(&rec.header)?;
    Ok(Some((rec.header.oid, rec.header.pos)))
}

/// The oid and serial of the data record at `pos`, with a positioned read.
pub fn read_oid_tid<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    file: &RecordFile,
    pos: u64,
) -> Result<(Oid, Tid)> {
    let mut h = [0u8; DATA_HEADER_LEN as usize];
    file.read_exact_at(&mut h, pos)
        .map_err(|e| PackError::io(fs.path(), e))?;
    let h = RawDataHeader::from_bytes(&h, pos);
    Ok((h.oid, h.tid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zfs_format::writer::FileBuilder;
    use zfs_format::Status;

    /// Two oids: oid 1 gets data, then 60 undo-like backpointers, each to the one before
    /// (a chain of growing length); oid 2's chain ends in "does not exist". Every record is
    /// resolved twice, in an order that starts in the middle of the chains, with the memo,
    /// and must agree with the resolver over the mapping.
    #[test]
    fn chain_memo_agrees_with_the_mapped_resolver() {
        let mut fb = FileBuilder::new(*b"FS30");
        let mut positions = Vec::new();
        let (mut prev1, mut prev2) = (0u64, 0u64);
        for i in 0..62u64 {
            let mut t = fb
                .txn(
                    Tid::from_u64(0x0300_0000_0000_0000 + i),
                    Status::Committed,
                    b"",
                    b"",
                    b"",
                )
                .expect("txn");
            let p1 = if i == 0 {
                t.data(Oid::from_u64(1), 0, b"data of one")
            } else {
                t.backpointer(Oid::from_u64(1), prev1, prev1)
            };
            let p2 = if i == 0 {
                t.backpointer(Oid::from_u64(2), 0, 0)
            } else {
                t.backpointer(Oid::from_u64(2), prev2, prev2)
            };
            positions.extend([p1, p2]);
            (prev1, prev2) = (p1, p2);
            fb.push(t);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("chains.fs");
        std::fs::write(&path, fb.into_bytes()).expect("write");
        let fs = FileStorage::open(&path).expect("open");
        let file = open_for_reads(&fs).expect("file");
        let mut order = positions.clone();
        order.rotate_left(positions.len() / 2);
        order.extend(positions.iter().rev());
        let mut buf = Vec::new();
        for &pos in &order {
            let want = state_at(&fs, pos).expect("mapped").map(|r| (r.oid, r.pos));
            let got = read_state_at(&fs, &file, &mut buf, pos).expect("read");
            assert_eq!(got, want, "record at {pos}");
            if got.is_some() {
                assert_eq!(&buf[..], b"data of one");
            }
            assert_eq!(
                read_oid_tid(&fs, &file, pos).expect("read").0,
                fs.record_at(pos).expect("record").oid
            );
        }
        let memo = file.chains.len();
        assert!(
            memo >= 120,
            "the memo holds the backpointer records ({memo})"
        );
    }

    /// Damage met on the way gives the packer's errors, at the record concerned, and a
    /// pickle longer than the read-ahead is read whole; reads asked for ahead change none
    /// of that.
    #[test]
    fn damaged_chains_and_long_pickles() {
        let mut fb = FileBuilder::new(*b"FS30");
        let mut t = fb
            .txn(Tid::from_u64(1), Status::Committed, b"", b"", b"")
            .expect("txn");
        let long = vec![7u8; 3 * READ_AHEAD];
        let data = t.data(Oid::from_u64(1), 0, &long);
        let back = t.backpointer(Oid::from_u64(1), data, data);
        let forward = t.backpointer(Oid::from_u64(1), 0, 0);
        fb.push(t);
        let mut bytes = fb.into_bytes();
        // `forward` points to itself.
        let at = (forward + DATA_HEADER_LEN) as usize;
        bytes[at..at + 8].copy_from_slice(&forward.to_be_bytes());
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("damaged.fs");
        std::fs::write(&path, &bytes).expect("write");
        let fs = FileStorage::open(&path).expect("open");
        let file = open_for_reads(&fs).expect("file");
        // Asking ahead for any position, inside a record or past the end, damaged or not,
        // is harmless: what is read next is the same.
        for pos in 0..fs.len() + 100 {
            file.will_read(pos);
            file.will_follow(pos);
        }
        let mut buf = Vec::new();
        let got = read_state_at(&fs, &file, &mut buf, back).expect("sound");
        assert_eq!(got, Some((Oid::from_u64(1), data)));
        assert_eq!(buf, long);
        for e in [
            read_state_at(&fs, &file, &mut buf, forward).expect_err("loop"),
            state_at(&fs, forward).expect_err("loop"),
        ] {
            let text = e.to_string();
            assert!(text.contains("does not go backwards"), "{text}");
        }
        // A position past the end, and a pickle longer than the file.
        let e = read_state_at(&fs, &file, &mut buf, fs.len() - 10).expect_err("short");
        assert!(e.to_string().contains("header runs past"), "{e}");
        let mut cut = bytes.clone();
        cut.truncate(data as usize + 100);
        std::fs::write(&path, &cut).expect("write");
        let fs = FileStorage::open(&path).expect("open");
        let file = open_for_reads(&fs).expect("file");
        let e = read_state_at(&fs, &file, &mut buf, data).expect_err("long");
        assert!(e.to_string().contains("runs past the end"), "{e}");
    }
}
