//! The references file a pack leaves for the file it writes: a pack with garbage
//! collection after the last transaction knows, once its copy is done, every object of the
//! packed file, where its only record went, that record's tid, and (from the analysis,
//! completed by the copy) the objects it refers to. Saving them as `<file>.refs` (see
//! `zfs_format::refs_file`) lets the next pack read the file once, as after
//! [`crate::prepare`], without a separate walk.
//!
//! An object whose references are not all known (its pickle unreadable, a reference to an
//! object the packed file does not hold, or more references than 32-bit starts reach) is
//! saved as unknown: the next pack reads its record itself.

use zfs_files::{Output, OutputSpec};
use zfs_format::refs_file::{write_refs, Entry, UNKNOWN};
use zfs_format::Oid;

use crate::analyze::Edges;
use crate::copy::OutIndex;
use crate::error::Result;
use crate::oidmap::ABSENT;

/// Writes the references file of the packed file (committed end `end`, index `index`) into
/// a new private file for `spec`, fsynced, for the caller to rename into place after the
/// packed file. `edges` are the references of its objects as slots of the scan map.
/// `None` when the packed file is not one these describe (phase D wrote to it) or too
/// large for the format's 32-bit entry numbers.
pub(crate) fn create(
    spec: OutputSpec,
    index: &OutIndex,
    edges: &Edges,
    end: u64,
) -> Result<Option<Output>> {
    let (Some(map), Some(last_tid)) = (index.packed_map(), index.last_tid()) else {
        return Ok(None);
    };
    // Entry numbers of the slots kept (in oid order); `u32::MAX` for the others.
    let mut entry_of = vec![u32::MAX; map.slots()];
    let mut n: u32 = 0;
    for (slot, entry) in entry_of.iter_mut().enumerate() {
        if map.pos_at(slot) == ABSENT {
            continue;
        }
        if n >= zfs_format::refs_file::ABSENT {
            return Ok(None);
        }
        *entry = n;
        n += 1;
    }
    let kept = |slot: &usize| entry_of[*slot] != u32::MAX;
    // Known references only where every referent is an entry.
    let known = |slot: usize| {
        edges.of(slot).filter(|l| {
            l.iter()
                .all(|&r| entry_of.get(r as usize).is_some_and(|&e| e != u32::MAX))
        })
    };
    // Each entry's references and where they start in the list, the same in each pass
    // over the entries (`None`: saved as unknown).
    let starts = || {
        let mut words: u64 = 0;
        (0..map.slots()).filter(kept).map(move |slot| {
            let at = known(slot).and_then(|l| {
                let after = words + 1 + l.len() as u64;
                let s = u32::try_from(words).ok()?;
                (after < u64::from(zfs_format::refs_file::ABSENT)).then(|| {
                    words = after;
                    (s, l)
                })
            });
            (slot, at)
        })
    };
    let words: u64 = starts()
        .filter_map(|(_, at)| at.map(|(_, l)| 1 + l.len() as u64))
        .sum();
    let entries = starts().map(|(slot, at)| {
        let pos = map.pos_at(slot);
        Entry {
            oid: Oid::from_u64(map.oid_at(slot)),
            pos,
            tid: index.tid_at(pos).unwrap_or_default(),
            start: at.map_or(UNKNOWN, |(s, _)| s),
        }
    });
    let entries = Counted {
        inner: entries,
        left: u64::from(n),
    };
    let list = starts().filter_map(|(_, at)| at).flat_map(|(_, l)| {
        std::iter::once(l.len() as u32).chain(l.iter().map(|&r| entry_of[r as usize]))
    });
    let list = Counted {
        inner: list,
        left: words,
    };
    let out = zfs_files::write_synced(spec, |w| write_refs(w, end, last_tid, entries, list))?;
    Ok(Some(out))
}

/// An iterator whose length is known beforehand.
struct Counted<I> {
    inner: I,
    left: u64,
}

impl<I: Iterator> Iterator for Counted<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let x = self.inner.next()?;
        self.left = self.left.saturating_sub(1);
        Some(x)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.left).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

impl<I: Iterator> ExactSizeIterator for Counted<I> {}
