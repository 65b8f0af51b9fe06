//! `zodbfs export`: a RelStorage database on PostgreSQL back into a new Data.fs.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use zfs_cli::exit;
use zfs_convert::{ConvertError, ExportOptions, Mode};

use crate::common::{failure, Ctx};

/// Arguments of `zodbfs export`.
///
/// Writes the RelStorage database (history-preserving or history-free) into a new
/// FileStorage FILE, byte for byte what zodbconvert writes with a FileStorage destination:
/// every transaction in tid order with its metadata (history-free: one packed transaction
/// per tid, without metadata), every object state as a data record, deletions and undone
/// creations as records without data. With --blobs-to, blob files go into a new blob
/// directory (bushy layout). FILE must not exist; it appears only once complete.
///
/// Exit codes: 0 written; 1 error (nothing written); 2 usage; 130 interrupted (nothing
/// written).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The database, as a libpq URL or key=value string.
    pub database: String,
    /// The new Data.fs.
    pub file: PathBuf,
    /// Write the blob files into this new (or empty) directory.
    #[arg(long, value_name = "DIR")]
    pub blobs_to: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `export`.
pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<u8> {
    let opts = ExportOptions {
        blobs_to: a.blobs_to.clone(),
    };
    let bar = zfs_cli::ui::Bar::new(ctx.quiet || a.json);
    let t0 = Instant::now();
    let result = zfs_convert::export(&a.database, &a.file, &opts, &bar);
    bar.finish();
    let secs = t0.elapsed().as_secs_f64();
    match result {
        Ok(r) => {
            let mode = r.mode.map_or("", Mode::name);
            if a.json {
                crate::common::print_report_line(&a.file, secs, &r);
            } else {
                println!(
                    "{}: {} transactions, {} records, {} bytes, {} blobs from the {} database; \
                     {:.2} s",
                    a.file.display(),
                    r.transactions,
                    r.records,
                    r.bytes,
                    r.blobs,
                    mode,
                    secs
                );
            }
            Ok(exit::OK)
        }
        Err(ConvertError::Interrupted) => Err(failure(
            exit::INTERRUPTED,
            "interrupted; nothing was written",
        )),
        Err(e) => Err(e).with_context(|| format!("exporting '{}'", a.database)),
    }
}
