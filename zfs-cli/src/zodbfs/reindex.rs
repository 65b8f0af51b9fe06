//! `zodbfs reindex`.

use std::path::PathBuf;

use anyhow::Context as _;
use zfs_cli::exit;
use zfs_format::index_file::save_index;
use zfs_format::scan::build_index;

use crate::common::{open, Ctx};

/// Arguments of `zodbfs reindex`.
///
/// Scans the whole file (ignoring any existing index) and writes the index ZODB would write
/// for it: the same bytes as `FILE.index` after ZODB opens and closes the storage. The file
/// appears complete or not at all (temporary file, fsync, rename).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The Data.fs file.
    pub file: PathBuf,
    /// Where to write the index (default: FILE.index).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// Runs `reindex`.
pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<u8> {
    let fs = open(&a.file)?;
    let bar = ctx.bar();
    let scan = build_index(&fs, &bar).with_context(|| format!("'{}'", a.file.display()))?;
    bar.finish();
    let out = a.output.unwrap_or_else(|| {
        let mut p = a.file.clone().into_os_string();
        p.push(".index");
        PathBuf::from(p)
    });
    save_index(&out, &scan.index, scan.end.pos.max(zfs_format::FIRST_TXN))?;
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
