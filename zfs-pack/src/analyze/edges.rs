//! The references of every revision current at the pack time, gathered in one walk in
//! file order before the trace.
//!
//! Tracing from the root visits the objects in the graph's order, which is not the file's:
//! reading each record where it lies then costs a random read per object, and a file
//! larger than the memory the pack may use has its pages read again and again. One walk in
//! file order reads each page once and keeps, per object, the slots of the objects its
//! current revision refers to; the trace then reads records only for the revisions this
//! walk leaves out (see [`gather`]), in the same order and with the same results as before.
//!
//! When the storage has a saved `.index`, the scan to the pack time gathers already (see
//! [`Early`]): the revisions that index names as current are, when the pack time is after
//! the index's, the current ones at the pack time too, and the separate walk is needed only
//! when too many are left out.

use std::ops::Deref;

use rayon::prelude::*;
use zfs_format::pickle::{untransform, Scanner, StringMode};
use zfs_format::{FileStorage, Index, Oid, Payload, Progress, Tid};

use super::{Walker, CHUNK};
use crate::error::Result;
use crate::oidmap::{OidMap, ABSENT};

/// `start` of a slot whose references were not gathered.
pub(super) const UNKNOWN: u32 = u32::MAX;

/// Per slot, the slots its current revision refers to, for the revisions gathered.
#[derive(Debug, Default)]
pub(crate) struct Edges {
    /// Per slot: where its entry in `list` starts (a count, then that many slots), or
    /// [`UNKNOWN`]. 32 bits: once `list` outgrows them, the rest is left to the trace.
    start: Vec<u32>,
    list: Vec<u32>,
}

impl Edges {
    /// The slots the current revision of `slot` refers to, in the order of its pickle
    /// (repeats included), or `None` when they were not gathered.
    pub(crate) fn of(&self, slot: usize) -> Option<&[u32]> {
        let at = *self.start.get(slot)?;
        if at == UNKNOWN {
            return None;
        }
        let at = at as usize;
        let n = usize::try_from(*self.list.get(at)?).ok()?;
        self.list.get(at + 1..at + 1 + n)
    }

    /// No references gathered yet for `slots` slots.
    pub(super) fn unknown(slots: usize) -> Edges {
        Edges {
            start: vec![UNKNOWN; slots],
            list: Vec::new(),
        }
    }

    /// Where each slot's entry starts in the list ([`UNKNOWN`] when not gathered), and the
    /// list (a count, then that many slots, per entry).
    pub(super) fn into_parts(self) -> (Vec<u32>, Vec<u32>) {
        (self.start, self.list)
    }

    /// The same references with the list laid out in slot order, so that equal references
    /// give equal lists whatever order they were gathered in.
    pub(super) fn in_slot_order(self) -> Edges {
        let mut start = vec![UNKNOWN; self.start.len()];
        let mut list = Vec::with_capacity(self.list.len());
        for (s, at) in start.iter_mut().enumerate() {
            if let Some(l) = self.of(s) {
                // No longer than the list these entries come from, whose starts fit.
                *at = list.len() as u32;
                list.push(l.len() as u32);
                list.extend_from_slice(l);
            }
        }
        Edges { start, list }
    }

    /// Heap bytes held, for memory reports.
    pub(super) fn heap_bytes(&self) -> usize {
        self.start.capacity() * 4 + self.list.capacity() * 4
    }

    /// Adds the entries of a part, `(slot, count, the count's slots)` after one another.
    pub(crate) fn add(&mut self, part: &[u32]) {
        let mut rest = part;
        while let [slot, n, more @ ..] = rest {
            let n = *n as usize;
            let Some((refs, after)) = more.split_at_checked(n) else {
                break;
            };
            rest = after;
            // The entry (its count, then its slots) must end where a start can be.
            match u32::try_from(self.list.len() + 1 + n) {
                Ok(end) if end < UNKNOWN => {}
                _ => continue,
            }
            let Some(start) = self.start.get_mut(*slot as usize) else {
                continue;
            };
            *start = self.list.len() as u32;
            self.list.push(n as u32);
            self.list.extend_from_slice(refs);
        }
    }

    /// Slots present in `map` whose references are not gathered.
    pub(super) fn missing(&self, map: &OidMap) -> usize {
        (0..map.slots())
            .filter(|&s| map.pos_at(s) != ABSENT && self.start.get(s) == Some(&UNKNOWN))
            .count()
    }
}

/// References gathered by the scan to the pack time, before the pack time's map exists:
/// for each revision a saved index names as current, the index's slots of the objects it
/// refers to. [`Early::into_edges`] keeps those that are current at the pack time too.
#[derive(Debug)]
pub(super) struct Early {
    hint: Index,
    edges: Edges,
}

impl Early {
    /// Gathering for the revisions `hint` names; `None` when its slots do not fit 32 bits.
    pub(super) fn new(hint: Index) -> Option<Early> {
        u32::try_from(hint.len()).ok()?;
        let edges = Edges {
            start: vec![UNKNOWN; hint.len()],
            list: Vec::new(),
        };
        Some(Early { hint, edges })
    }

    /// Appends to `out` the entry of the record of `oid` at `pos` (see [`Edges::add`]) when
    /// the hint names it as current and its references can be read.
    pub(super) fn record(
        &self,
        sc: &mut Scanner,
        slots: &mut Vec<u32>,
        oid: Oid,
        pos: u64,
        payload: &Payload<'_>,
        out: &mut Vec<u32>,
    ) {
        let Some(slot) = self.hint.slot(oid) else {
            return;
        };
        let Payload::Data(bytes) = payload else {
            return;
        };
        if self.hint.pos_at(slot) != pos {
            return;
        }
        let hint = &self.hint;
        if refs_of(sc, bytes, slots, |o| hint.slot(o)) {
            push_entry(out, slot, slots);
        }
    }

    /// Adds what [`Early::record`] found for a part of the scan.
    pub(super) fn add(&mut self, part: &[u32]) {
        self.edges.add(part);
    }

    /// The gathered references as slots of `map` (the pack time's): an entry is kept when
    /// its revision is the current one in `map` and every object it refers to is present
    /// there; the others are left out, as [`gather`] leaves them.
    pub(super) fn into_edges(self, map: &OidMap) -> Edges {
        let Early { hint, edges } = self;
        let Edges {
            mut start,
            mut list,
        } = edges;
        // The hint's slots as `map`'s (both in oid order): present objects only. Entries of
        // revisions that are not current in `map` are forgotten on the way.
        let mut present = vec![UNKNOWN; hint.len()];
        let mut m = map.iter().enumerate().peekable();
        for (i, (oid, pos)) in hint.iter().enumerate() {
            let oid = oid.as_u64();
            while m.next_if(|&(_, (o, _))| o < oid).is_some() {}
            let mut current = false;
            if let Some(&(slot, (o, mpos))) = m.peek() {
                if o == oid && mpos != ABSENT {
                    present[i] = u32::try_from(slot).unwrap_or(UNKNOWN);
                    current = mpos == pos;
                }
            }
            if !current {
                start[i] = UNKNOWN;
            }
        }
        drop(hint);
        let mut out = vec![UNKNOWN; map.slots()];
        for (i, &at) in start.iter().enumerate() {
            if at == UNKNOWN {
                continue;
            }
            let at = at as usize;
            let Some(&n) = list.get(at) else {
                continue;
            };
            let Some(refs) = list.get_mut(at + 1..at + 1 + n as usize) else {
                continue;
            };
            let mut all = true;
            for r in refs.iter_mut() {
                *r = present.get(*r as usize).copied().unwrap_or(UNKNOWN);
                all &= *r != UNKNOWN;
            }
            if all {
                out[present[i] as usize] = at as u32;
            }
        }
        list.shrink_to_fit();
        Edges { start: out, list }
    }
}

/// Appends `(slot, count, slots)` to `out`, when the numbers fit 32 bits.
pub(super) fn push_entry(out: &mut Vec<u32>, slot: usize, slots: &[u32]) {
    if let (Ok(s), Ok(n)) = (u32::try_from(slot), u32::try_from(slots.len())) {
        out.push(s);
        out.push(n);
        out.extend_from_slice(slots);
    }
}

/// Walks `[4, packpos)` in file order and gathers the references of each revision that is
/// current in `map`. A revision is left to the trace (which reads it and reports what it
/// finds, as it always did) when it is a backpointer, its pickle cannot be read, or it
/// refers to anything but an object present at the pack time: what is gathered never
/// needs an error or a dangling reference reported.
///
/// The revisions whose references `base` (of `map`'s slots) holds already are not read again.
pub(super) fn gather<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    map: &OidMap,
    packpos: u64,
    base: Option<Edges>,
    progress: &dyn Progress,
) -> Result<Edges> {
    let mut edges = base.unwrap_or_else(|| Edges {
        start: vec![UNKNOWN; map.slots()],
        list: Vec::new(),
    });
    // Slots are stored in 32 bits; the index's own layout holds no more than that.
    if u32::try_from(map.slots()).is_err() {
        return Ok(edges);
    }
    progress.start("gathering references", packpos.saturating_sub(4));
    let mut walker = Walker::new(fs, zfs_format::FIRST_TXN, packpos, Tid::default());
    let mut stream = fs.stream(zfs_format::FIRST_TXN);
    loop {
        crate::interrupt::check(progress)?;
        let batch = walker.batch(None)?;
        if batch.is_empty() {
            break;
        }
        // Per chunk, in file order: (slot, count, the count's slots) for each revision.
        let parts: Vec<Result<Vec<u32>>> = batch
            .par_chunks(CHUNK)
            .map_init(
                || (Scanner::new(), Vec::new()),
                |(sc, slots), chunk| {
                    let mut out = Vec::new();
                    let mut done = 0;
                    for t in chunk {
                        for r in t.records() {
                            let r = r?;
                            let Some(slot) = map.slot(r.oid.as_u64()) else {
                                continue;
                            };
                            if map.pos_at(slot) != r.pos || edges.start.get(slot) != Some(&UNKNOWN)
                            {
                                continue;
                            }
                            let Payload::Data(bytes) = r.payload else {
                                continue;
                            };
                            gather_one(sc, slots, map, slot, bytes, &mut out);
                        }
                        done += t.tlen() + 8;
                    }
                    progress.advance(done);
                    Ok(out)
                },
            )
            .collect();
        for part in parts {
            edges.add(&part?);
        }
        stream.advance(fs.bytes(), walker.it.pos());
    }
    stream.finish(fs.bytes());
    edges.list.shrink_to_fit();
    Ok(edges)
}

/// The slot of `oid` in `map` when the object is present there.
fn present(map: &OidMap, oid: Oid) -> Option<usize> {
    map.slot(oid.as_u64()).filter(|&s| map.pos_at(s) != ABSENT)
}

/// Appends to `part` (as [`Edges::add`] takes it) the entry of `slot` of `map`, whose
/// record holds `pickle`, when the pickle can be read and every object it refers to is
/// present in `map`.
pub(crate) fn gather_one(
    sc: &mut Scanner,
    slots: &mut Vec<u32>,
    map: &OidMap,
    slot: usize,
    pickle: &[u8],
    part: &mut Vec<u32>,
) {
    if refs_of(sc, pickle, slots, |o| present(map, o)) {
        push_entry(part, slot, slots);
    }
}

/// Fills `slots` with the slots (`slot_of`) of the objects `pickle` refers to, in order;
/// false when one of them cannot be read or has no slot (the trace reads the record).
pub(super) fn refs_of(
    sc: &mut Scanner,
    pickle: &[u8],
    slots: &mut Vec<u32>,
    slot_of: impl Fn(Oid) -> Option<usize>,
) -> bool {
    slots.clear();
    let Ok(plain) = untransform(pickle) else {
        return false;
    };
    let mut refs = Vec::new();
    // The same mode as the trace's reads (see `scan_refs`).
    if sc
        .references_into(&plain, StringMode::Bytes, &mut refs)
        .is_err()
    {
        return false;
    }
    for r in &refs {
        let Some(slot) = Oid::from_slice(r).and_then(&slot_of) else {
            return false;
        };
        match u32::try_from(slot) {
            Ok(s) => slots.push(s),
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use zfs_format::{NoProgress, Oid, Tid};
    use zfs_testdata::gen::{generate, Config};

    use crate::analyze::{analyze, Analysis, AnalyzeOptions};
    use crate::records::state_at;

    /// A generated file of 3 MB with dangling references, as `Data.fs` in a new directory;
    /// its bytes and last tid.
    fn generated(seed: u64) -> (tempfile::TempDir, Vec<u8>, Tid) {
        let cfg = Config {
            seed,
            size: Some(3 << 20),
            dangling: 4,
            ..Config::default()
        };
        let mut bytes = Vec::new();
        let sum = generate(&cfg, &mut bytes, &NoProgress).expect("generate");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("Data.fs"), &bytes).expect("write");
        (dir, bytes, sum.last_tid)
    }

    /// The analysis of `fs` without GC up to `stop`: it keeps every current revision, and
    /// its map is the one the trace would use.
    fn plan_without_gc(fs: &FileStorage<zfs_files::Map>, stop: Tid) -> Box<crate::analyze::Plan> {
        let opts = AnalyzeOptions {
            stop,
            gc: false,
            allow_dangling: false,
        };
        match analyze(fs, fs.len(), opts, None, &NoProgress).expect("analyze") {
            Analysis::Work(plan) => plan,
            _ => panic!("nothing to pack"),
        }
    }

    /// Every revision gathered has the references a read of its record finds, in order;
    /// every current revision left out is one the trace must read (a backpointer, or a
    /// reference to an object absent at the pack time).
    #[test]
    fn gathered_references_are_those_of_the_records() {
        for seed in [3, 11] {
            let (dir, _, last_tid) = generated(seed);
            let fs = FileStorage::open(dir.path().join("Data.fs")).expect("open");
            let plan = plan_without_gc(&fs, Tid::from_u64(last_tid.as_u64() + 1));
            let map = &plan.reach.map;
            let edges = gather(&fs, map, plan.packpos, None, &NoProgress).expect("gather");
            let mut sc = Scanner::new();
            let (mut gathered, mut left) = (0, 0);
            for slot in 0..map.slots() {
                let pos = map.pos_at(slot);
                if pos == ABSENT {
                    assert!(edges.of(slot).is_none(), "absent slot {slot}");
                    continue;
                }
                let rec = fs.record_at(pos).expect("record");
                // What a read of the record finds, as slots of present objects.
                let read: Option<Vec<u32>> = match state_at(&fs, pos).expect("state") {
                    Some(d) if matches!(rec.payload, Payload::Data(_)) => {
                        let plain = untransform(d.data().unwrap_or_default()).expect("pickle");
                        let mut refs = Vec::new();
                        sc.references_into(&plain, StringMode::Bytes, &mut refs)
                            .expect("refs");
                        refs.iter()
                            .map(|r| {
                                let oid = Oid::from_slice(r)?.as_u64();
                                let s = map.slot(oid)?;
                                (map.pos_at(s) != ABSENT).then_some(s as u32)
                            })
                            .collect()
                    }
                    _ => None,
                };
                assert_eq!(edges.of(slot), read.as_deref(), "slot {slot} at {pos}");
                if read.is_some() {
                    gathered += 1;
                } else {
                    left += 1;
                }
            }
            // Most revisions are gathered; the dangling references and undos leave some.
            assert!(gathered > 1000, "seed {seed}: {gathered} gathered");
            assert!(left > 0, "seed {seed}: none left to the trace");
            assert!(edges.heap_bytes() >= map.slots() * 4);
        }
    }

    /// What the scan gathers with a saved index's help, kept for the pack time's map, is
    /// what the walk gathers; the walk given it as a base gathers the same as alone. With
    /// the index of the whole file and a pack time before its end, revisions replaced after
    /// the pack time are left out by the scan; with a stale index (of the file's first
    /// half), the revisions it names that are no longer current are left out too.
    #[test]
    fn early_references_are_the_walks() {
        for (seed, cut, stale) in [
            (5, false, false),
            (5, true, false),
            (13, true, false),
            (7, false, true),
        ] {
            let (dir, bytes, last_tid) = generated(seed);
            let fs = FileStorage::open(dir.path().join("Data.fs")).expect("open");
            let txns: Vec<(u64, Tid)> = fs
                .transactions_from(zfs_format::FIRST_TXN)
                .map(|t| t.expect("txn"))
                .map(|t| (t.pos(), t.tid()))
                .collect();
            let tids: Vec<Tid> = txns.iter().map(|t| t.1).collect();
            let hint = if stale {
                let half = dir.path().join("half.fs");
                let cut_at = txns[txns.len() / 2].0 as usize;
                std::fs::write(&half, &bytes[..cut_at]).expect("write");
                let half = FileStorage::open(&half).expect("open");
                zfs_format::scan::build_index(&half, &NoProgress)
            } else {
                zfs_format::scan::build_index(&fs, &NoProgress)
            }
            .expect("index")
            .index;
            // The pack time: after the last transaction, or that of the middle one.
            let stop = if cut {
                tids[tids.len() / 2]
            } else {
                Tid::from_u64(last_tid.as_u64() + 1)
            };
            let plan = plan_without_gc(&fs, stop);
            let map = &plan.reach.map;
            let mut early = Early::new(hint).expect("early");
            let mut sc = Scanner::new();
            let (mut slots, mut out) = (Vec::new(), Vec::new());
            for t in fs.transactions_from(zfs_format::FIRST_TXN) {
                let t = t.expect("txn");
                if t.pos() >= plan.packpos {
                    break;
                }
                for r in t.records() {
                    let r = r.expect("record");
                    early.record(&mut sc, &mut slots, r.oid, r.pos, &r.payload, &mut out);
                }
            }
            early.add(&out);
            let early = early.into_edges(map);
            let walked = gather(&fs, map, plan.packpos, None, &NoProgress).expect("gather");
            let mut from_scan = 0;
            for slot in 0..map.slots() {
                if let Some(refs) = early.of(slot) {
                    assert_eq!(Some(refs), walked.of(slot), "seed {seed} slot {slot}");
                    from_scan += 1;
                }
            }
            let missing = early.missing(map);
            let both = gather(&fs, map, plan.packpos, Some(early), &NoProgress).expect("gather");
            for slot in 0..map.slots() {
                assert_eq!(both.of(slot), walked.of(slot), "seed {seed} slot {slot}");
            }
            assert!(
                from_scan > 100,
                "seed {seed}: {from_scan} gathered by the scan"
            );
            let left = walked.missing(map);
            if cut || stale {
                // Objects changed after the pack time (or after the index's) have another
                // current revision then.
                assert!(
                    missing > left,
                    "seed {seed}: {missing} missing, {left} by the walk"
                );
            } else {
                assert_eq!(missing, left, "seed {seed}");
            }
        }
    }
}
