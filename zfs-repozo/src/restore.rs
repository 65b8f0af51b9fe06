//! `repozo -R`: rebuild a Data.fs from the chain as of a date, into a file (safely) or a
//! writer, checking the chain against its `.dat`.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::md5::Md5;
use crate::names::{strip_ext, Stamp};
use crate::repo::{self, ChainFile, DatLine};
use crate::source::read_uncompressed;
use crate::Hooks;

/// What `repozo -R` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// The repository directory, as given.
    pub repository: String,
    /// `-D`: the state as of this date (a stamp or a prefix of one); `None`: now.
    pub date: Option<String>,
    /// `-o`: the file to write; `None`: the writer passed to [`restore`].
    pub output: Option<PathBuf>,
    /// `-w`: check every chain file against the `.dat` while restoring.
    pub with_verify: bool,
    /// The clock; `None` reads the system clock.
    pub now: Option<Stamp>,
}

/// The result of a restore.
#[derive(Clone, Debug, Default)]
pub struct RestoreReport {
    /// The chain restored, oldest first.
    pub chain: Vec<String>,
    /// Bytes written.
    pub bytes: u64,
    /// MD5 of the result, when it was computed (`-v` or `-w`).
    pub md5: Option<String>,
    /// The `.index` copied beside the output, if any.
    pub index: Option<String>,
}

/// Restores. Without `opts.output` the data goes to `stdout`.
pub fn restore(
    opts: &RestoreOptions,
    hooks: &Hooks<'_>,
    stdout: &mut dyn Write,
) -> Result<RestoreReport> {
    let _lock = repo::lock(&opts.repository, false, &|| {
        (hooks.notice)(&format!(
            "a backup is running on {}; waiting for it to finish",
            opts.repository
        ))
    })?;
    let when = match opts.date.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => d.to_string(),
        None => crate::current_when(&opts.repository, opts.now.unwrap_or_else(Stamp::now))?,
    };
    hooks.log(&format!(
        "looking for files between last full backup and {when}..."
    ));
    let chain = repo::find_files(&opts.repository, &when)?;
    crate::backup::log_chain(hooks, &when, &chain);
    if chain.is_empty() {
        return Err(match opts.date.as_deref().filter(|d| !d.is_empty()) {
            Some(d) => Error::NoFilesBefore(d.to_string()),
            None => Error::NoFiles,
        });
    }
    let dat_path = repo::dat_path_of(&chain[0]);
    let dat = if opts.with_verify {
        match repo::read_dat(&dat_path)? {
            Some(d) => Some(d),
            None => return Err(Error::io(&dat_path, std::io::Error::from_raw_os_error(2))),
        }
    } else {
        match repo::read_dat(&dat_path) {
            Ok(d) => d,
            Err(e) => {
                (hooks.notice)(&format!(
                    "warning: {e}; the chain is restored without checking it against its .dat"
                ));
                None
            }
        }
    };
    let describes_chain = |lines: &[DatLine]| {
        lines
            .first()
            .is_some_and(|l| l.basename() == chain[0].name && l.start == 0)
    };
    let expected = match &dat {
        Some(lines) if opts.with_verify || describes_chain(lines) => {
            Some(check_chain(&opts.repository, &chain, lines, &when)?)
        }
        Some(_) => {
            // A .dat that does not start with this chain's full backup (Python's default
            // mode recreates a lost .dat from the next incremental on): nothing to check.
            (hooks.notice)(&format!(
                "warning: {dat_path} does not describe the chain from {}; restoring without checking it",
                chain[0].path
            ));
            None
        }
        None => None,
    };
    let hash = hooks.verbose || opts.with_verify;
    let mut report = RestoreReport {
        chain: chain.iter().map(|c| c.path.clone()).collect(),
        ..Default::default()
    };
    match &opts.output {
        None => {
            hooks.log("Recovering file to stdout");
            let (n, md5) = write_chain(
                opts,
                hooks,
                &chain,
                expected.as_ref(),
                hash,
                Out::Writer(stdout),
            )?;
            stdout.flush().map_err(|e| Error::io("<stdout>", e))?;
            report.bytes = n;
            report.md5 = md5;
        }
        Some(out) => restore_to_file(
            opts,
            hooks,
            &chain,
            expected.as_ref(),
            hash,
            out,
            &mut report,
        )?,
    }
    Ok(report)
}

/// Size and MD5 expected for each chain file, by path.
type Expected = HashMap<String, (u64, String)>;

/// Checks the chain against the `.dat`: no hole, no file from another chain, contiguous
/// positions, plain files of the recorded size.
fn check_chain(
    repository: &str,
    chain: &[ChainFile],
    lines: &[DatLine],
    when: &str,
) -> Result<Expected> {
    let dat_name = repo::dat_path_of(&chain[0]);
    let mut expected = Expected::new();
    let by_name: HashMap<&str, &DatLine> = lines.iter().map(|l| (l.basename(), l)).collect();
    let mut next_start = 0u64;
    for (i, c) in chain.iter().enumerate() {
        let Some(line) = by_name.get(c.name.as_str()) else {
            return Err(Error::BrokenChain(match chain[..i].last() {
                // Every line is taken by the files before this one (so the rest are
                // unlisted too): a backup run stopped between renaming its data file into
                // place and writing its line.
                Some(before) if i == lines.len() => format!(
                    "{} is not listed in {dat_name}: a backup run was interrupted before writing its line. \
                     The next backup of the source adds the line if the file matches it; \
                     -D {} restores the state before it",
                    c.path,
                    before.root()
                ),
                _ => format!(
                    "{} is not listed in {dat_name}: the repository mixes files of different full backups (was a newer full backup deleted?)",
                    c.path
                ),
            }));
        };
        if line.start != next_start {
            return Err(Error::BrokenChain(format!(
                "{} starts at {} but the chain before it ends at {next_start}: a backup file is missing",
                c.path, line.start
            )));
        }
        next_start = line.end;
        if !c.kind.is_gzip() {
            let size = std::fs::metadata(&c.path)
                .map_err(|e| Error::io(&c.path, e))?
                .len();
            if size != line.end - line.start {
                return Err(Error::BrokenChain(format!(
                    "{} is {size} bytes, should be {} bytes (truncated?)",
                    c.path,
                    line.end - line.start
                )));
            }
        }
        expected.insert(c.path.clone(), (line.end - line.start, line.md5.clone()));
    }
    for l in lines {
        let name = l.basename();
        let listed_before = name.get(..19).is_some_and(|root| root <= when);
        if listed_before && !chain.iter().any(|c| c.name == name) {
            return Err(Error::BrokenChain(format!(
                "{} is listed in {dat_name} but missing from the repository",
                crate::names::join(repository, name)
            )));
        }
    }
    Ok(expected)
}

enum Out<'a> {
    Writer(&'a mut dyn Write),
    File(&'a File),
}

/// Writes the chain to `out`; returns the bytes written and, when `hash`, their MD5.
fn write_chain(
    opts: &RestoreOptions,
    hooks: &Hooks<'_>,
    chain: &[ChainFile],
    expected: Option<&Expected>,
    hash: bool,
    mut out: Out<'_>,
) -> Result<(u64, Option<String>)> {
    let out_name = opts
        .output
        .as_ref()
        .map(|p| format!("{}.part", p.display()))
        .unwrap_or_else(|| "<stdout>".into());
    let total_guess: u64 = chain
        .iter()
        .filter_map(|c| std::fs::metadata(&c.path).ok())
        .map(|m| m.len())
        .sum();
    hooks.progress.start("restoring", total_guess);
    if let (false, Out::File(file)) = (hash, &out) {
        if chain.iter().all(|c| !c.kind.is_gzip()) {
            let n = copy_plain_parallel(chain, file, expected, &out_name, hooks)?;
            return Ok((n, None));
        }
    }
    let mut total = Md5::new();
    let mut n_total = 0u64;
    for c in chain {
        let mut h = Md5::new();
        let mut n = 0u64;
        if !hash && !c.kind.is_gzip() {
            // Plain file, nothing to hash: let the kernel copy it.
            let mut f = File::open(&c.path).map_err(|e| Error::io(&c.path, e))?;
            n = match &mut out {
                Out::Writer(w) => std::io::copy(&mut f, w),
                Out::File(file) => std::io::copy(&mut f, &mut &**file),
            }
            .map_err(|e| Error::io(&out_name, e))?;
            hooks.advance(n)?;
        } else {
            read_uncompressed(&c.path, c.kind.is_gzip(), &mut |b| {
                if hash {
                    h.update(b);
                    total.update(b);
                }
                n += b.len() as u64;
                hooks.advance(b.len() as u64)?;
                match &mut out {
                    Out::Writer(w) => w.write_all(b),
                    Out::File(file) => (&**file).write_all(b),
                }
                .map_err(|e| Error::io(&out_name, e))
            })?;
        }
        n_total += n;
        let md5 = if hash { Some(h.hex()) } else { None };
        if let Some((size, sum)) = expected.and_then(|e| e.get(&c.path)) {
            if n != *size {
                return Err(Error::WrongSize {
                    path: c.path.clone(),
                    found: n,
                    expected: *size,
                    when: "",
                });
            }
            if opts.with_verify {
                let md5 = md5.clone().expect("hashed with -w");
                if md5 != *sum {
                    return Err(Error::WrongChecksum {
                        path: c.path.clone(),
                        found: md5,
                        expected: sum.clone(),
                        when: "",
                    });
                }
            }
        }
        if opts.with_verify {
            hooks.log(&format!(
                "Recovered chunk {} : {n} bytes, md5: {}",
                c.path,
                md5.as_deref().unwrap_or("")
            ));
        }
    }
    let md5 = if hash { Some(total.hex()) } else { None };
    if opts.with_verify {
        hooks.log(&format!("Recovered a total of {n_total} bytes"));
    } else if let Some(m) = &md5 {
        hooks.log(&format!("Recovered {n_total} bytes, md5: {m}"));
    }
    Ok((n_total, md5))
}

/// Copies a chain of plain files into `out` at their offsets, in pieces on all cores.
fn copy_plain_parallel(
    chain: &[ChainFile],
    out: &File,
    expected: Option<&Expected>,
    out_name: &str,
    hooks: &Hooks<'_>,
) -> Result<u64> {
    use rayon::prelude::*;
    let mut files = Vec::with_capacity(chain.len());
    let mut jobs = Vec::new();
    let mut offset = 0u64;
    for (i, c) in chain.iter().enumerate() {
        let f = File::open(&c.path).map_err(|e| Error::io(&c.path, e))?;
        let len = f.metadata().map_err(|e| Error::io(&c.path, e))?.len();
        if let Some((size, _)) = expected.and_then(|e| e.get(&c.path)) {
            if len != *size {
                return Err(Error::WrongSize {
                    path: c.path.clone(),
                    found: len,
                    expected: *size,
                    when: "",
                });
            }
        }
        let mut at = 0;
        while at < len {
            let n = crate::source::COPY_PIECE.min(len - at);
            jobs.push((i, at, offset + at, n));
            at += n;
        }
        files.push(f);
        offset += len;
    }
    let ticker = hooks.ticker();
    jobs.par_iter().try_for_each(|&(i, src_off, dst_off, n)| {
        let got = crate::source::copy_range(&files[i], src_off, out, dst_off, n)
            .map_err(|e| Error::io(out_name, e))?;
        ticker.advance(got)?;
        if got != n {
            return Err(Error::ShortCopy {
                path: chain[i].path.clone(),
                got: src_off + got,
                want: src_off + n,
            });
        }
        Ok(())
    })?;
    Ok(offset)
}

fn restore_to_file(
    opts: &RestoreOptions,
    hooks: &Hooks<'_>,
    chain: &[ChainFile],
    expected: Option<&Expected>,
    hash: bool,
    out: &Path,
    report: &mut RestoreReport,
) -> Result<()> {
    let out_s = out.to_string_lossy().into_owned();
    let part = PathBuf::from(format!("{out_s}.part"));
    let part_s = part.to_string_lossy().into_owned();
    let existing = match std::fs::symlink_metadata(out) {
        Ok(m) if m.is_dir() => {
            return Err(Error::io(&out_s, std::io::Error::from_raw_os_error(21)))
        }
        Ok(m) => Some(m.len()),
        Err(_) => None,
    };
    if let Some(old) = existing {
        // Keep the old file until the new one is complete, unless both cannot fit.
        let need: u64 = expected
            .map(|e| e.values().map(|(n, _)| n).sum())
            .unwrap_or_else(|| {
                chain
                    .iter()
                    .filter_map(|c| std::fs::metadata(&c.path).ok())
                    .map(|m| m.len())
                    .sum()
            });
        let dir = out
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let free = rustix::fs::statvfs(dir)
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
            .unwrap_or(u64::MAX);
        if free < need.saturating_add(1 << 20) {
            if free.saturating_add(old) < need {
                return Err(Error::NoSpace(format!(
                    "not enough free space to restore {need} bytes to {out_s} ({free} bytes free, {old} more after deleting it)"
                )));
            }
            (hooks.notice)(&format!(
                "not enough free space for both the old {out_s} and the restored file: deleting the old file first"
            ));
            hooks.log(&format!("Deleting old {out_s}"));
            std::fs::remove_file(out).map_err(|e| Error::io(&out_s, e))?;
        }
    }
    hooks.log(&format!("Recovering file to {out_s}"));
    // `FILE.part` is Python's name (a failed `-w` leaves it for inspection, as Python does).
    // It is truncated only once we hold an exclusive lock on it, so two restores to the
    // same output cannot interleave their bytes.
    let file = open_part(&part, &part_s, hooks)?;
    file.set_len(0).map_err(|e| Error::io(&part_s, e))?;
    let written = crate::source::flushing_behind(&file, &part_s, || {
        write_chain(opts, hooks, chain, expected, hash, Out::File(&file))
    });
    let (n, md5) = match written {
        // Interrupted: the partial file is of no use to anyone (a failed -w keeps it).
        Err(Error::Interrupted) => {
            let _ = std::fs::remove_file(&part);
            return Err(Error::Interrupted);
        }
        other => other?,
    };
    file.sync_all().map_err(|e| Error::io(&part_s, e))?;
    report.bytes = n;
    report.md5 = md5;
    let last = chain.last().expect("the chain is not empty");
    let source = format!("{}.index", strip_ext(&last.path));
    let index_out = format!("{out_s}.index");
    let index = match std::fs::read(&source) {
        Ok(bytes) => {
            hooks.log(&format!("Restoring index file {source} to {index_out}"));
            Some(bytes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            hooks.log(&format!("No index file to restore: {source}"));
            None
        }
        Err(e) => return Err(Error::io(&source, e)),
    };
    // An old FILE.index must never sit beside the new FILE (nor the new index beside the old
    // file): remove it first, rename the data, then write the new index. A crash in between
    // leaves FILE without an index, which ZODB rebuilds.
    match std::fs::remove_file(&index_out) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&index_out, e)),
    }
    if let Err(e) = std::fs::rename(&part, out) {
        hooks.log(&format!(
            "ZODB has been fully recovered as {part_s}, but it cannot be renamed into : {out_s}"
        ));
        return Err(Error::io(&out_s, e));
    }
    drop(file);
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    repo::sync_dir(&dir.to_string_lossy());
    if let Some(bytes) = index {
        repo::write_atomically(&index_out, &bytes)?;
        report.index = Some(index_out);
    }
    Ok(())
}

/// Opens `FILE.part` (without truncating it) under an exclusive `flock`, waiting (with a
/// notice) while another restore to the same output holds it. When that restore has renamed
/// its `.part` meanwhile, the handle is on its finished output: open the path again. File
/// systems without `flock` go on unlocked.
fn open_part(part: &Path, part_s: &str, hooks: &Hooks<'_>) -> Result<File> {
    use rustix::fs::{flock, FlockOperation};
    use std::os::unix::fs::MetadataExt as _;
    loop {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(part)
            .map_err(|e| Error::io(part_s, e))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                (hooks.notice)(&format!(
                    "another restore is writing {part_s}; waiting for it to finish"
                ));
                flock(&file, FlockOperation::LockExclusive)
                    .map_err(|e| Error::io(part_s, e.into()))?;
            }
            Err(_) => return Ok(file),
        }
        let held = file.metadata().map_err(|e| Error::io(part_s, e))?;
        match std::fs::metadata(part) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => return Ok(file),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(part_s, e)),
        }
    }
}
