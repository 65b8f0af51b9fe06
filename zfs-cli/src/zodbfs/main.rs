//! `zodbfs`: inspect, index, check, pack and back up ZODB FileStorage files.

mod backup;
mod check;
mod common;
mod convert;
mod docs;
mod dump;
mod export;
mod info;
mod oids;
mod pack;
mod records;
mod recover;
mod refs;
mod reindex;
mod restore;
mod site;
mod standby;
mod stats;
mod tail;
mod verify;

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use zfs_cli::exit;

/// Tools for ZODB FileStorage files (Data.fs), FS21 (Python 2) and FS30 (Python 3) alike.
#[derive(Parser, Debug)]
#[command(name = "zodbfs", version = zfs_cli::version::SHORT, after_help = EXIT_CODES)]
struct Cli {
    /// No progress bars (drawn on stderr only when it is a terminal), and no summary line
    /// from backup, restore, verify, reindex and pack.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

/// The exit codes, shown by `zodbfs -h` and `zodbfs --help` alike.
const EXIT_CODES: &str = "Exit codes: 0 success; 1 error (a missing or unreadable file, not \
a FileStorage file, an I/O failure); 2 usage error (bad arguments or option values); 3 the \
command ran and found problems (damage, dangling references, lost data); 130 interrupted. \
Each command's --help says which of them it returns. With --json, an error is also printed \
on stdout as one JSON object: {\"error\": MESSAGE, \"exit\": CODE}.";

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
    Refs(refs::RefsArgs),
    /// Copy what can be read from a damaged file into a new one (fsrecover; structure
    /// only: records wrong in content are copied as they are).
    Recover(recover::RecoverArgs),
    /// Per-class counts and sizes of current and old revisions.
    Stats(stats::StatsArgs),
    /// The history of given objects and who refers to them (fsoids).
    Oids(oids::OidsArgs),
    /// Pack a database at rest, with garbage collection, exactly as ZODB packs it.
    Pack(pack::Args),
    /// Back up a Data.fs into a repozo repository (full or incremental).
    Backup(backup::BackupArgs),
    /// Restore a Data.fs from a repozo repository.
    Restore(restore::RestoreArgs),
    /// Verify the files of a repozo repository against their recorded checksums.
    Verify(verify::VerifyArgs),
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
            if !e.use_stderr() {
                return ExitCode::from(exit::OK);
            }
            // With --json, a usage error is a JSON object on stdout too.
            if std::env::args_os().any(|a| a == "--json") {
                let text = e.render().to_string();
                let first = text.lines().next().unwrap_or_default();
                let message = first.strip_prefix("error: ").unwrap_or(first);
                let _ = common::print_json(&common::ErrorJson {
                    error: message,
                    exit: exit::USAGE,
                });
            }
            return ExitCode::from(exit::USAGE);
        }
    };
    let json = cli.command.json();
    let ctx = common::Ctx { quiet: cli.quiet };
    let result = match cli.command {
        Command::Info(a) => info::run(a, &ctx),
        Command::Reindex(a) => reindex::run(a, &ctx),
        Command::Dump(a) => dump::run(a, &ctx),
        Command::Tail(a) => tail::run(a, &ctx),
        Command::Records(a) => records::run(a, &ctx),
        Command::Check(a) => check::run(a, &ctx),
        Command::Refs(a) => refs::run(a, &ctx),
        Command::Recover(a) => recover::run(a, &ctx),
        Command::Stats(a) => stats::run(a, &ctx),
        Command::Oids(a) => oids::run(a, &ctx),
        Command::Pack(a) => pack::run(a, &ctx),
        Command::Backup(a) => backup::run(a, &ctx),
        Command::Restore(a) => restore::run(a, &ctx),
        Command::Verify(a) => verify::run(a, &ctx),
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
        let message = format!(
            "'{}' shrank while it was read; the results above are not reliable (no file was \
             written from it). Run the command again once the file is at rest",
            p.display()
        );
        common::print_error(exit::ERROR, &message, json);
        return ExitCode::from(exit::ERROR);
    }
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => common::report(&e, json),
    }
}

impl Command {
    /// True when the command was given `--json`: its errors are JSON objects too.
    fn json(&self) -> bool {
        match self {
            Command::Info(a) => a.json,
            Command::Check(a) => a.json,
            Command::Refs(a) => a.json,
            Command::Recover(a) => a.json,
            Command::Stats(a) => a.json,
            Command::Oids(a) => a.json,
            Command::Pack(a) => a.json,
            Command::Backup(a) => a.json,
            // With `-o -` stdout carries the data: no JSON there.
            Command::Restore(a) => a.json && a.output.as_deref() != Some(std::path::Path::new("-")),
            Command::Verify(a) => a.json,
            Command::Convert(a) => a.json,
            Command::Export(a) => a.json,
            Command::List(a) => a.json,
            Command::Prune(a) => a.json,
            Command::Standby(a) => a.json,
            Command::Reindex(_)
            | Command::Dump(_)
            | Command::Tail(_)
            | Command::Records(_)
            | Command::Completions(_)
            | Command::GenerateDocs(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definition_is_valid() {
        super::command().debug_assert();
    }
}
