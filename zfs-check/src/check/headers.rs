//! The header walk: transaction after transaction, each header checked as `fstest` checks
//! it; a transaction whose extent cannot be trusted is skipped by resynchronising on the
//! next plausible header ([`zfs_format::resync`]). Every batch of transactions (bounded in
//! bytes) has its records walked as soon as it is complete.

use zfs_format::index_file::for_each_entry;
use zfs_format::resync::{plausible_txn, resync};
use zfs_format::txn::{RawTxnHeader, Status, TXN_HEADER_LEN};
use zfs_format::{Interrupted, Magic, Progress, Tid, FIRST_TXN};

use super::records::Job;
use super::{Kind, Walker};

impl Walker<'_> {
    /// Checks the magic, loads the saved index, walks the headers, then the records.
    pub(super) fn run(&mut self, progress: &dyn Progress) -> Result<(), Interrupted> {
        if self.len == 0 {
            self.add(
                0,
                Kind::EmptyFile,
                "the file is empty (not even a magic)".into(),
            );
            return Ok(());
        }
        match self.file.get(..4) {
            Some(b"FS30") => self.magic = Some(Magic::Fs30),
            Some(b"FS21") => self.magic = Some(Magic::Fs21),
            Some(m) => {
                let found = zfs_format::repr::escape_bytes(m);
                self.add(
                    0,
                    Kind::BadMagic,
                    format!("magic {found}, expected \"FS30\" or \"FS21\""),
                );
            }
            None => {
                let found = zfs_format::repr::escape_bytes(self.file);
                self.add(
                    0,
                    Kind::BadMagic,
                    format!(
                        "the file holds only {} bytes ({found}), less than a magic",
                        self.len
                    ),
                );
                return Ok(());
            }
        }
        if let Some(bytes) = self.index_bytes {
            self.index_checked = true;
            // Read through once here (its damage is reported first), and again, in
            // constant memory, when it is compared.
            match for_each_entry(bytes, |_, _| {}) {
                Ok(ipos) => self.saved = Some(ipos),
                Err(e) => self.add(
                    0,
                    Kind::IndexUnreadable,
                    format!("the saved .index cannot be read: {e}"),
                ),
            }
        }
        // The walk prefetches explicitly; the pointer targets it reads at random must not
        // bring megabytes of read-ahead each.
        zfs_files::random_access_mapped(self.file);
        let mut pos = FIRST_TXN;
        let mut ltid = Tid::default();
        while pos < self.len {
            match self.transaction(pos, ltid) {
                Step::Next(next, tid) => {
                    ltid = tid;
                    pos = next;
                }
                Step::Lost(from) => match resync(self.file, from, Some(ltid)) {
                    Some(q) => {
                        self.skipped += q - pos;
                        self.mark_damaged((pos, q));
                        self.add(
                            pos,
                            Kind::Unreadable,
                            format!("bytes {pos}..{q} ({} bytes) could not be read as transactions; the walk resumed at the next plausible transaction header, at {q}", q - pos),
                        );
                        pos = q;
                    }
                    None => {
                        self.skipped += self.len - pos;
                        self.mark_damaged((pos, self.len));
                        let tail_only = self.findings.last().is_some_and(|f| {
                            f.offset == pos && f.kind == Kind::TruncatedTransaction
                        });
                        if tail_only {
                            break;
                        }
                        self.add(
                            pos,
                            Kind::Unreadable,
                            format!("bytes {pos}..{} ({} bytes) could not be read as transactions (no plausible transaction header follows)", self.len, self.len - pos),
                        );
                        break;
                    }
                },
                Step::End => break,
            }
            if self.job_bytes >= self.batch_bytes {
                self.walk_records(progress);
                if progress.interrupted() {
                    self.stream.finish(self.file);
                    return Err(Interrupted);
                }
            }
        }
        self.walk_records(progress);
        self.flush_pointers();
        if progress.interrupted() {
            self.stream.finish(self.file);
            return Err(Interrupted);
        }
        if let Some(ipos) = self.saved.take() {
            self.compare_index(ipos);
        }
        self.stream.finish(self.file);
        Ok(())
    }

    /// Checks the transaction at `pos`; says where to go next.
    pub(super) fn transaction(&mut self, pos: u64, ltid: Tid) -> Step {
        let remaining = self.len - pos;
        let Some(h) = RawTxnHeader::decode(self.file, pos) else {
            self.add(
                pos,
                Kind::TruncatedHeader,
                format!("{remaining} bytes at the end of the file, too few for a transaction header ({TXN_HEADER_LEN})"),
            );
            return Step::End;
        };
        let hlen = h.header_len();
        let end_ok = h.next_pos().is_some_and(|n| n <= self.len);
        if !end_ok {
            self.add(
                pos,
                Kind::TruncatedTransaction,
                format!("transaction length {} runs past the end of the file ({} bytes); the file is truncated or the length is damaged", h.tlen, self.len),
            );
            return Step::Lost(pos + 1);
        }
        if hlen > h.tlen {
            self.add(
                pos,
                Kind::InvalidHeader,
                format!(
                    "transaction length {} is shorter than its header ({hlen} bytes)",
                    h.tlen
                ),
            );
            return Step::Lost(pos + 1);
        }
        if h.tid <= ltid {
            self.add(
                pos,
                Kind::TimestampReduction,
                format!(
                    "tid {} is not greater than the previous tid {}",
                    h.tid, ltid
                ),
            );
        }
        match h.status {
            Status::Committed | Status::Packed => {}
            Status::Checkpoint => self.add(
                pos,
                Kind::Checkpoint,
                "status 'c': a commit that was never finished (the checkpoint flag was not cleared)".into(),
            ),
            Status::Undone => self.add(
                pos,
                Kind::UndoneStatus,
                "status 'u': an obsolete undone transaction; ZODB ignores its records".into(),
            ),
            Status::Other(b) => {
                let s = zfs_format::repr::bytes_repr(&[b]);
                self.add(pos, Kind::BadStatus, format!("invalid status {s}, expected ' ', 'p', 'u' or 'c'"));
            }
        }
        let tend = pos + h.tlen;
        let rtl = h.redundant_len(self.file);
        let rtl_ok = rtl == Some(h.tlen);
        // A saved index is compared once the walk reaches the position it covers: the
        // records of this transaction must not be in the index then.
        if let Some(ipos) = self.saved {
            if tend + 8 > ipos {
                self.saved_pos_is_start |= pos == ipos && rtl_ok;
                self.walk_records_before_saved_pos();
            }
        }
        self.jobs.push(Job {
            tpos: pos,
            tend,
            tid: h.tid,
            hlen,
            index_it: rtl_ok && h.status != Status::Undone,
        });
        self.job_bytes += h.tlen + 8;
        if !rtl_ok {
            let found = rtl.map_or_else(|| "missing".to_string(), |v| v.to_string());
            self.add(
                tend,
                Kind::RedundantLength,
                format!(
                    "redundant length of the transaction at {pos} is {found}, its header says {}",
                    h.tlen
                ),
            );
            // The header's length may be right and only the copy damaged.
            if tend + 8 == self.len {
                return Step::End;
            }
            if plausible_txn(self.file, tend + 8, Some(h.tid)) {
                return Step::Next(tend + 8, h.tid);
            }
            return Step::Lost(pos + 1);
        }
        self.txn_count += 1;
        self.last_sound_end = tend + 8;
        Step::Next(tend + 8, h.tid)
    }
}

/// Where the walk goes after a transaction.
pub(super) enum Step {
    /// To the next transaction at this position; the tid to compare it with.
    Next(u64, Tid),
    /// The transaction's extent cannot be trusted: search for the next header from here.
    Lost(u64),
    /// The end of the file.
    End,
}
