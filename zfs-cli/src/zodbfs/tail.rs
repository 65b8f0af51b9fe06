//! `zodbfs tail`.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use zfs_cli::exit;

use crate::common::{open, Ctx};

/// Arguments of `zodbfs tail`: fstail's text for the last transactions, newest first.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit codes: 0 = done; 1 = it could not run (a missing or unreadable file, not a \
FileStorage file, damage in the transactions shown); 2 = bad arguments."
)]
pub struct Args {
    /// Number of transactions to show.
    #[arg(short = 'n', default_value_t = 10)]
    pub n: u64,
    /// The Data.fs file.
    pub file: PathBuf,
}

/// Runs `tail`.
pub fn run(a: Args, _ctx: &Ctx) -> anyhow::Result<u8> {
    let fs = open(&a.file)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    zfs_check::tail::tail(&fs, a.n, &mut out).with_context(|| format!("'{}'", a.file.display()))?;
    out.flush()?;
    Ok(exit::OK)
}
