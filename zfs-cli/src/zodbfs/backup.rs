//! `zodbfs backup`: a Data.fs into a repozo repository, full or incremental.

use std::path::PathBuf;

use zfs_cli::exit;
use zfs_repozo::backup::{backup, Action, BackupOptions};

use crate::common::{path_str, plain, print_json, with_hooks, Ctx};

/// Arguments of `zodbfs backup`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit codes: 0 = backed up (or nothing to do); 3 = backed up, but the \
Data.fs is damaged in the middle and the complete transactions after the damage are not \
in the backup (the message says where; run `zodbfs check`), or, with --blobs, the blob \
check found missing or wrong blob files; 1 = error, nothing put in place (a missing or \
unreadable file, not a FileStorage file, a repository that does not exist, an I/O \
error); 2 = bad arguments; 130 = interrupted, nothing put in place."
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

/// Runs `backup`.
pub fn run(a: BackupArgs, c: &Ctx) -> anyhow::Result<u8> {
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
    let t0 = std::time::Instant::now();
    let r = with_hooks(c, a.verbose, |h| backup(&opts, h)).map_err(plain)?;
    let action = match r.action {
        Action::NothingToDo => "nothing",
        Action::Full => "full",
        Action::Incremental => "incremental",
    };
    if a.json {
        print_json(&r)?;
    } else if !c.quiet {
        eprintln!(
            "{}",
            backup_summary(
                &a.file,
                action,
                r.data_file.as_deref(),
                r.dat_line.as_ref().map(|l| (l.start, l.end)),
                t0.elapsed()
            )
        );
    }
    // Damage in the middle kept committed transactions out of the backup (the notice
    // above says where): the run did its part, and found a problem.
    Ok(if r.left_out.is_some() {
        exit::FOUND_PROBLEMS
    } else {
        exit::OK
    })
}

/// One line saying what a backup of `file` did: which kind, how many bytes of the Data.fs
/// (and which), into which file, how long it took.
pub(crate) fn backup_summary(
    file: &std::path::Path,
    action: &str,
    data_file: Option<&str>,
    range: Option<(u64, u64)>,
    took: std::time::Duration,
) -> String {
    let secs = took.as_secs_f64();
    match (data_file, range) {
        (Some(to), Some((0, end))) => format!(
            "{action} backup of '{}': {end} bytes (the whole file) to '{to}'; {secs:.1} s",
            file.display()
        ),
        (Some(to), Some((start, end))) => format!(
            "{action} backup of '{}': {} bytes (from offset {start} to {end}) to '{to}'; {secs:.1} s",
            file.display(),
            end.saturating_sub(start)
        ),
        _ => format!(
            "'{}' has not changed since the last backup: nothing to do; {secs:.1} s",
            file.display()
        ),
    }
}
