//! What every subcommand shares: the context, opening files with their path in errors,
//! the repozo hooks, JSON output and printing errors.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use zfs_cli::exit;
use zfs_format::FileStorage;
use zfs_repozo::Hooks;

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

/// The bytes of a file that `check` and `recover` read: mapped when it has a known magic,
/// read otherwise. The rule for every subcommand: a file is a FileStorage when its magic
/// is `FS21` or `FS30`; one whose magic is damaged but which holds a plausible transaction
/// right after it (offset 4) is a damaged FileStorage, which `check` reports and `recover`
/// reads (exit 3 when damage is found); anything else (empty, text, random bytes) is "not a
/// FileStorage file", an error naming the path (exit 1), as in every other subcommand.
pub enum FileBytes {
    /// A FileStorage with a known magic.
    Mapped(FileStorage),
    /// A FileStorage whose magic is damaged.
    Read(Vec<u8>),
}

impl FileBytes {
    /// Opens `path` by the rule above.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let named = || format!("'{}'", path.display());
        match FileStorage::open(path) {
            Ok(fs) => Ok(FileBytes::Mapped(fs)),
            Err(e @ zfs_format::Error::BadMagic { .. }) => {
                let v = std::fs::read(path).with_context(named)?;
                if zfs_format::resync::plausible_txn(&v, zfs_format::FIRST_TXN, None) {
                    Ok(FileBytes::Read(v))
                } else {
                    Err(anyhow::Error::new(e).context(named()))
                }
            }
            Err(e) => Err(anyhow::Error::new(e).context(named())),
        }
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(fs) => fs.bytes(),
            FileBytes::Read(v) => v,
        }
    }
}

/// The index of a file as ZODB would use it: the saved `.index` when it is sane, otherwise
/// a scan.
pub fn load_index(
    fs: &FileStorage,
    path: &Path,
    bar: &zfs_cli::ui::Bar,
) -> anyhow::Result<zfs_format::Index> {
    let index = zfs_files::with_suffix(path, ".index");
    let (scan, _) = zfs_format::index_file::open_index(fs, &index, bar).with_context(|| {
        format!(
            "'{}' (run 'zodbfs check' to locate the damage)",
            path.display()
        )
    })?;
    Ok(scan.index)
}

/// An oid's bytes as hex (a reference may be of any length).
pub fn hex_oid(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A path as the text written into a repozo repository's `.dat` file.
pub fn path_str(p: &Path) -> anyhow::Result<String> {
    p.to_str().map(str::to_string).ok_or_else(|| {
        anyhow::anyhow!(
            "'{}': paths must be UTF-8 (they are written into the .dat file)",
            p.display()
        )
    })
}

/// Runs repozo work with a progress bar, repozo's messages when verbose, and the signal
/// flag.
pub fn with_hooks<T>(ctx: &Ctx, verbose: bool, f: impl FnOnce(&Hooks<'_>) -> T) -> T {
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
pub fn plain(e: zfs_repozo::Error) -> anyhow::Error {
    if e.is_interrupted() {
        anyhow::Error::new(e)
    } else {
        anyhow::Error::msg(e.to_string())
    }
}

/// Prints one JSON document on stdout, pretty, with a final newline.
pub fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
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
