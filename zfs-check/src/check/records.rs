//! The record walk: the data records of a batch of transactions, on all cores, with the
//! structural checks of `fstest` and, in full mode, serials; then, in file order, the
//! pointers checked against the index as the walk builds it.

use std::collections::HashMap;

use rayon::prelude::*;

use zfs_format::record::{RawDataHeader, DATA_HEADER_LEN};
use zfs_format::{IndexBuilder, Oid, Progress, Tid};

use super::pointers::pointer_finding;
use super::{Finding, Kind, Pointer, Walker, JOB_CHUNK};

/// A transaction whose records are to be walked.
#[derive(Clone, Copy, Debug)]
pub(super) struct Job {
    /// Position of the transaction.
    pub(super) tpos: u64,
    /// Where its records end (and its redundant length starts).
    pub(super) tend: u64,
    /// Its tid.
    pub(super) tid: Tid,
    /// Length of its header with the strings.
    pub(super) hlen: u64,
    /// Its records go into the index (`prev` pointers and a saved index are checked
    /// against it): a sound redundant length and a status other than `u`.
    pub(super) index_it: bool,
}

/// A structurally sound record, for the checks done in file order.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rec {
    /// Its position.
    pub(super) pos: u64,
    /// Its oid.
    pub(super) oid: Oid,
    /// Its `prev` pointer (0 for none).
    pub(super) prev: u64,
    /// The backpointer of a `plen == 0` record (0 for none).
    pub(super) back: u64,
}

/// What walking the records of some transactions found.
#[derive(Default)]
pub(super) struct Part {
    findings: Vec<Finding>,
    /// Ranges of transactions whose rest could not be delimited.
    pub(super) damaged: Vec<(u64, u64)>,
    /// Per job of the chunk, its sound records in order.
    pub(super) recs: Vec<Vec<Rec>>,
    count: u64,
}

impl Part {
    /// Records a finding.
    fn add(&mut self, offset: u64, kind: Kind, message: String) {
        self.findings.push(Finding {
            offset,
            kind,
            message,
        });
    }

    /// Walks the data records of one transaction, stopping at the first structural error
    /// (the rest of the transaction cannot be delimited).
    pub(super) fn walk(&mut self, file: &[u8], quick: bool, j: &Job) {
        let len = file.len() as u64;
        let mut recs = Vec::new();
        let mut p = j.tpos + j.hlen;
        while p < j.tend {
            let Some(r) = RawDataHeader::decode(file, p) else {
                self.add(
                    p,
                    Kind::TruncatedRecord,
                    format!("data record header ({DATA_HEADER_LEN} bytes) runs past the end of the file ({len} bytes)"),
                );
                self.damaged.push((p, j.tend));
                break;
            };
            if r.tloc != j.tpos {
                self.add(
                    p,
                    Kind::BadTloc,
                    format!(
                        "data record's transaction position (tloc) is {}, expected {}",
                        r.tloc, j.tpos
                    ),
                );
                self.damaged.push((p, j.tend));
                break;
            }
            let end = r.end();
            let Some(end) = end.filter(|&e| e <= j.tend) else {
                let shown = end.map_or_else(|| "beyond 2^64".to_string(), |e| e.to_string());
                self.add(
                    p,
                    Kind::RecordOverrun,
                    format!("data record of oid {} ends at {shown}, beyond the end of its transaction's records at {}", r.oid, j.tend),
                );
                self.damaged.push((p, j.tend));
                break;
            };
            self.count += 1;
            if !quick {
                if r.tid != j.tid {
                    self.add(
                        p,
                        Kind::SerialMismatch,
                        format!(
                            "data record of oid {} has serial {}, its transaction's tid is {}",
                            r.oid, r.tid, j.tid
                        ),
                    );
                }
                recs.push(Rec {
                    pos: p,
                    oid: r.oid,
                    prev: r.prev,
                    back: r.backpointer_in(file).unwrap_or(0),
                });
            }
            p = end;
        }
        self.recs.push(recs);
    }
}

impl Walker<'_> {
    /// Walks the records of the gathered transactions on all cores, then checks, in file
    /// order, every pointer against the index as it stands at the record: a `prev` pointer
    /// naming the oid's last record (before or within this transaction) is sound; any
    /// other pointer is kept for [`Walker::flush_pointers`].
    pub(super) fn walk_records(&mut self, progress: &dyn Progress) {
        let (file, quick) = (self.file, self.quick);
        let jobs = std::mem::take(&mut self.jobs);
        self.job_bytes = 0;
        let parts: Vec<Part> = jobs
            .par_chunks(JOB_CHUNK)
            .map(|chunk| {
                let mut part = Part::default();
                for j in chunk {
                    part.walk(file, quick, j);
                }
                if let (Some(first), Some(last)) = (chunk.first(), chunk.last()) {
                    progress.advance(last.tend + 8 - first.tpos);
                }
                part
            })
            .collect();
        let mut updates = IndexBuilder::new();
        // oid → its last record in this batch, and its last record before the current
        // transaction.
        let mut latest: HashMap<Oid, u64> = HashMap::new();
        let mut before_txn: Vec<(Oid, Option<u64>)> = Vec::new();
        let mut jobs_done = jobs.iter();
        for part in parts {
            self.findings.extend(part.findings);
            self.damaged.extend(part.damaged);
            self.record_count += part.count;
            for recs in part.recs {
                let job = jobs_done.next().expect("one record list per job");
                before_txn.clear();
                for r in recs {
                    let last = latest.get(&r.oid).copied().or_else(|| self.ours.get(r.oid));
                    let earlier = before_txn
                        .iter()
                        .find(|(o, _)| *o == r.oid)
                        .map_or(last, |(_, b)| *b);
                    if r.prev != 0 && Some(r.prev) != last && Some(r.prev) != earlier {
                        self.pointer(r.pos, r.oid, r.prev, false);
                    }
                    if r.back != 0 {
                        self.pointer(r.pos, r.oid, r.back, true);
                    }
                    if job.index_it {
                        if !before_txn.iter().any(|(o, _)| *o == r.oid) {
                            before_txn.push((r.oid, last));
                        }
                        latest.insert(r.oid, r.pos);
                        updates.insert(r.oid, r.pos);
                    }
                }
            }
        }
        self.ours.apply(updates);
        self.damaged.sort_unstable();
        if let Some(last) = jobs.last() {
            // Undo points mostly to recent revisions (within a few megabytes): read the
            // targets now, while the pages the walk left behind are still cached.
            self.flush_pointers();
            // Everything before the end of this batch is done (the header walk is ahead of
            // it by at most a batch, inside the read-ahead).
            self.stream.advance(self.file, last.tend + 8);
        }
    }

    /// Checks a pointer from the record at `pos` of `oid`: one that does not point
    /// backwards is reported now, others are kept to be read in order of their targets.
    fn pointer(&mut self, pos: u64, oid: Oid, target: u64, back: bool) {
        if target >= pos {
            self.findings.push(pointer_finding(
                pos,
                oid,
                target,
                back,
                "does not point backwards",
            ));
        } else {
            self.pointers.push(Pointer {
                pos,
                oid,
                target,
                back,
            });
        }
    }

    /// Walks the records of the transactions gathered so far, then compares the saved index
    /// with the index they make.
    pub(super) fn walk_records_before_saved_pos(&mut self) {
        self.walk_records(&zfs_format::NoProgress);
        self.flush_pointers();
        if let Some(ipos) = self.saved.take() {
            self.compare_index(ipos);
        }
    }
}
