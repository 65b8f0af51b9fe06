//! Building the index by scanning, as ZODB's `read_index` does, in parallel.
//!
//! The walk over transaction headers is sequential (each header gives the next position)
//! but cheap: one header per transaction. The records, where the work is, are parsed on all
//! cores a batch of transactions at a time and merged in file order, so the last record of
//! an oid wins exactly as in ZODB. Memory stays small: positions waiting to be merged are
//! folded into the compact [`Index`] in place every few batches, and a mapped file
//! streams through memory (`FileStorage::stream`: read ahead, dropped behind).

use std::ops::Deref;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::index::{Index, IndexBuilder};
use crate::progress::Progress;
use crate::storage::{End, FileStorage, Transactions, FIRST_TXN};
use crate::txn::{Status, Transaction};

/// The result of a scan: the index and where the committed data ends.
#[derive(Clone, Debug)]
pub struct Scan {
    /// oid → position of the current record.
    pub index: Index,
    /// The end of the last complete transaction and how the walk ended.
    pub end: End,
}

/// Transactions per parallel work unit.
const CHUNK: usize = 256;
/// Most transactions held at once.
const BATCH: usize = 64 * CHUNK;
/// Most bytes of transactions held at once.
const BATCH_BYTES: u64 = 8 << 20;
/// Pending positions are folded into the index (in place) once there are this many.
const MIN_PENDING: usize = 64 * 1024;

/// Scans the transactions from `start` (a boundary: 4, or the position a saved index
/// covers) on top of `base` (the index of everything before `start`).
pub fn scan_from<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    start: u64,
    base: Index,
    progress: &dyn Progress,
) -> Result<Scan> {
    progress.start("scanning", fs.len().saturating_sub(start));
    let mut index = base;
    let mut pending = IndexBuilder::new();
    let mut walk = fs.transactions_from(start);
    // The disk reads ahead while the cores parse; what is done leaves memory.
    let mut stream = fs.stream(start);
    let mut batch: Vec<Transaction<'_>> = Vec::with_capacity(BATCH);
    let mut next: Vec<Transaction<'_>> = Vec::with_capacity(BATCH);
    let mut header_error = next_batch(fs, &mut walk, &mut stream, &mut batch, progress);
    loop {
        progress.check_interrupted()?;
        if batch.is_empty() && header_error.is_none() {
            break;
        }
        // The headers of the next batch are walked while this one's records are parsed.
        // After a header error there is no next batch: this one is the last.
        let (parts, next_error) = match header_error {
            None => rayon::join(
                || parse(&batch, progress),
                || next_batch(fs, &mut walk, &mut stream, &mut next, progress),
            ),
            Some(_) => (parse(&batch, progress), None),
        };
        for p in parts {
            pending.append(p?);
        }
        if let Some(e) = header_error {
            // Damage in earlier records is reported first, as a sequential scan would.
            return Err(e);
        }
        if pending.pending() > MIN_PENDING {
            index.apply(std::mem::take(&mut pending));
        }
        std::mem::swap(&mut batch, &mut next);
        header_error = next_error;
    }
    stream.finish(fs.bytes());
    let end = walk.finish();
    index.apply(pending);
    Ok(Scan { index, end })
}

/// Walks the headers of the next batch into `batch` (transactions not undone, at most
/// [`BATCH`] of them or [`BATCH_BYTES`]); returns the header error that ended the walk, if
/// any.
fn next_batch<'a, T: Deref<Target = [u8]>>(
    fs: &'a FileStorage<T>,
    walk: &mut Transactions<'a>,
    stream: &mut zfs_files::Stream,
    batch: &mut Vec<Transaction<'a>>,
    progress: &dyn Progress,
) -> Option<Error> {
    batch.clear();
    stream.advance(fs.bytes(), walk.pos());
    let mut bytes = 0;
    for t in walk.by_ref() {
        let t = match t {
            Ok(t) => t,
            Err(e) => return Some(e),
        };
        bytes += t.tlen() + 8;
        if t.status() == Status::Undone {
            // ZODB never indexes the records of an undone ('u') transaction.
            progress.advance(t.tlen() + 8);
        } else {
            batch.push(t);
        }
        if batch.len() == BATCH || bytes >= BATCH_BYTES {
            break;
        }
    }
    None
}

/// The records of `batch`, parsed on all cores: one builder per chunk, in file order.
fn parse(batch: &[Transaction<'_>], progress: &dyn Progress) -> Vec<Result<IndexBuilder>> {
    batch
        .par_chunks(CHUNK)
        .map(|chunk| {
            let mut b = IndexBuilder::new();
            let mut done = 0;
            for t in chunk {
                for r in t.records() {
                    let r = r?;
                    b.insert(r.oid, r.pos);
                }
                done += t.tlen() + 8;
            }
            progress.advance(done);
            Ok(b)
        })
        .collect()
}

/// Builds the whole index of a file by scanning it from the first transaction.
pub fn build_index<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    progress: &dyn Progress,
) -> Result<Scan> {
    scan_from(fs, FIRST_TXN, Index::new(), progress)
}
