//! `oids`: the history of given objects and who refers to them (ZODB's `fsoids`), on all
//! cores.
//!
//! Every committed transaction is read; for each record of an object of interest, a new
//! revision (or a deletion) is noted; for every record with a state, its strong references
//! are read, and a reference to an object of interest is noted on both sides. Unlike
//! `fsoids`, a reference to an object that never had a record (a dangling reference) is
//! reported instead of crashing, and a record whose pickle cannot be read is noted instead
//! of ending the run.

use std::collections::{BTreeMap, HashSet};
use std::ops::Deref;

use rayon::prelude::*;
use zfs_format::pickle::{class_name, untransform, RefKind, Scanner};
use zfs_format::reader::{resolve_data, RecordReader};
use zfs_format::walk::Batches;
use zfs_format::{Error, FileStorage, Index, Oid, Progress, Tid, Transaction};

/// What happened to an object in one record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(tag = "type", rename_all = "kebab-case")
)]
pub enum What {
    /// A new revision with a state of this class and size.
    NewRevision {
        /// Class name (`module.name`).
        class: String,
        /// Bytes of the state.
        size: u64,
        /// True when the record is a backpointer (undo) to an earlier state.
        backpointer: bool,
    },
    /// A record saying the object does not exist (undone creation, deleteObject).
    Deleted,
    /// A record whose backpointer chain is broken.
    Unreadable {
        /// What is wrong with it.
        error: String,
    },
    /// The object of interest refers to `target`.
    References {
        /// The referenced oid (raw bytes, normally 8).
        #[cfg_attr(
            feature = "serde",
            serde(serialize_with = "zfs_format::serde_text::hex_bytes")
        )]
        target: Vec<u8>,
    },
    /// `referrer` (of class `class`) refers to the object of interest.
    ReferencedBy {
        /// The referring object.
        referrer: Oid,
        /// Its class.
        class: String,
    },
    /// The record's pickle could not be scanned for references.
    Unscannable {
        /// What went wrong.
        error: String,
    },
}

/// One event in an object's history.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Event {
    /// Position of the transaction.
    #[cfg_attr(feature = "serde", serde(rename = "txn_offset"))]
    pub txn_pos: u64,
    /// Its tid.
    pub tid: Tid,
    /// Its user: text when UTF-8, else `{"hex": ...}` in JSON.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "zfs_format::serde_text::text")
    )]
    pub user: Vec<u8>,
    /// Its description: text when UTF-8, else `{"hex": ...}` in JSON.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "zfs_format::serde_text::text")
    )]
    pub description: Vec<u8>,
    /// Position of the record concerned.
    pub offset: u64,
    /// What happened.
    pub what: What,
}

/// The history of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct History {
    /// The object.
    pub oid: Oid,
    /// The class of its last revision, if it ever had one.
    pub class: Option<String>,
    /// Revisions with a state.
    pub revisions: u64,
    /// True when the index has it (it has a current record).
    #[cfg_attr(feature = "serde", serde(rename = "current"))]
    pub in_index: bool,
    /// Events in file order.
    pub events: Vec<Event>,
}

/// Transactions per work unit.
const CHUNK: usize = 64;

/// The histories of `oids` (in the order given, duplicates removed).
pub fn histories<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    index: &Index,
    oids: &[Oid],
    progress: &dyn Progress,
) -> Result<Vec<History>, Error> {
    let mode = fs.magic().string_mode();
    let wanted: HashSet<Oid> = oids.iter().copied().collect();
    let reader = RecordReader::open(fs);
    let reader = reader.as_ref();
    progress.start("reading all records", fs.len());
    let mut per: BTreeMap<Oid, Vec<Event>> = BTreeMap::new();
    let mut walk = Batches::new(fs);
    let mut batch: Vec<Transaction<'_>> = Vec::new();
    while walk.next_batch(&mut batch)? {
        progress.check_interrupted()?;
        let parts: Vec<Result<Vec<(Oid, Event)>, Error>> = batch
            .par_chunks(CHUNK)
            .map_init(
                || (Scanner::new(), Vec::new()),
                |(scanner, buf), chunk| {
                    let mut out = Vec::new();
                    for t in chunk {
                        if t.status() == zfs_format::Status::Undone {
                            continue;
                        }
                        let ev = |offset: u64, what: What| Event {
                            txn_pos: t.pos(),
                            tid: t.tid(),
                            user: t.user.to_vec(),
                            description: t.description.to_vec(),
                            offset,
                            what,
                        };
                        for r in t.records() {
                            let r = r?;
                            let interesting = wanted.contains(&r.oid);
                            let state = resolve_data(fs, reader, &r, buf);
                            let data = match state {
                                Ok(Some(d)) => d,
                                Ok(None) => {
                                    if interesting {
                                        out.push((r.oid, ev(r.pos, What::Deleted)));
                                    }
                                    continue;
                                }
                                Err(e) => {
                                    if interesting {
                                        out.push((
                                            r.oid,
                                            ev(
                                                r.pos,
                                                What::Unreadable {
                                                    error: e.to_string(),
                                                },
                                            ),
                                        ));
                                    }
                                    continue;
                                }
                            };
                            let data =
                                untransform(data).unwrap_or(std::borrow::Cow::Borrowed(data));
                            let class = class_name(&data, mode).to_string();
                            if interesting {
                                let what = What::NewRevision {
                                    class: class.clone(),
                                    size: data.len() as u64,
                                    backpointer: r.data().is_none(),
                                };
                                out.push((r.oid, ev(r.pos, what)));
                            }
                            let mut refs = Vec::new();
                            if let Err(e) = scanner.persistent_refs_into(&data, mode, &mut refs) {
                                if interesting {
                                    out.push((
                                        r.oid,
                                        ev(
                                            r.pos,
                                            What::Unscannable {
                                                error: e.to_string(),
                                            },
                                        ),
                                    ));
                                }
                                continue;
                            }
                            for x in refs
                                .iter()
                                .filter(|x| matches!(x.kind, RefKind::Oid | RefKind::OidClass))
                            {
                                let target: Option<[u8; 8]> = x.oid.as_ref().try_into().ok();
                                if let Some(t8) = target.map(Oid).filter(|o| wanted.contains(o)) {
                                    let what = What::ReferencedBy {
                                        referrer: r.oid,
                                        class: class.clone(),
                                    };
                                    out.push((t8, ev(r.pos, what)));
                                }
                                if interesting {
                                    out.push((
                                        r.oid,
                                        ev(
                                            r.pos,
                                            What::References {
                                                target: x.oid.to_vec(),
                                            },
                                        ),
                                    ));
                                }
                            }
                        }
                        progress.advance(t.tlen() + 8);
                    }
                    Ok(out)
                },
            )
            .collect();
        for p in parts {
            for (oid, e) in p? {
                per.entry(oid).or_default().push(e);
            }
        }
    }
    let mut seen = HashSet::new();
    let mut result = Vec::new();
    for &oid in oids {
        if !seen.insert(oid) {
            continue;
        }
        let events = per.remove(&oid).unwrap_or_default();
        let mut class = None;
        let mut revisions = 0;
        for e in &events {
            if let What::NewRevision { class: c, .. } = &e.what {
                class = Some(c.clone());
                revisions += 1;
            }
        }
        result.push(History {
            oid,
            class,
            revisions,
            in_index: index.contains(oid),
            events,
        });
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zfs_format::NoProgress;

    #[test]
    fn history_of_a_deleted_object() {
        // In base.fs oid 9 is created at 3094 (in the transaction at 2914, where oid 3 starts
        // to refer to it) and deleted at 4298; oid 0x77 never existed.
        let data: &[u8] = include_bytes!("../../testdata/fixtures/check/base.fs");
        let fs = FileStorage::from_data(data, "base.fs".into()).expect("FS30");
        let scan = zfs_format::scan::build_index(&fs, &NoProgress).expect("sound");
        let h = histories(
            &fs,
            &scan.index,
            &[Oid::from_u64(9), Oid::from_u64(0x77), Oid::from_u64(9)],
            &NoProgress,
        )
        .expect("sound");
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].revisions, 1);
        assert_eq!(
            h[0].class.as_deref(),
            Some("persistent.mapping.PersistentMapping")
        );
        let ev: Vec<_> = h[0]
            .events
            .iter()
            .map(|e| (e.txn_pos, e.offset, e.what.clone()))
            .collect();
        assert_eq!(
            ev[0],
            (
                2914,
                2946,
                What::ReferencedBy {
                    referrer: Oid::from_u64(3),
                    class: "persistent.mapping.PersistentMapping".into()
                }
            )
        );
        assert!(matches!(
            ev[1],
            (
                2914,
                3094,
                What::NewRevision {
                    size: 75,
                    backpointer: false,
                    ..
                }
            )
        ));
        assert_eq!(ev[2], (4269, 4298, What::Deleted));
        assert_eq!(ev.len(), 3);
        assert!(h[1].events.is_empty() && h[1].class.is_none() && !h[1].in_index);
    }
}
