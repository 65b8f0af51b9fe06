//! History-free: the current state of each object, read through the index.
//!
//! The index (oid → current record) is built by scanning the file up to the bulk end; the
//! oids are split into `jobs` ranges of equal count, and each range is read and loaded by
//! its own pair of threads (a reader that encodes rows, a stream that COPYs them). A
//! stream commits up to an oid together with its manifest entry; on resume each range
//! starts at its committed oid.

use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;

use zfs_format::{Index, Oid};

use crate::blobs;
use crate::convert::Ctx;
use crate::error::{ConvertError, Result};
use crate::hp::no_blob_dir;
use crate::pgcopy::Rows;
use crate::stream::Msg;
use crate::View;

/// COPY statement of `object_state`.
pub(crate) const STATE_COPY: &str =
    "COPY object_state (zoid, tid, state_size, state) FROM STDIN (FORMAT binary)";

/// A stream is sent what it has buffered once this many bytes are encoded.
const SEND_BYTES: usize = 1 << 20;

/// Splits the index's oids into `n` ranges `[lo, hi)` of about equal count, covering all
/// oids.
pub(crate) fn ranges(index: &Index, n: usize) -> Vec<(u64, u64)> {
    let len = index.len();
    let n = n.max(1);
    let mut bounds = vec![0u64];
    if len > 0 {
        let mut k = 1;
        for (i, (oid, _)) in index.iter().enumerate() {
            if k < n && i == len * k / n {
                if oid.as_u64() > *bounds.last().unwrap_or(&0) {
                    bounds.push(oid.as_u64());
                }
                k += 1;
            }
        }
    }
    let mut out: Vec<(u64, u64)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
    out.push((*bounds.last().unwrap_or(&0), u64::MAX));
    out
}

/// Reads the oids of `[from, hi)` and sends their rows; checkpoint values are the next oid
/// to copy, and the last is `hi`.
pub(crate) fn read_range(
    fs: &View<'_>,
    index: &Index,
    (from, hi): (u64, u64),
    tx: &SyncSender<Msg>,
    ctx: &Ctx<'_>,
) -> Result<bool> {
    let Ctx {
        blob_dir,
        interrupt,
        progress,
        checkpoint_bytes,
    } = *ctx;
    let mut rows = Rows::default();
    let mut since = 0u64;
    let send = |m: Msg| tx.send(m).is_ok();
    for (oid, pos) in index.iter() {
        let o = oid.as_u64();
        if o < from {
            continue;
        }
        if o >= hi {
            break;
        }
        if interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) {
            return Err(ConvertError::Interrupted);
        }
        let rec = fs.record_at(pos)?;
        if rec.oid != oid {
            return Err(ConvertError::Format(zfs_format::Error::Corrupt {
                offset: pos,
                what: format!("the index points oid {oid} at a record of oid {}", rec.oid),
            }));
        }
        let Some(state) = fs.resolve(&rec)?.and_then(|r| r.data()) else {
            progress.advance(1);
            continue;
        };
        let tid = rec.tid.as_u64();
        rows.row(4)
            .int8(o)
            .int8(tid)
            .int8(state.len() as u64)
            .bytes(Some(state));
        since += state.len() as u64 + 40;
        if blobs::is_blob(state) {
            let dir = blob_dir.ok_or_else(|| no_blob_dir(fs.path(), &rec))?;
            if !send(Msg::Rows(rows.take())) {
                return Ok(false);
            }
            let path = dir.path(o, tid);
            if !send(Msg::Blob { zoid: o, tid, path }) {
                return Ok(false);
            }
        }
        if rows.len() >= SEND_BYTES && !send(Msg::Rows(rows.take())) {
            return Ok(false);
        }
        if since >= checkpoint_bytes {
            since = 0;
            let next = Oid::from_u64(o.saturating_add(1)).as_u64();
            if !send(Msg::Rows(rows.take())) || !send(Msg::Checkpoint(next.to_string())) {
                return Ok(false);
            }
        }
        progress.advance(1);
    }
    Ok(send(Msg::Rows(rows.take())) && send(Msg::Finish(hi.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_oid() {
        let index = Index::from_sorted((1..=10u64).map(|o| (o, 100 + o)));
        let r = ranges(&index, 3);
        assert_eq!(r, vec![(0, 4), (4, 7), (7, u64::MAX)]);
        assert_eq!(ranges(&Index::new(), 2), vec![(0, u64::MAX)]);
        assert_eq!(ranges(&index, 1), vec![(0, u64::MAX)]);
    }
}
