//! `zodbfs dump`.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use zfs_cli::exit;

use crate::common::{open, Ctx};

/// Arguments of `zodbfs dump`.
///
/// The text is fsdump's, line for line, so scripts that parse it (fsstats) keep working.
/// Where fsdump would log damage and stop, the dump stops, the damage is reported on stderr
/// and the exit code is 3.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit codes: 0 = the whole file was dumped; 3 = damage stopped the dump (reported \
on stderr); 1 = it could not run (a missing or unreadable file, not a \
FileStorage file); 2 = bad arguments."
)]
pub struct Args {
    /// The Data.fs file.
    pub file: PathBuf,
}

/// Runs `dump`.
pub fn run(a: Args, _ctx: &Ctx) -> anyhow::Result<u8> {
    let fs = open(&a.file)?;
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let outcome =
        zfs_check::dump::dump(&fs, &mut out).with_context(|| format!("'{}'", a.file.display()))?;
    out.flush()?;
    if let Some(e) = outcome.stopped_by {
        eprintln!("zodbfs: '{}': dump stopped: {e}", a.file.display());
        return Ok(exit::FOUND_PROBLEMS);
    }
    Ok(exit::OK)
}
