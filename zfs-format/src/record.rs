//! Data records: the 42-byte header and the pickle or backpointer after it.
//!
//! Layout (big-endian, struct `>8s8sQQHQ`): `oid[8] tid[8] prev[8] tloc[8] vlen[2] plen[8]`,
//! then, for pre-3.9 versioned records (`vlen > 0`), `pnv[8] vprev[8] version[vlen]`,
//! then `plen` bytes of pickle, or, when `plen == 0`, an 8-byte backpointer.

use crate::bytes::{array8, be_u16, be_u64, to_usize};
use crate::error::{Error, Result};
use crate::ids::{Oid, Tid};

/// Length of the fixed part of a data record header.
pub const DATA_HEADER_LEN: u64 = 8 /*oid*/ + 8 /*tid*/ + 8 /*prev*/ + 8 /*tloc*/ + 2 /*vlen*/ + 8 /*plen*/;

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
        let at = to_usize(pos).ok_or_else(|| short("header"))?;
        let oid = array8(file, at).ok_or_else(|| short("header"))?;
        let tid = array8(file, at + 8).ok_or_else(|| short("header"))?;
        let prev = be_u64(file, at + 16).ok_or_else(|| short("header"))?;
        let tloc = be_u64(file, at + 24).ok_or_else(|| short("header"))?;
        let vlen = be_u16(file, at + 32).ok_or_else(|| short("header"))?;
        let plen = be_u64(file, at + 34).ok_or_else(|| short("header"))?;
        let mut body = at + DATA_HEADER_LEN as usize;
        let mut version: &[u8] = &[];
        if vlen > 0 {
            // pnv and vprev, then the version name (ZODB <= 3.8; fstest skips them this way).
            let vstart = body + 16;
            version = file
                .get(vstart..vstart + usize::from(vlen))
                .ok_or_else(|| short("version"))?;
            body = vstart + usize::from(vlen);
        }
        let payload = if plen == 0 {
            Payload::Backpointer(be_u64(file, body).ok_or_else(|| short("backpointer"))?)
        } else {
            let end = to_usize(plen)
                .and_then(|p| body.checked_add(p))
                .ok_or_else(|| short("pickle"))?;
            Payload::Data(file.get(body..end).ok_or_else(|| short("pickle"))?)
        };
        Ok(DataRecord {
            pos,
            oid: Oid(oid),
            tid: Tid(tid),
            prev,
            tloc,
            version,
            payload,
        })
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
                let at = to_usize(pos).unwrap_or(usize::MAX);
                let vlen = be_u16(file, at + 32).unwrap_or(0);
                let plen = be_u64(file, at + 34).unwrap_or(0);
                let extra = if vlen > 0 { 16 + u64::from(vlen) } else { 0 };
                let len = DATA_HEADER_LEN
                    .saturating_add(extra)
                    .saturating_add(if plen == 0 { 8 } else { plen });
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
            16 + self.version.len() as u64
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
}
