//! `repozo -V`: check the newest chain's files against its `.dat`, files in parallel.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::md5::Md5;
use crate::names::{join, Stamp};
use crate::repo;
use crate::source::read_uncompressed;
use crate::Hooks;

/// What `repozo -V` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// The repository directory, as given.
    pub repository: String,
    /// `-Q`: sizes only, no MD5.
    pub quick: bool,
    /// The clock; `None` reads the system clock.
    pub now: Option<Stamp>,
}

/// One verified file.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The file as repozo names it (repository + base name from the `.dat`).
    pub path: String,
    /// Its uncompressed size.
    pub size: u64,
    /// Its MD5 (not with `-Q`).
    pub md5: Option<String>,
}

/// Verifies; returns the files checked, or the first failure in `.dat` order.
pub fn verify(opts: &VerifyOptions, hooks: &Hooks<'_>) -> Result<Vec<Verified>> {
    let _lock = repo::lock(&opts.repository, false, &|| {
        (hooks.notice)(&format!(
            "a backup is running on {}; waiting for it to finish",
            opts.repository
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
                let m = std::fs::metadata(&path).map_err(|_| Error::Missing(path.clone()))?;
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
                .map_err(|e| match e {
                    // Python's verify reports every OSError (BadGzipFile is one) this way.
                    Error::Io { .. } | Error::NotGzipped(_) | Error::GzipFile(_) => {
                        Error::Missing(path.clone())
                    }
                    other => other,
                })?;
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
    let mut out = Vec::new();
    for (l, r) in lines.iter().zip(results) {
        hooks.log(&format!(
            "Verifying {}",
            join(&opts.repository, l.basename())
        ));
        out.push(r?);
    }
    Ok(out)
}
