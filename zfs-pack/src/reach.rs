//! Which revisions the pack keeps: ZODB's `reachable` (one position per oid) and
//! `reach_ex` (extra positions), over the compact scan map.

use std::collections::BTreeMap;

use crate::oidmap::{Bits, OidMap, ABSENT};

/// The set of revisions (oid, position) that are copied into the packed region.
#[derive(Debug, Default)]
pub struct Reach {
    /// oid → position of its current record at the pack time (0: absent).
    pub map: OidMap,
    /// With GC: the slots whose current-at-S revision is kept. Unused without GC.
    pub marked: Bits,
    /// Without GC every live oid is kept at its current position.
    pub all_live: bool,
    /// oids kept at a position other than their current-at-S one (a backpointer after the
    /// pack time to a revision of an object that was not reachable at the pack time).
    pub moved: BTreeMap<u64, u64>,
    /// Further revisions kept for an oid (ZODB's `reach_ex`).
    pub extra: BTreeMap<u64, Vec<u64>>,
}

impl Reach {
    /// The main kept position of `oid` (ZODB's `reachable.get(oid)`).
    pub fn main_pos(&self, oid: u64) -> Option<u64> {
        if let Some(&p) = self.moved.get(&oid) {
            return Some(p);
        }
        let slot = self.map.slot(oid)?;
        let p = self.map.pos_at(slot);
        if p == ABSENT {
            return None;
        }
        (self.all_live || self.marked.get(slot)).then_some(p)
    }

    /// Whether `oid` is in the reachable set at all (ZODB's `oid in reachable`).
    pub fn contains(&self, oid: u64) -> bool {
        self.main_pos(oid).is_some()
    }

    /// Whether the revision of `oid` at `pos` is kept (ZODB's `isReachable`).
    pub fn is_reachable(&self, oid: u64, pos: u64) -> bool {
        match self.main_pos(oid) {
            None => false,
            Some(p) if p == pos => true,
            Some(_) => self.extra.get(&oid).is_some_and(|l| l.contains(&pos)),
        }
    }

    /// Number of objects kept (distinct oids).
    pub fn objects(&self) -> usize {
        let base = if self.all_live {
            self.map.live()
        } else {
            self.marked.count()
        };
        // An oid is only ever moved when it is not otherwise kept.
        base + self.moved.len()
    }

    /// Notes that the kept revision of `oid` at `old` was written at `new` in the packed
    /// file. The scan map's slots then hold the packed file's positions (so the packed
    /// file's index needs no memory of its own), which is safe because the copy runs in
    /// file order: the main revision of an oid is its last record before the pack time,
    /// so no lookup of it comes after its write; revisions kept besides it are older and
    /// do not overwrite it; a moved oid's main position lives in `moved`, not the slot,
    /// and each of its writes overwrites the slot (the last one written wins, as in
    /// ZODB's index).
    pub fn record_written(&mut self, oid: u64, old: u64, new: u64) {
        let Some(slot) = self.map.slot(oid) else {
            return;
        };
        if self.moved.contains_key(&oid) || self.map.pos_at(slot) == old {
            self.map.set_pos(slot, new);
        }
    }

    /// After the copy before the pack time ([`Reach::record_written`] for every revision
    /// written): oid → position in the packed file of every object kept, the others
    /// [`ABSENT`].
    pub fn into_written(mut self) -> OidMap {
        let (marked, all_live, moved) = (&self.marked, self.all_live, &self.moved);
        self.map
            .retain(|slot, oid| all_live || marked.get(slot) || moved.contains_key(&oid));
        self.map
    }

    /// Heap bytes held by the structures, for memory reports.
    pub fn heap_bytes(&self) -> usize {
        self.map.heap_bytes()
            + self.marked.heap_bytes()
            + (self.moved.len() + self.extra.len()) * 48
    }
}
