//! The pointer merge: every `prev` pointer and backpointer must point strictly backwards
//! to a sound record of the same oid, unless it points into damage already reported.

use rayon::prelude::*;

use zfs_format::Oid;

use super::{Finding, Kind, Walker};

/// A `prev` pointer or backpointer to check once every record position is known.
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

impl Walker<'_> {
    /// Checks every pointer against the complete, sorted list of record positions.
    pub(super) fn check_pointers(&mut self, mut pointers: Vec<Pointer>) {
        self.damaged.sort_unstable();
        // Every pointer target is looked up in the sorted record positions: sorting the
        // pointers by target turns the lookups into one linear merge, much cheaper than a
        // binary search per pointer over a large file.
        pointers.par_sort_unstable_by_key(|p| p.target);
        let mut found = Vec::new();
        let mut i = 0;
        for ptr in &pointers {
            while self.records.get(i).is_some_and(|&r| r < ptr.target) {
                i += 1;
            }
            let at = (self.records.get(i) == Some(&ptr.target)).then_some(i);
            if let Some(why) = self.pointer_problem(ptr.pos, ptr.oid, ptr.target, at) {
                let oid = ptr.oid;
                found.push(if ptr.back {
                    Finding {
                        offset: ptr.pos,
                        kind: Kind::BadBackpointer,
                        message: format!(
                            "data record of oid {oid}: backpointer {} {why}",
                            ptr.target
                        ),
                    }
                } else {
                    Finding {
                        offset: ptr.pos,
                        kind: Kind::BadPrev,
                        message: format!(
                            "data record of oid {oid}: previous-record pointer {} {why}",
                            ptr.target
                        ),
                    }
                });
            }
        }
        self.findings.extend(found);
    }

    /// Why a pointer from the record at `p` of `oid` to `target` is wrong, if it is; `at` is
    /// the index of `target` in `self.records` when it is a sound record's position. A target
    /// that is itself a backpointer has its own pointer checked, so chains are checked link by
    /// link.
    fn pointer_problem(
        &self,
        p: u64,
        oid: Oid,
        target: u64,
        at: Option<usize>,
    ) -> Option<&'static str> {
        if target >= p {
            return Some("does not point backwards");
        }
        let Some(i) = at else {
            if self.in_damage(target) {
                // The damage around the target is reported already.
                return None;
            }
            return Some("is not the position of a readable data record");
        };
        match self.record_oids.get(i) {
            Some(o) if *o == oid => None,
            _ => Some("points to a record of another oid"),
        }
    }

    /// Remembers a damaged range, keeping the list sorted by start.
    pub(super) fn mark_damaged(&mut self, range: (u64, u64)) {
        let i = self.damaged.partition_point(|&(start, _)| start <= range.0);
        self.damaged.insert(i, range);
    }

    /// True when `pos` lies in a range already reported as damaged (ranges may overlap; a
    /// range that starts earlier but reaches far is found by looking back a few).
    fn in_damage(&self, pos: u64) -> bool {
        let i = self.damaged.partition_point(|&(start, _)| start <= pos);
        self.damaged
            .iter()
            .take(i)
            .rev()
            .take(4)
            .any(|&(_, end)| pos < end)
    }
}
