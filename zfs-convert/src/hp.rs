//! History-preserving: every transaction and every revision, in file order.
//!
//! One walk over the file, in order, because a revision's `prev_tid` is the tid of the
//! oid's previous revision in the copy. The walk encodes rows and hands them to the
//! streams: one for `transaction`, and `jobs` for `object_state` (by oid), which also store
//! the blobs of their oids. Each stream commits up to a file position together with its
//! manifest entry; on resume the walk starts at the smallest committed position and
//! sends each stream only the transactions past its own.

use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;

use md5::{Digest, Md5};
use zfs_format::{DataRecord, Status, Transaction, FIRST_TXN};

use crate::blobs;
use crate::convert::Ctx;
use crate::error::{ConvertError, Result};
use crate::oidtable::OidTable;
use crate::pgcopy::Rows;
use crate::refs::RefScanner;
use crate::sequence::OidSequence;
use crate::stream::Msg;
use crate::View;

/// COPY statement of `transaction`.
pub(crate) const TXN_COPY: &str = "COPY transaction (tid, packed, is_empty, username, \
     description, extension) FROM STDIN (FORMAT binary)";
/// COPY statement of `object_state`.
pub(crate) const STATE_COPY: &str = "COPY object_state (zoid, tid, prev_tid, md5, state_size, \
     state) FROM STDIN (FORMAT binary)";
/// COPY statement of `object_ref`.
pub(crate) const REF_COPY: &str = "COPY object_ref (zoid, tid, to_zoid) FROM STDIN (FORMAT binary)";
/// COPY statement of `object_refs_added`.
pub(crate) const ADDED_COPY: &str = "COPY object_refs_added (tid) FROM STDIN (FORMAT binary)";
/// COPY statement of `current_object`.
pub(crate) const CURRENT_COPY: &str = "COPY current_object (zoid, tid) FROM STDIN (FORMAT binary)";

/// A stream is sent what it has buffered once this many bytes are encoded.
const SEND_BYTES: usize = 1 << 20;

/// The walk hands the pages it read back to the kernel every this many bytes.
const RELEASE_BYTES: u64 = 64 << 20;

/// What the walk carries along the file.
#[derive(Debug, Default)]
pub(crate) struct History {
    /// Each oid's last revision's tid.
    pub last_tid: OidTable,
    /// `zoid_seq` as RelStorage's copy leaves it.
    pub seq: OidSequence,
    /// Transactions walked.
    pub transactions: u64,
}

/// One `object_state` row before its state is read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Revision<'a> {
    /// The record (the last of its oid in the transaction).
    pub rec: DataRecord<'a>,
    /// The tid of the oid's previous revision, 0 for its first.
    pub prev_tid: u64,
}

/// Refuses what ZODB's iterator cannot give zodbconvert.
pub(crate) fn check_txn(fs_path: &std::path::Path, txn: &Transaction<'_>) -> Result<()> {
    if txn.status() == Status::Undone {
        return Err(ConvertError::Unsupported(format!(
            "'{}': transaction at offset {} has the obsolete status 'u', which ZODB's \
             iterator (and so zodbconvert) cannot copy",
            fs_path.display(),
            txn.pos()
        )));
    }
    Ok(())
}

impl History {
    /// Moves past one transaction and returns its revisions: one per oid, the last record
    /// of the oid in the transaction winning (as RelStorage's upsert leaves it).
    pub(crate) fn advance<'a>(
        &mut self,
        fs: &View<'_>,
        txn: &Transaction<'a>,
    ) -> Result<Vec<Revision<'a>>> {
        check_txn(fs.path(), txn)?;
        let mut recs: Vec<DataRecord<'a>> = Vec::new();
        let mut max_oid = 0;
        for r in txn.records() {
            let r = r?;
            if !r.version.is_empty() {
                return Err(ConvertError::Unsupported(format!(
                    "'{}': the data record at offset {} belongs to a version (ZODB < 3.9); \
                     ZODB 5 and later cannot copy it either",
                    fs.path().display(),
                    r.pos
                )));
            }
            max_oid = max_oid.max(r.oid.as_u64());
            recs.push(r);
        }
        recs.sort_by_key(|r| r.oid);
        let mut out = Vec::with_capacity(recs.len());
        for (i, r) in recs.iter().enumerate() {
            if recs.get(i + 1).is_some_and(|n| n.oid == r.oid) {
                continue;
            }
            out.push(Revision {
                rec: *r,
                prev_tid: self.last_tid.get(r.oid.as_u64()),
            });
        }
        for rev in &out {
            self.last_tid
                .set(rev.rec.oid.as_u64(), rev.rec.tid.as_u64());
        }
        self.seq.observe(max_oid);
        self.transactions += 1;
        Ok(out)
    }
}

/// Encodes a `transaction` row.
pub(crate) fn txn_row(rows: &mut Rows, txn: &Transaction<'_>) {
    rows.row(6)
        .int8(txn.tid().as_u64())
        .boolean(txn.status() == Status::Packed)
        .boolean(false)
        .bytes(Some(txn.user))
        .bytes(Some(txn.description))
        .bytes(Some(txn.extension));
}

/// Encodes an `object_state` row; returns the resolved state.
pub(crate) fn state_row<'a>(
    fs: &'a View<'a>,
    rows: &mut Rows,
    rev: &Revision<'a>,
) -> Result<Option<&'a [u8]>> {
    let state = fs.resolve(&rev.rec)?.and_then(|r| r.data());
    let mut hex = [0u8; 32];
    let md5 = state.map(|s| {
        hex_lower(&Md5::digest(s), &mut hex);
        &hex[..]
    });
    rows.row(6)
        .int8(rev.rec.oid.as_u64())
        .int8(rev.rec.tid.as_u64())
        .int8(rev.prev_tid)
        .bytes(md5)
        .int8(state.map_or(0, |s| s.len() as u64))
        .bytes(state);
    Ok(state)
}

fn hex_lower(bytes: &[u8], out: &mut [u8; 32]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().take(16).enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 15)];
    }
}

/// Where each stream stands and where it is sent to.
pub(crate) struct Outlet {
    /// The stream's committed file position: transactions before it are not sent.
    pub committed: u64,
    pub tx: SyncSender<Msg>,
    rows: Rows,
}

impl Outlet {
    /// An outlet for a stream that committed everything before `committed`.
    pub(crate) fn new(committed: u64, tx: SyncSender<Msg>) -> Self {
        Outlet {
            committed,
            tx,
            rows: Rows::default(),
        }
    }

    fn send(&mut self, m: Msg) -> std::result::Result<(), Gone> {
        self.tx.send(m).map_err(|_| Gone)
    }

    fn flush(&mut self) -> std::result::Result<(), Gone> {
        if self.rows.len() > 0 {
            let b = self.rows.take();
            self.send(Msg::Rows(b))?;
        }
        Ok(())
    }
}

/// A stream hung up (it failed; its error is collected when it is joined).
#[derive(Debug)]
pub(crate) struct Gone;

/// How the walk ended.
pub(crate) enum Walked {
    /// Everything up to the end was sent, with the final checkpoints.
    Done,
    /// A stream went away; its error says why.
    StreamFailed,
}

/// The streams of the history-preserving bulk copy.
pub(crate) struct Outlets {
    /// `transaction` rows.
    pub txn: Outlet,
    /// `object_state` rows (and blobs), by oid modulo their number.
    pub objs: Vec<Outlet>,
    /// `object_ref` and `object_refs_added` rows, when the pack tables are filled.
    pub refs: Option<(Outlet, Outlet)>,
}

impl Outlets {
    fn all(&mut self) -> impl Iterator<Item = &mut Outlet> {
        let refs = self.refs.as_mut().map(|(a, b)| [a, b]);
        self.objs
            .iter_mut()
            .chain(std::iter::once(&mut self.txn))
            .chain(refs.into_iter().flatten())
    }

    /// The smallest committed position: where the walk starts sending.
    fn resume_at(&mut self) -> u64 {
        self.all().map(|o| o.committed).min().unwrap_or(FIRST_TXN)
    }
}

/// The bulk walk: from the first transaction to `end_pos`, rows sent to the outlets.
/// `history` ends as it is at `end_pos`.
pub(crate) fn walk(
    fs: &View<'_>,
    end_pos: u64,
    out: &mut Outlets,
    ctx: &Ctx<'_>,
    history: &mut History,
) -> Result<Walked> {
    let Ctx {
        interrupt,
        progress,
        checkpoint_bytes,
        release,
        ..
    } = *ctx;
    let mut released = FIRST_TXN;
    let resume_at = out.resume_at();
    progress.start("converting", end_pos.saturating_sub(resume_at));
    let mut since_checkpoint = 0u64;
    let mut refs = RefScanner::new(fs);
    for txn in fs.transactions() {
        let txn = txn?;
        if txn.pos() >= end_pos {
            break;
        }
        let revs = history.advance(fs, &txn)?;
        if txn.next_pos() - released >= RELEASE_BYTES {
            release(released, txn.next_pos());
            released = txn.next_pos();
        }
        if txn.pos() < resume_at {
            continue;
        }
        if interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) {
            return Err(ConvertError::Interrupted);
        }
        if send_txn(fs, &txn, &revs, out, ctx, &mut refs)?.is_err() {
            return Ok(Walked::StreamFailed);
        }
        let next = txn.next_pos();
        since_checkpoint += next - txn.pos();
        progress.advance(next - txn.pos());
        let mut sent = Ok(());
        for o in out.all() {
            if o.rows.len() >= SEND_BYTES {
                sent = sent.and(o.flush());
            }
        }
        if since_checkpoint >= checkpoint_bytes && next < end_pos {
            since_checkpoint = 0;
            for o in out.all() {
                if next > o.committed {
                    sent = sent
                        .and_then(|_| o.flush())
                        .and_then(|_| o.send(Msg::Checkpoint(next.to_string())));
                }
            }
        }
        if sent.is_err() {
            return Ok(Walked::StreamFailed);
        }
    }
    let done = end_pos.to_string();
    for o in out.all() {
        if o.flush().is_err() || o.send(Msg::Finish(done.clone())).is_err() {
            return Ok(Walked::StreamFailed);
        }
    }
    Ok(Walked::Done)
}

/// Encodes the rows of one transaction into the outlets that have not committed it.
fn send_txn(
    fs: &View<'_>,
    txn: &Transaction<'_>,
    revs: &[Revision<'_>],
    out: &mut Outlets,
    ctx: &Ctx<'_>,
    refs: &mut RefScanner,
) -> Result<std::result::Result<(), Gone>> {
    let pos = txn.pos();
    let tid = txn.tid().as_u64();
    if pos >= out.txn.committed {
        txn_row(&mut out.txn.rows, txn);
    }
    let n = out.objs.len() as u64;
    for rev in revs {
        let oid = rev.rec.oid.as_u64();
        let o = &mut out.objs[(oid % n) as usize];
        if pos >= o.committed {
            let state = state_row(fs, &mut o.rows, rev)?;
            if state.is_some_and(blobs::is_blob) {
                let dir = ctx
                    .blob_dir
                    .ok_or_else(|| no_blob_dir(fs.path(), &rev.rec))?;
                let rtid = rev.rec.tid.as_u64();
                let path = dir.path(oid, rtid);
                let sent = o.flush().and_then(|_| {
                    o.send(Msg::Blob {
                        zoid: oid,
                        tid: rtid,
                        path,
                    })
                });
                if sent.is_err() {
                    return Ok(sent);
                }
            }
        }
        if let Some((r, _)) = out.refs.as_mut().filter(|(r, _)| pos >= r.committed) {
            if let Some(state) = fs.resolve(&rev.rec)?.and_then(|x| x.data()) {
                for to in refs.oids(state, &rev.rec)? {
                    r.rows.row(3).int8(oid).int8(rev.rec.tid.as_u64()).int8(to);
                }
            }
        }
    }
    if let Some((_, a)) = out.refs.as_mut().filter(|(_, a)| pos >= a.committed) {
        a.rows.row(1).int8(tid);
    }
    Ok(Ok(()))
}

/// Walks the transactions before `pos` to rebuild the history there (no rows are made).
pub(crate) fn replay(fs: &View<'_>, pos: u64, history: &mut History) -> Result<()> {
    for txn in fs.transactions() {
        let txn = txn?;
        if txn.pos() >= pos {
            break;
        }
        history.advance(fs, &txn)?;
    }
    Ok(())
}

pub(crate) fn no_blob_dir(path: &std::path::Path, rec: &DataRecord<'_>) -> ConvertError {
    ConvertError::Unsupported(format!(
        "'{}': the record of oid {} at offset {} is a blob, and no blob directory was \
         given (--blobs DIR)",
        path.display(),
        rec.oid,
        rec.pos
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_is_lowercase_hex() {
        let mut out = [0u8; 32];
        hex_lower(&Md5::digest(b"abc"), &mut out);
        assert_eq!(&out, b"900150983cd24fb0d6963f7d28e17f72");
    }
}
