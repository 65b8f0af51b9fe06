//! A compact oid → position map with stable slot numbers, for the pack's scan state.
//!
//! It is `zfs_format::Index` (ZODB's fsIndex layout, 8 bytes per oid) used through its
//! slots: every oid has a slot (its rank in oid order), which lets reachability live in a
//! bitset beside the map, and position 0 means "no current record" (a deleted object keeps
//! its slot; 0 is never the position of a record). On top of the index it counts the oids
//! that are present.

use zfs_format::{Index, IndexBuilder, Oid};

/// Position value meaning "the object does not exist at this point".
pub const ABSENT: u64 = 0;

/// oid → position, sorted by oid, with slots.
#[derive(Clone, Debug, Default)]
pub struct OidMap {
    index: Index,
    live: usize,
}

impl OidMap {
    /// An empty map.
    pub fn new() -> Self {
        OidMap {
            index: Index::new(),
            live: 0,
        }
    }

    /// Number of slots (oids seen, deleted ones included).
    pub fn slots(&self) -> usize {
        self.index.len()
    }

    /// Number of oids whose position is not [`ABSENT`].
    pub fn live(&self) -> usize {
        self.live
    }

    /// The slot of `oid`, if it has one.
    pub fn slot(&self, oid: u64) -> Option<usize> {
        self.index.slot(Oid::from_u64(oid))
    }

    /// The position stored in `slot` ([`ABSENT`] for a deleted object).
    pub fn pos_at(&self, slot: usize) -> u64 {
        self.index.pos_at(slot)
    }

    /// Replaces the position in `slot` (not [`ABSENT`]: the live count stays).
    pub fn set_pos(&mut self, slot: usize, pos: u64) {
        debug_assert!(pos != ABSENT, "a written position");
        if self.pos_at(slot) == ABSENT && pos != ABSENT {
            self.live += 1;
        }
        self.index.set_pos_at(slot, pos);
    }

    /// Sets the slots for which `keep(slot, oid)` is false to [`ABSENT`].
    pub fn retain(&mut self, mut keep: impl FnMut(usize, u64) -> bool) {
        let mut live = 0;
        self.index.rewrite_positions(|slot, oid, pos| {
            if pos == ABSENT {
                ABSENT
            } else if keep(slot, oid.as_u64()) {
                live += 1;
                pos
            } else {
                ABSENT
            }
        });
        self.live = live;
    }

    /// The current position of `oid`, `None` when it has no slot or is absent.
    pub fn get(&self, oid: u64) -> Option<u64> {
        let p = self.pos_at(self.slot(oid)?);
        (p != ABSENT).then_some(p)
    }

    /// The oid in `slot` (below [`OidMap::slots`]).
    pub fn oid_at(&self, slot: usize) -> u64 {
        self.index.oid_at(slot).as_u64()
    }

    /// All `(oid, position)` pairs in oid order, absent ones included.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.index.iter().map(|(oid, pos)| (oid.as_u64(), pos))
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.index.heap_bytes()
    }

    /// Applies `updates` (in file order; later ones win) in place. Slots stay as they are
    /// unless an oid is new.
    pub fn apply(&mut self, updates: Vec<(u64, u64)>) {
        self.index.apply(IndexBuilder::from_pairs(updates));
        self.live = self.iter().filter(|&(_, p)| p != ABSENT).count();
    }
}

/// A fixed-size bitset over slots.
#[derive(Clone, Debug, Default)]
pub struct Bits {
    words: Vec<u64>,
}

impl Bits {
    /// `n` cleared bits.
    pub fn new(n: usize) -> Self {
        Bits {
            words: vec![0; n.div_ceil(64)],
        }
    }
    /// Whether bit `i` is set.
    pub fn get(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    /// Sets bit `i`; returns true if it was clear.
    pub fn set(&mut self, i: usize) -> bool {
        match self.words.get_mut(i / 64) {
            Some(w) => {
                let was = *w & (1 << (i % 64)) != 0;
                *w |= 1 << (i % 64);
                !was
            }
            None => false,
        }
    }
    /// Number of set bits.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }
    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_slots_and_absent() {
        let mut m = OidMap::new();
        m.apply(vec![
            (5, 100),
            (0x10000, 200),
            (5, 300),
            (7, 50),
            (7, ABSENT),
        ]);
        assert_eq!(m.slots(), 3);
        assert_eq!(m.live(), 2);
        assert_eq!(m.get(5), Some(300));
        assert_eq!(m.get(7), None);
        assert_eq!(m.slot(7), Some(1));
        assert_eq!(m.get(0x10000), Some(200));
        assert_eq!(m.oid_at(2), 0x10000);
        assert_eq!(m.oid_at(0), 5);
        let mut m3 = m.clone();
        m3.set_pos(1, 9);
        assert_eq!((m3.get(7), m3.live()), (Some(9), 3));
        m3.retain(|_, oid| oid != 5);
        assert_eq!((m3.get(5), m3.live()), (None, 2));
        let mut m2 = m.clone();
        m2.apply(vec![(7, 400), (6, 1)]);
        assert_eq!(
            m2.iter().collect::<Vec<_>>(),
            vec![(5, 300), (6, 1), (7, 400), (0x10000, 200)]
        );
        assert_eq!(m2.live(), 4);
    }

    #[test]
    fn bits() {
        let mut b = Bits::new(130);
        assert!(b.set(129));
        assert!(!b.set(129));
        assert!(b.get(129) && !b.get(128));
        assert!(!b.set(1000));
        assert_eq!(b.count(), 1);
    }
}
