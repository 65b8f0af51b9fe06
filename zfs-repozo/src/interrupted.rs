//! Finishing a backup that an interrupted run left without its `.dat` line.
//!
//! An incremental backup renames its data file into place, then writes its `.dat` line. A
//! run stopped between the two (power cut, kill) leaves a complete data file that the
//! `.dat` does not list. Python repozo has the same window, for full backups too (it
//! writes a full backup's `.dat` after its data file; ours writes it before, so our runs
//! never leave a full backup without its `.dat`). Python's restore concatenates such a
//! file anyway; ours refuses a chain file the `.dat` does not list, `-V` cannot check it,
//! and a default-mode backup of an unchanged source would answer "nothing to do" forever.
//! So every backup run first checks the newest chain: a data file after the last listed
//! one (the full backup itself when the `.dat` is missing or empty) gets its line when its
//! bytes are exactly the source's bytes at the place the chain has reached. A file that
//! does not match is left as it is and the run makes a full backup, which starts a clean
//! chain.

use crate::error::{Error, Result};
use crate::md5::Md5;
use crate::repo::{self, ChainFile, DatLine};
use crate::source::{read_uncompressed, SourceView};
use crate::Hooks;

/// Adds the missing `.dat` lines of trailing chain files whose bytes match the source
/// (`view`, of `srcsz` bytes), writing the `.dat` with permission bits `mode`. Returns the path of an unlisted file that does not match
/// (the chain stays broken), `None` when every file is listed now (or the `.dat` is not
/// ours to judge). Run it under the repository lock.
pub(crate) fn complete_dat(
    hooks: &Hooks<'_>,
    chain: &[ChainFile],
    view: &SourceView<'_>,
    srcsz: u64,
    mode: u32,
) -> Result<Option<String>> {
    let Some(first) = chain.first() else {
        return Ok(None);
    };
    let dat = repo::dat_path_of(first);
    // A .dat we cannot read, or one that does not describe the first files of this chain
    // in order and without gaps (Python rebuilds a lost one from a later file on), is left
    // to the backup's decision and to restore's checks. A missing or empty one is the
    // start of the chain's full backup to complete.
    let lines = match repo::read_dat(&dat) {
        Ok(Some(lines)) => lines,
        Ok(None) => Vec::new(),
        Err(_) => return Ok(None),
    };
    if (lines.is_empty() && !first.kind.is_full()) || lines.len() >= chain.len() {
        return Ok(None);
    }
    let mut end = 0u64;
    for (line, file) in lines.iter().zip(chain) {
        if line.basename() != file.name || line.start != end {
            return Ok(None);
        }
        end = line.end;
    }
    for file in &chain[lines.len()..] {
        let mut h = Md5::new();
        let mut n = 0u64;
        let ticker = hooks.quiet();
        let read = read_uncompressed(&file.path, file.kind.is_gzip(), &mut |b| {
            h.update(b);
            n += b.len() as u64;
            ticker.check()
        });
        if let Err(Error::Interrupted) = read {
            return Err(Error::Interrupted);
        }
        let md5 = h.hex();
        let matches = read.is_ok() && end + n <= srcsz && {
            let mut s = Md5::new();
            view.hash(&mut s, end, end + n, &hooks.quiet())? == n && s.hex() == md5
        };
        if !matches {
            (hooks.notice)(&format!(
                "{} is not listed in {dat} and does not hold the source's bytes from {end} on; \
                 it is left as it is and a full backup starts a new chain",
                file.path
            ));
            return Ok(Some(file.path.clone()));
        }
        let line = DatLine {
            path: file.path.clone(),
            start: end,
            end: end + n,
            md5,
        };
        repo::append_dat(&dat, &line, mode)?;
        (hooks.notice)(&if end == 0 {
            format!(
                "{dat} was missing or empty (a run interrupted before writing it, or a lost \
                 file): wrote the line of {} (its bytes match the source)",
                file.path
            )
        } else {
            format!(
                "added the line of {} to {dat}: an interrupted run had renamed it into place \
                 without writing its line (its bytes match the source)",
                file.path
            )
        });
        end += n;
    }
    Ok(None)
}
