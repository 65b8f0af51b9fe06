//! Transaction records: the 23-byte header, its strings, and the records inside.
//!
//! Layout (big-endian, ZODB `FileStorage/format.py`, struct `>8sQcHHH`):
//! `tid[8] tlen[8] status[1] ulen[2] dlen[2] elen[2]`, then `user`, `description`,
//! `extension`, then data records up to `pos + tlen`, then `tlen` again (8 bytes).

use crate::bytes::{array8, be_u16, be_u64, to_usize};
use crate::error::{Error, Result};
use crate::ids::Tid;
use crate::record::DataRecord;

/// Length of the fixed part of a transaction header.
pub const TXN_HEADER_LEN: u64 = 8 /*tid*/ + 8 /*tlen*/ + 1 /*status*/ + 2 + 2 + 2 /*lengths*/;

/// The status byte of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// `' '`: committed.
    Committed,
    /// `'p'`: copied by a pack.
    Packed,
    /// `'c'`: voted but not finished; only ever the last transaction of a live file.
    Checkpoint,
    /// `'u'`: obsolete "undone" status; its records are never indexed.
    Undone,
    /// Any other byte (ZODB warns and reads on).
    Other(u8),
}

impl Status {
    /// Decodes the status byte.
    pub fn from_byte(b: u8) -> Self {
        match b {
            b' ' => Status::Committed,
            b'p' => Status::Packed,
            b'c' => Status::Checkpoint,
            b'u' => Status::Undone,
            other => Status::Other(other),
        }
    }
    /// The byte written in the file.
    pub fn byte(self) -> u8 {
        match self {
            Status::Committed => b' ',
            Status::Packed => b'p',
            Status::Checkpoint => b'c',
            Status::Undone => b'u',
            Status::Other(b) => b,
        }
    }
}

/// The fixed 23 bytes of a transaction header, before anything is known to be consistent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawTxnHeader {
    /// Position of the header in the file.
    pub pos: u64,
    /// Transaction id.
    pub tid: Tid,
    /// Length of the transaction record minus the 8-byte redundant length.
    pub tlen: u64,
    /// Status byte.
    pub status: Status,
    /// Length of the user name.
    pub ulen: u16,
    /// Length of the description.
    pub dlen: u16,
    /// Length of the extension pickle.
    pub elen: u16,
}

impl RawTxnHeader {
    /// Decodes the fixed header at `pos`, or `None` if fewer than 23 bytes remain.
    pub fn decode(file: &[u8], pos: u64) -> Option<Self> {
        let at = to_usize(pos)?;
        let end = at.checked_add(TXN_HEADER_LEN as usize)?;
        let bytes: &[u8; TXN_HEADER_LEN as usize] = file.get(at..end)?.try_into().ok()?;
        Some(Self::from_bytes(bytes, pos))
    }

    /// Decodes the 23 bytes of a header read from file position `pos` (the position is
    /// only recorded).
    pub fn from_bytes(b: &[u8; TXN_HEADER_LEN as usize], pos: u64) -> Self {
        let word = |at| be_u64(b, at).expect("inside the 23-byte array");
        let half = |at| be_u16(b, at).expect("inside the 23-byte array");
        RawTxnHeader {
            pos,
            tid: Tid(array8(b, 0).expect("inside the 23-byte array")),
            tlen: word(8),
            status: Status::from_byte(b[16]),
            ulen: half(17),
            dlen: half(19),
            elen: half(21),
        }
    }

    /// The 23 bytes of this header as the file holds them (`pos` is not part of them).
    pub fn to_bytes(&self) -> [u8; TXN_HEADER_LEN as usize] {
        let mut b = [0u8; TXN_HEADER_LEN as usize];
        b[..8].copy_from_slice(&self.tid.0);
        b[8..16].copy_from_slice(&self.tlen.to_be_bytes());
        b[16] = self.status.byte();
        b[17..19].copy_from_slice(&self.ulen.to_be_bytes());
        b[19..21].copy_from_slice(&self.dlen.to_be_bytes());
        b[21..23].copy_from_slice(&self.elen.to_be_bytes());
        b
    }

    /// Appends the 23 bytes of this header to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }

    /// Header length including user, description and extension.
    pub fn header_len(&self) -> u64 {
        TXN_HEADER_LEN + u64::from(self.ulen) + u64::from(self.dlen) + u64::from(self.elen)
    }

    /// The user, description and extension bytes that follow this header in `file`, or
    /// `None` when they are not all there.
    pub fn strings<'a>(&self, file: &'a [u8]) -> Option<[&'a [u8]; 3]> {
        let start = to_usize(self.pos.checked_add(TXN_HEADER_LEN)?)?;
        let u_end = start.checked_add(usize::from(self.ulen))?;
        let d_end = u_end.checked_add(usize::from(self.dlen))?;
        let e_end = d_end.checked_add(usize::from(self.elen))?;
        Some([
            file.get(start..u_end)?,
            file.get(u_end..d_end)?,
            file.get(d_end..e_end)?,
        ])
    }

    /// Position just after the whole transaction (redundant length included), if it fits in u64.
    pub fn next_pos(&self) -> Option<u64> {
        self.pos.checked_add(self.tlen)?.checked_add(8)
    }
}

/// A transaction whose header and redundant length have been checked against the file.
#[derive(Clone, Copy, Debug)]
pub struct Transaction<'a> {
    /// The fixed header fields.
    pub header: RawTxnHeader,
    /// User name bytes.
    pub user: &'a [u8],
    /// Description bytes.
    pub description: &'a [u8],
    /// Extension bytes (a pickled dict, or empty).
    pub extension: &'a [u8],
    file: &'a [u8],
}

impl<'a> Transaction<'a> {
    /// Builds the view of a transaction whose bounds were checked by the caller:
    /// `pos + tlen + 8 <= file.len()` and `tlen >= header_len`.
    pub(crate) fn checked(file: &'a [u8], header: RawTxnHeader) -> Result<Self> {
        let [user, description, extension] =
            header.strings(file).ok_or_else(|| Error::Corrupt {
                offset: header.pos,
                what: "transaction header outside the file".into(),
            })?;
        Ok(Transaction {
            header,
            user,
            description,
            extension,
            file,
        })
    }

    /// Position of the transaction header.
    pub fn pos(&self) -> u64 {
        self.header.pos
    }
    /// Transaction id.
    pub fn tid(&self) -> Tid {
        self.header.tid
    }
    /// Status.
    pub fn status(&self) -> Status {
        self.header.status
    }
    /// `tlen`: the record length minus 8.
    pub fn tlen(&self) -> u64 {
        self.header.tlen
    }
    /// Position of the first data record.
    pub fn records_start(&self) -> u64 {
        self.header.pos + self.header.header_len()
    }
    /// Position where the data records end (and the redundant length starts).
    pub fn records_end(&self) -> u64 {
        self.header.pos + self.header.tlen
    }
    /// Position of the next transaction.
    pub fn next_pos(&self) -> u64 {
        self.header.pos + self.header.tlen + 8
    }
    /// The bytes of all data records (what fstail hashes).
    pub fn records_bytes(&self) -> &'a [u8] {
        let (s, e) = (self.records_start(), self.records_end());
        match (to_usize(s), to_usize(e)) {
            (Some(s), Some(e)) => self.file.get(s..e).unwrap_or(&[]),
            _ => &[],
        }
    }
    /// Iterates over the data records, checking each against the transaction's bounds.
    pub fn records(&self) -> Records<'a> {
        Records {
            file: self.file,
            txn_pos: self.header.pos,
            pos: self.records_start(),
            end: self.records_end(),
            failed: false,
        }
    }
}

/// Iterator over the data records of one transaction.
#[derive(Clone, Debug)]
pub struct Records<'a> {
    file: &'a [u8],
    txn_pos: u64,
    pos: u64,
    end: u64,
    failed: bool,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<DataRecord<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.end {
            return None;
        }
        let result = DataRecord::decode_in_txn(self.file, self.pos, self.txn_pos, self.end);
        match &result {
            Ok(rec) => self.pos += rec.len(),
            Err(_) => self.failed = true,
        }
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decode_needs_23_bytes() {
        let h = RawTxnHeader {
            pos: 4,
            tid: Tid::from_u64(7),
            tlen: 99,
            status: Status::Packed,
            ulen: 1,
            dlen: 2,
            elen: 3,
        };
        let mut file = b"FS30".to_vec();
        h.encode_into(&mut file);
        assert_eq!(RawTxnHeader::decode(&file, 4), Some(h));
        assert_eq!(RawTxnHeader::decode(&file[..26], 4), None);
        assert_eq!(RawTxnHeader::decode(&file, u64::MAX), None);
        assert_eq!(h.header_len(), 29);
        file.extend_from_slice(b"uddeee");
        let [u, d, e] = h.strings(&file).expect("all there");
        assert_eq!((u, d, e), (&b"u"[..], &b"dd"[..], &b"eee"[..]));
        assert_eq!(h.strings(&file[..32]), None);
        assert_eq!(h.next_pos(), Some(111));
        let far = RawTxnHeader {
            tlen: u64::MAX,
            ..h
        };
        assert_eq!(far.next_pos(), None);
    }

    proptest! {
        /// Encoding then decoding gives the header back, at any position.
        #[test]
        fn header_round_trip(tid in any::<u64>(), tlen in any::<u64>(), status in any::<u8>(),
                             ulen in any::<u16>(), dlen in any::<u16>(), elen in any::<u16>(),
                             pos in 0u64..64) {
            let h = RawTxnHeader { pos, tid: Tid::from_u64(tid), tlen,
                                   status: Status::from_byte(status), ulen, dlen, elen };
            let mut file = vec![0xAA; pos as usize];
            h.encode_into(&mut file);
            prop_assert_eq!(file.len() as u64, pos + TXN_HEADER_LEN);
            prop_assert_eq!(RawTxnHeader::decode(&file, pos), Some(h));
            prop_assert_eq!(h.status.byte(), status);
        }
    }
}
