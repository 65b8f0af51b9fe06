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

use rayon::prelude::*;
use zfs_format::pickle::{class_name, untransform, RefKind, Scanner};
use zfs_format::{FileStorage, Index, Oid, Progress, Tid};

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

/// One dangling reference.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    pub target: Vec<u8>,
    /// Why it dangles.
    pub reason: Reason,
}

/// A current record whose references could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// State of an object's current revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State<'a> {
    /// Loaded: the state's pickle.
    Data(&'a [u8]),
    Undone,
    Unreadable,
}

impl State<'_> {
    /// The one-byte summary used for lookups.
    fn code(&self) -> u8 {
        match self {
            State::Data(_) => LOADED,
            State::Undone => UNDONE,
            State::Unreadable => UNREADABLE,
        }
    }
}

/// Lookup codes: oid not in the index, loaded, undone, unreadable.
const ABSENT: u8 = 0;
const LOADED: u8 = 1;
const UNDONE: u8 = 2;
const UNREADABLE: u8 = 3;
/// A direct oid → state table is used when the largest oid is at most this many times the
/// number of objects (ZODB allocates oids densely, so this is the usual case).
const DENSE_FACTOR: u64 = 4;

/// Objects handled per parallel work unit.
const CHUNK: usize = 4096;

/// Finds the dangling references of the current revisions of all objects in `index`.
pub fn dangling_refs<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    index: &Index,
    progress: &dyn Progress,
) -> RefsReport {
    let mode = fs.magic().string_mode();
    let entries: Vec<(Oid, u64)> = index.iter().collect();
    progress.start_counting("loading objects", entries.len() as u64, "objects");
    let states: Vec<State> = entries
        .par_chunks(CHUNK)
        .flat_map_iter(|chunk| {
            let v: Vec<State> = chunk
                .iter()
                .map(
                    |&(_, pos)| match fs.record_at(pos).and_then(|r| fs.resolve(&r)) {
                        Ok(Some(r)) => r.data().map_or(State::Unreadable, State::Data),
                        Ok(None) => State::Undone,
                        Err(_) => State::Unreadable,
                    },
                )
                .collect();
            progress.advance(chunk.len() as u64);
            v
        })
        .collect();
    // oid → state: a direct table for dense oids, a binary search otherwise.
    let max_oid = entries.last().map_or(0, |e| e.0.as_u64());
    let dense: Option<Vec<u8>> = (max_oid
        < (entries.len() as u64)
            .saturating_mul(DENSE_FACTOR)
            .max(1024))
    .then(|| {
        let mut t = vec![ABSENT; usize::try_from(max_oid).unwrap_or(0) + 1];
        for (e, st) in entries.iter().zip(&states) {
            if let Some(slot) = usize::try_from(e.0.as_u64())
                .ok()
                .and_then(|i| t.get_mut(i))
            {
                *slot = st.code();
            }
        }
        t
    });
    let lookup = |oid: &[u8]| -> u8 {
        let Ok(o) = <[u8; 8]>::try_from(oid) else {
            return ABSENT;
        };
        let o = Oid(o);
        match &dense {
            Some(t) => usize::try_from(o.as_u64())
                .ok()
                .and_then(|i| t.get(i))
                .copied()
                .unwrap_or(ABSENT),
            None => entries
                .binary_search_by_key(&o, |e| e.0)
                .ok()
                .and_then(|i| states.get(i))
                .map_or(ABSENT, State::code),
        }
    };
    progress.start_counting("scanning references", entries.len() as u64, "objects");
    type Part = (Vec<(u64, usize, Dangling)>, Vec<Unscannable>);
    let parts: Vec<Part> = entries
        .par_chunks(CHUNK)
        .zip(states.par_chunks(CHUNK))
        .map_init(Scanner::new, |scanner, (chunk, chunk_states)| {
            let mut found = Vec::new();
            let mut bad = Vec::new();
            for (&(oid, pos), state) in chunk.iter().zip(chunk_states) {
                let State::Data(data) = *state else {
                    continue;
                };
                let data = match untransform(data) {
                    Ok(d) => d,
                    Err(e) => {
                        bad.push(Unscannable {
                            oid,
                            offset: pos,
                            error: e.to_string(),
                        });
                        continue;
                    }
                };
                let mut refs = Vec::new();
                if let Err(e) = scanner.persistent_refs_into(&data, mode, &mut refs) {
                    bad.push(Unscannable {
                        oid,
                        offset: pos,
                        error: e.to_string(),
                    });
                    continue;
                }
                let mut n = 0;
                for r in refs
                    .iter()
                    .filter(|r| matches!(r.kind, RefKind::Oid | RefKind::OidClass))
                {
                    let reason = match lookup(&r.oid) {
                        ABSENT => Reason::Missing,
                        UNDONE => Reason::CreationUndone,
                        UNREADABLE => Reason::TargetUnreadable,
                        _ => continue,
                    };
                    let tid = fs.record_at(pos).map(|r| r.tid).unwrap_or_default();
                    found.push((
                        pos,
                        n,
                        Dangling {
                            referrer: oid,
                            offset: pos,
                            tid,
                            class: class_name(&data, mode).to_string(),
                            target: r.oid.to_vec(),
                            reason,
                        },
                    ));
                    n += 1;
                }
            }
            progress.advance(chunk.len() as u64);
            (found, bad)
        })
        .collect();
    let mut dangling = Vec::new();
    let mut unscannable = Vec::new();
    for (d, u) in parts {
        dangling.extend(d);
        unscannable.extend(u);
    }
    dangling.sort_by_key(|(pos, n, _)| (*pos, *n));
    unscannable.sort_by_key(|u| u.offset);
    let unreadable: Vec<Unscannable> = entries
        .iter()
        .zip(&states)
        .filter(|(_, s)| matches!(s, State::Unreadable))
        .map(|(&(oid, pos), _)| Unscannable {
            oid,
            offset: pos,
            error: match fs.record_at(pos).and_then(|r| fs.resolve(&r)) {
                Err(e) => e.to_string(),
                Ok(_) => "unreadable".into(),
            },
        })
        .collect();
    RefsReport {
        objects: entries.len() as u64,
        undone: states.iter().filter(|s| matches!(s, State::Undone)).count() as u64,
        dangling: dangling.into_iter().map(|(_, _, d)| d).collect(),
        unreadable,
        unscannable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zfs_format::NoProgress;

    fn refs_of(data: &'static [u8]) -> RefsReport {
        let fs = FileStorage::from_data(data, "t.fs".into()).expect("FS30");
        let scan = zfs_format::scan::build_index(&fs, &NoProgress).expect("sound");
        dangling_refs(&fs, &scan.index, &NoProgress)
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
