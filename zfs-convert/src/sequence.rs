//! The oid sequence `zoid_seq`, set as RelStorage's own copy leaves it.
//!
//! RelStorage hands out oids in blocks of 16: `nextval('zoid_seq') = n` gives oids
//! `16n-15 ..= 16n`. When a copied storage transaction restored an oid `m` above every oid
//! seen so far, its vote runs `setval('zoid_seq', (m + 15) / 16)` if that is above
//! `nextval('zoid_seq')`, and that `nextval` consumes a value either way
//! (`relstorage/storage/oid.py`, `set_min_oid`). So the final value depends on the
//! history; [`OidSequence`] replays the rule on a fresh sequence (`last_value` 1, not
//! called).

/// The state of `zoid_seq` after the transactions observed so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OidSequence {
    last: u64,
    called: bool,
    seen: u64,
}

impl Default for OidSequence {
    fn default() -> Self {
        OidSequence {
            last: 1,
            called: false,
            seen: 0,
        }
    }
}

impl OidSequence {
    /// A sequence found at `last_value = last`, `is_called = called`, whose next block
    /// already lies above every oid that needs no higher one.
    pub(crate) fn at(last: u64, called: bool) -> Self {
        let next = if called { last + 1 } else { last };
        OidSequence {
            last,
            called,
            seen: next.saturating_sub(1).saturating_mul(16),
        }
    }

    /// One storage transaction whose largest restored oid is `max_oid` (0 when none).
    pub(crate) fn observe(&mut self, max_oid: u64) {
        if max_oid > self.seen {
            let next = if self.called {
                self.last + 1
            } else {
                self.last
            };
            self.called = true;
            self.last = next.max(max_oid.div_ceil(16));
            self.seen = max_oid;
        }
    }

    /// The arguments of `setval('zoid_seq', last, called)`, or `None` when the sequence
    /// is untouched.
    pub(crate) fn setval(&self) -> Option<(i64, bool)> {
        self.called
            .then(|| (i64::try_from(self.last).unwrap_or(i64::MAX), self.called))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_new_maximum_consumes_a_value() {
        // Three transactions raising the largest oid to 2, 3 and 4: last_value 3.
        let mut s = OidSequence::default();
        for m in [0, 2, 1, 3, 3, 4, 0] {
            s.observe(m);
        }
        assert_eq!(s.setval(), Some((3, true)));
        // A large first oid jumps directly.
        let mut s = OidSequence::default();
        s.observe(11771);
        assert_eq!(s.setval(), Some((736, true)));
        assert_eq!(OidSequence::default().setval(), None);
    }

    #[test]
    fn a_found_sequence_moves_only_for_oids_above_its_next_block() {
        // last_value 3, called: the next nextval is 4, block 49..=64, above oids up to 48.
        let mut s = OidSequence::at(3, true);
        s.observe(48);
        assert_eq!(s, OidSequence::at(3, true));
        s.observe(49);
        assert_eq!(s.setval(), Some((4, true)));
        // A fresh sequence: any oid above 0 moves it, as RelStorage's vote does.
        let mut s = OidSequence::at(1, false);
        s.observe(0);
        assert_eq!(s.setval(), None);
        s.observe(16);
        assert_eq!(s.setval(), Some((1, true)));
    }
}
