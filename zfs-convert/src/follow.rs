//! After the bulk copy: the transactions appended to the source since, one PostgreSQL
//! transaction each, with the schema whole.
//!
//! History-preserving: the rows the bulk copy would have made for them, plus the upsert of
//! `current_object` RelStorage's commit does. History-free: what `zodbconvert
//! --incremental` does, an upsert of each object's state, or its deletion when its new
//! record has no data, with its blob replaced. The manifest (phase `follow`) keeps the
//! position of the next transaction, committed with each one; the last run without
//! `follow` copies what is left and drops it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use postgres::Client;
use zfs_format::{FileStorage, Progress, Transaction};

use crate::blobs::{self, BlobDir};
use crate::convert::{num, set_sequence, tid_ending_at, ConvertOptions};
use crate::error::{ConvertError, DbContext, Result};
use crate::hp::{self, History};
use crate::manifest::{self, key};
use crate::pgcopy::Rows;
use crate::schema::Mode;
use crate::sequence::OidSequence;
use crate::stream;
use crate::View;

/// What the tail copy carries from transaction to transaction.
pub(crate) enum Tail {
    /// Each oid's last tid and the sequence.
    Hp(History),
    /// Nothing: the history-free rows depend on the new records only.
    Hf,
}

impl Tail {
    /// The state at `pos` of a conversion in phase `follow`.
    pub(crate) fn rebuild(mode: Mode, file: &FileStorage, pos: u64) -> Result<Tail> {
        match mode {
            Mode::HistoryFree => Ok(Tail::Hf),
            Mode::HistoryPreserving => {
                let mut h = History::default();
                let view = FileStorage::from_data(file.bytes(), file.path().to_path_buf())?;
                hp::replay(&view, pos, &mut h)?;
                Ok(Tail::Hp(h))
            }
        }
    }
}

/// What the tail copy did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Followed {
    pub transactions: u64,
    pub blobs: u64,
    pub missing_blobs: u64,
    /// The manifest was dropped: the conversion is complete.
    pub finished: bool,
}

/// Copies the transactions after the manifest's position; with `opts.follow` keeps
/// watching until interrupted, else finishes the conversion once caught up.
pub(crate) fn run(
    main: &mut Client,
    source: &Path,
    m: &BTreeMap<String, String>,
    tail: &mut Tail,
    blob_dir: Option<&BlobDir>,
    opts: &ConvertOptions<'_>,
    progress: &dyn Progress,
) -> Result<Followed> {
    let mut pos = num(m, key::FOLLOW_POS)?;
    let mut last_tid = num(m, key::END_TID)?;
    if let Some(t) = m.get(key::FOLLOW_TID).and_then(|v| v.parse().ok()) {
        last_tid = t;
    }
    let mut out = Followed::default();
    let interrupted = || opts.interrupt.is_some_and(|f| f.load(Ordering::Relaxed));
    let mut hf_seq = current_sequence(main)?;
    loop {
        let file = FileStorage::open(source)?;
        if tid_ending_at(file.bytes(), pos) != Some(last_tid) {
            return Err(ConvertError::NotEmpty(format!(
                "'{}' no longer holds the transaction {last_tid:016x} before offset {pos} that \
                 the conversion copied last (was it packed or replaced?); --clear starts again",
                source.display()
            )));
        }
        let view: View<'_> = FileStorage::from_data(file.bytes(), file.path().to_path_buf())?;
        let mut walk = view.transactions_from(pos);
        let mut copied_now = 0u64;
        for txn in walk.by_ref() {
            let txn = txn?;
            if interrupted() {
                return Err(ConvertError::Interrupted);
            }
            let mut tx = main
                .transaction()
                .db(|| "copying a new transaction".into())?;
            let (b, missing) = match tail {
                Tail::Hp(h) => apply_hp(&mut tx, &view, &txn, h, blob_dir)?,
                Tail::Hf => apply_hf(&mut tx, &view, &txn, &mut hf_seq, blob_dir)?,
            };
            manifest::set(&mut tx, key::FOLLOW_POS, &txn.next_pos().to_string())?;
            manifest::set(&mut tx, key::FOLLOW_TID, &txn.tid().as_u64().to_string())?;
            tx.commit()
                .db(|| format!("committing the copy of transaction {}", txn.tid()))?;
            pos = txn.next_pos();
            last_tid = txn.tid().as_u64();
            out.transactions += 1;
            out.blobs += b;
            out.missing_blobs += missing;
            copied_now += 1;
            progress.advance(1);
        }
        if !opts.follow {
            let mut tx = main
                .transaction()
                .db(|| "finishing the conversion".into())?;
            tx.batch_execute("SET LOCAL synchronous_commit = on")
                .db(|| "finishing the conversion".into())?;
            manifest::drop_table(&mut tx)?;
            tx.commit().db(|| "finishing the conversion".into())?;
            out.finished = true;
            return Ok(out);
        }
        if copied_now == 0 {
            let until = Instant::now() + opts.poll;
            while Instant::now() < until {
                if interrupted() {
                    return Err(ConvertError::Interrupted);
                }
                std::thread::sleep(Duration::from_millis(50).min(opts.poll));
            }
        }
    }
}

/// `(last_value, is_called)` of `zoid_seq`, as an [`OidSequence`] that only raises it.
fn current_sequence(c: &mut Client) -> Result<OidSequence> {
    let row = c
        .query_one("SELECT last_value, is_called FROM zoid_seq", &[])
        .db(|| "reading zoid_seq".into())?;
    let last: i64 = row.get(0);
    let called: bool = row.get(1);
    Ok(OidSequence::at(u64::try_from(last).unwrap_or(0), called))
}

fn apply_hp(
    tx: &mut postgres::Transaction<'_>,
    view: &View<'_>,
    txn: &Transaction<'_>,
    h: &mut History,
    blob_dir: Option<&BlobDir>,
) -> Result<(u64, u64)> {
    let before = h.seq;
    let revs = h.advance(view, txn)?;
    let mut rows = Rows::default();
    hp::txn_row(&mut rows, txn);
    stream::copy_rows(tx, hp::TXN_COPY, &rows.buf)?;
    let mut rows = Rows::default();
    let mut blob_revs = Vec::new();
    for rev in &revs {
        let state = hp::state_row(view, &mut rows, rev)?;
        if state.is_some_and(blobs::is_blob) {
            blob_revs.push(rev);
        }
    }
    stream::copy_rows(tx, hp::STATE_COPY, &rows.buf)?;
    let (mut stored, mut missing) = (0, 0);
    for rev in blob_revs {
        let dir = blob_dir.ok_or_else(|| hp::no_blob_dir(view.path(), &rev.rec))?;
        let (oid, tid) = (rev.rec.oid.as_u64() as i64, rev.rec.tid.as_u64() as i64);
        match blobs::upload(tx, &dir.path(oid as u64, tid as u64))? {
            Some(lo) => {
                tx.execute(
                    "INSERT INTO blob_chunk (zoid, tid, chunk_num, chunk) VALUES ($1, $2, 0, $3)",
                    &[&oid, &tid, &lo],
                )
                .db(|| "storing a blob_chunk row".into())?;
                stored += 1;
            }
            None => missing += 1,
        }
    }
    for rev in &revs {
        let (oid, tid) = (rev.rec.oid.as_u64() as i64, rev.rec.tid.as_u64() as i64);
        tx.execute(
            "INSERT INTO current_object (zoid, tid) VALUES ($1, $2) \
             ON CONFLICT (zoid) DO UPDATE SET tid = EXCLUDED.tid",
            &[&oid, &tid],
        )
        .db(|| "updating current_object".into())?;
    }
    if h.seq != before {
        set_sequence(tx, h.seq)?;
    }
    Ok((stored, missing))
}

fn apply_hf(
    tx: &mut postgres::Transaction<'_>,
    view: &View<'_>,
    txn: &Transaction<'_>,
    seq: &mut OidSequence,
    blob_dir: Option<&BlobDir>,
) -> Result<(u64, u64)> {
    // The history's tids are not needed; it gives the records of the transaction, one per
    // oid, the last winning.
    let mut h = History::default();
    let revs = h.advance(view, txn)?;
    let (mut stored, mut missing) = (0, 0);
    let mut max_oid = 0;
    for rev in &revs {
        let oid = rev.rec.oid.as_u64();
        max_oid = max_oid.max(oid);
        let (zoid, tid) = (oid as i64, rev.rec.tid.as_u64() as i64);
        // The delete trigger unlinks the large object of the replaced blob.
        tx.execute("DELETE FROM blob_chunk WHERE zoid = $1", &[&zoid])
            .db(|| "replacing a blob".into())?;
        match view.resolve(&rev.rec)?.and_then(|r| r.data()) {
            Some(state) => {
                let size = state.len() as i64;
                tx.execute(
                    "INSERT INTO object_state (zoid, tid, state_size, state) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (zoid) DO UPDATE SET \
                     tid = EXCLUDED.tid, state_size = EXCLUDED.state_size, \
                     state = EXCLUDED.state",
                    &[&zoid, &tid, &size, &state],
                )
                .db(|| "storing an object".into())?;
                if blobs::is_blob(state) {
                    let dir = blob_dir.ok_or_else(|| hp::no_blob_dir(view.path(), &rev.rec))?;
                    match blobs::upload(tx, &dir.path(oid, tid as u64))? {
                        Some(lo) => {
                            tx.execute(
                                "INSERT INTO blob_chunk (zoid, chunk_num, tid, chunk) \
                                 VALUES ($1, 0, $2, $3)",
                                &[&zoid, &tid, &lo],
                            )
                            .db(|| "storing a blob_chunk row".into())?;
                            stored += 1;
                        }
                        None => missing += 1,
                    }
                }
            }
            None => {
                tx.execute("DELETE FROM object_state WHERE zoid = $1", &[&zoid])
                    .db(|| "deleting an object".into())?;
            }
        }
    }
    let before = *seq;
    seq.observe(max_oid);
    if *seq != before {
        set_sequence(tx, *seq)?;
    }
    Ok((stored, missing))
}
