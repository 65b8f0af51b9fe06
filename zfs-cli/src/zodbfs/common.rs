//! What every subcommand shares: the context, opening files with their path in errors,
//! and printing errors.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use zfs_cli::exit;
use zfs_format::FileStorage;

/// Options given to every subcommand.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    /// No progress bars.
    pub quiet: bool,
}

impl Ctx {
    /// A progress bar for long work (hidden unless stderr is a terminal).
    pub fn bar(&self) -> zfs_cli::ui::Bar {
        zfs_cli::ui::Bar::new(self.quiet)
    }
}

/// Opens a FileStorage, naming the file in any error.
pub fn open(path: &Path) -> anyhow::Result<FileStorage> {
    FileStorage::open(path).with_context(|| format!("'{}'", path.display()))
}

/// A command line that parses but makes no sense (a bad date, a negative count): exit 2,
/// as clap's own usage errors.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error with this message.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// Prints an error chain on stderr and returns the matching exit code. A closed stdout
/// (`zodbfs dump | head`) is not an error.
pub fn report(e: &anyhow::Error) -> ExitCode {
    if let Some(u) = e.downcast_ref::<UsageError>() {
        eprintln!("zodbfs: error: {u}\n\nFor more information, try '--help'.");
        return ExitCode::from(exit::USAGE);
    }
    for cause in e.chain() {
        match cause.downcast_ref::<zfs_repozo::Error>() {
            Some(zfs_repozo::Error::Interrupted) => {
                eprintln!("zodbfs: interrupted; temporary files removed, nothing was changed");
                return ExitCode::from(exit::INTERRUPTED);
            }
            // Interrupted after a restore deleted its old target: the message says so.
            Some(e) if e.is_interrupted() => {
                eprintln!("zodbfs: {e}");
                return ExitCode::from(exit::INTERRUPTED);
            }
            _ => {}
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::BrokenPipe {
                return ExitCode::from(exit::OK);
            }
        }
    }
    eprintln!("zodbfs: error: {}", message(e));
    ExitCode::from(exit::ERROR)
}

/// The error chain joined by `: `, leaving out a part that another part already says (a
/// context naming the file, then an error that names it again with its cause).
pub fn message(e: &anyhow::Error) -> String {
    let parts: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    let said_elsewhere = |i: usize| {
        parts.iter().enumerate().any(|(j, p)| {
            j != i && p.contains(parts[i].as_str()) && (p.len() > parts[i].len() || j < i)
        })
    };
    let kept: Vec<&str> = (0..parts.len())
        .filter(|&i| !said_elsewhere(i))
        .map(|i| parts[i].as_str())
        .collect();
    kept.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parts_of_an_error_chain_are_said_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let inner = zfs_format::Error::io("/x", io);
        let e = anyhow::Error::new(inner).context("'/x'");
        assert_eq!(message(&e), "'/x': entity not found");
        let e = anyhow::anyhow!("bad record at offset 12").context("'/data/Data.fs'");
        assert_eq!(message(&e), "'/data/Data.fs': bad record at offset 12");
    }
}
