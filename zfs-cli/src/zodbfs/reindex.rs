//! `zodbfs reindex`.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use zfs_cli::exit;
use zfs_files::OutputSpec;
use zfs_format::index_file::save_index;
use zfs_format::scan::build_index;

use crate::common::{open, Ctx};

/// Arguments of `zodbfs reindex`.
///
/// Scans the whole file (ignoring any existing index) and writes the index ZODB would write
/// for it: the same bytes as `FILE.index` after ZODB opens and closes the storage. The file
/// appears complete or not at all (temporary file, fsync, rename).
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit codes: 0 = the index was written; 1 = it could not run, nothing written (a \
missing or unreadable file, not a FileStorage file, damage in the middle of the \
file, an I/O error); 2 = bad arguments; 130 = interrupted, nothing written."
)]
pub struct Args {
    /// The Data.fs file.
    pub file: PathBuf,
    /// Where to write the index (default: FILE.index).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// Runs `reindex`.
pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<u8> {
    let interrupt = zfs_cli::signals::on_signals();
    let fs = open(&a.file)?;
    let out = a
        .output
        .unwrap_or_else(|| zfs_files::with_suffix(&a.file, ".index"));
    // Refused before any work: the output may never be the database itself.
    let spec = OutputSpec::new(&out)
        .not_input_file(&a.file, fs.file())?
        .mode(zfs_files::permissions_of(&fs.file().metadata()?));
    spec.check()?;
    let bar = ctx.bar();
    let scan = build_index(&fs, &bar).with_context(|| format!("'{}'", a.file.display()))?;
    bar.finish();
    fs.check_intact()?;
    if interrupt.load(Ordering::SeqCst) {
        return Err(zfs_repozo::Error::Interrupted.into());
    }
    save_index(spec, &scan.index, scan.end.pos.max(zfs_format::FIRST_TXN))?;
    if !ctx.quiet {
        eprintln!(
            "wrote '{}': {} objects, data ends at {}",
            out.display(),
            scan.index.len(),
            scan.end.pos
        );
    }
    Ok(exit::OK)
}
