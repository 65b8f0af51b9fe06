//! `zodbfs info`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::json;
use zfs_cli::exit;
use zfs_format::EndReason;

use crate::common::{open, Ctx};

/// Arguments of `zodbfs info`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit codes: 0 = done; 1 = it could not run (a missing or unreadable file, not a \
FileStorage file, damage in the middle of the file); 2 = bad arguments."
)]
pub struct Args {
    /// The Data.fs file.
    pub file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

fn reason(r: EndReason) -> &'static str {
    match r {
        EndReason::Clean => "clean",
        EndReason::ShortHeader => "short-header",
        EndReason::PastEnd => "torn-transaction",
        EndReason::Checkpoint => "uncommitted-transaction",
        EndReason::Junk => "junk",
    }
}

/// Runs `info`.
pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<u8> {
    let fs = open(&a.file)?;
    let bar = ctx.bar();
    let i = zfs_check::info::info(&fs, &bar).with_context(|| format!("'{}'", a.file.display()))?;
    bar.finish();
    let opt = |t: Option<zfs_format::Tid>| t.map(|t| t.to_string());
    let mut out = std::io::stdout().lock();
    if a.json {
        let v = json!({
            "file": a.file.display().to_string(),
            "magic": i.magic.as_str(),
            "file_len": i.file_len,
            "size": i.size,
            "transactions": i.transactions,
            "data_records": i.data_records,
            "objects": i.objects,
            "first_tid": opt(i.first_tid),
            "last_complete_tid": opt(i.last_complete_tid),
            "last_tid": i.last_tid.to_string(),
            "tail_bytes": i.tail_bytes,
            "end": reason(i.end_reason),
        });
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        writeln!(out, "file:               {}", a.file.display())?;
        writeln!(out, "magic:              {}", i.magic.as_str())?;
        writeln!(out, "file length:        {}", i.file_len)?;
        writeln!(
            out,
            "end of data:        {} (end of the last complete transaction)",
            i.size
        )?;
        writeln!(out, "transactions:       {}", i.transactions)?;
        writeln!(out, "data records:       {}", i.data_records)?;
        writeln!(out, "objects:            {}", i.objects)?;
        let show = |t: Option<zfs_format::Tid>| match t {
            Some(t) => format!(
                "{t} ({})",
                zfs_format::timestamp::TimeStamp::from_bytes(t.0)
            ),
            None => "-".to_string(),
        };
        writeln!(out, "first tid:          {}", show(i.first_tid))?;
        writeln!(out, "last tid:           {}", show(i.last_complete_tid))?;
        if i.tail_bytes > 0 {
            writeln!(
                out,
                "tail:               {} bytes after the last complete transaction ({}), ignored as ZODB ignores them",
                i.tail_bytes,
                reason(i.end_reason)
            )?;
        } else {
            writeln!(out, "tail:               none")?;
        }
    }
    Ok(exit::OK)
}
