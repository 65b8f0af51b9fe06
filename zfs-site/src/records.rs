//! The blob records of a Data.fs: every data record whose state (backpointers followed) is
//! the class `ZODB.blob.Blob`, with the record's own tid, which names its blob file (an
//! undo writes a backpointer record and ZODB copies the file under the new tid).

use std::path::Path;

use zfs_format::blob::is_blob_record;
use zfs_format::{FileStorage, Oid, Payload, Tid, FIRST_TXN};

use crate::error::{Error, Result};
use crate::Stop;

/// The blob records of the transactions of `fs` that start in `[from, to)` (`from` a
/// transaction boundary; [`FIRST_TXN`] for the whole file), in file order.
pub fn blob_records<T: std::ops::Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    from: u64,
    to: u64,
    stop: &Stop<'_>,
) -> Result<Vec<(Oid, Tid)>> {
    let path = fs.path().to_path_buf();
    let fmt = |source| Error::Format {
        path: path.clone(),
        source,
    };
    let mut out = Vec::new();
    let walk = fs.transactions_from(from.max(FIRST_TXN));
    let mut done = from.max(FIRST_TXN);
    for txn in walk {
        let txn = txn.map_err(fmt)?;
        if txn.pos() >= to {
            break;
        }
        for rec in txn.records() {
            let rec = rec.map_err(fmt)?;
            let data = match rec.payload {
                Payload::Data(d) => Some(d),
                Payload::Backpointer(0) => None,
                Payload::Backpointer(_) => fs.resolve(&rec).map_err(fmt)?.and_then(|r| r.data()),
            };
            if data.is_some_and(is_blob_record) {
                out.push((rec.oid, rec.tid));
            }
        }
        let next = txn.next_pos();
        stop.advance(next.saturating_sub(done));
        done = next;
        stop.check()?;
    }
    Ok(out)
}

/// The blob records of the whole committed part of the Data.fs at `path`.
pub fn blob_records_of_file(path: &Path, stop: &Stop<'_>) -> Result<Vec<(Oid, Tid)>> {
    let fs = FileStorage::open(path).map_err(|source| Error::Format {
        path: path.to_path_buf(),
        source,
    })?;
    let r = blob_records(&fs, FIRST_TXN, u64::MAX, stop)?;
    fs.check_intact().map_err(|source| Error::Format {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(r)
}
