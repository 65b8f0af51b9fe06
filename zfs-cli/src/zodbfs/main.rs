//! `zodbfs`: inspect, index, check, pack and back up ZODB FileStorage files.

mod backup;
mod check;
mod common;
mod dump;
mod info;
mod pack;
mod records;
mod reindex;
mod tail;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use zfs_cli::exit;

/// Tools for ZODB FileStorage files (Data.fs), FS21 (Python 2) and FS30 (Python 3) alike.
///
/// Exit codes: 0 success; 1 error (unreadable file, bad input, I/O failure); 2 usage error;
/// 3 the command ran and found problems (damage, dangling references, lost data);
/// 130 interrupted.
#[derive(Parser, Debug)]
#[command(name = "zodbfs", version, about, long_about)]
struct Cli {
    /// Never draw progress bars (they are drawn on stderr only when it is a terminal).
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Summarise a file: magic, size, transactions, objects, tids, where the data ends.
    Info(info::Args),
    /// Build the index by scanning and write FILE.index exactly as ZODB writes it.
    Reindex(reindex::Args),
    /// Print every transaction and record as ZODB's fsdump does.
    Dump(dump::Args),
    /// Print the last transactions as ZODB's fstail does.
    Tail(tail::Args),
    /// Print each data record's class and persistent references (referencesf), one per line.
    Records(records::Args),
    /// Check a file's integrity: everything fstest checks and more; exit 3 on damage.
    Check(check::CheckArgs),
    /// Report dangling references (fsrefs); exit 3 when any.
    Refs(check::RefsArgs),
    /// Copy what can be read from a damaged file into a new one (fsrecover).
    Recover(check::RecoverArgs),
    /// Per-class counts and sizes of current and old revisions.
    Stats(check::StatsArgs),
    /// The history of given objects and who refers to them (fsoids).
    Oids(check::OidsArgs),
    /// Pack a database at rest, with garbage collection, exactly as ZODB packs it.
    Pack(pack::Args),
    /// Back up a Data.fs into a repozo repository (full or incremental).
    Backup(backup::BackupArgs),
    /// Restore a Data.fs from a repozo repository.
    Restore(backup::RestoreArgs),
    /// Verify the files of a repozo repository against their recorded checksums.
    Verify(backup::VerifyArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let ctx = common::Ctx { quiet: cli.quiet };
    let result = match cli.command {
        Command::Info(a) => info::run(a, &ctx),
        Command::Reindex(a) => reindex::run(a, &ctx),
        Command::Dump(a) => dump::run(a, &ctx),
        Command::Tail(a) => tail::run(a, &ctx),
        Command::Records(a) => records::run(a, &ctx),
        Command::Check(a) => check::run_check(a, &ctx),
        Command::Refs(a) => check::run_refs(a, &ctx),
        Command::Recover(a) => check::run_recover(a, &ctx),
        Command::Stats(a) => check::run_stats(a, &ctx),
        Command::Oids(a) => check::run_oids(a, &ctx),
        Command::Pack(a) => pack::run(a, &ctx),
        Command::Backup(a) => backup::run_backup(a, &ctx),
        Command::Restore(a) => backup::run_restore(a, &ctx),
        Command::Verify(a) => backup::run_verify(a, &ctx),
    };
    // A file that shrank under a read (a live ZODB truncating an aborted commit, or an
    // operator) read as zeros instead of crashing us: nothing derived from it is reliable.
    // Writers have already refused to rename anything; here the command's result goes too.
    if let Some(p) = zfs_files::shrunk_files().first() {
        eprintln!(
            "zodbfs: error: '{}' shrank while it was read; the results above are not reliable \
             (no file was written from it). Run the command again once the file is at rest",
            p.display()
        );
        return ExitCode::from(exit::ERROR);
    }
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => common::report(&e),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_valid() {
        super::Cli::command().debug_assert();
    }
}
