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

use std::collections::HashMap;
use std::fmt;

use rayon::prelude::*;

use zfs_format::index_file::load_index;
use zfs_format::txn::{RawTxnHeader, Status, TXN_HEADER_LEN};
use zfs_format::{Index, IndexBuilder, Magic, Oid, Progress, Tid, FIRST_TXN};

/// Length of a data record's fixed header.
const DATA_HEADER_LEN: u64 = zfs_format::record::DATA_HEADER_LEN;
/// Individual findings reported for differences between a saved index and the file; the rest
/// are counted in one summary finding.
const MAX_INDEX_FINDINGS: usize = 20;
/// Transactions per parallel work unit of the record walk.
const JOB_CHUNK: usize = 256;

/// The kinds of problem `check` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The file has no bytes at all.
    EmptyFile,
    /// The first four bytes are neither `FS30` nor `FS21`.
    BadMagic,
    /// 1 to 22 bytes where a transaction header should start.
    TruncatedHeader,
    /// A transaction id not greater than the one before it.
    TimestampReduction,
    /// A transaction whose length runs past the end of the file.
    TruncatedTransaction,
    /// Status `c`: a commit that was never finished.
    Checkpoint,
    /// A status byte other than `' '`, `p`, `u`, `c`.
    BadStatus,
    /// A transaction length shorter than its own header.
    InvalidHeader,
    /// A data record header that runs past the end of the file.
    TruncatedRecord,
    /// A data record whose transaction position (`tloc`) is not its transaction.
    BadTloc,
    /// A data record that extends beyond the end of its transaction.
    RecordOverrun,
    /// The 8 bytes after a transaction do not repeat its length.
    RedundantLength,
    /// Bytes that could not be read as transactions and were skipped.
    Unreadable,
    /// Status `u`: an obsolete "undone" transaction, whose records ZODB ignores.
    UndoneStatus,
    /// A record's serial differs from its transaction's tid.
    SerialMismatch,
    /// A `prev` pointer that does not point backwards to a record of the same oid.
    BadPrev,
    /// A backpointer that does not point backwards to a record of the same oid.
    BadBackpointer,
    /// The saved `.index` file cannot be decoded.
    IndexUnreadable,
    /// The saved `.index` covers a position that is not a transaction boundary.
    IndexPosition,
    /// The saved `.index` disagrees with the file about an oid.
    IndexMismatch,
}

impl Kind {
    /// A stable, kebab-case name for output and JSON.
    pub fn code(self) -> &'static str {
        match self {
            Kind::EmptyFile => "empty-file",
            Kind::BadMagic => "bad-magic",
            Kind::TruncatedHeader => "truncated-header",
            Kind::TimestampReduction => "timestamp-reduction",
            Kind::TruncatedTransaction => "truncated-transaction",
            Kind::Checkpoint => "checkpoint",
            Kind::BadStatus => "bad-status",
            Kind::InvalidHeader => "invalid-header",
            Kind::TruncatedRecord => "truncated-record",
            Kind::BadTloc => "bad-tloc",
            Kind::RecordOverrun => "record-overrun",
            Kind::RedundantLength => "redundant-length",
            Kind::Unreadable => "unreadable",
            Kind::UndoneStatus => "undone-status",
            Kind::SerialMismatch => "serial-mismatch",
            Kind::BadPrev => "bad-prev",
            Kind::BadBackpointer => "bad-backpointer",
            Kind::IndexUnreadable => "index-unreadable",
            Kind::IndexPosition => "index-position",
            Kind::IndexMismatch => "index-mismatch",
        }
    }

    /// True for the kinds ZODB's `fstest` also detects (it stops at the first of them).
    pub fn fstest_detects(self) -> bool {
        matches!(
            self,
            Kind::EmptyFile
                | Kind::BadMagic
                | Kind::TruncatedHeader
                | Kind::TimestampReduction
                | Kind::TruncatedTransaction
                | Kind::Checkpoint
                | Kind::BadStatus
                | Kind::InvalidHeader
                | Kind::TruncatedRecord
                | Kind::BadTloc
                | Kind::RecordOverrun
                | Kind::RedundantLength
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One problem: where, what kind, and a sentence saying what was expected and found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Absolute byte offset in the Data.fs file (for index findings: the record concerned,
    /// or 0).
    pub offset: u64,
    /// The kind of problem.
    pub kind: Kind,
    /// What was expected and what was found.
    pub message: String,
}

/// What to check.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options<'a> {
    /// Structure only (what `fstest` checks, plus `u` transactions): no pointers, serials or
    /// index.
    pub quick: bool,
    /// The bytes of the saved `.index` file, if there is one, to compare with the file.
    pub index: Option<&'a [u8]>,
}

/// The result of a check.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The magic, when it is one of the two known.
    pub magic: Option<Magic>,
    /// Length of the file.
    pub file_len: u64,
    /// Transactions whose header and length were sound.
    pub transactions: u64,
    /// Data records read without a structural error.
    pub records: u64,
    /// Bytes that could not be read as transactions.
    pub skipped_bytes: u64,
    /// True when a saved index was compared with the file.
    pub index_checked: bool,
    /// Every problem found, in file order (index findings last).
    pub findings: Vec<Finding>,
}

impl Report {
    /// True when nothing was found.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Checks a whole file given as bytes. Never fails: every problem is a [`Finding`].
///
/// The file is walked once, in order, a batch of transactions at a time (bounded in
/// bytes): the kernel reads ahead of the walk, the pages behind it leave the process, and
/// pointers are checked against the index as the walk builds it; only pointers to older
/// revisions (undo) are checked by reading their targets, gathered and sorted by position.
/// Memory: the index the file makes (8 bytes per object), the saved one when it is
/// compared, and a batch.
pub fn check(file: &[u8], opts: &Options<'_>, progress: &dyn Progress) -> Report {
    check_in_batches(file, opts, progress, BATCH_BYTES)
}

/// [`check`] with batches of `batch_bytes`.
fn check_in_batches(
    file: &[u8],
    opts: &Options<'_>,
    progress: &dyn Progress,
    batch_bytes: u64,
) -> Report {
    let mut w = Walker::new(file, opts);
    w.batch_bytes = batch_bytes;
    progress.start("checking", w.len);
    w.run(progress);
    w.finish()
}

/// Reads a big-endian u64 at a file position, `None` when out of bounds.
fn u64_at(file: &[u8], pos: u64) -> Option<u64> {
    let at = usize::try_from(pos).ok()?;
    let b: [u8; 8] = file.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// Reads 8 raw bytes at a file position.
fn bytes8_at(file: &[u8], pos: u64) -> Option<[u8; 8]> {
    let at = usize::try_from(pos).ok()?;
    file.get(at..at.checked_add(8)?)?.try_into().ok()
}

/// Reads a big-endian u16 at a file position.
fn u16_at(file: &[u8], pos: u64) -> Option<u16> {
    let at = usize::try_from(pos).ok()?;
    let b: [u8; 2] = file.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_be_bytes(b))
}

/// The fixed fields of a data record header, read without any check.
struct RawRecord {
    oid: [u8; 8],
    serial: [u8; 8],
    prev: u64,
    tloc: u64,
    vlen: u16,
    plen: u64,
}

impl RawRecord {
    fn read(file: &[u8], pos: u64) -> Option<Self> {
        Some(RawRecord {
            oid: bytes8_at(file, pos)?,
            serial: bytes8_at(file, pos.checked_add(8)?)?,
            prev: u64_at(file, pos.checked_add(16)?)?,
            tloc: u64_at(file, pos.checked_add(24)?)?,
            vlen: u16_at(file, pos.checked_add(32)?)?,
            plen: u64_at(file, pos.checked_add(34)?)?,
        })
    }

    /// The record's total length as its header claims it, `None` on overflow.
    fn len(&self) -> Option<u64> {
        let body = if self.plen == 0 { 8 } else { self.plen };
        let version = if self.vlen > 0 {
            16 + u64::from(self.vlen)
        } else {
            0
        };
        DATA_HEADER_LEN.checked_add(body)?.checked_add(version)
    }

    /// Position of the backpointer of a `plen == 0` record.
    fn backpointer_pos(&self, pos: u64) -> u64 {
        let version = if self.vlen > 0 {
            16 + u64::from(self.vlen)
        } else {
            0
        };
        pos + DATA_HEADER_LEN + version
    }
}

/// Is there a plausible transaction header at `q`? Its length must fit in the file, be
/// repeated after it, cover its own header, and its first record (if any) must name it as
/// its transaction.
fn plausible_txn(file: &[u8], q: u64, ltid: Tid) -> bool {
    let len = file.len() as u64;
    let Some(h) = RawTxnHeader::decode(file, q) else {
        return false;
    };
    if !matches!(
        h.status,
        Status::Committed | Status::Packed | Status::Undone | Status::Checkpoint
    ) {
        return false;
    }
    if h.tid <= ltid || h.tlen < h.header_len() || h.next_pos().is_none_or(|n| n > len) {
        return false;
    }
    if u64_at(file, q + h.tlen) != Some(h.tlen) {
        return false;
    }
    let first = q + h.header_len();
    if first < q + h.tlen {
        match RawRecord::read(file, first) {
            Some(r) => r.tloc == q && r.len().is_some_and(|l| first + l <= q + h.tlen),
            None => false,
        }
    } else {
        true
    }
}

/// Searches forward from `from` for the next plausible transaction header.
fn resync(file: &[u8], from: u64, ltid: Tid) -> Option<u64> {
    let len = file.len() as u64;
    let last = len.checked_sub(TXN_HEADER_LEN)?;
    let start = usize::try_from(from).ok()?;
    let statuses = b" pcu";
    // The status byte is at offset 16 of a header: look for candidate bytes first.
    let end = usize::try_from(last).ok()?.checked_add(16)?;
    let hay = file.get(start.checked_add(16)?..=end)?;
    hay.iter()
        .enumerate()
        .filter(|(_, b)| statuses.contains(b))
        .map(|(i, _)| from + i as u64)
        .find(|&q| plausible_txn(file, q, ltid))
}

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
    /// The saved index and the position it covers, until it is compared.
    saved: Option<(u64, Index)>,
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

/// A transaction whose records are to be walked.
#[derive(Clone, Copy, Debug)]
struct Job {
    tpos: u64,
    tend: u64,
    tid: Tid,
    hlen: u64,
    /// Its records go into the index (`prev` pointers and a saved index are checked
    /// against it): a sound redundant length and a status other than `u`.
    index_it: bool,
}

/// A `prev` pointer or backpointer whose target is checked by reading it.
#[derive(Clone, Copy, Debug)]
struct Pointer {
    pos: u64,
    oid: [u8; 8],
    target: u64,
    back: bool,
}

/// A structurally sound record, for the checks done in file order.
#[derive(Clone, Copy, Debug)]
struct Rec {
    pos: u64,
    oid: [u8; 8],
    prev: u64,
    /// The backpointer of a `plen == 0` record (0 for none).
    back: u64,
}

/// What walking the records of some transactions found.
#[derive(Default)]
struct Part {
    findings: Vec<Finding>,
    damaged: Vec<(u64, u64)>,
    /// Per job of the chunk, its sound records in order.
    recs: Vec<Vec<Rec>>,
    count: u64,
}

impl Part {
    fn add(&mut self, offset: u64, kind: Kind, message: String) {
        self.findings.push(Finding {
            offset,
            kind,
            message,
        });
    }

    /// Walks the data records of one transaction, stopping at the first structural error
    /// (the rest of the transaction cannot be delimited).
    fn walk(&mut self, file: &[u8], quick: bool, j: &Job) {
        let len = file.len() as u64;
        let mut recs = Vec::new();
        let mut p = j.tpos + j.hlen;
        while p < j.tend {
            let Some(r) = RawRecord::read(file, p) else {
                self.add(
                    p,
                    Kind::TruncatedRecord,
                    format!("data record header ({DATA_HEADER_LEN} bytes) runs past the end of the file ({len} bytes)"),
                );
                self.damaged.push((p, j.tend));
                break;
            };
            if r.tloc != j.tpos {
                self.add(
                    p,
                    Kind::BadTloc,
                    format!(
                        "data record's transaction position (tloc) is {}, expected {}",
                        r.tloc, j.tpos
                    ),
                );
                self.damaged.push((p, j.tend));
                break;
            }
            let end = r.len().and_then(|l| p.checked_add(l));
            let Some(end) = end.filter(|&e| e <= j.tend) else {
                let shown = end.map_or_else(|| "beyond 2^64".to_string(), |e| e.to_string());
                self.add(
                    p,
                    Kind::RecordOverrun,
                    format!("data record of oid {} ends at {shown}, beyond the end of its transaction's records at {}", Oid(r.oid), j.tend),
                );
                self.damaged.push((p, j.tend));
                break;
            };
            self.count += 1;
            if !quick {
                if r.serial != j.tid.0 {
                    self.add(
                        p,
                        Kind::SerialMismatch,
                        format!(
                            "data record of oid {} has serial {}, its transaction's tid is {}",
                            Oid(r.oid),
                            Tid(r.serial),
                            j.tid
                        ),
                    );
                }
                let back = if r.plen == 0 {
                    u64_at(file, r.backpointer_pos(p)).unwrap_or(0)
                } else {
                    0
                };
                recs.push(Rec {
                    pos: p,
                    oid: r.oid,
                    prev: r.prev,
                    back,
                });
            }
            p = end;
        }
        self.recs.push(recs);
    }
}

/// Bytes of transactions whose records are walked at once.
const BATCH_BYTES: u64 = 16 << 20;
/// Bytes the kernel is asked to read ahead of the walk.
const AHEAD: u64 = 64 << 20;
/// Pointer targets read at once.
const POINTER_GROUP: usize = 4096;

impl<'a> Walker<'a> {
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

    fn add(&mut self, offset: u64, kind: Kind, message: String) {
        self.findings.push(Finding {
            offset,
            kind,
            message,
        });
    }

    fn run(&mut self, progress: &dyn Progress) {
        if self.len == 0 {
            self.add(
                0,
                Kind::EmptyFile,
                "the file is empty (not even a magic)".into(),
            );
            return;
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
                return;
            }
        }
        if let Some(bytes) = self.index_bytes {
            self.index_checked = true;
            match load_index(bytes) {
                Ok(saved) => self.saved = Some(saved),
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
                Step::Lost(from) => match resync(self.file, from, ltid) {
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
            }
        }
        self.walk_records(progress);
        self.flush_pointers();
        if let Some((ipos, saved)) = self.saved.take() {
            self.compare_index(ipos, &saved);
        }
        self.stream.finish(self.file);
    }

    /// Checks the transaction at `pos`; says where to go next.
    fn transaction(&mut self, pos: u64, ltid: Tid) -> Step {
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
        let rtl = u64_at(self.file, tend);
        let rtl_ok = rtl == Some(h.tlen);
        // A saved index is compared once the walk reaches the position it covers: the
        // records of this transaction must not be in the index then.
        if let Some(&(ipos, _)) = self.saved.as_ref() {
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
            if plausible_txn(self.file, tend + 8, h.tid) {
                return Step::Next(tend + 8, h.tid);
            }
            return Step::Lost(pos + 1);
        }
        self.txn_count += 1;
        self.last_sound_end = tend + 8;
        Step::Next(tend + 8, h.tid)
    }

    /// Walks the records of the transactions gathered so far, then compares the saved index
    /// with the index they make.
    fn walk_records_before_saved_pos(&mut self) {
        self.walk_records(&zfs_format::NoProgress);
        self.flush_pointers();
        if let Some((ipos, saved)) = self.saved.take() {
            self.compare_index(ipos, &saved);
        }
    }

    /// Walks the records of the gathered transactions on all cores, then checks, in file
    /// order, every pointer against the index as it stands at the record: a `prev` pointer
    /// naming the oid's last record (before or within this transaction) is sound; any
    /// other pointer is kept for [`Walker::flush_pointers`].
    fn walk_records(&mut self, progress: &dyn Progress) {
        let (file, quick) = (self.file, self.quick);
        let jobs = std::mem::take(&mut self.jobs);
        self.job_bytes = 0;
        let parts: Vec<Part> = jobs
            .par_chunks(JOB_CHUNK)
            .map(|chunk| {
                let mut part = Part::default();
                for j in chunk {
                    part.walk(file, quick, j);
                }
                if let (Some(first), Some(last)) = (chunk.first(), chunk.last()) {
                    progress.advance(last.tend + 8 - first.tpos);
                }
                part
            })
            .collect();
        let mut updates = IndexBuilder::new();
        // oid → its last record in this batch, and its last record before the current
        // transaction.
        let mut latest: HashMap<[u8; 8], u64> = HashMap::new();
        let mut before_txn: Vec<([u8; 8], Option<u64>)> = Vec::new();
        let mut jobs_done = jobs.iter();
        for part in parts {
            self.findings.extend(part.findings);
            self.damaged.extend(part.damaged);
            self.record_count += part.count;
            for recs in part.recs {
                let job = jobs_done.next().expect("one record list per job");
                before_txn.clear();
                for r in recs {
                    let last = latest
                        .get(&r.oid)
                        .copied()
                        .or_else(|| self.ours.get(Oid(r.oid)));
                    let earlier = before_txn
                        .iter()
                        .find(|(o, _)| *o == r.oid)
                        .map_or(last, |(_, b)| *b);
                    if r.prev != 0 && Some(r.prev) != last && Some(r.prev) != earlier {
                        self.pointer(r.pos, r.oid, r.prev, false);
                    }
                    if r.back != 0 {
                        self.pointer(r.pos, r.oid, r.back, true);
                    }
                    if job.index_it {
                        if !before_txn.iter().any(|(o, _)| *o == r.oid) {
                            before_txn.push((r.oid, last));
                        }
                        latest.insert(r.oid, r.pos);
                        updates.insert(Oid(r.oid), r.pos);
                    }
                }
            }
        }
        self.ours.apply(updates);
        self.damaged.sort_unstable();
        if let Some(last) = jobs.last() {
            // Undo points mostly to recent revisions (within a few megabytes): read the
            // targets now, while the pages the walk left behind are still cached.
            self.flush_pointers();
            // Everything before the end of this batch is done (the header walk is ahead of
            // it by at most a batch, inside the read-ahead).
            self.stream.advance(self.file, last.tend + 8);
        }
    }

    /// Checks a pointer from the record at `pos` of `oid`: one that does not point
    /// backwards is reported now, others are kept to be read in order of their targets.
    fn pointer(&mut self, pos: u64, oid: [u8; 8], target: u64, back: bool) {
        if target >= pos {
            self.findings.push(pointer_finding(
                pos,
                oid,
                target,
                back,
                "does not point backwards",
            ));
        } else {
            self.pointers.push(Pointer {
                pos,
                oid,
                target,
                back,
            });
        }
    }

    /// Reads the targets of the kept pointers, in file order, and reports those that are
    /// not the position of a sound record of the same oid.
    fn flush_pointers(&mut self) {
        let mut pointers = std::mem::take(&mut self.pointers);
        pointers.par_sort_unstable_by_key(|p| (p.target, p.pos, p.back));
        // A group at a time, whose pages leave the process once read (a fault maps the
        // cached pages around it too). The kernel is asked for all of a group's targets at
        // once first: the reads are scattered, and many in flight go much faster than one
        // after another.
        for group in pointers.chunks(POINTER_GROUP) {
            for ptr in group {
                zfs_files::prefetch_mapped(self.file, ptr.target, ptr.target + DATA_HEADER_LEN);
            }
            // Then for the records before each target in its transaction (walked to see
            // that a record starts there).
            for ptr in group {
                if let Some(r) = RawRecord::read(self.file, ptr.target) {
                    if r.tloc < ptr.target && ptr.target - r.tloc <= 1 << 24 {
                        zfs_files::prefetch_mapped(self.file, r.tloc, ptr.target);
                    }
                }
            }
            let found: Vec<Finding> = group
                .par_chunks(1024)
                .flat_map_iter(|chunk| {
                    // Targets in one transaction are neighbours: its record starts are
                    // found once.
                    let mut starts: (u64, Vec<u64>) = (0, Vec::new());
                    chunk
                        .iter()
                        .filter_map(|ptr| {
                            let why = self.target_problem(ptr.oid, ptr.target, &mut starts)?;
                            Some(pointer_finding(ptr.pos, ptr.oid, ptr.target, ptr.back, why))
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            self.findings.extend(found);
            if let (Some(first), Some(last)) = (group.first(), group.last()) {
                // The transactions walked to find the targets start before them.
                let from = first.target.saturating_sub(1 << 20);
                zfs_files::release_mapped(self.file, from, last.target + (1 << 20));
            }
        }
        if !pointers.is_empty() {
            // What a large transaction's walk mapped before its group's range.
            zfs_files::release_mapped(self.file, 0, self.len);
        }
    }

    /// Why a pointer to `target` from a record of `oid` is wrong, if it is: the target
    /// must be a sound record of the same oid. A target in a region already reported as
    /// damaged is not reported again.
    fn target_problem(
        &self,
        oid: [u8; 8],
        target: u64,
        starts: &mut (u64, Vec<u64>),
    ) -> Option<&'static str> {
        match self.sound_record_at(target, starts) {
            Some(o) if o == oid => None,
            Some(_) => Some("points to a record of another oid"),
            None if self.in_damage(target) => None,
            None => Some("is not the position of a readable data record"),
        }
    }

    /// The oid of the sound record at `target`, if the walk found one there: found again by
    /// walking, as the walk did, the records of the transaction its `tloc` names, when the
    /// walk walked a transaction there (`starts` keeps the record starts of the last
    /// transaction walked).
    fn sound_record_at(&self, target: u64, starts: &mut (u64, Vec<u64>)) -> Option<[u8; 8]> {
        let r = RawRecord::read(self.file, target)?;
        let tpos = r.tloc;
        let i = self
            .skipped_ranges
            .partition_point(|&(start, _)| start <= tpos);
        let skipped = i > 0 && tpos < self.skipped_ranges[i - 1].1;
        if tpos < FIRST_TXN || tpos >= target || skipped {
            return None;
        }
        if starts.0 != tpos || starts.1.is_empty() {
            starts.0 = tpos;
            starts.1.clear();
            if let Some(h) = RawTxnHeader::decode(self.file, tpos) {
                let tend = tpos.saturating_add(h.tlen);
                let mut p = tpos + h.header_len();
                while p < tend {
                    let Some(rec) = RawRecord::read(self.file, p) else {
                        break;
                    };
                    match rec.len().and_then(|l| p.checked_add(l)) {
                        Some(e) if rec.tloc == tpos && e <= tend => {
                            starts.1.push(p);
                            p = e;
                        }
                        _ => break,
                    }
                }
            }
            // Never empty, so that a transaction without records is not walked again.
            starts.1.push(u64::MAX);
        }
        starts.1.binary_search(&target).ok().map(|_| r.oid)
    }

    /// Remembers a range the header walk skipped (damaged), keeping the lists sorted by
    /// start. The transaction at its start may have been walked (its length is suspect
    /// only because its redundant length differs); no other in it was.
    fn mark_damaged(&mut self, range: (u64, u64)) {
        let i = self.damaged.partition_point(|&(start, _)| start <= range.0);
        self.damaged.insert(i, range);
        let walked = self.jobs.last().is_some_and(|j| j.tpos == range.0);
        let unwalked = (range.0 + u64::from(walked), range.1);
        let i = self
            .skipped_ranges
            .partition_point(|&(start, _)| start <= unwalked.0);
        self.skipped_ranges.insert(i, unwalked);
    }

    /// True when `pos` lies in a range already reported as damaged (ranges may overlap; a
    /// range that starts earlier but reaches far is found by looking back a few).
    fn in_damage(&self, pos: u64) -> bool {
        let i = self.damaged.partition_point(|&(start, _)| start <= pos);
        self.damaged
            .iter()
            .take(i)
            .rev()
            .take(4)
            .any(|&(_, end)| pos < end)
    }

    fn compare_index(&mut self, ipos: u64, saved: &Index) {
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

/// The finding for a bad `prev` pointer or backpointer.
fn pointer_finding(pos: u64, oid: [u8; 8], target: u64, back: bool, why: &str) -> Finding {
    let oid = Oid(oid);
    if back {
        Finding {
            offset: pos,
            kind: Kind::BadBackpointer,
            message: format!("data record of oid {oid}: backpointer {target} {why}"),
        }
    } else {
        Finding {
            offset: pos,
            kind: Kind::BadPrev,
            message: format!("data record of oid {oid}: previous-record pointer {target} {why}"),
        }
    }
}

/// Where the walk goes after a transaction.
enum Step {
    /// To the next transaction at this position; the tid to compare it with.
    Next(u64, Tid),
    /// The transaction's extent cannot be trusted: search for the next header from here.
    Lost(u64),
    /// The end of the file.
    End,
}

#[cfg(test)]
mod tests {
    use super::*;
    use zfs_format::NoProgress;

    /// A database written by ZODB 6.4 (tests/fixtures/make_fixtures.py): 15 transactions with
    /// an undo (backpointers) and a deleteObject.
    const BASE: &[u8] = include_bytes!("../tests/fixtures/base.fs");

    fn run(data: &[u8], quick: bool) -> Report {
        check(data, &Options { quick, index: None }, &NoProgress)
    }

    fn edited(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut v = BASE.to_vec();
        f(&mut v);
        v
    }

    fn put(v: &mut [u8], at: usize, bytes: &[u8]) {
        v[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn kinds(r: &Report) -> Vec<(u64, Kind)> {
        r.findings.iter().map(|f| (f.offset, f.kind)).collect()
    }

    #[test]
    fn zodb_file_is_clean() {
        for quick in [false, true] {
            let r = run(BASE, quick);
            assert!(r.is_clean(), "{:?}", r.findings);
            // fstest -v on this file lists 15 transactions.
            assert_eq!(r.transactions, 15);
            assert_eq!(r.records, 28);
        }
    }

    /// Each damage with the offset ZODB 6.4's fstest names for it (its message in the
    /// comment), and the kind we report there.
    #[test]
    fn fstest_offsets() {
        type Edit = fn(&mut Vec<u8>);
        let cases: &[(&str, Edit, u64, Kind)] = &[
            // "checkpoint flag was not cleared at 1113"
            (
                "status c",
                |v| put(v, 1113 + 16, b"c"),
                1113,
                Kind::Checkpoint,
            ),
            // "has invalid status 'b'Z'' at 1113"
            (
                "status Z",
                |v| put(v, 1113 + 16, b"Z"),
                1113,
                Kind::BadStatus,
            ),
            // "time-stamp reduction at 1113: 0x040d32edbff1a0ee <= 0x040d32edbff1a0ee"
            (
                "tid equal",
                |v| {
                    let t = v[770..778].to_vec();
                    put(v, 1113, &t)
                },
                1113,
                Kind::TimestampReduction,
            ),
            // "data record exceeds transaction record at 4009: tloc 3830 != tpos 3829"
            (
                "tloc",
                |v| put(v, 4009 + 24, &3830u64.to_be_bytes()),
                4009,
                Kind::BadTloc,
            ),
            // "has inconsistent transaction length for undone transaction at 1475"
            (
                "redundant length",
                |v| put(v, 1113 + 362, &363u64.to_be_bytes()),
                1475,
                Kind::RedundantLength,
            ),
            // "has data records that extend beyond the transaction record; end at 5051"
            (
                "plen",
                |v| put(v, 4009 + 34, &1000u64.to_be_bytes()),
                4009,
                Kind::RecordOverrun,
            ),
            // "has an invalid transaction header at 1113"
            (
                "tlen below header",
                |v| put(v, 1113 + 8, &28u64.to_be_bytes()),
                1113,
                Kind::InvalidHeader,
            ),
            // "data record exceeds transaction record at 1475: tloc 2305843009314357345 != tpos 1113"
            (
                "tlen grown",
                |v| put(v, 1113 + 8, &862u64.to_be_bytes()),
                1475,
                Kind::BadTloc,
            ),
            // "truncated possibly because of damaged records at 1113"
            (
                "tlen past eof",
                |v| put(v, 1113 + 8, &4356u64.to_be_bytes()),
                1113,
                Kind::TruncatedTransaction,
            ),
            // "truncated at 4269"
            (
                "cut in header",
                |v| v.truncate(4274),
                4269,
                Kind::TruncatedHeader,
            ),
            // "truncated possibly because of damaged records at 4269"
            (
                "cut in transaction",
                |v| v.truncate(4327),
                4269,
                Kind::TruncatedTransaction,
            ),
            // "data record exceeds transaction record at 2179: tloc 0 != tpos 1880"
            ("zeroed", |v| put(v, 2000, &[0; 1000]), 2179, Kind::BadTloc),
            // "time-stamp reduction at 1113: 0x0000000000000000 <= 0x040d32edbff1a0ee"
            (
                "zeroed header",
                |v| put(v, 1113, &[0; 23]),
                1113,
                Kind::InvalidHeader,
            ),
            // "invalid file header"
            ("magic", |v| put(v, 0, b"FS99"), 0, Kind::BadMagic),
        ];
        for (name, edit, offset, kind) in cases {
            let data = edited(edit);
            for quick in [false, true] {
                let r = run(&data, quick);
                assert!(
                    r.findings
                        .iter()
                        .any(|f| f.offset == *offset && f.kind == *kind),
                    "{name} (quick {quick}): {:?}",
                    kinds(&r)
                );
            }
        }
    }

    #[test]
    fn overrun_message_names_fstest_end() {
        let r = run(
            &edited(|v| put(v, 4009 + 34, &1000u64.to_be_bytes())),
            false,
        );
        assert!(
            r.findings[0].message.contains("ends at 5051"),
            "{:?}",
            r.findings
        );
    }

    #[test]
    fn keeps_going_after_damage() {
        // Two damages far apart: both are reported, and the walk resynchronises after a
        // zeroed header (the next transaction starts at 1483).
        let data = edited(|v| {
            put(v, 1113, &[0; 23]);
            put(v, 4009 + 24, &3830u64.to_be_bytes());
        });
        let r = run(&data, false);
        let k = kinds(&r);
        assert!(k.contains(&(1113, Kind::InvalidHeader)), "{k:?}");
        assert!(k.contains(&(1113, Kind::Unreadable)), "{k:?}");
        assert!(k.contains(&(4009, Kind::BadTloc)), "{k:?}");
        assert_eq!(r.skipped_bytes, 1483 - 1113);
        // Pointers into the skipped region are not reported again.
        assert!(!k.iter().any(|(_, k)| *k == Kind::BadPrev), "{k:?}");
    }

    /// The pointer findings of the rule `check` implements, computed the simple way: every
    /// sound record of the file collected first, then every pointer looked up.
    fn exact_pointer_findings(file: &[u8]) -> Vec<(u64, Kind)> {
        let mut w = Walker::new(file, &Options::default());
        w.batch_bytes = u64::MAX;
        // Collect the jobs without walking their records.
        let mut pos = FIRST_TXN;
        let mut ltid = Tid::default();
        while pos < w.len {
            match w.transaction(pos, ltid) {
                Step::Next(n, t) => {
                    ltid = t;
                    pos = n;
                }
                Step::Lost(from) => match resync(file, from, ltid) {
                    Some(q) => {
                        w.mark_damaged((pos, q));
                        pos = q;
                    }
                    None => {
                        w.mark_damaged((pos, w.len));
                        break;
                    }
                },
                Step::End => break,
            }
        }
        let mut part = Part::default();
        for j in &w.jobs {
            part.walk(file, false, j);
        }
        w.damaged.extend(part.damaged);
        w.damaged.sort_unstable();
        let recs: Vec<Rec> = part.recs.into_iter().flatten().collect();
        let oid_at: HashMap<u64, [u8; 8]> = recs.iter().map(|r| (r.pos, r.oid)).collect();
        let mut out = Vec::new();
        for r in &recs {
            for (target, kind) in [(r.prev, Kind::BadPrev), (r.back, Kind::BadBackpointer)] {
                if target == 0 {
                    continue;
                }
                let bad = if target >= r.pos {
                    true
                } else {
                    match oid_at.get(&target) {
                        Some(o) => *o != r.oid,
                        None => !w.in_damage(target),
                    }
                };
                if bad {
                    out.push((r.pos, kind));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn what_fstest_misses() {
        // Records of base.fs: 4161 (oid 6) and 4298 (oid 9, a deleteObject record in the last
        // transaction, at 4269), 4009 (oid 0xc, prev 3861 of the same oid).
        type Edit = fn(&mut Vec<u8>);
        let cases: &[(&str, Edit, u64, Kind)] = &[
            (
                "prev forward",
                |v| put(v, 4009 + 16, &4051u64.to_be_bytes()),
                4009,
                Kind::BadPrev,
            ),
            (
                "prev into a header",
                |v| put(v, 4009 + 16, &3832u64.to_be_bytes()),
                4009,
                Kind::BadPrev,
            ),
            (
                "serial",
                |v| put(v, 4009 + 8, &[0; 8]),
                4009,
                Kind::SerialMismatch,
            ),
            (
                "status u",
                |v| put(v, 1113 + 16, b"u"),
                1113,
                Kind::UndoneStatus,
            ),
            (
                "back forward",
                |v| put(v, 4298 + 42, &4303u64.to_be_bytes()),
                4298,
                Kind::BadBackpointer,
            ),
            (
                "back to another oid",
                |v| put(v, 4298 + 42, &4161u64.to_be_bytes()),
                4298,
                Kind::BadBackpointer,
            ),
        ];
        for (name, edit, offset, kind) in cases {
            let data = edited(edit);
            let r = run(&data, false);
            assert!(
                r.findings
                    .iter()
                    .any(|f| f.offset == *offset && f.kind == *kind),
                "{name}: {:?}",
                kinds(&r)
            );
            assert!(!kind.fstest_detects());
            if *kind != Kind::UndoneStatus {
                assert!(
                    run(&data, true).is_clean(),
                    "{name}: quick mode checks structure only"
                );
            }
        }
    }

    #[test]
    fn saved_index() {
        use zfs_format::index_file::index_bytes;
        let fs = zfs_format::FileStorage::from_data(BASE, "base.fs".into()).expect("FS30");
        let scan = zfs_format::scan::build_index(&fs, &NoProgress).expect("sound");
        let good = index_bytes(&scan.index, BASE.len() as u64);
        let r = check(
            BASE,
            &Options {
                quick: false,
                index: Some(&good),
            },
            &NoProgress,
        );
        assert!(r.is_clean() && r.index_checked, "{:?}", r.findings);
        // An index saved for the file without its last transaction (4269) is fine too.
        let mut b = IndexBuilder::new();
        for t in fs.transactions() {
            let t = t.expect("sound");
            if t.pos() < 4269 {
                for rec in t.records() {
                    let rec = rec.expect("sound");
                    b.insert(rec.oid, rec.pos);
                }
            }
        }
        let older = index_bytes(&b.finish(), 4269);
        assert!(check(
            BASE,
            &Options {
                quick: false,
                index: Some(&older)
            },
            &NoProgress
        )
        .is_clean());
        // The full index claimed for 4269 disagrees about oid 9: it names the record at 4298,
        // after 4269; up to 4269 the current record is at 3094.
        let wrong = index_bytes(&scan.index, 4269);
        let r = check(
            BASE,
            &Options {
                quick: false,
                index: Some(&wrong),
            },
            &NoProgress,
        );
        assert_eq!(kinds(&r), vec![(3094, Kind::IndexMismatch)]);
        assert!(
            r.findings[0].message.contains("at 4298"),
            "{:?}",
            r.findings
        );
        // Not a boundary; not an index at all.
        let r = check(
            BASE,
            &Options {
                quick: false,
                index: Some(&index_bytes(&scan.index, 4270)),
            },
            &NoProgress,
        );
        assert_eq!(kinds(&r), vec![(4270, Kind::IndexPosition)]);
        let r = check(
            BASE,
            &Options {
                quick: false,
                index: Some(b"junk"),
            },
            &NoProgress,
        );
        assert_eq!(kinds(&r), vec![(0, Kind::IndexUnreadable)]);
    }

    #[test]
    fn tiny_files() {
        assert_eq!(kinds(&run(b"", false)), vec![(0, Kind::EmptyFile)]);
        assert!(run(b"FS30", false).is_clean());
        assert!(run(b"FS21", false).is_clean());
        assert_eq!(kinds(&run(b"FS", false)), vec![(0, Kind::BadMagic)]);
        assert_eq!(
            kinds(&run(b"FS30abc", false)),
            vec![(4, Kind::TruncatedHeader)]
        );
    }

    #[test]
    fn fs21_is_checked_like_fs30() {
        let data = edited(|v| put(v, 0, b"FS21"));
        assert!(run(&data, false).is_clean());
    }

    proptest::proptest! {
        #[test]
        fn batches_do_not_change_the_report(
            edits in proptest::collection::vec((0usize..4356, proptest::prelude::any::<u8>()), 0..6),
            cut in 3000usize..5000,
            saved in 0usize..3,
        ) {
            let mut v = BASE.to_vec();
            for (at, b) in edits {
                v[at] = b;
            }
            v.truncate(cut);
            let fs = zfs_format::FileStorage::from_data(BASE, "base.fs".into()).expect("FS30");
            let scan = zfs_format::scan::build_index(&fs, &NoProgress).expect("sound");
            // No saved index, one for the whole file, one for the file up to 4269.
            let index = match saved {
                0 => None,
                1 => Some(zfs_format::index_file::index_bytes(&scan.index, BASE.len() as u64)),
                _ => Some(zfs_format::index_file::index_bytes(&scan.index, 4269)),
            };
            let opts = Options { quick: false, index: index.as_deref() };
            let whole = check_in_batches(&v, &opts, &NoProgress, u64::MAX);
            let small = check_in_batches(&v, &opts, &NoProgress, 1);
            proptest::prop_assert_eq!(&whole.findings, &small.findings);
            proptest::prop_assert_eq!(
                (whole.transactions, whole.records, whole.skipped_bytes),
                (small.transactions, small.records, small.skipped_bytes)
            );
            // Pointer findings agree with the exact rule: the target is the position of a
            // sound record of the same oid.
            let ptr = |r: &Report| -> Vec<(u64, Kind)> {
                let mut v: Vec<(u64, Kind)> = r.findings.iter()
                    .filter(|f| matches!(f.kind, Kind::BadPrev | Kind::BadBackpointer))
                    .map(|f| (f.offset, f.kind)).collect();
                v.sort();
                v
            };
            proptest::prop_assert_eq!(ptr(&whole), exact_pointer_findings(&v));
        }

        #[test]
        fn never_panics(edits in proptest::collection::vec((0usize..4356, proptest::prelude::any::<u8>()), 0..8),
                        cut in 0usize..5000) {
            let mut v = BASE.to_vec();
            for (at, b) in edits {
                v[at] = b;
            }
            v.truncate(cut);
            let r = run(&v, false);
            let q = run(&v, true);
            proptest::prop_assert!(q.findings.len() <= r.findings.len() + 1);
        }
    }
}
