//! The pointers whose targets are read: every `prev` pointer and backpointer must point
//! strictly backwards to a sound record of the same oid, unless it points into damage
//! already reported. Those the index does not vouch for (see `records.rs`) are checked by
//! reading their targets, sorted by position, a group at a time.

use rayon::prelude::*;

use zfs_format::record::{RawDataHeader, DATA_HEADER_LEN};
use zfs_format::txn::RawTxnHeader;
use zfs_format::{Oid, FIRST_TXN};

use super::{Finding, Kind, Walker};

/// Pointer targets read at once.
const POINTER_GROUP: usize = 4096;

/// A `prev` pointer or backpointer whose target is checked by reading it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pointer {
    /// Position of the record holding the pointer.
    pub(super) pos: u64,
    /// Its oid.
    pub(super) oid: Oid,
    /// Where the pointer points.
    pub(super) target: u64,
    /// A backpointer (else a `prev` pointer).
    pub(super) back: bool,
}

/// The record starts of the transaction walked last to find a target (its position, and
/// the starts ascending, ending with `u64::MAX`).
type Starts = (u64, Vec<u64>);

impl Walker<'_> {
    /// Reads the targets of the kept pointers, in file order, and reports those that are
    /// not the position of a sound record of the same oid.
    pub(super) fn flush_pointers(&mut self) {
        let mut pointers = std::mem::take(&mut self.pointers);
        pointers.par_sort_unstable_by_key(|p| (p.target, p.pos, p.back));
        // A group at a time, whose pages leave the process once read (a fault maps the
        // cached pages around it too). The kernel is asked for all of a group's targets at
        // once first: the reads are scattered, and many in flight go much faster than one
        // after another.
        for group in pointers.chunks(POINTER_GROUP) {
            for ptr in group {
                let end = ptr.target.saturating_add(DATA_HEADER_LEN);
                zfs_files::prefetch_mapped(self.file, ptr.target, end);
            }
            // Then for the records before each target in its transaction (walked to see
            // that a record starts there).
            for ptr in group {
                if let Some(r) = RawDataHeader::decode(self.file, ptr.target) {
                    if r.tloc < ptr.target && ptr.target - r.tloc <= 1 << 24 {
                        zfs_files::prefetch_mapped(self.file, r.tloc, ptr.target);
                    }
                }
            }
            let found: Vec<Finding> = group
                .par_chunks(1024)
                .flat_map_iter(|chunk| {
                    // Targets in one transaction are neighbours: its record starts are
                    // found once.
                    let mut starts: Starts = (0, Vec::new());
                    chunk
                        .iter()
                        .filter_map(|ptr| {
                            let why = self.target_problem(ptr.oid, ptr.target, &mut starts)?;
                            Some(pointer_finding(ptr.pos, ptr.oid, ptr.target, ptr.back, why))
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            self.findings.extend(found);
            if let (Some(first), Some(last)) = (group.first(), group.last()) {
                // The transactions walked to find the targets start before them.
                let from = first.target.saturating_sub(1 << 20);
                zfs_files::release_mapped(self.file, from, last.target.saturating_add(1 << 20));
            }
        }
        if !pointers.is_empty() {
            // What a large transaction's walk mapped before its group's range.
            zfs_files::release_mapped(self.file, 0, self.len);
        }
    }

    /// Why a pointer to `target` from a record of `oid` is wrong, if it is: the target
    /// must be a sound record of the same oid. A target in a region already reported as
    /// damaged is not reported again.
    fn target_problem(&self, oid: Oid, target: u64, starts: &mut Starts) -> Option<&'static str> {
        match self.sound_record_at(target, starts) {
            Some(o) if o == oid => None,
            Some(_) => Some("points to a record of another oid"),
            None if self.in_damage(target) => None,
            None => Some("is not the position of a readable data record"),
        }
    }

    /// The oid of the sound record at `target`, if the walk found one there: found again by
    /// walking, as the walk did, the records of the transaction its `tloc` names, when the
    /// walk walked a transaction there (`starts` keeps the record starts of the last
    /// transaction walked).
    fn sound_record_at(&self, target: u64, starts: &mut Starts) -> Option<Oid> {
        let r = RawDataHeader::decode(self.file, target)?;
        let tpos = r.tloc;
        let i = self
            .skipped_ranges
            .partition_point(|&(start, _)| start <= tpos);
        let skipped = i > 0 && tpos < self.skipped_ranges[i - 1].1;
        if tpos < FIRST_TXN || tpos >= target || skipped {
            return None;
        }
        if starts.0 != tpos || starts.1.is_empty() {
            starts.0 = tpos;
            starts.1.clear();
            if let Some(h) = RawTxnHeader::decode(self.file, tpos) {
                let tend = tpos.saturating_add(h.tlen);
                let mut p = tpos.saturating_add(h.header_len());
                while p < tend {
                    let Some(rec) = RawDataHeader::decode(self.file, p) else {
                        break;
                    };
                    match rec.end() {
                        Some(e) if rec.tloc == tpos && e <= tend => {
                            starts.1.push(p);
                            p = e;
                        }
                        _ => break,
                    }
                }
            }
            // Never empty, so that a transaction without records is not walked again.
            starts.1.push(u64::MAX);
        }
        starts.1.binary_search(&target).ok().map(|_| r.oid)
    }

    /// Remembers a range the header walk skipped (damaged), keeping the lists sorted by
    /// start. The transaction at its start may have been walked (its length is suspect
    /// only because its redundant length differs); no other in it was.
    pub(super) fn mark_damaged(&mut self, range: (u64, u64)) {
        let i = self.damaged.partition_point(|&(start, _)| start <= range.0);
        self.damaged.insert(i, range);
        let walked = self.jobs.last().is_some_and(|j| j.tpos == range.0);
        let unwalked = (range.0 + u64::from(walked), range.1);
        let i = self
            .skipped_ranges
            .partition_point(|&(start, _)| start <= unwalked.0);
        self.skipped_ranges.insert(i, unwalked);
    }

    /// True when `pos` lies in a range already reported as damaged (ranges may overlap; a
    /// range that starts earlier but reaches far is found by looking back a few).
    pub(super) fn in_damage(&self, pos: u64) -> bool {
        let i = self.damaged.partition_point(|&(start, _)| start <= pos);
        self.damaged
            .iter()
            .take(i)
            .rev()
            .take(4)
            .any(|&(_, end)| pos < end)
    }
}

/// The finding for a bad `prev` pointer or backpointer.
pub(super) fn pointer_finding(pos: u64, oid: Oid, target: u64, back: bool, why: &str) -> Finding {
    if back {
        Finding {
            offset: pos,
            kind: Kind::BadBackpointer,
            message: format!("data record of oid {oid}: backpointer {target} {why}"),
        }
    } else {
        Finding {
            offset: pos,
            kind: Kind::BadPrev,
            message: format!("data record of oid {oid}: previous-record pointer {target} {why}"),
        }
    }
}
