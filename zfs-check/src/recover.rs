//! `recover`: copy what can be read from a damaged file into a new one (ZODB's `fsrecover`),
//! and say exactly what was lost, with offsets.
//!
//! The output is written as ZODB's `FileStorage.restore` writes it, so an undamaged input is
//! copied byte for byte: same headers and strings, each record's own serial, `prev` = the
//! oid's current record in the output, `tloc` = the output transaction, and a backpointer
//! record rewritten to point at the output record of the transaction whose tid the input's
//! backpointer target carries (when that record holds the same data or is itself a
//! backpointer); otherwise the data is written in full.
//!
//! Differences from `fsrecover`, all on damaged input: a damaged region is skipped by
//! searching for the next plausible transaction header (its length repeated after it, its
//! first record naming it), not by `fsrecover`'s guess after a `.` byte; a record that
//! cannot be read ends its transaction as in `fsrecover`, but the loss is reported; a
//! backpointer whose target transaction is not in the output gets its data written in full
//! (ZODB raises there); a transaction whose tid is below the previous one is kept and
//! re-timed (fsrecover drops it when the tid is strictly lower): to its records' common
//! serial when they agree on one above the previous tid (the header's tid was what was
//! damaged), otherwise to the next tid after the previous one, as fsrecover does; its
//! records' serials follow (fsrecover keeps the old ones, which `check` reports). `FS21`
//! files are accepted and keep their magic.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;

use zfs_format::record::DATA_HEADER_LEN;
use zfs_format::txn::{RawTxnHeader, Status};
use zfs_format::{Oid, Progress, Tid, FIRST_TXN};

/// Why recovery could not run.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The input does not start with `FS30` or `FS21`.
    #[error("the input is not a FileStorage file (magic {0})")]
    NotAFileStorage(String),
    /// Writing or reading back the output failed.
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
}

/// A stretch of the input that did not make it into the output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loss {
    /// First byte lost.
    pub offset: u64,
    /// Number of bytes lost.
    pub len: u64,
    /// Why.
    pub why: String,
}

/// What recovery did.
#[derive(Clone, Debug, Default)]
pub struct RecoverReport {
    /// Transactions written.
    pub transactions: u64,
    /// Data records written.
    pub records: u64,
    /// Bytes of the output.
    pub output_len: u64,
    /// Bytes of `u` (undone) transactions skipped, as `fsrecover` skips them.
    pub undone_bytes: u64,
    /// Input bytes neither copied nor skipped as undone: `fsrecover`'s "bytes removed".
    pub removed_bytes: u64,
    /// Where an unfinished (`c`) transaction starts, if one was found; the input from there to
    /// its end was not copied (`fsrecover` saves it to `OUTPUT.trN`).
    pub checkpoint_at: Option<u64>,
    /// Transactions whose tid was not above the previous one: (input position, old tid, new tid).
    pub retimed: Vec<(u64, Tid, Tid)>,
    /// Everything lost, in input order.
    pub losses: Vec<Loss>,
}

impl RecoverReport {
    /// True when everything was copied unchanged: nothing lost, no tid rewritten.
    pub fn is_complete(&self) -> bool {
        self.losses.is_empty() && self.checkpoint_at.is_none() && self.retimed.is_empty()
    }
}

fn u64_at(file: &[u8], pos: u64) -> Option<u64> {
    let at = usize::try_from(pos).ok()?;
    let b: [u8; 8] = file.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// A record read from the input for copying.
struct InRecord<'a> {
    oid: Oid,
    serial: Tid,
    /// The resolved state: `None` when the object does not exist.
    data: Option<&'a [u8]>,
    /// For a backpointer record: the serial of the record it points at.
    data_txn: Option<Tid>,
}

struct Output<'f> {
    w: BufWriter<&'f File>,
    file: &'f File,
    pos: u64,
    /// oid → position of its current record in the output.
    current: HashMap<Oid, u64>,
    /// tid → position of the (last) output transaction with that tid.
    txns: HashMap<Tid, u64>,
}

impl Output<'_> {
    /// `FileStorage._data_find`: the output record of `oid` in the transaction at `tpos` that a
    /// backpointer may use, or 0.
    fn data_find(&mut self, tpos: u64, oid: Oid, data: Option<&[u8]>) -> std::io::Result<u64> {
        self.w.flush()?;
        let mut h = [0u8; 23];
        self.file.read_exact_at(&mut h, tpos)?;
        let Some(th) = RawTxnHeader::decode(&h, 0) else {
            return Ok(0);
        };
        let tend = tpos + th.tlen;
        let mut pos = tpos + th.header_len();
        let mut found: Option<(u64, u64)> = None;
        let mut rh = [0u8; DATA_HEADER_LEN as usize];
        while pos < tend {
            self.file.read_exact_at(&mut rh, pos)?;
            let plen = u64_at(&rh, 34).unwrap_or(0);
            if rh[..8] == oid.0 {
                found = Some((pos, plen));
            }
            pos += DATA_HEADER_LEN + if plen == 0 { 8 } else { plen };
        }
        let Some((dpos, plen)) = found else {
            return Ok(0);
        };
        if plen == 0 {
            return Ok(dpos);
        }
        let Some(data) = data else { return Ok(0) };
        if plen != data.len() as u64 {
            return Ok(0);
        }
        let mut buf = vec![0u8; data.len()];
        self.file.read_exact_at(&mut buf, dpos + DATA_HEADER_LEN)?;
        Ok(if buf == data { dpos } else { 0 })
    }

    /// Writes one transaction (ZODB's `tpc_begin` + `restore`s + `tpc_finish`).
    fn transaction(
        &mut self,
        tid: Tid,
        status: Status,
        strings: [&[u8]; 3],
        recs: &[InRecord<'_>],
    ) -> std::io::Result<u64> {
        let tpos = self.pos;
        let hlen = 23 + strings.iter().map(|s| s.len() as u64).sum::<u64>();
        // Decide each record's form first: a backpointer's target must be found in the
        // output as it was before this transaction.
        let mut body: Vec<u8> = Vec::new();
        let mut updates = Vec::with_capacity(recs.len());
        for r in recs {
            let mut prev_pos = 0;
            if let Some(dt) = r.data_txn {
                if let Some(&ptpos) = self.txns.get(&dt) {
                    prev_pos = self.data_find(ptpos, r.oid, r.data)?;
                }
            }
            let here = tpos + hlen + body.len() as u64;
            let old = self.current.get(&r.oid).copied().unwrap_or(0);
            body.extend_from_slice(&r.oid.0);
            body.extend_from_slice(&r.serial.0);
            body.extend_from_slice(&old.to_be_bytes());
            body.extend_from_slice(&tpos.to_be_bytes());
            body.extend_from_slice(&0u16.to_be_bytes());
            match (prev_pos, r.data) {
                (0, Some(d)) => {
                    body.extend_from_slice(&(d.len() as u64).to_be_bytes());
                    body.extend_from_slice(d);
                }
                (back, _) => {
                    body.extend_from_slice(&0u64.to_be_bytes());
                    body.extend_from_slice(&back.to_be_bytes());
                }
            }
            updates.push((r.oid, here));
        }
        let tlen = hlen + body.len() as u64;
        self.w.write_all(&tid.0)?;
        self.w.write_all(&tlen.to_be_bytes())?;
        self.w.write_all(&[status.byte()])?;
        for s in strings {
            self.w.write_all(&(s.len() as u16).to_be_bytes())?;
        }
        for s in strings {
            self.w.write_all(s)?;
        }
        self.w.write_all(&body)?;
        self.w.write_all(&tlen.to_be_bytes())?;
        for (oid, here) in updates {
            self.current.insert(oid, here);
        }
        self.txns.insert(tid, tpos);
        self.pos += tlen + 8;
        Ok(tpos)
    }
}

/// Is there a plausible transaction header at `q`? (The same test `check` resyncs with.)
fn plausible(file: &[u8], q: u64) -> bool {
    let Some(h) = RawTxnHeader::decode(file, q) else {
        return false;
    };
    if !matches!(
        h.status,
        Status::Committed | Status::Packed | Status::Undone | Status::Checkpoint
    ) {
        return false;
    }
    if h.tlen < h.header_len() || h.next_pos().is_none_or(|n| n > file.len() as u64) {
        return false;
    }
    if u64_at(file, q + h.tlen) != Some(h.tlen) {
        return false;
    }
    let first = q + h.header_len();
    first >= q + h.tlen || u64_at(file, first + 24) == Some(q)
}

fn resync(file: &[u8], from: u64) -> Option<u64> {
    let last = (file.len() as u64).checked_sub(23)?;
    (from..=last).find(|&q| {
        matches!(file.get(q as usize + 16), Some(b' ' | b'p' | b'u' | b'c')) && plausible(file, q)
    })
}

/// Follows a backpointer chain in the input: the data, or `None` for "does not exist";
/// `Err` when a link is bad.
fn resolve(file: &[u8], oid: Oid, mut back: u64, from: u64) -> Result<Option<&[u8]>, String> {
    let mut cur = from;
    loop {
        if back == 0 {
            return Ok(None);
        }
        if back >= cur || back < FIRST_TXN {
            return Err(format!(
                "backpointer {back} of the record at {cur} does not point backwards"
            ));
        }
        let r = zfs_format::DataRecord::decode(file, back).map_err(|e| e.to_string())?;
        if r.oid != oid {
            return Err(format!(
                "backpointer {back} of the record at {cur} points to a record of another oid"
            ));
        }
        match r.payload {
            zfs_format::Payload::Data(d) => return Ok(Some(d)),
            zfs_format::Payload::Backpointer(b) => {
                cur = back;
                back = b;
            }
        }
    }
}

/// Copies the readable part of `input` (a whole file's bytes) into `out`, which must be
/// empty and open for reading and writing.
pub fn recover(
    input: &[u8],
    out: &File,
    progress: &dyn Progress,
) -> Result<RecoverReport, RecoverError> {
    let magic = input.get(..4).unwrap_or(input);
    if magic != b"FS30" && magic != b"FS21" {
        return Err(RecoverError::NotAFileStorage(
            zfs_format::repr::escape_bytes(magic),
        ));
    }
    let len = input.len() as u64;
    progress.start("recovering", len);
    let mut o = Output {
        w: BufWriter::with_capacity(1 << 20, out),
        file: out,
        pos: 4,
        current: HashMap::new(),
        txns: HashMap::new(),
    };
    o.w.write_all(magic)?;
    let mut rep = RecoverReport::default();
    let mut pos = FIRST_TXN;
    let mut last_tid: Option<Tid> = None;
    let mut reported = 0;
    while pos < len {
        if pos - reported >= 1 << 20 {
            progress.advance(pos - reported);
            reported = pos;
        }
        let h = match RawTxnHeader::decode(input, pos) {
            Some(h) => h,
            None => {
                rep.losses.push(Loss {
                    offset: pos,
                    len: len - pos,
                    why: "too short for a transaction header".into(),
                });
                break;
            }
        };
        let problem = if h.next_pos().is_none_or(|n| n > len) {
            Some(format!(
                "transaction length {} runs past the end of the file",
                h.tlen
            ))
        } else if h.tlen < h.header_len() {
            Some(format!(
                "transaction length {} is shorter than its header",
                h.tlen
            ))
        } else if u64_at(input, pos + h.tlen) != Some(h.tlen) {
            Some(format!(
                "redundant length at {} does not repeat the length {}",
                pos + h.tlen,
                h.tlen
            ))
        } else {
            match h.status {
                Status::Committed | Status::Packed | Status::Undone | Status::Checkpoint => None,
                Status::Other(b) => Some(format!(
                    "invalid status {}",
                    zfs_format::repr::bytes_repr(&[b])
                )),
            }
        };
        if let Some(why) = problem {
            let next = resync(input, pos + 1);
            let end = next.unwrap_or(len);
            rep.losses.push(Loss {
                offset: pos,
                len: end - pos,
                why: format!(
                    "damaged transaction at {pos}: {why}; skipped to {}",
                    if next.is_some() {
                        format!("the next readable transaction at {end}")
                    } else {
                        "the end of the file".into()
                    }
                ),
            });
            match next {
                Some(q) => {
                    pos = q;
                    continue;
                }
                None => break,
            }
        }
        let next = pos + h.tlen + 8;
        match h.status {
            Status::Checkpoint => {
                rep.checkpoint_at = Some(pos);
                break;
            }
            Status::Undone => {
                rep.undone_bytes += next - pos;
                pos = next;
                continue;
            }
            _ => {}
        }
        let hlen = h.header_len();
        let s = (pos + 23) as usize;
        let (ul, dl, el) = (
            usize::from(h.ulen),
            usize::from(h.dlen),
            usize::from(h.elen),
        );
        // In bounds: the transaction fits in the file and its length covers its header.
        let field = |a: usize, b: usize| input.get(a..b).unwrap_or_default();
        let strings = [
            field(s, s + ul),
            field(s + ul, s + ul + dl),
            field(s + ul + dl, s + ul + dl + el),
        ];
        // Records: stop at the first that cannot be read, as ZODB's iterator does.
        let tend = pos + h.tlen;
        let mut recs = Vec::new();
        let mut p = pos + hlen;
        while p < tend {
            let rec = match zfs_format::DataRecord::decode_in_txn(input, p, pos, tend) {
                Ok(r) => r,
                Err(e) => {
                    rep.losses.push(Loss {
                        offset: p,
                        len: tend - p,
                        why: format!("unreadable data record in the transaction at {pos} ({e}); the rest of the transaction is lost"),
                    });
                    break;
                }
            };
            let (data, data_txn) = match rec.payload {
                zfs_format::Payload::Data(d) => (Some(d), None),
                zfs_format::Payload::Backpointer(0) => (None, None),
                zfs_format::Payload::Backpointer(b) => match resolve(input, rec.oid, b, p) {
                    Ok(d) => (
                        d,
                        zfs_format::DataRecord::decode(input, b).ok().map(|t| t.tid),
                    ),
                    Err(why) => {
                        rep.losses.push(Loss {
                            offset: p,
                            len: tend - p,
                            why: format!("data record of oid {} in the transaction at {pos}: {why}; the rest of the transaction is lost", rec.oid),
                        });
                        break;
                    }
                },
            };
            recs.push(InRecord {
                oid: rec.oid,
                serial: rec.tid,
                data,
                data_txn,
            });
            p += rec.len();
        }
        // Transaction ids must increase: a reduction is repaired as fsrecover does (the next
        // tid after the previous one). Unlike fsrecover, the records' serials follow, so the
        // output passes `check`.
        let mut tid = h.tid;
        if let Some(lt) = last_tid {
            if tid <= lt {
                // When the header's tid is what was damaged, the records still carry the
                // true one: use it if they agree on one that is in order.
                let common = recs
                    .first()
                    .map(|r| r.serial)
                    .filter(|s| recs.iter().all(|r| r.serial == *s));
                let new = match common.filter(|s| *s > lt) {
                    Some(s) => s,
                    None => Tid::from_u64(lt.as_u64().saturating_add(1)),
                };
                rep.retimed.push((pos, tid, new));
                tid = new;
                for r in &mut recs {
                    r.serial = new;
                }
            }
        }
        last_tid = Some(tid);
        o.transaction(tid, h.status, strings, &recs)?;
        rep.transactions += 1;
        rep.records += recs.len() as u64;
        pos = next;
    }
    o.w.flush()?;
    progress.advance(len.saturating_sub(reported));
    rep.output_len = o.pos;
    rep.removed_bytes = len.saturating_sub(rep.undone_bytes).saturating_sub(o.pos);
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zfs_format::NoProgress;

    const BASE: &[u8] = include_bytes!("../tests/fixtures/base.fs");

    fn recovered(input: &[u8]) -> (RecoverReport, Vec<u8>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.fs");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("create");
        let r = recover(input, &f, &NoProgress).expect("recover");
        (r, std::fs::read(&path).expect("read back"))
    }

    fn edited(at: usize, bytes: &[u8]) -> Vec<u8> {
        let mut v = BASE.to_vec();
        v[at..at + bytes.len()].copy_from_slice(bytes);
        v
    }

    #[test]
    fn undamaged_is_identical() {
        // fsrecover's output for base.fs is base.fs itself.
        let (r, out) = recovered(BASE);
        assert_eq!(out, BASE);
        assert!(r.is_complete());
        assert_eq!((r.transactions, r.records, r.removed_bytes), (15, 28, 0));
        let mut fs21 = BASE.to_vec();
        fs21[..4].copy_from_slice(b"FS21");
        assert_eq!(recovered(&fs21).1, fs21);
    }

    #[test]
    fn record_damage_as_fsrecover() {
        // A bad tloc at 4009: fsrecover keeps the records before it in that transaction.
        let (r, out) = recovered(&edited(4009 + 24, &3830u64.to_be_bytes()));
        assert_eq!(out, include_bytes!("../tests/fixtures/fsrecover_tloc.fs"));
        assert_eq!(r.removed_bytes, 117); // fsrecover: "117 bytes removed during recovery"
        assert_eq!(r.losses.len(), 1);
        assert_eq!(r.losses[0].offset, 4009);
    }

    #[test]
    fn header_damage_as_fsrecover() {
        // A bad redundant length at 1475: the transaction at 1113 is dropped.
        let (r, out) = recovered(&edited(1475, &363u64.to_be_bytes()));
        assert_eq!(out, include_bytes!("../tests/fixtures/fsrecover_rtl.fs"));
        assert_eq!(r.losses[0].offset, 1113);
        assert!(!r.is_complete());
    }

    #[test]
    fn damaged_tid_is_restored_from_serials() {
        // The tid of the transaction at 1113 overwritten by its predecessor's (770): fsrecover
        // re-times it to the previous tid + 1 and keeps the records' serials; the records
        // agree on the true tid, so we write it back and get the original file.
        let mut v = BASE.to_vec();
        let prev: Vec<u8> = BASE[770..778].to_vec();
        v[1113..1121].copy_from_slice(&prev);
        let (r, out) = recovered(&v);
        assert_eq!(out, BASE);
        assert_eq!(r.retimed.len(), 1);
        assert!(!r.is_complete());
    }

    #[test]
    fn checkpoint_stops() {
        let (r, out) = recovered(&edited(1113 + 16, b"c"));
        assert_eq!(out, &BASE[..1113]);
        assert_eq!(r.checkpoint_at, Some(1113));
    }

    #[test]
    fn not_a_file_storage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = File::create(dir.path().join("x")).expect("create");
        assert!(matches!(
            recover(b"XXXX", &f, &NoProgress),
            Err(RecoverError::NotAFileStorage(_))
        ));
    }
}
