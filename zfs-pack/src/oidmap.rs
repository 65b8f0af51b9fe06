//! A compact oid → position map with stable slot numbers, for the pack's scan state.
//!
//! Laid out like ZODB's `fsIndex` (and `zfs_format::Index`): oids grouped by their 6-byte
//! prefix, 2-byte suffixes and 6-byte positions per prefix, so 8 bytes per oid. Unlike
//! `Index`, every oid has a *slot* (its rank in oid order), which lets reachability live in
//! a bitset beside the map, and position 0 means "no current record" (a deleted object
//! keeps its slot; 0 is never the position of a record).

/// Position value meaning "the object does not exist at this point".
pub const ABSENT: u64 = 0;

/// oid → position, sorted by oid, with slots.
#[derive(Clone, Debug, Default)]
pub struct OidMap {
    prefixes: Vec<u64>,
    /// `starts[i]..starts[i+1]` are the slots of `prefixes[i]`.
    starts: Vec<u32>,
    suffixes: Vec<u16>,
    positions: Vec<[u8; 6]>,
    live: usize,
}

fn pos6(pos: u64) -> [u8; 6] {
    let b = pos.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

fn pos_from6(p: [u8; 6]) -> u64 {
    u64::from_be_bytes([0, 0, p[0], p[1], p[2], p[3], p[4], p[5]])
}

impl OidMap {
    /// An empty map.
    pub fn new() -> Self {
        OidMap {
            starts: vec![0],
            ..Default::default()
        }
    }

    fn push_sorted(&mut self, oid: u64, pos: u64) {
        let prefix = oid >> 16;
        if self.prefixes.last() != Some(&prefix) {
            self.prefixes.push(prefix);
            self.starts.push(self.suffixes.len() as u32 + 1);
        } else if let Some(last) = self.starts.last_mut() {
            *last += 1;
        }
        self.suffixes.push(oid as u16);
        self.positions.push(pos6(pos));
        if pos != ABSENT {
            self.live += 1;
        }
    }

    /// Number of slots (oids seen, deleted ones included).
    pub fn slots(&self) -> usize {
        self.suffixes.len()
    }

    /// Number of oids whose position is not [`ABSENT`].
    pub fn live(&self) -> usize {
        self.live
    }

    /// The slot of `oid`, if it has one.
    pub fn slot(&self, oid: u64) -> Option<usize> {
        let i = self.prefixes.binary_search(&(oid >> 16)).ok()?;
        let (s, e) = (self.starts[i] as usize, self.starts[i + 1] as usize);
        let j = self.suffixes[s..e].binary_search(&(oid as u16)).ok()?;
        Some(s + j)
    }

    /// The position stored in `slot` ([`ABSENT`] for a deleted object).
    pub fn pos_at(&self, slot: usize) -> u64 {
        pos_from6(self.positions[slot])
    }

    /// Replaces the position in `slot` (not [`ABSENT`]: the live count stays).
    pub fn set_pos(&mut self, slot: usize, pos: u64) {
        debug_assert!(pos != ABSENT, "a written position");
        if self.pos_at(slot) == ABSENT && pos != ABSENT {
            self.live += 1;
        }
        self.positions[slot] = pos6(pos);
    }

    /// Sets the slots for which `keep(slot, oid)` is false to [`ABSENT`].
    pub fn retain(&mut self, mut keep: impl FnMut(usize, u64) -> bool) {
        let mut live = 0;
        for (i, &p) in self.prefixes.iter().enumerate() {
            let (s, e) = (self.starts[i] as usize, self.starts[i + 1] as usize);
            for k in s..e {
                let oid = (p << 16) | u64::from(self.suffixes[k]);
                if pos_from6(self.positions[k]) == ABSENT {
                    continue;
                }
                if keep(k, oid) {
                    live += 1;
                } else {
                    self.positions[k] = pos6(ABSENT);
                }
            }
        }
        self.live = live;
    }

    /// The current position of `oid`, `None` when it has no slot or is absent.
    pub fn get(&self, oid: u64) -> Option<u64> {
        let p = self.pos_at(self.slot(oid)?);
        (p != ABSENT).then_some(p)
    }

    /// The oid in `slot`.
    #[cfg(test)]
    pub fn oid_at(&self, slot: usize) -> u64 {
        let b = self.starts.partition_point(|&s| s as usize <= slot) - 1;
        (self.prefixes[b] << 16) | u64::from(self.suffixes[slot])
    }

    /// All `(oid, position)` pairs in oid order, absent ones included.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.prefixes.iter().enumerate().flat_map(move |(i, &p)| {
            let (s, e) = (self.starts[i] as usize, self.starts[i + 1] as usize);
            (s..e).map(move |k| {
                (
                    (p << 16) | u64::from(self.suffixes[k]),
                    pos_from6(self.positions[k]),
                )
            })
        })
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.prefixes.capacity() * 8
            + self.starts.capacity() * 4
            + self.suffixes.capacity() * 2
            + self.positions.capacity() * 6
    }

    /// A new map with `updates` (in file order; later ones win) applied on top of this one.
    pub fn merged(&self, mut updates: Vec<(u64, u64)>) -> OidMap {
        // Stable sort keeps file order among equal oids; the last one wins.
        updates.sort_by_key(|&(o, _)| o);
        // In place: of equal oids the first is retained and takes the last one's position.
        updates.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = later.1;
            }
            same
        });
        let dedup = updates;
        let mut out = OidMap::new();
        out.suffixes.reserve_exact(self.slots() + dedup.len());
        out.positions.reserve_exact(self.slots() + dedup.len());
        let mut old = self.iter().peekable();
        let mut new = dedup.into_iter().peekable();
        loop {
            let next = match (old.peek(), new.peek()) {
                (Some(&(a, _)), Some(&(b, _))) if a < b => old.next(),
                (Some(&(a, _)), Some(&(b, _))) if a == b => {
                    old.next();
                    new.next()
                }
                (_, Some(_)) => new.next(),
                (Some(_), None) => old.next(),
                (None, None) => break,
            };
            if let Some((o, p)) = next {
                out.push_sorted(o, p);
            }
        }
        out.suffixes.shrink_to_fit();
        out.positions.shrink_to_fit();
        out
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
        let m = OidMap::new().merged(vec![
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
        let m2 = m.merged(vec![(7, 400), (6, 1)]);
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
