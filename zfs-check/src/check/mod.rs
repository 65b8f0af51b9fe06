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
//! The transaction headers are walked in order (each gives the next position); the records
//! of the transactions found are then walked on all cores, and every pointer is checked
//! against the sorted list of all sound record positions in one merge.
//!
//! Every byte rule (header layouts, the resynchronisation test, the bounded readers) comes
//! from `zfs-format`. The work is split by concern: what is reported (`report.rs`), the
//! header walk with its resynchronisation (`headers.rs`), the parallel record walk
//! (`records.rs`), the pointer merge (`pointers.rs`) and the comparison with a saved
//! `.index` (`saved_index.rs`).

mod headers;
mod pointers;
mod records;
mod report;
mod saved_index;
#[cfg(test)]
mod tests;

use zfs_format::{Index, IndexBuilder, Interrupted, Magic, Oid, Progress};

use records::Job;
pub use report::{Finding, Kind, Report};

/// Individual findings reported for differences between a saved index and the file; the rest
/// are counted in one summary finding.
const MAX_INDEX_FINDINGS: usize = 20;
/// Transactions per parallel work unit of the record walk.
const JOB_CHUNK: usize = 256;

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
/// stops early when its run context is interrupted.
pub fn check(
    file: &[u8],
    opts: &Options<'_>,
    progress: &dyn Progress,
) -> Result<Report, Interrupted> {
    let mut w = Walker::new(file, opts);
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
    /// Positions of all structurally sound records, ascending (full mode only).
    records: Vec<u64>,
    /// The oid of each record of `records`.
    record_oids: Vec<Oid>,
    /// Positions of all sound transactions, ascending.
    txns: Vec<u64>,
    /// Byte ranges already reported as damaged (skipped regions, the unread rest of a
    /// transaction), ascending: pointers into them are not reported again.
    damaged: Vec<(u64, u64)>,
    record_count: u64,
    skipped: u64,
    /// The saved index and the position it covers, when one is to be compared.
    saved: Option<(u64, Index)>,
    /// The index as the file says it is, up to the saved index's position.
    ours: IndexBuilder,
    index_bytes: Option<&'a [u8]>,
    magic: Option<Magic>,
    /// Transactions whose records are walked (in parallel) once the headers are walked.
    jobs: Vec<Job>,
}

impl<'a> Walker<'a> {
    /// A walker over `file` with nothing found yet.
    fn new(file: &'a [u8], opts: &Options<'a>) -> Self {
        Walker {
            file,
            len: file.len() as u64,
            quick: opts.quick,
            findings: Vec::new(),
            records: Vec::new(),
            record_oids: Vec::new(),
            txns: Vec::new(),
            damaged: Vec::new(),
            record_count: 0,
            skipped: 0,
            saved: None,
            ours: IndexBuilder::new(),
            index_bytes: if opts.quick { None } else { opts.index },
            magic: None,
            jobs: Vec::new(),
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

    /// The report: findings in file order.
    fn finish(mut self) -> Report {
        // Stable: problems at one offset keep the order they were found in.
        self.findings.sort_by_key(|f| f.offset);
        Report {
            magic: self.magic,
            file_len: self.len,
            transactions: self.txns.len() as u64,
            records: self.record_count,
            skipped_bytes: self.skipped,
            index_checked: self.index_bytes.is_some(),
            findings: self.findings,
        }
    }
}
