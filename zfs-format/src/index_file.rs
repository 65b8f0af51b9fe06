//! ZODB's `.index` file: save it byte for byte as `fsIndex.save` does, load it tolerantly,
//! and trust it only after ZODB's sanity check.
//!
//! The file is a stream of independent pickles (protocol 3, no memo): the position the
//! index covers, then one `(prefix, bucket)` tuple per 6-byte oid prefix in ascending order,
//! then `None`. A bucket is the sorted 2-byte suffixes followed by the 6-byte positions.

use std::io::{self, Write};
use std::ops::Deref;
use std::path::Path;

use crate::bytes::{be_u64, to_usize};
use crate::error::{Error, Result};
use crate::ids::{Oid, Tid};
use crate::index::Index;
use crate::progress::Progress;
use crate::record::DataRecord;
use crate::scan::{scan_from, Scan};
use crate::storage::{FileStorage, FIRST_TXN};
use crate::txn::{RawTxnHeader, Status};

const PROTO: u8 = 0x80;
const STOP: u8 = b'.';
const NONE: u8 = b'N';
const BININT1: u8 = b'K';
const BININT2: u8 = b'M';
const BININT: u8 = b'J';
const LONG1: u8 = 0x8a;
const LONG4: u8 = 0x8b;
const SHORT_BINBYTES: u8 = b'C';
const BINBYTES: u8 = b'B';
const SHORT_BINSTRING: u8 = b'U';
const BINSTRING: u8 = b'T';
const TUPLE2: u8 = 0x86;
const TUPLE1: u8 = 0x85;
const TUPLE3: u8 = 0x87;
const EMPTY_TUPLE: u8 = b')';
const MARK: u8 = b'(';
const TUPLE: u8 = b't';
const INT: u8 = b'I';
const LONG: u8 = b'L';
const BINPUT: u8 = b'q';
const LONG_BINPUT: u8 = b'r';
const PUT: u8 = b'p';
const BINGET: u8 = b'h';
const LONG_BINGET: u8 = b'j';
const GET: u8 = b'g';
const MEMOIZE: u8 = 0x94;
const FRAME: u8 = 0x95;
const NEWTRUE: u8 = 0x88;
const NEWFALSE: u8 = 0x89;

/// Appends the protocol-3 encoding of a non-negative integer, as CPython's pickler picks it.
fn put_int(out: &mut Vec<u8>, v: u64) {
    if v <= 0xff {
        out.extend_from_slice(&[BININT1, v as u8]);
    } else if v <= 0xffff {
        out.push(BININT2);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v <= 0x7fff_ffff {
        out.push(BININT);
        out.extend_from_slice(&(v as u32).to_le_bytes());
    } else {
        // LONG1: little-endian two's complement, one more byte than the bits need when
        // the top bit would read as a sign.
        let bits = 64 - v.leading_zeros() as usize;
        let k = bits / 8 + 1;
        out.extend_from_slice(&[LONG1, k as u8]);
        let le = v.to_le_bytes();
        for i in 0..k {
            out.push(le.get(i).copied().unwrap_or(0));
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    if b.len() <= 0xff {
        out.extend_from_slice(&[SHORT_BINBYTES, b.len() as u8]);
    } else {
        out.push(BINBYTES);
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(b);
}

/// Writes `index` as ZODB's `fsIndex.save(pos, ...)` writes it.
pub fn write_index<W: Write + ?Sized>(w: &mut W, index: &Index, pos: u64) -> io::Result<()> {
    let mut buf = Vec::with_capacity(64 * 1024);
    buf.extend_from_slice(&[PROTO, 3]);
    put_int(&mut buf, pos);
    buf.push(STOP);
    let mut bucket = Vec::new();
    for (prefix, suffixes, positions) in index.buckets() {
        bucket.clear();
        for s in suffixes {
            bucket.extend_from_slice(&s.to_be_bytes());
        }
        for p in positions {
            bucket.extend_from_slice(p);
        }
        buf.extend_from_slice(&[PROTO, 3]);
        put_bytes(&mut buf, &prefix.to_be_bytes()[2..]);
        put_bytes(&mut buf, &bucket);
        buf.extend_from_slice(&[TUPLE2, STOP]);
        if buf.len() >= 60 * 1024 {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    buf.extend_from_slice(&[PROTO, 3, NONE, STOP]);
    w.write_all(&buf)
}

/// The bytes of the `.index` file for `index` at `pos`.
pub fn index_bytes(index: &Index, pos: u64) -> Vec<u8> {
    let mut v = Vec::new();
    write_index(&mut v, index, pos).expect("writing to a Vec cannot fail");
    v
}

/// Saves `index` at `pos` as a new file at `spec`'s target (temporary file, fsync, rename:
/// see [`zfs_files::Output`]).
pub fn save_index(spec: zfs_files::OutputSpec, index: &Index, pos: u64) -> Result<()> {
    Ok(zfs_files::write_file(spec, |w| write_index(w, index, pos))?)
}

/// A value of the tiny pickle machine that reads index files.
#[derive(Clone, Debug)]
enum Value<'a> {
    Int(u64),
    Bytes(&'a [u8]),
    None,
    Bool,
    Tuple(Vec<Value<'a>>),
    Mark,
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    memo: std::collections::HashMap<u64, Value<'a>>,
}

impl<'a> Reader<'a> {
    fn err(&self, what: impl Into<String>) -> Error {
        Error::IndexFile {
            offset: self.pos as u64,
            what: what.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.data.len());
        match end {
            Some(e) => {
                let s = &self.data[self.pos..e];
                self.pos = e;
                Ok(s)
            }
            None => Err(self.err("unexpected end of file")),
        }
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn le(&mut self, n: usize) -> Result<u64> {
        let b = self.take(n)?;
        Ok(b.iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    fn line(&mut self) -> Result<&'a [u8]> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&c| c == b'\n')
            .ok_or_else(|| self.err("unterminated line"))?;
        let l = &rest[..n];
        self.pos += n + 1;
        Ok(l)
    }

    fn long(&self, b: &[u8]) -> Result<u64> {
        // Little-endian two's complement; only non-negative values below 2^64 are positions.
        if b.last().is_some_and(|&x| x & 0x80 != 0) {
            return Err(self.err("negative integer"));
        }
        let significant = b.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
        if significant > 8 {
            return Err(self.err("integer too large"));
        }
        Ok(b[..significant]
            .iter()
            .rev()
            .fold(0u64, |a, &x| (a << 8) | u64::from(x)))
    }

    fn text_int(&self, l: &[u8]) -> Result<Value<'a>> {
        let s = std::str::from_utf8(l).map_err(|_| self.err("bad integer text"))?;
        let s = s.trim_end_matches('L');
        match s {
            "00" => return Ok(Value::Bool),
            "01" => return Ok(Value::Bool),
            _ => {}
        }
        s.parse::<u64>()
            .map(Value::Int)
            .map_err(|_| self.err(format!("bad integer {s:?}")))
    }

    /// Runs one pickle to its STOP.
    fn load(&mut self) -> Result<Value<'a>> {
        let mut stack: Vec<Value<'a>> = Vec::new();
        loop {
            let at = self.pos;
            let op = self.byte()?;
            match op {
                PROTO => {
                    let p = self.byte()?;
                    if p > 5 {
                        return Err(self.err(format!("unsupported pickle protocol {p}")));
                    }
                }
                FRAME => {
                    self.take(8)?;
                }
                STOP => {
                    return stack.pop().ok_or_else(|| self.err("empty stack at STOP"));
                }
                NONE => stack.push(Value::None),
                NEWTRUE | NEWFALSE => stack.push(Value::Bool),
                BININT1 => {
                    let v = self.le(1)?;
                    stack.push(Value::Int(v));
                }
                BININT2 => {
                    let v = self.le(2)?;
                    stack.push(Value::Int(v));
                }
                BININT => {
                    let v = self.le(4)? as u32 as i32;
                    let v = u64::try_from(v).map_err(|_| self.err("negative integer"))?;
                    stack.push(Value::Int(v));
                }
                LONG1 | LONG4 => {
                    let n = if op == LONG1 {
                        self.le(1)?
                    } else {
                        self.le(4)?
                    };
                    let b = self.take(to_usize(n).ok_or_else(|| self.err("bad length"))?)?;
                    let v = self.long(b)?;
                    stack.push(Value::Int(v));
                }
                INT | LONG => {
                    let l = self.line()?;
                    let v = self.text_int(l)?;
                    stack.push(v);
                }
                SHORT_BINBYTES | SHORT_BINSTRING => {
                    let n = self.le(1)? as usize;
                    let b = self.take(n)?;
                    stack.push(Value::Bytes(b));
                }
                BINBYTES | BINSTRING => {
                    let n = self.le(4)? as usize;
                    let b = self.take(n)?;
                    stack.push(Value::Bytes(b));
                }
                MARK => stack.push(Value::Mark),
                EMPTY_TUPLE => stack.push(Value::Tuple(Vec::new())),
                TUPLE1 | TUPLE2 | TUPLE3 => {
                    let n = usize::from(op - TUPLE1 + 1);
                    if stack.len() < n {
                        return Err(self.err("stack underflow"));
                    }
                    let items = stack.split_off(stack.len() - n);
                    stack.push(Value::Tuple(items));
                }
                TUPLE => {
                    let m = stack
                        .iter()
                        .rposition(|v| matches!(v, Value::Mark))
                        .ok_or_else(|| self.err("TUPLE without MARK"))?;
                    let items = stack.split_off(m + 1);
                    stack.pop();
                    stack.push(Value::Tuple(items));
                }
                BINPUT | LONG_BINPUT | PUT | MEMOIZE => {
                    let key = match op {
                        BINPUT => self.le(1)?,
                        LONG_BINPUT => self.le(4)?,
                        PUT => {
                            let l = self.line()?;
                            std::str::from_utf8(l)
                                .ok()
                                .and_then(|s| s.parse().ok())
                                .ok_or_else(|| self.err("bad PUT"))?
                        }
                        _ => self.memo.len() as u64,
                    };
                    let top = stack
                        .last()
                        .cloned()
                        .ok_or_else(|| self.err("PUT on empty stack"))?;
                    self.memo.insert(key, top);
                }
                BINGET | LONG_BINGET | GET => {
                    let key = match op {
                        BINGET => self.le(1)?,
                        LONG_BINGET => self.le(4)?,
                        _ => {
                            let l = self.line()?;
                            std::str::from_utf8(l)
                                .ok()
                                .and_then(|s| s.parse().ok())
                                .ok_or_else(|| self.err("bad GET"))?
                        }
                    };
                    let v = self
                        .memo
                        .get(&key)
                        .cloned()
                        .ok_or_else(|| self.err("missing memo key"))?;
                    stack.push(v);
                }
                other => {
                    self.pos = at;
                    return Err(self.err(format!("unsupported opcode 0x{other:02x} in index file")));
                }
            }
        }
    }
}

/// Decodes a `.index` file in the streamed format (protocols 1 to 3, bytes or Python 2
/// strings). Returns the position it covers and the index.
///
/// The old single-dict format of ZODB before 3.10 is refused with an error; ZODB's own
/// fallback for an unusable index is a rebuild by scanning, and so is ours.
pub fn load_index(data: &[u8]) -> Result<(u64, Index)> {
    let mut index = Index::new();
    let pos = read_buckets(data, |prefix, suffixes, positions| {
        index.push_bucket(prefix, suffixes, positions);
    })?;
    Ok((pos, index))
}

/// Decodes a `.index` file as [`load_index`] does, handing each entry to `each` in oid
/// order instead of keeping them: the file is read whatever its size, in constant memory.
/// Returns the position it covers. On an error, the entries before it were handed over.
pub fn for_each_entry(data: &[u8], mut each: impl FnMut(Oid, u64)) -> Result<u64> {
    read_buckets(data, |prefix, suffixes, positions| {
        for (&s, &p) in suffixes.iter().zip(positions) {
            each(
                Oid::from_u64((prefix << 16) | u64::from(s)),
                crate::index::pos_from6(p),
            );
        }
    })
}

/// Decodes a `.index` file, handing each bucket (oid prefix, suffixes, positions) to
/// `each` in order; returns the position the file covers.
fn read_buckets(data: &[u8], mut each: impl FnMut(u64, &[u16], &[[u8; 6]])) -> Result<u64> {
    let mut r = Reader {
        data,
        pos: 0,
        memo: Default::default(),
    };
    let pos = match r.load()? {
        Value::Int(p) => p,
        _ => return Err(r.err("not a streamed index (old format or not an index)")),
    };
    let mut last_prefix: Option<u64> = None;
    let mut suffixes = Vec::new();
    let mut positions = Vec::new();
    loop {
        let start = r.pos;
        let v = r.load()?;
        let (prefix, bucket) = match v {
            Value::None | Value::Bool => break,
            Value::Tuple(items) => match items.as_slice() {
                [Value::Bytes(p), Value::Bytes(b)] => (*p, *b),
                _ => {
                    r.pos = start;
                    return Err(r.err("expected a (prefix, bucket) tuple"));
                }
            },
            _ => {
                r.pos = start;
                return Err(r.err("expected a (prefix, bucket) tuple"));
            }
        };
        let bad = |what: &str| Error::IndexFile {
            offset: start as u64,
            what: what.into(),
        };
        let prefix: [u8; 6] = prefix
            .try_into()
            .map_err(|_| bad("oid prefix is not 6 bytes"))?;
        let p = u64::from_be_bytes([
            0, 0, prefix[0], prefix[1], prefix[2], prefix[3], prefix[4], prefix[5],
        ]);
        if last_prefix.is_some_and(|l| l >= p) {
            return Err(bad("oid prefixes out of order"));
        }
        last_prefix = Some(p);
        if bucket.is_empty() || bucket.len() % 8 != 0 {
            return Err(bad("bucket length is not a positive multiple of 8"));
        }
        let n = bucket.len() / 8;
        suffixes.clear();
        positions.clear();
        for (i, c) in bucket[..2 * n].chunks_exact(2).enumerate() {
            let s = u16::from_be_bytes([c[0], c[1]]);
            if i > 0 && suffixes.last().is_some_and(|&l| l >= s) {
                return Err(bad("oid suffixes out of order"));
            }
            suffixes.push(s);
        }
        for c in bucket[2 * n..].chunks_exact(6) {
            positions.push([c[0], c[1], c[2], c[3], c[4], c[5]]);
        }
        each(p, &suffixes, &positions);
    }
    Ok(pos)
}

/// ZODB's `_check_sanity`: may the index saved for `pos` be trusted for this file?
///
/// Returns the tid of the last transaction before `pos` when it may (ZODB then resumes its
/// scan at `pos`), `None` when the index must be rebuilt.
pub fn check_sanity<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    index: &Index,
    pos: u64,
) -> Option<Tid> {
    const MAX_CHECKED: usize = 5;
    if pos < 100 || fs.len() < pos {
        return None;
    }
    let file = fs.bytes();
    let mut pos = pos;
    let mut ltid = None;
    let mut checked = 0;
    while checked < MAX_CHECKED {
        let tl = be_u64(file, to_usize(pos.checked_sub(8)?)?)?;
        pos = pos.checked_sub(tl)?.checked_sub(8)?;
        if pos < FIRST_TXN {
            return None;
        }
        let h = RawTxnHeader::decode(file, pos)?;
        ltid.get_or_insert(h.tid);
        if h.tlen != tl {
            return None;
        }
        match h.status {
            Status::Undone => continue,
            Status::Committed | Status::Packed => {}
            _ => return None,
        }
        if tl < h.header_len() {
            return None;
        }
        let tend = pos + tl;
        let mut opos = pos + h.header_len();
        if opos == tend {
            continue;
        }
        while opos < tend && checked < MAX_CHECKED {
            let r = DataRecord::decode(file, opos).ok()?;
            if opos + r.len() > tend || r.tloc != pos {
                return None;
            }
            if index.get(r.oid) != Some(opos) {
                return None;
            }
            checked += 1;
            opos += r.len();
        }
        return ltid;
    }
    ltid
}

/// How the index of an opened file was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexSource {
    /// No `.index` file: built by scanning.
    Scanned,
    /// A saved index was used and the transactions after it scanned.
    Saved,
    /// A saved index existed but could not be read or failed the sanity check; rebuilt.
    Rejected,
}

/// ZODB's open: use `<file>.index` when it loads and is sane (scanning only what follows
/// it), otherwise build the index by scanning the whole file.
pub fn open_index<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    index_path: &Path,
    progress: &dyn Progress,
) -> Result<(Scan, IndexSource)> {
    // Mapped, not read into memory: only the index it holds is kept.
    let saved = match std::fs::File::open(index_path) {
        Ok(file) => {
            let map = zfs_files::Map::new(file, index_path)?;
            Some(load_index(&map))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(index_path, e)),
    };
    let source = match saved {
        None => IndexSource::Scanned,
        Some(Ok((pos, index))) => {
            if let Some(ltid) = check_sanity(fs, &index, pos) {
                let mut scan = scan_from(fs, pos, index, progress)?;
                if scan.end.transactions == 0 {
                    // Nothing complete after the saved position: the last complete
                    // transaction is the one the sanity check found before it.
                    scan.end.last_complete_tid = ltid;
                }
                if scan.end.last_tid == Tid::default() {
                    scan.end.last_tid = ltid;
                }
                return Ok((scan, IndexSource::Saved));
            }
            IndexSource::Rejected
        }
        Some(Err(_)) => IndexSource::Rejected,
    };
    Ok((crate::scan::build_index(fs, progress)?, source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Oid;
    use crate::index::IndexBuilder;
    use proptest::prelude::*;

    #[test]
    fn pos_pickles_match_zodb() {
        // The bytes ZODB's fsIndex.save wrote for these positions.
        let cases: &[(u64, &[u8])] = &[
            (0, &[0x80, 3, 0x4b, 0, 0x2e]),
            (255, &[0x80, 3, 0x4b, 0xff, 0x2e]),
            (256, &[0x80, 3, 0x4d, 0, 1, 0x2e]),
            (65536, &[0x80, 3, 0x4a, 0, 0, 1, 0, 0x2e]),
            (
                (1 << 31) - 1,
                &[0x80, 3, 0x4a, 0xff, 0xff, 0xff, 0x7f, 0x2e],
            ),
            (1 << 31, &[0x80, 3, 0x8a, 5, 0, 0, 0, 0x80, 0, 0x2e]),
            (1 << 32, &[0x80, 3, 0x8a, 5, 0, 0, 0, 0, 1, 0x2e]),
            (
                (1 << 40) - 1,
                &[0x80, 3, 0x8a, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x2e],
            ),
            (
                (1 << 48) - 1,
                &[
                    0x80, 3, 0x8a, 7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x2e,
                ],
            ),
        ];
        for &(pos, want) in cases {
            let got = index_bytes(&Index::new(), pos);
            assert_eq!(&got[..got.len() - 4], want, "pos {pos}");
            assert_eq!(&got[got.len() - 4..], &[0x80, 3, b'N', b'.']);
        }
    }

    #[test]
    fn bucket_encoding() {
        let mut b = IndexBuilder::new();
        for i in 0..32u64 {
            b.insert(Oid::from_u64(i), 100 + i);
        }
        let ix = b.finish();
        let bytes = index_bytes(&ix, 4);
        // 32 entries: BINBYTES with a 4-byte length of 256.
        assert_eq!(&bytes[5..15], &[0x80, 3, b'C', 6, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[15..20], &[b'B', 0, 1, 0, 0]);
        let (pos, back) = load_index(&bytes).expect("round trip");
        assert_eq!(pos, 4);
        assert_eq!(back, ix);
    }

    proptest! {
        #[test]
        fn save_load_round_trip(oids in proptest::collection::btree_map(0u64..1u64 << 40, 0u64..crate::index::MAX_POS, 0..300),
                                pos in 0u64..crate::index::MAX_POS) {
            let ix = Index::from_sorted(oids.iter().map(|(&o, &p)| (o, p)));
            let bytes = index_bytes(&ix, pos);
            let (p2, ix2) = load_index(&bytes).expect("our own bytes load");
            prop_assert_eq!(p2, pos);
            prop_assert_eq!(&ix2, &ix);
            prop_assert_eq!(&index_bytes(&ix2, p2), &bytes);
            // Entry by entry, the same pairs in the same order; cut short, an error after
            // a prefix of them.
            let mut seen = Vec::new();
            let p3 = for_each_entry(&bytes, |o, p| seen.push((o, p))).expect("entries");
            prop_assert_eq!(p3, pos);
            prop_assert_eq!(&seen, &ix.iter().collect::<Vec<_>>());
            let mut part = Vec::new();
            prop_assert!(for_each_entry(&bytes[..bytes.len() - 1], |o, p| part.push((o, p))).is_err());
            prop_assert!(seen.starts_with(&part));
        }

        #[test]
        fn load_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = load_index(&data);
        }
    }
}
