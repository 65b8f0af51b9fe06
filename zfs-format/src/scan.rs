//! Building the index by scanning, as ZODB's `read_index` does, in parallel.
//!
//! The walk over transaction headers is sequential (each header gives the next position)
//! but cheap: one header per transaction. The records, where the work is, are then parsed
//! on all cores, transaction ranges at a time, and merged in file order so the last record
//! of an oid wins exactly as in ZODB.

use std::ops::Deref;

use rayon::prelude::*;

use crate::error::Result;
use crate::index::{Index, IndexBuilder};
use crate::progress::Progress;
use crate::storage::{End, FileStorage};
use crate::txn::Status;

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
/// Transactions held in memory at once.
const BATCH: usize = 64 * CHUNK;

/// Scans transactions from `start` (4, or the position a saved index covers) and returns the
/// index entries they add, with the end of the data.
pub fn scan_from<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    start: u64,
    progress: &dyn Progress,
) -> Result<(IndexBuilder, End)> {
    let total = fs.len().saturating_sub(start);
    progress.start("scanning transactions", total);
    // The headers are walked sequentially (cheap); the records of each batch of
    // transactions are parsed in parallel and appended in file order, so memory stays
    // bounded by the batch, not the file. 'u' transactions are skipped: ZODB never indexes
    // their records.
    let mut builder = IndexBuilder::new();
    let mut walk = fs.transactions_from(start);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        batch.clear();
        let mut header_error = None;
        for t in walk.by_ref() {
            let t = match t {
                Ok(t) => t,
                Err(e) => {
                    // Damage in earlier records is reported first, as a sequential scan would.
                    header_error = Some(e);
                    break;
                }
            };
            if t.status() != Status::Undone {
                batch.push(t);
            } else {
                progress.advance(t.tlen() + 8);
            }
            if batch.len() == BATCH {
                break;
            }
        }
        if batch.is_empty() && header_error.is_none() {
            break;
        }
        let parts: Vec<Result<IndexBuilder>> = batch
            .par_chunks(CHUNK)
            .map(|chunk| {
                let mut b = IndexBuilder::new();
                let mut bytes = 0;
                for t in chunk {
                    for r in t.records() {
                        let r = r?;
                        b.insert(r.oid, r.pos);
                    }
                    bytes += t.tlen() + 8;
                }
                progress.advance(bytes);
                Ok(b)
            })
            .collect();
        for p in parts {
            builder.append(p?);
        }
        if let Some(e) = header_error {
            return Err(e);
        }
    }
    let end = walk.finish();
    Ok((builder, end))
}

/// Builds the whole index of a file by scanning it from the first transaction.
pub fn build_index<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    progress: &dyn Progress,
) -> Result<Scan> {
    let (builder, end) = scan_from(fs, crate::storage::FIRST_TXN, progress)?;
    Ok(Scan {
        index: builder.finish(),
        end,
    })
}
