//! An `OOBTree` of string keys and persistent values whose keys only grow, kept as BTrees
//! keeps it: one inline bucket while it is small, then separate `OOBucket` objects chained
//! by their `next` references, split in half when full.

use super::pickle::{Class, Pickler, OOBTREE, OOBUCKET};

/// Most entries of a bucket (BTrees' limit for `OOBucket`).
pub const BUCKET_MAX: usize = 30;

/// One bucket: its oid (0 while the tree holds it inline) and its values, in key order.
#[derive(Clone, Debug, Default)]
pub struct Bucket {
    /// The bucket's oid; 0 for the inline bucket of a small tree.
    pub oid: u64,
    /// The values' oids; each value's key is derived from its oid.
    pub values: Vec<u64>,
}

/// What a change made dirty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touched {
    /// The tree object itself.
    Tree,
    /// The bucket with this index.
    Bucket(usize),
}

/// An `OOBTree` whose keys are derived from its values' oids (increasing with them).
#[derive(Clone, Debug)]
pub struct Tree {
    /// The tree's oid.
    pub oid: u64,
    /// Its buckets in key order; one bucket with oid 0 while the tree is inline.
    pub buckets: Vec<Bucket>,
    /// The class of the values (for their references).
    pub value_class: Class,
    /// The key prefix (`item`, `f`): a value's key is the prefix and its oid in 10 digits.
    pub prefix: &'static str,
}

impl Tree {
    /// An empty tree.
    pub fn new(oid: u64, value_class: Class, prefix: &'static str) -> Self {
        Tree {
            oid,
            buckets: vec![Bucket::default()],
            value_class,
            prefix,
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.values.len()).sum()
    }

    /// True when the tree holds nothing.
    pub fn is_empty(&self) -> bool {
        self.buckets.iter().all(|b| b.values.is_empty())
    }

    fn inline(&self) -> bool {
        self.buckets.len() == 1 && self.buckets[0].oid == 0
    }

    /// Appends a value whose key is larger than every key so far. `alloc` gives oids for
    /// new buckets. Returns what must be written.
    pub fn push(&mut self, value: u64, alloc: &mut dyn FnMut() -> u64) -> Vec<Touched> {
        let last = self.buckets.len() - 1;
        if self.buckets[last].values.len() < BUCKET_MAX {
            self.buckets[last].values.push(value);
            return vec![if self.inline() {
                Touched::Tree
            } else {
                Touched::Bucket(last)
            }];
        }
        // Full: split in half, the new key goes to the upper half.
        let upper = self.buckets[last].values.split_off(BUCKET_MAX / 2);
        let mut touched = vec![Touched::Tree];
        if self.inline() {
            self.buckets[last].oid = alloc();
        }
        touched.push(Touched::Bucket(last));
        let mut b = Bucket {
            oid: alloc(),
            values: upper,
        };
        b.values.push(value);
        self.buckets.push(b);
        touched.push(Touched::Bucket(last + 1));
        touched
    }

    /// Removes the value at `(bucket, index)` unless that would empty its bucket (BTrees
    /// would then drop the bucket, which this model does not do). Returns what must be
    /// written, or `None` when nothing was removed.
    pub fn remove(&mut self, bucket: usize, index: usize) -> Option<(u64, Touched)> {
        let inline = self.inline();
        let b = self.buckets.get_mut(bucket)?;
        if b.values.len() < 2 || index >= b.values.len() {
            return None;
        }
        let v = b.values.remove(index);
        Some((
            v,
            if inline {
                Touched::Tree
            } else {
                Touched::Bucket(bucket)
            },
        ))
    }

    /// Removes the value `value` (searched for); see [`remove`](Self::remove).
    pub fn remove_value(&mut self, value: u64) -> Option<Touched> {
        let (bi, i) = self
            .buckets
            .iter()
            .enumerate()
            .find_map(|(bi, b)| b.values.iter().position(|v| *v == value).map(|i| (bi, i)))?;
        self.remove(bi, i).map(|(_, t)| t)
    }

    /// A value at a random place: `(bucket, index)` from two draws.
    pub fn locate(&self, r1: u64, r2: u64) -> Option<(usize, usize)> {
        let bi = (r1 % self.buckets.len() as u64) as usize;
        let b = &self.buckets[bi];
        if b.values.is_empty() {
            return None;
        }
        Some((bi, (r2 % b.values.len() as u64) as usize))
    }

    fn key(&self, p: &mut Pickler, value: u64) {
        let key = format!("{}{:010}", self.prefix, value);
        p.text(key.as_bytes());
    }

    fn items(&self, p: &mut Pickler, values: &[u64]) {
        p.open_tuple(values.len() * 2);
        for &v in values {
            self.key(p, v);
            p.reference(v, self.value_class);
        }
        p.close_tuple(values.len() * 2);
    }

    /// The tree's record: class pickle and state.
    pub fn encode(&self, p: &mut Pickler) {
        p.start();
        p.class_pickle(OOBTREE);
        p.proto();
        if self.is_empty() && self.inline() {
            p.none();
        } else if self.inline() {
            // (((key, value, ...),),): the bucket's state inside the tree's.
            self.items(p, &self.buckets[0].values);
            p.close_tuple(1);
            p.close_tuple(1);
            p.close_tuple(1);
        } else {
            // ((bucket0, key1, bucket1, ...), bucket0)
            let n = self.buckets.len() * 2 - 1;
            p.open_tuple(n);
            for (i, b) in self.buckets.iter().enumerate() {
                if i > 0 {
                    self.key(p, b.values[0]);
                }
                p.reference(b.oid, OOBUCKET);
            }
            p.close_tuple(n);
            p.reference(self.buckets[0].oid, OOBUCKET);
            p.close_tuple(2);
        }
        p.stop();
    }

    /// The record of bucket `i`: `((key, value, ...),)` or `((key, value, ...), next)`.
    pub fn encode_bucket(&self, p: &mut Pickler, i: usize) {
        p.start();
        p.class_pickle(OOBUCKET);
        p.proto();
        self.items(p, &self.buckets[i].values);
        match self.buckets.get(i + 1) {
            Some(next) => {
                p.reference(next.oid, OOBUCKET);
                p.close_tuple(2);
            }
            None => p.close_tuple(1),
        }
        p.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::pickle::ITEM;
    use zfs_format::pickle::{references, StringMode};

    fn refs(p: &Pickler) -> Vec<u64> {
        references(p.bytes(), StringMode::Ascii)
            .expect("scans")
            .iter()
            .map(|o| {
                zfs_format::Oid::from_slice(o.as_ref())
                    .expect("8 bytes")
                    .as_u64()
            })
            .collect()
    }

    #[test]
    fn grows_inline_then_splits() {
        let mut next = 1000;
        let mut alloc = || {
            next += 1;
            next
        };
        let mut t = Tree::new(1, ITEM, "item");
        for v in 0..BUCKET_MAX as u64 {
            assert_eq!(t.push(v + 10, &mut alloc), vec![Touched::Tree]);
        }
        let mut p = Pickler::new();
        t.encode(&mut p);
        assert_eq!(refs(&p), (10..40).collect::<Vec<_>>());
        // The 31st value splits the inline bucket into two bucket objects.
        let touched = t.push(40, &mut alloc);
        assert_eq!(
            touched,
            vec![Touched::Tree, Touched::Bucket(0), Touched::Bucket(1)]
        );
        assert_eq!((t.buckets[0].oid, t.buckets[1].oid), (1001, 1002));
        assert_eq!(t.len(), 31);
        t.encode(&mut p);
        assert_eq!(refs(&p), vec![1001, 1002, 1001]);
        t.encode_bucket(&mut p, 0);
        let mut want: Vec<u64> = (10..25).collect();
        want.push(1002);
        assert_eq!(refs(&p), want);
        assert!(t.remove(1, 0).is_some());
        t.encode_bucket(&mut p, 1);
        assert_eq!(refs(&p), (26..41).collect::<Vec<_>>());
    }

    #[test]
    fn never_empties_a_bucket() {
        let mut t = Tree::new(1, ITEM, "item");
        t.push(5, &mut || 0);
        assert_eq!(t.remove(0, 0), None);
        assert_eq!(t.remove_value(5), None);
        assert_eq!(t.len(), 1);
    }
}
