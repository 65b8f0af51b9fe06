//! Finding the next plausible transaction after damage.
//!
//! The tolerant walks (`check`, `recover`) cannot trust a damaged transaction's length, so
//! they search forward for a position where a transaction header is plausible: its status
//! is one ZODB writes, its length covers its own header, fits in the file and is repeated
//! after it, and its first data record (if it has one) names it as its transaction and
//! fits in it. Every length read from the file is added with checked arithmetic: a
//! candidate whose arithmetic overflows is not plausible.

use crate::bytes::{be_u64_at, to_usize};
use crate::ids::Tid;
use crate::record::RawDataHeader;
use crate::txn::{RawTxnHeader, Status, TXN_HEADER_LEN};

/// Offset of the status byte in a transaction header.
const STATUS_OFFSET: u64 = 16;

/// True for the status bytes ZODB writes: `' '`, `'p'`, `'c'`, `'u'`.
fn known_status(b: u8) -> bool {
    matches!(b, b' ' | b'p' | b'c' | b'u')
}

/// True when a transaction header at `q` is plausible (see the module's doc); with
/// `after`, its tid must also be greater than that one.
pub fn plausible_txn(file: &[u8], q: u64, after: Option<Tid>) -> bool {
    let Some(h) = RawTxnHeader::decode(file, q) else {
        return false;
    };
    if matches!(h.status, Status::Other(_)) || after.is_some_and(|t| h.tid <= t) {
        return false;
    }
    let hlen = h.header_len();
    let file_len = file.len() as u64;
    if h.tlen < hlen || h.next_pos().is_none_or(|n| n > file_len) {
        return false;
    }
    // In range: q + tlen + 8 fits in the file.
    let tend = q + h.tlen;
    if be_u64_at(file, tend) != Some(h.tlen) {
        return false;
    }
    let first = q + hlen;
    if first >= tend {
        return true;
    }
    RawDataHeader::decode(file, first)
        .is_some_and(|r| r.tloc == q && r.end().is_some_and(|e| e <= tend))
}

/// The first position at or after `from` where [`plausible_txn`] holds, if any.
pub fn resync(file: &[u8], from: u64, after: Option<Tid>) -> Option<u64> {
    let last = (file.len() as u64).checked_sub(TXN_HEADER_LEN)?;
    if from > last {
        return None;
    }
    // Candidates are found by their status byte first: a cheap filter over the bytes.
    let hay = file.get(to_usize(from + STATUS_OFFSET)?..=to_usize(last + STATUS_OFFSET)?)?;
    hay.iter()
        .enumerate()
        .filter(|(_, b)| known_status(**b))
        .map(|(i, _)| from + i as u64)
        .find(|&q| plausible_txn(file, q, after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Oid;
    use crate::writer::FileBuilder;
    use proptest::prelude::*;

    /// Three transactions of one record each; returns the file and their positions.
    fn three() -> (Vec<u8>, Vec<u64>) {
        let mut f = FileBuilder::new(*b"FS30");
        let mut at = Vec::new();
        for i in 0..3 {
            at.push(f.pos());
            let mut t = f
                .txn(Tid::from_u64(10 + i), Status::Committed, b"u", b"d", b"")
                .expect("short");
            t.data(Oid::from_u64(i), 0, b"pickle");
            f.push(t);
        }
        (f.into_bytes(), at)
    }

    #[test]
    fn finds_the_next_transaction() {
        let (file, at) = three();
        for &q in &at {
            assert!(plausible_txn(&file, q, None));
            assert!(plausible_txn(&file, q, Some(Tid::from_u64(9))));
            assert!(!plausible_txn(&file, q, Some(Tid::from_u64(12))));
        }
        assert_eq!(resync(&file, at[0] + 1, None), Some(at[1]));
        assert_eq!(resync(&file, at[1], None), Some(at[1]));
        assert_eq!(resync(&file, at[2] + 1, None), None);
        // The tid rule skips transactions not above the given one.
        assert_eq!(resync(&file, 4, Some(Tid::from_u64(10))), Some(at[1]));
        assert_eq!(resync(&file, 4, Some(Tid::from_u64(12))), None);
        assert_eq!(resync(&file, u64::MAX, None), None);
        assert_eq!(resync(&file[..10], 4, None), None);
    }

    #[test]
    fn implausible_headers() {
        let (file, at) = three();
        let q = at[1];
        let edit = |at_off: u64, bytes: &[u8]| {
            let mut v = file.clone();
            let s = (q + at_off) as usize;
            v[s..s + bytes.len()].copy_from_slice(bytes);
            v
        };
        // Unknown status, a length below the header, a damaged redundant length, a first
        // record naming another transaction, a first record longer than the transaction.
        let tlen = RawTxnHeader::decode(&file, q).expect("header").tlen;
        for v in [
            edit(16, b"x"),
            edit(8, &20u64.to_be_bytes()),
            edit(tlen, &(tlen + 1).to_be_bytes()),
            edit(25 + 24, &(q + 1).to_be_bytes()),
            edit(25 + 34, &100u64.to_be_bytes()),
        ] {
            assert!(!plausible_txn(&v, q, None));
            assert_ne!(resync(&v, at[0] + 1, None), Some(q));
        }
    }

    /// The 100-byte file of a damaged header followed by a crafted transaction whose first
    /// record claims a length near 2^64: adding it to the record's position overflows, so
    /// the candidate is not plausible (no panic, no wrapped sum accepted).
    #[test]
    fn overflowing_first_record_is_not_plausible() {
        let mut file = b"FS30".to_vec();
        // At 4: a header whose length runs past any file.
        let damaged = RawTxnHeader {
            pos: 4,
            tid: Tid::from_u64(1),
            tlen: u64::MAX,
            status: Status::Committed,
            ulen: 0,
            dlen: 0,
            elen: 0,
        };
        damaged.encode_into(&mut file);
        // At 27: tid 2, length 65 (repeated at 92), one record naming 27 whose pickle
        // length is 2^64 - 51.
        RawTxnHeader {
            pos: 27,
            tid: Tid::from_u64(2),
            tlen: 65,
            ..damaged
        }
        .encode_into(&mut file);
        RawDataHeader {
            pos: 50,
            oid: Oid::from_u64(0),
            tid: Tid::from_u64(2),
            prev: 0,
            tloc: 27,
            vlen: 0,
            plen: u64::MAX - 50,
        }
        .encode_into(&mut file);
        file.extend_from_slice(&65u64.to_be_bytes());
        assert_eq!(file.len(), 100);
        assert!(!plausible_txn(&file, 27, None));
        assert_eq!(resync(&file, 5, None), None);
        assert_eq!(resync(&file, 5, Some(Tid::default())), None);
    }

    proptest! {
        /// On any bytes, resync returns a plausible position at or after `from`, and no
        /// earlier position at or after `from` is plausible.
        #[test]
        fn resync_finds_the_first(data in proptest::collection::vec(
                                      prop_oneof![Just(0u8), Just(b' '), Just(4u8), any::<u8>()], 0..160),
                                  from in 0u64..80) {
            let found = resync(&data, from, None);
            let len = data.len() as u64;
            let first = (from..len).find(|&q| plausible_txn(&data, q, None));
            prop_assert_eq!(found, first);
        }

        /// The same on a real file with a few bytes changed.
        #[test]
        fn resync_finds_the_first_in_edited_files(
                edits in proptest::collection::vec((0usize..200, any::<u8>()), 0..4),
                from in 0u64..200, after in proptest::option::of(9u64..13)) {
            let (mut data, _) = three();
            for (at, b) in edits {
                let n = data.len();
                data[at % n] = b;
            }
            let after = after.map(Tid::from_u64);
            let len = data.len() as u64;
            let first = (from..len).find(|&q| plausible_txn(&data, q, after));
            prop_assert_eq!(resync(&data, from, after), first);
        }
    }
}
