//! `zodbfs backup`, `restore`, `verify`: repozo's operations with modern options (a
//! `--json` summary, progress bars on a terminal). The repository is the same as repozo's.

use std::io::Write as _;
use std::path::PathBuf;

use serde_json::json;
use zfs_cli::exit;
use zfs_repozo::backup::{backup, Action, BackupOptions};
use zfs_repozo::restore::{restore, RestoreOptions};
use zfs_repozo::verify::{verify, VerifyOptions};
use zfs_repozo::Hooks;

use crate::common::Ctx;

/// Arguments of `zodbfs backup`.
#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// The Data.fs file.
    pub file: PathBuf,
    /// The repository directory (must exist).
    #[arg(short, long)]
    pub repository: PathBuf,
    /// Always make a full backup.
    #[arg(short = 'F', long)]
    pub full: bool,
    /// Decide from the last `.dat` line instead of checksumming repository and source.
    #[arg(short = 'Q', long)]
    pub quick: bool,
    /// Gzip the new backup file (.fsz / .deltafsz), on all cores.
    #[arg(short = 'z', long)]
    pub gzip: bool,
    /// gzip level (1-9).
    #[arg(long, default_value_t = zfs_repozo::gz::DEFAULT_LEVEL, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub level: u32,
    /// After a full backup, delete older backups with their .dat and .index files.
    #[arg(short = 'k', long)]
    pub kill_old_on_full: bool,
    /// Print repozo's progress messages on stderr.
    #[arg(short, long)]
    pub verbose: bool,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// The site's blob directory: back it up too, after the Data.fs (needs --blob-backups).
    #[arg(long, value_name = "DIR", requires = "blob_backups")]
    pub blobs: Option<PathBuf>,
    /// Where blob backups go: one NAME.<stamp> tree per backup, unchanged blobs hard-linked.
    #[arg(long, value_name = "DIR", requires = "blobs")]
    pub blob_backups: Option<PathBuf>,
}

/// Arguments of `zodbfs restore`.
#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// The repository.
    pub repository: PathBuf,
    /// The file to write (its index goes to OUTPUT.index); `-` writes the data to stdout.
    #[arg(short, long, required_unless_present = "drill")]
    pub output: Option<PathBuf>,
    /// Restore the state as of this date (yyyy-mm-dd[-hh[-mm[-ss]]], UTC).
    #[arg(short = 'D', long)]
    pub date: Option<String>,
    /// Check every backup file's size and checksum against the .dat while restoring.
    #[arg(short = 'w', long)]
    pub with_verify: bool,
    /// Print repozo's progress messages on stderr.
    #[arg(short, long)]
    pub verbose: bool,
    /// Print a JSON summary on stdout (not with `-o -`).
    #[arg(long)]
    pub json: bool,
    /// The blob backup directory: restore the blob tree that goes with the Data.fs state
    /// too (needs --blobs-to, or --drill).
    #[arg(long, value_name = "DIR")]
    pub blob_backups: Option<PathBuf>,
    /// The blob directory to restore (both halves are switched in only once complete).
    #[arg(long, value_name = "DIR", requires = "blob_backups")]
    pub blobs_to: Option<PathBuf>,
    /// Restore into a scratch directory, check the result (and the blobs with
    /// --blob-backups), report how long the restore took, and remove it.
    #[arg(long, conflicts_with_all = ["output", "blobs_to"])]
    pub drill: bool,
    /// Where --drill makes its scratch directory (default: the system's temporary
    /// directory).
    #[arg(long, value_name = "DIR", requires = "drill")]
    pub scratch: Option<PathBuf>,
    /// Replace an existing site without asking (required when there is no terminal).
    #[arg(long)]
    pub yes: bool,
}

/// Arguments of `zodbfs verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The repository.
    pub repository: PathBuf,
    /// Check sizes only, not checksums.
    #[arg(short = 'Q', long)]
    pub quick: bool,
    /// The blob backup directory: check the newest blob tree against the blob records of
    /// its Data.fs state.
    #[arg(long, value_name = "DIR")]
    pub blob_backups: Option<PathBuf>,
    /// With --blob-backups: check every blob tree, not only the newest.
    #[arg(long, requires = "blob_backups")]
    pub all: bool,
    /// Print repozo's progress messages on stderr.
    #[arg(short, long)]
    pub verbose: bool,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
}

fn path_str(p: &std::path::Path) -> anyhow::Result<String> {
    p.to_str().map(str::to_string).ok_or_else(|| {
        anyhow::anyhow!(
            "'{}': paths must be UTF-8 (they are written into the .dat file)",
            p.display()
        )
    })
}

/// Runs `hooks`-using work with a progress bar and repozo's messages when verbose.
fn with_hooks<T>(ctx: &Ctx, verbose: bool, f: impl FnOnce(&Hooks<'_>) -> T) -> T {
    let bar = ctx.bar();
    let log = move |m: &str| {
        if verbose {
            eprintln!("{m}");
        }
    };
    let notice = |m: &str| eprintln!("zodbfs: {m}");
    let hooks = Hooks {
        log: &log,
        notice: &notice,
        progress: &bar,
        verbose,
        interrupt: Some(zfs_cli::signals::on_signals()),
    };
    let r = f(&hooks);
    bar.finish();
    r
}

/// The error's own message (it already names the file and the OS error); an interruption
/// keeps its type, for the exit status.
fn plain(e: zfs_repozo::Error) -> anyhow::Error {
    match e {
        zfs_repozo::Error::Interrupted => anyhow::Error::new(e),
        e => anyhow::Error::msg(e.to_string()),
    }
}

fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Runs `backup`.
pub fn run_backup(a: BackupArgs, c: &Ctx) -> anyhow::Result<u8> {
    if a.blobs.is_some() {
        return crate::site::run_backup(a, c);
    }
    let opts = BackupOptions {
        repository: path_str(&a.repository)?,
        file: path_str(&a.file)?,
        full: a.full,
        quick: a.quick,
        gzip: a.gzip,
        gzip_level: a.level,
        kill_old: a.kill_old_on_full,
        now: None,
    };
    let r = with_hooks(c, a.verbose, |h| backup(&opts, h)).map_err(plain)?;
    let action = match r.action {
        Action::NothingToDo => "nothing",
        Action::Full => "full",
        Action::Incremental => "incremental",
    };
    if a.json {
        let line = r.dat_line.as_ref();
        print_json(&json!({
            "action": action,
            "reason": r.reason,
            "file": r.data_file,
            "start": line.map(|l| l.start),
            "end": line.map(|l| l.end),
            "md5": line.map(|l| l.md5.clone()),
            "source_size": r.source_size,
            "written": r.written,
            "removed": r.removed,
        }))?;
    } else if !c.quiet {
        match (&r.data_file, &r.dat_line) {
            (Some(f), Some(l)) => eprintln!(
                "{action} backup: {} bytes [{}..{}) to {f}",
                l.end - l.start,
                l.start,
                l.end
            ),
            _ => eprintln!("no changes, nothing to do"),
        }
    }
    Ok(exit::OK)
}

/// Runs `restore`.
pub fn run_restore(a: RestoreArgs, c: &Ctx) -> anyhow::Result<u8> {
    if a.drill || a.blob_backups.is_some() {
        return crate::site::run_restore(a, c);
    }
    let output = a.output.clone().expect("clap requires -o unless --drill");
    let to_stdout = output.as_os_str() == "-";
    let opts = RestoreOptions {
        repository: path_str(&a.repository)?,
        date: a.date.clone(),
        output: if to_stdout {
            None
        } else {
            Some(output.clone())
        },
        with_verify: a.with_verify,
        now: None,
    };
    let r = with_hooks(c, a.verbose, |h| {
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        restore(&opts, h, &mut lock)
    })
    .map_err(plain)?;
    if a.json && !to_stdout {
        print_json(&json!({
            "output": output,
            "bytes": r.bytes,
            "md5": r.md5,
            "chain": r.chain,
            "index": r.index,
        }))?;
    }
    Ok(exit::OK)
}

/// Runs `verify`.
pub fn run_verify(a: VerifyArgs, c: &Ctx) -> anyhow::Result<u8> {
    if a.blob_backups.is_some() {
        return crate::site::run_verify(a, c);
    }
    let opts = VerifyOptions {
        repository: path_str(&a.repository)?,
        quick: a.quick,
        now: None,
    };
    match with_hooks(c, a.verbose, |h| verify(&opts, h)) {
        Ok(files) => {
            if a.json {
                let files: Vec<_> = files
                    .iter()
                    .map(|f| json!({"file": f.path, "size": f.size, "md5": f.md5}))
                    .collect();
                print_json(&json!({"ok": true, "files": files}))?;
            }
            Ok(exit::OK)
        }
        Err(
            e @ (zfs_repozo::Error::Missing(_)
            | zfs_repozo::Error::WrongSize { .. }
            | zfs_repozo::Error::WrongChecksum { .. }
            | zfs_repozo::Error::BadGzip { .. }
            | zfs_repozo::Error::BadDatLine { .. }),
        ) => {
            if a.json {
                print_json(&json!({"ok": false, "problem": e.to_string()}))?;
            }
            eprintln!("zodbfs: {e}");
            Ok(exit::FOUND_PROBLEMS)
        }
        Err(e) => Err(plain(e)),
    }
}
