//! `check`: a tolerant walk over a whole file that reports every problem it finds.
//!
//! The walk covers everything ZODB's `fstest` looks at (same damage, same offsets), and, unless
//! asked for a quick structural pass, what `fstest` does not: `prev` pointers and backpointers
//! (strictly backwards, to a record of the same oid), record serials equal to their
//! transaction's tid, `u` (undone) transactions, and a saved `.index` that disagrees with the
//! file.
//!
//! Unlike `fstest`, which stops at the first error, the walk keeps going: a damaged transaction
//! whose length cannot be trusted is skipped by searching forward for the next plausible
//! transaction header (one whose redundant length and first record agree with it), and the
//! bytes skipped are reported too. Pointers into a region already reported as damaged are
//! not reported again.
//!
//! The file is read once, in order, with bounded memory: the transaction headers are walked
//! in order (each gives the next position), and every batch of transactions (bounded in
//! bytes) has its records walked on all cores. Pointers are then checked in file order
//! against the index as the walk builds it: a `prev` pointer naming the oid's last record is
//! sound without reading anything; the others (undo, mostly to recent revisions) have their
//! targets read, sorted by position, while the pages behind the walk are still cached. The
//! kernel reads ahead of the walk and the pages behind it leave the process
//! (`zfs_files::Stream`). Memory: the index the file makes (8 bytes per object), the saved
//! one while it is compared, and a batch.
//!
//! Every byte rule (header layouts, the resynchronisation test, the bounded readers) comes
//! from `zfs-format`. The work is split by concern: what is reported (`report.rs`), the
//! header walk with its resynchronisation and batches (`headers.rs`), the parallel record
//! walk and the in-order pointer check (`records.rs`), the reading of pointer targets
//! (`pointers.rs`) and the comparison with a saved `.index` (`saved_index.rs`).

mod headers;
mod pointers;
mod records;
mod report;
mod saved_index;
#[cfg(test)]
mod tests;

use zfs_format::{Index, Interrupted, Magic, Progress, FIRST_TXN};

use pointers::Pointer;
use records::Job;
pub use report::{Finding, Kind, Report};

/// Individual findings reported for differences between a saved index and the file; the rest
/// are counted in one summary finding.
const MAX_INDEX_FINDINGS: usize = 20;
/// Transactions per parallel work unit of the record walk.
const JOB_CHUNK: usize = 256;
/// Bytes of transactions whose records are walked at once.
const BATCH_BYTES: u64 = 16 << 20;
/// Bytes the kernel is asked to read ahead of the walk (and kept behind it).
const AHEAD: u64 = 64 << 20;

/// What to check.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options<'a> {
    /// Structure only (what `fstest` checks, plus `u` transactions): no pointers, serials or
    /// index.
    pub quick: bool,
    /// The bytes of the saved `.index` file, if there is one, to compare with the file.
    pub index: Option<&'a [u8]>,
}

/// Checks a whole file given as bytes. Every problem is a [`Finding`]; the check only
/// stops early, between batches, when its run context is interrupted.
///
/// The file is walked once, in order, in batches bounded in bytes (see the module docs):
/// memory is the index the file makes, the saved one when it is compared, and a batch.
pub fn check(
    file: &[u8],
    opts: &Options<'_>,
    progress: &dyn Progress,
) -> Result<Report, Interrupted> {
    check_in_batches(file, opts, progress, BATCH_BYTES)
}

/// [`check`] with batches of `batch_bytes`.
fn check_in_batches(
    file: &[u8],
    opts: &Options<'_>,
    progress: &dyn Progress,
    batch_bytes: u64,
) -> Result<Report, Interrupted> {
    let mut w = Walker::new(file, opts);
    w.batch_bytes = batch_bytes;
    progress.start("checking", w.len);
    w.run(progress)?;
    Ok(w.finish())
}

/// The state of one check: what the header walk found, and what the record walk adds.
struct Walker<'a> {
    file: &'a [u8],
    len: u64,
    quick: bool,
    findings: Vec<Finding>,
    /// Findings about the saved index (reported after all others at the same offset).
    index_findings: Vec<Finding>,
    /// Byte ranges already reported as damaged (skipped regions, the unread rest of a
    /// transaction), ascending: pointers into them are not reported again.
    damaged: Vec<(u64, u64)>,
    /// The ranges in which the header walk found no transaction to walk, ascending.
    skipped_ranges: Vec<(u64, u64)>,
    record_count: u64,
    /// Transactions whose header and redundant length were sound.
    txn_count: u64,
    /// The end of the last sound transaction.
    last_sound_end: u64,
    skipped: u64,
    /// The position the saved index covers (it was read without error), until it is
    /// compared.
    saved: Option<u64>,
    /// A sound transaction starts at the saved index's position.
    saved_pos_is_start: bool,
    /// True when a saved index was read (compared or not).
    index_checked: bool,
    /// oid → position of its last record so far in a sound (and not undone) transaction:
    /// the index as the file says it is, which `prev` pointers are checked against.
    ours: Index,
    index_bytes: Option<&'a [u8]>,
    magic: Option<Magic>,
    /// Transactions whose records are walked (in parallel) once a batch is complete.
    jobs: Vec<Job>,
    /// Bytes of the transactions in `jobs`.
    job_bytes: u64,
    /// Pointers whose target is checked by reading it, once per batch (see
    /// [`Walker::flush_pointers`]).
    pointers: Vec<Pointer>,
    /// Reads ahead of the walk and drops behind it what it brought in.
    stream: zfs_files::Stream,
    /// Bytes of transactions whose records are walked at once.
    batch_bytes: u64,
}

impl<'a> Walker<'a> {
    /// A walker over `file` with nothing found yet.
    fn new(file: &'a [u8], opts: &Options<'a>) -> Self {
        Walker {
            file,
            len: file.len() as u64,
            quick: opts.quick,
            findings: Vec::new(),
            index_findings: Vec::new(),
            damaged: Vec::new(),
            skipped_ranges: Vec::new(),
            record_count: 0,
            txn_count: 0,
            last_sound_end: FIRST_TXN,
            skipped: 0,
            saved: None,
            saved_pos_is_start: false,
            index_checked: false,
            ours: Index::new(),
            index_bytes: if opts.quick { None } else { opts.index },
            magic: None,
            jobs: Vec::new(),
            job_bytes: 0,
            pointers: Vec::new(),
            stream: zfs_files::Stream::new(file, 0, AHEAD).lagging(AHEAD),
            batch_bytes: BATCH_BYTES,
        }
    }

    /// Records a finding.
    fn add(&mut self, offset: u64, kind: Kind, message: String) {
        self.findings.push(Finding {
            offset,
            kind,
            message,
        });
    }

    /// The report: findings in file order (those about the saved index last at an offset).
    fn finish(mut self) -> Report {
        self.findings.append(&mut self.index_findings);
        // Stable: problems at one offset keep the order they were found in.
        self.findings.sort_by_key(|f| f.offset);
        Report {
            magic: self.magic,
            file_len: self.len,
            transactions: self.txn_count,
            records: self.record_count,
            skipped_bytes: self.skipped,
            index_checked: self.index_checked,
            findings: self.findings,
        }
    }
}
