//! `repozo -R`: rebuild a Data.fs from the chain as of a date, into a file (safely) or a
//! writer, checking the chain against its `.dat`.
//!
//! A restore to a file writes a private temporary beside it (zfs-files) and renames it
//! over the target only once complete and fsynced; the target's `.index` is replaced
//! after it, never left beside the wrong data. The only case where the old target goes
//! first is a disk that cannot hold both: then the whole chain is read and checked first,
//! and the run says that the old file is deleted, and, if it fails afterwards, that the
//! target is gone.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::chain::{self, Expected};
use crate::error::{Error, Result};
use crate::md5::Md5;
use crate::names::Stamp;
use crate::repo::{self, ChainFile, DatLine};
use crate::source::read_uncompressed;
use crate::target::{Target, ROOM_MARGIN};
use crate::Hooks;

/// What `repozo -R` was asked to do.
#[derive(Clone, Debug)]
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
    /// How long to wait for a backup's lock on the repository before failing.
    pub lock_wait: Duration,
    /// `-F`: rebuild an existing output in full instead of bringing it up to date.
    pub full: bool,
    /// `-Q`: when bringing an existing output up to date, check only the last backup it
    /// holds against it (by MD5), not every one.
    pub quick: bool,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            repository: String::new(),
            date: None,
            output: None,
            with_verify: false,
            now: None,
            lock_wait: repo::DEFAULT_LOCK_WAIT,
            full: false,
            quick: false,
        }
    }
}

/// How a restore went.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(tag = "method", rename_all = "kebab-case")
)]
pub enum Method {
    /// The whole chain was written (to stdout, or to a new file that replaced the output);
    /// `reason` says why an existing output was not brought up to date instead.
    Full {
        /// Why not incrementally (`None`: no output existed, `-F`, or stdout).
        reason: Option<String>,
    },
    /// The existing output held the state already: nothing was written but its index.
    UpToDate,
    /// The backups the existing output lacked were appended to it.
    Appended {
        /// Where the appended bytes start.
        from: u64,
        /// The backup files appended, oldest first.
        #[cfg_attr(feature = "serde", serde(rename = "appended"))]
        files: Vec<String>,
    },
}

impl Default for Method {
    fn default() -> Self {
        Method::Full { reason: None }
    }
}

/// The result of a restore.
#[derive(Clone, Debug, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RestoreReport {
    /// The chain restored, oldest first.
    pub chain: Vec<String>,
    /// Bytes written by this run.
    pub bytes: u64,
    /// Size of the restored file (the state's size).
    pub size: u64,
    /// MD5 of the bytes written, when it was computed (`-v` or `-w`).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub md5: Option<String>,
    /// The `.index` copied beside the output, if any.
    pub index: Option<String>,
    /// Full, incremental, or nothing to do.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub method: Method,
}

/// Restores. Without `opts.output` the data goes to `stdout`.
pub fn restore(
    opts: &RestoreOptions,
    hooks: &Hooks<'_>,
    stdout: &mut dyn Write,
) -> Result<RestoreReport> {
    let _lock = repo::lock(&opts.repository, false, opts.lock_wait, &mut |holder| {
        (hooks.notice)(&format!(
            "the repository {} is locked by {holder} (a backup is running); waiting up to {} s for it to finish",
            opts.repository,
            opts.lock_wait.as_secs()
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
    // Concatenated without its full backup, a chain is no FileStorage.
    chain::check_starts_full(&opts.repository, &chain)?;
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
            let checked = chain::check_against_dat(&opts.repository, &chain, lines, &when)?;
            if let Some(first) = checked.unlisted.first() {
                let before = chain
                    .iter()
                    .take_while(|c| c.path != *first)
                    .last()
                    .expect("an unlisted file follows the full backup");
                if opts.with_verify {
                    return Err(Error::BrokenChain(format!(
                        "{first} is not listed in {dat_path}: a backup run was interrupted before \
                         writing its line, so -w cannot check it. Restore without -w (its .index \
                         shows it continues the chain), or after the next backup, which adds the \
                         line; -D {} restores the state before it",
                        before.root()
                    )));
                }
                for path in &checked.unlisted {
                    (hooks.notice)(&format!(
                        "warning: {path} is not listed in {dat_path} (a backup run was interrupted \
                         before writing its line); its .index shows it continues the chain, so it \
                         is restored with it. The next backup adds its line"
                    ));
                }
            }
            Some(checked.expected)
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
    chain::check_magic(&chain[0])?;
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
            report.size = n;
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

/// Where [`write_chain`] writes: a stream, or a file at offsets from `base` on.
pub(crate) enum Out<'a> {
    Writer(&'a mut dyn Write),
    File { file: &'a File, base: u64 },
}

/// Writes the chain to `out`; returns the bytes written and, when `hash`, their MD5.
pub(crate) fn write_chain(
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
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<stdout>".into());
    let total_guess: u64 = chain
        .iter()
        .filter_map(|c| std::fs::metadata(&c.path).ok())
        .map(|m| m.len())
        .sum();
    hooks.progress.start("restoring", total_guess);
    if let (false, Out::File { file, base }) = (hash, &out) {
        if chain.iter().all(|c| !c.kind.is_gzip()) {
            let n = copy_plain_parallel(chain, file, *base, expected, &out_name, hooks)?;
            return Ok((n, None));
        }
    }
    let mut total = Md5::new();
    let mut n_total = 0u64;
    for c in chain {
        let mut h = Md5::new();
        let mut n = 0u64;
        if let (false, false, Out::Writer(w)) = (hash, c.kind.is_gzip(), &mut out) {
            // Plain file, nothing to hash: let the kernel copy it.
            let mut f = zfs_files::open_input(Path::new(&c.path))?;
            n = std::io::copy(&mut f, w).map_err(|e| Error::io(&out_name, e))?;
            hooks.advance(n)?;
        } else {
            read_uncompressed(&c.path, c.kind.is_gzip(), &mut |b| {
                if hash {
                    h.update(b);
                    total.update(b);
                }
                let at = n_total + n;
                n += b.len() as u64;
                hooks.advance(b.len() as u64)?;
                match &mut out {
                    Out::Writer(w) => w.write_all(b),
                    Out::File { file, base } => {
                        std::os::unix::fs::FileExt::write_all_at(*file, b, *base + at)
                    }
                }
                .map_err(|e| Error::io(&out_name, e))
            })?;
        }
        n_total += n;
        let md5 = if hash { Some(h.hex()) } else { None };
        if let Some(want) = expected.and_then(|e| e.get(&c.path)) {
            if n != want.size {
                return Err(Error::WrongSize {
                    path: c.path.clone(),
                    found: n,
                    expected: want.size,
                    when: "",
                });
            }
            if let (true, Some(sum)) = (opts.with_verify, &want.md5) {
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

/// Copies a chain of plain files into `out` at their offsets from `base` on, in pieces on
/// all cores.
fn copy_plain_parallel(
    chain: &[ChainFile],
    out: &File,
    base: u64,
    expected: Option<&Expected>,
    out_name: &str,
    hooks: &Hooks<'_>,
) -> Result<u64> {
    use rayon::prelude::*;
    let mut files = Vec::with_capacity(chain.len());
    let mut jobs = Vec::new();
    let mut offset = 0u64;
    for (i, c) in chain.iter().enumerate() {
        let f = zfs_files::open_input(Path::new(&c.path))?;
        let len = f.metadata().map_err(|e| Error::io(&c.path, e))?.len();
        if let Some(want) = expected.and_then(|e| e.get(&c.path)) {
            if len != want.size {
                return Err(Error::WrongSize {
                    path: c.path.clone(),
                    found: len,
                    expected: want.size,
                    when: "",
                });
            }
        }
        let mut at = 0;
        while at < len {
            let n = crate::source::COPY_PIECE.min(len - at);
            jobs.push((i, at, base + offset + at, n));
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

/// The size of the restored file when it is known without reading the chain: from the
/// `.dat`, or the sizes of plain files.
fn known_size(chain: &[ChainFile], expected: Option<&Expected>) -> Option<u64> {
    if let Some(e) = expected {
        return Some(e.values().map(|w| w.size).sum());
    }
    chain.iter().try_fold(0u64, |acc, c| {
        if c.kind.is_gzip() {
            None
        } else {
            std::fs::metadata(&c.path).ok().map(|m| acc + m.len())
        }
    })
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
    let mut target = Target::prepare(out, chain)?;
    if target.existing.is_some()
        && !opts.full
        && restore_onto(opts, hooks, chain, expected, hash, &target, report)?
    {
        return Ok(());
    }
    let mut deleted_old = false;
    if let Some(old) = target.existing {
        // Keep the old file until the new one is complete, unless both cannot fit.
        let free = target.free_space();
        let mut checked = false;
        let need = match known_size(chain, expected) {
            Some(n) => n,
            None => {
                checked = true;
                chain::read_through(chain, expected, &hooks.ticker())?
            }
        };
        if free < need.saturating_add(ROOM_MARGIN) {
            if free.saturating_add(old) < need {
                return Err(Error::NoSpace(format!(
                    "not enough free space to restore {need} bytes to {} ({free} bytes free, \
                     {old} more after deleting it); nothing was changed",
                    target.name
                )));
            }
            if !checked {
                // Everything that can be known about the chain is checked before the only
                // copy of the old file goes.
                hooks.progress.start("checking", need);
                chain::read_through(chain, expected, &hooks.ticker())?;
            }
            (hooks.notice)(&format!(
                "not enough free space for both the old {name} ({old} bytes) and the restored \
                 file ({need} bytes, {free} bytes free): the backup files were read and checked, \
                 and the old {name} and its index are deleted now to make room. If the restore \
                 fails from here on, {name} will not exist until it is restored again",
                name = target.name
            ));
            hooks.log(&format!("Deleting old {}", target.name));
            target.delete_old()?;
            deleted_old = true;
        }
    }
    let written = write_and_replace(opts, hooks, chain, expected, hash, &target, report);
    match written {
        Err(cause) if deleted_old => Err(Error::TargetDeleted {
            target: target.name.clone(),
            cause: Box::new(cause),
        }),
        other => other,
    }
}

/// Writes the chain to a temporary beside the target and puts it in place with its index.
fn write_and_replace(
    opts: &RestoreOptions,
    hooks: &Hooks<'_>,
    chain: &[ChainFile],
    expected: Option<&Expected>,
    hash: bool,
    target: &Target,
    report: &mut RestoreReport,
) -> Result<()> {
    hooks.log(&format!("Recovering file to {}", target.name));
    // A failure or an interruption drops `output`, which removes the temporary.
    let output = target.create()?;
    let (n, md5) = crate::source::flushing_behind(output.file(), &target.name, || {
        write_chain(
            opts,
            hooks,
            chain,
            expected,
            hash,
            Out::File {
                file: output.file(),
                base: 0,
            },
        )
    })?;
    report.bytes = n;
    report.size = n;
    report.md5 = md5;
    report.index = target.replace(output, chain, hooks)?;
    Ok(())
}

/// Brings the existing target up to the chain's state in place when it is a prefix of it
/// (see [`crate::incremental`]). Returns false, with the reason logged and in `report`,
/// when it must be restored in full instead.
fn restore_onto(
    opts: &RestoreOptions,
    hooks: &Hooks<'_>,
    chain: &[ChainFile],
    expected: Option<&Expected>,
    hash: bool,
    target: &Target,
    report: &mut RestoreReport,
) -> Result<bool> {
    use crate::incremental::{self, Plan};
    hooks.log(&format!(
        "Recovering (incrementally) file to {}",
        target.name
    ));
    let why = match expected {
        None => format!(
            "no .dat describes the chain from {}, so the target cannot be checked against it, \
             falling back to a full recover.",
            chain[0].path
        ),
        Some(exp) => match incremental::open_existing(target)? {
            Err(why) => format!("{why}, falling back to a full recover."),
            Ok(existing) => {
                match incremental::plan(opts.quick, hooks, chain, exp, &existing, &target.name)? {
                    Plan::Full(why) => why,
                    Plan::UpToDate => {
                        hooks.log("Target file is same size as latest backup, doing nothing.");
                        report.size = existing.len;
                        report.method = Method::UpToDate;
                        drop(existing);
                        report.index = target.install_index(chain, hooks)?;
                        return Ok(true);
                    }
                    Plan::Append { first, at } => {
                        append(
                            opts,
                            hooks,
                            &chain[first..],
                            exp,
                            hash,
                            target,
                            &existing,
                            at,
                            report,
                        )?;
                        drop(existing);
                        report.index = target.install_index(chain, hooks)?;
                        return Ok(true);
                    }
                }
            }
        },
    };
    hooks.log(&why);
    report.method = Method::Full { reason: Some(why) };
    Ok(false)
}

/// Appends `rest` to the existing target from `at` on, fsyncs it; on any failure cuts it
/// back to its old size first.
#[allow(clippy::too_many_arguments)]
fn append(
    opts: &RestoreOptions,
    hooks: &Hooks<'_>,
    rest: &[ChainFile],
    expected: &Expected,
    hash: bool,
    target: &Target,
    existing: &crate::incremental::Existing,
    at: u64,
    report: &mut RestoreReport,
) -> Result<()> {
    hooks.log("remaining files needed to recover incrementally onto target file:");
    for f in rest {
        hooks.log(&format!("\t{}", f.path));
    }
    // The old index describes the old size only: it goes before the file changes.
    target.drop_index()?;
    let end = at + rest.iter().map(|c| expected[&c.path].size).sum::<u64>();
    let written = crate::source::flushing_behind(&existing.file, &target.name, || {
        let out = Out::File {
            file: &existing.file,
            base: at,
        };
        write_chain(opts, hooks, rest, Some(expected), hash, out)
    })
    .and_then(|r| {
        existing
            .file
            .sync_all()
            .map_err(|e| Error::io(&target.path, e))?;
        let len = existing
            .file
            .metadata()
            .map_err(|e| Error::io(&target.path, e))?
            .len();
        if len != end {
            return Err(Error::BrokenChain(format!(
                "{} is {len} bytes after the append, should be {end}",
                target.name
            )));
        }
        Ok(r)
    });
    let (n, md5) = match written {
        Ok(r) => r,
        Err(e) => {
            if let Err(cut) = crate::incremental::cut_back(existing, &target.name) {
                (hooks.notice)(&format!(
                    "{} could not be cut back to its old {} bytes ({cut}): it holds its old \
                     bytes followed by part of the missing ones, and the next restore \
                     completes it",
                    target.name, existing.len
                ));
            }
            return Err(e);
        }
    };
    report.bytes = n;
    report.size = end;
    report.md5 = md5;
    report.method = Method::Appended {
        from: at,
        files: rest.iter().map(|c| c.path.clone()).collect(),
    };
    Ok(())
}
