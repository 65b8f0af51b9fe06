//! A RelStorage database back into a FileStorage, as `zodbconvert` writes one.
//!
//! zodbconvert with a FileStorage destination copies RelStorage's transaction iterator:
//! history-preserving, every `transaction` row from tid 1 up in tid order, with its user,
//! description and extension bytes and status `p` when packed, `' '` otherwise;
//! history-free, one packed transaction without metadata per distinct tid of
//! `object_state`. Each transaction holds its objects' states in oid order, written by
//! `FileStorage.restore` without backpointers: a state as a data record, a NULL state as a
//! record with backpointer 0; each record's `prev` is the oid's previous record in the new
//! file. Blob records get their large object written into the new blob directory (bushy
//! layout).

use std::fs;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use postgres::Client;
use zfs_files::OutputSpec;
use zfs_format::blob::{self, Layout};
use zfs_format::writer::TxnBuilder;
use zfs_format::{Oid, Progress, Status, Tid};

use crate::blobs;
use crate::db;
use crate::error::{ConvertError, DbContext, Result};
use crate::manifest;
use crate::oidtable::OidTable;
use crate::schema::{self, Mode};

/// How to export.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// Where to write the blob files (a new or empty directory).
    pub blobs_to: Option<PathBuf>,
}

/// What an export wrote.
#[derive(Clone, Debug, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ExportReport {
    /// The database's mode.
    pub mode: Option<Mode>,
    /// Transactions written.
    pub transactions: u64,
    /// Data records written.
    pub records: u64,
    /// Size of the new file.
    pub bytes: u64,
    /// Blob files written.
    pub blobs: u64,
    /// Blob records whose large object was missing (written without a blob file, as
    /// zodbconvert does).
    pub missing_blobs: u64,
}

struct TxnMeta {
    tid: u64,
    user: Vec<u8>,
    description: Vec<u8>,
    extension: Vec<u8>,
    packed: bool,
}

/// Writes the RelStorage database at `url` into a new FileStorage at `out` (which must not
/// exist; the file appears there only once complete).
pub fn export(
    url: &str,
    out: &Path,
    opts: &ExportOptions,
    progress: &dyn Progress,
) -> Result<ExportReport> {
    let mut c = db::connect(url)?;
    let mode = schema::inspect(&mut c, None)?.mode;
    if manifest::exists(&mut c)? {
        return Err(ConvertError::BadData(
            "the database holds an unfinished conversion (its manifest table is there); \
             finish it with zodbfs convert first"
                .into(),
        ));
    }
    let mut blob_c = db::connect(url)?;
    let txns = transactions(&mut c, mode)?;
    let mut report = ExportReport {
        mode: Some(mode),
        ..ExportReport::default()
    };
    if let Some(d) = &opts.blobs_to {
        prepare_blob_dir(d)?;
    }
    let mut output = OutputSpec::new(out).replace(false).create()?;
    let written = (|| -> Result<u64> {
        let mut w = BufWriter::with_capacity(1 << 20, &mut output);
        let io = |e| ConvertError::io(out, e);
        w.write_all(b"FS30").map_err(io)?;
        let mut pos = 4u64;
        let mut prev = OidTable::default();
        progress.start_counting("exporting", txns.len() as u64, "transactions");
        let sql = "COPY (SELECT tid, zoid, state FROM object_state WHERE tid >= 1 \
                   ORDER BY tid, zoid) TO STDOUT (FORMAT binary)";
        let reader = c.copy_out(sql).db(|| "reading object_state".into())?;
        let mut rows = CopyRows::new(BufReader::with_capacity(1 << 20, reader))?;
        let mut next = rows.next_row()?;
        for t in &txns {
            if progress.interrupted() {
                return Err(ConvertError::Interrupted);
            }
            let status = if t.packed {
                Status::Packed
            } else {
                Status::Committed
            };
            let mut b = TxnBuilder::new(
                pos,
                Tid::from_u64(t.tid),
                status,
                &t.user,
                &t.description,
                &t.extension,
            )
            .map_err(|e| ConvertError::BadData(format!("transaction {:016x}: {e}", t.tid)))?;
            let mut placed = Vec::new();
            while let Some(row) = next.as_ref().filter(|r| r.tid <= t.tid) {
                if row.tid < t.tid {
                    return Err(ConvertError::BadData(format!(
                        "object_state has a row of oid {} at tid {:016x}, which no \
                         transaction row has",
                        row.zoid, row.tid
                    )));
                }
                let oid = Oid::from_u64(row.zoid);
                let p = prev.get(row.zoid);
                let at = match &row.state {
                    Some(s) if s.is_empty() => {
                        return Err(ConvertError::BadData(format!(
                            "object_state row ({}, {:016x}) holds an empty state, which a \
                             FileStorage cannot store",
                            row.zoid, row.tid
                        )))
                    }
                    Some(s) => b.data(oid, p, s),
                    None => b.backpointer(oid, p, 0),
                };
                placed.push((row.zoid, at));
                if let (Some(s), Some(dir)) = (&row.state, &opts.blobs_to) {
                    if blobs::is_blob(s) {
                        if write_blob(&mut blob_c, dir, row.zoid, row.tid)? {
                            report.blobs += 1;
                        } else {
                            report.missing_blobs += 1;
                        }
                    }
                }
                report.records += 1;
                next = rows.next_row()?;
            }
            let bytes = b.finish();
            w.write_all(&bytes).map_err(io)?;
            pos += bytes.len() as u64;
            for (oid, at) in placed {
                prev.set(oid, at);
            }
            report.transactions += 1;
            progress.advance(1);
        }
        if let Some(row) = next {
            return Err(ConvertError::BadData(format!(
                "object_state has a row of oid {} at tid {:016x}, which no transaction row has",
                row.zoid, row.tid
            )));
        }
        w.flush().map_err(io)?;
        Ok(pos)
    })();
    // Dropped without a commit, the output leaves nothing behind.
    report.bytes = written?;
    output.commit()?;
    Ok(report)
}

fn transactions(c: &mut Client, mode: Mode) -> Result<Vec<TxnMeta>> {
    match mode {
        Mode::HistoryPreserving => {
            let rows = c
                .query(
                    "SELECT tid, username, description, extension, packed FROM transaction \
                     WHERE tid >= 1 ORDER BY tid",
                    &[],
                )
                .db(|| "reading the transactions".into())?;
            Ok(rows
                .iter()
                .map(|r| TxnMeta {
                    tid: r.get::<_, i64>(0) as u64,
                    user: r.get(1),
                    description: r.get(2),
                    extension: r.get::<_, Option<Vec<u8>>>(3).unwrap_or_default(),
                    packed: r.get(4),
                })
                .collect())
        }
        Mode::HistoryFree => {
            let rows = c
                .query(
                    "SELECT DISTINCT tid FROM object_state WHERE tid >= 1 ORDER BY tid",
                    &[],
                )
                .db(|| "reading the transactions".into())?;
            Ok(rows
                .iter()
                .map(|r| TxnMeta {
                    tid: r.get::<_, i64>(0) as u64,
                    user: Vec::new(),
                    description: Vec::new(),
                    extension: Vec::new(),
                    packed: true,
                })
                .collect())
        }
    }
}

/// One row of the `object_state` COPY.
struct StateRow {
    tid: u64,
    zoid: u64,
    state: Option<Vec<u8>>,
}

/// A reader of the binary COPY rows `(bigint, bigint, bytea)`.
struct CopyRows<R> {
    r: R,
}

impl<R: Read> CopyRows<R> {
    fn new(mut r: R) -> Result<Self> {
        let mut h = [0u8; 19];
        read_exact(&mut r, &mut h)?;
        if &h[..11] != b"PGCOPY\n\xff\r\n\0" {
            return Err(ConvertError::BadData(
                "the server's COPY output has no binary header".into(),
            ));
        }
        let ext = u32::from_be_bytes([h[15], h[16], h[17], h[18]]);
        io::copy(&mut (&mut r).take(u64::from(ext)), &mut io::sink()).map_err(bad_copy)?;
        Ok(CopyRows { r })
    }

    fn next_row(&mut self) -> Result<Option<StateRow>> {
        let mut n = [0u8; 2];
        read_exact(&mut self.r, &mut n)?;
        let fields = i16::from_be_bytes(n);
        if fields == -1 {
            return Ok(None);
        }
        if fields != 3 {
            return Err(ConvertError::BadData(format!(
                "the server's COPY output has a row of {fields} fields, not 3"
            )));
        }
        let tid = self.int8()?;
        let zoid = self.int8()?;
        let state = self.field()?;
        Ok(Some(StateRow { tid, zoid, state }))
    }

    fn int8(&mut self) -> Result<u64> {
        match self.field()? {
            Some(v) if v.len() == 8 => Ok(u64::from_be_bytes(v.try_into().expect("8 bytes"))),
            _ => Err(ConvertError::BadData(
                "the server's COPY output has a bigint that is not 8 bytes".into(),
            )),
        }
    }

    fn field(&mut self) -> Result<Option<Vec<u8>>> {
        let mut l = [0u8; 4];
        read_exact(&mut self.r, &mut l)?;
        let len = i32::from_be_bytes(l);
        if len < 0 {
            return Ok(None);
        }
        let mut v = vec![0u8; len as usize];
        read_exact(&mut self.r, &mut v)?;
        Ok(Some(v))
    }
}

fn bad_copy(e: io::Error) -> ConvertError {
    ConvertError::Transfer {
        what: "reading object_state from the server".into(),
        source: e,
    }
}

fn read_exact(r: &mut impl Read, buf: &mut [u8]) -> Result<()> {
    r.read_exact(buf).map_err(bad_copy)
}

/// Makes the blob directory as ZODB does for a new FileStorage: bushy layout marker and
/// `tmp/`. It must not exist or be empty.
fn prepare_blob_dir(dir: &Path) -> Result<()> {
    if let Ok(mut rd) = fs::read_dir(dir) {
        if rd.next().is_some() {
            return Err(ConvertError::BadData(format!(
                "'{}' is not empty; the blobs go into a new or empty directory",
                dir.display()
            )));
        }
    }
    fs::create_dir_all(dir.join("tmp")).map_err(|e| ConvertError::io(dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| ConvertError::io(dir, e))?;
    let spec = OutputSpec::new(dir.join(".layout"))
        .replace(false)
        .mode(0o644);
    zfs_files::write_file(spec, |w| w.write_all(b"bushy"))?;
    Ok(())
}

/// Writes the large object(s) of (zoid, tid) as the blob file; false when there are none.
fn write_blob(c: &mut Client, dir: &Path, zoid: u64, tid: u64) -> Result<bool> {
    let rows = c
        .query(
            "SELECT chunk FROM blob_chunk WHERE zoid = $1 AND tid = $2 ORDER BY chunk_num",
            &[&(zoid as i64), &(tid as i64)],
        )
        .db(|| format!("finding the blob of oid {zoid}"))?;
    if rows.is_empty() {
        return Ok(false);
    }
    let path = blob::blob_path(dir, Layout::Bushy, zoid, tid);
    let parent = path.parent().unwrap_or(dir);
    fs::create_dir_all(parent).map_err(|e| ConvertError::io(parent, e))?;
    // Committed blob files are read-only, as ZODB leaves them.
    let mut f = OutputSpec::new(&path).replace(false).mode(0o444).create()?;
    const PIECE: i32 = 4 << 20;
    for r in rows {
        let lo: u32 = r.get(0);
        let mut off: i64 = 0;
        loop {
            let row = c
                .query_one("SELECT lo_get($1, $2, $3)", &[&lo, &off, &PIECE])
                .db(|| format!("reading the blob of oid {zoid}"))?;
            let piece: Vec<u8> = row.get(0);
            f.write_all(&piece)
                .map_err(|e| ConvertError::io(&path, e))?;
            off += piece.len() as i64;
            if piece.len() < PIECE as usize {
                break;
            }
        }
    }
    f.commit()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgcopy::{Rows, HEADER, TRAILER};

    #[test]
    fn copy_rows_read_back() -> Result<()> {
        let mut r = Rows::default();
        r.row(3).int8(5).int8(1).bytes(Some(b"state"));
        r.row(3).int8(6).int8(2).bytes(None);
        let bytes = [HEADER, &r.buf, TRAILER].concat();
        let mut rows = CopyRows::new(&bytes[..])?;
        let a = rows.next_row()?.expect("a row");
        assert_eq!(
            (a.tid, a.zoid, a.state.as_deref()),
            (5, 1, Some(&b"state"[..]))
        );
        let b = rows.next_row()?.expect("a row");
        assert_eq!((b.tid, b.zoid, b.state), (6, 2, None));
        assert!(rows.next_row()?.is_none());
        Ok(())
    }

    #[test]
    fn short_copy_output_is_an_error() {
        let bytes = [HEADER, &[0, 3, 0, 0, 0, 8, 1][..]].concat();
        let mut rows = CopyRows::new(&bytes[..]).expect("header");
        assert!(rows.next_row().is_err());
        assert!(CopyRows::new(&b"PGCOPY"[..]).is_err());
    }
}
