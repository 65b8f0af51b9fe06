//! `repozo -V`: check the newest chain's files against its `.dat`, files in parallel, and
//! warn about what would make a restore refuse the chain although every listed file is
//! right.

use std::time::Duration;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::md5::Md5;
use crate::names::{join, Stamp};
use crate::repo;
use crate::source::read_uncompressed;
use crate::Hooks;

/// What `repozo -V` was asked to do.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// The repository directory, as given.
    pub repository: String,
    /// `-Q`: sizes only, no MD5.
    pub quick: bool,
    /// The clock; `None` reads the system clock.
    pub now: Option<Stamp>,
    /// How long to wait for a backup's lock on the repository before failing.
    pub lock_wait: Duration,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            repository: String::new(),
            quick: false,
            now: None,
            lock_wait: repo::DEFAULT_LOCK_WAIT,
        }
    }
}

/// One verified file.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Verified {
    /// The file as repozo names it (repository + base name from the `.dat`).
    #[cfg_attr(feature = "serde", serde(rename = "file"))]
    pub path: String,
    /// Its uncompressed size.
    pub size: u64,
    /// Its MD5 (not with `-Q`).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub md5: Option<String>,
}

/// What a verification found when every listed file is right.
#[derive(Clone, Debug, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct VerifyReport {
    /// The files checked, in `.dat` order.
    pub files: Vec<Verified>,
    /// Why a restore of the newest state would refuse the chain anyway (a file the `.dat`
    /// does not list, a hole, no full backup), or a file a restore takes that the `.dat`
    /// does not list (an interrupted backup's); each also sent to `Hooks::notice`.
    pub warnings: Vec<String>,
}

/// Verifies; returns the files checked, or the first failure in `.dat` order.
pub fn verify(opts: &VerifyOptions, hooks: &Hooks<'_>) -> Result<Vec<Verified>> {
    verify_report(opts, hooks).map(|r| r.files)
}

/// Verifies like [`verify`], and also reports what a restore would refuse.
pub fn verify_report(opts: &VerifyOptions, hooks: &Hooks<'_>) -> Result<VerifyReport> {
    let _lock = repo::lock(&opts.repository, false, opts.lock_wait, &mut |holder| {
        (hooks.notice)(&format!(
            "the repository {} is locked by {holder} (a backup is running); waiting up to {} s for it to finish",
            opts.repository,
            opts.lock_wait.as_secs()
        ))
    })?;
    let when = crate::current_when(&opts.repository, opts.now.unwrap_or_else(Stamp::now))?;
    hooks.log(&format!(
        "looking for files between last full backup and {when}..."
    ));
    let chain = repo::find_files(&opts.repository, &when)?;
    crate::backup::log_chain(hooks, &when, &chain);
    let Some(first) = chain.first() else {
        return Err(Error::NoFiles);
    };
    let dat_path = repo::dat_path_of(first);
    let Some(lines) = repo::read_dat(&dat_path)? else {
        return Err(Error::io(&dat_path, std::io::Error::from_raw_os_error(2)));
    };
    let total: u64 = lines.iter().map(|l| l.end - l.start).sum();
    hooks.progress.start("verifying", total);
    let ticker = hooks.ticker();
    let results: Vec<Result<Verified>> = lines
        .par_iter()
        .map(|l| {
            let path = join(&opts.repository, l.basename());
            let gzip = path.ends_with("fsz");
            let when = if gzip { " (when uncompressed)" } else { "" };
            let expected = l.end - l.start;
            let (size, md5) = if !gzip && opts.quick {
                let m =
                    std::fs::metadata(&path).map_err(|e| unreadable(&path, Error::io(&path, e)))?;
                (m.len(), None)
            } else {
                let mut h = Md5::new();
                let mut n = 0u64;
                let hash = !opts.quick;
                read_uncompressed(&path, gzip, &mut |b| {
                    if hash {
                        h.update(b);
                    }
                    n += b.len() as u64;
                    ticker.advance(b.len() as u64)
                })
                .map_err(|e| unreadable(&path, e))?;
                (n, hash.then(|| h.hex()))
            };
            if size != expected {
                return Err(Error::WrongSize {
                    path,
                    found: size,
                    expected,
                    when,
                });
            }
            if let Some(m) = &md5 {
                if *m != l.md5 {
                    return Err(Error::WrongChecksum {
                        path,
                        found: m.clone(),
                        expected: l.md5.clone(),
                        when,
                    });
                }
            }
            Ok(Verified { path, size, md5 })
        })
        .collect();
    let mut report = VerifyReport::default();
    for (l, r) in lines.iter().zip(results) {
        hooks.log(&format!(
            "Verifying {}",
            join(&opts.repository, l.basename())
        ));
        report.files.push(r?);
    }
    // Every listed file is right; would a restore of this state take the chain?
    let checked = crate::chain::check_starts_full(&opts.repository, &chain)
        .and_then(|()| crate::chain::check_against_dat(&opts.repository, &chain, &lines, &when));
    let warnings = match checked {
        Err(e) => vec![format!(
            "warning: a restore of the newest state would refuse it: {e}"
        )],
        Ok(c) => c
            .unlisted
            .iter()
            .map(|path| {
                format!(
                    "warning: {path} is not listed in {dat_path} (a backup run was interrupted \
                     before writing its line): restores take it, as its .index shows it \
                     continues the chain, but neither -V nor -R -w can check it. The next \
                     backup adds its line"
                )
            })
            .collect(),
    };
    for w in warnings {
        (hooks.notice)(&w);
        report.warnings.push(w);
    }
    Ok(report)
}

/// How verify reports a file it could not read: Python's "is missing" for a file that is
/// not there or not gzip (Python's verify says that for every `OSError`, `BadGzipFile`
/// among them), "is unreadable" with the reason for the rest (no permission, not a regular
/// file, an I/O error).
fn unreadable(path: &str, e: Error) -> Error {
    match e {
        Error::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            Error::Missing(path.to_string())
        }
        Error::NotGzipped(_) | Error::GzipFile(_) => Error::Missing(path.to_string()),
        Error::Io { source, .. } => Error::Unreadable {
            path: path.to_string(),
            why: crate::error::os_error_words(&source),
        },
        Error::Files(f) => Error::Unreadable {
            path: path.to_string(),
            why: match f.io_error() {
                Some(io) => crate::error::os_error_words(io),
                None => f.to_string(),
            },
        },
        other => other,
    }
}
