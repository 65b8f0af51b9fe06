//! `zodbfs backup`, `restore`, `verify`: repozo's operations with modern options (a
//! `--json` summary, progress bars on a terminal). The repository is the same as repozo's.

use std::io::Write as _;
use std::path::PathBuf;

use serde_json::json;
use zfs_cli::exit;
use zfs_repozo::backup::{backup, Action, BackupOptions};
use zfs_repozo::restore::{restore, Method, RestoreOptions, RestoreReport};
use zfs_repozo::verify::{verify_report, VerifyOptions};
use zfs_repozo::Hooks;

use crate::common::Ctx;

/// Arguments of `zodbfs backup`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit codes: 0 backed up (or nothing to do); 1 error, nothing put in \
    place; 2 usage; 3 backed up, but the Data.fs is damaged in the middle and the complete \
    transactions after the damage are not in the backup (the message says where; run \
    `zodbfs check`); 130 interrupted, nothing put in place."
)]
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
    /// Seconds to wait for another run's lock on the repository before failing.
    #[arg(long, value_name = "SECONDS", default_value_t = zfs_repozo::repo::DEFAULT_LOCK_WAIT.as_secs())]
    pub lock_wait: u64,
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
    /// An existing OUTPUT that is an earlier state of the chain is brought up to date in
    /// place (see --full). Otherwise the new file is written beside OUTPUT under a private
    /// temporary name and replaces OUTPUT once complete; only when the disk cannot hold
    /// both is the old OUTPUT deleted first, after every backup file has been checked, and
    /// the run says so. An existing OUTPUT's lock, OUTPUT.lock (a running ZODB's), is taken
    /// meanwhile: a database in use is not restored over.
    #[arg(short, long, required_unless_present = "drill")]
    pub output: Option<PathBuf>,
    /// Restore the state as of this date (yyyy-mm-dd[-hh[-mm[-ss]]], UTC).
    #[arg(short = 'D', long)]
    pub date: Option<String>,
    /// Check every backup file's size and checksum against the .dat while restoring.
    #[arg(short = 'w', long)]
    pub with_verify: bool,
    /// Rebuild an existing OUTPUT in full. Without it, an existing OUTPUT that is an earlier
    /// state of the chain is brought up to date in place: the backups it holds are checked
    /// against it by MD5, only the missing ones are appended, and OUTPUT is fsynced (a
    /// failure cuts it back to its old size). One that does not check out is rebuilt in
    /// full, and the run says why.
    #[arg(short = 'F', long)]
    pub full: bool,
    /// With an existing OUTPUT, check only the last backup it holds against it.
    #[arg(short = 'Q', long, conflicts_with = "full")]
    pub quick: bool,
    /// Print repozo's progress messages on stderr.
    #[arg(short, long)]
    pub verbose: bool,
    /// Seconds to wait for another run's lock on the repository before failing.
    #[arg(long, value_name = "SECONDS", default_value_t = zfs_repozo::repo::DEFAULT_LOCK_WAIT.as_secs())]
    pub lock_wait: u64,
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
    /// Seconds to wait for another run's lock on the repository before failing.
    #[arg(long, value_name = "SECONDS", default_value_t = zfs_repozo::repo::DEFAULT_LOCK_WAIT.as_secs())]
    pub lock_wait: u64,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn path_str(p: &std::path::Path) -> anyhow::Result<String> {
    p.to_str().map(str::to_string).ok_or_else(|| {
        anyhow::anyhow!(
            "'{}': paths must be UTF-8 (they are written into the .dat file)",
            p.display()
        )
    })
}

/// Runs `hooks`-using work with a progress bar and repozo's messages when verbose.
pub(crate) fn with_hooks<T>(ctx: &Ctx, verbose: bool, f: impl FnOnce(&Hooks<'_>) -> T) -> T {
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
pub(crate) fn plain(e: zfs_repozo::Error) -> anyhow::Error {
    if e.is_interrupted() {
        anyhow::Error::new(e)
    } else {
        anyhow::Error::msg(e.to_string())
    }
}

pub(crate) fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
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
        lock_wait: std::time::Duration::from_secs(a.lock_wait),
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
            "left_out": r.left_out.map(|l| json!({
                "at": l.at,
                "next_transaction": l.next_transaction,
                "bytes": l.bytes,
            })),
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
    // Damage in the middle kept committed transactions out of the backup (the notice
    // above says where): the run did its part, and found a problem.
    Ok(if r.left_out.is_some() {
        exit::FOUND_PROBLEMS
    } else {
        exit::OK
    })
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
        lock_wait: std::time::Duration::from_secs(a.lock_wait),
        full: a.full,
        quick: a.quick,
    };
    let r = with_hooks(c, a.verbose, |h| {
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        restore(&opts, h, &mut lock)
    })
    .map_err(plain)?;
    if a.json && !to_stdout {
        print_json(&restore_json(&output, &r))?;
    } else if !to_stdout && !c.quiet {
        eprintln!("{}", restore_summary(&output, &r));
    }
    Ok(exit::OK)
}

/// One line saying what a restore to `output` did.
pub(crate) fn restore_summary(output: &std::path::Path, r: &RestoreReport) -> String {
    let out = output.display();
    match &r.method {
        Method::UpToDate => format!("{out} holds the state already ({} bytes)", r.size),
        Method::Appended { from, files } => format!(
            "appended {} bytes ({} backup file{}) to {out} from offset {from}: {} bytes now",
            r.bytes,
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            r.size
        ),
        Method::Full { reason: None } => format!("restored {out} in full: {} bytes", r.size),
        Method::Full { reason: Some(why) } => {
            format!("restored {out} in full: {} bytes ({why})", r.size)
        }
    }
}

/// A restore's report as JSON.
pub(crate) fn restore_json(output: &std::path::Path, r: &RestoreReport) -> serde_json::Value {
    let (method, reason, from, files) = match &r.method {
        Method::UpToDate => ("up-to-date", None, None, Vec::new()),
        Method::Appended { from, files } => ("appended", None, Some(*from), files.clone()),
        Method::Full { reason } => ("full", reason.clone(), None, Vec::new()),
    };
    json!({
        "output": output,
        "method": method,
        "reason": reason,
        "from": from,
        "appended": files,
        "bytes": r.bytes,
        "size": r.size,
        "md5": r.md5,
        "chain": r.chain,
        "index": r.index,
    })
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
        lock_wait: std::time::Duration::from_secs(a.lock_wait),
    };
    match with_hooks(c, a.verbose, |h| verify_report(&opts, h)) {
        Ok(report) => {
            let ok = report.warnings.is_empty();
            if a.json {
                let files: Vec<_> = report
                    .files
                    .iter()
                    .map(|f| json!({"file": f.path, "size": f.size, "md5": f.md5}))
                    .collect();
                print_json(&json!({"ok": ok, "files": files, "warnings": report.warnings}))?;
            }
            // Every listed file is right, but a restore would refuse the chain.
            Ok(if ok { exit::OK } else { exit::FOUND_PROBLEMS })
        }
        Err(
            e @ (zfs_repozo::Error::Missing(_)
            | zfs_repozo::Error::WrongSize { .. }
            | zfs_repozo::Error::Unreadable { .. }
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
