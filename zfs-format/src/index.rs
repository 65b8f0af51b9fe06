//! The index: oid → position of the oid's current data record.
//!
//! Stored like ZODB's `fsIndex`: oids grouped by their 6-byte prefix, and for each prefix the
//! sorted 2-byte suffixes and 6-byte positions. That is 8 bytes per oid plus 12 per prefix,
//! and it is the very layout the `.index` file holds, so saving is a straight copy.
//! Positions are kept in 48 bits, as ZODB does (files up to 256 TiB).

use crate::ids::Oid;

/// Largest position an index can hold (ZODB truncates to 6 bytes too).
pub const MAX_POS: u64 = (1 << 48) - 1;

/// An immutable oid → position map, sorted by oid.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Index {
    /// Distinct 6-byte prefixes, ascending, as u64.
    prefixes: Vec<u64>,
    /// `starts[i]..starts[i+1]` are the entries of `prefixes[i]`; one more than `prefixes`.
    starts: Vec<u32>,
    /// 2-byte suffixes, ascending within each prefix.
    suffixes: Vec<u16>,
    /// 6-byte big-endian positions, parallel to `suffixes`.
    positions: Vec<[u8; 6]>,
}

fn pos6(pos: u64) -> [u8; 6] {
    let b = pos.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// A position from the 6 big-endian bytes the index (and its file) holds it in.
pub(crate) fn pos_from6(p: [u8; 6]) -> u64 {
    u64::from_be_bytes([0, 0, p[0], p[1], p[2], p[3], p[4], p[5]])
}

impl Index {
    /// An empty index.
    pub fn new() -> Self {
        Index {
            starts: vec![0],
            ..Default::default()
        }
    }

    /// Builds an index from `(oid, pos)` pairs sorted by oid with no duplicates.
    pub fn from_sorted(pairs: impl IntoIterator<Item = (u64, u64)>) -> Self {
        let mut ix = Index::new();
        for (oid, pos) in pairs {
            ix.push_sorted(oid, pos);
        }
        ix
    }

    fn push_sorted(&mut self, oid: u64, pos: u64) {
        let prefix = oid >> 16;
        if self.prefixes.last() != Some(&prefix) {
            self.prefixes.push(prefix);
            self.starts.push(self.suffixes.len() as u32 + 1);
        } else if let Some(last) = self.starts.last_mut() {
            *last += 1;
        }
        if self.suffixes.len() == self.suffixes.capacity() {
            // Grow by a quarter, not by doubling: the index is most of a scan's memory.
            let more = self.suffixes.capacity() / 4 + 1024;
            self.suffixes.reserve_exact(more);
            self.positions.reserve_exact(more);
        }
        self.suffixes.push(oid as u16);
        self.positions.push(pos6(pos));
    }

    /// The slot of `oid`: its rank in oid order, the same until the index next gains an
    /// oid. Lets a caller keep per-oid data (a bitset, say) beside the index.
    pub fn slot(&self, oid: Oid) -> Option<usize> {
        self.find(oid.as_u64())
    }

    /// The position in `slot` (see [`Index::slot`]).
    pub fn pos_at(&self, slot: usize) -> u64 {
        pos_from6(self.positions[slot])
    }

    /// The oid in `slot` (see [`Index::slot`]); `slot` must be below [`Index::len`].
    pub fn oid_at(&self, slot: usize) -> Oid {
        // The bucket whose entries hold `slot`: the last one starting at or before it.
        let bucket = self
            .starts
            .partition_point(|&s| s as usize <= slot)
            .saturating_sub(1);
        Oid::from_u64((self.prefixes[bucket] << 16) | u64::from(self.suffixes[slot]))
    }

    /// Replaces the position in `slot` (see [`Index::slot`]).
    pub fn set_pos_at(&mut self, slot: usize, pos: u64) {
        self.positions[slot] = pos6(pos);
    }

    /// Rewrites every position: `f(slot, oid, position)` returns the new one.
    pub fn rewrite_positions(&mut self, mut f: impl FnMut(usize, Oid, u64) -> u64) {
        for (i, &prefix) in self.prefixes.iter().enumerate() {
            let (s, e) = (self.starts[i] as usize, self.starts[i + 1] as usize);
            for k in s..e {
                let oid = Oid::from_u64((prefix << 16) | u64::from(self.suffixes[k]));
                self.positions[k] = pos6(f(k, oid, pos_from6(self.positions[k])));
            }
        }
    }

    /// Index of `oid`'s entry in `suffixes`/`positions`.
    fn find(&self, v: u64) -> Option<usize> {
        let i = self.prefixes.binary_search(&(v >> 16)).ok()?;
        let (s, e) = (self.starts[i] as usize, self.starts[i + 1] as usize);
        let bucket = self.suffixes.get(s..e)?;
        let (&first, &last) = (bucket.first()?, bucket.last()?);
        let x = v as u16;
        if x < first || x > last {
            return None;
        }
        // The suffixes are distinct and sorted, so `x` can only sit between these two
        // places: a bucket of consecutive oids (the usual case: ZODB hands them out in
        // order) narrows the search to a single slot.
        let hi = usize::from(x - first).min(bucket.len() - 1);
        let lo = (bucket.len() - 1).saturating_sub(usize::from(last - x));
        let j = bucket.get(lo..=hi)?.binary_search(&x).ok()?;
        Some(s + lo + j)
    }

    /// Appends one prefix's bucket as the `.index` file stores it (used by the loader).
    pub(crate) fn push_bucket(&mut self, prefix: u64, suffixes: &[u16], positions: &[[u8; 6]]) {
        self.prefixes.push(prefix);
        self.suffixes.extend_from_slice(suffixes);
        self.positions.extend_from_slice(positions);
        self.starts.push(self.suffixes.len() as u32);
    }

    fn reserve(&mut self, n: usize) {
        self.suffixes.reserve_exact(n);
        self.positions.reserve_exact(n);
    }

    /// Number of oids.
    pub fn len(&self) -> usize {
        self.suffixes.len()
    }

    /// True when no oid is indexed.
    pub fn is_empty(&self) -> bool {
        self.suffixes.is_empty()
    }

    /// Position of the current record of `oid`.
    pub fn get(&self, oid: Oid) -> Option<u64> {
        self.find(oid.as_u64()).map(|i| self.pos_at(i))
    }

    /// True if `oid` is indexed.
    pub fn contains(&self, oid: Oid) -> bool {
        self.get(oid).is_some()
    }

    /// The largest oid, if any.
    pub fn max_oid(&self) -> Option<Oid> {
        let p = *self.prefixes.last()?;
        let s = *self.suffixes.last()?;
        Some(Oid::from_u64((p << 16) | u64::from(s)))
    }

    /// All `(oid, position)` pairs in ascending oid order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (Oid, u64)> + '_ {
        let mut bucket = 0usize;
        (0..self.suffixes.len()).map(move |i| {
            while self.starts[bucket + 1] as usize <= i {
                bucket += 1;
            }
            let oid = (self.prefixes[bucket] << 16) | u64::from(self.suffixes[i]);
            (Oid::from_u64(oid), pos_from6(self.positions[i]))
        })
    }

    /// The buckets as the `.index` file holds them: prefix, suffixes, positions.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, &[u16], &[[u8; 6]])> + '_ {
        self.prefixes.iter().enumerate().map(move |(i, &p)| {
            let (s, e) = (self.starts[i] as usize, self.starts[i + 1] as usize);
            (p, &self.suffixes[s..e], &self.positions[s..e])
        })
    }

    /// Heap bytes held, for memory reports.
    pub fn heap_bytes(&self) -> usize {
        self.prefixes.capacity() * 8
            + self.starts.capacity() * 4
            + self.suffixes.capacity() * 2
            + self.positions.capacity() * 6
    }

    /// A new index with `updates` applied on top of this one (later updates win).
    pub fn updated(&self, updates: IndexBuilder) -> Index {
        let mut out = self.clone();
        out.apply(updates);
        out
    }

    /// Applies `updates` (later updates win) in place: an oid already indexed gets its new
    /// position where it stands, an oid above all others is appended, and only oids that
    /// fall between existing ones (rare: ZODB hands out oids in ascending order) cost a
    /// merge into a new index.
    pub fn apply(&mut self, mut updates: IndexBuilder) {
        let pairs = updates.sorted_pairs();
        let mut between = Vec::new();
        for (oid, pos) in pairs {
            if let Some(i) = self.find(oid) {
                self.positions[i] = pos6(pos);
            } else if self.max_oid().is_none_or(|m| oid > m.as_u64()) {
                self.push_sorted(oid, pos);
            } else {
                between.push((oid, pos));
            }
        }
        if !between.is_empty() {
            *self = self.merged(between);
        }
    }

    /// A new index holding this one's entries and `new` (sorted, no duplicates, none of
    /// them already indexed).
    fn merged(&self, new: Vec<(u64, u64)>) -> Index {
        if self.is_empty() {
            return Index::from_sorted(new);
        }
        let mut out = Index::new();
        out.reserve(self.len() + new.len());
        let mut old = self.iter().map(|(o, p)| (o.as_u64(), p)).peekable();
        let mut new = new.iter().copied().peekable();
        loop {
            let next = match (old.peek(), new.peek()) {
                (Some(&(a, _)), Some(&(b, _))) if a < b => old.next(),
                (Some(&(a, _)), Some(&(b, _))) if a == b => {
                    old.next();
                    new.next()
                }
                (Some(_), Some(_)) | (None, Some(_)) => new.next(),
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

/// Collects `(oid, position)` pairs in file order; the last position of an oid wins.
#[derive(Clone, Debug, Default)]
pub struct IndexBuilder {
    pairs: Vec<(u64, u64)>,
}

impl IndexBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the current record of `oid` is at `pos` (later calls win).
    pub fn insert(&mut self, oid: Oid, pos: u64) {
        self.pairs.push((oid.as_u64(), pos));
    }

    /// Appends the pairs of another builder that covers later transactions.
    pub fn append(&mut self, mut later: IndexBuilder) {
        self.pairs.append(&mut later.pairs);
    }

    /// A builder holding `(oid, position)` pairs already collected in file order.
    pub fn from_pairs(pairs: Vec<(u64, u64)>) -> Self {
        IndexBuilder { pairs }
    }

    /// Number of pairs collected so far (records, not oids).
    pub fn pending(&self) -> usize {
        self.pairs.len()
    }

    fn sorted_pairs(&mut self) -> Vec<(u64, u64)> {
        let mut pairs = std::mem::take(&mut self.pairs);
        // Among the records of one oid the current one is the last inserted. When positions
        // grow with insertion (a scan in file order) sorting by (oid, position) keeps that
        // order and needs no buffer; otherwise a stable sort by oid keeps it.
        // Large batches (the pack's and reindex's scans) sort on every core.
        use rayon::slice::ParallelSliceMut as _;
        let parallel = pairs.len() >= 1 << 16;
        match (pairs.windows(2).all(|w| w[0].1 < w[1].1), parallel) {
            (true, true) => pairs.par_sort_unstable(),
            (true, false) => pairs.sort_unstable(),
            (false, true) => pairs.par_sort_by_key(|&(oid, _)| oid),
            (false, false) => pairs.sort_by_key(|&(oid, _)| oid),
        }
        // Keep the last pair of each oid, in place.
        let mut w = 0;
        for r in 0..pairs.len() {
            if w > 0 && pairs[w - 1].0 == pairs[r].0 {
                pairs[w - 1] = pairs[r];
            } else {
                pairs[w] = pairs[r];
                w += 1;
            }
        }
        pairs.truncate(w);
        pairs
    }

    /// The finished index.
    pub fn finish(mut self) -> Index {
        Index::from_sorted(self.sorted_pairs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn later_wins_and_lookup() {
        let mut b = IndexBuilder::new();
        b.insert(Oid::from_u64(5), 100);
        b.insert(Oid::from_u64(0x10000), 200);
        b.insert(Oid::from_u64(5), 300);
        let ix = b.finish();
        assert_eq!(ix.len(), 2);
        assert_eq!(ix.get(Oid::from_u64(5)), Some(300));
        assert_eq!(ix.get(Oid::from_u64(0x10000)), Some(200));
        assert_eq!(ix.get(Oid::from_u64(6)), None);
        assert_eq!(ix.max_oid(), Some(Oid::from_u64(0x10000)));
        assert_eq!(ix.buckets().count(), 2);
        let mut ix = ix;
        assert_eq!(ix.slot(Oid::from_u64(0x10000)), Some(1));
        assert_eq!(ix.slot(Oid::from_u64(6)), None);
        ix.set_pos_at(1, 250);
        assert_eq!(
            (ix.pos_at(1), ix.get(Oid::from_u64(0x10000))),
            (250, Some(250))
        );
        let mut seen = Vec::new();
        ix.rewrite_positions(|slot, oid, pos| {
            seen.push((slot, oid.as_u64(), pos));
            pos + 1
        });
        assert_eq!(seen, vec![(0, 5, 300), (1, 0x10000, 250)]);
        assert_eq!(ix.get(Oid::from_u64(5)), Some(301));
    }

    proptest! {
        #[test]
        fn matches_a_btreemap(ops in proptest::collection::vec((0u64..300_000, 0u64..MAX_POS), 0..400),
                              more in proptest::collection::vec((0u64..300_000, 0u64..MAX_POS), 0..100)) {
            let mut model = std::collections::BTreeMap::new();
            let mut b = IndexBuilder::new();
            for &(o, p) in &ops { model.insert(o, p); b.insert(Oid::from_u64(o), p); }
            let ix = b.finish();
            let mut u = IndexBuilder::new();
            for &(o, p) in &more { model.insert(o, p); u.insert(Oid::from_u64(o), p); }
            let ix = ix.updated(u);
            let got: Vec<(u64, u64)> = ix.iter().map(|(o, p)| (o.as_u64(), p)).collect();
            let want: Vec<(u64, u64)> = model.into_iter().collect();
            prop_assert_eq!(&got, &want);
            for (o, p) in want { prop_assert_eq!(ix.get(Oid::from_u64(o)), Some(p)); }
            for (slot, (o, _)) in ix.iter().enumerate() {
                prop_assert_eq!(ix.oid_at(slot), o);
                prop_assert_eq!(ix.slot(o), Some(slot));
            }
        }

        #[test]
        fn lookups_in_dense_runs_with_gaps(
            runs in proptest::collection::vec((60_000u64..140_000, 1u64..3_000), 1..4),
            holes in proptest::collection::vec(60_000u64..143_000, 0..60),
        ) {
            // ZODB's oids come in dense runs (with holes where objects were packed away):
            // every oid around the runs, present or not, must be answered as a map would.
            let mut model = std::collections::BTreeMap::new();
            for &(start, len) in &runs {
                for o in start..start + len { model.insert(o, o * 3 + 4); }
            }
            for h in &holes { model.remove(h); }
            let ix = Index::from_sorted(model.iter().map(|(&o, &p)| (o, p)));
            let probes = runs
                .iter()
                .flat_map(|&(start, len)| start.saturating_sub(3)..start + len + 3)
                .chain(holes.iter().copied());
            for o in probes {
                prop_assert_eq!(ix.get(Oid::from_u64(o)), model.get(&o).copied(), "oid {}", o);
            }
        }
    }
}
