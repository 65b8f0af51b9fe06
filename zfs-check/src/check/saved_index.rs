//! The comparison of a saved `.index` with the index the file gives.

use zfs_format::{Index, FIRST_TXN};

use super::{Finding, Kind, Walker, MAX_INDEX_FINDINGS};

impl Walker<'_> {
    /// Compares the saved index (covering the file up to `ipos`) with the file's, once the
    /// walk has reached `ipos` (the index it built covers the file up to there).
    pub(super) fn compare_index(&mut self, ipos: u64, saved: &Index) {
        let boundary = ipos == FIRST_TXN || self.saved_pos_is_start || self.last_sound_end == ipos;
        if !boundary {
            self.index_findings.push(Finding {
                offset: ipos,
                kind: Kind::IndexPosition,
                message: format!("the saved .index covers the file up to {ipos}, which is not the end of a sound transaction"),
            });
            return;
        }
        let ours = &self.ours;
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
