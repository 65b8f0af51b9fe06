//! Encoding transactions and data records, for the packer and for tests.
//!
//! A [`TxnBuilder`] collects the records of one transaction at a known file position and
//! produces its bytes: header, strings, records (each with `tloc` = that position), and the
//! redundant length.

use crate::ids::{Oid, Tid};
use crate::record::DATA_HEADER_LEN;
use crate::txn::{Status, TXN_HEADER_LEN};

/// Why a transaction cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// User, description or extension longer than 65535 bytes (ZODB refuses these too).
    #[error("{0} longer than 65535 bytes")]
    TooLong(&'static str),
}

/// Builds one transaction record.
#[derive(Clone, Debug)]
pub struct TxnBuilder {
    pos: u64,
    buf: Vec<u8>,
}

impl TxnBuilder {
    /// Starts the transaction that will be written at file position `pos`.
    pub fn new(
        pos: u64,
        tid: Tid,
        status: Status,
        user: &[u8],
        description: &[u8],
        extension: &[u8],
    ) -> Result<Self, EncodeError> {
        let len16 = |b: &[u8], what| u16::try_from(b.len()).map_err(|_| EncodeError::TooLong(what));
        let (ul, dl, el) = (
            len16(user, "user")?,
            len16(description, "description")?,
            len16(extension, "extension")?,
        );
        let mut buf = Vec::with_capacity(
            TXN_HEADER_LEN as usize + user.len() + description.len() + extension.len(),
        );
        buf.extend_from_slice(&tid.0);
        buf.extend_from_slice(&0u64.to_be_bytes()); // tlen, filled in by finish()
        buf.push(status.byte());
        buf.extend_from_slice(&ul.to_be_bytes());
        buf.extend_from_slice(&dl.to_be_bytes());
        buf.extend_from_slice(&el.to_be_bytes());
        buf.extend_from_slice(user);
        buf.extend_from_slice(description);
        buf.extend_from_slice(extension);
        Ok(TxnBuilder { pos, buf })
    }

    /// The transaction id.
    pub fn tid(&self) -> Tid {
        let mut t = [0; 8];
        t.copy_from_slice(&self.buf[..8]);
        Tid(t)
    }

    /// Position in the file where the next record will start.
    pub fn next_record_pos(&self) -> u64 {
        self.pos + self.buf.len() as u64
    }

    /// Appends a data record holding `data` (must not be empty: an empty pickle cannot be told
    /// from a backpointer). Returns the record's position.
    pub fn data(&mut self, oid: Oid, prev: u64, data: &[u8]) -> u64 {
        debug_assert!(
            !data.is_empty(),
            "a zero-length pickle reads back as a backpointer"
        );
        self.record(oid, prev, data.len() as u64, data)
    }

    /// Appends a backpointer record (`back` = 0: the object does not exist). Returns its
    /// position.
    pub fn backpointer(&mut self, oid: Oid, prev: u64, back: u64) -> u64 {
        self.record(oid, prev, 0, &back.to_be_bytes())
    }

    fn record(&mut self, oid: Oid, prev: u64, plen: u64, body: &[u8]) -> u64 {
        let at = self.next_record_pos();
        let tid = self.tid();
        self.buf.reserve(DATA_HEADER_LEN as usize + body.len());
        self.buf.extend_from_slice(&oid.0);
        self.buf.extend_from_slice(&tid.0);
        self.buf.extend_from_slice(&prev.to_be_bytes());
        self.buf.extend_from_slice(&self.pos.to_be_bytes());
        self.buf.extend_from_slice(&0u16.to_be_bytes());
        self.buf.extend_from_slice(&plen.to_be_bytes());
        self.buf.extend_from_slice(body);
        at
    }

    /// The complete transaction bytes, redundant length included.
    pub fn finish(mut self) -> Vec<u8> {
        let tlen = self.buf.len() as u64;
        self.buf[8..16].copy_from_slice(&tlen.to_be_bytes());
        self.buf.extend_from_slice(&tlen.to_be_bytes());
        self.buf
    }
}

/// Builds whole files in memory: magic, then transactions appended one after another.
#[derive(Clone, Debug)]
pub struct FileBuilder {
    bytes: Vec<u8>,
}

impl FileBuilder {
    /// A file with the given magic and no transactions.
    pub fn new(magic: [u8; 4]) -> Self {
        FileBuilder {
            bytes: magic.to_vec(),
        }
    }
    /// Position where the next transaction starts.
    pub fn pos(&self) -> u64 {
        self.bytes.len() as u64
    }
    /// Starts a transaction at the end of the file.
    pub fn txn(
        &self,
        tid: Tid,
        status: Status,
        user: &[u8],
        description: &[u8],
        extension: &[u8],
    ) -> Result<TxnBuilder, EncodeError> {
        TxnBuilder::new(self.pos(), tid, status, user, description, extension)
    }
    /// Appends a finished transaction.
    pub fn push(&mut self, txn: TxnBuilder) {
        self.bytes.extend_from_slice(&txn.finish());
    }
    /// The file's bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileStorage, Payload};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn write_then_read(txns in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..20),
             proptest::collection::vec((0u64..50, proptest::option::of(proptest::collection::vec(any::<u8>(), 1..40))), 0..6)),
            0..8)) {
            let mut f = FileBuilder::new(*b"FS30");
            let mut want = Vec::new();
            for (i, (user, recs)) in txns.iter().enumerate() {
                let tid = Tid::from_u64(1000 + i as u64);
                let mut t = f.txn(tid, Status::Committed, user, b"d", b"").expect("short strings");
                for (oid, data) in recs {
                    let pos = match data {
                        Some(d) => t.data(Oid::from_u64(*oid), 0, d),
                        None => t.backpointer(Oid::from_u64(*oid), 0, 0),
                    };
                    want.push((tid, Oid::from_u64(*oid), pos, data.clone()));
                }
                f.push(t);
            }
            let bytes = f.into_bytes();
            let fs = FileStorage::from_data(bytes.as_slice(), "t.fs".into()).expect("magic");
            let mut got = Vec::new();
            for t in fs.transactions() {
                let t = t.expect("well formed");
                for r in t.records() {
                    let r = r.expect("well formed");
                    prop_assert_eq!(r.tid, t.tid());
                    let d = match r.payload { Payload::Data(d) => Some(d.to_vec()), Payload::Backpointer(_) => None };
                    got.push((t.tid(), r.oid, r.pos, d));
                }
            }
            prop_assert_eq!(got, want);
            let end = fs.end().expect("clean");
            prop_assert_eq!(end.pos, bytes.len() as u64);
            prop_assert_eq!(end.transactions, txns.len() as u64);
            let back: Vec<u64> = fs.transactions_rev(end.pos).map(|t| t.expect("clean").pos()).collect();
            let fwd: Vec<u64> = fs.transactions().map(|t| t.expect("clean").pos()).collect();
            prop_assert_eq!(back.into_iter().rev().collect::<Vec<_>>(), fwd);
        }
    }
}
