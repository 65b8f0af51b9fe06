//! `zodbfs info`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use zfs_cli::exit;

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

/// Runs `info`.
pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<u8> {
    let fs = open(&a.file)?;
    let bar = ctx.bar();
    let i = zfs_check::info::info(&fs, &bar).with_context(|| format!("'{}'", a.file.display()))?;
    bar.finish();
    let mut out = std::io::stdout().lock();
    if a.json {
        #[derive(serde::Serialize)]
        struct Json<'a> {
            file: String,
            #[serde(flatten)]
            info: &'a zfs_check::info::Info,
        }
        let v = Json {
            file: a.file.display().to_string(),
            info: &i,
        };
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
                i.end_reason.code()
            )?;
        } else {
            writeln!(out, "tail:               none")?;
        }
    }
    Ok(exit::OK)
}
