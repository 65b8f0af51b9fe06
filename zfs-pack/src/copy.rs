//! Phases C and D of ZODB's packer: copying the kept revisions before the pack time into
//! packed transactions, then every transaction after it with `prev` pointers rebuilt and
//! backpointers re-pointed into the new file.
//!
//! Phase C encodes batches of transactions in parallel (positions inside each encoded
//! transaction are relative), then writes them in file order, patching in the absolute
//! transaction position, so the bytes are those of the sequential algorithm.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Deref;
use std::path::PathBuf;

use rayon::prelude::*;
use zfs_files::{Output, OutputSpec};
use zfs_format::record::DATA_HEADER_LEN;
use zfs_format::txn::TXN_HEADER_LEN;
use zfs_format::{FileStorage, Oid, Payload, Progress, Tid, Transaction};

use crate::analyze::{open_for_reads, read_resolved, resolve, RecordFile};
use crate::blob;
use crate::error::{PackError, Result};
use crate::oidmap::{OidMap, ABSENT};
use crate::reach::Reach;

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
        let out = spec.create()?;
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

    /// Reads back `len` bytes at `pos` of what was written (flushing first).
    fn read_back(&mut self, pos: u64, len: usize) -> Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let Some(w) = &mut self.w else {
            return Ok(vec![0; len]);
        };
        w.flush().map_err(|e| PackError::io(&self.path, e))?;
        let mut buf = vec![0; len];
        w.get_ref()
            .file()
            .read_exact_at(&mut buf, pos)
            .map_err(|e| PackError::io(&self.path, e))?;
        Ok(buf)
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
}

/// One input transaction encoded for the packed file.
#[derive(Default)]
struct Encoded {
    bytes: Vec<u8>,
    /// Relative offsets of the records (and their oids).
    recs: Vec<(u64, u32, u64)>,
    dropped: u64,
    blob: Vec<u8>,
}

fn header_bytes(t: &Transaction<'_>, status: u8, tlen: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(&t.tid().0);
    out.extend_from_slice(&tlen.to_be_bytes());
    out.push(status);
    out.extend_from_slice(&t.header.ulen.to_be_bytes());
    out.extend_from_slice(&t.header.dlen.to_be_bytes());
    out.extend_from_slice(&t.header.elen.to_be_bytes());
    out.extend_from_slice(t.user);
    out.extend_from_slice(t.description);
    out.extend_from_slice(t.extension);
}

#[allow(clippy::too_many_arguments)]
fn record_header(out: &mut Vec<u8>, oid: [u8; 8], tid: [u8; 8], prev: u64, tloc: u64, plen: u64) {
    out.extend_from_slice(&oid);
    out.extend_from_slice(&tid);
    out.extend_from_slice(&prev.to_be_bytes());
    out.extend_from_slice(&tloc.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&plen.to_be_bytes());
}

/// Encodes the kept records of one transaction before the pack time (tloc left 0).
/// Backpointers are resolved with positioned reads on `file` when it is given.
fn encode_packed<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    file: Option<&RecordFile>,
    buf: &mut Vec<u8>,
    t: &Transaction<'_>,
    reach: &Reach,
    blobs: bool,
) -> Result<Encoded> {
    let mut e = Encoded::default();
    for r in t.records() {
        let r = r?;
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
                Some(f) => read_resolved(fs, f, buf, b)?.map(|_| &buf[..]),
                None => resolve(fs, b)?.and_then(|d| d.data()),
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
        if e.bytes.is_empty() {
            header_bytes(t, b'p', t.tlen(), &mut e.bytes);
        }
        e.recs.push((oid, e.bytes.len() as u32, r.pos));
        let d = data.unwrap_or_default();
        record_header(&mut e.bytes, r.oid.0, r.tid.0, 0, 0, d.len() as u64);
        if d.is_empty() {
            e.bytes.extend_from_slice(&[0; 8]);
        } else {
            e.bytes.extend_from_slice(d);
        }
    }
    Ok(e)
}

/// Phase C: copies the kept revisions of `[4, packpos)` into `out` (which holds the magic).
/// `reach` becomes the packed file's index (see [`Reach::record_written`]).
pub fn copy_to_packtime<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    packpos: u64,
    mut reach: Reach,
    blobs: bool,
    out: &mut Out,
    progress: &dyn Progress,
    interrupt: Option<&std::sync::atomic::AtomicBool>,
) -> Result<(CopyStats, OutIndex)> {
    progress.start("copying before the pack time", packpos.saturating_sub(4));
    let mut stats = CopyStats::default();
    let mut index = OutIndex::new();
    let mut it = fs.transactions();
    // Reads ahead of the copy and drops behind it what it brought into memory.
    let mut stream = fs.stream(zfs_format::FIRST_TXN);
    let mut done = false;
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
                crate::interrupt::check(interrupt)?;
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
                            bytes += t.tlen() + 8;
                            batch.push(t);
                        }
                        None => {
                            done = true;
                            break;
                        }
                    }
                }
                let shared = &reach;
                let parts: Vec<Result<Vec<Encoded>>> = batch
                    .par_chunks(CHUNK)
                    .map_init(Vec::new, |buf, c| {
                        let r = c
                            .iter()
                            .map(|t| encode_packed(fs, file.as_ref(), buf, t, shared, blobs))
                            .collect();
                        progress.advance(c.iter().map(|t| t.tlen() + 8).sum());
                        r
                    })
                    .collect();
                let mut ready = Vec::new();
                for part in parts {
                    for mut e in part? {
                        stats.records_dropped += e.dropped;
                        stats.blob_removed.append(&mut e.blob);
                        if e.bytes.is_empty() {
                            stats.txns_dropped += 1;
                            continue;
                        }
                        let tpos = pos;
                        let tlen = e.bytes.len() as u64;
                        e.bytes[8..16].copy_from_slice(&tlen.to_be_bytes());
                        for &(oid, rel, old) in &e.recs {
                            let at = rel as usize + 24;
                            e.bytes[at..at + 8].copy_from_slice(&tpos.to_be_bytes());
                            reach.record_written(oid, old, tpos + u64::from(rel));
                        }
                        stats.records_kept += e.recs.len() as u64;
                        index
                            .tids
                            .push((Tid(e.bytes[..8].try_into().expect("8 bytes")), tpos));
                        e.bytes.extend_from_slice(&tlen.to_be_bytes());
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
    interrupt: Option<&std::sync::atomic::AtomicBool>,
) -> Result<()> {
    progress.start("copying after the pack time", end.saturating_sub(packpos));
    index.fold();
    let mut it = fs.transactions_from(packpos);
    let mut last_release = packpos;
    let mut stream = fs.stream(packpos);
    let mut buf = Vec::new();
    let mut txn_index: Vec<(u64, u64)> = Vec::new();
    let file = open_for_reads(fs);
    let mut data_buf = Vec::new();
    while it.pos() < end {
        let Some(t) = it.next() else { break };
        let t = t?;
        let out_tpos = out.pos();
        buf.clear();
        txn_index.clear();
        header_bytes(&t, t.status().byte(), t.tlen(), &mut buf);
        for r in t.records() {
            let r = r?;
            let oid = r.oid.as_u64();
            let here = out_tpos + buf.len() as u64;
            let (data, prev_txn) = match r.payload {
                Payload::Data(d) => (Some(d), None),
                Payload::Backpointer(0) => (None, None),
                Payload::Backpointer(b) => {
                    let data = match &file {
                        Some(f) => read_resolved(fs, f, &mut data_buf, b)?.map(|_| &data_buf[..]),
                        None => resolve(fs, b)?.and_then(|d| d.data()),
                    };
                    let target = match &file {
                        Some(f) => read_oid_tid(fs, f, b)?,
                        None => {
                            let t = fs.record_at(b)?;
                            (t.oid, t.tid)
                        }
                    };
                    let target = Target {
                        oid: target.0,
                        tid: target.1,
                    };
                    if target.oid != r.oid {
                        return Err(PackError::Corrupt {
                            path: fs.path().to_path_buf(),
                            offset: r.pos,
                            what: format!(
                                "backpointer {b} leads to a record of oid {}",
                                target.oid
                            ),
                        });
                    }
                    (data, Some(target.tid))
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
                    Some((_, tpos)) => new_back = data_find(out, tpos, r.oid.0, data)?,
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
            if new_back != 0 {
                record_header(&mut buf, r.oid.0, r.tid.0, prev, out_tpos, 0);
                buf.extend_from_slice(&new_back.to_be_bytes());
            } else if let Some(d) = data {
                record_header(&mut buf, r.oid.0, r.tid.0, prev, out_tpos, d.len() as u64);
                buf.extend_from_slice(d);
            } else {
                record_header(&mut buf, r.oid.0, r.tid.0, prev, out_tpos, 0);
                buf.extend_from_slice(&[0; 8]);
            }
            txn_index.push((oid, here));
        }
        let tlen = buf.len() as u64;
        if tlen != t.tlen() {
            return Err(PackError::Corrupt {
                path: fs.path().to_path_buf(),
                offset: t.pos(),
                what: format!(
                    "copied transaction has length {tlen}, the original {}",
                    t.tlen()
                ),
            });
        }
        buf.extend_from_slice(&tlen.to_be_bytes());
        out.write(&buf)?;
        index.tids.push((t.tid(), out_tpos));
        for &(o, p) in &txn_index {
            index.recent.insert(o, p);
        }
        index.fold_if_large();
        progress.advance(t.tlen() + 8);
        if it.pos() - last_release > BATCH_BYTES {
            crate::interrupt::check(interrupt)?;
            // Backpointers read pages anywhere before this point: hand them all back.
            stream.advance(fs.bytes(), it.pos());
            fs.release(0, it.pos());
            last_release = it.pos();
        }
    }
    Ok(())
}

/// The oid and tid of the record at `pos`.
struct Target {
    oid: Oid,
    tid: Tid,
}

/// Reads the oid and tid of the data record at `pos` with a positioned read.
fn read_oid_tid<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    f: &File,
    pos: u64,
) -> Result<(Oid, Tid)> {
    use std::os::unix::fs::FileExt;
    let mut h = [0u8; 16];
    f.read_exact_at(&mut h, pos)
        .map_err(|e| PackError::io(fs.path(), e))?;
    Ok((
        Oid(h[..8].try_into().expect("8 bytes")),
        Tid(h[8..].try_into().expect("8 bytes")),
    ))
}

/// ZODB's `PackCopier._data_find`: the first record of `oid` in the output transaction at
/// `tpos`; its position if it is a backpointer or holds exactly `data`, else 0.
fn data_find(out: &mut Out, tpos: u64, oid: [u8; 8], data: Option<&[u8]>) -> Result<u64> {
    let h = out.read_back(tpos, TXN_HEADER_LEN as usize)?;
    let tlen = u64::from_be_bytes(h[8..16].try_into().expect("8 bytes"));
    let hlen = TXN_HEADER_LEN
        + u64::from(u16::from_be_bytes([h[17], h[18]]))
        + u64::from(u16::from_be_bytes([h[19], h[20]]))
        + u64::from(u16::from_be_bytes([h[21], h[22]]));
    let tend = tpos + tlen;
    let mut pos = tpos + hlen;
    while pos < tend {
        let d = out.read_back(pos, DATA_HEADER_LEN as usize)?;
        let plen = u64::from_be_bytes(d[34..42].try_into().expect("8 bytes"));
        if d[..8] == oid {
            if plen == 0 {
                return Ok(pos);
            }
            // A chain ending in "does not exist" against a record with data: ZODB fails
            // (TypeError); we write a zero backpointer.
            let Some(data) = data else { return Ok(0) };
            if plen != data.len() as u64 {
                return Ok(0);
            }
            let got = out.read_back(pos + DATA_HEADER_LEN, data.len())?;
            return Ok(if got == data { pos } else { 0 });
        }
        pos += DATA_HEADER_LEN + if plen == 0 { 8 } else { plen };
    }
    Ok(0)
}
