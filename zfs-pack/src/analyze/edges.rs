//! The references of every revision current at the pack time, gathered in one walk in
//! file order before the trace.
//!
//! Tracing from the root visits the objects in the graph's order, which is not the file's:
//! reading each record where it lies then costs a random read per object, and a file
//! larger than the memory the pack may use has its pages read again and again. One walk in
//! file order reads each page once and keeps, per object, the slots of the objects its
//! current revision refers to; the trace then reads records only for the revisions this
//! walk leaves out (see [`gather`]), in the same order and with the same results as before.

use std::ops::Deref;

use rayon::prelude::*;
use zfs_format::pickle::{untransform, Scanner, StringMode};
use zfs_format::{FileStorage, Payload, Progress, Tid};

use super::{Walker, CHUNK};
use crate::error::Result;
use crate::oidmap::{OidMap, ABSENT};

/// `start` of a slot whose references were not gathered.
const UNKNOWN: u32 = u32::MAX;

/// Per slot, the slots its current revision refers to, for the revisions gathered.
#[derive(Debug, Default)]
pub(super) struct Edges {
    /// Per slot: where its entry in `list` starts (a count, then that many slots), or
    /// [`UNKNOWN`]. 32 bits: once `list` outgrows them, the rest is left to the trace.
    start: Vec<u32>,
    list: Vec<u32>,
}

impl Edges {
    /// The slots the current revision of `slot` refers to, in the order of its pickle
    /// (repeats included), or `None` when they were not gathered.
    pub(super) fn of(&self, slot: usize) -> Option<&[u32]> {
        let at = *self.start.get(slot)?;
        if at == UNKNOWN {
            return None;
        }
        let at = at as usize;
        let n = usize::try_from(*self.list.get(at)?).ok()?;
        self.list.get(at + 1..at + 1 + n)
    }

    /// Heap bytes held, for memory reports.
    pub(super) fn heap_bytes(&self) -> usize {
        self.start.capacity() * 4 + self.list.capacity() * 4
    }
}

/// Walks `[4, packpos)` in file order and gathers the references of each revision that is
/// current in `map`. A revision is left to the trace (which reads it and reports what it
/// finds, as it always did) when it is a backpointer, its pickle cannot be read, or it
/// refers to anything but an object present at the pack time: what is gathered never
/// needs an error or a dangling reference reported.
pub(super) fn gather<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    map: &OidMap,
    packpos: u64,
    progress: &dyn Progress,
) -> Result<Edges> {
    let mut edges = Edges {
        start: vec![UNKNOWN; map.slots()],
        list: Vec::new(),
    };
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
                            if map.pos_at(slot) != r.pos {
                                continue;
                            }
                            let Payload::Data(bytes) = r.payload else {
                                continue;
                            };
                            if refs_of(sc, map, bytes, slots) {
                                let (Ok(s), Ok(n)) =
                                    (u32::try_from(slot), u32::try_from(slots.len()))
                                else {
                                    continue;
                                };
                                out.push(s);
                                out.push(n);
                                out.extend_from_slice(slots);
                            }
                        }
                        done += t.tlen() + 8;
                    }
                    progress.advance(done);
                    Ok(out)
                },
            )
            .collect();
        for part in parts {
            let part = part?;
            let mut rest = &part[..];
            while let [slot, n, more @ ..] = rest {
                let n = *n as usize;
                let (refs, after) = more.split_at(n);
                rest = after;
                // The entry (its count, then its slots) must end where a start can be.
                match u32::try_from(edges.list.len() + 1 + n) {
                    Ok(end) if end < UNKNOWN => {}
                    _ => continue,
                }
                edges.start[*slot as usize] = edges.list.len() as u32;
                edges.list.push(n as u32);
                edges.list.extend_from_slice(refs);
            }
        }
        stream.advance(fs.bytes(), walker.it.pos());
    }
    stream.finish(fs.bytes());
    edges.list.shrink_to_fit();
    Ok(edges)
}

/// Fills `slots` with the slots of the objects `pickle` refers to, in order; false when
/// one of them cannot be read or is not present in `map` (the trace reads the record).
fn refs_of(sc: &mut Scanner, map: &OidMap, pickle: &[u8], slots: &mut Vec<u32>) -> bool {
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
        let Some(oid) = zfs_format::Oid::from_slice(r) else {
            return false;
        };
        match map.slot(oid.as_u64()) {
            Some(s) if map.pos_at(s) != ABSENT => match u32::try_from(s) {
                Ok(s) => slots.push(s),
                Err(_) => return false,
            },
            _ => return false,
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

    /// Every revision gathered has the references a read of its record finds, in order;
    /// every current revision left out is one the trace must read (a backpointer, or a
    /// reference to an object absent at the pack time).
    #[test]
    fn gathered_references_are_those_of_the_records() {
        for seed in [3, 11] {
            let cfg = Config {
                seed,
                size: Some(3 << 20),
                dangling: 4,
                ..Config::default()
            };
            let mut bytes = Vec::new();
            let sum = generate(&cfg, &mut bytes, &NoProgress).expect("generate");
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("Data.fs");
            std::fs::write(&path, &bytes).expect("write");
            let fs = FileStorage::open(&path).expect("open");
            // Without GC the analysis keeps every current revision; its map is the one
            // the trace would use.
            let opts = AnalyzeOptions {
                stop: Tid::from_u64(sum.last_tid.as_u64() + 1),
                gc: false,
                allow_dangling: false,
            };
            let Analysis::Work(plan) = analyze(&fs, fs.len(), opts, &NoProgress).expect("analyze")
            else {
                panic!("nothing to pack");
            };
            let map = &plan.reach.map;
            let edges = gather(&fs, map, plan.packpos, &NoProgress).expect("gather");
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
}
