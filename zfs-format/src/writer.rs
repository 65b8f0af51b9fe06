//! Encoding transactions and data records, and finding records again in a file being
//! written.
//!
//! A [`TxnBuilder`] collects the records of one transaction at a known file position and
//! produces its bytes: header, strings, records (each with `tloc` = that position), and the
//! redundant length. The packer, `recover` and the tests write every transaction through
//! it; the header bytes themselves come from [`RawTxnHeader`] and [`RawDataHeader`].
//! [`data_find`] is ZODB's `_data_find`, which re-points a copied backpointer into the
//! output, with the packer's rule or `FileStorage`'s ([`FindRule`]).

use crate::bytes::to_usize;
use crate::ids::{Oid, Tid};
use crate::record::{Payload, RawDataHeader, DATA_HEADER_LEN, TLOC_OFFSET};
use crate::txn::{RawTxnHeader, Status, TXN_HEADER_LEN};

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
    tid: Tid,
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
        let header = RawTxnHeader {
            pos,
            tid,
            tlen: 0, // filled in by finish()
            status,
            ulen: len16(user, "user")?,
            dlen: len16(description, "description")?,
            elen: len16(extension, "extension")?,
        };
        let mut buf = Vec::with_capacity(
            TXN_HEADER_LEN as usize + user.len() + description.len() + extension.len(),
        );
        header.encode_into(&mut buf);
        buf.extend_from_slice(user);
        buf.extend_from_slice(description);
        buf.extend_from_slice(extension);
        Ok(TxnBuilder { pos, tid, buf })
    }

    /// The transaction id.
    pub fn tid(&self) -> Tid {
        self.tid
    }

    /// Position in the file where the next record will start.
    pub fn next_record_pos(&self) -> u64 {
        self.pos + self.tlen()
    }

    /// The transaction's length (`tlen`) if it were finished now: the header, strings and
    /// records so far.
    pub fn tlen(&self) -> u64 {
        self.buf.len() as u64
    }

    /// Makes room for the transaction to reach `tlen` bytes (its redundant length
    /// included) without growing its buffer again: for copies, whose length is known.
    pub fn reserve_for(&mut self, tlen: u64) {
        let total = usize::try_from(tlen.saturating_add(8)).unwrap_or(0);
        self.buf.reserve(total.saturating_sub(self.buf.len()));
    }

    /// Appends a data record holding `data` (must not be empty: an empty pickle cannot be told
    /// from a backpointer), with the transaction's tid as its serial. Returns the record's
    /// position.
    pub fn data(&mut self, oid: Oid, prev: u64, data: &[u8]) -> u64 {
        self.record(oid, self.tid, prev, Payload::Data(data))
    }

    /// Appends a backpointer record (`back` = 0: the object does not exist), with the
    /// transaction's tid as its serial. Returns its position.
    pub fn backpointer(&mut self, oid: Oid, prev: u64, back: u64) -> u64 {
        self.record(oid, self.tid, prev, Payload::Backpointer(back))
    }

    /// Appends a record with its own serial `tid` (a copy keeps the serial it finds) and
    /// `tloc` = the transaction's position. Returns its position.
    pub fn record(&mut self, oid: Oid, tid: Tid, prev: u64, payload: Payload<'_>) -> u64 {
        let at = self.next_record_pos();
        let (plen, body): (u64, &[u8]) = match payload {
            Payload::Data(d) => {
                debug_assert!(
                    !d.is_empty(),
                    "a zero-length pickle reads back as a backpointer"
                );
                (d.len() as u64, d)
            }
            Payload::Backpointer(_) => (0, &[]),
        };
        self.buf
            .reserve(DATA_HEADER_LEN as usize + body.len().max(8));
        RawDataHeader {
            pos: at,
            oid,
            tid,
            prev,
            tloc: self.pos,
            vlen: 0,
            plen,
        }
        .encode_into(&mut self.buf);
        match payload {
            Payload::Data(d) => self.buf.extend_from_slice(d),
            Payload::Backpointer(b) => self.buf.extend_from_slice(&b.to_be_bytes()),
        }
        at
    }

    /// The complete transaction bytes, redundant length included.
    pub fn finish(mut self) -> Vec<u8> {
        let tlen = self.tlen();
        self.buf[8..16].copy_from_slice(&tlen.to_be_bytes());
        self.buf.extend_from_slice(&tlen.to_be_bytes());
        self.buf
    }
}

/// Moves a finished transaction encoded at position 0 to `pos`: sets the `tloc` of the
/// record at offset `record` of `txn` (an offset the builder returned). `None` when no
/// record header fits there.
///
/// For writers that encode transactions before their position is known (the packer
/// encodes many at once, then places them in file order).
pub fn set_tloc(txn: &mut [u8], record: u64, pos: u64) -> Option<()> {
    let at = to_usize(record)?.checked_add(TLOC_OFFSET)?;
    let field = txn.get_mut(at..at.checked_add(8)?)?;
    field.copy_from_slice(&pos.to_be_bytes());
    Some(())
}

/// Which record of an oid [`data_find`] uses when a transaction holds several (an undo of
/// several transactions at once writes one record per undone transaction, all of one oid).
///
/// ZODB has two `_data_find`s that differ here, and byte-identical output needs both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FindRule {
    /// The first record of the oid decides: the packer's `PackCopier._data_find`.
    First,
    /// The last record of the oid decides, as a load would: `FileStorage._data_find`, used
    /// by `FileStorage.restore` and so by `fsrecover`.
    Last,
}

/// ZODB's `_data_find`: the position a copied backpointer of `oid` may use in the
/// transaction at `tpos` of a file being written, or 0 when there is none.
///
/// One record of `oid` in that transaction decides (which one: `rule`): a backpointer
/// record is trusted (its position is returned); a record with a pickle is used only when
/// the pickle is exactly `data`. `data == None` (the chain ends in "does not exist") never
/// matches a pickle (ZODB fails there with a `TypeError`).
///
/// `read_at(buf, pos)` fills `buf` with the file's bytes at `pos` (the transaction must
/// be complete in the file). Positions that overflow end the search with 0.
pub fn data_find<E>(
    mut read_at: impl FnMut(&mut [u8], u64) -> Result<(), E>,
    tpos: u64,
    oid: Oid,
    data: Option<&[u8]>,
    rule: FindRule,
) -> Result<u64, E> {
    let mut th = [0u8; TXN_HEADER_LEN as usize];
    read_at(&mut th, tpos)?;
    let th = RawTxnHeader::from_bytes(&th, tpos);
    let (Some(tend), Some(mut pos)) =
        (tpos.checked_add(th.tlen), tpos.checked_add(th.header_len()))
    else {
        return Ok(0);
    };
    let mut found: Option<RawDataHeader> = None;
    let mut rh = [0u8; DATA_HEADER_LEN as usize];
    while pos < tend {
        read_at(&mut rh, pos)?;
        let h = RawDataHeader::from_bytes(&rh, pos);
        if h.oid == oid {
            found = Some(h);
            if rule == FindRule::First {
                break;
            }
        }
        match h.end() {
            Some(end) => pos = end,
            None => return Ok(0),
        }
    }
    let Some(h) = found else {
        return Ok(0);
    };
    if h.is_backpointer() {
        return Ok(h.pos);
    }
    let (Some(data), Some(body)) = (data, h.body_pos()) else {
        return Ok(0);
    };
    if h.plen != data.len() as u64 {
        return Ok(0);
    }
    let mut stored = vec![0u8; data.len()];
    read_at(&mut stored, body)?;
    Ok(if stored == data { h.pos } else { 0 })
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
    use crate::{DataRecord, FileStorage};
    use proptest::prelude::*;

    /// Reads from an in-memory file as a positioned reader does.
    fn reader(file: &[u8]) -> impl FnMut(&mut [u8], u64) -> Result<(), String> + '_ {
        move |buf, pos| {
            let at = pos as usize;
            let src = file
                .get(at..at + buf.len())
                .ok_or_else(|| format!("short read at {pos}"))?;
            buf.copy_from_slice(src);
            Ok(())
        }
    }

    #[test]
    fn record_keeps_its_own_serial_and_tloc() {
        let mut t =
            TxnBuilder::new(100, Tid::from_u64(5), Status::Packed, b"u", b"", b"e").expect("short");
        assert_eq!(t.next_record_pos(), 100 + 23 + 2);
        t.reserve_for(118);
        let p = t.record(Oid::from_u64(1), Tid::from_u64(3), 7, Payload::Data(b"x"));
        assert_eq!(p, 125);
        let q = t.record(
            Oid::from_u64(2),
            Tid::from_u64(4),
            0,
            Payload::Backpointer(9),
        );
        assert_eq!(t.tlen(), 25 + 43 + 50);
        let bytes = t.finish();
        let h = RawTxnHeader::decode(&bytes, 0).expect("header");
        assert_eq!(
            (h.tid, h.tlen, h.status),
            (Tid::from_u64(5), 118, Status::Packed)
        );
        let r = RawDataHeader::decode(&bytes, p - 100).expect("record");
        assert_eq!(
            (r.tid, r.prev, r.tloc, r.plen),
            (Tid::from_u64(3), 7, 100, 1)
        );
        let r = DataRecord::decode(&bytes, q - 100).expect("record");
        assert_eq!((r.tid, r.backpointer()), (Tid::from_u64(4), Some(9)));
        assert_eq!(&bytes[118..], &118u64.to_be_bytes());
    }

    #[test]
    fn too_long_strings_are_refused() {
        let long = vec![0u8; 65536];
        let e = TxnBuilder::new(4, Tid::from_u64(1), Status::Committed, b"", &long, b"");
        assert_eq!(e.map(|_| ()), Err(EncodeError::TooLong("description")));
    }

    #[test]
    fn set_tloc_moves_a_transaction() {
        let mut t =
            TxnBuilder::new(0, Tid::from_u64(5), Status::Packed, b"", b"", b"").expect("short");
        let a = t.data(Oid::from_u64(1), 0, b"one");
        let b = t.backpointer(Oid::from_u64(2), 0, 0);
        let mut bytes = t.finish();
        for r in [a, b] {
            assert_eq!(set_tloc(&mut bytes, r, 4000), Some(()));
        }
        let mut file = vec![0u8; 4000];
        file.extend_from_slice(&bytes);
        for r in [a, b] {
            let h = RawDataHeader::decode(&file, 4000 + r).expect("record");
            assert_eq!(h.tloc, 4000);
        }
        assert_eq!(set_tloc(&mut bytes, b + 40, 1), None);
        assert_eq!(set_tloc(&mut bytes, u64::MAX, 1), None);
    }

    /// One transaction holding oid 1 twice (first "aaa", then "bbb"), a backpointer of
    /// oid 2, and a record of oid 3.
    fn twice() -> (Vec<u8>, u64, [u64; 4]) {
        let mut f = FileBuilder::new(*b"FS30");
        let tpos = f.pos();
        let mut t = f
            .txn(Tid::from_u64(1), Status::Committed, b"", b"", b"")
            .expect("short");
        let r = [
            t.data(Oid::from_u64(1), 0, b"aaa"),
            t.data(Oid::from_u64(1), 0, b"bbb"),
            t.backpointer(Oid::from_u64(2), 0, 0),
            t.data(Oid::from_u64(3), 0, b"ccc"),
        ];
        f.push(t);
        (f.into_bytes(), tpos, r)
    }

    #[test]
    fn data_find_rules() {
        let (file, tpos, r) = twice();
        let find = |oid, data, rule| data_find(reader(&file), tpos, Oid::from_u64(oid), data, rule);
        // The packer's loop stops at the first record of the oid: its pickle decides.
        assert_eq!(find(1, Some(&b"aaa"[..]), FindRule::First), Ok(r[0]));
        assert_eq!(find(1, Some(&b"bbb"[..]), FindRule::First), Ok(0));
        // FileStorage's loop goes on to the last.
        assert_eq!(find(1, Some(&b"aaa"[..]), FindRule::Last), Ok(0));
        assert_eq!(find(1, Some(&b"bbb"[..]), FindRule::Last), Ok(r[1]));
        for rule in [FindRule::First, FindRule::Last] {
            // A backpointer record is trusted whatever the data.
            assert_eq!(find(2, Some(&b"anything"[..]), rule), Ok(r[2]));
            assert_eq!(find(2, None, rule), Ok(r[2]));
            // Other lengths, other bytes, absence, other oids.
            assert_eq!(find(3, Some(&b"cccc"[..]), rule), Ok(0));
            assert_eq!(find(3, Some(&b"ccd"[..]), rule), Ok(0));
            assert_eq!(find(3, None, rule), Ok(0));
            assert_eq!(find(3, Some(&b"ccc"[..]), rule), Ok(r[3]));
            assert_eq!(find(4, Some(&b"ccc"[..]), rule), Ok(0));
            // Reader errors come back unchanged.
            let short = data_find(reader(&file[..30]), tpos, Oid::from_u64(1), None, rule);
            assert!(short.is_err());
        }
    }

    #[test]
    fn data_find_stops_on_overflowing_lengths() {
        let (mut file, tpos, r) = twice();
        // The first record claims a pickle of 2^64 - 1 bytes: the walk cannot go past it.
        let at = (r[0] + 34) as usize;
        file[at..at + 8].copy_from_slice(&u64::MAX.to_be_bytes());
        for rule in [FindRule::First, FindRule::Last] {
            let found = data_find(reader(&file), tpos, Oid::from_u64(3), None, rule);
            assert_eq!(found, Ok(0));
        }
    }

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
