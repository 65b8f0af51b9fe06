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
//! A backpointer is re-pointed as `FileStorage._data_find` does
//! (`zfs_format::writer::data_find` with `FindRule::Last`): when the target transaction
//! holds the oid twice, its last record decides, as in `fsrecover`.
//!
//! Differences from `fsrecover`, all on damaged input: a damaged region is skipped by
//! searching for the next plausible transaction header (`zfs_format::resync`: its length
//! repeated after it, its first record naming it and fitting in it), not by `fsrecover`'s
//! guess after a `.` byte; a record that
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

use zfs_format::chain::{self, ChainError, ChainRules};
use zfs_format::resync::resync;
use zfs_format::txn::{RawTxnHeader, Status};
use zfs_format::writer::{data_find, FindRule, TxnBuilder};
use zfs_format::{DataRecord, Oid, Payload, Progress, Tid, FIRST_TXN};

/// Why recovery could not run.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The input does not start with `FS30` or `FS21`.
    #[error("the input is not a FileStorage file (magic {0})")]
    NotAFileStorage(String),
    /// Writing or reading back the output failed.
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
    /// The run context said to stop (Ctrl-C); the output is incomplete and must not be kept.
    #[error("interrupted")]
    Interrupted,
}

/// A stretch of the input that did not make it into the output.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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
    #[cfg_attr(feature = "serde", serde(serialize_with = "retimed_json"))]
    pub retimed: Vec<(u64, Tid, Tid)>,
    /// Everything lost, in input order.
    pub losses: Vec<Loss>,
}

/// Retimed transactions as `[{"offset", "tid", "new_tid"}]`.
#[cfg(feature = "serde")]
fn retimed_json<S: serde::Serializer>(v: &[(u64, Tid, Tid)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::{SerializeMap as _, SerializeSeq as _};
    struct One<'a>(&'a (u64, Tid, Tid));
    impl serde::Serialize for One<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(Some(3))?;
            m.serialize_entry("offset", &self.0 .0)?;
            m.serialize_entry("tid", &self.0 .1)?;
            m.serialize_entry("new_tid", &self.0 .2)?;
            m.end()
        }
    }
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for r in v {
        seq.serialize_element(&One(r))?;
    }
    seq.end()
}

impl RecoverReport {
    /// True when everything was copied unchanged: nothing lost, no tid rewritten.
    pub fn is_complete(&self) -> bool {
        self.losses.is_empty() && self.checkpoint_at.is_none() && self.retimed.is_empty()
    }
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
    /// `FileStorage._data_find` on the output: the output record of `oid` in the
    /// transaction at `tpos` that a backpointer may use, or 0.
    fn prev_pos(&mut self, tpos: u64, oid: Oid, data: Option<&[u8]>) -> std::io::Result<u64> {
        self.w.flush()?;
        let file = self.file;
        let read_at = |buf: &mut [u8], pos| file.read_exact_at(buf, pos);
        data_find(read_at, tpos, oid, data, FindRule::Last)
    }

    /// Writes one transaction (ZODB's `tpc_begin` + `restore`s + `tpc_finish`).
    fn transaction(
        &mut self,
        tid: Tid,
        status: Status,
        [user, description, extension]: [&[u8]; 3],
        recs: &[InRecord<'_>],
    ) -> std::io::Result<u64> {
        let tpos = self.pos;
        let mut txn = TxnBuilder::new(tpos, tid, status, user, description, extension)
            .expect("strings read through 16-bit lengths fit them");
        // Decide each record's form first: a backpointer's target must be found in the
        // output as it was before this transaction.
        let mut updates = Vec::with_capacity(recs.len());
        for r in recs {
            let mut prev_pos = 0;
            if let Some(dt) = r.data_txn {
                if let Some(&ptpos) = self.txns.get(&dt) {
                    prev_pos = self.prev_pos(ptpos, r.oid, r.data)?;
                }
            }
            let old = self.current.get(&r.oid).copied().unwrap_or(0);
            let payload = match (prev_pos, r.data) {
                (0, Some(d)) => Payload::Data(d),
                (back, _) => Payload::Backpointer(back),
            };
            let here = txn.record(r.oid, r.serial, old, payload);
            updates.push((r.oid, here));
        }
        let bytes = txn.finish();
        self.w.write_all(&bytes)?;
        for (oid, here) in updates {
            self.current.insert(oid, here);
        }
        self.txns.insert(tid, tpos);
        self.pos += bytes.len() as u64;
        Ok(tpos)
    }
}

/// The state of the backpointer record `rec` of the input: its data, or `None` for "does
/// not exist"; `Err` when a link of its chain is bad.
fn state_of<'a>(input: &'a [u8], rec: DataRecord<'a>) -> Result<Option<&'a [u8]>, String> {
    match chain::resolve_from(&mut &input[..], rec.pos, rec, ChainRules::SAME_OID) {
        Ok(found) => Ok(found.and_then(|r| r.data())),
        Err(ChainError::NotBackwards { at, back }) => Err(format!(
            "backpointer {back} of the record at {at} does not point backwards"
        )),
        Err(ChainError::OtherOid { at, back, .. }) => Err(format!(
            "backpointer {back} of the record at {at} points to a record of another oid"
        )),
        Err(ChainError::Unreadable { source, .. }) => Err(source.to_string()),
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
        if progress.interrupted() {
            return Err(RecoverError::Interrupted);
        }
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
        } else if h.redundant_len(input) != Some(h.tlen) {
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
            let next = resync(input, pos + 1, None);
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
        // In bounds: the transaction fits in the file and its length covers its header.
        let strings = h.strings(input).unwrap_or_default();
        // Records: stop at the first that cannot be read, as ZODB's iterator does.
        let tend = pos + h.tlen;
        let mut recs = Vec::new();
        let mut p = pos + hlen;
        while p < tend {
            let rec = match DataRecord::decode_in_txn(input, p, pos, tend) {
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
                Payload::Data(d) => (Some(d), None),
                Payload::Backpointer(0) => (None, None),
                Payload::Backpointer(b) => match state_of(input, rec) {
                    Ok(d) => (d, DataRecord::decode(input, b).ok().map(|t| t.tid)),
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

    const BASE: &[u8] = include_bytes!("../../testdata/fixtures/check/base.fs");

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
        assert_eq!(
            out,
            include_bytes!("../../testdata/fixtures/check/fsrecover_tloc.fs")
        );
        assert_eq!(r.removed_bytes, 117); // fsrecover: "117 bytes removed during recovery"
        assert_eq!(r.losses.len(), 1);
        assert_eq!(r.losses[0].offset, 4009);
    }

    #[test]
    fn header_damage_as_fsrecover() {
        // A bad redundant length at 1475: the transaction at 1113 is dropped.
        let (r, out) = recovered(&edited(1475, &363u64.to_be_bytes()));
        assert_eq!(
            out,
            include_bytes!("../../testdata/fixtures/check/fsrecover_rtl.fs")
        );
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

    /// A file whose first transaction holds oid 1 twice (`first`, then `second`), and whose
    /// second transaction has a backpointer of oid 1 to the record `target` (0: the first,
    /// 1: the second) or, with `inline`, that record's data in full.
    fn oid_twice(first: &[u8], second: &[u8], target: usize, inline: bool) -> (Vec<u8>, u64) {
        use zfs_format::writer::FileBuilder;
        let mut f = FileBuilder::new(*b"FS30");
        let mut t = f
            .txn(
                Tid::from_u64(0x03d0_0000_0000_0001),
                Status::Committed,
                b"",
                b"",
                b"",
            )
            .expect("short strings");
        t.data(Oid::from_u64(0), 0, b"root");
        let recs = [
            t.data(Oid::from_u64(1), 0, first),
            t.data(Oid::from_u64(1), 0, second),
        ];
        f.push(t);
        let mut t = f
            .txn(
                Tid::from_u64(0x03d0_0000_0000_0002),
                Status::Committed,
                b"",
                b"",
                b"",
            )
            .expect("short strings");
        let at = if inline {
            t.data(Oid::from_u64(1), recs[1], [first, second][target])
        } else {
            t.backpointer(Oid::from_u64(1), recs[1], recs[target])
        };
        f.push(t);
        (f.into_bytes(), at)
    }

    /// `FileStorage._data_find` looks at the last record of the oid in the target
    /// transaction (the packer's looks at the first): what `fsrecover` of ZODB 6.4 writes.
    #[test]
    fn oid_twice_in_a_transaction_as_fsrecover() {
        // The backpointer targets the second record, the last of the oid: fsrecover
        // writes the backpointer again, and its output is the input.
        let (input, at) = oid_twice(b"aaa", b"bbb", 1, false);
        let (r, out) = recovered(&input);
        assert!(r.is_complete());
        assert_eq!(out, input);
        let rec = DataRecord::decode(&out, at).expect("record");
        assert!(rec.backpointer().is_some_and(|b| b != 0));
        // The backpointer targets the first record, whose data differs from the last's:
        // fsrecover writes the data in full (3 bytes of pickle where the 8-byte pointer
        // was: 5 bytes fewer, counted as removed).
        let (input, _) = oid_twice(b"bbb", b"aaa", 0, false);
        let (want, _) = oid_twice(b"bbb", b"aaa", 0, true);
        let (r, out) = recovered(&input);
        assert_eq!(out, want);
        assert_eq!(r.removed_bytes, 5);
    }

    #[test]
    fn checkpoint_stops() {
        let (r, out) = recovered(&edited(1113 + 16, b"c"));
        assert_eq!(out, &BASE[..1113]);
        assert_eq!(r.checkpoint_at, Some(1113));
    }

    #[test]
    fn an_interrupted_run_context_stops_recovery() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = File::create(dir.path().join("x")).expect("create");
        let flag = std::sync::atomic::AtomicBool::new(true);
        let run = zfs_format::Interruptible {
            progress: &NoProgress,
            flag: &flag,
        };
        assert!(matches!(
            recover(BASE, &f, &run),
            Err(RecoverError::Interrupted)
        ));
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
