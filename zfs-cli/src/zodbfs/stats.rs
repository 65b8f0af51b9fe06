//! `zodbfs stats`: per-class counts and sizes of current and old revisions.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use zfs_cli::exit;

use crate::common::{load_index, open, Ctx};

/// Exit codes, shown by `zodbfs stats --help`.
const EXIT_CODES: &str = "Exit codes: 0 = the statistics were printed (records with a broken \
backpointer are counted apart, not as a failure: use `zodbfs check` to look for damage); \
1 = it could not run (a missing or unreadable file, not a FileStorage file, damage that \
stops the index scan); 2 = bad arguments.";

/// Arguments of `zodbfs stats`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct StatsArgs {
    /// The Data.fs file.
    pub file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `stats`.
pub fn run(a: StatsArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let fs = open(&a.file)?;
    let bar = ctx.bar();
    let index = load_index(&fs, &a.file, &bar)?;
    let s = zfs_check::stats::stats(&fs, &index, &bar)
        .with_context(|| format!("'{}'", a.file.display()))?;
    bar.finish();
    let mut out = std::io::stdout().lock();
    if a.json {
        #[derive(serde::Serialize)]
        struct Json<'a> {
            file: String,
            #[serde(flatten)]
            stats: &'a zfs_check::stats::Stats,
        }
        let v = Json {
            file: a.file.display().to_string(),
            stats: &s,
        };
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        return Ok(exit::OK);
    }
    writeln!(
        out,
        "{} transactions ({} bytes), {} data records, {} objects, {} deletion records",
        s.transactions, s.transaction_bytes, s.records, s.objects, s.deletions
    )?;
    if s.unreadable > 0 {
        writeln!(
            out,
            "{} records with a broken backpointer (not counted)",
            s.unreadable
        )?;
    }
    writeln!(
        out,
        "{:<50} {:>9} {:>12} {:>9} {:>12} {:>6}",
        "class", "current", "cur bytes", "old", "old bytes", "pct"
    )?;
    let total = s.total.bytes().max(1);
    let mut rows: Vec<_> = s.classes.iter().collect();
    rows.sort_by(|x, y| y.1.bytes().cmp(&x.1.bytes()).then(x.0.cmp(y.0)));
    for (k, c) in rows {
        writeln!(
            out,
            "{:<50} {:>9} {:>12} {:>9} {:>12} {:>5.1}%",
            k,
            c.current,
            c.current_bytes,
            c.old,
            c.old_bytes,
            100.0 * c.bytes() as f64 / total as f64
        )?;
    }
    let t = &s.total;
    writeln!(
        out,
        "{:<50} {:>9} {:>12} {:>9} {:>12} {:>5.1}%",
        "total", t.current, t.current_bytes, t.old, t.old_bytes, 100.0
    )?;
    Ok(exit::OK)
}
