//! Offline pack with garbage collection, byte-identical to ZODB's packer.
//!
//! [`pack`] runs the four phases of ZODB's `FileStoragePacker` on a file at rest:
//!
//! 1. scan to the pack time (the stop tid `S`, inclusive): the current record of every
//!    object as of `S`, and the position `packpos` of the first transaction after it;
//! 2. reachability: from the root (with GC), and from backpointers after `S` into the
//!    packed region;
//! 3. copy the kept revisions before `S` into packed (`'p'`) transactions, every record
//!    with `prev = 0` and its data resolved;
//! 4. copy everything after `S` verbatim except `prev` pointers, rebuilt, and
//!    backpointers, re-pointed into the new file.
//!
//! The output, the `.index` file, `.old` and the blob directory are what ZODB's
//! `FileStorage.pack` leaves, wherever ZODB succeeds without losing data. Where it fails
//! or loses data, our documented decisions apply (section 6 of the pack spec): dangling
//! references are listed and refused (or ignored with `allow_dangling`), revisions kept
//! by backpointers after `S` have their references followed, a pack without GC keeps
//! the revisions such backpointers need, FS21 files and zlib records are read.
//!
//! Scanning and reference extraction run on all cores; positions and output order are
//! those of the sequential algorithm. The state is compact: 8 bytes per object for the
//! scan map, one bit per object for reachability; the packed file's index reuses the scan
//! map's slots. Records read at random (tracing, backpointers) are read with `pread`, so
//! their pages never become resident in this process.

mod analyze;
pub mod blob;
mod copy;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod interrupt;
pub mod lock;
mod oidmap;
mod reach;
mod records;

use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use zfs_format::{FileStorage, Progress, Tid};

pub use analyze::AnalyzeOptions;
pub use blob::BlobStats;
pub use error::{Dangling, PackError, Result};

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
    /// Checked between batches of work: once set, the pack stops, removes `.pack` and
    /// returns [`PackError::Interrupted`] (a binary sets it from its signal handlers).
    pub interrupt: Option<&'static AtomicBool>,
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
            interrupt: None,
        }
    }
}

/// How a pack ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// What a pack did (or, for a dry run, would do).
#[derive(Clone, Debug)]
pub struct Report {
    /// How it ended.
    pub outcome: Outcome,
    /// The stop tid used.
    pub stop: Tid,
    /// Size of the committed data before.
    pub size_before: u64,
    /// Size of the file after (equal to `size_before` unless packed).
    pub size_after: u64,
    /// Position of the first transaction after the pack time, in the original.
    pub packpos: u64,
    /// Transactions before the pack time.
    pub txns_before: u64,
    /// Of those, transactions left out entirely.
    pub txns_removed: u64,
    /// Data records before the pack time.
    pub records_before: u64,
    /// Of those, records left out.
    pub records_removed: u64,
    /// Objects existing at the pack time.
    pub objects_at_stop: u64,
    /// Objects kept in the packed region.
    pub objects_kept: u64,
    /// Objects kept only because we follow the references of revisions that
    /// backpointers after the pack time keep (ZODB would have dropped them).
    pub extra_kept: u64,
    /// Dangling references ignored (`allow_dangling`, or in revisions ZODB keeps unseen).
    pub dangling_ignored: Vec<Dangling>,
    /// Lines of the blob `.removed` file (garbage blob objects and revisions).
    pub blob_lines: u64,
    /// Blob files removed (moved to `<blob_dir>.old` with `keep_old`).
    pub blobs: BlobStats,
    /// Objects in the new index.
    pub index_entries: u64,
    /// Heap bytes of the reachability structures at their peak.
    pub state_bytes: u64,
    /// Time per phase: analysis, copy before, copy after, files.
    pub timings: Vec<(&'static str, Duration)>,
    /// Where the bytes after the last committed transaction were saved, when `.old` was
    /// not kept and the file had such a tail.
    pub tail_saved: Option<PathBuf>,
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = p.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn remove_if_exists(p: &Path) -> Result<()> {
    match fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PackError::io(p, e)),
    }
}

fn sync_dir(p: &Path) {
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The end of the last committed transaction (ZODB's `_pos`), walking headers and
/// handing the pages back as it goes (a mapped walk otherwise keeps the whole file
/// resident: the kernel maps neighbouring cached pages on every fault).
fn committed_end<T: std::ops::Deref<Target = [u8]>>(fs: &FileStorage<T>) -> Result<u64> {
    let mut it = fs.transactions();
    let mut released = 0;
    while let Some(t) = it.next() {
        t?;
        if it.pos() - released > 4 << 20 {
            fs.release(released, it.pos());
            released = it.pos();
        }
    }
    fs.release(0, fs.len());
    Ok(it.finish().pos)
}

/// Writes `tail` to the first free `<path>.trN` (ZODB's `_truncate`); returns its path.
fn save_tail(path: &Path, tail: &[u8]) -> Result<PathBuf> {
    for n in 0.. {
        let p = with_suffix(path, &format!(".tr{n}"));
        match fs::OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(mut f) => {
                f.write_all(tail).map_err(|e| PackError::io(&p, e))?;
                f.sync_all().map_err(|e| PackError::io(&p, e))?;
                return Ok(p);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(PackError::io(&p, e)),
        }
    }
    unreachable!("some .trN is free")
}

/// Writes an index file as `fsIndex.save` does, fsynced.
fn write_index_file(p: &Path, index: &zfs_format::Index, pos: u64) -> Result<()> {
    let io = |e| PackError::io(p, e);
    let f = fs::File::create(p).map_err(io)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    zfs_format::index_file::write_index(&mut w, index, pos).map_err(io)?;
    w.flush().map_err(io)?;
    let f = w.into_inner().map_err(|e| io(e.into_error()))?;
    f.sync_all().map_err(io)
}

/// Packs the FileStorage at `path`.
///
/// Takes the database lock (`<path>.lock`) first, unless `dry_run`, and fails with
/// [`PackError::Locked`] while a ZODB has the database open. On any error the original
/// file is unchanged and `<path>.pack` is removed.
pub fn pack(path: &Path, opts: &PackOptions, progress: &dyn Progress) -> Result<Report> {
    if opts.stop == Tid::default() {
        return Err(PackError::InvalidPackTime);
    }
    let _lock = if opts.dry_run {
        None
    } else {
        Some(lock::acquire(path)?)
    };
    let fs = FileStorage::open(path)?;
    pack_storage(&fs, path, opts, progress)
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
    let end = committed_end(fs)?.max(if fs.is_empty() { 0 } else { 4 });
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
        index_entries: 0,
        state_bytes: 0,
        timings: Vec::new(),
        tail_saved: None,
    };
    let aopts = AnalyzeOptions {
        stop: opts.stop,
        gc: opts.gc,
        allow_dangling: opts.allow_dangling,
        interrupt: opts.interrupt,
    };
    let analysis = if end <= 4 {
        analyze::Analysis::Empty
    } else {
        analyze::analyze(fs, end, aopts, progress)?
    };
    report.timings.push(("analysis", t0.elapsed()));
    let old = with_suffix(path, ".old");
    let mut plan = match analysis {
        analyze::Analysis::Empty => return Ok(report),
        analyze::Analysis::Redundant => {
            report.outcome = Outcome::Redundant;
            if !opts.dry_run {
                remove_if_exists(&old)?;
                if let Some(b) = &opts.blob_dir {
                    blob::remove_old(b)?;
                    blob::write_removed(b, b"")?;
                }
            }
            return Ok(report);
        }
        analyze::Analysis::Work(plan) => plan,
    };
    report.packpos = plan.packpos;
    report.txns_before = plan.txns_before;
    report.records_before = plan.records_before;
    report.objects_at_stop = plan.reach.map.live() as u64;
    report.objects_kept = plan.reach.objects() as u64;
    report.extra_kept = plan.extra_kept as u64;
    report.dangling_ignored = plan.dangling_ignored.clone();
    report.state_bytes = plan.reach.heap_bytes() as u64;

    // Phase C.
    let t1 = Instant::now();
    let pack_path = with_suffix(path, ".pack");
    let mut out = if opts.dry_run {
        copy::Out::counting()
    } else {
        copy::Out::create(&pack_path)?
    };
    let cleanup = |e: PackError| {
        let _ = fs::remove_file(&pack_path);
        e
    };
    let magic = fs.bytes().get(..4).unwrap_or(b"FS30");
    let reach = std::mem::take(&mut plan.reach);
    let phase_c = (|| {
        out.write_magic(magic)?;
        copy::copy_to_packtime(
            fs,
            plan.packpos,
            reach,
            opts.blob_dir.is_some(),
            &mut out,
            progress,
            opts.interrupt,
        )
    })();
    let (stats, mut index) = match phase_c {
        Ok(x) => x,
        Err(e) => return Err(if opts.dry_run { e } else { cleanup(e) }),
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
            remove_if_exists(&pack_path)?;
            remove_if_exists(&old)?;
            if let Some(b) = &opts.blob_dir {
                blob::remove_old(b)?;
                blob::write_removed(b, &stats.blob_removed)?;
            }
        }
        return Ok(report);
    }
    report.size_after = opos + (end - plan.packpos);
    if opts.dry_run {
        report.outcome = Outcome::WouldPack;
        if let Some(b) = &opts.blob_dir {
            report.blobs = blob::preview(b, &stats.blob_removed)?;
        }
        return Ok(report);
    }

    // Phase D.
    let t2 = Instant::now();
    let phase_d = (|| {
        copy::copy_rest(
            fs,
            plan.packpos,
            end,
            &mut out,
            &mut index,
            progress,
            opts.interrupt,
        )?;
        out.finish()
    })();
    if let Err(e) = phase_d {
        return Err(cleanup(e));
    }
    report
        .timings
        .push(("copy after the pack time", t2.elapsed()));

    // The new index, written before the swap (ZODB writes it after) so that a full disk
    // fails here, with the original untouched.
    let t3 = Instant::now();
    let index = index.finish();
    report.index_entries = index.len() as u64;
    let index_path = with_suffix(path, ".index");
    let index_tmp = with_suffix(path, ".index.index_tmp");
    let written = write_index_file(&index_tmp, &index, report.size_after);
    drop(index);
    if let Err(e) = written {
        let _ = fs::remove_file(&index_tmp);
        return Err(cleanup(e));
    }
    interrupt::check(opts.interrupt).map_err(|e| {
        let _ = fs::remove_file(&index_tmp);
        cleanup(e)
    })?;

    // The swap. The original stays reachable under one of its two names at every moment,
    // and the old `.index` goes first, so no crash can pair the packed file with it.
    let swap = (|| {
        remove_if_exists(&old)?;
        if fs::hard_link(path, &old).is_err() {
            fs::copy(path, &old).map_err(|e| PackError::io(&old, e))?;
        }
        remove_if_exists(&index_path)?;
        sync_dir(path);
        Ok(())
    })();
    if let Err(e) = swap {
        let _ = fs::remove_file(&index_tmp);
        return Err(cleanup(e));
    }
    fs::rename(&pack_path, path).map_err(|e| {
        let _ = fs::remove_file(&index_tmp);
        cleanup(PackError::io(path, e))
    })?;
    report.outcome = Outcome::Packed;
    let finish = (|| {
        fs::rename(&index_tmp, &index_path).map_err(|e| PackError::io(&index_path, e))?;
        sync_dir(path);
        if let Some(b) = &opts.blob_dir {
            progress.start_counting("removing blob files", report.blob_lines, "files");
            blob::remove_old(b)?;
            report.blobs = blob::apply(b, &stats.blob_removed, opts.keep_old)?;
        }
        if !opts.keep_old {
            // Bytes after the last committed transaction (a torn or unfinished commit)
            // were not packed; before `.old` goes, they are saved where ZODB saves them
            // when it truncates a file on open: the first free `<file>.trN`.
            if fs.len() > end {
                report.tail_saved = Some(save_tail(path, &fs.bytes()[end as usize..])?);
            }
            remove_if_exists(&old)?;
        }
        Ok(())
    })();
    finish.map_err(|e| PackError::AfterSwap(Box::new(e)))?;
    report.timings.push(("files", t3.elapsed()));
    Ok(report)
}
