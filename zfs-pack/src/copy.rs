//! Phases C and D of ZODB's packer: copying the kept revisions before the pack time into
//! packed transactions, then every transaction after it with `prev` pointers rebuilt and
//! backpointers re-pointed into the new file.
//!
//! Phase C encodes batches of transactions in parallel (positions inside each encoded
//! transaction are relative), then writes them in file order, patching in the absolute
//! transaction position, so the bytes are those of the sequential algorithm. Transactions
//! are encoded by `zfs_format`'s `TxnBuilder`, backpointers re-pointed by its `data_find`
//! with the packer's rule, and records read at random through [`crate::records`].

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::ops::Deref;
use std::path::PathBuf;

use rayon::prelude::*;
use zfs_files::{Output, OutputSpec};
use zfs_format::pickle::Scanner;
use zfs_format::writer::{data_find, set_tloc, FindRule, TxnBuilder};
use zfs_format::{FileStorage, Payload, Progress, Status, Tid, Transaction};

use crate::analyze::{check_txn, gather_one, Edges, Verify};
use crate::blob;
use crate::error::{PackError, Result};
use crate::oidmap::{OidMap, ABSENT};
use crate::reach::Reach;
use crate::records::{corrupt, open_for_reads, read_oid_tid, read_state_at, state_at, RecordFile};

/// Transactions per parallel work unit.
const CHUNK: usize = 64;
/// Bytes of input transactions per batch.
const BATCH_BYTES: u64 = 2 << 20;

/// Where the packed file goes: a new private file beside the original (see
/// [`zfs_files::Output`]), or nowhere (a dry run only counts).
pub struct Out {
    w: Option<BufWriter<Output>>,
    path: PathBuf,
    pos: u64,
}

impl Out {
    /// Creates the output: a new temporary file for `spec`'s target.
    pub fn create(spec: OutputSpec) -> Result<Out> {
        // The packed file may be larger than the memory the pack may use.
        let out = spec.create()?.write_behind();
        Ok(Out {
            path: out.temp_path().to_path_buf(),
            w: Some(BufWriter::with_capacity(1 << 20, out)),
            pos: 0,
        })
    }

    /// A sink that only counts bytes.
    pub fn counting() -> Out {
        Out {
            w: None,
            path: PathBuf::new(),
            pos: 0,
        }
    }

    /// Bytes written so far: the position of the next byte.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Writes the file's magic (the first bytes of the output).
    pub fn write_magic(&mut self, magic: &[u8]) -> Result<()> {
        self.write(magic)
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        if let Some(w) = &mut self.w {
            w.write_all(b).map_err(|e| PackError::io(&self.path, e))?;
        }
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Fills `buf` with what was written at `pos` (flushing first); zeros for a sink
    /// that only counts.
    fn read_back(&mut self, buf: &mut [u8], pos: u64) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let Some(w) = &mut self.w else {
            buf.fill(0);
            return Ok(());
        };
        w.flush().map_err(|e| PackError::io(&self.path, e))?;
        w.get_ref()
            .file()
            .read_exact_at(buf, pos)
            .map_err(|e| PackError::io(&self.path, e))
    }

    /// Flushes and fsyncs the file (so a full disk fails here, before anything is
    /// renamed); the output is returned for its commit (`None` for a dry run).
    pub fn finish(self) -> Result<Option<Output>> {
        let Some(w) = self.w else {
            return Ok(None);
        };
        let out = w
            .into_inner()
            .map_err(|e| PackError::io(&self.path, e.into_error()))?;
        out.file()
            .sync_all()
            .map_err(|e| PackError::io(&self.path, e))?;
        Ok(Some(out))
    }
}

/// The index of the packed file as it is built: a compact map (after phase C, the scan
/// map's slots with the packed positions; [`ABSENT`] for objects not kept) plus recent
/// updates.
pub struct OutIndex {
    base: OidMap,
    recent: HashMap<u64, u64>,
    /// tid → position of every transaction written (tids increase through the file, so
    /// this is sorted); replaces ZODB's backwards walk over the output.
    tids: Vec<(Tid, u64)>,
}

impl OutIndex {
    fn new() -> Self {
        OutIndex {
            base: OidMap::new(),
            recent: HashMap::new(),
            tids: Vec::new(),
        }
    }
    fn fold_if_large(&mut self) {
        let n = self.recent.len();
        if n > (64 * 1024).max(self.base.slots() / 4) {
            self.fold();
        }
    }
    fn fold(&mut self) {
        if self.recent.is_empty() {
            return;
        }
        let upd: Vec<(u64, u64)> = self.recent.drain().collect();
        self.base.apply(upd);
    }
    fn get(&self, oid: u64) -> Option<u64> {
        self.recent
            .get(&oid)
            .copied()
            .or_else(|| self.base.get(oid))
    }
    /// The packed file's map (the scan map's slots, [`ABSENT`] for objects not kept),
    /// when phase D added nothing to it.
    pub(crate) fn packed_map(&self) -> Option<&OidMap> {
        self.recent.is_empty().then_some(&self.base)
    }

    /// The tid of the transaction written at or last before `pos`.
    pub(crate) fn tid_at(&self, pos: u64) -> Option<Tid> {
        let after = self.tids.partition_point(|&(_, p)| p <= pos);
        after.checked_sub(1).map(|i| self.tids[i].0)
    }

    /// The tid of the last transaction written.
    pub(crate) fn last_tid(&self) -> Option<Tid> {
        self.tids.last().map(|&(t, _)| t)
    }

    /// The finished index as ZODB's `.index` holds it.
    pub fn finish(mut self) -> zfs_format::Index {
        self.fold();
        zfs_format::Index::from_sorted(self.base.iter().filter(|&(_, p)| p != ABSENT))
    }
}

/// What phase C did.
#[derive(Debug, Default, Clone)]
pub struct CopyStats {
    /// Records copied into packed transactions.
    pub records_kept: u64,
    /// Records before the pack time left out.
    pub records_dropped: u64,
    /// Transactions before the pack time left out entirely.
    pub txns_dropped: u64,
    /// Lines for the blob directory's `.removed` file, in file order.
    pub blob_removed: Vec<u8>,
    /// Transactions before the pack time.
    pub txns: u64,
    /// With a [`Verify`]: the current records met (one per object of its index).
    pub current: u64,
    /// Whether a transaction before the pack time is not packed (`'p'`).
    pub unpacked: bool,
    /// The status of the last transaction before the pack time.
    pub last_status: Option<Status>,
    /// Whether a transaction before the pack time that is not undone holds a record.
    pub any_indexed: bool,
}

/// One input transaction encoded for the packed file.
#[derive(Default)]
struct Encoded {
    /// The finished transaction, encoded at position 0 (empty when nothing is kept).
    bytes: Vec<u8>,
    /// (oid, offset in `bytes`, position in the input) of each record.
    recs: Vec<(u64, u32, u64)>,
    /// The transaction's tid.
    tid: Tid,
    dropped: u64,
    blob: Vec<u8>,
    /// Current records met (counted with a [`Verify`] only).
    current: u64,
    /// The transaction's status.
    status: Option<Status>,
    /// References gathered for kept revisions that the analysis left out (see
    /// [`Edges::add`]).
    refs: Vec<u32>,
}

/// Starts the copy of `t` at `pos` with `status`, keeping its tid and strings.
fn start_txn(t: &Transaction<'_>, pos: u64, status: Status) -> TxnBuilder {
    TxnBuilder::new(pos, t.tid(), status, t.user, t.description, t.extension)
        .expect("strings read through 16-bit lengths fit them")
}

/// Encodes the kept records of one transaction before the pack time (tloc left 0).
/// Backpointers are resolved with positioned reads on `file` when it is given. With
/// `edges`, the references of a kept current revision that it lacks are gathered.
#[allow(clippy::too_many_arguments)]
fn encode_packed<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    file: Option<&RecordFile>,
    buf: &mut Vec<u8>,
    sc: &mut (Scanner, Vec<u32>),
    t: &Transaction<'_>,
    reach: &Reach,
    blobs: bool,
    verify: Option<&Verify>,
    edges: Option<&Edges>,
) -> Result<Encoded> {
    let mut e = Encoded {
        tid: t.tid(),
        status: Some(t.status()),
        ..Encoded::default()
    };
    let mut packed: Option<TxnBuilder> = None;
    for r in t.records() {
        let r = r?;
        let current = match verify {
            Some(v) => v.record(fs, t, &r)?,
            None => false,
        };
        e.current += u64::from(current);
        let oid = r.oid.as_u64();
        let kept = reach.is_reachable(oid, r.pos);
        if !kept && !blobs {
            e.dropped += 1;
            continue;
        }
        // The data, backpointers resolved: to copy, or to look for a blob in garbage.
        let data = match r.payload {
            Payload::Data(d) => Some(d),
            Payload::Backpointer(0) => None,
            Payload::Backpointer(b) => match file {
                Some(f) => read_state_at(fs, f, buf, b)?.map(|_| &buf[..]),
                None => state_at(fs, b)?.and_then(|d| d.data()),
            },
        };
        if !kept {
            e.dropped += 1;
            if blobs {
                if let Some(d) = data.filter(|d| !d.is_empty()) {
                    if blob::is_blob_record(d) {
                        let dup = match reach.main_pos(oid) {
                            Some(rpos) => fs.record_at(rpos)?.tid == r.tid,
                            None => false,
                        };
                        if !dup {
                            let line = if reach.contains(oid) {
                                format!("{:016x}{:016x}\n", oid, r.tid.as_u64())
                            } else {
                                format!("{oid:016x}\n")
                            };
                            e.blob.extend_from_slice(line.as_bytes());
                        }
                    }
                }
            }
            continue;
        }
        if let (Some(v), true) = (verify, current) {
            let edges = edges.ok_or(PackError::StaleReferences)?;
            v.references(edges, &mut sc.0, &mut sc.1, r.oid, data)?;
        }
        if let (Some(edges), Some(d)) = (edges, data) {
            if let Some(slot) = reach.map.slot(oid) {
                if reach.map.pos_at(slot) == r.pos && edges.of(slot).is_none() {
                    gather_one(&mut sc.0, &mut sc.1, &reach.map, slot, d, &mut e.refs);
                }
            }
        }
        let txn = packed.get_or_insert_with(|| start_txn(t, 0, Status::Packed));
        let payload = match data {
            Some(d) if !d.is_empty() => Payload::Data(d),
            _ => Payload::Backpointer(0),
        };
        let rel = txn.record(r.oid, r.tid, 0, payload);
        e.recs.push((oid, rel as u32, r.pos));
    }
    if let Some(txn) = packed {
        e.bytes = txn.finish();
    }
    Ok(e)
}

/// Phase C: copies the kept revisions of `[4, packpos)` into `out` (which holds the magic).
/// `reach` becomes the packed file's index (see [`Reach::record_written`]). With `verify`
/// (an analysis from saved references), every transaction and record is checked as the
/// scan to the pack time checks them, and against what that analysis assumed, in `edges`.
/// `edges` (the references of the current revisions, as slots of `reach.map`) gains those
/// of the kept revisions it lacks.
#[allow(clippy::too_many_arguments)]
pub fn copy_to_packtime<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    packpos: u64,
    mut reach: Reach,
    blobs: bool,
    verify: Option<&Verify>,
    mut edges: Option<&mut Edges>,
    out: &mut Out,
    progress: &dyn Progress,
) -> Result<(CopyStats, OutIndex)> {
    progress.start("copying before the pack time", packpos.saturating_sub(4));
    let mut stats = CopyStats::default();
    let mut index = OutIndex::new();
    let mut it = fs.transactions();
    // Reads ahead of the copy and drops behind it what it brought into memory.
    let mut stream = fs.stream(zfs_format::FIRST_TXN);
    let mut done = false;
    let mut ltid = Tid::default();
    let file = open_for_reads(fs);
    // A writer thread takes the encoded batches, so that the kernel's copy into the page
    // cache overlaps the encoding of the next batch; positions are counted here.
    let mut pos = out.pos();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Vec<u8>>>(1);
    let sink = &mut *out;
    let (encoded, written) = std::thread::scope(|s| {
        let writer = s.spawn(move || -> Result<()> {
            for batch in rx {
                for bytes in batch {
                    sink.write(&bytes)?;
                }
            }
            Ok(())
        });
        let encoded = (|| -> Result<()> {
            while !done {
                crate::interrupt::check(progress)?;
                let mut batch = Vec::new();
                let mut bytes = 0;
                while bytes < BATCH_BYTES {
                    if it.pos() >= packpos {
                        done = true;
                        break;
                    }
                    match it.next() {
                        Some(t) => {
                            let t = t?;
                            if verify.is_some() {
                                check_txn(fs, &t, &mut ltid)?;
                            }
                            bytes += t.tlen() + 8;
                            batch.push(t);
                        }
                        // The scan to the pack time has found the committed part whole;
                        // without it (saved references), a walk that stops short met damage.
                        None if verify.is_some() => return Err(PackError::StaleReferences),
                        None => {
                            done = true;
                            break;
                        }
                    }
                }
                let shared = &reach;
                let shared_edges = edges.as_deref();
                let parts: Vec<Result<Vec<Encoded>>> = batch
                    .par_chunks(CHUNK)
                    .map_init(
                        || (Vec::new(), (Scanner::new(), Vec::new())),
                        |(buf, sc), c| {
                            let r = c
                                .iter()
                                .map(|t| {
                                    encode_packed(
                                        fs,
                                        file.as_ref(),
                                        buf,
                                        sc,
                                        t,
                                        shared,
                                        blobs,
                                        verify,
                                        shared_edges,
                                    )
                                })
                                .collect();
                            progress.advance(c.iter().map(|t| t.tlen() + 8).sum());
                            r
                        },
                    )
                    .collect();
                let mut ready = Vec::new();
                for part in parts {
                    for mut e in part? {
                        if let Some(edges) = edges.as_deref_mut() {
                            edges.add(&e.refs);
                        }
                        stats.txns += 1;
                        stats.current += e.current;
                        if let Some(status) = e.status {
                            stats.unpacked |= status != Status::Packed;
                            stats.any_indexed |=
                                status != Status::Undone && (e.dropped > 0 || !e.recs.is_empty());
                            stats.last_status = Some(status);
                        }
                        stats.records_dropped += e.dropped;
                        stats.blob_removed.append(&mut e.blob);
                        if e.bytes.is_empty() {
                            stats.txns_dropped += 1;
                            continue;
                        }
                        let tpos = pos;
                        for &(oid, rel, old) in &e.recs {
                            set_tloc(&mut e.bytes, u64::from(rel), tpos)
                                .expect("record offsets come from the builder");
                            reach.record_written(oid, old, tpos + u64::from(rel));
                        }
                        stats.records_kept += e.recs.len() as u64;
                        index.tids.push((e.tid, tpos));
                        pos += e.bytes.len() as u64;
                        ready.push(e.bytes);
                    }
                }
                // A closed channel means the writer failed: its error is returned below.
                if tx.send(ready).is_err() {
                    return Ok(());
                }
                // Backpointers and blob checks may have touched earlier pages too.
                stream.advance(fs.bytes(), it.pos());
                fs.release(0, it.pos());
            }
            Ok(())
        })();
        drop(tx);
        let written = writer.join().expect("the writing thread does not panic");
        (encoded, written)
    });
    written?;
    encoded?;
    debug_assert_eq!(out.pos(), pos);
    index.base = reach.into_written();
    Ok((stats, index))
}

/// Phase D: copies every transaction of `[packpos, end)` after the packed region.
pub fn copy_rest<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    packpos: u64,
    end: u64,
    out: &mut Out,
    index: &mut OutIndex,
    progress: &dyn Progress,
) -> Result<()> {
    progress.start("copying after the pack time", end.saturating_sub(packpos));
    index.fold();
    let mut it = fs.transactions_from(packpos);
    let mut last_release = packpos;
    let mut stream = fs.stream(packpos);
    let mut txn_index: Vec<(u64, u64)> = Vec::new();
    let file = open_for_reads(fs);
    let mut data_buf = Vec::new();
    while it.pos() < end {
        let Some(t) = it.next() else { break };
        let t = t?;
        let out_tpos = out.pos();
        txn_index.clear();
        let mut txn = start_txn(&t, out_tpos, t.status());
        // The copy has the original's length (checked below).
        txn.reserve_for(t.tlen());
        for r in t.records() {
            let r = r?;
            let oid = r.oid.as_u64();
            let (data, prev_txn) = match r.payload {
                Payload::Data(d) => (Some(d), None),
                Payload::Backpointer(0) => (None, None),
                Payload::Backpointer(b) => {
                    let data = match &file {
                        Some(f) => read_state_at(fs, f, &mut data_buf, b)?.map(|_| &data_buf[..]),
                        None => state_at(fs, b)?.and_then(|d| d.data()),
                    };
                    let (target_oid, target_tid) = match &file {
                        Some(f) => read_oid_tid(fs, f, b)?,
                        None => {
                            let t = fs.record_at(b)?;
                            (t.oid, t.tid)
                        }
                    };
                    if target_oid != r.oid {
                        return Err(corrupt(
                            fs,
                            r.pos,
                            format!("backpointer {b} leads to a record of oid {target_oid}"),
                        ));
                    }
                    (data, Some(target_tid))
                }
            };
            let mut new_back = 0;
            if let Some(ptid) = prev_txn {
                // The newest transaction written before this one with that tid.
                let i = index.tids.partition_point(|&(t, _)| t <= ptid);
                let found = i
                    .checked_sub(1)
                    .map(|j| index.tids[j])
                    .filter(|&(t, _)| t == ptid);
                match found {
                    Some((_, tpos)) => {
                        // A chain ending in "does not exist" against a record with data:
                        // ZODB fails (TypeError); data_find gives 0, a zero backpointer.
                        let read_back = |buf: &mut [u8], pos| out.read_back(buf, pos);
                        new_back = data_find(read_back, tpos, r.oid, data, FindRule::First)?;
                    }
                    None if data.is_none() => {}
                    None => {
                        return Err(PackError::Backpointer {
                            offset: r.pos,
                            oid: r.oid,
                            tid: ptid,
                            why: "its transaction is not in the packed file",
                        })
                    }
                }
                if new_back == 0 && data.is_some() {
                    return Err(PackError::Backpointer {
                        offset: r.pos,
                        oid: r.oid,
                        tid: ptid,
                        why: "no matching record in that transaction of the packed file",
                    });
                }
            }
            let prev = index.get(oid).unwrap_or(0);
            let payload = match data {
                Some(d) if new_back == 0 => Payload::Data(d),
                _ => Payload::Backpointer(new_back),
            };
            let here = txn.record(r.oid, r.tid, prev, payload);
            txn_index.push((oid, here));
        }
        let tlen = txn.tlen();
        if tlen != t.tlen() {
            return Err(corrupt(
                fs,
                t.pos(),
                format!(
                    "copied transaction has length {tlen}, the original {}",
                    t.tlen()
                ),
            ));
        }
        out.write(&txn.finish())?;
        index.tids.push((t.tid(), out_tpos));
        for &(o, p) in &txn_index {
            index.recent.insert(o, p);
        }
        index.fold_if_large();
        progress.advance(t.tlen() + 8);
        if it.pos() - last_release > BATCH_BYTES {
            crate::interrupt::check(progress)?;
            // Backpointers read pages anywhere before this point: hand them all back.
            stream.advance(fs.bytes(), it.pos());
            fs.release(0, it.pos());
            last_release = it.pos();
        }
    }
    Ok(())
}
