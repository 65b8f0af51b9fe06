//! A copy stream: one connection that COPYs the rows it is sent into one table, and commits
//! them with its manifest entry at each checkpoint.
//!
//! A producer sends encoded rows, blob files to store, and checkpoints. At a checkpoint the
//! stream ends its `COPY`, stores the batch's blobs as large objects and their `blob_chunk`
//! rows, sets its manifest entry to the checkpoint's value and commits: rows and progress
//! become visible together. When the producer goes away without a last checkpoint
//! (interrupted, or failed), the open batch is rolled back.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;

use postgres::{Client, GenericClient};

use crate::blobs;
use crate::error::{ConvertError, DbContext, Result};
use crate::manifest;
use crate::pgcopy::{Rows, HEADER, TRAILER};
use crate::schema::Mode;

/// What a producer sends to a stream.
#[derive(Debug)]
pub(crate) enum Msg {
    /// Encoded rows of the stream's table.
    Rows(Vec<u8>),
    /// A blob revision: its file becomes a large object and a `blob_chunk` row.
    Blob {
        /// The object.
        zoid: u64,
        /// The revision.
        tid: u64,
        /// The source blob file.
        path: PathBuf,
    },
    /// Commit what was sent, with this manifest value.
    Checkpoint(String),
    /// Commit what was sent, with this manifest value, and stop.
    Finish(String),
}

/// Counts of what a stream committed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Committed {
    /// Bytes of COPY data.
    pub bytes: u64,
    /// Large objects created.
    pub blobs: u64,
    /// Blob files that did not exist (stored without a blob, as zodbconvert does).
    pub missing_blobs: u64,
}

/// A stream's fixed parts.
pub(crate) struct Stream<'a> {
    pub client: Client,
    /// The `COPY ... FROM STDIN (FORMAT binary)` statement of its table.
    pub copy_sql: String,
    /// Its manifest key.
    pub key: String,
    /// The mode, for the column order of `blob_chunk`.
    pub mode: Mode,
    /// Checked between blobs: once set, the open batch is rolled back.
    pub interrupt: Option<&'a AtomicBool>,
}

enum End {
    Checkpoint(String, bool),
    Gone,
}

impl Stream<'_> {
    /// Runs until the producer hangs up; every checkpoint's batch is committed.
    pub(crate) fn run(mut self, rx: Receiver<Msg>) -> Result<Committed> {
        let mut done = Committed::default();
        loop {
            self.client
                .batch_execute("BEGIN")
                .db(|| format!("starting a batch of {}", self.key))?;
            let mut blobs = Vec::new();
            let mut bytes = 0u64;
            let end = {
                let mut w = self
                    .client
                    .copy_in(self.copy_sql.as_str())
                    .db(|| format!("starting {}", self.copy_sql))?;
                let io = |source| ConvertError::Transfer {
                    what: format!("sending rows of {}", self.key),
                    source,
                };
                w.write_all(HEADER).map_err(io)?;
                let end = loop {
                    match rx.recv() {
                        Ok(Msg::Rows(b)) => {
                            bytes += b.len() as u64;
                            w.write_all(&b).map_err(io)?;
                        }
                        Ok(Msg::Blob { zoid, tid, path }) => blobs.push((zoid, tid, path)),
                        Ok(Msg::Checkpoint(v)) => break End::Checkpoint(v, false),
                        Ok(Msg::Finish(v)) => break End::Checkpoint(v, true),
                        Err(_) => break End::Gone,
                    }
                };
                if let End::Checkpoint(..) = end {
                    w.write_all(TRAILER).map_err(io)?;
                    w.finish().db(|| format!("loading {}", self.copy_sql))?;
                }
                end
            };
            let End::Checkpoint(value, last) = end else {
                // Closing the connection aborts the open transaction.
                return Ok(done);
            };
            if !blobs.is_empty() {
                let (stored, missing) = self.store_blobs(&blobs)?;
                done.blobs += stored;
                done.missing_blobs += missing;
            }
            manifest::set(&mut self.client, &self.key, &value)?;
            self.client
                .batch_execute("COMMIT")
                .db(|| format!("committing a batch of {}", self.key))?;
            done.bytes += bytes;
            if last {
                return Ok(done);
            }
        }
    }

    fn store_blobs(&mut self, blobs: &[(u64, u64, PathBuf)]) -> Result<(u64, u64)> {
        let mut rows = Rows::default();
        let (mut stored, mut missing) = (0, 0);
        for (zoid, tid, path) in blobs {
            if self.interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) {
                return Err(ConvertError::Interrupted);
            }
            let Some(lo) = blobs::upload(&mut self.client, path)? else {
                missing += 1;
                continue;
            };
            stored += 1;
            match self.mode {
                Mode::HistoryPreserving => rows.row(4).int8(*zoid).int8(*tid).int8(0).oid(lo),
                Mode::HistoryFree => rows.row(4).int8(*zoid).int8(0).int8(*tid).oid(lo),
            };
        }
        if stored > 0 {
            copy_rows(&mut self.client, BLOB_CHUNK_COPY, &rows.buf)?;
        }
        Ok((stored, missing))
    }
}

/// The COPY statement of `blob_chunk` (its columns are listed, so one statement serves both
/// modes' column orders as long as rows follow the table's own order).
const BLOB_CHUNK_COPY: &str = "COPY blob_chunk FROM STDIN (FORMAT binary)";

/// COPYs already-encoded rows in one go.
pub(crate) fn copy_rows(c: &mut impl GenericClient, sql: &str, rows: &[u8]) -> Result<()> {
    let mut w = c.copy_in(sql).db(|| format!("starting {sql}"))?;
    let io = |source| ConvertError::Transfer {
        what: format!("sending rows for {sql}"),
        source,
    };
    w.write_all(HEADER).map_err(io)?;
    w.write_all(rows).map_err(io)?;
    w.write_all(TRAILER).map_err(io)?;
    w.finish().db(|| format!("loading {sql}"))?;
    Ok(())
}
