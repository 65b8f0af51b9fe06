//! The record walk: the data records of a batch of transactions, on all cores, with the
//! structural checks of `fstest` and, in full mode, serials; then the pointers checked
//! against the index as the walk builds it, one oid's records at a time (on all cores too).

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
    /// Its transaction: the index of its job in the batch.
    pub(super) job: u32,
}

/// A pointer of a record that the index does not vouch for, found by [`chain`].
#[derive(Clone, Copy, Debug)]
struct Unvouched {
    /// Position of the record.
    pos: u64,
    /// Its oid.
    oid: Oid,
    /// Where the pointer points.
    target: u64,
    /// A backpointer (else a `prev` pointer).
    back: bool,
}

/// What [`chain`] found for some oids: the pointers the index does not vouch for, and the
/// oids' new positions (ascending by oid).
#[derive(Default)]
struct Chained {
    unvouched: Vec<Unvouched>,
    moved: Vec<(u64, u64)>,
}

/// What walking the records of some transactions found.
#[derive(Default)]
pub(super) struct Part {
    findings: Vec<Finding>,
    /// Ranges of transactions whose rest could not be delimited.
    pub(super) damaged: Vec<(u64, u64)>,
    /// The sound records of the chunk's jobs, in file order.
    pub(super) recs: Vec<Rec>,
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

    /// Walks the data records of one transaction (the batch's job number `job`), stopping
    /// at the first structural error (the rest of the transaction cannot be delimited).
    pub(super) fn walk(&mut self, file: &[u8], quick: bool, j: &Job, job: u32) {
        let len = file.len() as u64;
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
                self.recs.push(Rec {
                    pos: p,
                    oid: r.oid,
                    prev: r.prev,
                    back: r.backpointer_in(file).unwrap_or(0),
                    job,
                });
            }
            p = end;
        }
    }
}

/// The pointers of one oid's records in a batch (`group`, in file order) that the index does
/// not vouch for, into `out`; returns the oid's last indexed position if the batch moved it.
///
/// A `prev` pointer is vouched for when it names the oid's last indexed record before it
/// (`before`: the index as the batch found it, then the batch's own indexed records), or,
/// for a second record of the oid in one transaction, the last one before that transaction.
/// Backpointers are never vouched for.
fn chain(
    group: &[Rec],
    jobs: &[Job],
    before: Option<u64>,
    out: &mut Vec<Unvouched>,
) -> Option<u64> {
    let mut last = before;
    // The transaction of the oid's last indexed record, and the oid's last position before it.
    let mut in_txn: Option<(u32, Option<u64>)> = None;
    for r in group {
        let earlier = match in_txn {
            Some((job, b)) if job == r.job => b,
            _ => last,
        };
        if r.prev != 0 && Some(r.prev) != last && Some(r.prev) != earlier {
            out.push(Unvouched {
                pos: r.pos,
                oid: r.oid,
                target: r.prev,
                back: false,
            });
        }
        if r.back != 0 {
            out.push(Unvouched {
                pos: r.pos,
                oid: r.oid,
                target: r.back,
                back: true,
            });
        }
        if jobs[r.job as usize].index_it {
            if in_txn.is_none_or(|(job, _)| job != r.job) {
                in_txn = Some((r.job, last));
            }
            last = Some(r.pos);
        }
    }
    last.filter(|&l| Some(l) != before)
}

impl Walker<'_> {
    /// Walks the records of the gathered transactions on all cores, then checks every
    /// pointer against the index as it stands at the record, one oid's records at a time
    /// (see [`chain`]); the pointers the index does not vouch for are kept, in file order,
    /// for [`Walker::flush_pointers`].
    pub(super) fn walk_records(&mut self, progress: &dyn Progress) {
        let (file, quick) = (self.file, self.quick);
        let jobs = std::mem::take(&mut self.jobs);
        self.job_bytes = 0;
        let parts: Vec<Part> = jobs
            .par_chunks(JOB_CHUNK)
            .enumerate()
            .map(|(c, chunk)| {
                let mut part = Part::default();
                for (i, j) in chunk.iter().enumerate() {
                    let job = u32::try_from(c * JOB_CHUNK + i).expect("a batch's jobs fit in u32");
                    part.walk(file, quick, j, job);
                }
                if let (Some(first), Some(last)) = (chunk.first(), chunk.last()) {
                    progress.advance(last.tend + 8 - first.tpos);
                }
                part
            })
            .collect();
        let mut recs = Vec::with_capacity(parts.iter().map(|p| p.recs.len()).sum());
        for mut part in parts {
            self.findings.append(&mut part.findings);
            self.damaged.append(&mut part.damaged);
            self.record_count += part.count;
            recs.append(&mut part.recs);
        }
        // Each oid's records together, in file order (positions are unique).
        recs.par_sort_unstable_by_key(|r| (r.oid.as_u64(), r.pos));
        let ours = &self.ours;
        let jobs_ref = &jobs;
        let found: Vec<Chained> = recs
            .par_chunk_by(|a, b| a.oid == b.oid)
            .fold(Chained::default, |mut c, group| {
                let Some(oid) = group.first().map(|r| r.oid) else {
                    return c;
                };
                if let Some(l) = chain(group, jobs_ref, ours.get(oid), &mut c.unvouched) {
                    c.moved.push((oid.as_u64(), l));
                }
                c
            })
            .collect();
        let mut unvouched = Vec::new();
        let mut moved = Vec::new();
        for mut c in found {
            unvouched.append(&mut c.unvouched);
            moved.append(&mut c.moved);
        }
        // In file order, a record's `prev` pointer before its backpointer, as reported.
        unvouched.sort_unstable_by_key(|u| (u.pos, u.back));
        for u in unvouched {
            self.pointer(u.pos, u.oid, u.target, u.back);
        }
        self.ours.apply(IndexBuilder::from_pairs(moved));
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
