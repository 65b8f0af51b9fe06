//! The comparison of a saved `.index` with the index the file gives.

use zfs_format::txn::RawTxnHeader;
use zfs_format::{Index, FIRST_TXN};

use super::{Finding, Kind, Walker, MAX_INDEX_FINDINGS};

impl Walker<'_> {
    /// Compares the saved index (covering the file up to `ipos`) with the file's.
    pub(super) fn compare_index(&mut self, ipos: u64, saved: &Index) {
        let boundary =
            ipos == FIRST_TXN || self.txns.binary_search(&ipos).is_ok() || self.txn_end_is(ipos);
        if !boundary {
            self.add(
                ipos,
                Kind::IndexPosition,
                format!("the saved .index covers the file up to {ipos}, which is not the end of a sound transaction"),
            );
            return;
        }
        let ours = std::mem::take(&mut self.ours).finish();
        let mut a = saved.iter().peekable();
        let mut b = ours.iter().peekable();
        let mut diffs: Vec<Finding> = Vec::new();
        let mut count = 0usize;
        let mut push = |f: Finding| {
            count += 1;
            if diffs.len() < MAX_INDEX_FINDINGS {
                diffs.push(f);
            }
        };
        loop {
            match (a.peek().copied(), b.peek().copied()) {
                (None, None) => break,
                (Some((o, sp)), None) => {
                    push(Finding {
                        offset: sp,
                        kind: Kind::IndexMismatch,
                        message: format!("the saved .index has oid {o} at {sp}; the file has no record of it before {ipos}"),
                    });
                    a.next();
                }
                (None, Some((o, fp))) => {
                    push(Finding {
                        offset: fp,
                        kind: Kind::IndexMismatch,
                        message: format!(
                            "the saved .index lacks oid {o}, whose current record is at {fp}"
                        ),
                    });
                    b.next();
                }
                (Some((oa, sp)), Some((ob, fp))) => {
                    if oa < ob {
                        push(Finding {
                            offset: sp,
                            kind: Kind::IndexMismatch,
                            message: format!("the saved .index has oid {oa} at {sp}; the file has no record of it before {ipos}"),
                        });
                        a.next();
                    } else if ob < oa {
                        push(Finding {
                            offset: fp,
                            kind: Kind::IndexMismatch,
                            message: format!(
                                "the saved .index lacks oid {ob}, whose current record is at {fp}"
                            ),
                        });
                        b.next();
                    } else {
                        if sp != fp {
                            push(Finding {
                                offset: fp,
                                kind: Kind::IndexMismatch,
                                message: format!("the saved .index puts oid {oa} at {sp}; its current record is at {fp}"),
                            });
                        }
                        a.next();
                        b.next();
                    }
                }
            }
        }
        let shown = diffs.len();
        self.findings.extend(diffs);
        if count > shown {
            self.add(
                0,
                Kind::IndexMismatch,
                format!(
                    "{} more differences between the saved .index and the file",
                    count - shown
                ),
            );
        }
    }

    /// True when `pos` is the end of a sound transaction.
    fn txn_end_is(&self, pos: u64) -> bool {
        self.txns.last().is_some_and(|&t| {
            RawTxnHeader::decode(self.file, t).and_then(|h| h.next_pos()) == Some(pos)
        })
    }
}
