//! `refs`: dangling references among the current revisions of all objects (what ZODB's
//! `fsrefs` reports), on all cores.
//!
//! As `fsrefs`: every oid of the index is loaded (its current record, backpointers
//! followed). An oid whose current record says "does not exist" is *undone*; one that cannot
//! be loaded is *unreadable*. Then each loaded object's strong references (bare oids and
//! `(oid, class)` tuples; weak and cross-database references are not checked) are looked
//! up: a target not in the index is *missing*, an undone one *creation undone*, an
//! unreadable one *target unreadable*.
//!
//! Differences from `fsrefs`, all where it crashes: a record whose pickle cannot be scanned
//! is reported as a problem of its own (`fsrefs` dies with a traceback); records compressed
//! by zc.zlibstorage are decompressed first; `FS21` files are read with Python 2 string
//! rules.

use std::ops::Deref;
use std::sync::atomic::{AtomicU8, Ordering};

use rayon::prelude::*;
use zfs_format::pickle::{class_name, untransform, RefKind, Scanner};
use zfs_format::reader::{resolve_data, RecordReader};
use zfs_format::walk::Batches;
use zfs_format::{FileStorage, Index, Interrupted, Oid, Payload, Progress, Tid, Transaction};

/// Why a reference is dangling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The target oid has no record at all.
    Missing,
    /// The target's current record says it does not exist (undone creation, deleteObject).
    CreationUndone,
    /// The target's current record cannot be read (bad backpointer, damaged record).
    TargetUnreadable,
}

impl Reason {
    /// Stable kebab-case name.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::CreationUndone => "creation-undone",
            Reason::TargetUnreadable => "target-unreadable",
        }
    }
    /// The words fsrefs uses.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::CreationUndone => "object creation was undone",
            Reason::TargetUnreadable => "failed to load",
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

/// One dangling reference.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Dangling {
    /// The referring object.
    pub referrer: Oid,
    /// Position of the referrer's current record.
    pub offset: u64,
    /// Tid of the referrer's current record.
    pub tid: Tid,
    /// The referrer's class, as fsdump/fsrefs name it.
    pub class: String,
    /// The referenced oid (raw bytes: normally 8, but pickles may hold anything).
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "zfs_format::serde_text::hex_bytes")
    )]
    pub target: Vec<u8>,
    /// Why it dangles.
    pub reason: Reason,
}

/// A current record whose references could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Unscannable {
    /// The object.
    pub oid: Oid,
    /// Position of its current record.
    pub offset: u64,
    /// What went wrong.
    pub error: String,
}

/// The result of a reference check.
#[derive(Clone, Debug, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RefsReport {
    /// Objects in the index.
    pub objects: u64,
    /// Objects whose current record says they do not exist.
    pub undone: u64,
    /// Dangling references, ordered by the referrer's record position, then pickle order.
    pub dangling: Vec<Dangling>,
    /// Objects that cannot be loaded (their current record or backpointer chain is bad).
    pub unreadable: Vec<Unscannable>,
    /// Objects whose pickle could not be scanned for references.
    pub unscannable: Vec<Unscannable>,
}

impl RefsReport {
    /// True when no dangling reference and no unreadable record was found.
    pub fn is_clean(&self) -> bool {
        self.dangling.is_empty() && self.unreadable.is_empty() && self.unscannable.is_empty()
    }
}

/// State codes of an object's current revision, one byte per index slot: the low two bits
/// are the state (0 while its current record has not been read), [`VISITED`] says the walk
/// read it, [`PENDING`] that a reference to it was met before its state was known.
const UNKNOWN: u8 = 0;
const LOADED: u8 = 1;
const UNDONE: u8 = 2;
const UNREADABLE: u8 = 3;
const STATE: u8 = 3;
const VISITED: u8 = 0x40;
const PENDING: u8 = 0x80;

/// Transactions per parallel work unit.
const CHUNK: usize = 64;

/// A current record read by the walk.
struct Current<'a> {
    oid: Oid,
    pos: u64,
    tid: Tid,
    slot: usize,
    state: Loaded<'a>,
}

/// What an object's current record holds.
enum Loaded<'a> {
    /// A pickle in the file.
    Data(&'a [u8]),
    /// The pickle at the end of the record's backpointer chain.
    Resolved(Vec<u8>),
    Undone,
    Unreadable(String),
}

impl Loaded<'_> {
    fn code(&self) -> u8 {
        match self {
            Loaded::Data(_) | Loaded::Resolved(_) => LOADED,
            Loaded::Undone => UNDONE,
            Loaded::Unreadable(_) => UNREADABLE,
        }
    }
    fn data(&self) -> Option<&[u8]> {
        match self {
            Loaded::Data(d) => Some(d),
            Loaded::Resolved(v) => Some(v),
            _ => None,
        }
    }
}

/// Reads the state of the record at `pos` (backpointers followed: with positioned reads
/// when the file is at hand, through the mapping otherwise).
fn load<'a, T: Deref<Target = [u8]>>(
    fs: &'a FileStorage<T>,
    reader: Option<&RecordReader>,
    pos: u64,
) -> Loaded<'a> {
    let rec = match fs.record_at(pos) {
        Ok(r) => r,
        Err(e) => return Loaded::Unreadable(e.to_string()),
    };
    match rec.payload {
        Payload::Data(d) => Loaded::Data(d),
        Payload::Backpointer(0) => Loaded::Undone,
        Payload::Backpointer(_) => {
            let mut buf = Vec::new();
            match resolve_data(fs, reader, &rec, &mut buf) {
                Ok(Some(d)) => Loaded::Resolved(d.to_vec()),
                Ok(None) => Loaded::Undone,
                Err(e) => Loaded::Unreadable(e.to_string()),
            }
        }
    }
}

/// The current records (records the index names) of a batch of transactions, loaded.
fn currents<'a, T: Deref<Target = [u8]> + Sync>(
    fs: &'a FileStorage<T>,
    reader: Option<&RecordReader>,
    index: &Index,
    batch: &[Transaction<'a>],
) -> Vec<Current<'a>> {
    batch
        .par_chunks(CHUNK)
        .flat_map_iter(|chunk| {
            let mut out = Vec::new();
            for t in chunk {
                // A damaged record ends its transaction: the objects whose current records
                // were not reached are loaded afterwards from their index positions.
                for r in t.records().map_while(|r| r.ok()) {
                    let Some(slot) = index.slot(r.oid) else {
                        continue;
                    };
                    if index.pos_at(slot) != r.pos {
                        continue;
                    }
                    let state = match r.payload {
                        Payload::Data(d) => Loaded::Data(d),
                        Payload::Backpointer(0) => Loaded::Undone,
                        Payload::Backpointer(_) => load(fs, reader, r.pos),
                    };
                    out.push(Current {
                        oid: r.oid,
                        pos: r.pos,
                        tid: r.tid,
                        slot,
                        state,
                    });
                }
            }
            out
        })
        .collect()
}

/// Dangling and unscannable findings of some referrers.
#[derive(Default)]
struct Found {
    /// (referrer position, ordinal of the reference among the record's strong ones, finding)
    dangling: Vec<(u64, usize, Dangling)>,
    unscannable: Vec<Unscannable>,
}

impl Found {
    fn merge(mut self, other: Found) -> Found {
        self.dangling.extend(other.dangling);
        self.unscannable.extend(other.unscannable);
        self
    }
}

/// The strong references of `c` (loaded), each with its ordinal: `Ok(None)` for an object
/// that is not loaded, `Err` for a pickle that cannot be scanned.
fn strong_refs(
    scanner: &mut Scanner,
    data: &[u8],
    mode: zfs_format::pickle::StringMode,
    out: &mut Vec<Vec<u8>>,
) -> Result<(), String> {
    out.clear();
    let data = untransform(data).map_err(|e| e.to_string())?;
    let mut refs = Vec::new();
    scanner
        .persistent_refs_into(&data, mode, &mut refs)
        .map_err(|e| e.to_string())?;
    out.extend(
        refs.iter()
            .filter(|r| matches!(r.kind, RefKind::Oid | RefKind::OidClass))
            .map(|r| r.oid.to_vec()),
    );
    Ok(())
}

/// Checks the references of loaded current records. `verdict(target slot or None)` says
/// whether a reference dangles (and why), `None` when it does not or not yet.
fn check_refs<'a, F>(
    items: &[Current<'a>],
    index: &Index,
    mode: zfs_format::pickle::StringMode,
    report_unscannable: bool,
    verdict: F,
) -> Found
where
    F: Fn(&Current<'a>, Option<usize>) -> Option<Reason> + Sync,
{
    items
        .par_chunks(CHUNK * 16)
        .map_init(
            || (Scanner::new(), Vec::new()),
            |(scanner, targets), chunk| {
                let mut found = Found::default();
                for c in chunk {
                    let Some(data) = c.state.data() else {
                        continue;
                    };
                    if let Err(error) = strong_refs(scanner, data, mode, targets) {
                        if report_unscannable {
                            found.unscannable.push(Unscannable {
                                oid: c.oid,
                                offset: c.pos,
                                error,
                            });
                        }
                        continue;
                    }
                    for (n, target) in targets.iter().enumerate() {
                        let slot = <[u8; 8]>::try_from(target.as_slice())
                            .ok()
                            .and_then(|o| index.slot(Oid(o)));
                        let Some(reason) = verdict(c, slot) else {
                            continue;
                        };
                        let class = match untransform(data) {
                            Ok(d) => class_name(&d, mode).to_string(),
                            Err(_) => class_name(data, mode).to_string(),
                        };
                        found.dangling.push((
                            c.pos,
                            n,
                            Dangling {
                                referrer: c.oid,
                                offset: c.pos,
                                tid: c.tid,
                                class,
                                target: target.clone(),
                                reason,
                            },
                        ));
                    }
                }
                found
            },
        )
        .reduce(Found::default, Found::merge)
}

fn reason_of(code: u8) -> Option<Reason> {
    match code & STATE {
        UNDONE => Some(Reason::CreationUndone),
        UNREADABLE => Some(Reason::TargetUnreadable),
        _ => None,
    }
}

/// Finds the dangling references of the current revisions of all objects in `index`.
///
/// The file is read once, in order, in batches bounded in bytes (see
/// [`zfs_format::walk`]): each object's state is taken from its current record when the
/// walk reaches it, and each reference is checked against its target's state. A reference
/// to an object whose current record comes later in the file is checked when that record
/// is reached: only if such a target turns out not to exist is the file read a second
/// time, to name the references to it. Memory: one byte per object beside the index, and
/// a batch.
pub fn dangling_refs<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    index: &Index,
    progress: &dyn Progress,
) -> Result<RefsReport, Interrupted> {
    refs_in_batches(fs, index, progress, zfs_format::walk::BATCH_BYTES)
}

/// [`dangling_refs`] with batches of `batch_bytes`.
fn refs_in_batches<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    index: &Index,
    progress: &dyn Progress,
    batch_bytes: u64,
) -> Result<RefsReport, Interrupted> {
    let mode = fs.magic().string_mode();
    let reader = RecordReader::open(fs);
    let reader = reader.as_ref();
    let table: Vec<AtomicU8> = (0..index.len()).map(|_| AtomicU8::new(UNKNOWN)).collect();
    let state = |slot: usize| table[slot].load(Ordering::Relaxed);
    let mut found = Found::default();
    let mut unreadable = Vec::new();
    // Targets whose references were met before they were found not to exist.
    let mut late: Vec<usize> = Vec::new();

    progress.start("checking references", fs.len());
    let mut walk = Batches::new(fs).with_batch_bytes(batch_bytes);
    let mut batch = Vec::new();
    // A damaged header ends the walk: the objects not reached are loaded below.
    while let Ok(true) = walk.next_batch(&mut batch) {
        progress.check_interrupted()?;
        let end = walk.pos();
        let items = currents(fs, reader, index, &batch);
        for c in &items {
            let old = table[c.slot].load(Ordering::Relaxed);
            let code = c.state.code();
            table[c.slot].store(code | VISITED | (old & PENDING), Ordering::Relaxed);
            if old & PENDING != 0 && code != LOADED {
                late.push(c.slot);
            }
            if let Loaded::Unreadable(e) = &c.state {
                unreadable.push(Unscannable {
                    oid: c.oid,
                    offset: c.pos,
                    error: e.clone(),
                });
            }
        }
        let f = check_refs(&items, index, mode, true, |_, slot| {
            let Some(slot) = slot else {
                return Some(Reason::Missing);
            };
            let code = state(slot);
            if code & STATE == UNKNOWN || index.pos_at(slot) >= end {
                // Its state comes later: remember that it is referred to.
                if table[slot].fetch_or(PENDING, Ordering::Relaxed) & VISITED == 0 {
                    return None;
                }
                // Visited already although after this batch's end: cannot happen (the
                // walk is in file order), but a visited state is final.
            }
            reason_of(state(slot))
        });
        found = found.merge(f);
        progress.advance(end.saturating_sub(batch.first().map_or(end, |t| t.pos())));
    }

    // Objects whose current record the walk did not reach (damage): loaded from their
    // index positions.
    let mut missed: Vec<Current<'_>> = Vec::new();
    for (slot, (oid, pos)) in index.iter().enumerate() {
        if state(slot) & VISITED != 0 {
            continue;
        }
        let s = load(fs, reader, pos);
        let old = table[slot].load(Ordering::Relaxed);
        table[slot].store(s.code() | (old & PENDING), Ordering::Relaxed);
        if old & PENDING != 0 && s.code() != LOADED {
            late.push(slot);
        }
        if let Loaded::Unreadable(e) = &s {
            unreadable.push(Unscannable {
                oid,
                offset: pos,
                error: e.clone(),
            });
        }
        let tid = fs.record_at(pos).map(|r| r.tid).unwrap_or_default();
        missed.push(Current {
            oid,
            pos,
            tid,
            slot,
            state: s,
        });
    }
    let f = check_refs(&missed, index, mode, true, |_, slot| match slot {
        None => Some(Reason::Missing),
        Some(s) => reason_of(state(s)),
    });
    found = found.merge(f);

    // References met before their target was found not to exist: a second walk names them
    // (same batches, so the same references count as met early).
    if !late.is_empty() {
        let late: std::collections::HashSet<usize> = late.into_iter().collect();
        progress.start("naming references to objects that do not exist", fs.len());
        let mut walk = Batches::new(fs).with_batch_bytes(batch_bytes);
        while let Ok(true) = walk.next_batch(&mut batch) {
            progress.check_interrupted()?;
            let end = walk.pos();
            let items = currents(fs, reader, index, &batch);
            let f = check_refs(&items, index, mode, false, |_, slot| {
                let slot = slot?;
                let known_then = state(slot) & VISITED != 0 && index.pos_at(slot) < end;
                if late.contains(&slot) && !known_then {
                    reason_of(state(slot))
                } else {
                    None
                }
            });
            found = found.merge(f);
            progress.advance(end.saturating_sub(batch.first().map_or(end, |t| t.pos())));
        }
    }

    let Found {
        mut dangling,
        mut unscannable,
    } = found;
    dangling.sort_by_key(|(pos, n, _)| (*pos, *n));
    unscannable.sort_by_key(|u| u.offset);
    unreadable.sort_by_key(|u| u.oid);
    progress.check_interrupted()?;
    Ok(RefsReport {
        objects: index.len() as u64,
        undone: (0..table.len())
            .filter(|&s| state(s) & STATE == UNDONE)
            .count() as u64,
        dangling: dangling.into_iter().map(|(_, _, d)| d).collect(),
        unreadable,
        unscannable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zfs_format::NoProgress;

    fn refs_of(data: &'static [u8]) -> RefsReport {
        let fs = FileStorage::from_data(data, "t.fs".into()).expect("FS30");
        let scan = zfs_format::scan::build_index(&fs, &NoProgress).expect("sound");
        dangling_refs(&fs, &scan.index, &NoProgress).expect("never interrupted")
    }

    #[test]
    fn interrupted_walks_stop_with_an_error() {
        let fs = FileStorage::from_data(
            &include_bytes!("../../testdata/fixtures/check/base.fs")[..],
            "t.fs".into(),
        )
        .expect("FS30");
        let flag = std::sync::atomic::AtomicBool::new(true);
        let run = zfs_format::Interruptible {
            progress: &NoProgress,
            flag: &flag,
        };
        assert!(matches!(
            zfs_format::scan::build_index(&fs, &run),
            Err(zfs_format::Error::Interrupted)
        ));
        let scan = zfs_format::scan::build_index(&fs, &NoProgress).expect("sound");
        assert_eq!(
            dangling_refs(&fs, &scan.index, &run).err(),
            Some(Interrupted)
        );
        assert!(matches!(
            crate::stats::stats(&fs, &scan.index, &run),
            Err(zfs_format::Error::Interrupted)
        ));
        assert!(matches!(
            crate::info::info(&fs, &run),
            Err(zfs_format::Error::Interrupted)
        ));
    }

    #[test]
    fn creation_undone_as_fsrefs() {
        // fsrefs (testdata/fixtures/check/base.fsrefs.txt): oid 0x3 persistent.mapping.PersistentMapping,
        // tid=0x40d32edc00bd777, refers to oid 0x09: object creation was undone.
        let r = refs_of(include_bytes!("../../testdata/fixtures/check/base.fs"));
        assert_eq!(r.objects, 13);
        assert_eq!(r.dangling.len(), 1);
        let d = &r.dangling[0];
        assert_eq!(d.referrer, Oid::from_u64(3));
        assert_eq!(d.tid, Tid::from_u64(0x040d_32ed_c00b_d777));
        assert_eq!(d.class, "persistent.mapping.PersistentMapping");
        assert_eq!(d.target, 9u64.to_be_bytes());
        assert_eq!(d.reason, Reason::CreationUndone);
        assert!(r.unreadable.is_empty() && r.unscannable.is_empty());
    }

    #[test]
    fn missing_as_fsrefs() {
        // fsrefs (testdata/fixtures/check/packed_dangling.fsrefs.txt): oid 0x0 refers to 0x03 and
        // 0x06, both missing (deleted, then packed away without GC).
        let r = refs_of(include_bytes!(
            "../../testdata/fixtures/check/packed_dangling.fs"
        ));
        let got: Vec<_> = r
            .dangling
            .iter()
            .map(|d| (d.referrer.as_u64(), d.target.clone(), d.reason))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 3u64.to_be_bytes().to_vec(), Reason::Missing),
                (0, 6u64.to_be_bytes().to_vec(), Reason::Missing)
            ]
        );
    }

    #[test]
    fn unloadable_target() {
        // Point oid 9's deletion record (4298) back at a record of oid 6 (4161): loading 9 fails,
        // so 3's reference to it is "failed to load" and 9 is listed as unloadable.
        let mut v = include_bytes!("../../testdata/fixtures/check/base.fs").to_vec();
        v[4298 + 42..4298 + 50].copy_from_slice(&4161u64.to_be_bytes());
        let data: &'static [u8] = Box::leak(v.into_boxed_slice());
        let r = refs_of(data);
        assert_eq!(r.dangling.len(), 1);
        assert_eq!(r.dangling[0].reason, Reason::TargetUnreadable);
        assert_eq!(r.unreadable.len(), 1);
        assert_eq!(r.unreadable[0].oid, Oid::from_u64(9));
    }

    /// A record referring to `target` with the normal `(oid, class)` form: class pickle
    /// `GLOBAL mod K`, state pickle `(C<oid>, BINGET 0) BINPERSID`.
    fn pickle_to(target: u64) -> Vec<u8> {
        let mut p = b"\x80\x03cmod\nK\nq\x00.\x80\x03C\x08".to_vec();
        p.extend_from_slice(&target.to_be_bytes());
        p.extend_from_slice(b"h\x00\x86q\x01Q.");
        p
    }

    fn file_of(objects: &[(u64, u64)]) -> &'static [u8] {
        let mut f = zfs_format::writer::FileBuilder::new(*b"FS30");
        let mut t = f
            .txn(
                Tid::from_u64(0x0300_0000_0000_0000),
                zfs_format::Status::Committed,
                b"",
                b"",
                b"",
            )
            .expect("short strings");
        for &(oid, target) in objects {
            t.data(Oid::from_u64(oid), 0, &pickle_to(target));
        }
        f.push(t);
        Box::leak(f.into_bytes().into_boxed_slice())
    }

    /// What the report must say, computed the simple way: every object's current record
    /// resolved where it lies, then every reference looked up.
    fn brute_force(fs: &FileStorage<&[u8]>, index: &Index) -> Vec<(u64, Vec<u8>, Reason)> {
        let mode = fs.magic().string_mode();
        let state = |pos: u64| match fs.record_at(pos).and_then(|r| fs.resolve(&r)) {
            Ok(Some(r)) => (LOADED, r.data().map(<[u8]>::to_vec)),
            Ok(None) => (UNDONE, None),
            Err(_) => (UNREADABLE, None),
        };
        let mut out = Vec::new();
        let mut by_pos: Vec<(u64, Oid)> = index.iter().map(|(o, p)| (p, o)).collect();
        by_pos.sort();
        for (pos, oid) in by_pos {
            let (_, Some(data)) = state(pos) else {
                continue;
            };
            let Ok(refs) = zfs_format::pickle::references(&data, mode) else {
                continue;
            };
            for t in refs {
                let reason = match <[u8; 8]>::try_from(&*t)
                    .ok()
                    .and_then(|o| index.get(Oid(o)))
                {
                    None => Some(Reason::Missing),
                    Some(p) => reason_of(state(p).0),
                };
                if let Some(r) = reason {
                    out.push((oid.as_u64(), t.to_vec(), r));
                }
            }
        }
        out
    }

    proptest::proptest! {
        /// Small random histories (data records referring to random oids, undo-like
        /// backpointers, deletions), walked in batches of a transaction or two: the walk
        /// agrees with the brute force, wherever the referenced records lie.
        #[test]
        fn walk_in_batches_agrees_with_brute_force(
            txns in proptest::collection::vec(
                proptest::collection::vec((0u64..12, 0u8..10, 0u64..14), 1..5), 1..14),
            batch in 1u64..300,
        ) {
            let mut f = zfs_format::writer::FileBuilder::new(*b"FS30");
            let mut cur: std::collections::HashMap<u64, Vec<u64>> = Default::default();
            for (i, recs) in txns.iter().enumerate() {
                let mut t = f
                    .txn(Tid::from_u64(0x0300_0000_0000_0000 + i as u64), zfs_format::Status::Committed, b"", b"", b"")
                    .expect("short strings");
                let mut written = std::collections::HashSet::new();
                for &(oid, kind, target) in recs {
                    if !written.insert(oid) {
                        continue;
                    }
                    let hist = cur.entry(oid).or_default();
                    let prev = hist.last().copied().unwrap_or(0);
                    let pos = match kind {
                        0 => t.backpointer(Oid::from_u64(oid), prev, 0),
                        1 | 2 if !hist.is_empty() => {
                            let back = hist[(target as usize) % hist.len()];
                            t.backpointer(Oid::from_u64(oid), prev, back)
                        }
                        _ => t.data(Oid::from_u64(oid), prev, &pickle_to(target)),
                    };
                    hist.push(pos);
                }
                f.push(t);
            }
            let bytes = f.into_bytes();
            let fs = FileStorage::from_data(bytes.as_slice(), "t.fs".into()).expect("FS30");
            let scan = zfs_format::scan::build_index(&fs, &NoProgress).expect("sound");
            let r = refs_in_batches(&fs, &scan.index, &NoProgress, batch).expect("never interrupted");
            let got: Vec<_> = r.dangling.iter().map(|d| (d.referrer.as_u64(), d.target.clone(), d.reason)).collect();
            proptest::prop_assert_eq!(got, brute_force(&fs, &scan.index));
        }
    }

    #[test]
    fn dense_and_sparse_oids() {
        // Dense oids (direct table) and sparse ones (binary search) give the same answers.
        for base in [0u64, 1 << 40] {
            let r = refs_of(file_of(&[
                (base, base + 1),
                (base + 1, base + 7),
                (base + 2, base),
            ]));
            let got: Vec<_> = r
                .dangling
                .iter()
                .map(|d| (d.referrer.as_u64(), d.target.clone(), d.reason))
                .collect();
            assert_eq!(
                got,
                vec![(base + 1, (base + 7).to_be_bytes().to_vec(), Reason::Missing)],
                "base {base}"
            );
            assert_eq!(r.dangling[0].class, "mod.K");
        }
    }
}
