//! Full, incremental or nothing: the source compared with the chain, as Python repozo
//! decides (with its log lines), into one [`Decision`] value.

use crate::error::Result;
use crate::md5::Md5;
use crate::repo::{self, ChainFile};
use crate::source::chain_md5;
use crate::Hooks;

use super::Source;

/// What a backup does, and why: the outcome of comparing the source with the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// A full backup. `reason` says why, when there was a chain an incremental backup could
    /// have extended (as Python repozo logs it); `None` when none was asked for or possible.
    Full {
        /// Why not an incremental backup.
        reason: Option<String>,
    },
    /// An incremental backup of the source from `start` (the chain's end) on.
    Incremental {
        /// Where the copy starts.
        start: u64,
    },
    /// The chain holds the source already.
    NothingToDo,
}

impl Decision {
    /// Why a full backup was made instead of an incremental one.
    pub(super) fn reason(&self) -> Option<&str> {
        match self {
            Decision::Full { reason } => reason.as_deref(),
            _ => None,
        }
    }
}

/// What the source is compared with: the chain, the source's size and the end of its
/// committed data.
pub(super) struct Inputs<'a> {
    /// The chain from the last full backup on.
    pub chain: &'a [ChainFile],
    /// The source.
    pub src: &'a Source,
    /// Its size.
    pub srcsz: u64,
    /// The end of its last committed transaction.
    pub committed: u64,
}

const SHRUNK: &str = "file shrunk, possibly because of a pack (full backup)";
const CHANGED: &str = "file changed, possibly because of a pack (full backup)";

/// A full backup because of `why`, logged as Python repozo logs it.
pub(super) fn full_because(hooks: &Hooks<'_>, why: &str) -> Decision {
    hooks.log(why);
    Decision::Full {
        reason: Some(why.to_string()),
    }
}

/// `-Q`: compares only the last backup's range of the source with its `.dat` MD5.
pub(super) fn quick(hooks: &Hooks<'_>, i: &Inputs<'_>) -> Result<Decision> {
    let Inputs {
        chain,
        src,
        srcsz,
        committed,
    } = *i;
    let view = src.view(committed);
    let dat = repo::dat_path_of(&chain[0]);
    let last = repo::read_dat(&dat)?.and_then(|lines| lines.last().cloned());
    let Some(last) = last else {
        return Ok(full_because(
            hooks,
            "missing or empty .dat file (full backup)",
        ));
    };
    if srcsz < last.end {
        return Ok(full_because(hooks, SHRUNK));
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
            return Ok(Decision::NothingToDo);
        }
        return Ok(Decision::Incremental { start: last.end });
    }
    Ok(full_because(hooks, CHANGED))
}

/// The default: is the chain a prefix of the source? With `-v`, by MD5s as Python repozo
/// logs them; otherwise by comparing bytes ([`compare`]).
pub(super) fn by_md5(hooks: &Hooks<'_>, i: &Inputs<'_>) -> Result<Decision> {
    if !hooks.verbose {
        // No MD5 is printed: comparing the chain's bytes with the source's gives the same
        // answers as comparing their MD5s, at memory speed, without hashing the source.
        return compare(hooks, i);
    }
    let Inputs {
        chain,
        src,
        srcsz,
        committed,
    } = *i;
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
        return Ok(Decision::NothingToDo);
    }
    if srcsz < reposz {
        return Ok(full_because(hooks, SHRUNK));
    }
    if reposum == backed_up {
        return Ok(Decision::Incremental { start: reposz });
    }
    Ok(full_because(hooks, CHANGED))
}

/// The default decision without MD5s: is the chain a prefix of the source?
fn compare(hooks: &Hooks<'_>, i: &Inputs<'_>) -> Result<Decision> {
    let Inputs {
        chain,
        src,
        srcsz,
        committed,
    } = *i;
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
        return Ok(Decision::NothingToDo);
    }
    if srcsz < reposz {
        return Ok(full_because(hooks, SHRUNK));
    }
    if equal {
        return Ok(Decision::Incremental { start: reposz });
    }
    Ok(full_because(hooks, CHANGED))
}
