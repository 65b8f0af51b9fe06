//! Offline pack with garbage collection, byte-identical to ZODB's packer.
//!
//! [`pack`] runs the four phases of ZODB's `FileStoragePacker` on a file at rest:
//!
//! 1. scan to the pack time (the stop tid `S`, inclusive): the current record of every
//!    object as of `S`, and the position `packpos` of the first transaction after it;
//! 2. reachability: from the root (with GC), and from backpointers after `S` into the
//!    packed region; with GC, the references of every current revision are first gathered
//!    in one walk in file order, so that the trace reads no record at random but those
//!    it cannot take from that walk;
//! 3. copy the kept revisions before `S` into packed (`'p'`) transactions, every record
//!    with `prev = 0` and its data resolved;
//! 4. copy everything after `S` verbatim except `prev` pointers, rebuilt, and
//!    backpointers, re-pointed into the new file.
//!
//! The output, the `.index` file, `.old` and the blob directory are what ZODB's
//! `FileStorage.pack` leaves, wherever ZODB succeeds without losing data. Where it fails
//! or loses data, these rules apply instead (each has its tests in `tests/pack/`):
//!
//! - dangling references reachable from the root are all listed and the pack refused,
//!   nothing changed (or ignored with `allow_dangling`, missing targets counted absent);
//! - references no reader can decode (REDUCE-built oids, unreadable pickles) in a reachable
//!   record refuse the pack with the oid and offset;
//! - a revision kept by a backpointer after `S` has its references followed, so the
//!   packed file has no dangling reference (ZODB keeps it and collects its referents);
//! - without GC, a backpointer after `S` to a non-current revision keeps that revision
//!   (ZODB's pack fails);
//! - a garbage blob object whose directory holds a blob file written after `S` (an
//!   object linked anew after the pack time) loses only its files up to `S`: ZODB removes
//!   the whole directory, the current revision's file with it;
//! - FS21 (Python 2) files are packed whole: string opcodes are read as bytes, so oids with
//!   bytes above 0x7f are followed; zlib-compressed records are decompressed before their
//!   references are read;
//! - the database must be closed: the pack takes the lock a running ZODB holds.
//!
//! ZODB's own rules are kept exactly: the no-op rule (nothing to do when the copy would be
//! as long as the original), the removal of a previous `.old` before packing, the
//! `.removed` file in the blob directory, `'u'` transactions copied verbatim, and the stop
//! tid computed from a float time as `FileStorage.pack` computes it.
//!
//! A pack with GC to a time after the last transaction can read the file once instead of
//! twice: [`prepare`] saves, ahead of time and while the database runs, every object's
//! current record and references (`<file>.refs`, [`zfs_format::refs_file`]); the pack then
//! reads only the transactions committed since and copies with every record checked
//! against them, and packs the usual way, with the same result, when anything does not
//! fit ([`Report::saved_references`] says which). Such a pack saves the references of the
//! file it writes (`refs_out.rs`), so the next one reads once without a prepare.
//!
//! Scanning and reference extraction run on all cores; positions and output order are
//! those of the sequential algorithm. The state is compact: 8 bytes per object for the
//! scan map, one bit per object for reachability, and during the trace 8 bytes per
//! object plus 4 per reference for the gathered references; the packed file's index
//! reuses the scan map's slots. Records read at random (tracing, backpointers) are read
//! with `pread`, so their pages never become resident in this process. Header layouts,
//! backpointer chains, transaction encoding and `_data_find` are `zfs_format`'s; this
//! crate decodes no header bytes itself.

mod analyze;
pub mod blob;
mod copy;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod interrupt;
pub mod lock;
mod oidmap;
mod prepare;
mod reach;
mod records;
mod refs_out;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use zfs_files::{Output, OutputSpec};
use zfs_format::{End, EndReason, FileStorage, Progress, Tid};

pub use analyze::AnalyzeOptions;
pub use blob::BlobStats;
pub use error::{Dangling, PackError, Result};
pub use prepare::{prepare, Prepared};

/// How to pack.
#[derive(Clone, Debug)]
pub struct PackOptions {
    /// The stop tid `S`: transactions with tid <= S are packed.
    pub stop: Tid,
    /// Garbage collection (ZODB's `pack_gc`, on by default).
    pub gc: bool,
    /// Keep the original as `<file>.old` (ZODB's `pack_keep_old`, on by default).
    pub keep_old: bool,
    /// The blob directory, if the database has blobs.
    pub blob_dir: Option<PathBuf>,
    /// Pack even when reachable objects refer to missing ones (ZODB before 3.9).
    pub allow_dangling: bool,
    /// Compute what would happen; write nothing and take no lock.
    pub dry_run: bool,
}

impl PackOptions {
    /// GC on, `.old` kept, no blobs: ZODB's defaults.
    pub fn new(stop: Tid) -> Self {
        PackOptions {
            stop,
            gc: true,
            keep_old: true,
            blob_dir: None,
            allow_dangling: false,
            dry_run: false,
        }
    }
}

/// How a pack ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "kebab-case")
)]
pub enum Outcome {
    /// The storage holds no object: nothing was done at all.
    Empty,
    /// Already packed to a later time, or nothing new since: only `.old` was removed.
    Redundant,
    /// Nothing before the pack time could be freed: the file is unchanged, `.old` removed.
    NothingToDo,
    /// The file was packed.
    Packed,
    /// A dry run that would pack.
    WouldPack,
}

/// Whether a pack used saved references (`<file>.refs`, see [`prepare`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "kebab-case")
)]
pub enum SavedReferences {
    /// None were found, or the pack was not one that can use them (without GC, or before
    /// the last transaction, or without a saved `.index` covering the file).
    None,
    /// Found but not used: they, or the saved `.index`, do not describe the file as it is;
    /// the file was read twice, as without them.
    Ignored,
    /// Found but not used: the analysis from them would hold more memory than the process
    /// may use (the usual pack holds less per object); the file was read twice.
    TooLarge,
    /// Used: the file was read once.
    Used,
}

/// What a pack did (or, for a dry run, would do).
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Report {
    /// How it ended.
    pub outcome: Outcome,
    /// The stop tid used.
    #[cfg_attr(feature = "serde", serde(rename = "stop_tid"))]
    pub stop: Tid,
    /// Size of the committed data before.
    pub size_before: u64,
    /// Size of the file after (equal to `size_before` unless packed).
    pub size_after: u64,
    /// Position of the first transaction after the pack time, in the original.
    #[cfg_attr(feature = "serde", serde(rename = "pack_position"))]
    pub packpos: u64,
    /// Transactions before the pack time.
    #[cfg_attr(feature = "serde", serde(rename = "transactions_before_stop"))]
    pub txns_before: u64,
    /// Of those, transactions left out entirely.
    #[cfg_attr(feature = "serde", serde(rename = "transactions_removed"))]
    pub txns_removed: u64,
    /// Data records before the pack time.
    #[cfg_attr(feature = "serde", serde(rename = "records_before_stop"))]
    pub records_before: u64,
    /// Of those, records left out.
    pub records_removed: u64,
    /// Objects existing at the pack time.
    pub objects_at_stop: u64,
    /// Objects kept in the packed region.
    pub objects_kept: u64,
    /// Objects kept only because we follow the references of revisions that
    /// backpointers after the pack time keep (ZODB would have dropped them).
    #[cfg_attr(feature = "serde", serde(rename = "extra_objects_kept"))]
    pub extra_kept: u64,
    /// Dangling references ignored (`allow_dangling`, or in revisions ZODB keeps unseen).
    #[cfg_attr(feature = "serde", serde(serialize_with = "error::dangling_texts"))]
    pub dangling_ignored: Vec<Dangling>,
    /// Lines of the blob `.removed` file (garbage blob objects and revisions).
    #[cfg_attr(feature = "serde", serde(rename = "blob_removed_lines"))]
    pub blob_lines: u64,
    /// Blob files removed (moved to `<blob_dir>.old` with `keep_old`).
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub blobs: BlobStats,
    /// Blob files an earlier pack left to remove (its `.removed` file), removed first:
    /// only those whose revision the file no longer has (see [`blob::finish_earlier`]).
    #[cfg_attr(feature = "serde", serde(rename = "earlier_pack_blobs"))]
    pub earlier_blobs: BlobStats,
    /// Whether the references came from `<file>.refs` (see [`prepare`]), so that the file
    /// was read once, not twice.
    pub saved_references: SavedReferences,
    /// Objects in the new index.
    pub index_entries: u64,
    /// Heap bytes of the reachability structures at their peak.
    pub state_bytes: u64,
    /// Time per phase: analysis, copy before, copy after, files.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub timings: Vec<(&'static str, Duration)>,
    /// Bytes after the last committed transaction (a torn or unfinished commit): not part
    /// of the packed file.
    #[cfg_attr(feature = "serde", serde(rename = "tail_bytes"))]
    pub tail: u64,
    /// Where those bytes were saved (the first free `<file>.trN`) when the file was packed.
    #[cfg_attr(feature = "serde", serde(rename = "tail_saved_to"))]
    pub tail_saved: Option<PathBuf>,
    /// Whether `<file>.index` was written (always when packed; when nothing changed, only
    /// if it was missing or did not describe the file).
    pub index_written: bool,
    /// Whether `<file>.refs` was written for the packed file (a pack with GC after the
    /// last transaction leaves it, so that the next such pack reads the file once).
    pub references_saved: bool,
    /// For a dry run: the database's lock file is held (it is open in a running ZODB, or
    /// being packed), so the real pack would refuse now. Always false otherwise (the pack
    /// took the lock).
    pub database_open: bool,
}

/// A progress that reports every phase under one name.
struct Renamed<'a> {
    inner: &'a dyn Progress,
    to: &'static str,
}

impl Progress for Renamed<'_> {
    fn start(&self, _phase: &str, total: u64) {
        self.inner.start(self.to, total);
    }
    fn advance(&self, n: u64) {
        self.inner.advance(n);
    }
    fn start_counting(&self, _phase: &str, total: u64, unit: &'static str) {
        self.inner.start_counting(self.to, total, unit);
    }
    fn interrupted(&self) -> bool {
        self.inner.interrupted()
    }
}

fn remove_if_exists(p: &Path) -> Result<()> {
    match fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PackError::io(p, e)),
    }
}

fn sync_dir(p: &Path) -> Result<()> {
    let dir = zfs_files::parent_dir(p);
    zfs_files::sync_dir(&dir).map_err(|e| PackError::io(&dir, e))
}

/// Walks the headers to the end of the last committed transaction (ZODB's `_pos`),
/// streaming through the file (`FileStorage::end`).
///
/// With `sane`, the position of a saved index that is sane for the file (ZODB's test when it
/// opens a storage) and the tid of the transaction before it, only the transactions after
/// that position are walked, as ZODB does: the scans that follow walk the rest and fail on
/// damage there.
fn committed_end<T: std::ops::Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    sane: Option<(u64, Tid)>,
) -> Result<End> {
    let Some((ipos, ltid)) = sane else {
        return Ok(fs.end()?);
    };
    let mut it = fs.transactions_from(ipos);
    for t in it.by_ref() {
        t?;
    }
    let mut end = it.finish();
    if end.transactions == 0 {
        end.last_complete_tid = ltid;
    }
    Ok(end)
}

/// Words for why the committed data ends before the end of the file.
fn end_words(r: EndReason) -> &'static str {
    match r {
        EndReason::Clean => "end of file",
        EndReason::ShortHeader => "a header cut short",
        EndReason::PastEnd => "a transaction whose length runs past the end of the file",
        EndReason::Checkpoint => "a transaction with status 'c'",
        EndReason::Junk => "a header too short for its own strings",
    }
}

/// Writes an index file as `fsIndex.save` does into a new private file, fsynced; it is
/// renamed into place by the caller.
fn write_index_output(spec: OutputSpec, index: &zfs_format::Index, pos: u64) -> Result<Output> {
    Ok(zfs_files::write_synced(spec, |w| {
        zfs_format::index_file::write_index(w, index, pos)
    })?)
}

/// Makes `old` a second name of `path` (a hard link), or a copy where links are not
/// possible; never through a symlink.
fn keep_as_old(path: &Path, old: &Path, mode: u32) -> Result<()> {
    remove_if_exists(old)?;
    if fs::hard_link(path, old).is_ok() {
        return Ok(());
    }
    let mut src = zfs_files::open_input(path)?;
    let mut out = OutputSpec::new(old).mode(mode).create()?;
    std::io::copy(&mut src, &mut out).map_err(|e| PackError::io(old, e))?;
    out.commit()?;
    Ok(())
}

/// Writes `<path>.index` unless the saved one is `current` (sane for the file and covering
/// it up to `end`): ZODB writes the index whenever it closes a storage, a pack that changed
/// nothing included. Returns whether it was written.
fn ensure_index<T>(
    fs: &FileStorage<T>,
    path: &Path,
    end: u64,
    mode: u32,
    current: bool,
) -> Result<bool>
where
    T: std::ops::Deref<Target = [u8]> + Sync,
{
    if current {
        return Ok(false);
    }
    let index_path = zfs_files::with_suffix(path, ".index");
    let scan = zfs_format::scan::build_index(fs, &zfs_format::NoProgress)?;
    let spec = OutputSpec::new(&index_path).mode(mode);
    write_index_output(spec, &scan.index, end)?.commit()?;
    Ok(true)
}

/// The index saved beside `path` and the position it covers, if it can be read.
fn saved_index(path: &Path) -> Option<(u64, zfs_format::Index)> {
    let index_path = zfs_files::with_suffix(path, ".index");
    let file = fs::File::open(&index_path).ok()?;
    let bytes = zfs_files::Map::new(file, &index_path).ok()?;
    zfs_format::index_file::load_index(&bytes).ok()
}

/// Copies what the analysis's plan keeps into the report.
fn note_plan(report: &mut Report, plan: &analyze::Plan) {
    report.packpos = plan.packpos;
    report.objects_at_stop = plan.reach.map.live() as u64;
    report.objects_kept = plan.reach.objects() as u64;
    report.extra_kept = plan.extra_kept as u64;
    report.dangling_ignored = plan.dangling_ignored.clone();
    report.state_bytes = (plan.reach.heap_bytes() + plan.edges_bytes) as u64;
}

/// Phase C: the kept revisions before the pack time, into a new private file beside the
/// original (removed on any error), or only counted for a dry run.
fn phase_c<T>(
    fs: &FileStorage<T>,
    path: &Path,
    opts: &PackOptions,
    mode: u32,
    plan: &mut analyze::Plan,
    verify: Option<&analyze::Verify>,
    progress: &dyn Progress,
) -> Result<(copy::CopyStats, copy::OutIndex, copy::Out)>
where
    T: std::ops::Deref<Target = [u8]> + Sync,
{
    let mut out = if opts.dry_run {
        copy::Out::counting()
    } else {
        copy::Out::create(OutputSpec::new(path).mode(mode))?
    };
    let magic = fs.bytes().get(..4).unwrap_or(b"FS30");
    let reach = std::mem::take(&mut plan.reach);
    out.write_magic(magic)?;
    // A dry run copies nothing: its pass only measures the packed size.
    let sizing = Renamed {
        inner: progress,
        to: "sizing the packed file",
    };
    let (stats, index) = copy::copy_to_packtime(
        fs,
        plan.packpos,
        reach,
        opts.blob_dir.is_some(),
        verify,
        plan.edges.as_mut(),
        &mut out,
        if opts.dry_run { &sizing } else { progress },
    )?;
    Ok((stats, index, out))
}

/// The saved references beside `path` (`<path>.refs`), when they can be trusted as much as
/// the file (see [`zfs_files::open_companion`]).
fn saved_refs(path: &Path) -> Option<zfs_files::Map> {
    let refs_path = zfs_files::with_suffix(path, ".refs");
    let file = zfs_files::open_companion(&refs_path, path)?;
    zfs_files::Map::new(file, &refs_path).ok()
}

/// What a pack from saved references produced: the plan, the copy's results, the output
/// and when the copy started.
type Quick = (
    Box<analyze::Plan>,
    copy::CopyStats,
    copy::OutIndex,
    copy::Out,
    Instant,
);

/// Phases A to C from saved references (`bytes`, see [`prepare`]) and the saved `index`:
/// `None` when they do not fit the file, or the copy finds the file other than they say
/// (the copy is then dropped). Only an interruption is an error.
#[allow(clippy::too_many_arguments)]
fn try_quick<T>(
    fs: &FileStorage<T>,
    path: &Path,
    end: u64,
    bytes: zfs_files::Map,
    index: zfs_format::Index,
    opts: &PackOptions,
    aopts: AnalyzeOptions,
    mode: u32,
    report: &mut Report,
    progress: &dyn Progress,
) -> Result<Option<Quick>>
where
    T: std::ops::Deref<Target = [u8]> + Sync,
{
    let before = report.clone();
    let mut too_large = false;
    let attempt = (|| -> Result<Option<Quick>> {
        // The saved file is read by the analysis only: unmapped before the copy.
        let analysis = match zfs_format::refs_file::RefsFile::parse(&bytes) {
            Ok(refs) if !analyze::fits(&refs, zfs_files::memory_limit()) => {
                too_large = true;
                None
            }
            Ok(refs) => analyze::quick(fs, end, index, &refs, aopts, progress)?,
            Err(_) => None,
        };
        drop(bytes);
        let Some((mut plan, verify)) = analysis else {
            return Ok(None);
        };
        note_plan(report, &plan);
        let t1 = Instant::now();
        let (stats, index, out) =
            phase_c(fs, path, opts, mode, &mut plan, Some(&verify), progress)?;
        // Every object's current record met, and none of ZODB's rules for a pack with
        // nothing to keep or already packed applies (those are left to the usual way).
        let redundant = !stats.unpacked && stats.last_status == Some(zfs_format::Status::Packed);
        if stats.current != verify.objects() as u64 || !stats.any_indexed || redundant {
            return Ok(None);
        }
        Ok(Some((plan, stats, index, out, t1)))
    })();
    let fallback = |report: &mut Report| {
        *report = before;
        report.saved_references = if too_large {
            SavedReferences::TooLarge
        } else {
            SavedReferences::Ignored
        };
        Ok(None)
    };
    match attempt {
        Ok(Some(q)) => Ok(Some(q)),
        Err(PackError::Interrupted) => Err(PackError::Interrupted),
        Ok(None) | Err(_) => fallback(report),
    }
}

/// Packs the FileStorage at `path`.
///
/// Takes the database lock (`<path>.lock`) first, unless `dry_run`, and fails with
/// [`PackError::Locked`] while a ZODB has the database open. On any error the original
/// file is unchanged and no temporary file is left.
pub fn pack(path: &Path, opts: &PackOptions, progress: &dyn Progress) -> Result<Report> {
    if opts.stop == Tid::default() {
        return Err(PackError::InvalidPackTime);
    }
    if let Some(b) = &opts.blob_dir {
        blob::check_dir(b)?;
    }
    let _lock = if opts.dry_run {
        None
    } else {
        Some(lock::acquire(path)?)
    };
    if !opts.dry_run {
        // Partial copies that a killed ZODB pack (or an earlier version of ours) left at
        // ZODB's fixed names; under the database lock nobody is writing them. A symlink
        // there is removed itself, never followed.
        for leftover in [".pack", ".index.index_tmp"] {
            remove_if_exists(&zfs_files::with_suffix(path, leftover))?;
        }
        // A pack killed before renaming the packed file's references into place left
        // their temporary; a pack that writes none (nothing to do) removes it here.
        let refs = zfs_files::with_suffix(path, ".refs");
        if let Some(name) = refs.file_name() {
            zfs_files::remove_stale_temps(&zfs_files::parent_dir(path), name);
        }
    }
    let fs = FileStorage::open(path)?;
    let report = pack_storage(&fs, path, opts, progress);
    // A file that shrank under the pack was refused before anything was renamed (see
    // `pack_storage`); say so rather than whatever the zeros read looked like.
    fs.check_intact()?;
    let mut report = report?;
    // A dry run takes no lock; it says when the real pack would be refused.
    report.database_open = opts.dry_run && lock::is_held(path).unwrap_or(false);
    Ok(report)
}

/// [`pack`] over an already opened storage (the lock, if needed, is the caller's).
pub fn pack_storage<T>(
    fs: &FileStorage<T>,
    path: &Path,
    opts: &PackOptions,
    progress: &dyn Progress,
) -> Result<Report>
where
    T: std::ops::Deref<Target = [u8]> + Sync,
{
    let t0 = Instant::now();
    // The saved index, read as it is: it only saves work (see `committed_end`, `analyze`
    // and `ensure_index`).
    let saved = saved_index(path);
    let sane = saved.as_ref().and_then(|(ipos, index)| {
        zfs_format::index_file::check_sanity(fs, index, *ipos).map(|ltid| (*ipos, ltid))
    });
    let walked = committed_end(fs, sane)?;
    let end = walked.pos.max(if fs.is_empty() { 0 } else { 4 });
    let index_current = sane.is_some_and(|(ipos, _)| ipos == end);
    let tail = fs.len().saturating_sub(end);
    if tail > 0 {
        // Bytes after the last committed transaction: a torn or unfinished last commit is
        // kept (below); committed transactions after damage are not ours to drop.
        if let Some(next) = fs.next_complete_txn(end, walked.last_complete_tid) {
            return Err(PackError::DamagedMiddle {
                path: path.to_path_buf(),
                end,
                why: end_words(walked.reason),
                next,
                tail,
            });
        }
    }
    let mut report = Report {
        outcome: Outcome::Empty,
        stop: opts.stop,
        size_before: end,
        size_after: end,
        packpos: end,
        txns_before: 0,
        txns_removed: 0,
        records_before: 0,
        records_removed: 0,
        objects_at_stop: 0,
        objects_kept: 0,
        extra_kept: 0,
        dangling_ignored: Vec::new(),
        blob_lines: 0,
        blobs: BlobStats::default(),
        earlier_blobs: BlobStats::default(),
        saved_references: SavedReferences::None,
        index_entries: 0,
        state_bytes: 0,
        timings: Vec::new(),
        tail,
        tail_saved: None,
        index_written: false,
        references_saved: false,
        database_open: false,
    };
    let mode = if opts.dry_run {
        0o600
    } else {
        zfs_files::mode_of(path)?
    };
    let old = zfs_files::with_suffix(path, ".old");
    if let Some(b) = &opts.blob_dir {
        if let Some(lines) = blob::leftover(b)? {
            let built;
            let index = match &saved {
                Some((_, index)) if index_current => index,
                _ => {
                    built = zfs_format::scan::build_index(fs, progress)?.index;
                    &built
                }
            };
            let last = walked.last_complete_tid.as_u64();
            report.earlier_blobs = blob::finish_earlier(fs, index, last, b, &lines, opts.dry_run)?;
        }
    }
    let aopts = AnalyzeOptions {
        stop: opts.stop,
        gc: opts.gc,
        allow_dangling: opts.allow_dangling,
    };
    // A pack after the last transaction with saved references (see `prepare`) reads the
    // file once; anything that does not fit them sends it the usual way.
    let mut hint = saved.map(|(_, index)| index);
    let eligible = opts.gc && index_current && end > 4 && opts.stop > walked.last_complete_tid;
    let quick = match (eligible.then(|| saved_refs(path)).flatten(), hint.take()) {
        (Some(refs), Some(index)) => {
            let q = try_quick(
                fs,
                path,
                end,
                refs,
                index,
                opts,
                aopts,
                mode,
                &mut report,
                progress,
            )?;
            if q.is_none() {
                // The index went into the attempt: read again for the usual way.
                hint = saved_index(path).map(|(_, index)| index);
            }
            q
        }
        (_, index) => {
            hint = index;
            None
        }
    };
    let (mut plan, stats, mut index, mut out, t1) = match quick {
        Some((plan, stats, index, out, t1)) => {
            report.saved_references = SavedReferences::Used;
            report.txns_before = stats.txns;
            report.records_before = stats.records_kept + stats.records_dropped;
            report.timings.push(("analysis", t1.duration_since(t0)));
            (plan, stats, index, out, t1)
        }
        None => {
            let t0 = Instant::now();
            let analysis = if end <= 4 {
                analyze::Analysis::Empty
            } else {
                analyze::analyze(fs, end, aopts, hint, progress)?
            };
            report.timings.push(("analysis", t0.elapsed()));
            let mut plan = match analysis {
                analyze::Analysis::Empty => return Ok(report),
                analyze::Analysis::Redundant => {
                    report.outcome = Outcome::Redundant;
                    if !opts.dry_run {
                        fs.check_intact()?;
                        report.index_written = ensure_index(fs, path, end, mode, index_current)?;
                        remove_if_exists(&old)?;
                        if let Some(b) = &opts.blob_dir {
                            blob::remove_old(b)?;
                            blob::write_removed(b, b"", mode)?;
                        }
                    }
                    return Ok(report);
                }
                analyze::Analysis::Work(plan) => plan,
            };
            note_plan(&mut report, &plan);
            report.txns_before = plan.txns_before;
            report.records_before = plan.records_before;
            let t1 = Instant::now();
            let (stats, index, out) = phase_c(fs, path, opts, mode, &mut plan, None, progress)?;
            (plan, stats, index, out, t1)
        }
    };
    report
        .timings
        .push(("copy before the pack time", t1.elapsed()));
    report.txns_removed = stats.txns_dropped;
    report.records_removed = stats.records_dropped;
    report.blob_lines = stats.blob_removed.iter().filter(|&&c| c == b'\n').count() as u64;
    let opos = out.pos();

    if opos == plan.packpos {
        // ZODB's "nothing to do" rule: same byte count before the pack time.
        report.outcome = Outcome::NothingToDo;
        if !opts.dry_run {
            drop(out);
            fs.check_intact()?;
            report.index_written = ensure_index(fs, path, end, mode, index_current)?;
            remove_if_exists(&old)?;
            if let Some(b) = &opts.blob_dir {
                blob::remove_old(b)?;
                blob::write_removed(b, &stats.blob_removed, mode)?;
            }
        }
        return Ok(report);
    }
    report.size_after = opos + (end - plan.packpos);
    if opts.dry_run {
        report.outcome = Outcome::WouldPack;
        if let Some(b) = &opts.blob_dir {
            report.blobs = blob::preview(b, &stats.blob_removed, opts.stop.as_u64())?;
        }
        return Ok(report);
    }

    // Phase D.
    let t2 = Instant::now();
    copy::copy_rest(fs, plan.packpos, end, &mut out, &mut index, progress)?;
    let data_out = out
        .finish()?
        .expect("a pack that is not a dry run writes a file");
    report
        .timings
        .push(("copy after the pack time", t2.elapsed()));

    // The new index, written before the swap (ZODB writes it after) so that a full disk
    // fails here, with the original untouched.
    let t3 = Instant::now();
    // With GC after the last transaction: the packed file's references, for the next pack.
    let refs_path = zfs_files::with_suffix(path, ".refs");
    let refs_out = match plan.edges.take() {
        Some(edges) if plan.packpos == end => refs_out::create(
            OutputSpec::new(&refs_path).mode(mode),
            &index,
            &edges,
            report.size_after,
        )?,
        _ => None,
    };
    let index = index.finish();
    report.index_entries = index.len() as u64;
    let index_path = zfs_files::with_suffix(path, ".index");
    let index_out = write_index_output(
        OutputSpec::new(&index_path).mode(mode),
        &index,
        report.size_after,
    )?;
    drop(index);
    interrupt::check(progress)?;
    // Everything above read the original through its mapping: if it shrank under us, the
    // copies hold zeros where its bytes were, and nothing may be renamed.
    fs.check_intact()?;

    // A torn or unfinished last commit is not part of the packed file: it is saved where
    // ZODB saves the bytes it cuts from a file, before the original can go.
    let tail_saved = if tail > 0 {
        let tail_bytes = usize::try_from(end)
            .ok()
            .and_then(|e| fs.bytes().get(e..))
            .unwrap_or_default();
        Some(zfs_files::save_free_trn(path, tail_bytes, mode)?)
    } else {
        None
    };
    let forget_tail = |e: PackError| {
        if let Some(t) = &tail_saved {
            let _ = fs::remove_file(t);
        }
        e
    };

    // The swap. The original stays reachable under one of its two names at every moment,
    // and the old `.index` and `.refs` go first, so no crash can pair the packed file with
    // them. The garbage blob list is saved first: a pack killed after the swap leaves it
    // for the next one to finish.
    let swap = (|| {
        if let Some(b) = &opts.blob_dir {
            blob::write_removed(b, &stats.blob_removed, mode)?;
        }
        keep_as_old(path, &old, mode)?;
        remove_if_exists(&index_path)?;
        remove_if_exists(&refs_path)?;
        sync_dir(path)
    })();
    swap.map_err(forget_tail)?;
    data_out.commit().map_err(|e| forget_tail(e.into()))?;
    report.outcome = Outcome::Packed;
    report.tail_saved = tail_saved;
    let finish = (|| {
        index_out.commit()?;
        report.index_written = true;
        if let Some(r) = refs_out {
            r.commit()?;
            report.references_saved = true;
        }
        if let Some(b) = &opts.blob_dir {
            progress.start_counting("removing blob files", report.blob_lines, "files");
            blob::remove_old(b)?;
            report.blobs = blob::apply(b, &stats.blob_removed, opts.keep_old, opts.stop.as_u64())?;
        }
        if !opts.keep_old {
            remove_if_exists(&old)?;
            sync_dir(path)?;
        }
        Ok(())
    })();
    finish.map_err(|e| PackError::AfterSwap(Box::new(e)))?;
    report.timings.push(("files", t3.elapsed()));
    Ok(report)
}
