//! `zodbfs restore`: a Data.fs from a repozo repository, as of a date.

use std::path::PathBuf;

use zfs_cli::exit;
use zfs_repozo::restore::{restore, Method, RestoreOptions, RestoreReport};

use crate::common::{path_str, plain, print_json, usage, with_hooks, Ctx};

/// Arguments of `zodbfs restore`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit codes: 0 = restored; 3 = with --blob-backups or --drill, restored but the \
check found problems; 1 = error, OUTPUT unchanged unless the message says \
otherwise (no backup as of the date, a missing or damaged backup file, an I/O \
error); 2 = bad arguments (a date that does not parse, an OUTPUT that is a \
directory); 130 = interrupted."
)]
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

/// Checks a `-D` date: `yyyy-mm-dd[-hh[-mm[-ss]]]`, a real day and time (UTC). Python
/// repozo compares any text with the backups' names; `zodbfs` refuses what is no date, so
/// that a typo cannot restore the newest state instead.
pub(crate) fn check_date(d: &str) -> anyhow::Result<()> {
    let bad = |why: &str| {
        usage(format!(
            "-D {d:?}: {why}; expected a UTC date yyyy-mm-dd[-hh[-mm[-ss]]], such as 2026-12-04-22-30"
        ))
    };
    let parts: Vec<&str> = d.split('-').collect();
    if !(3..=6).contains(&parts.len()) {
        return Err(bad("not a date"));
    }
    let mut v = [0u32; 6];
    for (i, p) in parts.iter().enumerate() {
        let width = if i == 0 { 4 } else { 2 };
        if p.len() != width || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("not a date"));
        }
        v[i] = p.parse().map_err(|_| bad("not a date"))?;
    }
    let [y, mo, day, h, mi, sec] = v;
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days_in_month = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad(&format!("there is no month {mo}"))),
    };
    if !(1..=days_in_month).contains(&day) {
        return Err(bad(&format!("month {mo} of {y} has no day {day}")));
    }
    if h > 23 || mi > 59 || sec > 59 {
        return Err(bad("no such time of day"));
    }
    Ok(())
}

/// Runs `restore`.
pub fn run(a: RestoreArgs, c: &Ctx) -> anyhow::Result<u8> {
    if let Some(d) = &a.date {
        check_date(d)?;
    }
    if a.drill || a.blob_backups.is_some() {
        return crate::site::run_restore(a, c);
    }
    let output = a.output.clone().expect("clap requires -o unless --drill");
    let to_stdout = output.as_os_str() == "-";
    if !to_stdout && output.is_dir() {
        return Err(usage(format!(
            "-o '{}' is a directory: give the path of the Data.fs file to write in it, \
             such as '{}'",
            output.display(),
            output.join("Data.fs").display()
        )));
    }
    let t0 = std::time::Instant::now();
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
        eprintln!("{}", restore_summary(&output, &r, t0.elapsed()));
    }
    Ok(exit::OK)
}

/// One line saying what a restore to `output` did, how much and how long it took.
pub(crate) fn restore_summary(
    output: &std::path::Path,
    r: &RestoreReport,
    took: std::time::Duration,
) -> String {
    let out = output.display();
    let secs = took.as_secs_f64();
    let files = |n: usize| format!("{n} backup file{}", if n == 1 { "" } else { "s" });
    match &r.method {
        Method::UpToDate => format!(
            "'{out}' holds that state already ({} bytes); checked in {secs:.1} s",
            r.size
        ),
        Method::Appended { from, files: f } => format!(
            "appended {} bytes ({}) to '{out}' from offset {from}: {} bytes now; {secs:.1} s",
            r.bytes,
            files(f.len()),
            r.size
        ),
        Method::Full { reason } => format!(
            "restored '{out}' in full from {}: {} bytes{}; {secs:.1} s",
            files(r.chain.len()),
            r.size,
            reason
                .as_ref()
                .map(|w| format!(" ({w})"))
                .unwrap_or_default()
        ),
    }
}

/// A restore's report as JSON: the library's report and the output's path.
pub(crate) fn restore_json<'a>(
    output: &'a std::path::Path,
    r: &'a RestoreReport,
) -> RestoreJson<'a> {
    RestoreJson { output, report: r }
}

/// What `restore --json` and `standby --json` print.
#[derive(serde::Serialize)]
pub(crate) struct RestoreJson<'a> {
    output: &'a std::path::Path,
    #[serde(flatten)]
    report: &'a RestoreReport,
}
