//! `zodbfs`: inspect, index, check, pack and back up ZODB FileStorage files.

mod backup;
mod check;
mod common;
mod convert;
mod docs;
mod dump;
mod export;
mod info;
mod pack;
mod records;
mod reindex;
mod site;
mod standby;
mod tail;

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use zfs_cli::exit;

/// Tools for ZODB FileStorage files (Data.fs), FS21 (Python 2) and FS30 (Python 3) alike.
///
/// Exit codes: 0 success; 1 error (unreadable file, bad input, I/O failure); 2 usage error;
/// 3 the command ran and found problems (damage, dangling references, lost data);
/// 130 interrupted.
#[derive(Parser, Debug)]
#[command(name = "zodbfs", version = zfs_cli::version::SHORT)]
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
    /// Copy a Data.fs into RelStorage on PostgreSQL, with the rows zodbconvert writes.
    Convert(convert::Args),
    /// Write a RelStorage database on PostgreSQL into a new Data.fs, as zodbconvert does.
    Export(export::Args),
    /// List every restorable point of a repozo repository (and its blob backups).
    List(site::ListArgs),
    /// Remove old backups: keep the newest N full backups with their blob trees.
    Prune(site::PruneArgs),
    /// Bring a standby's Data.fs to the newest backed-up state, appending only what it
    /// lacks (for a cron job; refuses while a running ZODB has the standby open).
    Standby(standby::StandbyArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(docs::CompletionsArgs),
    /// Write the man pages and completion scripts under a prefix (for packagers).
    #[command(hide = true)]
    GenerateDocs(docs::GenerateDocsArgs),
}

/// The clap command of `zodbfs`, with `--version` naming the MD5 code this CPU gets.
fn command() -> clap::Command {
    Cli::command().long_version(zfs_cli::version::long())
}

fn main() -> ExitCode {
    let cli = match command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
    {
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
        Command::Convert(a) => convert::run(a, &ctx),
        Command::Export(a) => export::run(a, &ctx),
        Command::List(a) => site::run_list(a, &ctx),
        Command::Prune(a) => site::run_prune(a, &ctx),
        Command::Standby(a) => standby::run(a, &ctx),
        Command::Completions(a) => docs::run_completions(a),
        Command::GenerateDocs(a) => docs::run_generate_docs(a),
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
    #[test]
    fn clap_definition_is_valid() {
        super::command().debug_assert();
    }
}
