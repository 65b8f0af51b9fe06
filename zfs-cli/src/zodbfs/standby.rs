//! `zodbfs standby`: one command for a warm standby's cron job. It brings the standby's
//! Data.fs to the newest state of a repozo repository, appending only the backups it lacks
//! (or rebuilding it when it does not check out), and says what it applied.

use std::path::PathBuf;

use zfs_cli::exit;
use zfs_repozo::restore::{restore, RestoreOptions};

use crate::common::{path_str, plain, print_json, with_hooks, Ctx};
use crate::restore::{restore_json, restore_summary};

/// Arguments of `zodbfs standby`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit codes: 0 = the standby is up to date; 1 = error (the standby is open in a \
running ZODB, a missing or damaged backup file, an I/O error); 2 = bad \
arguments; 130 = interrupted."
)]
pub struct StandbyArgs {
    /// The repozo repository the backups arrive in.
    pub repository: PathBuf,
    /// The standby's Data.fs (created if missing; its index goes to TARGET.index).
    pub target: PathBuf,
    /// Check only the last backup TARGET holds against it (by MD5), not every one.
    #[arg(short = 'Q', long, conflicts_with = "full")]
    pub quick: bool,
    /// Rebuild TARGET in full instead of appending what it lacks.
    #[arg(short = 'F', long)]
    pub full: bool,
    /// Check every backup file written against its size and MD5 in the .dat.
    #[arg(short = 'w', long)]
    pub with_verify: bool,
    /// Seconds to wait for a backup's lock on the repository before failing.
    #[arg(long, value_name = "SECONDS", default_value_t = zfs_repozo::repo::DEFAULT_LOCK_WAIT.as_secs())]
    pub lock_wait: u64,
    /// Print repozo's progress messages on stderr.
    #[arg(short, long)]
    pub verbose: bool,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `standby`.
pub fn run(a: StandbyArgs, c: &Ctx) -> anyhow::Result<u8> {
    // A standby is brought up to date while its database is stopped: a running ZODB would
    // not see the appended transactions and would write over them.
    let lock = zfs_files::with_suffix(&a.target, ".lock");
    if zfs_files::is_held(&lock)? {
        anyhow::bail!(
            "'{}' is open in a running ZODB ('{}' is locked): stop it before bringing the \
             standby up to date; nothing was changed",
            a.target.display(),
            lock.display()
        );
    }
    let opts = RestoreOptions {
        repository: path_str(&a.repository)?,
        date: None,
        output: Some(a.target.clone()),
        with_verify: a.with_verify,
        now: None,
        lock_wait: std::time::Duration::from_secs(a.lock_wait),
        full: a.full,
        quick: a.quick,
    };
    let t0 = std::time::Instant::now();
    let r = with_hooks(c, a.verbose, |h| restore(&opts, h, &mut std::io::sink())).map_err(plain)?;
    if a.json {
        print_json(&restore_json(&a.target, &r))?;
    } else if !c.quiet {
        eprintln!("{}", restore_summary(&a.target, &r, t0.elapsed()));
    }
    Ok(exit::OK)
}
