//! `zodbfs check`: a file's integrity, everything fstest checks and more.

use std::io::Write;
use std::path::PathBuf;

use zfs_cli::exit;

use crate::common::{Ctx, FileBytes};

/// Exit codes, shown by `zodbfs check --help`.
const EXIT_CODES: &str = "Exit codes: 0 = no problem found; 3 = the check ran to its end \
and found damage (or, with --blobs, missing or wrong blob files); 1 = it could not run (a \
missing or unreadable file, not a FileStorage file, an I/O error); 2 = bad arguments.";

/// Arguments of `zodbfs check`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct CheckArgs {
    /// The Data.fs file.
    pub file: PathBuf,
    /// Structure only (what fstest checks, plus 'u' transactions): skip the prev pointer,
    /// backpointer, serial and .index checks.
    #[arg(long)]
    pub quick: bool,
    /// The saved index to compare with the file (default: FILE.index, when it exists).
    #[arg(long, value_name = "PATH", conflicts_with = "no_index")]
    pub index: Option<PathBuf>,
    /// Do not compare a saved .index with the file.
    #[arg(long)]
    pub no_index: bool,
    /// The site's blob directory: check that every blob record has its file (missing
    /// files are reported; so are files no record names).
    #[arg(long, value_name = "DIR")]
    pub blobs: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `check`.
pub fn run(a: CheckArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    use zfs_check::check::{check, Options};
    let file = FileBytes::load(&a.file)?;
    let index_file = if a.no_index || a.quick {
        None
    } else {
        let (p, explicit) = match &a.index {
            Some(p) => (p.clone(), true),
            None => (zfs_files::with_suffix(&a.file, ".index"), false),
        };
        // Mapped, not read into memory: check reads it through in order, never holding it.
        match std::fs::File::open(&p) {
            Ok(f) => {
                let map = zfs_files::Map::new(f, &p)?;
                Some((p, map))
            }
            Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(anyhow::Error::new(e).context(format!("'{}'", p.display()))),
        }
    };
    let bar = ctx.bar();
    let opts = Options {
        quick: a.quick,
        index: index_file.as_ref().map(|(_, b)| &b[..]),
    };
    let report = check(file.bytes(), &opts, &bar);
    bar.finish();
    let report = report?;
    let mut out = std::io::stdout().lock();
    let magic = report.magic.map(|m| m.as_str());
    let index_shown = index_file.as_ref().map(|(p, _)| p.display().to_string());
    let blobs = match &a.blobs {
        Some(dir) => Some(crate::site::check_blobs(&a.file, dir, ctx)?),
        None => None,
    };
    let blobs_ok = blobs.as_ref().is_none_or(|b| b.is_ok());
    if a.json {
        #[derive(serde::Serialize)]
        struct Json<'a> {
            file: String,
            mode: &'a str,
            index: Option<&'a str>,
            clean: bool,
            #[serde(flatten)]
            report: &'a zfs_check::check::Report,
            blobs: Option<&'a zfs_site::consistency::BlobCheck>,
        }
        let v = Json {
            file: a.file.display().to_string(),
            mode: if a.quick { "quick" } else { "full" },
            index: index_shown.as_deref(),
            clean: report.is_clean() && blobs_ok,
            report: &report,
            blobs: blobs.as_ref(),
        };
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        for f in &report.findings {
            writeln!(out, "{}: {}: {}", f.offset, f.kind, f.message)?;
        }
        let what = format!(
            "{}, {} bytes, {} transactions, {} data records, {} check{}",
            magic.unwrap_or("no valid magic"),
            report.file_len,
            report.transactions,
            report.records,
            if a.quick { "structural" } else { "full" },
            match &index_shown {
                Some(p) => format!(", compared with {p}"),
                None => String::new(),
            }
        );
        if report.is_clean() && blobs_ok {
            writeln!(out, "{}: no problems found ({what})", a.file.display())?;
        } else if report.is_clean() {
            writeln!(
                out,
                "{}: no problems found in the file ({what}), but its blob directory has \
                 problems (below)",
                a.file.display()
            )?;
        } else {
            let n = report.findings.len();
            writeln!(
                out,
                "{}: {n} problem{} found ({what})",
                a.file.display(),
                if n == 1 { "" } else { "s" }
            )?;
        }
        if let Some(b) = &blobs {
            crate::site::print_blob_check(b);
        }
    }
    Ok(if report.is_clean() && blobs_ok {
        exit::OK
    } else {
        exit::FOUND_PROBLEMS
    })
}
