//! The conversion: checks, planning, the bulk copy, finishing, and resuming.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::sync_channel;
use std::time::Duration;

use md5::{Digest, Md5};
use postgres::{Client, GenericClient};
use zfs_format::{FileStorage, Progress, FIRST_TXN};
#[cfg(test)]
use zfs_format::{Status, Tid};

use crate::blobs::BlobDir;
use crate::db;
use crate::ddl;
use crate::error::{ConvertError, DbContext, Result};
use crate::follow;
use crate::hf;
use crate::hp::{self, History, Outlet, Walked};

/// True when the conversion fills the pack tables.
fn pack_refs(m: &BTreeMap<String, String>) -> bool {
    m.get(key::PACK_REFS).map(String::as_str) == Some("1")
}
use crate::manifest::{self, key};
use crate::pgcopy::{Rows, HEADER, TRAILER};
use crate::schema::{self, Mode};
use crate::sequence::OidSequence;
use crate::stream::{Committed, Stream};
use crate::View;

/// What the bulk copy's walkers share.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    /// The source's blob directory.
    pub blob_dir: Option<&'a BlobDir>,
    /// The caller's interrupt flag.
    pub interrupt: Option<&'a AtomicBool>,
    /// Where progress goes.
    pub progress: &'a dyn Progress,
    /// Bytes between checkpoints.
    pub checkpoint_bytes: u64,
    /// Hands the pages of a file range back to the kernel once walked.
    pub release: &'a (dyn Fn(u64, u64) + Sync),
}

/// How much of the source's head identifies it in the manifest.
const HEAD_BYTES: u64 = 1 << 20;

/// How to convert.
#[derive(Clone, Debug)]
pub struct ConvertOptions<'a> {
    /// The mode the destination must have; `None` takes the destination's.
    pub mode: Option<Mode>,
    /// The source's blob directory.
    pub blobs: Option<PathBuf>,
    /// Parallel object streams (at least 1).
    pub jobs: usize,
    /// Empty the destination first, as `zodbconvert --clear` does.
    pub clear: bool,
    /// After the bulk copy, keep copying transactions appended to the source until
    /// interrupted.
    pub follow: bool,
    /// Fill RelStorage's pack tables (`object_ref`, `object_refs_added`) with each state's
    /// references, as its pre-pack would, so the first `zodbpack` has no reference
    /// analysis left to do. zodbconvert leaves them empty.
    pub pack_refs: bool,
    /// How often `follow` looks for new transactions.
    pub poll: Duration,
    /// Each stream commits its rows (and the manifest its progress) after about this many
    /// bytes of the source: what an interruption loses.
    pub checkpoint_bytes: u64,
    /// Checked between transactions: once set, the conversion stops, keeping what was
    /// committed, and returns [`ConvertError::Interrupted`].
    pub interrupt: Option<&'a AtomicBool>,
}

impl Default for ConvertOptions<'_> {
    fn default() -> Self {
        ConvertOptions {
            mode: None,
            blobs: None,
            jobs: 2,
            clear: false,
            follow: false,
            pack_refs: false,
            poll: Duration::from_secs(1),
            checkpoint_bytes: 64 << 20,
            interrupt: None,
        }
    }
}

/// What a conversion did.
#[derive(Clone, Debug, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ConvertReport {
    /// The destination's mode.
    pub mode: Option<Mode>,
    /// The RelStorage versions whose schema the destination holds.
    pub schema: &'static str,
    /// This run continued an unfinished conversion.
    pub resumed: bool,
    /// Where the bulk copy ended in the source.
    pub end_pos: u64,
    /// Transactions in the source up to that end.
    pub transactions: u64,
    /// Bytes of rows this run sent with COPY.
    pub copied_bytes: u64,
    /// Large objects this run created.
    pub blobs: u64,
    /// Blob files that did not exist (their objects were stored without a blob, as
    /// zodbconvert does).
    pub missing_blobs: u64,
    /// Transactions copied after the bulk copy (`follow`, or catching up).
    #[cfg_attr(feature = "serde", serde(rename = "followed_transactions"))]
    pub followed: u64,
    /// The conversion is complete: the manifest is gone and the schema whole.
    pub finished: bool,
}

/// Converts the FileStorage at `source` into the RelStorage database at `url` (which must
/// already hold RelStorage's schema), or resumes an unfinished conversion of it.
pub fn convert(
    source: &Path,
    url: &str,
    opts: &ConvertOptions<'_>,
    progress: &dyn Progress,
) -> Result<ConvertReport> {
    let file = FileStorage::open(source)?;
    let mut main = db::connect(url)?;
    let schema = schema::inspect(&mut main, opts.mode)?;
    let mode = schema.mode;
    let mut existing = if manifest::exists(&mut main)? {
        Some(manifest::load(&mut main)?)
    } else {
        None
    };
    if opts.clear {
        clear(&mut main, mode, existing.as_ref())?;
        existing = None;
    } else if existing.is_none() && !is_empty(&mut main, mode)? {
        return Err(ConvertError::NotEmpty(
            "the destination already holds data (and no unfinished conversion); \
             --clear empties it first, as zodbconvert --clear does"
                .into(),
        ));
    }
    let blob_dir = opts.blobs.as_deref().map(BlobDir::open).transpose()?;
    let mut report = ConvertReport {
        mode: Some(mode),
        schema: schema.version,
        ..ConvertReport::default()
    };
    let m = match existing {
        Some(m) => {
            check_same(&m, mode, &file)?;
            report.resumed = true;
            m
        }
        None => start(&mut main, mode, &file, opts.jobs.max(1), opts.pack_refs)?,
    };
    let end_pos = num(&m, key::END_POS)?;
    report.end_pos = end_pos;
    let bytes = file.bytes();
    let end = usize::try_from(end_pos).map_or(bytes.len(), |e| e.min(bytes.len()));
    let view = FileStorage::from_data(&bytes[..end], file.path().to_path_buf())?;
    let phase = m.get(key::PHASE).map(String::as_str).unwrap_or("load");
    let mut tail = match phase {
        "load" => {
            let tail = match mode {
                Mode::HistoryPreserving => {
                    let release = |a, b| file.release(a, b);
                    let (history, done, txns) =
                        hp_bulk(url, &view, &m, blob_dir.as_ref(), opts, progress, &release)?;
                    add(&mut report, done);
                    report.transactions = txns;
                    finish_bulk(
                        &mut main,
                        mode,
                        &m,
                        Some(&history),
                        history.seq,
                        opts.follow,
                        progress,
                    )?;
                    follow::Tail::Hp(history)
                }
                Mode::HistoryFree => {
                    let (max_oid, done, txns) = hf_bulk(
                        &mut main,
                        url,
                        &view,
                        Some(&file),
                        &m,
                        blob_dir.as_ref(),
                        opts,
                        progress,
                    )?;
                    add(&mut report, done);
                    report.transactions = txns;
                    let mut seq = OidSequence::default();
                    seq.observe(max_oid);
                    finish_bulk(&mut main, mode, &m, None, seq, opts.follow, progress)?;
                    follow::Tail::Hf
                }
            };
            if !opts.follow {
                report.finished = true;
                return Ok(report);
            }
            tail
        }
        "follow" => follow::Tail::rebuild(mode, &file, num(&m, key::FOLLOW_POS)?)?,
        other => {
            return Err(ConvertError::Manifest(format!(
                "the conversion manifest is in an unknown phase '{other}'"
            )))
        }
    };
    let m = manifest::load(&mut main)?;
    let out = follow::run(
        &mut main,
        source,
        &m,
        &mut tail,
        blob_dir.as_ref(),
        opts,
        progress,
    )?;
    report.followed = out.transactions;
    report.blobs += out.blobs;
    report.missing_blobs += out.missing_blobs;
    report.finished = out.finished;
    Ok(report)
}

fn add(report: &mut ConvertReport, done: Committed) {
    report.copied_bytes += done.bytes;
    report.blobs += done.blobs;
    report.missing_blobs += done.missing_blobs;
}

pub(crate) fn num(m: &BTreeMap<String, String>, k: &str) -> Result<u64> {
    m.get(k)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ConvertError::Manifest(format!("the conversion manifest lacks '{k}'")))
}

/// MD5 of the first bytes of the source, up to `end`.
fn head_md5(bytes: &[u8], end: u64) -> String {
    let n = usize::try_from(end.min(HEAD_BYTES))
        .unwrap_or(0)
        .min(bytes.len());
    Md5::digest(&bytes[..n])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The tid of the transaction that ends at `pos`, if one does.
pub(crate) fn tid_ending_at(bytes: &[u8], pos: u64) -> Option<u64> {
    if pos <= FIRST_TXN {
        return Some(0);
    }
    let p = usize::try_from(pos).ok()?;
    let tlen = u64::from_be_bytes(bytes.get(p.checked_sub(8)?..p)?.try_into().ok()?);
    let start = usize::try_from(pos.checked_sub(8)?.checked_sub(tlen)?).ok()?;
    Some(u64::from_be_bytes(
        bytes.get(start..start + 8)?.try_into().ok()?,
    ))
}

fn start(
    main: &mut Client,
    mode: Mode,
    file: &FileStorage,
    jobs: usize,
    pack_refs: bool,
) -> Result<BTreeMap<String, String>> {
    let end = walk_headers(file)?;
    let end_pos = end.pos.min(file.len());
    let mut m = BTreeMap::new();
    m.insert(key::FORMAT.into(), manifest::FORMAT.into());
    m.insert(key::MODE.into(), mode.name().into());
    m.insert(key::SOURCE.into(), file.path().display().to_string());
    m.insert(key::HEAD_MD5.into(), head_md5(file.bytes(), end_pos));
    m.insert(key::END_POS.into(), end_pos.to_string());
    m.insert(
        key::END_TID.into(),
        end.last_complete_tid.as_u64().to_string(),
    );
    m.insert(key::STREAMS.into(), jobs.to_string());
    m.insert(key::PHASE.into(), "load".into());
    m.insert(key::PACK_REFS.into(), u8::from(pack_refs).to_string());
    let mut tables = match mode {
        Mode::HistoryPreserving => {
            vec![
                "transaction",
                "object_state",
                "current_object",
                "blob_chunk",
            ]
        }
        Mode::HistoryFree => vec!["object_state", "blob_chunk"],
    };
    if pack_refs {
        tables.extend(["object_ref", "object_refs_added"]);
    }
    let mut tx = main.transaction().db(|| "starting the conversion".into())?;
    let items = ddl::capture(&mut tx, &tables)?;
    ddl::to_manifest(&items, &mut m);
    manifest::create(&mut tx, &m)?;
    ddl::drop_all(&mut tx, &items)?;
    tx.commit().db(|| "starting the conversion".into())?;
    Ok(m)
}

/// [`FileStorage::end`], handing the pages back to the kernel as the walk goes.
fn walk_headers(file: &FileStorage) -> Result<zfs_format::End> {
    let mut it = file.transactions();
    let mut released = FIRST_TXN;
    for t in it.by_ref() {
        let next = t?.next_pos();
        if next - released >= 64 << 20 {
            file.release(released, next);
            released = next;
        }
    }
    file.release(released, file.len());
    Ok(it.finish())
}

fn check_same(m: &BTreeMap<String, String>, mode: Mode, file: &FileStorage) -> Result<()> {
    let source = m.get(key::SOURCE).cloned().unwrap_or_default();
    let other = |why: &str| {
        ConvertError::NotEmpty(format!(
            "the destination holds an unfinished conversion of '{source}', and {why}; \
             --clear empties the destination to start again"
        ))
    };
    if m.get(key::FORMAT).map(String::as_str) != Some(manifest::FORMAT) {
        return Err(other("its manifest is of another format"));
    }
    if m.get(key::MODE).map(String::as_str) != Some(mode.name()) {
        return Err(other("it was of another mode"));
    }
    let end_pos = num(m, key::END_POS)?;
    if file.len() < end_pos
        || m.get(key::HEAD_MD5) != Some(&head_md5(file.bytes(), end_pos))
        || tid_ending_at(file.bytes(), end_pos) != Some(num(m, key::END_TID)?)
    {
        return Err(other(&format!(
            "'{}' is not that file (or it was packed or rewritten since)",
            file.path().display()
        )));
    }
    Ok(())
}

/// True when the destination holds no data besides RelStorage's initial rows.
fn is_empty(c: &mut Client, mode: Mode) -> Result<bool> {
    let sql = match mode {
        Mode::HistoryPreserving => {
            "SELECT NOT (EXISTS (SELECT 1 FROM object_state) OR EXISTS (SELECT 1 FROM blob_chunk) \
             OR EXISTS (SELECT 1 FROM current_object) OR EXISTS (SELECT 1 FROM object_ref) \
             OR EXISTS (SELECT 1 FROM object_refs_added) \
             OR EXISTS (SELECT 1 FROM transaction WHERE tid <> 0))"
        }
        Mode::HistoryFree => {
            "SELECT NOT (EXISTS (SELECT 1 FROM object_state) OR EXISTS (SELECT 1 FROM blob_chunk) \
             OR EXISTS (SELECT 1 FROM object_ref) OR EXISTS (SELECT 1 FROM object_refs_added))"
        }
    };
    let row = c
        .query_one(sql, &[])
        .db(|| "checking that the destination is empty".into())?;
    Ok(row.get(0))
}

/// Empties the destination as RelStorage's `zap_all` does (large objects unlinked, tables
/// truncated, the sequence restarted, the initial rows put back), and undoes what an
/// unfinished conversion changed in the schema.
fn clear(c: &mut Client, mode: Mode, m: Option<&BTreeMap<String, String>>) -> Result<()> {
    let mut tx = c.transaction().db(|| "clearing the destination".into())?;
    tx.batch_execute("SELECT lo_unlink(chunk) FROM (SELECT DISTINCT chunk FROM blob_chunk) c")
        .db(|| "unlinking the destination's blobs".into())?;
    let rows = tx
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name = ANY($1)",
            &[&vec![
                "commit_row_lock",
                "transaction",
                "object_state",
                "blob_chunk",
                "current_object",
                "object_ref",
                "object_refs_added",
                "pack_object",
                "pack_state",
                "pack_state_tid",
            ]],
        )
        .db(|| "listing the destination's tables".into())?;
    let tables: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    if !tables.is_empty() {
        tx.batch_execute(&format!("TRUNCATE TABLE {} CASCADE", tables.join(", ")))
            .db(|| "clearing the destination's tables".into())?;
    }
    if let Some(m) = m {
        if m.get(key::PHASE).map(String::as_str) == Some("load") {
            ddl::create_all(&mut tx, &ddl::from_manifest(m)?, &zfs_format::NoProgress)?;
        }
        manifest::drop_table(&mut tx)?;
    }
    tx.batch_execute("ALTER SEQUENCE zoid_seq RESTART WITH 1")
        .db(|| "restarting zoid_seq".into())?;
    if mode == Mode::HistoryPreserving {
        tx.execute(
            "INSERT INTO transaction (tid, username, description) VALUES (0, $1, $2)",
            &[
                &&b"system"[..],
                &&b"special transaction for object creation"[..],
            ],
        )
        .db(|| "re-inserting RelStorage's initial rows".into())?;
    }
    tx.batch_execute("INSERT INTO commit_row_lock (tid) VALUES (0)")
        .db(|| "re-inserting RelStorage's initial rows".into())?;
    tx.commit().db(|| "clearing the destination".into())
}

fn join_streams(
    handles: Vec<std::thread::ScopedJoinHandle<'_, Result<Committed>>>,
) -> Result<Committed> {
    let mut total = Committed::default();
    let mut first_err = None;
    for h in handles {
        match h.join() {
            Ok(Ok(c)) => {
                total.bytes += c.bytes;
                total.blobs += c.blobs;
                total.missing_blobs += c.missing_blobs;
            }
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(p) => std::panic::resume_unwind(p),
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

fn hp_bulk(
    url: &str,
    view: &View<'_>,
    m: &BTreeMap<String, String>,
    blob_dir: Option<&BlobDir>,
    opts: &ConvertOptions<'_>,
    progress: &dyn Progress,
    release: &(dyn Fn(u64, u64) + Sync),
) -> Result<(History, Committed, u64)> {
    let end_pos = num(m, key::END_POS)?;
    let n = usize::try_from(num(m, key::STREAMS)?.max(1)).unwrap_or(1);
    let committed = |k: &str| {
        m.get(&format!("{}{k}", key::STREAM))
            .and_then(|v| v.parse().ok())
            .unwrap_or(FIRST_TXN)
    };
    let mode = Mode::HistoryPreserving;
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        let mut open = |name: String, sql: &str| -> Result<Outlet> {
            let (tx, rx) = sync_channel(8);
            let stream = Stream {
                client: db::connect(url)?,
                copy_sql: sql.to_string(),
                key: format!("{}{name}", key::STREAM),
                mode,
                interrupt: opts.interrupt,
            };
            handles.push(s.spawn(move || stream.run(rx)));
            Ok(Outlet::new(committed(&name), tx))
        };
        let txn = open("transaction".into(), hp::TXN_COPY)?;
        let objs = (0..n)
            .map(|k| open(format!("object_state.{k}"), hp::STATE_COPY))
            .collect::<Result<Vec<_>>>()?;
        let refs = if pack_refs(m) {
            Some((
                open("object_ref".into(), hp::REF_COPY)?,
                open("object_refs_added".into(), hp::ADDED_COPY)?,
            ))
        } else {
            None
        };
        let mut out = hp::Outlets { txn, objs, refs };
        let mut history = History::default();
        let ctx = Ctx {
            blob_dir,
            interrupt: opts.interrupt,
            progress,
            checkpoint_bytes: opts.checkpoint_bytes.max(1),
            release,
        };
        let walked = hp::walk(view, end_pos, &mut out, &ctx, &mut history);
        drop(out);
        let joined = join_streams(handles);
        match walked? {
            Walked::Done => {
                let done = joined?;
                let txns = history.transactions;
                Ok((history, done, txns))
            }
            Walked::StreamFailed => Err(joined.err().unwrap_or_else(|| ConvertError::StreamLost)),
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn hf_bulk(
    main: &mut Client,
    url: &str,
    view: &View<'_>,
    mapped: Option<&FileStorage>,
    m: &BTreeMap<String, String>,
    blob_dir: Option<&BlobDir>,
    opts: &ConvertOptions<'_>,
    progress: &dyn Progress,
) -> Result<(u64, Committed, u64)> {
    let n = usize::try_from(num(m, key::STREAMS)?.max(1)).unwrap_or(1);
    let scan = match mapped {
        // The file has not grown: the scan over the mapping hands pages back as it goes.
        Some(f) if f.len() == view.len() => zfs_format::scan::build_index(f, progress)?,
        _ => zfs_format::scan::build_index(view, progress)?,
    };
    let txns = scan.end.transactions;
    let index = scan.index;
    let max_oid = index.max_oid().map_or(0, |o| o.as_u64());
    // The ranges are fixed by the first run, so that a resumed run splits the same way.
    let ranges: Vec<(u64, u64)> = match m.get(&format!("{}0", RANGE)) {
        Some(_) => (0..n)
            .map(|k| {
                let v = m.get(&format!("{RANGE}{k}")).cloned().unwrap_or_default();
                let mut it = v.split(' ').filter_map(|x| x.parse().ok());
                match (it.next(), it.next()) {
                    (Some(a), Some(b)) => Ok((a, b)),
                    _ => Err(ConvertError::Manifest(format!(
                        "the conversion manifest has an unreadable range {k}"
                    ))),
                }
            })
            .collect::<Result<_>>()?,
        None => {
            let mut r = hf::ranges(&index, n);
            r.resize(n, (u64::MAX, u64::MAX));
            let mut tx = main.transaction().db(|| "planning the copy".into())?;
            for (k, (lo, hi)) in r.iter().enumerate() {
                manifest::set(&mut tx, &format!("{RANGE}{k}"), &format!("{lo} {hi}"))?;
            }
            tx.commit().db(|| "planning the copy".into())?;
            r
        }
    };
    progress.start_counting("converting", index.len() as u64, "objects");
    let mode = Mode::HistoryFree;
    let release = |a, b| {
        if let Some(f) = mapped {
            f.release(a, b);
        }
    };
    let ctx = Ctx {
        blob_dir,
        interrupt: opts.interrupt,
        progress,
        checkpoint_bytes: opts.checkpoint_bytes.max(1),
        release: &release,
    };
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        let mut readers = Vec::new();
        for (k, &(lo, hi)) in ranges.iter().enumerate() {
            let mut open = |table: &str, sql: &str| -> Result<hf::Sink> {
                let name = format!("{}{table}.{k}", key::STREAM);
                let from = m.get(&name).and_then(|v| v.parse().ok()).unwrap_or(lo);
                let (tx, rx) = sync_channel(8);
                let stream = Stream {
                    client: db::connect(url)?,
                    copy_sql: sql.to_string(),
                    key: name,
                    mode,
                    interrupt: opts.interrupt,
                };
                handles.push(s.spawn(move || stream.run(rx)));
                Ok(hf::Sink::new(tx, from))
            };
            let state = open("object_state", hf::STATE_COPY)?;
            let refs = if pack_refs(m) {
                Some((
                    open("object_ref", hf::REF_COPY)?,
                    open("object_refs_added", hf::ADDED_COPY)?,
                ))
            } else {
                None
            };
            let mut sinks = hf::Sinks { state, refs };
            let (index, ctx) = (&index, &ctx);
            readers.push(s.spawn(move || hf::read_range(view, index, hi, &mut sinks, ctx)));
        }
        let mut read_err = None;
        let mut all_sent = true;
        for r in readers {
            match r.join() {
                Ok(Ok(sent)) => all_sent &= sent,
                Ok(Err(e)) => {
                    read_err.get_or_insert(e);
                }
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        let joined = join_streams(handles);
        if let Some(e) = read_err {
            return Err(e);
        }
        let done = joined?;
        if !all_sent {
            return Err(ConvertError::StreamLost);
        }
        Ok((max_oid, done, txns))
    })
}

/// Manifest prefix of the history-free oid ranges.
const RANGE: &str = "range.";

/// The last transaction of the bulk copy: `current_object`, the sequence, the keys and
/// indexes back; the manifest dropped, or kept for `follow`.
fn finish_bulk(
    main: &mut Client,
    mode: Mode,
    m: &BTreeMap<String, String>,
    history: Option<&History>,
    seq: OidSequence,
    follow: bool,
    progress: &dyn Progress,
) -> Result<()> {
    let mut tx = main
        .transaction()
        .db(|| "finishing the conversion".into())?;
    tx.batch_execute("SET LOCAL synchronous_commit = on")
        .db(|| "finishing the conversion".into())?;
    if let (Mode::HistoryPreserving, Some(h)) = (mode, history) {
        let mut w = tx
            .copy_in(hp::CURRENT_COPY)
            .db(|| "loading current_object".into())?;
        let io = |source| ConvertError::Transfer {
            what: "sending rows of current_object".into(),
            source,
        };
        w.write_all(HEADER).map_err(io)?;
        let mut rows = Rows::default();
        for (oid, tid) in h.last_tid.iter() {
            rows.row(2).int8(oid).int8(tid);
            if rows.len() >= 1 << 20 {
                w.write_all(&rows.take()).map_err(io)?;
            }
        }
        w.write_all(&rows.take()).map_err(io)?;
        w.write_all(TRAILER).map_err(io)?;
        w.finish().db(|| "loading current_object".into())?;
        if pack_refs(m) {
            // RelStorage's pre-pack analyses every transaction row, tid 0 included.
            tx.batch_execute("INSERT INTO object_refs_added (tid) VALUES (0)")
                .db(|| "filling object_refs_added".into())?;
        }
    }
    set_sequence(&mut tx, seq)?;
    let items = ddl::from_manifest(m)?;
    progress.start_counting("keys and indexes", items.len() as u64, "built");
    ddl::create_all(&mut tx, &items, progress)?;
    if follow {
        manifest::set(&mut tx, key::PHASE, "follow")?;
        manifest::set(&mut tx, key::FOLLOW_POS, &num(m, key::END_POS)?.to_string())?;
    } else {
        manifest::drop_table(&mut tx)?;
    }
    tx.commit().db(|| "finishing the conversion".into())
}

/// Sets `zoid_seq` to what the copy leaves.
pub(crate) fn set_sequence(c: &mut impl GenericClient, seq: OidSequence) -> Result<()> {
    if let Some((last, called)) = seq.setval() {
        c.execute("SELECT setval('zoid_seq', $1, $2)", &[&last, &called])
            .db(|| "setting zoid_seq".into())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transaction_before_a_boundary() {
        let mut f = zfs_format::writer::FileBuilder::new(*b"FS30");
        let mut t = f
            .txn(Tid::from_u64(7), Status::Committed, b"u", b"d", b"")
            .expect("short");
        t.data(zfs_format::Oid::from_u64(0), 0, b"x");
        f.push(t);
        let end = f.pos();
        let t = f
            .txn(Tid::from_u64(9), Status::Packed, b"", b"", b"")
            .expect("short");
        f.push(t);
        let bytes = f.into_bytes();
        assert_eq!(tid_ending_at(&bytes, 4), Some(0));
        assert_eq!(tid_ending_at(&bytes, end), Some(7));
        assert_eq!(tid_ending_at(&bytes, bytes.len() as u64), Some(9));
        assert_eq!(tid_ending_at(&bytes, end + 3), None);
        assert_eq!(tid_ending_at(&bytes, bytes.len() as u64 + 100), None);
    }

    #[test]
    fn the_head_hash_stops_at_the_bulk_end() {
        let a = head_md5(b"FS30abcdef", 6);
        assert_eq!(a, head_md5(b"FS30abXXXX", 6));
        assert_ne!(a, head_md5(b"FS30aXXXXX", 6));
    }
}
