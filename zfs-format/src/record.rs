//! Data records: the 42-byte header and the pickle or backpointer after it.
//!
//! Layout (big-endian, struct `>8s8sQQHQ`): `oid[8] tid[8] prev[8] tloc[8] vlen[2] plen[8]`,
//! then, for pre-3.9 versioned records (`vlen > 0`), `pnv[8] vprev[8] version[vlen]`,
//! then `plen` bytes of pickle, or, when `plen == 0`, an 8-byte backpointer.

use crate::bytes::{array8, be_u16, be_u64, be_u64_at, to_usize};
use crate::error::{Error, Result};
use crate::ids::{Oid, Tid};

/// Length of the fixed part of a data record header.
pub const DATA_HEADER_LEN: u64 = 8 /*oid*/ + 8 /*tid*/ + 8 /*prev*/ + 8 /*tloc*/ + 2 /*vlen*/ + 8 /*plen*/;

/// Offset of `tloc` inside a data record header.
pub const TLOC_OFFSET: usize = 24;

/// Bytes between the fixed header and the version name of a versioned (pre-3.9) record:
/// `pnv[8]` and `vprev[8]`.
const VERSION_POINTERS_LEN: u64 = 16;

/// The fixed 42 bytes of a data record header, before anything is known to be consistent.
///
/// The twin of [`RawTxnHeader`](crate::txn::RawTxnHeader): every reader of record headers
/// (the record view [`DataRecord`], the tolerant walks of `check` and `recover`, the
/// packer's positioned reads, `_data_find`) decodes them here, and every writer encodes
/// them here. Lengths derived from the fields are checked: a header that claims more than
/// 2^64 bytes gives `None`, never a wrapped value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RawDataHeader {
    /// Position of the header in the file.
    pub pos: u64,
    /// Object id.
    pub oid: Oid,
    /// Transaction id (serial) written in the record.
    pub tid: Tid,
    /// Position of the oid's previous record, or 0.
    pub prev: u64,
    /// Position of the enclosing transaction.
    pub tloc: u64,
    /// Length of the version name (pre-3.9 versioned records), usually 0.
    pub vlen: u16,
    /// Length of the pickle; 0 for a backpointer record.
    pub plen: u64,
}

impl RawDataHeader {
    /// Decodes the fixed header at `pos`, or `None` if fewer than 42 bytes remain.
    pub fn decode(file: &[u8], pos: u64) -> Option<Self> {
        let at = to_usize(pos)?;
        let end = at.checked_add(DATA_HEADER_LEN as usize)?;
        let bytes: &[u8; DATA_HEADER_LEN as usize] = file.get(at..end)?.try_into().ok()?;
        Some(Self::from_bytes(bytes, pos))
    }

    /// Decodes the 42 bytes of a header read from file position `pos` (the position is
    /// only recorded).
    pub fn from_bytes(b: &[u8; DATA_HEADER_LEN as usize], pos: u64) -> Self {
        let word = |at| be_u64(b, at).expect("inside the 42-byte array");
        let id = |at| array8(b, at).expect("inside the 42-byte array");
        RawDataHeader {
            pos,
            oid: Oid(id(0)),
            tid: Tid(id(8)),
            prev: word(16),
            tloc: word(TLOC_OFFSET),
            vlen: be_u16(b, 32).expect("inside the 42-byte array"),
            plen: word(34),
        }
    }

    /// The 42 bytes of this header as the file holds them (`pos` is not part of them).
    pub fn to_bytes(&self) -> [u8; DATA_HEADER_LEN as usize] {
        let mut b = [0u8; DATA_HEADER_LEN as usize];
        b[..8].copy_from_slice(&self.oid.0);
        b[8..16].copy_from_slice(&self.tid.0);
        b[16..TLOC_OFFSET].copy_from_slice(&self.prev.to_be_bytes());
        b[TLOC_OFFSET..32].copy_from_slice(&self.tloc.to_be_bytes());
        b[32..34].copy_from_slice(&self.vlen.to_be_bytes());
        b[34..42].copy_from_slice(&self.plen.to_be_bytes());
        b
    }

    /// Appends the 42 bytes of this header to `out` (a versioned record's pointers and
    /// name, and the body, are the caller's).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }

    /// True for a backpointer record (`plen == 0`).
    pub fn is_backpointer(&self) -> bool {
        self.plen == 0
    }

    /// Bytes between the fixed header and the body: the two pointers and the name of a
    /// versioned record, else 0.
    pub fn version_part_len(&self) -> u64 {
        if self.vlen > 0 {
            VERSION_POINTERS_LEN + u64::from(self.vlen)
        } else {
            0
        }
    }

    /// Length of the body: the pickle, or the 8-byte backpointer.
    pub fn body_len(&self) -> u64 {
        if self.plen == 0 {
            8
        } else {
            self.plen
        }
    }

    /// The record's total length as its header claims it, `None` beyond 2^64.
    pub fn len(&self) -> Option<u64> {
        DATA_HEADER_LEN
            .checked_add(self.version_part_len())?
            .checked_add(self.body_len())
    }

    /// Records are never empty; provided for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Position just after the record, `None` beyond 2^64.
    pub fn end(&self) -> Option<u64> {
        self.pos.checked_add(self.len()?)
    }

    /// Position of the body (the pickle, or the backpointer), `None` beyond 2^64.
    pub fn body_pos(&self) -> Option<u64> {
        self.pos
            .checked_add(DATA_HEADER_LEN)?
            .checked_add(self.version_part_len())
    }

    /// Position of the backpointer of a backpointer record; `None` for a record with a
    /// pickle (or beyond 2^64).
    pub fn backpointer_pos(&self) -> Option<u64> {
        if self.is_backpointer() {
            self.body_pos()
        } else {
            None
        }
    }

    /// Reads the backpointer of a backpointer record from `file`; `None` for a record with
    /// a pickle, or when the 8 bytes are not in `file`.
    pub fn backpointer_in(&self, file: &[u8]) -> Option<u64> {
        be_u64_at(file, self.backpointer_pos()?)
    }
}

/// What follows a data record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    /// The object's pickle (`plen > 0`).
    Data(&'a [u8]),
    /// `plen == 0`: the position of an earlier record of the same oid holding the state,
    /// or 0 when the object does not exist as of this transaction (undone creation).
    Backpointer(u64),
}

/// A decoded data record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataRecord<'a> {
    /// Position of the record.
    pub pos: u64,
    /// Object id.
    pub oid: Oid,
    /// Transaction id (serial) written in the record.
    pub tid: Tid,
    /// Position of the oid's previous record, or 0.
    pub prev: u64,
    /// Position of the enclosing transaction.
    pub tloc: u64,
    /// Version name of a pre-3.9 versioned record; empty otherwise.
    pub version: &'a [u8],
    /// The pickle or backpointer.
    pub payload: Payload<'a>,
}

impl<'a> DataRecord<'a> {
    /// Decodes the record at `pos` without reference to a transaction.
    pub fn decode(file: &'a [u8], pos: u64) -> Result<Self> {
        let short = |what: &str| Error::Corrupt {
            offset: pos,
            what: format!(
                "data record {what} runs past the end of the file ({})",
                file.len()
            ),
        };
        let h = RawDataHeader::decode(file, pos).ok_or_else(|| short("header"))?;
        Self::decode_body(file, &h).ok_or_else(|| short(Self::short_part(file, &h)))
    }

    /// The record whose fixed header `h` was read from `file`, or `None` when the version
    /// name or the body is not in `file`.
    fn decode_body(file: &'a [u8], h: &RawDataHeader) -> Option<Self> {
        let version = if h.vlen > 0 {
            // pnv and vprev, then the version name (ZODB <= 3.8; fstest skips them this way).
            let start = h
                .pos
                .checked_add(DATA_HEADER_LEN + VERSION_POINTERS_LEN)
                .and_then(to_usize)?;
            file.get(start..start.checked_add(usize::from(h.vlen))?)?
        } else {
            &[]
        };
        let body = h.body_pos()?;
        let payload = if h.is_backpointer() {
            Payload::Backpointer(be_u64_at(file, body)?)
        } else {
            let start = to_usize(body)?;
            let end = start.checked_add(to_usize(h.plen)?)?;
            Payload::Data(file.get(start..end)?)
        };
        Some(DataRecord {
            pos: h.pos,
            oid: h.oid,
            tid: h.tid,
            prev: h.prev,
            tloc: h.tloc,
            version,
            payload,
        })
    }

    /// Which part of the record after the header `h` is not in `file`, for messages.
    fn short_part(file: &[u8], h: &RawDataHeader) -> &'static str {
        let name_end = h
            .pos
            .checked_add(DATA_HEADER_LEN + VERSION_POINTERS_LEN)
            .and_then(|p| p.checked_add(u64::from(h.vlen)));
        if h.vlen > 0 && name_end.is_none_or(|e| e > file.len() as u64) {
            "version"
        } else if h.is_backpointer() {
            "backpointer"
        } else {
            "pickle"
        }
    }

    /// The fixed header fields of this record.
    pub fn header(&self) -> RawDataHeader {
        RawDataHeader {
            pos: self.pos,
            oid: self.oid,
            tid: self.tid,
            prev: self.prev,
            tloc: self.tloc,
            vlen: u16::try_from(self.version.len()).expect("read through a 16-bit length"),
            plen: self.plen(),
        }
    }

    /// Decodes the record at `pos` inside the transaction at `txn_pos` whose records end at
    /// `txn_end`, with ZODB's checks: the record fits and its `tloc` is the transaction.
    pub fn decode_in_txn(file: &'a [u8], pos: u64, txn_pos: u64, txn_end: u64) -> Result<Self> {
        let exceeds = |len: u64| Error::RecordExceedsTxn {
            offset: pos,
            len,
            txn: txn_pos,
            txn_end,
        };
        // Only look at bytes that belong to the transaction.
        let limit = to_usize(txn_end).ok_or_else(|| exceeds(0))?;
        let within = file.get(..limit).ok_or_else(|| exceeds(0))?;
        if pos.checked_add(DATA_HEADER_LEN).is_none_or(|e| e > txn_end) {
            return Err(exceeds(DATA_HEADER_LEN));
        }
        let rec = match Self::decode(within, pos) {
            Ok(rec) => rec,
            Err(_) => {
                // Report the length the header claims, read from the real file.
                let len = RawDataHeader::decode(file, pos)
                    .map_or(DATA_HEADER_LEN + 8, |h| h.len().unwrap_or(u64::MAX));
                return Err(exceeds(len));
            }
        };
        if rec.tloc != txn_pos {
            return Err(Error::BadTloc {
                offset: pos,
                found: rec.tloc,
                expected: txn_pos,
            });
        }
        Ok(rec)
    }

    /// Total length of the record in the file.
    pub fn len(&self) -> u64 {
        let v = if self.version.is_empty() {
            0
        } else {
            VERSION_POINTERS_LEN + self.version.len() as u64
        };
        DATA_HEADER_LEN
            + v
            + match self.payload {
                Payload::Data(d) => d.len() as u64,
                Payload::Backpointer(_) => 8,
            }
    }

    /// Records are never empty; provided for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The record's own pickle, if it carries one.
    pub fn data(&self) -> Option<&'a [u8]> {
        match self.payload {
            Payload::Data(d) => Some(d),
            Payload::Backpointer(_) => None,
        }
    }

    /// The `plen` field.
    pub fn plen(&self) -> u64 {
        match self.payload {
            Payload::Data(d) => d.len() as u64,
            Payload::Backpointer(_) => 0,
        }
    }

    /// The backpointer, if `plen == 0` (0 means "does not exist").
    pub fn backpointer(&self) -> Option<u64> {
        match self.payload {
            Payload::Backpointer(b) => Some(b),
            Payload::Data(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec(plen: u64, tail: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&7u64.to_be_bytes());
        v.extend_from_slice(&[3; 8]);
        v.extend_from_slice(&0u64.to_be_bytes());
        v.extend_from_slice(&4u64.to_be_bytes());
        v.extend_from_slice(&0u16.to_be_bytes());
        v.extend_from_slice(&plen.to_be_bytes());
        v.extend_from_slice(tail);
        v
    }

    #[test]
    fn data_and_backpointer() {
        let d = rec(3, b"abc");
        let r = DataRecord::decode(&d, 0).expect("valid");
        assert_eq!(r.data(), Some(&b"abc"[..]));
        assert_eq!(r.len(), 45);
        let d = rec(0, &9u64.to_be_bytes());
        let r = DataRecord::decode(&d, 0).expect("valid");
        assert_eq!(r.backpointer(), Some(9));
        assert_eq!(r.len(), 50);
    }

    #[test]
    fn truncated_is_an_error() {
        let d = rec(10, b"abc");
        assert!(DataRecord::decode(&d, 0).is_err());
        let d = rec(u64::MAX, b"abc");
        assert!(DataRecord::decode(&d, 0).is_err());
        assert!(DataRecord::decode(&d, u64::MAX).is_err());
        let d = rec(3, b"abc");
        let e = DataRecord::decode_in_txn(&d, 0, 4, 44).expect_err("exceeds");
        assert!(matches!(e, Error::RecordExceedsTxn { len: 45, .. }), "{e}");
        let e = DataRecord::decode_in_txn(&d, 0, 5, 45).expect_err("tloc");
        assert!(matches!(e, Error::BadTloc { found: 4, .. }), "{e}");
    }

    #[test]
    fn raw_header_lengths() {
        let d = rec(3, b"abc");
        let h = RawDataHeader::decode(&d, 0).expect("42 bytes");
        assert_eq!(h.oid, Oid::from_u64(7));
        assert_eq!((h.tloc, h.plen, h.vlen), (4, 3, 0));
        assert_eq!(
            (h.len(), h.end(), h.body_pos()),
            (Some(45), Some(45), Some(42))
        );
        assert_eq!(h.backpointer_pos(), None);
        assert_eq!(RawDataHeader::decode(&d[..41], 0), None);
        assert_eq!(RawDataHeader::decode(&d, u64::MAX), None);
        let d = rec(0, &9u64.to_be_bytes());
        let h = RawDataHeader::decode(&d, 0).expect("42 bytes");
        assert_eq!((h.len(), h.backpointer_pos()), (Some(50), Some(42)));
        assert_eq!(h.backpointer_in(&d), Some(9));
        assert_eq!(h.backpointer_in(&d[..49]), None);
        // A versioned record: 16 bytes of pointers and the name before the body.
        let v = RawDataHeader { vlen: 2, ..h };
        assert_eq!((v.len(), v.body_pos()), (Some(68), Some(60)));
        // Lengths that do not fit in 64 bits are None, never wrapped.
        let huge = RawDataHeader {
            plen: u64::MAX - 42,
            ..h
        };
        assert_eq!(huge.len(), Some(u64::MAX));
        assert_eq!(RawDataHeader { pos: 1, ..huge }.end(), None);
        assert_eq!(
            RawDataHeader {
                plen: u64::MAX - 41,
                ..h
            }
            .len(),
            None
        );
        assert_eq!(
            RawDataHeader {
                pos: u64::MAX - 41,
                ..h
            }
            .body_pos(),
            None
        );
    }

    #[test]
    fn versioned_record_short_parts_are_named() {
        let mut d = rec(3, b"");
        d[32..34].copy_from_slice(&5u16.to_be_bytes());
        let e = DataRecord::decode(&d, 0).expect_err("no version");
        assert!(e.to_string().contains("version"), "{e}");
        d.extend_from_slice(&[0; 16]);
        d.extend_from_slice(b"vname");
        let e = DataRecord::decode(&d, 0).expect_err("no pickle");
        assert!(e.to_string().contains("pickle"), "{e}");
        d.extend_from_slice(b"abc");
        let r = DataRecord::decode(&d, 0).expect("complete");
        assert_eq!(
            (r.version, r.data(), r.len()),
            (&b"vname"[..], Some(&b"abc"[..]), 66)
        );
        assert_eq!(r.header(), RawDataHeader::decode(&d, 0).expect("42 bytes"));
    }

    proptest! {
        /// Encoding then decoding gives the header back at any position, and the record
        /// view built on it agrees with the header's lengths.
        #[test]
        fn header_round_trip(oid in any::<u64>(), tid in any::<u64>(), prev in any::<u64>(),
                             tloc in any::<u64>(), vlen in any::<u16>(), plen in any::<u64>(),
                             pos in 0u64..64) {
            let h = RawDataHeader { pos, oid: Oid::from_u64(oid), tid: Tid::from_u64(tid),
                                    prev, tloc, vlen, plen };
            let mut file = vec![0x55; pos as usize];
            h.encode_into(&mut file);
            prop_assert_eq!(file.len() as u64, pos + DATA_HEADER_LEN);
            prop_assert_eq!(RawDataHeader::decode(&file, pos), Some(h));
            prop_assert_eq!(RawDataHeader::from_bytes(&h.to_bytes(), pos), h);
            let want = 42u128 + if vlen > 0 { 16 + u128::from(vlen) } else { 0 }
                + if plen == 0 { 8 } else { u128::from(plen) };
            prop_assert_eq!(h.len().map(u128::from), u64::try_from(want).ok().map(u128::from));
        }

        /// A small record written whole decodes to a view whose header is the one written.
        #[test]
        fn record_view_agrees(vlen in 0u16..4, body in proptest::collection::vec(any::<u8>(), 0..12)) {
            let plen = body.len() as u64;
            let h = RawDataHeader { pos: 0, oid: Oid::from_u64(1), tid: Tid::from_u64(2),
                                    prev: 0, tloc: 0, vlen, plen };
            let mut file = Vec::new();
            h.encode_into(&mut file);
            if vlen > 0 {
                file.extend_from_slice(&[0; 16]);
                file.extend(std::iter::repeat_n(b'v', usize::from(vlen)));
            }
            if plen == 0 {
                file.extend_from_slice(&5u64.to_be_bytes());
            } else {
                file.extend_from_slice(&body);
            }
            let r = DataRecord::decode(&file, 0).expect("complete record");
            prop_assert_eq!(r.header(), h);
            prop_assert_eq!(Some(r.len()), h.len());
            prop_assert_eq!(r.len(), file.len() as u64);
            prop_assert_eq!(r.backpointer(), h.backpointer_in(&file));
        }
    }
}
