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

/// Prints an error chain on stderr and returns the matching exit code. A closed stdout
/// (`zodbfs dump | head`) is not an error.
pub fn report(e: &anyhow::Error) -> ExitCode {
    for cause in e.chain() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::BrokenPipe {
                return ExitCode::from(exit::OK);
            }
        }
    }
    eprintln!("zodbfs: error: {e:#}");
    ExitCode::from(exit::ERROR)
}
