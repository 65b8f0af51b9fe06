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
use crate::refs::RefScanner;
use crate::stream::Msg;
use crate::View;

/// COPY statement of `object_state`.
pub(crate) const STATE_COPY: &str =
    "COPY object_state (zoid, tid, state_size, state) FROM STDIN (FORMAT binary)";

/// COPY statement of `object_ref`.
pub(crate) const REF_COPY: &str = "COPY object_ref (zoid, to_zoid, tid) FROM STDIN (FORMAT binary)";
/// COPY statement of `object_refs_added`.
pub(crate) const ADDED_COPY: &str = "COPY object_refs_added (zoid, tid) FROM STDIN (FORMAT binary)";

/// The pages of the file are handed back after this many bytes of states were read.
const RELEASE_BYTES: u64 = 256 << 20;

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

/// One stream of a range: where it is sent to, what it committed, what is buffered.
pub(crate) struct Sink {
    /// The stream.
    pub tx: SyncSender<Msg>,
    /// The first oid it has not committed: smaller oids are not sent to it.
    pub from: u64,
    rows: Rows,
}

impl Sink {
    /// A sink whose stream committed every oid below `from`.
    pub(crate) fn new(tx: SyncSender<Msg>, from: u64) -> Self {
        Sink {
            tx,
            from,
            rows: Rows::default(),
        }
    }

    fn send(&mut self, m: Msg) -> bool {
        self.tx.send(m).is_ok()
    }

    fn flush(&mut self) -> bool {
        self.rows.len() == 0 || {
            let b = self.rows.take();
            self.send(Msg::Rows(b))
        }
    }
}

/// The sinks of one range: `object_state` (and blobs), and when the pack tables are filled
/// `object_ref` and `object_refs_added`.
pub(crate) struct Sinks {
    pub state: Sink,
    pub refs: Option<(Sink, Sink)>,
}

impl Sinks {
    fn all(&mut self) -> impl Iterator<Item = &mut Sink> {
        let refs = self.refs.as_mut().map(|(a, b)| [a, b]);
        std::iter::once(&mut self.state).chain(refs.into_iter().flatten())
    }
}

/// Reads the oids of `[lo, hi)` (from the smallest oid a sink has not committed) and sends
/// their rows; checkpoint values are the next oid to copy, and the last is `hi`.
pub(crate) fn read_range(
    fs: &View<'_>,
    index: &Index,
    hi: u64,
    sinks: &mut Sinks,
    ctx: &Ctx<'_>,
) -> Result<bool> {
    let Ctx {
        blob_dir,
        interrupt,
        progress,
        checkpoint_bytes,
        release,
    } = *ctx;
    let mut read = 0u64;
    let from = sinks.all().map(|s| s.from).min().unwrap_or(0);
    let mut since = 0u64;
    let mut scanner = RefScanner::new(fs);
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
        let s = &mut sinks.state;
        if o >= s.from {
            s.rows
                .row(4)
                .int8(o)
                .int8(tid)
                .int8(state.len() as u64)
                .bytes(Some(state));
            if blobs::is_blob(state) {
                let dir = blob_dir.ok_or_else(|| no_blob_dir(fs.path(), &rec))?;
                let path = dir.path(o, tid);
                if !s.flush() || !s.send(Msg::Blob { zoid: o, tid, path }) {
                    return Ok(false);
                }
            }
        }
        if let Some((r, a)) = sinks.refs.as_mut() {
            if o >= r.from {
                for to in scanner.oids(state, &rec)? {
                    r.rows.row(3).int8(o).int8(to).int8(tid);
                }
            }
            if o >= a.from {
                a.rows.row(2).int8(o).int8(tid);
            }
        }
        since += state.len() as u64 + 40;
        read += state.len() as u64;
        if read >= RELEASE_BYTES {
            // Reads go in oid order, all over the file: hand every page back now and then
            // (pages still needed come back from the page cache).
            release(zfs_format::FIRST_TXN, fs.len());
            read = 0;
        }
        let mut ok = true;
        for s in sinks.all() {
            if s.rows.len() >= SEND_BYTES {
                ok &= s.flush();
            }
        }
        if since >= checkpoint_bytes {
            since = 0;
            let next = Oid::from_u64(o.saturating_add(1)).as_u64();
            for s in sinks.all() {
                if next > s.from {
                    ok = ok && s.flush() && s.send(Msg::Checkpoint(next.to_string()));
                }
            }
        }
        if !ok {
            return Ok(false);
        }
        progress.advance(1);
    }
    let mut ok = true;
    for s in sinks.all() {
        ok = ok && s.flush() && s.send(Msg::Finish(hi.to_string()));
    }
    Ok(ok)
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
