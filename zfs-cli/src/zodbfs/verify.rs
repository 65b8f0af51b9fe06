//! `zodbfs verify`: a repozo repository's files against their recorded sizes and checksums.

use std::path::PathBuf;

use zfs_cli::exit;
use zfs_repozo::verify::{verify_report, VerifyOptions};

use crate::common::{our_words, path_str, plain, print_json, with_hooks, Ctx};

/// Arguments of `zodbfs verify`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit codes: 0 = every backup file is as recorded; 3 = a file is missing, of the \
wrong size or checksum, or the chain would be refused by a restore; 1 = it could \
not run (no repository, an I/O error); 2 = bad arguments."
)]
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

/// Runs `verify`.
pub fn run(a: VerifyArgs, c: &Ctx) -> anyhow::Result<u8> {
    if a.blob_backups.is_some() {
        return crate::site::run_verify(a, c);
    }
    let opts = VerifyOptions {
        repository: path_str(&a.repository)?,
        quick: a.quick,
        now: None,
        lock_wait: std::time::Duration::from_secs(a.lock_wait),
    };
    let t0 = std::time::Instant::now();
    match with_hooks(c, a.verbose, |h| verify_report(&opts, h)) {
        Ok(report) => {
            let ok = report.warnings.is_empty();
            if a.json {
                #[derive(serde::Serialize)]
                struct Json<'a> {
                    ok: bool,
                    #[serde(flatten)]
                    report: &'a zfs_repozo::verify::VerifyReport,
                }
                print_json(&Json {
                    ok,
                    report: &report,
                })?;
            } else if !c.quiet {
                let n = report.files.len();
                let bytes: u64 = report.files.iter().map(|f| f.size).sum();
                eprintln!(
                    "'{}': {n} backup file{} verified ({bytes} bytes): {}{}; {:.1} s",
                    a.repository.display(),
                    if n == 1 { "" } else { "s" },
                    if a.quick {
                        "sizes as recorded"
                    } else {
                        "sizes and checksums as recorded"
                    },
                    if ok {
                        ""
                    } else {
                        ", but a restore would refuse the chain (see above)"
                    },
                    t0.elapsed().as_secs_f64()
                );
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
                #[derive(serde::Serialize)]
                struct Problem {
                    ok: bool,
                    problem: String,
                }
                print_json(&Problem {
                    ok: false,
                    problem: our_words(&e),
                })?;
            }
            eprintln!("zodbfs: {}", our_words(&e));
            Ok(exit::FOUND_PROBLEMS)
        }
        Err(e) => Err(plain(e)),
    }
}
