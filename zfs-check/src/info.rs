//! A summary of a file: what `zodbfs info` prints.

use std::ops::Deref;

use zfs_format::scan::build_index;
use zfs_format::{EndReason, Error, FileStorage, Magic, Progress, Tid};

/// The facts `zodbfs info` reports.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Info {
    /// The magic.
    pub magic: Magic,
    /// Length of the file.
    pub file_len: u64,
    /// End of the last complete transaction (ZODB's `getSize()`).
    pub size: u64,
    /// Complete transactions.
    pub transactions: u64,
    /// Data records in complete transactions.
    pub data_records: u64,
    /// Objects in the index (oids with a current record).
    pub objects: u64,
    /// The first transaction's tid, if any.
    pub first_tid: Option<Tid>,
    /// The last complete transaction's tid, if any.
    pub last_complete_tid: Option<Tid>,
    /// ZODB's `lastTransaction()`: the tid of the last header read, torn or not.
    pub last_tid: Tid,
    /// Bytes after the last complete transaction (a torn or uncommitted tail).
    pub tail_bytes: u64,
    /// How the walk ended.
    #[cfg_attr(feature = "serde", serde(rename = "end"))]
    pub end_reason: EndReason,
}

/// Gathers [`Info`] for a file by scanning it.
pub fn info<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    progress: &dyn Progress,
) -> Result<Info, Error> {
    let scan = build_index(fs, progress)?;
    let mut first_tid = None;
    let mut data_records = 0;
    for t in fs.transactions() {
        let t = t?;
        first_tid.get_or_insert(t.tid());
        data_records += t.records().count() as u64;
    }
    let end = scan.end;
    Ok(Info {
        magic: fs.magic(),
        file_len: fs.len(),
        size: end.pos.max(zfs_format::FIRST_TXN),
        transactions: end.transactions,
        data_records,
        objects: scan.index.len() as u64,
        first_tid,
        last_complete_tid: (end.transactions > 0).then_some(end.last_complete_tid),
        last_tid: end.last_tid,
        tail_bytes: fs.len().saturating_sub(end.pos.max(zfs_format::FIRST_TXN)),
        end_reason: end.reason,
    })
}
