//! The comparison of a saved `.index` with the index the file gives.

use zfs_format::index_file::for_each_entry;
use zfs_format::{Oid, FIRST_TXN};

use super::{Finding, Kind, Walker, MAX_INDEX_FINDINGS};

impl Walker<'_> {
    /// Compares the saved index (covering the file up to `ipos`) with the file's, once the
    /// walk has reached `ipos` (the index it built covers the file up to there). The saved
    /// index is read from its file as it is compared, not held.
    pub(super) fn compare_index(&mut self, ipos: u64) {
        let boundary = ipos == FIRST_TXN || self.saved_pos_is_start || self.last_sound_end == ipos;
        if !boundary {
            self.index_findings.push(Finding {
                offset: ipos,
                kind: Kind::IndexPosition,
                message: format!("the saved .index covers the file up to {ipos}, which is not the end of a sound transaction"),
            });
            return;
        }
        let Some(bytes) = self.index_bytes else {
            return;
        };
        let saved_only = |o: Oid, sp: u64| Finding {
            offset: sp,
            kind: Kind::IndexMismatch,
            message: format!(
                "the saved .index has oid {o} at {sp}; the file has no record of it before {ipos}"
            ),
        };
        let ours_only = |o: Oid, fp: u64| Finding {
            offset: fp,
            kind: Kind::IndexMismatch,
            message: format!("the saved .index lacks oid {o}, whose current record is at {fp}"),
        };
        let mut b = self.ours.iter().peekable();
        let mut diffs: Vec<Finding> = Vec::new();
        let mut count = 0usize;
        let mut push = |f: Finding| {
            count += 1;
            if diffs.len() < MAX_INDEX_FINDINGS {
                diffs.push(f);
            }
        };
        // Both in oid order: a merge.
        let read = for_each_entry(bytes, |oa, sp| {
            while let Some(&(ob, fp)) = b.peek() {
                if ob >= oa {
                    break;
                }
                push(ours_only(ob, fp));
                b.next();
            }
            match b.peek() {
                Some(&(ob, fp)) if ob == oa => {
                    if sp != fp {
                        push(Finding {
                            offset: fp,
                            kind: Kind::IndexMismatch,
                            message: format!(
                                "the saved .index puts oid {oa} at {sp}; its current record is at {fp}"
                            ),
                        });
                    }
                    b.next();
                }
                _ => push(saved_only(oa, sp)),
            }
        });
        if let Err(e) = read {
            // It was read without error before the walk: it changed since.
            push(Finding {
                offset: 0,
                kind: Kind::IndexUnreadable,
                message: format!("the saved .index cannot be read: {e}"),
            });
        }
        for (ob, fp) in b {
            push(ours_only(ob, fp));
        }
        let shown = diffs.len();
        self.index_findings.extend(diffs);
        if count > shown {
            self.index_findings.push(Finding {
                offset: 0,
                kind: Kind::IndexMismatch,
                message: format!(
                    "{} more differences between the saved .index and the file",
                    count - shown
                ),
            });
        }
    }
}
