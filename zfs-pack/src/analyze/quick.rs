//! The analysis of a pack with garbage collection from saved references (`<file>.refs`,
//! see [`crate::prepare`]), for a pack after the last transaction with a saved `.index`
//! that covers the file: the scan to the pack time is left out, so the pack reads the file
//! once (its copy) instead of twice.
//!
//! Nothing here is trusted: the references file is tied to the file by its end and last
//! tid, the transactions committed after it are read, and the copy checks, record by
//! record, that the index and the references file describe the file ([`Verify`]). The
//! reachable set computed from references is exact when every object found reachable had
//! the references saved for its current record: each is checked by the copy (its current
//! record's position and tid, and its references parsed and compared), since the copy
//! reads every kept record anyway. Any mismatch makes the caller drop the copy and pack
//! the usual way.

use std::ops::Deref;

use rayon::prelude::*;
use zfs_format::pickle::Scanner;
use zfs_format::refs_file::{self, Entry, Refs, RefsFile};
use zfs_format::{DataRecord, FileStorage, Index, Oid, Payload, Progress, Tid, Transaction};

use super::edges::{push_entry, refs_of, Edges, UNKNOWN};
use super::{check_data, gc, AnalyzeOptions, Plan, Walker, CHUNK};
use crate::error::{PackError, Result};
use crate::oidmap::{Bits, OidMap, ABSENT};
use crate::reach::Reach;
use crate::records::{open_for_reads, read_state_at};

/// What a walk found about the current records an index names.
struct Current {
    /// Per slot of the index: the tid of its current record, 0 when the walk did not
    /// meet it.
    tids: Vec<u64>,
    /// Slots whose current record says the object does not exist.
    absent: Bits,
    /// The references of the current records met (as slots of the index).
    edges: Edges,
    /// Slots met.
    seen: usize,
}

/// Per chunk: (slot, tid, absent) of each current record met, and its gathered
/// references (see [`Edges::add`]).
type Part = (Vec<(u32, u64, bool)>, Vec<u32>);

/// Walks the committed transactions of `[start, end)` (tids above `ltid`, with ZODB's
/// checks) and notes, for every record that `index` names as current, its tid and its
/// references.
fn walk_current<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    start: u64,
    end: u64,
    ltid: Tid,
    index: &Index,
    progress: &dyn Progress,
) -> Result<Current> {
    let mut cur = Current {
        tids: vec![0; index.len()],
        absent: Bits::new(index.len()),
        edges: Edges::unknown(index.len()),
        seen: 0,
    };
    let mut walker = Walker::new(fs, start, end, ltid);
    let mut stream = fs.stream(start);
    // An undo's record points to the revision whose data it restores: read where it lies
    // (positioned reads, so its pages are not mapped into this process).
    let file = open_for_reads(fs);
    loop {
        crate::interrupt::check(progress)?;
        let batch = walker.batch(None)?;
        if batch.is_empty() {
            break;
        }
        let parts: Vec<Result<Part>> = batch
            .par_chunks(CHUNK)
            .map_init(
                || (Scanner::new(), Vec::new(), Vec::new()),
                |(sc, slots, buf), chunk| {
                    let mut part: Part = Default::default();
                    let mut done = 0;
                    for t in chunk {
                        for r in t.records() {
                            let r = r?;
                            check_data(fs, &r)?;
                            let Some(slot) = index.slot(r.oid) else {
                                continue;
                            };
                            if index.pos_at(slot) != r.pos {
                                continue;
                            }
                            let Ok(s) = u32::try_from(slot) else {
                                continue;
                            };
                            let absent = matches!(r.payload, Payload::Backpointer(0));
                            part.0.push((s, t.tid().as_u64(), absent));
                            let bytes = match r.payload {
                                Payload::Data(bytes) => Some(bytes),
                                Payload::Backpointer(0) => None,
                                Payload::Backpointer(_) => match &file {
                                    Some(f) => match read_state_at(fs, f, buf, r.pos) {
                                        Ok(Some(_)) => Some(&buf[..]),
                                        _ => None,
                                    },
                                    None => None,
                                },
                            };
                            if let Some(bytes) = bytes {
                                if refs_of(sc, bytes, slots, |o| index.slot(o)) {
                                    push_entry(&mut part.1, slot, slots);
                                }
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
            let (met, edges) = p?;
            for (s, tid, absent) in met {
                let s = s as usize;
                if cur.tids[s] == 0 {
                    cur.seen += 1;
                }
                cur.tids[s] = tid;
                if absent {
                    cur.absent.set(s);
                }
            }
            cur.edges.add(&edges);
        }
        stream.advance(fs.bytes(), walker.it.pos());
    }
    stream.finish(fs.bytes());
    Ok(cur)
}

/// What a references file for a FileStorage holds (see [`references`]), ready to write.
pub struct Saved {
    index: Index,
    tids: Vec<u64>,
    absent: Bits,
    start: Vec<u32>,
    list: Vec<u32>,
}

impl Saved {
    /// What `cur`, a walk or merge over the current records `index` names, found.
    fn new(index: Index, cur: Current) -> Saved {
        let (start, list) = cur.edges.into_parts();
        Saved {
            index,
            tids: cur.tids,
            absent: cur.absent,
            start,
            list,
        }
    }

    /// The entries, in oid order, made as they are written.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = Entry> + '_ {
        (0..self.index.len()).map(|s| Entry {
            oid: self.index.oid_at(s),
            pos: self.index.pos_at(s),
            tid: Tid::from_u64(self.tids[s]),
            start: if self.absent.get(s) {
                refs_file::ABSENT
            } else {
                self.start[s]
            },
        })
    }

    /// The reference list the entries' starts point into.
    pub fn list(&self) -> &[u32] {
        &self.list
    }

    /// Objects whose references were not read (a pack reads them itself).
    pub fn unknown(&self) -> usize {
        (0..self.index.len())
            .filter(|&s| !self.absent.get(s) && self.start[s] == UNKNOWN)
            .count()
    }
}

/// The references of every current record of `[4, end)` of `fs`, whose current records
/// `index` names (it must cover exactly that part).
pub fn references<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    end: u64,
    index: Index,
    progress: &dyn Progress,
) -> Result<Saved> {
    progress.start("reading references", end.saturating_sub(4));
    let cur = walk_current(
        fs,
        zfs_format::FIRST_TXN,
        end,
        Tid::default(),
        &index,
        progress,
    )?;
    if cur.seen != index.len() {
        let missing = (0..index.len()).find(|&s| cur.tids[s] == 0).unwrap_or(0);
        return Err(crate::records::corrupt(
            fs,
            index.pos_at(missing),
            format!(
                "the saved index names a record of oid {} here that the file does not hold",
                index.oid_at(missing)
            ),
        ));
    }
    Ok(Saved::new(
        index,
        Current {
            edges: cur.edges.in_slot_order(),
            ..cur
        },
    ))
}

/// What the copy checks, record by record, when the analysis came from saved references:
/// the index the map was built from, and per slot the tid of the current record and
/// whether it says the object does not exist. The references the trace took as they were
/// saved are the plan's (`Plan::edges`).
#[derive(Debug)]
pub struct Verify {
    index: Index,
    tids: Vec<u64>,
    absent: Bits,
}

impl Verify {
    /// Checks `r`, a record of `t` before the pack time: ZODB's `checkData`, no record of
    /// its object after the one the index names, and that one as the references file
    /// says. Returns whether `r` is the current record of its object.
    pub fn record<T: Deref<Target = [u8]>>(
        &self,
        fs: &FileStorage<T>,
        t: &Transaction<'_>,
        r: &DataRecord<'_>,
    ) -> Result<bool> {
        check_data(fs, r)?;
        let slot = self.index.slot(r.oid).ok_or(PackError::StaleReferences)?;
        let ipos = self.index.pos_at(slot);
        if r.pos > ipos {
            return Err(PackError::StaleReferences);
        }
        if r.pos < ipos {
            return Ok(false);
        }
        let absent = matches!(r.payload, Payload::Backpointer(0));
        if self.tids[slot] != t.tid().as_u64() || self.absent.get(slot) != absent {
            return Err(PackError::StaleReferences);
        }
        Ok(true)
    }

    /// Checks that the references in `data`, the state of the current record of `oid`
    /// that the copy keeps, are those the trace took from `edges` (when it took them as
    /// saved rather than reading the record). Every object found reachable is kept and so
    /// checked: the reachable set is then the one the records themselves give.
    pub fn references(
        &self,
        edges: &Edges,
        sc: &mut Scanner,
        slots: &mut Vec<u32>,
        oid: Oid,
        data: Option<&[u8]>,
    ) -> Result<()> {
        let Some(slot) = self.index.slot(oid) else {
            return Err(PackError::StaleReferences);
        };
        let Some(want) = edges.of(slot) else {
            return Ok(());
        };
        let present = |o| self.index.slot(o).filter(|&s| !self.absent.get(s));
        match data {
            Some(d) if refs_of(sc, d, slots, present) && slots[..] == *want => Ok(()),
            _ => Err(PackError::StaleReferences),
        }
    }

    /// Number of objects in the index: the copy must meet as many current records.
    pub fn objects(&self) -> usize {
        self.index.len()
    }
}

/// What the analysis from saved references holds at its peak, per object and per word of
/// their reference list (the saved index and each object's tid for the copy's checks, the
/// scan map, the references, the trace), as `scale.sh` measured it (BENCHMARKS.md).
const PER_OBJECT: u64 = 50;
const PER_WORD: u64 = 4;

/// Whether the analysis from `refs` fits in three quarters of `limit`, the memory the
/// process may use. Where it does not, the usual pack, which holds less per object, is
/// the one to run rather than one that could be killed for its memory.
pub fn fits(refs: &RefsFile<'_>, limit: u64) -> bool {
    let need = (refs.len() as u64)
        .saturating_mul(PER_OBJECT)
        .saturating_add((refs.words() as u64).saturating_mul(PER_WORD));
    need <= limit / 4 * 3
}

/// Whether the transaction ending at `end` (its redundant length just before) has `tid`.
fn ends_with<T: Deref<Target = [u8]>>(fs: &FileStorage<T>, end: u64, tid: Tid) -> bool {
    match fs.transactions_rev(end).next() {
        Some(Ok(t)) => t.tid() == tid && t.pos() + t.tlen() + 8 == end,
        _ => false,
    }
}

/// The current records `index` names (it must cover `[4, end)` of `fs`), from the saved
/// references `refs` up to their end and a walk of the transactions committed after it:
/// per slot the tid and whether the object is absent, and the references as slots of
/// `index`. A reference to an object whose current record says it does not exist is
/// kept with `keep_absent` (as a references file holds it), else its entry is left
/// unknown (as the trace wants it: it reads the record and reports what it finds).
/// `None` when `refs` does not describe the file as `index` does.
fn merge<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    end: u64,
    index: &Index,
    refs: &RefsFile<'_>,
    keep_absent: bool,
    progress: &dyn Progress,
) -> Result<Option<Current>> {
    if refs.end <= zfs_format::FIRST_TXN
        || refs.end > end
        || !ends_with(fs, refs.end, refs.last_tid)
    {
        return Ok(None);
    }
    progress.start(
        "reading the transactions after the saved references",
        end - refs.end,
    );
    let cur = walk_current(fs, refs.end, end, refs.last_tid, index, progress)?;
    let n = index.len();
    let Current {
        mut tids,
        mut absent,
        edges: tail_edges,
        ..
    } = cur;
    // Each entry of the file as a slot of the index; the index's slots from before
    // `refs.end` must be the file's entries, with the same current record.
    let mut slot_of = vec![u32::MAX; refs.len()];
    // Per slot taken from the file: its entry there.
    let mut file_of = vec![u32::MAX; n];
    let mut i = 0;
    for s in 0..n {
        let (oid, pos) = (index.oid_at(s), index.pos_at(s));
        if i < refs.len() && refs.entry(i).oid < oid {
            // An object the file had and the index does not.
            return Ok(None);
        }
        let entry = (i < refs.len()).then(|| refs.entry(i));
        let here = entry.filter(|e| e.oid == oid);
        if let Some(e) = here {
            slot_of[i] = u32::try_from(s).map_err(|_| PackError::StaleReferences)?;
            let here_i = i;
            i += 1;
            if pos < refs.end {
                if e.pos != pos {
                    return Ok(None);
                }
                tids[s] = e.tid.as_u64();
                if e.start == refs_file::ABSENT {
                    absent.set(s);
                }
                file_of[s] = u32::try_from(here_i).map_err(|_| PackError::StaleReferences)?;
                continue;
            }
        } else if pos < refs.end {
            return Ok(None);
        }
        // Current record after the file's end: the walk must have met it.
        if tids[s] == 0 {
            return Ok(None);
        }
    }
    if i != refs.len() {
        return Ok(None);
    }
    let kept = |s: u32| (keep_absent || !absent.get(s as usize)).then_some(s);
    let mut edges = Edges::unknown(n);
    // Entries as `Edges::add` takes them, handed over a few at a time.
    let mut part = Vec::new();
    let mut slots = Vec::new();
    for (s, &in_file) in file_of.iter().enumerate() {
        slots.clear();
        let known = if in_file != u32::MAX {
            match refs.refs(in_file as usize) {
                Refs::Known(l) => l.iter().all(|j| {
                    slot_of
                        .get(j as usize)
                        .copied()
                        .and_then(kept)
                        .is_some_and(|t| {
                            slots.push(t);
                            true
                        })
                }),
                _ => false,
            }
        } else {
            match tail_edges.of(s) {
                Some(l) => l.iter().all(|&t| {
                    kept(t).is_some_and(|t| {
                        slots.push(t);
                        true
                    })
                }),
                None => false,
            }
        };
        if known {
            push_entry(&mut part, s, &slots);
            if part.len() >= 1 << 16 {
                edges.add(&part);
                part.clear();
            }
        }
    }
    edges.add(&part);
    Ok(Some(Current {
        tids,
        absent,
        edges,
        seen: n,
    }))
}

/// What [`references`] saves, from the saved references `previous` where they describe
/// the file (only the transactions after them are read): `Some` of their end then.
pub fn references_since<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    end: u64,
    index: Index,
    previous: Option<&RefsFile<'_>>,
    progress: &dyn Progress,
) -> Result<(Saved, Option<u64>)> {
    if let Some(refs) = previous {
        // The merge gathers the references in slot order already.
        if let Some(cur) = merge(fs, end, &index, refs, true, progress)? {
            return Ok((Saved::new(index, cur), Some(refs.end)));
        }
    }
    Ok((references(fs, end, index, progress)?, None))
}

/// Phases A and B for a pack after the last transaction (`end` the committed end,
/// `index` the saved index covering it), from the references file `refs`: the
/// transactions committed after it are walked, the rest is taken from it. `None` when the
/// file does not fit `index` and `refs` (the caller then packs the usual way).
pub fn quick<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    end: u64,
    index: Index,
    refs: &RefsFile<'_>,
    opts: AnalyzeOptions,
    progress: &dyn Progress,
) -> Result<Option<(Box<Plan>, Verify)>> {
    // The references as slots of present objects only (as the scan gathers them).
    let Some(cur) = merge(fs, end, &index, refs, false, progress)? else {
        return Ok(None);
    };
    let Current {
        tids,
        absent,
        edges,
        ..
    } = cur;
    let n = index.len();
    let mut map = OidMap::new();
    map.apply(
        (0..n)
            .map(|s| {
                let pos = if absent.get(s) {
                    ABSENT
                } else {
                    index.pos_at(s)
                };
                (index.oid_at(s).as_u64(), pos)
            })
            .collect(),
    );
    let mut reach = Reach {
        marked: Bits::new(map.slots()),
        all_live: false,
        map,
        moved: Default::default(),
        extra: Default::default(),
    };
    let mut plan = Plan {
        reach: Reach::default(),
        packpos: end,
        extra_kept: 0,
        dangling_ignored: Vec::new(),
        records_before: 0,
        txns_before: 0,
        edges_bytes: 0,
        edges: None,
    };
    let edges = gc::gc(fs, &mut reach, &[], opts, &mut plan, Some(edges), progress)?;
    plan.reach = reach;
    plan.edges = Some(edges);
    Ok(Some((
        Box::new(plan),
        Verify {
            index,
            tids,
            absent,
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zfs_format::pickle::{untransform, StringMode};
    use zfs_format::NoProgress;
    use zfs_testdata::gen::{generate, Config};

    use crate::records::state_at;

    /// The analysis from saved references runs only where what it would hold fits in three
    /// quarters of the memory limit: objects and reference words both count.
    #[test]
    fn saved_references_too_large_for_the_memory_are_left_aside() {
        let entries: Vec<Entry> = (0..1000u64)
            .map(|i| Entry {
                oid: Oid::from_u64(i),
                pos: 4 + i,
                tid: Tid::from_u64(1),
                start: if i == 0 { 0 } else { refs_file::UNKNOWN },
            })
            .collect();
        let list = [9u32, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        let mut bytes = Vec::new();
        refs_file::write_refs(&mut bytes, 5000, Tid::from_u64(1), &entries, &list).expect("write");
        let refs = RefsFile::parse(&bytes).expect("parse");
        // 1000 objects and 10 words: 50,040 bytes, three quarters of 66,720.
        assert!(fits(&refs, 66_720));
        assert!(!fits(&refs, 66_716));
        assert!(fits(&refs, u64::MAX));
        assert!(!fits(&refs, 0));
    }

    /// Every entry saved is the object's current record, with the tid of its transaction,
    /// and the references a read of its state finds (as entry numbers), or none saved only
    /// where that read cannot give them all (a pickle that does not parse, a reference to
    /// no object of the index).
    #[test]
    fn saved_references_are_those_of_the_current_records() {
        for seed in [4, 21] {
            let cfg = Config {
                seed,
                size: Some(2 << 20),
                dangling: 3,
                ..Config::default()
            };
            let mut bytes = Vec::new();
            generate(&cfg, &mut bytes, &NoProgress).expect("generate");
            // On a file: an undo's record is resolved with positioned reads on it.
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("Data.fs");
            std::fs::write(&path, &bytes).expect("write");
            let fs = FileStorage::open(&path).expect("open");
            let scan = zfs_format::scan::build_index(&fs, &NoProgress).expect("scan");
            let saved =
                references(&fs, scan.end.pos, scan.index.clone(), &NoProgress).expect("references");
            let bytes_out = {
                let mut out = Vec::new();
                refs_file::write_refs(
                    &mut out,
                    scan.end.pos,
                    scan.end.last_tid,
                    saved.entries(),
                    saved.list(),
                )
                .expect("write");
                out
            };
            let file = RefsFile::parse(&bytes_out).expect("parse");
            let mut sc = Scanner::new();
            let (mut known, mut unknown, mut absent) = (0, 0, 0);
            for (i, (oid, pos)) in scan.index.iter().enumerate() {
                let e = file.entry(i);
                assert_eq!((e.oid, e.pos), (oid, pos));
                let rec = fs.record_at(pos).expect("record");
                assert_eq!(e.tid, rec.tid, "entry {i}");
                let read: Option<Vec<u32>> = match state_at(&fs, pos).expect("state") {
                    Some(d) => untransform(d.data().unwrap_or_default())
                        .ok()
                        .and_then(|plain| {
                            let mut refs = Vec::new();
                            sc.references_into(&plain, StringMode::Bytes, &mut refs)
                                .ok()?;
                            refs.iter()
                                .map(|r| {
                                    let o = Oid::from_slice(r)?;
                                    scan.index.slot(o).map(|s| s as u32)
                                })
                                .collect()
                        }),
                    None => None,
                };
                match file.refs(i) {
                    Refs::Known(l) => {
                        assert_eq!(Some(l.iter().collect::<Vec<_>>()), read, "entry {i}");
                        known += 1;
                    }
                    Refs::Absent => {
                        assert!(matches!(rec.payload, Payload::Backpointer(0)), "entry {i}");
                        absent += 1;
                    }
                    Refs::Unknown => {
                        assert_eq!(read, None, "entry {i} could have been read");
                        unknown += 1;
                    }
                }
            }
            assert!(known > 1000, "seed {seed}: {known} known");
            // Deleted objects (their current record says so) are absent; references to
            // them are saved as to any object of the index.
            assert!(absent > 0, "seed {seed}: {absent} absent");
            assert_eq!(saved.unknown(), unknown);
        }
    }
}
