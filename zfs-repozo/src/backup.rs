//! `repozo -B`: decide between nothing, an incremental and a full backup, then write the
//! data file, its `.index` and the `.dat` line exactly as Python repozo does.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use zfs_format::index_file::{open_index, write_index, IndexSource};
use zfs_format::FileStorage;

use crate::error::{Error, Result};
use crate::interrupted;
use crate::md5::Md5;
use crate::names::{join, Kind, Stamp};
use crate::repo::{self, ChainFile, DatLine};
use crate::source::{chain_md5, SourceView};
use crate::{Hooks, Ticker};

/// What `repozo -B` was asked to do.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    /// The repository directory, as given (it prefixes every recorded path).
    pub repository: String,
    /// The source Data.fs, as given.
    pub file: String,
    /// `-F`: always a full backup.
    pub full: bool,
    /// `-Q`: decide from the last `.dat` line only.
    pub quick: bool,
    /// `-z`: gzip the new data file.
    pub gzip: bool,
    /// Compression level for `-z`.
    pub gzip_level: u32,
    /// `-k`: after a full backup, delete older backups.
    pub kill_old: bool,
    /// The clock; `None` reads the system clock.
    pub now: Option<Stamp>,
    /// How long to wait for another run's lock on the repository before failing.
    pub lock_wait: std::time::Duration,
}

impl BackupOptions {
    /// Options for a plain backup of `file` into `repository`.
    pub fn new(repository: impl Into<String>, file: impl Into<String>) -> Self {
        BackupOptions {
            repository: repository.into(),
            file: file.into(),
            full: false,
            quick: false,
            gzip: false,
            gzip_level: crate::gz::DEFAULT_LEVEL,
            kill_old: false,
            now: None,
            lock_wait: repo::DEFAULT_LOCK_WAIT,
        }
    }
}

/// What a backup run did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "kebab-case")
)]
pub enum Action {
    /// The repository already holds the source: nothing written.
    #[cfg_attr(feature = "serde", serde(rename = "nothing"))]
    NothingToDo,
    /// A full backup was written.
    Full,
    /// An incremental backup was written.
    Incremental,
}

/// The result of a backup run.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BackupReport {
    /// What was done.
    pub action: Action,
    /// Why a full backup was made (repozo's log text), if one was.
    pub reason: Option<String>,
    /// The new data file's path as recorded in the `.dat`.
    #[cfg_attr(feature = "serde", serde(rename = "file"))]
    pub data_file: Option<String>,
    /// The `.dat` line written (in JSON: its `start`, `end` and `md5` beside the others).
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub dat_line: Option<DatLine>,
    /// Size of the source file when the run started.
    pub source_size: u64,
    /// Bytes of the new data file on disk (compressed size for `-z`).
    pub written: u64,
    /// Data files removed by `-k`.
    pub removed: Vec<String>,
    /// Committed-looking data the backup could not include: the source is damaged where
    /// its readable data ends, and complete transactions follow the damage.
    pub left_out: Option<LeftOut>,
}

/// Bytes of the source after damage in its middle, which a backup (like Python repozo's)
/// does not hold: only what FileStorage reads up to the damage is copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LeftOut {
    /// Where the readable data ends (the end of the backed-up range).
    pub at: u64,
    /// Where the first complete transaction after the damage starts.
    pub next_transaction: u64,
    /// Bytes from `at` to the end of the source.
    pub bytes: u64,
}

/// The source, opened once: its mapping, a file handle on the same inode, its mode.
struct Source {
    fs: FileStorage,
    file: File,
    path: String,
    /// Its permission bits: every file of the backup gets them (a copy of a database is
    /// never more open than the database).
    mode: u32,
}

impl Source {
    fn open(path: &str) -> Result<Source> {
        // Regular files only, opened without blocking (a FIFO cannot hang the run). The
        // mapping and the handle share one open file, so they are the same file even if
        // a pack replaces it meanwhile.
        let file = zfs_files::open_input(Path::new(path))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        let mapped = file.try_clone().map_err(|e| Error::io(path, e))?;
        let fs = FileStorage::open_file(mapped, Path::new(path))
            .map_err(|e| Error::source_format(path, e))?;
        Ok(Source {
            fs,
            file,
            path: path.to_string(),
            mode: zfs_files::permissions_of(&meta),
        })
    }
    fn len(&self) -> u64 {
        self.fs.len()
    }
    fn view(&self, safe_end: u64) -> SourceView<'_> {
        SourceView {
            map: self.fs.bytes(),
            file: &self.file,
            path: &self.path,
            safe_end,
        }
    }
}

/// Runs a backup.
pub fn backup(opts: &BackupOptions, hooks: &Hooks<'_>) -> Result<BackupReport> {
    let _lock = repo::lock(&opts.repository, true, opts.lock_wait, &mut |holder| {
        (hooks.notice)(&format!(
            "the repository {} is locked by {holder}; waiting up to {} s for it to finish",
            opts.repository,
            opts.lock_wait.as_secs()
        ))
    })?;
    let mut left = repo::remove_stale_temps(&opts.repository);
    left.extend(repo::remove_orphans(&opts.repository)?);
    for name in left {
        (hooks.notice)(&format!(
            "removed {name}, left in {} by an interrupted run",
            opts.repository
        ));
    }
    let now = opts.now.unwrap_or_else(Stamp::now);
    let when = crate::current_when(&opts.repository, now)?;
    hooks.log(&format!(
        "looking for files between last full backup and {when}..."
    ));
    let chain = repo::find_files(&opts.repository, &when)?;
    log_chain(hooks, &when, &chain);
    let src = Source::open(&opts.file)?;
    let srcsz = src.len();
    // Only a decision reads the source before the copy (which finds its own end from the
    // index), so a full backup skips the walk over every transaction header that finds the
    // end of the committed data (mapped bytes below it are never truncated under us).
    let decide = !opts.full && !chain.is_empty();
    let committed = if decide {
        src.fs.end().map(|e| e.pos).unwrap_or(0)
    } else {
        0
    };

    let mut reason = None;
    let unmatched = if decide {
        interrupted::complete_dat(hooks, &chain, &src.view(committed), srcsz, src.mode)?
    } else {
        None
    };
    let decision = if !decide {
        hooks.log("doing a full backup");
        None
    } else if let Some(path) = unmatched {
        full_because(
            hooks,
            &format!("{path} is not listed in the .dat (full backup)"),
            &mut reason,
        )?
    } else if opts.quick {
        quick_decision(opts, hooks, &chain, &src, srcsz, committed, &mut reason)?
    } else {
        default_decision(opts, hooks, &chain, &src, srcsz, committed, &mut reason)?
    };
    let mut report = BackupReport {
        action: Action::NothingToDo,
        reason,
        data_file: None,
        dat_line: None,
        source_size: srcsz,
        written: 0,
        removed: Vec::new(),
        left_out: None,
    };
    // Whatever was decided from the source's bytes is void if it shrank under us.
    src.fs
        .check_intact()
        .map_err(|e| Error::source_format(&src.path, e))?;
    let start = match decision {
        Some(Decision::NothingToDo) => {
            hooks.log("No changes, nothing to do");
            return Ok(report);
        }
        Some(Decision::Incremental(start)) => {
            hooks.log(&format!("doing incremental, starting at: {start}"));
            Some(start)
        }
        None => None,
    };
    // Strictly after every data file (two runs in one second would otherwise collide, or
    // sort a full backup after an incremental of the same second), unless the newest file
    // is far in the future (a clock moved back): then it is invisible anyway, as in Python.
    let mut stamp = match repo::newest_stamp(&opts.repository)? {
        Some(n) if n >= now && n.secs - now.secs <= crate::FUTURE_SLACK_SECS => n.next(),
        _ => now,
    };
    // A name of that second held by another user's file (no backup of ours, see
    // `repo::data_files`) is passed by: the backup takes the next free second.
    let trusted = repo::Trusted::of(&opts.repository);
    for _ in 0..crate::FUTURE_SLACK_SECS {
        let root = stamp.format();
        let strangers = [".fs", ".fsz", ".deltafs", ".deltafsz", ".index", ".dat"]
            .iter()
            .map(|ext| join(&opts.repository, &format!("{root}{ext}")))
            .any(|p| std::fs::symlink_metadata(&p).is_ok() && !trusted.owns(&p));
        if !strangers {
            break;
        }
        stamp = stamp.next();
    }
    let kind = Kind::of(start.is_none(), opts.gzip);
    let name = format!("{}{}", stamp.format(), kind.ext());
    let dest = join(&opts.repository, &name);
    if std::fs::symlink_metadata(&dest).is_ok() {
        return Err(Error::WouldOverwrite(dest));
    }
    if src.fs.is_empty() {
        return Err(Error::EmptySource(src.path.clone()));
    }
    let index_path = join(&opts.repository, &format!("{}.index", stamp.format()));
    let pending = write_backup(opts, hooks, &src, start.unwrap_or(0), &dest, &index_path)?;
    // Nothing read from the source may be put in place if it shrank while it was read
    // (the temporaries are removed when `pending` is dropped).
    src.fs
        .check_intact()
        .map_err(|e| Error::source_format(&src.path, e))?;
    let line = DatLine {
        path: dest.clone(),
        start: start.unwrap_or(0),
        end: pending.pos,
        md5: pending.md5.clone(),
    };
    let written = pending.written;
    let left_out = pending.left_out;
    if let Some(l) = left_out {
        (hooks.notice)(&format!(
            "{}: the data readable from the start ends at byte {}, but a complete transaction \
             starts at byte {}: the file is damaged there, and this backup (like Python \
             repozo's) holds none of the {} bytes from byte {} on; run `zodbfs check` on it",
            src.path, l.at, l.next_transaction, l.bytes, l.at
        ));
    }
    match start {
        None => {
            let dat = join(&opts.repository, &format!("{}.dat", stamp.format()));
            report.action = Action::Full;
            pending.commit_full(&dat, &line, src.mode)?;
        }
        Some(_) => {
            let dat = repo::dat_path_of(&chain[0]);
            report.action = Action::Incremental;
            pending.commit_incremental(&dat, &line, src.mode)?;
        }
    }
    report.data_file = Some(dest);
    report.dat_line = Some(line);
    report.written = written;
    report.left_out = left_out;
    if start.is_none() && opts.kill_old {
        report.removed = repo::kill_old(&opts.repository, &|m| hooks.log(m))?;
    }
    Ok(report)
}

/// Logs the chain found, as repozo's `find_files` does.
pub(crate) fn log_chain(hooks: &Hooks<'_>, when: &str, chain: &[ChainFile]) {
    if chain.is_empty() {
        hooks.log("no files found");
        return;
    }
    hooks.log(&format!("files needed to recover state as of {when}:"));
    for c in chain {
        hooks.log(&format!("\t{}", c.path));
    }
}

enum Decision {
    NothingToDo,
    Incremental(u64),
}

const SHRUNK: &str = "file shrunk, possibly because of a pack (full backup)";
const CHANGED: &str = "file changed, possibly because of a pack (full backup)";

fn full_because(
    hooks: &Hooks<'_>,
    why: &str,
    reason: &mut Option<String>,
) -> Result<Option<Decision>> {
    hooks.log(why);
    *reason = Some(why.to_string());
    Ok(None)
}

fn quick_decision(
    opts: &BackupOptions,
    hooks: &Hooks<'_>,
    chain: &[ChainFile],
    src: &Source,
    srcsz: u64,
    committed: u64,
    reason: &mut Option<String>,
) -> Result<Option<Decision>> {
    let _ = opts;
    let view = src.view(committed);
    let dat = repo::dat_path_of(&chain[0]);
    let last = repo::read_dat(&dat)?.and_then(|lines| lines.last().cloned());
    let Some(last) = last else {
        return full_because(hooks, "missing or empty .dat file (full backup)", reason);
    };
    if srcsz < last.end {
        return full_because(hooks, SHRUNK, reason);
    }
    let mut h = Md5::new();
    view.hash(&mut h, last.start, last.end, &hooks.quiet())?;
    let srcsum = h.hex();
    hooks.log(&format!("last incremental file: {}", last.path));
    hooks.log(&format!("last incremental checksum: {}", last.md5));
    hooks.log(&format!(
        "source checksum range: [{}..{}], sum: {srcsum}",
        last.start, last.end
    ));
    if srcsum == last.md5 {
        if srcsz == last.end {
            return Ok(Some(Decision::NothingToDo));
        }
        return Ok(Some(Decision::Incremental(last.end)));
    }
    full_because(hooks, CHANGED, reason)
}

fn default_decision(
    opts: &BackupOptions,
    hooks: &Hooks<'_>,
    chain: &[ChainFile],
    src: &Source,
    srcsz: u64,
    committed: u64,
    reason: &mut Option<String>,
) -> Result<Option<Decision>> {
    if !hooks.verbose {
        // No MD5 is printed: comparing the chain's bytes with the source's gives the same
        // answers as comparing their MD5s, at memory speed, without hashing the source.
        return compare_decision(chain, src, srcsz, committed, hooks, reason);
    }
    // Guess the chain's size to snapshot the source hasher there while the chain is hashed
    // in parallel: plain files have their size on disk, the `.dat` knows the rest.
    let plain: Option<u64> = chain.iter().try_fold(0u64, |acc, c| {
        if c.kind.is_gzip() {
            None
        } else {
            std::fs::metadata(&c.path).ok().map(|m| acc + m.len())
        }
    });
    let guess = plain.or_else(|| {
        repo::read_dat(&repo::dat_path_of(&chain[0]))
            .ok()
            .flatten()
            .and_then(|l| l.last().map(|l| l.end))
    });
    let view = src.view(committed);
    hooks.progress.start("hashing", srcsz);
    let (chain_result, src_result) = std::thread::scope(|s| {
        let quiet = hooks.quiet();
        let t = s.spawn(move || chain_md5(chain, &quiet));
        let mut h = Md5::new();
        let mut prefix = None;
        let r = (|| -> Result<()> {
            if let Some(g) = guess.filter(|g| *g <= srcsz) {
                view.hash(&mut h, 0, g, &hooks.ticker())?;
                prefix = Some((g, h.clone()));
                view.hash(&mut h, g, srcsz, &hooks.ticker())?;
            } else {
                view.hash(&mut h, 0, srcsz, &hooks.ticker())?;
            }
            Ok(())
        })();
        let chain_result = t.join().expect("the hashing thread does not panic");
        (chain_result, r.map(|_| (h.hex(), prefix)))
    });
    let _ = opts;
    let (reposz, reposum) = chain_result?;
    let (srcsum, prefix) = src_result?;
    let backed_up = match prefix {
        Some((g, h)) if g == reposz.min(srcsz) => h.hex(),
        _ if reposz >= srcsz => srcsum.clone(),
        _ => {
            let mut h = Md5::new();
            view.hash(&mut h, 0, reposz.min(srcsz), &hooks.quiet())?;
            h.hex()
        }
    };
    hooks.log(&format!("repository state: {reposz} bytes, md5: {reposum}"));
    hooks.log(&format!("current state   : {srcsz} bytes, md5: {srcsum}"));
    hooks.log(&format!(
        "backed up state : {reposz} bytes, md5: {backed_up}"
    ));
    if srcsz == reposz && srcsum == reposum {
        return Ok(Some(Decision::NothingToDo));
    }
    if srcsz < reposz {
        return full_because(hooks, SHRUNK, reason);
    }
    if reposum == backed_up {
        return Ok(Some(Decision::Incremental(reposz)));
    }
    full_because(hooks, CHANGED, reason)
}

/// The default decision without MD5s: is the chain a prefix of the source?
fn compare_decision(
    chain: &[ChainFile],
    src: &Source,
    srcsz: u64,
    committed: u64,
    hooks: &Hooks<'_>,
    reason: &mut Option<String>,
) -> Result<Option<Decision>> {
    let view = src.view(committed);
    let mut reposz = 0u64;
    let mut equal = true;
    let mut buf = Vec::new();
    hooks.progress.start("comparing", srcsz);
    // The source streams through memory as it is compared.
    let mut stream = src.fs.stream(0);
    for c in chain {
        crate::source::read_uncompressed(&c.path, c.kind.is_gzip(), &mut |b| {
            if equal {
                equal = view.matches(reposz, b, &mut buf)?;
            }
            reposz += b.len() as u64;
            stream.advance(src.fs.bytes(), reposz);
            hooks.advance(b.len() as u64)
        })?;
    }
    stream.finish(src.fs.bytes());
    if srcsz == reposz && equal {
        return Ok(Some(Decision::NothingToDo));
    }
    if srcsz < reposz {
        return full_because(hooks, SHRUNK, reason);
    }
    if equal {
        return Ok(Some(Decision::Incremental(reposz)));
    }
    full_because(hooks, CHANGED, reason)
}

/// A backup written but not yet in place: its data file and `.index` as private
/// temporaries (removed if this is dropped), with what its `.dat` line needs.
struct Pending {
    data: zfs_files::Output,
    index: zfs_files::Output,
    /// The end of the copied range in the source.
    pos: u64,
    /// Bytes of the data file on disk (compressed size for `-z`).
    written: u64,
    /// MD5 of the copied (uncompressed) bytes.
    md5: String,
    /// What lies after damage and is not copied.
    left_out: Option<LeftOut>,
}

impl Pending {
    /// Puts a full backup in place: its `.dat`, its `.index`, then its data file. A run
    /// killed before the last rename leaves a `.dat` (and maybe an `.index`) that no data
    /// file goes with: both tools restore the repository as before, and the next backup
    /// removes them ([`repo::remove_orphans`]). A failure takes back what was put in place.
    fn commit_full(self, dat: &str, line: &DatLine, mode: u32) -> Result<()> {
        let index_path = self.index.target().to_path_buf();
        repo::write_atomically(dat, line.to_line().as_bytes(), mode)?;
        if let Err(e) = self.index.commit() {
            let _ = std::fs::remove_file(dat);
            return Err(e.into());
        }
        if let Err(e) = self.data.commit() {
            let _ = std::fs::remove_file(&index_path);
            let _ = std::fs::remove_file(dat);
            return Err(e.into());
        }
        Ok(())
    }

    /// Puts an incremental backup in place: its `.index`, its data file, then its `.dat`
    /// with the new line, prepared and fsynced before the first rename so that only a
    /// rename separates the data file from its line. A run killed in between leaves a
    /// data file that the next backup lists when it holds the source's bytes
    /// (`interrupted::complete_dat`). A failure takes back what was put in place.
    fn commit_incremental(self, dat: &str, line: &DatLine, mode: u32) -> Result<()> {
        let index_path = self.index.target().to_path_buf();
        let data_path = self.data.target().to_path_buf();
        let dat = repo::dat_with_line(dat, line, mode)?;
        self.index.commit()?;
        if let Err(e) = self.data.commit() {
            let _ = std::fs::remove_file(&index_path);
            return Err(e.into());
        }
        if let Err(e) = dat.commit() {
            // Without its .dat line the new file is no backup: take it back.
            let _ = std::fs::remove_file(&data_path);
            let _ = std::fs::remove_file(&index_path);
            return Err(e.into());
        }
        Ok(())
    }
}

/// Writes the `.index` and the data file `[start, pos)` as temporaries beside their
/// names, with the source's mode; nothing is put in place.
fn write_backup(
    opts: &BackupOptions,
    hooks: &Hooks<'_>,
    src: &Source,
    start: u64,
    dest: &str,
    index_path: &str,
) -> Result<Pending> {
    let source_index = format!("{}.index", src.path);
    let (scan, how) = open_index(&src.fs, Path::new(&source_index), hooks.progress)
        .map_err(|e| Error::source_format(&src.path, e))?;
    if how == IndexSource::Rejected {
        let abs = std::fs::canonicalize(&src.path).unwrap_or_else(|_| src.path.clone().into());
        (hooks.notice)(&format!("Ignoring index for {}", abs.display()));
    }
    let pos = scan.end.pos;
    let left_out = src
        .fs
        .next_complete_txn(pos, scan.end.last_complete_tid)
        .map(|next_transaction| LeftOut {
            at: pos,
            next_transaction,
            bytes: src.len().saturating_sub(pos),
        });
    if pos < start {
        return Err(Error::ShortCopy {
            path: src.path.clone(),
            got: pos,
            want: start,
        });
    }
    let spec = |path: &str| -> Result<zfs_files::OutputSpec> {
        Ok(zfs_files::OutputSpec::new(path)
            .mode(src.mode)
            .not_input_file(Path::new(&src.path), &src.file)?)
    };
    let (index_spec, data_spec) = (spec(index_path)?, spec(dest)?);
    hooks.log("writing index");
    let (index, data) = std::thread::scope(|s| {
        let index = s.spawn(|| write_index_file(index_spec, &scan.index, pos));
        if start == 0 {
            hooks.log(&format!("writing full backup: {pos} bytes to {dest}"));
        } else {
            hooks.log(&format!(
                "writing incremental: {} bytes to {dest}",
                pos - start
            ));
        }
        let data = copy_out(opts, hooks, src, start, pos, data_spec);
        (index.join().expect("the index thread does not panic"), data)
    });
    // A data error (an interruption among them) wins over an index error.
    let (data, written, md5) = data?;
    let index = index?;
    Ok(Pending {
        data,
        index,
        pos,
        written,
        md5,
        left_out,
    })
}

/// Writes the `.index` bytes of `index` at `pos` to a new temporary for `spec`, fsynced.
fn write_index_file(
    spec: zfs_files::OutputSpec,
    index: &zfs_format::index::Index,
    pos: u64,
) -> Result<zfs_files::Output> {
    let out = spec.create()?;
    let target = out.target().to_path_buf();
    let written = (|| {
        let mut w = BufWriter::with_capacity(1 << 20, out.file());
        write_index(&mut w, index, pos)?;
        w.flush()?;
        out.file().sync_all()
    })();
    written.map_err(|e| Error::io(&target, e))?;
    Ok(out)
}

/// A writer that fails once the run is interrupted (so that a long compression stops at
/// its next write).
struct StopWriter<'a, W> {
    inner: W,
    ticker: Ticker<'a>,
}

impl<W: Write> Write for StopWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.ticker.interrupted() {
            // Not `ErrorKind::Interrupted`: `write_all` would retry that.
            return Err(std::io::Error::other("interrupted"));
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The error of a kernel copy from the source to a repository file: what the output's file
/// system refused (no space, quota, size, read-only) names the repository file, the rest
/// the source.
fn copy_error(e: std::io::Error, src: &str, dest: &Path) -> Error {
    use rustix::io::Errno;
    let output_side = [Errno::NOSPC, Errno::DQUOT, Errno::FBIG, Errno::ROFS]
        .iter()
        .any(|x| e.raw_os_error() == Some(x.raw_os_error()));
    if output_side {
        Error::io(dest, e)
    } else {
        Error::io(src, e)
    }
}

/// Copies source `[start, end)` to a new temporary for `spec` (gzipped with `-z`), hashing
/// the bytes as they go, and fsyncs it. Returns it with its size on disk and the MD5.
fn copy_out(
    opts: &BackupOptions,
    hooks: &Hooks<'_>,
    src: &Source,
    start: u64,
    end: u64,
    spec: zfs_files::OutputSpec,
) -> Result<(zfs_files::Output, u64, String)> {
    let out = spec.create()?;
    let dest = out.target().to_path_buf();
    let file = out.file();
    let data = &src.fs.bytes()[start as usize..end as usize];
    hooks.progress.start(
        if opts.gzip { "compressing" } else { "copying" },
        end - start,
    );
    let (copied, md5) = std::thread::scope(|s| -> Result<(u64, String)> {
        if opts.gzip {
            let hasher = s.spawn(|| {
                let mut h = Md5::new();
                // Compression reads the same pages beside the hashing.
                let mut stream = src.fs.stream(start).keep_cached();
                let mut done = start;
                for c in data.chunks(crate::source::CHUNK) {
                    h.update(c);
                    done += c.len() as u64;
                    stream.advance(src.fs.bytes(), done);
                }
                stream.finish(src.fs.bytes());
                h.hex()
            });
            let ticker = hooks.ticker();
            let mut w = BufWriter::with_capacity(
                1 << 20,
                StopWriter {
                    inner: file,
                    ticker,
                },
            );
            crate::gz::gzip_parallel(data, opts.gzip_level, &mut w, hooks.progress)
                .and_then(|_| w.flush())
                .map_err(|e| match ticker.check() {
                    Err(stop) => stop,
                    Ok(()) => Error::io(&dest, e),
                })?;
            Ok((
                end - start,
                hasher.join().expect("the hashing thread does not panic"),
            ))
        } else {
            let ticker = hooks.ticker();
            let copier = s.spawn(move || -> std::io::Result<u64> {
                // The kernel copies, in pieces so that an interruption is seen soon.
                let mut done = 0u64;
                while done < end - start {
                    if ticker.interrupted() {
                        return Ok(done);
                    }
                    let want = crate::source::COPY_PIECE.min(end - start - done);
                    let n = crate::source::copy_range(&src.file, start + done, file, done, want)?;
                    done += n;
                    if n < want {
                        return Ok(done);
                    }
                }
                // Flush to disk while the main thread is still hashing.
                file.sync_data()?;
                Ok(done)
            });
            let mut h = Md5::new();
            // The kernel's copy reads the same pages beside the hashing: they stay cached
            // for it.
            let mut stream = src.fs.stream(start).keep_cached();
            let mut done = start;
            for c in data.chunks(crate::source::CHUNK) {
                h.update(c);
                done += c.len() as u64;
                stream.advance(src.fs.bytes(), done);
                hooks.advance(c.len() as u64)?;
            }
            stream.finish(src.fs.bytes());
            let copied = copier
                .join()
                .expect("the copying thread does not panic")
                .map_err(|e| copy_error(e, &src.path, &dest))?;
            hooks.ticker().check()?;
            Ok((copied, h.hex()))
        }
    })?;
    if copied != end - start {
        return Err(Error::ShortCopy {
            path: src.path.clone(),
            got: copied,
            want: end - start,
        });
    }
    file.sync_all().map_err(|e| Error::io(&dest, e))?;
    let written = file.metadata().map_err(|e| Error::io(&dest, e))?.len();
    Ok((out, written, md5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restore::{restore, RestoreOptions};
    use crate::verify::{verify, VerifyOptions};
    use zfs_format::writer::FileBuilder;
    use zfs_format::{Oid, Status, Tid};

    fn file(txns: u64) -> Vec<u8> {
        let mut f = FileBuilder::new(*b"FS30");
        for t in 0..txns {
            let mut b = f
                .txn(
                    Tid::from_u64(0x03e0_0000_0000_0000 + t * 100),
                    Status::Committed,
                    b"",
                    b"",
                    b"",
                )
                .expect("short strings");
            for i in 0..3 {
                b.data(
                    Oid::from_u64((t + i) % 10),
                    0,
                    format!("state {t} {i}").as_bytes(),
                );
            }
            f.push(b);
        }
        f.into_bytes()
    }

    struct Run {
        dir: tempfile::TempDir,
    }

    impl Run {
        fn new() -> Run {
            let dir = tempfile::tempdir().expect("tempdir");
            std::fs::create_dir(dir.path().join("repo")).expect("mkdir");
            Run { dir }
        }
        fn repo(&self) -> String {
            self.dir
                .path()
                .join("repo")
                .to_str()
                .expect("utf8")
                .to_string()
        }
        fn backup(&self, data: &[u8], secs: i64, verbose: bool, quick: bool) -> BackupReport {
            let src = self.dir.path().join("Data.fs");
            std::fs::write(&src, data).expect("write");
            let mut o = BackupOptions::new(self.repo(), src.to_str().expect("utf8"));
            o.now = Some(Stamp { secs });
            o.quick = quick;
            let logged = std::cell::RefCell::new(Vec::new());
            let log = |m: &str| logged.borrow_mut().push(m.to_string());
            let hooks = Hooks {
                log: &log,
                notice: &|_| {},
                progress: &zfs_format::NoProgress,
                verbose,
                interrupt: None,
            };
            backup(&o, &hooks).expect("backup")
        }
        fn listing(&self) -> Vec<(String, Vec<u8>)> {
            let mut v: Vec<_> = std::fs::read_dir(self.repo())
                .expect("ls")
                .map(|e| {
                    let e = e.expect("entry");
                    (
                        e.file_name().into_string().expect("utf8"),
                        std::fs::read(e.path()).expect("read"),
                    )
                })
                .collect();
            v.sort();
            v
        }
    }

    /// Transaction start positions of a file made by `file`.
    fn txn_starts(data: &[u8]) -> Vec<usize> {
        let mut v = Vec::new();
        let mut pos = 4;
        while pos + 16 <= data.len() {
            v.push(pos);
            let tlen = u64::from_be_bytes(data[pos + 8..pos + 16].try_into().expect("8"));
            pos += tlen as usize + 8;
        }
        v
    }

    #[test]
    fn data_after_damage_in_the_middle_is_reported_not_dropped_silently() {
        let clean = file(6);
        let starts = txn_starts(&clean);
        // The fourth transaction marked as still being committed: FileStorage reads up to it.
        let mut damaged = clean.clone();
        damaged[starts[3] + 16] = b'c';
        let r = Run::new().backup(&damaged, 1_700_000_000, false, false);
        assert_eq!(
            r.left_out,
            Some(LeftOut {
                at: starts[3] as u64,
                next_transaction: starts[4] as u64,
                bytes: (damaged.len() - starts[3]) as u64,
            })
        );
        assert_eq!(r.dat_line.expect("a full backup").end, starts[3] as u64);
        // A torn last transaction is an unfinished commit, not damage.
        let torn = &clean[..clean.len() - 5];
        let r = Run::new().backup(torn, 1_700_000_000, false, false);
        assert_eq!(r.left_out, None);
        assert_eq!(r.dat_line.expect("a full backup").end, starts[5] as u64);
    }

    #[test]
    fn every_decision_path_makes_the_same_repository() {
        let full = file(30);
        let grown = file(40);
        let mut torn = grown.clone();
        torn.extend_from_slice(&[7; 12]);
        let mut packed = file(5);
        packed.extend_from_slice(&[1; 3]);
        let mut changed = grown.clone();
        changed[100] ^= 1;
        let steps: &[(&[u8], Action)] = &[
            (&full, Action::Full),
            (&full, Action::NothingToDo),
            (&grown, Action::Incremental),
            (&torn, Action::Incremental),
            (&changed, Action::Full),
            (&packed, Action::Full),
        ];
        let mut repos = Vec::new();
        for (verbose, quick) in [(false, false), (true, false), (false, true)] {
            let r = Run::new();
            for (i, (data, want)) in steps.iter().enumerate() {
                let got = r.backup(data, 1_700_000_000 + 10 * i as i64, verbose, quick);
                // Quick mode only looks at the last .dat line's range: the changed byte
                // at offset 100 goes unnoticed, as in Python.
                let want = if quick && i == 4 {
                    &Action::NothingToDo
                } else {
                    want
                };
                assert_eq!(
                    &got.action, want,
                    "step {i}, verbose {verbose}, quick {quick}"
                );
            }
            repos.push(r.listing());
            // The last state restores to the committed bytes of the last source.
            let mut out = Vec::new();
            let o = RestoreOptions {
                repository: r.repo(),
                now: Some(Stamp {
                    secs: 1_800_000_000,
                }),
                ..Default::default()
            };
            restore(&o, &Hooks::silent(), &mut out).expect("restore");
            assert_eq!(out, &packed[..packed.len() - 3]);
            let o = VerifyOptions {
                repository: r.repo(),
                quick: false,
                now: Some(Stamp {
                    secs: 1_800_000_000,
                }),
                ..Default::default()
            };
            assert_eq!(verify(&o, &Hooks::silent()).expect("verify").len(), 1);
        }
        // The .dat paths hold each run's own repository, so compare the rest.
        let strip = |l: &Vec<(String, Vec<u8>)>| -> Vec<(String, usize)> {
            l.iter().map(|(n, b)| (n.clone(), b.len())).collect()
        };
        assert_eq!(strip(&repos[0]), strip(&repos[1]));
        assert_eq!(strip(&repos[2]).len(), strip(&repos[0]).len() - 3);
        for ((n0, b0), (_, b1)) in repos[0].iter().zip(&repos[1]) {
            if !n0.ends_with(".dat") {
                assert_eq!(b0, b1, "{n0}");
            }
        }
    }

    #[test]
    fn incremental_bytes_and_dat_line() {
        let r = Run::new();
        let v1 = file(10);
        let v2 = file(12);
        r.backup(&v1, 1_700_000_000, false, false);
        let rep = r.backup(&v2, 1_700_000_001, false, false);
        let line = rep.dat_line.expect("a line");
        assert_eq!((line.start, line.end), (v1.len() as u64, v2.len() as u64));
        assert_eq!(line.md5, crate::md5::md5_hex(&v2[v1.len()..]));
        let delta = std::fs::read(rep.data_file.expect("a file")).expect("read");
        assert_eq!(delta, &v2[v1.len()..]);
        // Same second again after new data: the stamp moves one second on.
        let v3 = file(13);
        let rep = r.backup(&v3, 1_700_000_001, false, false);
        assert!(rep
            .data_file
            .expect("a file")
            .ends_with("2023-11-14-22-13-22.deltafs"));
    }

    #[test]
    fn an_existing_target_is_never_overwritten() {
        let r = Run::new();
        let now = Stamp {
            secs: 1_700_000_000,
        };
        // A file stamped now, and one an hour in the future (a clock moved back): the
        // future one is ignored, as Python ignores it, so the new name collides.
        std::fs::write(format!("{}/{}.fs", r.repo(), now.format()), b"old").expect("write");
        std::fs::write(
            format!(
                "{}/{}.deltafs",
                r.repo(),
                Stamp {
                    secs: now.secs + 3600
                }
                .format()
            ),
            b"x",
        )
        .expect("write");
        let src = r.dir.path().join("Data.fs");
        std::fs::write(&src, file(3)).expect("write");
        let mut o = BackupOptions::new(r.repo(), src.to_str().expect("utf8"));
        o.now = Some(now);
        o.full = true;
        let e = backup(&o, &Hooks::silent()).expect_err("would overwrite");
        assert_eq!(
            e.to_string(),
            format!(
                "Cannot overwrite existing file: {}/{}.fs",
                r.repo(),
                now.format()
            )
        );
        assert_eq!(
            std::fs::read(format!("{}/{}.fs", r.repo(), now.format())).expect("read"),
            b"old"
        );
    }

    /// The `.dat` file of the repository's only chain.
    fn dat_of(r: &Run) -> std::path::PathBuf {
        let name = r
            .listing()
            .into_iter()
            .map(|(n, _)| n)
            .find(|n| n.ends_with(".dat"))
            .expect("a .dat");
        Path::new(&r.repo()).join(name)
    }

    fn restore_now(r: &Run) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let o = RestoreOptions {
            repository: r.repo(),
            now: Some(Stamp {
                secs: 1_800_000_000,
            }),
            ..Default::default()
        };
        restore(&o, &Hooks::silent(), &mut out).map(|_| out)
    }

    #[test]
    fn a_line_lost_by_an_interrupted_run_is_added_by_the_next_one() {
        let v1 = file(10);
        let v2 = file(14);
        let v3 = file(17);
        for (verbose, quick) in [(false, false), (true, false), (false, true)] {
            let r = Run::new();
            r.backup(&v1, 1_700_000_000, verbose, quick);
            r.backup(&v2, 1_700_000_010, verbose, quick);
            let dat = dat_of(&r);
            let whole = std::fs::read(&dat).expect("read");
            // The run that wrote the incremental stopped before its .dat line.
            let first_line = whole.iter().position(|&b| b == b'\n').expect("a line") + 1;
            std::fs::write(&dat, &whole[..first_line]).expect("write");
            // Both tools restore it meanwhile (its .index shows it continues the chain).
            assert_eq!(restore_now(&r).expect("restore"), v2);
            // Without its .index the file could be another chain's: refused.
            let index = Path::new(&r.repo()).join(format!(
                "{}.index",
                Stamp {
                    secs: 1_700_000_010
                }
                .format()
            ));
            let saved = std::fs::read(&index).expect("index");
            std::fs::remove_file(&index).expect("rm");
            let e = restore_now(&r).expect_err("an unlisted file");
            assert!(
                e.to_string().contains("interrupted") && e.to_string().contains("-D "),
                "{e}"
            );
            std::fs::write(&index, saved).expect("write");
            // Same source: the line comes back, byte for byte, and nothing else is written.
            let rep = r.backup(&v2, 1_700_000_020, verbose, quick);
            assert_eq!(
                rep.action,
                Action::NothingToDo,
                "verbose {verbose} quick {quick}"
            );
            assert_eq!(std::fs::read(&dat).expect("read"), whole);
            assert_eq!(restore_now(&r).expect("restore"), v2);
            // Again, and the source grew meanwhile: the line, then an incremental after it.
            std::fs::write(&dat, &whole[..first_line]).expect("write");
            let rep = r.backup(&v3, 1_700_000_030, verbose, quick);
            assert_eq!(
                rep.action,
                Action::Incremental,
                "verbose {verbose} quick {quick}"
            );
            let line = rep.dat_line.expect("a line");
            assert_eq!((line.start, line.end), (v2.len() as u64, v3.len() as u64));
            assert_eq!(restore_now(&r).expect("restore"), v3);
        }
    }

    #[test]
    fn a_full_backup_without_its_dat_gets_it_back() {
        // A full backup whose .dat is gone (a run of Python or of an older version killed
        // between the data file and the .dat, or a lost file): the next run writes its
        // line when its bytes are the source's, then goes on as usual.
        let v1 = file(10);
        let v2 = file(14);
        for (quick, empty) in [(false, false), (true, false), (false, true)] {
            let r = Run::new();
            r.backup(&v1, 1_700_000_000, false, quick);
            let dat = dat_of(&r);
            let whole = std::fs::read(&dat).expect("read");
            if empty {
                std::fs::write(&dat, b"").expect("truncate");
            } else {
                std::fs::remove_file(&dat).expect("rm");
            }
            assert!(restore_now(&r).is_ok(), "without -w the chain restores");
            let rep = r.backup(&v1, 1_700_000_010, false, quick);
            assert_eq!(rep.action, Action::NothingToDo, "quick {quick}");
            assert_eq!(std::fs::read(&dat).expect("read"), whole);
            std::fs::remove_file(&dat).expect("rm");
            let rep = r.backup(&v2, 1_700_000_020, false, quick);
            assert_eq!(rep.action, Action::Incremental, "quick {quick}");
            let lines = repo::read_dat(dat.to_str().expect("utf8"))
                .expect("read")
                .expect("a .dat");
            assert_eq!(lines.len(), 2, "quick {quick}");
            assert_eq!(lines[0].to_line().as_bytes(), &whole[..]);
            assert_eq!(restore_now(&r).expect("restore"), v2);
            let o = VerifyOptions {
                repository: r.repo(),
                now: Some(Stamp {
                    secs: 1_800_000_000,
                }),
                ..Default::default()
            };
            assert_eq!(verify(&o, &Hooks::silent()).expect("verify").len(), 2);
        }
    }

    #[test]
    fn a_full_backup_without_its_dat_that_is_not_the_source_is_left_alone() {
        let v1 = file(10);
        let mut other = file(14);
        other[30] ^= 1;
        let r = Run::new();
        r.backup(&v1, 1_700_000_000, false, false);
        let dat = dat_of(&r);
        std::fs::remove_file(&dat).expect("rm");
        let rep = r.backup(&other, 1_700_000_010, false, false);
        assert_eq!(rep.action, Action::Full);
        assert!(rep.reason.expect("a reason").contains("not listed"));
        assert!(!dat.exists(), "no line is made up for the old full backup");
        assert_eq!(restore_now(&r).expect("restore"), other);
    }

    #[test]
    fn an_unlisted_file_that_does_not_match_forces_a_full_backup() {
        let v1 = file(10);
        let v2 = file(14);
        for quick in [false, true] {
            let r = Run::new();
            r.backup(&v1, 1_700_000_000, false, quick);
            let stray = Stamp {
                secs: 1_700_000_005,
            };
            std::fs::write(
                format!("{}/{}.deltafs", r.repo(), stray.format()),
                b"not the source's bytes",
            )
            .expect("write");
            let dat = dat_of(&r);
            let before = std::fs::read(&dat).expect("read");
            let rep = r.backup(&v2, 1_700_000_010, false, quick);
            assert_eq!(rep.action, Action::Full, "quick {quick}");
            assert!(rep.reason.expect("a reason").contains("not listed"));
            assert_eq!(std::fs::read(&dat).expect("read"), before);
            assert_eq!(restore_now(&r).expect("restore"), v2);
        }
    }
}
