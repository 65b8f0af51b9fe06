//! `zodbfs refs`: dangling references, as fsrefs finds them.

use std::io::Write;
use std::path::PathBuf;

use zfs_cli::exit;

use crate::common::{hex_oid, load_index, open, Ctx};

/// Exit codes, shown by `zodbfs refs --help`.
const EXIT_CODES: &str = "Exit codes: 0 = no dangling reference; 3 = dangling references, \
or objects whose current revision cannot be loaded or scanned; 1 = it could not run (a \
missing or unreadable file, not a FileStorage file, damage that stops the index scan); 2 = \
bad arguments.";

/// Arguments of `zodbfs refs`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct RefsArgs {
    /// The Data.fs file.
    pub file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `refs`.
pub fn run(a: RefsArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let fs = open(&a.file)?;
    let bar = ctx.bar();
    let index = load_index(&fs, &a.file, &bar)?;
    let r = zfs_check::refs::dangling_refs(&fs, &index, &bar);
    bar.finish();
    let mut out = std::io::stdout().lock();
    if a.json {
        #[derive(serde::Serialize)]
        struct Json<'a> {
            file: String,
            clean: bool,
            #[serde(flatten)]
            report: &'a zfs_check::refs::RefsReport,
        }
        let v = Json {
            file: a.file.display().to_string(),
            clean: r.is_clean(),
            report: &r,
        };
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        for d in &r.dangling {
            writeln!(
                out,
                "{} -> {}: {} (referrer {} at offset {}, tid {})",
                d.referrer,
                hex_oid(&d.target),
                d.reason.describe(),
                d.class,
                d.offset,
                d.tid
            )?;
        }
        for u in &r.unreadable {
            writeln!(
                out,
                "{}: cannot be loaded: {} (current record at offset {})",
                u.oid, u.error, u.offset
            )?;
        }
        for u in &r.unscannable {
            writeln!(
                out,
                "{}: references cannot be read: {} (current record at offset {})",
                u.oid, u.error, u.offset
            )?;
        }
        let n = r.dangling.len();
        writeln!(
            out,
            "{}: {} object{}, {n} dangling reference{}, {} unloadable, {} unscannable",
            a.file.display(),
            r.objects,
            if r.objects == 1 { "" } else { "s" },
            if n == 1 { "" } else { "s" },
            r.unreadable.len(),
            r.unscannable.len()
        )?;
    }
    Ok(if r.is_clean() {
        exit::OK
    } else {
        exit::FOUND_PROBLEMS
    })
}
