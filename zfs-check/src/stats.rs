//! `stats`: per-class counts and sizes of current and old revisions (what ZODB's `analyze`
//! and `fsstats` summarise), on all cores.
//!
//! Every data record of every committed transaction is counted once, under the class of its
//! state; a backpointer record (undo) counts with the size of the state it points to, as
//! `analyze` counts it. A record is *current* when it is the one the index names for its
//! oid, *old* otherwise. Records saying "the object does not exist" are counted apart.

use std::collections::BTreeMap;
use std::ops::Deref;

use rayon::prelude::*;
use zfs_format::pickle::{class_name, untransform};
use zfs_format::reader::{resolve_data, RecordReader};
use zfs_format::walk::Batches;
use zfs_format::{Error, FileStorage, Index, Progress, Transaction};

/// Counts and sizes for one class (or for the whole file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ClassStats {
    /// Current revisions.
    pub current: u64,
    /// Bytes of the current revisions' states.
    pub current_bytes: u64,
    /// Old (non-current) revisions.
    pub old: u64,
    /// Bytes of the old revisions' states.
    pub old_bytes: u64,
}

impl ClassStats {
    fn add(&mut self, o: &ClassStats) {
        self.current += o.current;
        self.current_bytes += o.current_bytes;
        self.old += o.old;
        self.old_bytes += o.old_bytes;
    }
    /// All revisions.
    pub fn revisions(&self) -> u64 {
        self.current + self.old
    }
    /// Bytes of all revisions.
    pub fn bytes(&self) -> u64 {
        self.current_bytes + self.old_bytes
    }
}

/// The result of `stats`.
#[derive(Clone, Debug, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Stats {
    /// Committed transactions.
    pub transactions: u64,
    /// Bytes of those transactions (headers and redundant lengths included).
    pub transaction_bytes: u64,
    /// Data records.
    pub records: u64,
    /// Objects in the index.
    pub objects: u64,
    /// Records saying the object does not exist (undone creation, deleteObject).
    pub deletions: u64,
    /// Records whose backpointer chain is broken (counted nowhere else).
    pub unreadable: u64,
    /// Per class name (`module.name`, as fsdump prints it).
    pub classes: BTreeMap<String, ClassStats>,
    /// The sum over all classes.
    pub total: ClassStats,
}

/// Transactions per work unit.
const CHUNK: usize = 64;

/// Gathers [`Stats`] for a file whose index is `index`.
pub fn stats<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    index: &Index,
    progress: &dyn Progress,
) -> Result<Stats, Error> {
    let mode = fs.magic().string_mode();
    let reader = RecordReader::open(fs);
    let reader = reader.as_ref();
    let mut out = Stats {
        objects: index.len() as u64,
        ..Stats::default()
    };
    progress.start("counting revisions", fs.len());
    let mut walk = Batches::new(fs);
    let mut batch: Vec<Transaction<'_>> = Vec::new();
    while walk.next_batch(&mut batch)? {
        progress.check_interrupted()?;
        let parts: Vec<Result<Stats, Error>> = batch
            .par_chunks(CHUNK)
            .map_init(Vec::new, |buf, chunk| {
                let mut s = Stats::default();
                for t in chunk {
                    if t.status() == zfs_format::Status::Undone {
                        continue;
                    }
                    s.transactions += 1;
                    s.transaction_bytes += t.tlen() + 8;
                    for r in t.records() {
                        let r = r?;
                        s.records += 1;
                        let state = match resolve_data(fs, reader, &r, buf) {
                            Ok(state) => state,
                            Err(_) => {
                                s.unreadable += 1;
                                continue;
                            }
                        };
                        let Some(data) = state else {
                            s.deletions += 1;
                            continue;
                        };
                        let class = match untransform(data) {
                            Ok(d) => class_name(&d, mode).to_string(),
                            Err(_) => class_name(data, mode).to_string(),
                        };
                        let e = s.classes.entry(class).or_default();
                        if index.get(r.oid) == Some(r.pos) {
                            e.current += 1;
                            e.current_bytes += data.len() as u64;
                        } else {
                            e.old += 1;
                            e.old_bytes += data.len() as u64;
                        }
                    }
                    progress.advance(t.tlen() + 8);
                }
                Ok(s)
            })
            .collect();
        for p in parts {
            let p = p?;
            out.transactions += p.transactions;
            out.transaction_bytes += p.transaction_bytes;
            out.records += p.records;
            out.deletions += p.deletions;
            out.unreadable += p.unreadable;
            for (k, v) in p.classes {
                out.total.add(&v);
                out.classes.entry(k).or_default().add(&v);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zfs_format::NoProgress;

    #[test]
    fn counts_of_base() {
        // base.fs: 15 transactions, 28 records, 13 objects (ZODB's index), 2 records saying
        // "does not exist" (an undone creation and a deleteObject); all PersistentMapping.
        let data: &[u8] = include_bytes!("../../testdata/fixtures/check/base.fs");
        let fs = FileStorage::from_data(data, "base.fs".into()).expect("FS30");
        let scan = zfs_format::scan::build_index(&fs, &NoProgress).expect("sound");
        let s = stats(&fs, &scan.index, &NoProgress).expect("sound");
        assert_eq!(
            (s.transactions, s.records, s.objects, s.deletions),
            (15, 28, 13, 2)
        );
        assert_eq!(s.transaction_bytes, data.len() as u64 - 4);
        assert_eq!(s.classes.len(), 1);
        let pm = s.classes["persistent.mapping.PersistentMapping"];
        assert_eq!(pm, s.total);
        assert_eq!(pm.current + pm.old + s.deletions, s.records);
        // 13 objects, two of them deleted: 11 current states.
        assert_eq!(pm.current, 11);
    }
}
