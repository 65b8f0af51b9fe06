//! `fsdump`'s text: every transaction and record, as ZODB's `fsdump` prints them.
//!
//! Iteration follows ZODB's `FileIterator`: it stops quietly at a torn or uncommitted tail,
//! and where ZODB logs damage and ends the iteration (a redundant length that does not
//! match, a record that overruns its transaction) we end it too and return the problem, so
//! the caller can say it on stderr. Backpointers are resolved for the size and class; the
//! `bp=` field is the tid of the record the backpointer names directly.

use std::io::Write;
use std::ops::Deref;

use zfs_format::pickle::class_name;
use zfs_format::repr::{bytes_repr, str_repr_latin1};
use zfs_format::timestamp::TimeStamp;
use zfs_format::{Error, FileStorage, Payload};

/// What a dump saw.
#[derive(Debug, Default)]
pub struct DumpOutcome {
    /// Transactions printed.
    pub transactions: u64,
    /// Records printed.
    pub records: u64,
    /// The damage that ended the dump early, if any (ZODB logs it as a warning).
    pub stopped_by: Option<Error>,
}

fn out_err(e: std::io::Error) -> Error {
    Error::io("<output>", e)
}

/// Writes fsdump's text for `fs` to `out`.
pub fn dump<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    out: &mut dyn Write,
) -> Result<DumpOutcome, Error> {
    let mode = fs.magic().string_mode();
    let mut outcome = DumpOutcome::default();
    for (i, txn) in fs.transactions().enumerate() {
        let txn = match txn {
            Ok(t) => t,
            Err(e) => {
                outcome.stopped_by = Some(e);
                break;
            }
        };
        writeln!(
            out,
            "Trans #{i:05} tid={} size={} time={} offset={}",
            txn.tid(),
            txn.tlen(),
            TimeStamp::from_bytes(txn.tid().0),
            txn.records_start()
        )
        .map_err(out_err)?;
        writeln!(
            out,
            "    status={} user={} description={}",
            str_repr_latin1(&[txn.status().byte()]),
            bytes_repr(txn.user),
            bytes_repr(txn.description)
        )
        .map_err(out_err)?;
        outcome.transactions += 1;
        for (j, rec) in txn.records().enumerate() {
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    outcome.stopped_by = Some(e);
                    break;
                }
            };
            let resolved = match fs.resolve(&rec) {
                Ok(r) => r,
                Err(e) => {
                    outcome.stopped_by = Some(e);
                    return Ok(outcome);
                }
            };
            let (size, class) = match resolved.and_then(|r| r.data()) {
                Some(data) => (
                    format!(" size={}", data.len()),
                    class_name(data, mode).to_string(),
                ),
                None => (
                    String::new(),
                    "undo or abort of object creation".to_string(),
                ),
            };
            let bp = match rec.payload {
                Payload::Backpointer(back) if back != 0 => match fs.record_at(back) {
                    Ok(target) if target.oid == rec.oid => format!(" bp={}", target.tid),
                    _ => {
                        outcome.stopped_by = Some(Error::BadBackpointer {
                            offset: rec.pos,
                            oid: rec.oid,
                            back,
                            why: "target is not a record of the same oid",
                        });
                        return Ok(outcome);
                    }
                },
                _ => String::new(),
            };
            writeln!(
                out,
                "  data #{j:05} oid={}{size} class={class}{bp}",
                rec.oid
            )
            .map_err(out_err)?;
            outcome.records += 1;
        }
        if outcome.stopped_by.is_some() {
            break;
        }
    }
    Ok(outcome)
}
