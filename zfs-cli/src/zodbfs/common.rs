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
    /// `-q`: no progress bars, no summary lines.
    pub quiet: bool,
}

impl Ctx {
    /// A progress bar for long work (hidden unless stderr is a terminal).
    pub fn bar(&self) -> zfs_cli::ui::Bar {
        zfs_cli::ui::Bar::new(self.quiet)
    }
}

/// Opens a FileStorage, naming the file in any error (once: an OS error names it already).
pub fn open(path: &Path) -> anyhow::Result<FileStorage> {
    FileStorage::open(path).map_err(|e| named(path, e))
}

/// A FileStorage error that names `path`, once.
pub fn named(path: &Path, e: zfs_format::Error) -> anyhow::Error {
    match e {
        e @ (zfs_format::Error::Io { .. } | zfs_format::Error::File(_)) => anyhow::Error::new(e),
        e => anyhow::Error::new(e).context(format!("'{}'", path.display())),
    }
}

/// The bytes of a file that `check` and `recover` read, mapped (never read into memory).
/// The rule for every subcommand: a file is a FileStorage when its magic
/// is `FS21` or `FS30`; one whose magic is damaged but which holds a plausible transaction
/// right after it (offset 4) is a damaged FileStorage, which `check` reports and `recover`
/// reads (exit 3 when damage is found); anything else (empty, text, random bytes) is "not a
/// FileStorage file", an error naming the path (exit 1), as in every other subcommand.
pub enum FileBytes {
    /// A FileStorage with a known magic.
    Mapped(FileStorage),
    /// A FileStorage whose magic is damaged.
    Damaged(zfs_files::Map),
}

impl FileBytes {
    /// Opens `path` by the rule above.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match FileStorage::open(path) {
            Ok(fs) => Ok(FileBytes::Mapped(fs)),
            Err(e @ zfs_format::Error::BadMagic { .. }) => {
                let map = zfs_files::Map::new(zfs_files::open_input(path)?, path)?;
                if zfs_format::resync::plausible_txn(&map, zfs_format::FIRST_TXN, None) {
                    Ok(FileBytes::Damaged(map))
                } else {
                    Err(named(path, e))
                }
            }
            Err(e) => Err(named(path, e)),
        }
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(fs) => fs.bytes(),
            FileBytes::Damaged(m) => m,
        }
    }

    /// The open file.
    pub fn file(&self) -> &std::fs::File {
        match self {
            FileBytes::Mapped(fs) => fs.file(),
            FileBytes::Damaged(m) => m.file(),
        }
    }

    /// Fails when the file shrank while it was read (its lost pages read as zeros).
    pub fn check_intact(&self) -> anyhow::Result<()> {
        match self {
            FileBytes::Mapped(fs) => fs.check_intact()?,
            FileBytes::Damaged(m) => m.check_intact()?,
        }
        Ok(())
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
    };
    let r = f(&hooks);
    bar.finish();
    r
}

/// A repozo error in our words: an OS error names the file and the error once (the
/// library's message for it is Python repozo's text, which `zodbfs-repozo` keeps); every
/// other error keeps its type and chain.
pub fn plain(e: zfs_repozo::Error) -> anyhow::Error {
    match e {
        zfs_repozo::Error::Io { path, source } => {
            anyhow::Error::new(source).context(format!("'{}'", path.display()))
        }
        e @ (zfs_repozo::Error::NoFiles
        | zfs_repozo::Error::NoFilesBefore(_)
        | zfs_repozo::Error::Unreadable { .. }) => anyhow::anyhow!(our_words(&e)),
        other => anyhow::Error::new(other),
    }
}

/// A repozo error that carries Python repozo's words (kept for `zodbfs-repozo`), in ours.
pub fn our_words(e: &zfs_repozo::Error) -> String {
    match e {
        zfs_repozo::Error::NoFiles => {
            "no backup in the repository (no full backup with its .dat)".into()
        }
        zfs_repozo::Error::NoFilesBefore(d) => {
            format!("no backup in the repository as of {d} (every backup is newer)")
        }
        zfs_repozo::Error::Unreadable { path, why } => {
            // Python's "[Errno 13] Permission denied" without its number.
            let why = why
                .strip_prefix("[Errno ")
                .and_then(|w| w.split_once("] "))
                .map_or(why.as_str(), |(_, w)| w);
            format!("'{path}' cannot be read: {why}")
        }
        other => other.to_string(),
    }
}

/// Prints one JSON document on stdout, pretty, with a final newline.
pub fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Prints a command's report as one JSON line on stdout: the file it was about and the
/// seconds it took, then the report's own fields.
pub fn print_report_line(file: &Path, seconds: f64, report: &impl serde::Serialize) {
    #[derive(serde::Serialize)]
    struct Line<'a, R> {
        file: String,
        seconds: f64,
        #[serde(flatten)]
        report: &'a R,
    }
    let line = Line {
        file: file.display().to_string(),
        seconds,
        report,
    };
    match serde_json::to_string(&line) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("zodbfs: error: the report cannot be written as JSON: {e}"),
    }
}

/// An error as `--json` prints it on stdout.
#[derive(serde::Serialize)]
pub struct ErrorJson<'a> {
    /// The message, as on stderr.
    pub error: &'a str,
    /// The exit code.
    pub exit: u8,
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

/// A command that ran and must end with this exit code and message (dangling references
/// that stop a pack: 3; an interruption: 130), printed as any error is.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// What to say.
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// An error that ends the command with `code`.
pub fn failure(code: u8, message: impl Into<String>) -> anyhow::Error {
    Failure {
        code,
        message: message.into(),
    }
    .into()
}

/// The exit code of an error and what to say about it (`None`: nothing, as for a closed
/// stdout in `zodbfs dump | head`).
pub fn classify(e: &anyhow::Error) -> (u8, Option<String>) {
    if let Some(u) = e.downcast_ref::<UsageError>() {
        return (exit::USAGE, Some(u.to_string()));
    }
    if let Some(f) = e.downcast_ref::<Failure>() {
        return (f.code, Some(f.message.clone()));
    }
    for cause in e.chain() {
        if stopped_by_run_context(cause) {
            return (
                exit::INTERRUPTED,
                Some("interrupted; nothing was written".into()),
            );
        }
        if let Some(zfs_site::Error::Usage(m)) = cause.downcast_ref::<zfs_site::Error>() {
            return (exit::USAGE, Some(m.clone()));
        }
        if cause
            .downcast_ref::<zfs_site::Error>()
            .is_some_and(zfs_site::Error::is_interrupted)
        {
            return (exit::INTERRUPTED, Some(INTERRUPTED.into()));
        }
        match cause.downcast_ref::<zfs_repozo::Error>() {
            Some(zfs_repozo::Error::Interrupted) => {
                return (exit::INTERRUPTED, Some(INTERRUPTED.into()));
            }
            // Interrupted after a restore deleted its old target: the message says so.
            Some(e) if e.is_interrupted() => return (exit::INTERRUPTED, Some(e.to_string())),
            _ => {}
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::BrokenPipe {
                return (exit::OK, None);
            }
        }
    }
    (exit::ERROR, Some(format!("{e:#}")))
}

/// What an interruption that changed nothing says.
const INTERRUPTED: &str = "interrupted; temporary files removed, nothing was changed";

/// Prints an error on stderr (and, with `--json`, as `{"error": MESSAGE, "exit": CODE}` on
/// stdout) and returns its exit code.
pub fn report(e: &anyhow::Error, json: bool) -> ExitCode {
    let (code, message) = classify(e);
    if let Some(m) = message {
        print_error(code, &m, json);
    }
    ExitCode::from(code)
}

/// Prints an error message the way every subcommand does.
pub fn print_error(code: u8, message: &str, json: bool) {
    match code {
        exit::USAGE => eprintln!("zodbfs: error: {message}\n\nFor more information, try '--help'."),
        exit::INTERRUPTED => eprintln!("zodbfs: {message}"),
        _ => eprintln!("zodbfs: error: {message}"),
    }
    if json {
        // Best effort: stdout may be closed.
        let _ = print_json(&ErrorJson {
            error: message,
            exit: code,
        });
    }
}

/// Whether `cause` is a library's "interrupted" from the run context ([`zfs_cli::ui::Bar`]):
/// a check, refs, stats, recover or scan stopped by Ctrl-C.
fn stopped_by_run_context(cause: &(dyn std::error::Error + 'static)) -> bool {
    cause.is::<zfs_format::Interrupted>()
        || matches!(
            cause.downcast_ref::<zfs_format::Error>(),
            Some(zfs_format::Error::Interrupted)
        )
        || matches!(
            cause.downcast_ref::<zfs_check::recover::RecoverError>(),
            Some(zfs_check::recover::RecoverError::Interrupted)
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_is_printed_once_each() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = anyhow::Error::new(zfs_format::Error::io("/x", io));
        assert_eq!(
            classify(&e),
            (exit::ERROR, Some("'/x': entity not found".into()))
        );
    }

    #[test]
    fn usage_failures_and_interruptions_have_their_codes() {
        assert_eq!(classify(&usage("bad")).0, exit::USAGE);
        assert_eq!(classify(&failure(3, "dangling")).0, 3);
        let e = anyhow::Error::new(zfs_repozo::Error::Interrupted).context("restoring");
        assert_eq!(classify(&e).0, exit::INTERRUPTED);
        let e = anyhow::Error::new(zfs_site::Error::Usage("x".into()));
        assert_eq!(classify(&e).0, exit::USAGE);
        // The libraries' interruptions by the run context: check, refs, stats, recover.
        for e in [
            anyhow::Error::new(zfs_format::Interrupted).context("checking"),
            anyhow::Error::new(zfs_format::Error::Interrupted).context("stats"),
            anyhow::Error::new(zfs_check::recover::RecoverError::Interrupted),
        ] {
            assert_eq!(classify(&e).0, exit::INTERRUPTED, "{e:#}");
        }
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(classify(&anyhow::Error::new(pipe)), (exit::OK, None));
    }
}
