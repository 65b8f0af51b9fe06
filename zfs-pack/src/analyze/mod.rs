//! Phases A and B of ZODB's packer: the scan up to the pack time (`buildPackIndex`), the
//! redundant-pack rule, and reachability (from the root, and from backpointers after the
//! pack time), computed in parallel with ZODB's sequential results. Records are read at
//! random through [`crate::records`].
//!
//! This module holds the scans and the decisions; `gc.rs` traces references.

mod edges;
mod gc;
mod quick;

use std::collections::BTreeMap;
use std::ops::Deref;

use rayon::prelude::*;
use zfs_format::pickle::Scanner;
use zfs_format::repr::id_repr;
use zfs_format::{DataRecord, FileStorage, Index, Payload, Progress, Status, Tid, Transaction};

use edges::Early;
pub(crate) use edges::{gather_one, Edges};
pub use quick::{fits, quick, references_since, Verify};

use crate::error::{Dangling, Result};
use crate::oidmap::{Bits, OidMap, ABSENT};
use crate::reach::Reach;
use crate::records::{corrupt, state_at};

/// Transactions per parallel work unit.
const CHUNK: usize = 128;
/// Most bytes of transactions walked per batch.
const BATCH_BYTES: u64 = 4 << 20;

/// What the analysis decided.
#[derive(Debug)]
pub enum Analysis {
    /// The storage holds no object (ZODB returns at once and touches nothing).
    Empty,
    /// Already packed to a later time, or nothing new since the last pack (ZODB's
    /// `RedundantPackWarning`).
    Redundant,
    /// The revisions to keep.
    Work(Box<Plan>),
}

/// The outcome of phases A and B.
#[derive(Debug)]
pub struct Plan {
    /// The kept revisions.
    pub reach: Reach,
    /// Position of the first transaction after the pack time.
    pub packpos: u64,
    /// Objects kept only because a revision that a backpointer after the pack time keeps has
    /// its references followed (ZODB keeps such a revision but collects its referents).
    pub extra_kept: usize,
    /// Dangling references ignored under `allow_dangling`, and those found in revisions kept
    /// for a backpointer after the pack time (ZODB keeps those revisions without looking at
    /// them).
    pub dangling_ignored: Vec<Dangling>,
    /// Number of data records before the pack time.
    pub records_before: u64,
    /// Number of transactions before the pack time.
    pub txns_before: u64,
    /// Heap bytes of the references gathered for the trace.
    pub edges_bytes: usize,
    /// For a pack after the last transaction with garbage collection: the references of
    /// the current revisions (as slots of `reach.map`), which the copy completes and the
    /// pack saves for the packed file (see `crate::refs_out`).
    pub(crate) edges: Option<Edges>,
}

/// Options of the analysis.
#[derive(Clone, Copy, Debug)]
pub struct AnalyzeOptions {
    /// The stop tid: transactions with tid <= stop are packed.
    pub stop: Tid,
    /// Garbage collection.
    pub gc: bool,
    /// Pack even if reachable objects refer to missing ones.
    pub allow_dangling: bool,
}

/// ZODB's `checkData` for a record of the transaction at `tpos`.
pub(crate) fn check_data<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    r: &DataRecord<'_>,
) -> Result<()> {
    if !r.version.is_empty() {
        return Err(corrupt(
            fs,
            r.pos,
            "non-zero version length: versions are not supported".into(),
        ));
    }
    if r.prev >= r.pos {
        return Err(corrupt(
            fs,
            r.pos,
            format!("invalid previous pointer: {}", r.prev),
        ));
    }
    if let Payload::Backpointer(back) = r.payload {
        if back >= r.pos {
            return Err(corrupt(fs, r.pos, format!("invalid back pointer: {back}")));
        }
    }
    Ok(())
}

/// ZODB's `checkTxn` for the transaction `t` after one with tid `ltid`, which becomes `t`'s.
pub(crate) fn check_txn<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    t: &Transaction<'_>,
    ltid: &mut Tid,
) -> Result<()> {
    if t.tid() <= *ltid {
        return Err(corrupt(
            fs,
            t.pos(),
            format!(
                "time-stamp reduction: {} <= {}",
                id_repr(t.tid().as_u64()),
                id_repr(ltid.as_u64())
            ),
        ));
    }
    *ltid = t.tid();
    if let Status::Other(b) = t.status() {
        return Err(corrupt(
            fs,
            t.pos(),
            format!("invalid transaction status: {:?}", char::from(b)),
        ));
    }
    if t.status() == Status::Checkpoint {
        return Err(corrupt(
            fs,
            t.pos(),
            "transaction with checkpoint flag set".into(),
        ));
    }
    Ok(())
}

/// Walks transaction headers from `start` to `end` (stopping early when `stop_after` says
/// so) with ZODB's `checkTxn`, in batches for parallel record work.
struct Walker<'a, T: Deref<Target = [u8]>> {
    fs: &'a FileStorage<T>,
    it: zfs_format::Transactions<'a>,
    end: u64,
    ltid: Tid,
    /// Header that ended the walk because of the tid limit.
    pending: Option<Transaction<'a>>,
    done: bool,
}

impl<'a, T: Deref<Target = [u8]>> Walker<'a, T> {
    /// A walk of `[start, end)` whose tids must exceed `ltid`.
    fn new(fs: &'a FileStorage<T>, start: u64, end: u64, ltid: Tid) -> Self {
        Walker {
            fs,
            it: fs.transactions_from(start),
            end,
            ltid,
            pending: None,
            done: false,
        }
    }

    /// Next batch of checked transactions with tid <= `limit`.
    fn batch(&mut self, limit: Option<Tid>) -> Result<Vec<Transaction<'a>>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        while !self.done && bytes < BATCH_BYTES {
            if self.it.pos() >= self.end {
                self.done = true;
                break;
            }
            let Some(t) = self.it.next() else {
                // The committed part was found to end at `end`: a walk that stops before
                // it (possible when that end came from a saved index) met damage.
                if self.it.pos() < self.end {
                    return Err(corrupt(
                        self.fs,
                        self.it.pos(),
                        "no complete transaction here, before the end of the committed data".into(),
                    ));
                }
                self.done = true;
                break;
            };
            let t = t?;
            if limit.is_some_and(|s| t.tid() > s) {
                self.pending = Some(t);
                self.done = true;
                break;
            }
            check_txn(self.fs, &t, &mut self.ltid)?;
            bytes += t.tlen() + 8;
            out.push(t);
        }
        Ok(out)
    }
}

/// Per-chunk result of the scan to the pack time.
#[derive(Default)]
struct ScanPart {
    /// (oid, position or ABSENT) in file order.
    pairs: Vec<(u64, u64)>,
    records: u64,
    any_indexed: bool,
    /// References gathered early (see [`Early::record`]).
    edges: Vec<u32>,
}

/// Backpointers into the packed region found in a chunk, and whether it held records.
type FuturePart = (Vec<(u64, u64)>, bool);

/// Runs phases A and B over the committed part `[4, end)` of `fs`.
///
/// `hint`, the storage's saved index if it has one, lets the scan to the pack time gather
/// the references the trace needs (see `edges.rs`); any index, even a stale one, gives the
/// same result, only the time taken differs.
pub fn analyze<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    end: u64,
    opts: AnalyzeOptions,
    hint: Option<Index>,
    progress: &dyn Progress,
) -> Result<Analysis> {
    let mut early = hint.filter(|_| opts.gc).and_then(Early::new);
    // Phase A: the scan to the pack time.
    progress.start("scanning to the pack time", end.saturating_sub(4));
    let mut map = OidMap::new();
    let mut pending: Vec<(u64, u64)> = Vec::new();
    let mut walker = Walker::new(fs, zfs_format::FIRST_TXN, end, Tid::default());
    // Reads ahead of the scan and drops behind it what it brought into memory.
    let mut stream = fs.stream(zfs_format::FIRST_TXN);
    let mut unpacked = false;
    let mut any_indexed = false;
    let mut last_status = None;
    let mut records_before = 0;
    let mut txns_before = 0;
    loop {
        crate::interrupt::check(progress)?;
        let batch = walker.batch(Some(opts.stop))?;
        if batch.is_empty() {
            break;
        }
        for t in &batch {
            if t.status() != Status::Packed {
                unpacked = true;
            }
            last_status = Some(t.status());
        }
        txns_before += batch.len() as u64;
        let early_ref = early.as_ref();
        let parts: Vec<Result<ScanPart>> = batch
            .par_chunks(CHUNK)
            .map_init(
                || (Scanner::new(), Vec::new()),
                |(sc, slots), chunk| {
                    let mut part = ScanPart::default();
                    let mut done = 0;
                    for t in chunk {
                        for r in t.records() {
                            let r = r?;
                            check_data(fs, &r)?;
                            if let Some(e) = early_ref {
                                e.record(sc, slots, r.oid, r.pos, &r.payload, &mut part.edges);
                            }
                            let keep = !matches!(r.payload, Payload::Backpointer(0));
                            part.pairs
                                .push((r.oid.as_u64(), if keep { r.pos } else { ABSENT }));
                            part.records += 1;
                            if t.status() != Status::Undone {
                                part.any_indexed = true;
                            }
                        }
                        done += t.tlen() + 8;
                    }
                    progress.advance(done);
                    Ok(part)
                },
            )
            .collect();
        for p in parts {
            let p = p?;
            if let Some(e) = &mut early {
                e.add(&p.edges);
            }
            pending.extend_from_slice(&p.pairs);
            records_before += p.records;
            any_indexed |= p.any_indexed;
        }
        stream.advance(fs.bytes(), walker.it.pos());
        if pending.len() > (64 * 1024).max(map.slots() / 4) {
            map.apply(std::mem::take(&mut pending));
        }
    }
    if !pending.is_empty() {
        map.apply(pending);
    }
    let packpos = walker.pending.map_or(walker.it.pos().min(end), |t| t.pos());
    let ltid = walker.ltid;
    if let Some(t) = walker.pending {
        last_status = Some(t.status());
    }

    // The future scan (also tells whether the storage holds any object at all).
    progress.start("scanning after the pack time", end.saturating_sub(packpos));
    let mut future: Vec<(u64, u64)> = Vec::new();
    stream.finish(fs.bytes());
    let mut stream = fs.stream(packpos);
    let mut walker = Walker::new(fs, packpos, end, ltid);
    loop {
        crate::interrupt::check(progress)?;
        let batch = walker.batch(None)?;
        if batch.is_empty() {
            break;
        }
        let parts: Vec<Result<FuturePart>> = batch
            .par_chunks(CHUNK)
            .map(|chunk| {
                let mut v = Vec::new();
                let mut any = false;
                let mut done = 0;
                for t in chunk {
                    for r in t.records() {
                        let r = r?;
                        check_data(fs, &r)?;
                        if t.status() != Status::Undone {
                            any = true;
                        }
                        if let Payload::Backpointer(back) = r.payload {
                            if back != 0 && back < packpos {
                                v.push((r.oid.as_u64(), back));
                            }
                        }
                    }
                    done += t.tlen() + 8;
                }
                progress.advance(done);
                Ok((v, any))
            })
            .collect();
        for p in parts {
            let (v, any) = p?;
            future.extend(v);
            any_indexed |= any;
        }
        stream.advance(fs.bytes(), walker.it.pos());
    }

    if !any_indexed {
        return Ok(Analysis::Empty);
    }
    if !unpacked && last_status == Some(Status::Packed) {
        return Ok(Analysis::Redundant);
    }

    let mut reach = Reach {
        marked: Bits::new(if opts.gc { map.slots() } else { 0 }),
        all_live: !opts.gc,
        map,
        moved: BTreeMap::new(),
        extra: BTreeMap::new(),
    };
    let mut plan = Plan {
        reach: Reach::default(),
        packpos,
        extra_kept: 0,
        dangling_ignored: Vec::new(),
        records_before,
        txns_before,
        edges_bytes: 0,
        edges: None,
    };
    if opts.gc {
        let early: Option<Edges> = early.map(|e| e.into_edges(&reach.map));
        let edges = gc::gc(fs, &mut reach, &future, opts, &mut plan, early, progress)?;
        // Only a pack to the end leaves references: its packed file holds just the
        // revisions whose references these are.
        plan.edges = (packpos == end).then_some(edges);
    } else {
        no_gc_future(fs, &mut reach, &future)?;
    }
    plan.reach = reach;
    Ok(Analysis::Work(Box::new(plan)))
}

/// Without GC, ZODB keeps the current revision of every object and ignores backpointers
/// after the pack time; one to a non-current revision then makes its pack fail. We keep
/// such revisions and succeed: only where ZODB fails does the result differ.
fn no_gc_future<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    reach: &mut Reach,
    future: &[(u64, u64)],
) -> Result<()> {
    for &(oid, back) in future {
        let cur = reach.map.get(oid);
        if cur == Some(back) || reach.is_reachable(oid, back) {
            continue;
        }
        // A chain ending in "does not exist" needs no revision: ZODB writes such records
        // with a zero backpointer whenever the target cannot be found.
        if state_at(fs, back)?.is_none() {
            continue;
        }
        if reach.contains(oid) {
            reach.extra.entry(oid).or_default().push(back);
        } else {
            reach.moved.insert(oid, back);
        }
    }
    Ok(())
}
