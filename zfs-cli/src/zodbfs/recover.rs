//! `zodbfs recover`: what can be read from a damaged file, copied into a new one.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use zfs_cli::exit;

use crate::common::{Ctx, FileBytes};

/// What recover repairs, and its exit codes, shown by `zodbfs recover --help`.
const EXIT_CODES: &str = "Recover repairs structure only, as ZODB's fsrecover does: \
transactions and records that cannot be read are left out, and the rest is copied as it \
is. Records that read well but are wrong in content (a serial that does not match its \
transaction, a backpointer to a missing record, a dangling reference) are copied \
unchanged: run `zodbfs check` and `zodbfs refs` on OUTPUT afterwards.

Exit codes: 0 = everything was copied; 3 = OUTPUT was written but \
bytes were lost, or transactions given new tids; 1 = nothing written (a missing or \
unreadable file, not a FileStorage file, OUTPUT exists without --force, an I/O error); 2 = \
bad arguments; 130 = interrupted, nothing written.";

/// Arguments of `zodbfs recover`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct RecoverArgs {
    /// The damaged file.
    pub input: PathBuf,
    /// The new file.
    pub output: PathBuf,
    /// Overwrite OUTPUT if it exists.
    #[arg(short, long)]
    pub force: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `recover`.
pub fn run(a: RecoverArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let interrupt = zfs_cli::signals::on_signals();
    let input = FileBytes::load(&a.input)?;
    let input_meta = input
        .file()
        .metadata()
        .with_context(|| format!("'{}'", a.input.display()))?;
    let mode = zfs_files::permissions_of(&input_meta);
    // Checked before any work: OUTPUT is never the input (by any name), never reached
    // through a symlink, and replaced (only with --force) once it is complete.
    let mut spec = zfs_files::OutputSpec::new(&a.output)
        .replace(a.force)
        .mode(mode);
    spec = spec.not_input_file(&a.input, input.file())?;
    let out = spec.create().map_err(|e| match e {
        zfs_files::Error::Exists { path } => {
            anyhow::anyhow!("'{}' exists (use --force to replace it)", path.display())
        }
        other => other.into(),
    })?;
    let bar = ctx.bar();
    let r = zfs_check::recover::recover(input.bytes(), out.file(), &bar).map_err(|e| match e {
        zfs_check::recover::RecoverError::Io(io) => anyhow::Error::new(out.write_error(io)),
        other => anyhow::Error::new(other).context(format!("recovering '{}'", a.input.display())),
    });
    bar.finish();
    input.check_intact()?;
    let r = r?;
    if interrupt.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(zfs_repozo::Error::Interrupted.into());
    }
    out.commit()?;
    let mut tail_file = None;
    if let Some(at) = r.checkpoint_at {
        // As fsrecover: save the unfinished transaction and what follows in OUTPUT.trN.
        let tail = usize::try_from(at)
            .ok()
            .and_then(|at| input.bytes().get(at..))
            .unwrap_or_default();
        tail_file = Some(zfs_files::save_free_trn(&a.output, tail, mode)?);
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        #[derive(serde::Serialize)]
        struct Json<'a> {
            input: String,
            output: String,
            tail_file: Option<String>,
            complete: bool,
            #[serde(flatten)]
            report: &'a zfs_check::recover::RecoverReport,
        }
        let v = Json {
            input: a.input.display().to_string(),
            output: a.output.display().to_string(),
            tail_file: tail_file.as_ref().map(|p| p.display().to_string()),
            complete: r.is_complete(),
            report: &r,
        };
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        for l in &r.losses {
            writeln!(
                out,
                "lost {} bytes at offset {}: {}",
                l.len, l.offset, l.why
            )?;
        }
        for (p, o, n) in &r.retimed {
            writeln!(
                out,
                "transaction at offset {p}: tid {o} is not above the previous one; written as {n}"
            )?;
        }
        if let (Some(at), Some(p)) = (r.checkpoint_at, &tail_file) {
            writeln!(
                out,
                "unfinished ('c') transaction at offset {at}: it and the {} bytes after it were not copied; saved in '{}'",
                input.bytes().len() as u64 - at,
                p.display()
            )?;
        }
        writeln!(
            out,
            "{} -> {}: {} transactions, {} data records, {} bytes written; {} bytes removed during recovery{}",
            a.input.display(),
            a.output.display(),
            r.transactions,
            r.records,
            r.output_len,
            r.removed_bytes,
            if r.undone_bytes > 0 {
                format!(", {} bytes of undone transactions skipped", r.undone_bytes)
            } else {
                String::new()
            }
        )?;
    }
    Ok(if r.is_complete() {
        exit::OK
    } else {
        exit::FOUND_PROBLEMS
    })
}
