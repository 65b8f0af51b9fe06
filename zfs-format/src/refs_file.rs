//! The saved references file `<file>.refs`: for every object of a FileStorage, the
//! position and tid of its current record and the objects that record refers to, as the
//! file was up to a committed end. A pack with garbage collection that finds it need not
//! read the whole file to learn what is reachable (see `zfs_pack::prepare`).
//!
//! Our own format, little-endian, written whole and checked whole:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `ZFSREFS1` |
//! | 8 | the committed end the entries describe |
//! | 8 | the tid of the last transaction before that end |
//! | 8 | `n`, the number of entries |
//! | 8 | `m`, the number of 32-bit words in the reference list |
//! | 28 × `n` | entries in ascending oid order: oid, position, tid (8 bytes each), `start` (4) |
//! | 4 × `m` | the reference list |
//! | 4 | CRC-32 of every byte before it |
//!
//! An entry's `start` is [`UNKNOWN`] when its references were not read, [`ABSENT`] when its
//! current record says the object does not exist (an undone creation), and otherwise the
//! index in the list of a count followed by that many entry numbers, in the pickle's order.

use std::borrow::Borrow;
use std::io::{self, Write};

use crate::error::{Error, Result};
use crate::ids::{Oid, Tid};

/// The first bytes of a references file.
pub const MAGIC: &[u8; 8] = b"ZFSREFS1";
/// `start` of an entry whose references were not read.
pub const UNKNOWN: u32 = u32::MAX;
/// `start` of an entry whose current record says the object does not exist.
pub const ABSENT: u32 = u32::MAX - 1;

const HEADER: usize = 40;
const ENTRY: usize = 28;
const CRC: usize = 4;

/// One object: its current record and where its references are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The object.
    pub oid: Oid,
    /// Position of its current record.
    pub pos: u64,
    /// Tid of that record.
    pub tid: Tid,
    /// [`UNKNOWN`], [`ABSENT`], or where its references start in the list.
    pub start: u32,
}

/// What an entry says about the objects its record refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refs<'a> {
    /// Not read: whoever needs them reads the record.
    Unknown,
    /// The record says the object does not exist.
    Absent,
    /// The entry numbers referred to, in order (repeats included).
    Known(RefList<'a>),
}

/// Entry numbers, little-endian 32-bit words of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefList<'a>(&'a [u8]);

impl RefList<'_> {
    /// Number of references.
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The entry numbers.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        self.0.chunks_exact(4).map(le32)
    }
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// A checked view of a references file's bytes.
#[derive(Clone, Copy, Debug)]
pub struct RefsFile<'a> {
    /// The committed end the entries describe.
    pub end: u64,
    /// The tid of the last transaction before `end`.
    pub last_tid: Tid,
    entries: &'a [u8],
    list: &'a [u8],
}

fn bad(offset: u64, why: impl Into<String>) -> Error {
    Error::BadRefsFile {
        offset,
        why: why.into(),
    }
}

impl<'a> RefsFile<'a> {
    /// Checks `bytes` whole (lengths, checksum, oid order, every start and reference in
    /// range) and returns a view of them.
    pub fn parse(bytes: &'a [u8]) -> Result<RefsFile<'a>> {
        if bytes.len() < HEADER + CRC {
            return Err(bad(0, format!("{} bytes, too short", bytes.len())));
        }
        if &bytes[..8] != MAGIC {
            return Err(bad(0, "not a references file (no ZFSREFS1 magic)"));
        }
        let end = le64(&bytes[8..]);
        let last_tid = Tid::from_u64(le64(&bytes[16..]));
        let n = le64(&bytes[24..]);
        let m = le64(&bytes[32..]);
        let want = n
            .checked_mul(ENTRY as u64)
            .and_then(|e| m.checked_mul(4).and_then(|l| e.checked_add(l)))
            .and_then(|b| b.checked_add((HEADER + CRC) as u64));
        if want != Some(bytes.len() as u64) {
            return Err(bad(
                24,
                format!(
                    "{n} entries and {m} list words do not fill its {} bytes",
                    bytes.len()
                ),
            ));
        }
        // Both fit: their product is a length of `bytes`.
        let n = n as usize;
        let body = bytes.len() - CRC;
        if crc32fast::hash(&bytes[..body]) != le32(&bytes[body..]) {
            return Err(bad(body as u64, "checksum mismatch"));
        }
        if u32::try_from(n).map_or(true, |n| n >= ABSENT) {
            return Err(bad(
                24,
                format!("{n} entries: more than 32-bit entry numbers"),
            ));
        }
        let entries = &bytes[HEADER..HEADER + n * ENTRY];
        let list = &bytes[HEADER + n * ENTRY..body];
        let view = RefsFile {
            end,
            last_tid,
            entries,
            list,
        };
        let mut last = None;
        for i in 0..n {
            let e = view.entry(i);
            let at = (HEADER + i * ENTRY) as u64;
            if last.is_some_and(|l| l >= e.oid) {
                return Err(bad(at, "entries out of oid order"));
            }
            last = Some(e.oid);
            if e.start == UNKNOWN || e.start == ABSENT {
                continue;
            }
            let s = e.start as usize;
            let count = list
                .get(s * 4..s * 4 + 4)
                .map(le32)
                .ok_or_else(|| bad(at + 24, format!("reference start {s} past the list")))?;
            let refs = s
                .checked_add(1)
                .and_then(|a| Some((a, a.checked_add(count as usize)?)))
                .and_then(|(a, b)| list.get(a * 4..b.checked_mul(4)?))
                .ok_or_else(|| {
                    bad(
                        at + 24,
                        format!("{count} references at {s} run past the list"),
                    )
                })?;
            if let Some(r) = RefList(refs).iter().find(|&r| r as usize >= n) {
                return Err(bad(at + 24, format!("reference to entry {r} of {n}")));
            }
        }
        Ok(view)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len() / ENTRY
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of 32-bit words in the reference list.
    pub fn words(&self) -> usize {
        self.list.len() / 4
    }

    /// Entry `i` (`i < len()`).
    pub fn entry(&self, i: usize) -> Entry {
        let b = &self.entries[i * ENTRY..(i + 1) * ENTRY];
        Entry {
            oid: Oid::from_u64(le64(b)),
            pos: le64(&b[8..]),
            tid: Tid::from_u64(le64(&b[16..])),
            start: le32(&b[24..]),
        }
    }

    /// What entry `i` says about its references (checked by [`RefsFile::parse`]).
    pub fn refs(&self, i: usize) -> Refs<'a> {
        let start = self.entry(i).start;
        match start {
            UNKNOWN => Refs::Unknown,
            ABSENT => Refs::Absent,
            s => {
                let s = s as usize;
                let count = le32(&self.list[s * 4..]) as usize;
                Refs::Known(RefList(&self.list[(s + 1) * 4..(s + 1 + count) * 4]))
            }
        }
    }
}

/// The length of a references file with `entries` entries and `words` list words.
pub fn file_len(entries: u64, words: u64) -> u64 {
    (HEADER + CRC) as u64 + ENTRY as u64 * entries + 4 * words
}

/// Writes a references file: the header for `end` and `last_tid`, `entries` (ascending
/// oids, starts into `list` as described in the module docs; any iterator of them, so that
/// they need not be held at once), `list`, and the checksum.
pub fn write_refs<W, I, L>(
    w: &mut W,
    end: u64,
    last_tid: Tid,
    entries: I,
    list: L,
) -> io::Result<()>
where
    W: Write + ?Sized,
    I: IntoIterator,
    I::IntoIter: ExactSizeIterator,
    I::Item: Borrow<Entry>,
    L: IntoIterator,
    L::IntoIter: ExactSizeIterator,
    L::Item: Borrow<u32>,
{
    let entries = entries.into_iter();
    let list = list.into_iter();
    let mut crc = crc32fast::Hasher::new();
    let mut put = |w: &mut W, b: &[u8]| -> io::Result<()> {
        crc.update(b);
        w.write_all(b)
    };
    put(w, MAGIC)?;
    put(w, &end.to_le_bytes())?;
    put(w, &last_tid.as_u64().to_le_bytes())?;
    put(w, &(entries.len() as u64).to_le_bytes())?;
    put(w, &(list.len() as u64).to_le_bytes())?;
    let mut buf = Vec::with_capacity(1 << 16);
    for e in entries {
        let e = e.borrow();
        buf.extend_from_slice(&e.oid.as_u64().to_le_bytes());
        buf.extend_from_slice(&e.pos.to_le_bytes());
        buf.extend_from_slice(&e.tid.as_u64().to_le_bytes());
        buf.extend_from_slice(&e.start.to_le_bytes());
        if buf.len() >= 1 << 16 {
            put(w, &buf)?;
            buf.clear();
        }
    }
    for x in list {
        buf.extend_from_slice(&x.borrow().to_le_bytes());
        if buf.len() >= 1 << 16 {
            put(w, &buf)?;
            buf.clear();
        }
    }
    put(w, &buf)?;
    let sum = crc.finalize();
    w.write_all(&sum.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<Entry>, Vec<u32>) {
        let e = |oid, pos, tid, start| Entry {
            oid: Oid::from_u64(oid),
            pos,
            tid: Tid::from_u64(tid),
            start,
        };
        (
            vec![
                e(0, 100, 7, 0),
                e(1, 200, 8, 3),
                e(5, 300, 9, ABSENT),
                e(9, 400, 9, UNKNOWN),
            ],
            vec![2, 1, 3, 0],
        )
    }

    fn bytes() -> Vec<u8> {
        let (entries, list) = sample();
        let mut out = Vec::new();
        write_refs(&mut out, 500, Tid::from_u64(9), &entries, &list).expect("write");
        out
    }

    #[test]
    fn what_is_written_reads_back() {
        let b = bytes();
        let f = RefsFile::parse(&b).expect("parse");
        assert_eq!((f.end, f.last_tid, f.len()), (500, Tid::from_u64(9), 4));
        let (entries, _) = sample();
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(f.entry(i), *e);
        }
        let Refs::Known(r) = f.refs(0) else {
            panic!("known")
        };
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![1, 3]);
        let Refs::Known(r) = f.refs(1) else {
            panic!("known")
        };
        assert!(r.is_empty());
        assert_eq!(f.refs(2), Refs::Absent);
        assert_eq!(f.refs(3), Refs::Unknown);
    }

    #[test]
    fn any_changed_or_missing_byte_is_refused() {
        let b = bytes();
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x40;
            assert!(RefsFile::parse(&c).is_err(), "byte {i} flipped");
        }
        for cut in 0..b.len() {
            assert!(RefsFile::parse(&b[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn references_out_of_range_are_refused_even_with_a_good_checksum() {
        let (mut entries, list) = sample();
        entries[1].start = 9;
        let mut out = Vec::new();
        write_refs(&mut out, 500, Tid::from_u64(9), &entries, &list).expect("write");
        let e = RefsFile::parse(&out).expect_err("start past the list");
        assert!(e.to_string().contains("past the list"), "{e}");
        let (entries, mut list) = sample();
        list[2] = 4;
        out.clear();
        write_refs(&mut out, 500, Tid::from_u64(9), &entries, &list).expect("write");
        let e = RefsFile::parse(&out).expect_err("entry 4 of 4");
        assert!(e.to_string().contains("entry 4 of 4"), "{e}");
        let (mut entries, list) = sample();
        entries.swap(0, 1);
        out.clear();
        write_refs(&mut out, 500, Tid::from_u64(9), &entries, &list).expect("write");
        assert!(RefsFile::parse(&out).is_err(), "oid order");
    }
}
