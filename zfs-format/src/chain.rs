//! Backpointer chains: from a record to the record that holds its state.
//!
//! A data record with `plen == 0` holds a backpointer instead of a pickle: the position of
//! an earlier record whose state it shares (written by undo, by the packer, by
//! `FileStorage.restore`), or 0 when the object does not exist as of that record. A chain
//! is followed until a record with a pickle or a zero backpointer. Every link must point
//! strictly backwards and past the magic, so every walk ends.
//!
//! One walk serves every reader: the mapped file ([`FileStorage::resolve`], `recover`, the
//! packer's analysis) and the packer's positioned reads ([`RecordSource`] says how records
//! are read). What differs between them are the rules, given as [`ChainRules`]: whether
//! every record on the chain must carry the oid of the record the walk starts from (ZODB's
//! `_loadBack_impl` does not check), and an optional [`ChainMemo`] of chain ends shared
//! between walks (undo-heavy files have long chains that many records share).
//!
//! [`FileStorage::resolve`]: crate::FileStorage::resolve

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use crate::error::Error;
use crate::ids::Oid;
use crate::record::{DataRecord, Payload};
use crate::storage::FIRST_TXN;

/// What a chain walk needs to know of a record.
pub trait ChainRecord {
    /// The record's oid.
    fn oid(&self) -> Oid;
    /// `None` when the record holds a pickle; its backpointer otherwise (0: the object
    /// does not exist).
    fn backpointer(&self) -> Option<u64>;
}

impl ChainRecord for DataRecord<'_> {
    fn oid(&self) -> Oid {
        self.oid
    }
    fn backpointer(&self) -> Option<u64> {
        match self.payload {
            Payload::Data(_) => None,
            Payload::Backpointer(b) => Some(b),
        }
    }
}

/// Reads the records a chain walk visits.
pub trait RecordSource {
    /// What is read of a record.
    type Record: ChainRecord;
    /// Why a record could not be read.
    type Error;
    /// Reads the record at `pos`.
    fn record(&mut self, pos: u64) -> Result<Self::Record, Self::Error>;
}

/// The bytes of a whole file (a mapping): records are decoded with [`DataRecord::decode`].
impl<'a> RecordSource for &'a [u8] {
    type Record = DataRecord<'a>;
    type Error = Error;
    fn record(&mut self, pos: u64) -> Result<DataRecord<'a>, Error> {
        DataRecord::decode(self, pos)
    }
}

/// Chain ends remembered between walks: the position of a backpointer record → the
/// position of the record holding the state its chain ends at (0: "does not exist").
///
/// A memo must only be shared by walks with the same [`ChainRules::same_oid`].
pub trait ChainMemo: Sync {
    /// The end of the chain through the backpointer record at `pos`, if remembered.
    fn get(&self, pos: u64) -> Option<u64>;
    /// Remembers that the chains through each of the backpointer records `hops` end at
    /// `end`.
    fn put(&self, hops: &[u64], end: u64);
}

/// Shards of a [`ShardedMemo`].
const MEMO_SHARDS: usize = 16;
/// Entries a shard of a [`ShardedMemo`] holds before it is emptied (bounds the memo to
/// about 6 MB).
const MEMO_SHARD_LIMIT: usize = 16 * 1024;

/// A bounded [`ChainMemo`] for walks on several threads: sharded so that they rarely wait
/// on each other, and a full shard is emptied, which bounds the memory.
#[derive(Debug, Default)]
pub struct ShardedMemo {
    shards: [Mutex<HashMap<u64, u64>>; MEMO_SHARDS],
}

impl ShardedMemo {
    /// How many chain ends it holds.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shard holding `pos` (a multiplicative hash spreads neighbouring positions).
    fn shard(&self, pos: u64) -> &Mutex<HashMap<u64, u64>> {
        &self.shards[(pos.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize % MEMO_SHARDS]
    }
}

impl ChainMemo for ShardedMemo {
    fn get(&self, pos: u64) -> Option<u64> {
        self.shard(pos).lock().ok()?.get(&pos).copied()
    }
    fn put(&self, hops: &[u64], end: u64) {
        for &pos in hops {
            if let Ok(mut m) = self.shard(pos).lock() {
                if m.len() >= MEMO_SHARD_LIMIT {
                    m.clear();
                }
                m.insert(pos, end);
            }
        }
    }
}

/// How a chain is walked.
#[derive(Clone, Copy, Default)]
pub struct ChainRules<'m> {
    /// Every record on the chain must carry the oid of the record the walk starts from.
    pub same_oid: bool,
    /// Chain ends remembered between walks. Without `same_oid` a remembered end is used
    /// before the record is read; with it, after the record is read and its oid checked.
    pub memo: Option<&'m dyn ChainMemo>,
}

impl ChainRules<'static> {
    /// Every record of the chain has the starting record's oid; nothing is remembered.
    pub const SAME_OID: Self = ChainRules {
        same_oid: true,
        memo: None,
    };
    /// ZODB's `_loadBack_impl`: oids are not compared; nothing is remembered.
    pub const ANY_OID: Self = ChainRules {
        same_oid: false,
        memo: None,
    };
}

impl fmt::Debug for ChainRules<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainRules")
            .field("same_oid", &self.same_oid)
            .field("memo", &self.memo.is_some())
            .finish()
    }
}

/// Why a chain could not be followed.
#[derive(Debug)]
pub enum ChainError<E> {
    /// The backpointer `back` of the record at `at` does not point strictly backwards to a
    /// position after the magic.
    NotBackwards {
        /// Position of the record holding the backpointer.
        at: u64,
        /// The backpointer.
        back: u64,
    },
    /// The backpointer `back` of the record at `at` leads to a record of another oid (only
    /// under [`ChainRules::same_oid`]).
    OtherOid {
        /// Position of the record holding the backpointer.
        at: u64,
        /// The backpointer.
        back: u64,
        /// The oid found at `back`.
        found: Oid,
    },
    /// The record at `pos` could not be read.
    Unreadable {
        /// The backpointer record that led to `pos`; `None` for the record the walk
        /// started at.
        from: Option<u64>,
        /// Position of the record.
        pos: u64,
        /// What the reader said.
        source: E,
    },
}

impl<E: fmt::Display> fmt::Display for ChainError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainError::NotBackwards { at, back } => {
                write!(f, "backpointer {back} of the record at {at} does not point backwards")
            }
            ChainError::OtherOid { at, back, found } => write!(
                f,
                "backpointer {back} of the record at {at} points to a record of another oid ({found})"
            ),
            ChainError::Unreadable { pos, source, .. } => {
                write!(f, "record at {pos} cannot be read: {source}")
            }
        }
    }
}

/// The result of a chain walk: the record holding the state, or `None` when the chain
/// ends in "does not exist".
pub type Resolved<S> =
    Result<Option<<S as RecordSource>::Record>, ChainError<<S as RecordSource>::Error>>;

/// Follows the chain from the record at `pos` (itself, if it holds a pickle).
///
/// `pos == 0` is "does not exist", as a zero backpointer is.
pub fn resolve<S: RecordSource>(src: &mut S, pos: u64, rules: ChainRules<'_>) -> Resolved<S> {
    if pos == 0 {
        return Ok(None);
    }
    walk(src, pos, None, rules)
}

/// Follows the chain from `record`, already read at `pos`.
pub fn resolve_from<S: RecordSource>(
    src: &mut S,
    pos: u64,
    record: S::Record,
    rules: ChainRules<'_>,
) -> Resolved<S> {
    walk(src, pos, Some(record), rules)
}

/// The walk of [`resolve`] and [`resolve_from`]: from `pos`, whose record is `next` when
/// already read.
fn walk<S: RecordSource>(
    src: &mut S,
    mut pos: u64,
    mut next: Option<S::Record>,
    rules: ChainRules<'_>,
) -> Resolved<S> {
    // The backpointer records passed on the way, remembered once the chain's end is known.
    let mut hops: Vec<u64> = Vec::new();
    // Nothing is remembered without a memo, nor twice.
    let mut remembered = rules.memo.is_none();
    let mut oid = next.as_ref().map(ChainRecord::oid);
    let mut from: Option<u64> = None;
    let remembered_end = |pos: u64, hops: &[u64]| {
        let memo = rules.memo?;
        let end = memo.get(pos)?;
        memo.put(hops, end);
        Some(end)
    };
    loop {
        let rec = match next.take() {
            Some(rec) => rec,
            None => {
                if !remembered && !rules.same_oid {
                    if let Some(end) = remembered_end(pos, &hops) {
                        remembered = true;
                        if end == 0 {
                            return Ok(None);
                        }
                        from = Some(pos);
                        pos = end;
                    }
                }
                let rec = src.record(pos).map_err(|source| ChainError::Unreadable {
                    from,
                    pos,
                    source,
                })?;
                if rules.same_oid {
                    match (oid, from) {
                        (Some(want), Some(at)) if rec.oid() != want => {
                            return Err(ChainError::OtherOid {
                                at,
                                back: pos,
                                found: rec.oid(),
                            });
                        }
                        (None, _) => oid = Some(rec.oid()),
                        _ => {}
                    }
                    if !remembered {
                        if let Some(end) = remembered_end(pos, &hops) {
                            remembered = true;
                            if end == 0 {
                                return Ok(None);
                            }
                            if end != pos {
                                from = Some(pos);
                                pos = end;
                                continue;
                            }
                        }
                    }
                }
                rec
            }
        };
        match rec.backpointer() {
            None => {
                if !remembered {
                    if let Some(memo) = rules.memo {
                        memo.put(&hops, pos);
                    }
                }
                return Ok(Some(rec));
            }
            Some(0) => {
                if !remembered {
                    if let Some(memo) = rules.memo {
                        hops.push(pos);
                        memo.put(&hops, 0);
                    }
                }
                return Ok(None);
            }
            Some(back) => {
                if back >= pos || back < FIRST_TXN {
                    return Err(ChainError::NotBackwards { at: pos, back });
                }
                if !remembered {
                    hops.push(pos);
                }
                from = Some(pos);
                pos = back;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Tid;
    use crate::txn::Status;
    use crate::writer::FileBuilder;

    /// A memo over a plain map.
    #[derive(Default)]
    struct Memo(Mutex<HashMap<u64, u64>>);

    impl ChainMemo for Memo {
        fn get(&self, pos: u64) -> Option<u64> {
            self.0.lock().expect("lock").get(&pos).copied()
        }
        fn put(&self, hops: &[u64], end: u64) {
            let mut m = self.0.lock().expect("lock");
            for &h in hops {
                m.insert(h, end);
            }
        }
    }

    /// Counts the records read.
    struct Counting<'a> {
        file: &'a [u8],
        reads: usize,
    }

    impl<'a> RecordSource for Counting<'a> {
        type Record = DataRecord<'a>;
        type Error = Error;
        fn record(&mut self, pos: u64) -> Result<DataRecord<'a>, Error> {
            self.reads += 1;
            DataRecord::decode(self.file, pos)
        }
    }

    /// Transactions of one record each: oid 1 with data, then `n` backpointer records of
    /// oid 1, each to the one before. Returns the file and the record positions.
    fn chain_file(n: u64) -> (Vec<u8>, Vec<u64>) {
        let mut f = FileBuilder::new(*b"FS30");
        let mut pos = Vec::new();
        for i in 0..=n {
            let mut t = f
                .txn(Tid::from_u64(100 + i), Status::Committed, b"", b"", b"")
                .expect("short strings");
            let p = match pos.last() {
                None => t.data(Oid::from_u64(1), 0, b"state"),
                Some(&back) => t.backpointer(Oid::from_u64(1), back, back),
            };
            pos.push(p);
            f.push(t);
        }
        (f.into_bytes(), pos)
    }

    fn put(v: &mut [u8], at: u64, bytes: &[u8]) {
        let at = at as usize;
        v[at..at + bytes.len()].copy_from_slice(bytes);
    }

    #[test]
    fn follows_to_the_data() {
        let (file, pos) = chain_file(5);
        for rules in [ChainRules::SAME_OID, ChainRules::ANY_OID] {
            for &p in &pos {
                let r = resolve(&mut &file[..], p, rules).expect("sound chain");
                assert_eq!(r.map(|r| r.pos), Some(pos[0]), "from {p}");
            }
        }
        let last = DataRecord::decode(&file, pos[5]).expect("record");
        let r = resolve_from(&mut &file[..], pos[5], last, ChainRules::SAME_OID).expect("sound");
        assert_eq!(r.and_then(|r| r.data()), Some(&b"state"[..]));
        assert!(resolve(&mut &file[..], 0, ChainRules::SAME_OID)
            .expect("zero")
            .is_none());
    }

    #[test]
    fn zero_backpointer_is_absence() {
        let mut f = FileBuilder::new(*b"FS30");
        let mut t = f
            .txn(Tid::from_u64(1), Status::Committed, b"", b"", b"")
            .expect("short");
        let gone = t.backpointer(Oid::from_u64(3), 0, 0);
        let to_gone = t.backpointer(Oid::from_u64(3), gone, gone);
        f.push(t);
        let file = f.into_bytes();
        let r = resolve(&mut &file[..], to_gone, ChainRules::SAME_OID).expect("sound");
        assert!(r.is_none());
    }

    #[test]
    fn bad_links() {
        let (file, pos) = chain_file(3);
        // The last record points forward (to itself).
        let mut v = file.clone();
        put(&mut v, pos[3] + 42, &pos[3].to_be_bytes());
        let e = resolve(&mut &v[..], pos[3], ChainRules::ANY_OID).expect_err("loop");
        assert!(
            matches!(e, ChainError::NotBackwards { at, back } if at == pos[3] && back == pos[3])
        );
        // Into the magic.
        put(&mut v, pos[3] + 42, &3u64.to_be_bytes());
        let e = resolve(&mut &v[..], pos[3], ChainRules::ANY_OID).expect_err("magic");
        assert!(matches!(e, ChainError::NotBackwards { back: 3, .. }), "{e}");
        // A middle record of another oid: only the strict rules object.
        let mut v = file.clone();
        put(&mut v, pos[2], &9u64.to_be_bytes());
        let e = resolve(&mut &v[..], pos[3], ChainRules::SAME_OID).expect_err("oid");
        assert!(
            matches!(e, ChainError::OtherOid { at, back, found } if at == pos[3] && back == pos[2] && found == Oid::from_u64(9)),
            "{e}"
        );
        let r = resolve(&mut &v[..], pos[3], ChainRules::ANY_OID).expect("no oid rule");
        assert_eq!(r.map(|r| r.pos), Some(pos[0]));
        // A target that is not a record (past the end of the file).
        let cut = &file[..pos[1] as usize + 45];
        let e = resolve(&mut &cut[..], pos[1], ChainRules::ANY_OID).expect_err("short");
        assert!(
            matches!(e, ChainError::Unreadable { from: None, .. }),
            "{e}"
        );
        let mut v = file.clone();
        put(&mut v, pos[3] + 42, &(pos[2] + 1).to_be_bytes());
        let e = resolve(&mut &v[..], pos[3], ChainRules::SAME_OID).expect_err("misaligned");
        assert!(
            matches!(
                e,
                ChainError::OtherOid { .. } | ChainError::Unreadable { from: Some(_), .. }
            ),
            "{e}"
        );
    }

    #[test]
    fn memo_saves_reads_and_agrees() {
        let (file, pos) = chain_file(40);
        for same_oid in [false, true] {
            let memo = Memo::default();
            let rules = ChainRules {
                same_oid,
                memo: Some(&memo),
            };
            // The longest chain first, then every record, twice.
            let mut src = Counting {
                file: &file,
                reads: 0,
            };
            let r = resolve(&mut src, pos[40], rules).expect("sound");
            assert_eq!(r.map(|r| r.pos), Some(pos[0]));
            assert_eq!(src.reads, 41);
            src.reads = 0;
            for &p in pos.iter().chain(pos.iter()).rev() {
                let r = resolve(&mut src, p, rules).expect("sound");
                assert_eq!(r.map(|r| r.pos), Some(pos[0]), "from {p}");
            }
            // With the memo each walk reads the end record, plus the starting record when
            // its oid must be checked.
            let per_walk = if same_oid { 2 } else { 1 };
            assert!(
                src.reads <= per_walk * 2 * pos.len(),
                "{} reads (same_oid {same_oid})",
                src.reads
            );
            assert_eq!(memo.0.lock().expect("lock").len(), 40);
        }
    }

    #[test]
    fn memo_remembers_absence() {
        let mut f = FileBuilder::new(*b"FS30");
        let mut prev = 0;
        let mut all = Vec::new();
        for i in 0..5 {
            let mut t = f
                .txn(Tid::from_u64(1 + i), Status::Committed, b"", b"", b"")
                .expect("short");
            prev = t.backpointer(Oid::from_u64(4), prev, prev);
            all.push(prev);
            f.push(t);
        }
        let file = f.into_bytes();
        let memo = Memo::default();
        let rules = ChainRules {
            same_oid: false,
            memo: Some(&memo),
        };
        for &p in all.iter().rev() {
            let mut src = Counting {
                file: &file,
                reads: 0,
            };
            assert!(resolve(&mut src, p, rules).expect("sound").is_none());
            if p != all[4] {
                assert_eq!(src.reads, 0, "remembered: no read from {p}");
            }
        }
    }
}
