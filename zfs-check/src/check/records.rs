//! The record walk: the data records of the transactions the header walk found, on all
//! cores, with the structural checks of `fstest` and, in full mode, serials and the
//! pointers to check once every record position is known.

use rayon::prelude::*;

use zfs_format::record::{RawDataHeader, DATA_HEADER_LEN};
use zfs_format::txn::Status;
use zfs_format::{IndexBuilder, Interrupted, Oid, Progress, Tid};

use super::pointers::Pointer;
use super::{Finding, Kind, Walker, JOB_CHUNK};

/// A transaction whose records are to be walked.
#[derive(Clone, Copy, Debug)]
pub(super) struct Job {
    /// Position of the transaction.
    pub(super) tpos: u64,
    /// Where its records end (and its redundant length starts).
    pub(super) tend: u64,
    /// Its tid.
    pub(super) tid: Tid,
    /// Its status.
    pub(super) status: Status,
    /// Length of its header with the strings.
    pub(super) hlen: u64,
    /// Its records go into the index compared with a saved one.
    pub(super) index_it: bool,
}

/// What walking the records of some transactions found.
#[derive(Default)]
struct Part {
    findings: Vec<Finding>,
    damaged: Vec<(u64, u64)>,
    records: Vec<u64>,
    record_oids: Vec<Oid>,
    pointers: Vec<Pointer>,
    index: IndexBuilder,
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
    fn walk(&mut self, file: &[u8], quick: bool, j: &Job) {
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
                return;
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
                return;
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
                return;
            };
            self.count += 1;
            if !quick {
                self.semantics(file, &r, j.tid);
                if j.status != Status::Undone && j.index_it {
                    self.index.insert(r.oid, p);
                }
            }
            p = end;
        }
    }

    /// The serial check of a structurally sound record; its pointers are kept for later.
    fn semantics(&mut self, file: &[u8], r: &RawDataHeader, tid: Tid) {
        let p = r.pos;
        if r.tid != tid {
            self.add(
                p,
                Kind::SerialMismatch,
                format!(
                    "data record of oid {} has serial {}, its transaction's tid is {tid}",
                    r.oid, r.tid
                ),
            );
        }
        if r.prev != 0 {
            self.pointers.push(Pointer {
                pos: p,
                oid: r.oid,
                target: r.prev,
                back: false,
            });
        }
        if let Some(back) = r.backpointer_in(file).filter(|&b| b != 0) {
            self.pointers.push(Pointer {
                pos: p,
                oid: r.oid,
                target: back,
                back: true,
            });
        }
        self.records.push(p);
        self.record_oids.push(r.oid);
    }
}

impl Walker<'_> {
    /// Walks the records of all transactions found by the header walk, on all cores, then
    /// checks every pointer against the complete list of record positions.
    pub(super) fn walk_records(&mut self, progress: &dyn Progress) -> Result<(), Interrupted> {
        let (file, quick) = (self.file, self.quick);
        let jobs = std::mem::take(&mut self.jobs);
        let parts: Vec<Part> = jobs
            .par_chunks(JOB_CHUNK)
            .map(|chunk| {
                let mut part = Part::default();
                if progress.interrupted() {
                    return part;
                }
                for j in chunk {
                    part.walk(file, quick, j);
                }
                if let (Some(first), Some(last)) = (chunk.first(), chunk.last()) {
                    progress.advance(last.tend + 8 - first.tpos);
                }
                part
            })
            .collect();
        progress.check_interrupted()?;
        let mut pointers = Vec::new();
        for part in parts {
            self.findings.extend(part.findings);
            self.damaged.extend(part.damaged);
            self.records.extend(part.records);
            self.record_oids.extend(part.record_oids);
            pointers.extend(part.pointers);
            self.ours.append(part.index);
            self.record_count += part.count;
        }
        self.check_pointers(pointers);
        Ok(())
    }
}
