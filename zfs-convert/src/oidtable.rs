//! A map from oid to one 64-bit value (a tid, a position), dense where oids are.
//!
//! ZODB hands out oids from 1 upwards, so a vector indexed by oid costs 8 bytes per object;
//! oids beyond [`DENSE_LIMIT`] (hand-made or foreign databases) go to a hash map. The value
//! 0 means "absent".

use std::collections::HashMap;

/// Largest oid kept in the vector (2 GiB of values at most).
const DENSE_LIMIT: u64 = 1 << 28;

/// oid → value, 0 for absent.
#[derive(Debug, Default)]
pub(crate) struct OidTable {
    dense: Vec<u64>,
    sparse: HashMap<u64, u64>,
}

impl OidTable {
    /// The value of `oid`, 0 when absent.
    pub(crate) fn get(&self, oid: u64) -> u64 {
        if oid < DENSE_LIMIT {
            self.dense.get(oid as usize).copied().unwrap_or(0)
        } else {
            self.sparse.get(&oid).copied().unwrap_or(0)
        }
    }

    /// Sets the value of `oid`.
    pub(crate) fn set(&mut self, oid: u64, v: u64) {
        if oid < DENSE_LIMIT {
            let i = oid as usize;
            if i >= self.dense.len() {
                let grow = (i + 1).max(self.dense.len() * 3 / 2);
                self.dense.resize(grow, 0);
            }
            self.dense[i] = v;
        } else {
            self.sparse.insert(oid, v);
        }
    }

    /// Every (oid, value) with a value, dense oids in order, then the others in any order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.dense
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != 0)
            .map(|(o, v)| (o as u64, *v))
            .chain(
                self.sparse
                    .iter()
                    .filter(|(_, v)| **v != 0)
                    .map(|(o, v)| (*o, *v)),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_sparse_oids() {
        let mut t = OidTable::default();
        t.set(0, 5);
        t.set(1000, 6);
        t.set(u64::MAX, 7);
        t.set(1000, 8);
        assert_eq!(t.get(0), 5);
        assert_eq!(t.get(1000), 8);
        assert_eq!(t.get(999), 0);
        assert_eq!(t.get(u64::MAX), 7);
        assert_eq!(t.get(1 << 40), 0);
        let all: Vec<_> = t.iter().collect();
        assert_eq!(all, vec![(0, 5), (1000, 8), (u64::MAX, 7)]);
    }
}
