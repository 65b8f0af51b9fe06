//! `zodbfs-repozo`: a drop-in for ZODB's repozo script. Same options (Python getopt rules),
//! same messages on stderr, same exit statuses, same repository files; faster and safer.
//! Installed under this name so that it never replaces ZODB's own `repozo`.

mod getopt;

use std::io::Write as _;
use std::process::ExitCode;

use zfs_repozo::backup::{backup, BackupOptions};
use zfs_repozo::restore::{restore, RestoreOptions};
use zfs_repozo::verify::{verify, VerifyOptions};
use zfs_repozo::Hooks;

const SHORT: &str = "BRVvhr:f:FQzkD:o:w";
const LONG: &[&str] = &[
    "backup",
    "recover",
    "verify",
    "verbose",
    "help",
    "repository=",
    "file=",
    "full",
    "quick",
    "gzip",
    "kill-old-on-full",
    "date=",
    "output=",
    "with-verify",
    "version",
];

const USAGE: &str = "\
repozo: back up a ZODB FileStorage (Data.fs) into a repository of full and incremental
backups, restore it as of any backup, and verify the repository.

Usage: %(program)s [options]

Mode (exactly one):
  -B, --backup      Back up the file given with -f into the repository. A full backup is
                    made when the repository has none, when -F is given, or when the file
                    no longer extends what is backed up (after a pack); otherwise only the
                    new transactions are written, as an incremental backup.
  -R, --recover     Restore the file from the repository, to stdout or to the -o file.
  -V, --verify      Check the files of the newest backup chain against the sizes and MD5
                    checksums recorded in its .dat file.

Options for every mode:
  -r DIR, --repository=DIR
                    The backup repository (a directory that must exist). Required.
  -v, --verbose     Tell what is being done, on stderr.
  -h, --help        Show this text and exit.
  --version         Show the version, the commit it was built from and the MD5 code in
                    use, and exit.

Backup options:
  -f FILE, --file=FILE
                    The Data.fs to back up. Required.
  -F, --full        Make a full backup even if an incremental one would do.
  -Q, --quick       Decide what to back up from the last line of the chain's .dat file
                    instead of checksumming the whole repository and source.
  -z, --gzip        Compress the new backup file with gzip (.fsz / .deltafsz), on all
                    cores (level 6 unless ZFS_REPOZO_GZIP_LEVEL says otherwise).
  -k, --kill-old-on-full
                    After a full backup, delete every older backup file with its .dat
                    and .index files.

Restore options:
  -D DATE, --date=DATE
                    Restore the state as of DATE, written yyyy-mm-dd[-hh[-mm[-ss]]] in UTC
                    and compared with the backups' names: a shortened date means the
                    start of that period. Default: the newest state.
  -o FILE, --output=FILE
                    Write the restored file to FILE (and the matching index to
                    FILE.index) instead of stdout. An existing FILE is brought up to
                    date in place when it is an earlier state of the chain (see -F).
                    Otherwise the new file is written beside FILE under a private
                    temporary name and replaces FILE only once complete; it gets the
                    mode of the FILE it replaces, else of the full backup. Only when
                    the disk cannot hold both is the old FILE deleted first, after every
                    backup file has been read and checked, and the run says so.
                    An existing FILE's lock, FILE.lock (the one a running ZODB holds),
                    is taken while the restore works: a database in use is not restored
                    over. FILE must be a regular file or absent (not a directory,
                    device or FIFO).
  -w, --with-verify Check every backup file against its recorded size and checksum while
                    restoring.
  -F, --full        Rebuild an existing -o FILE in full. Without -F, an existing FILE
                    that is an earlier state of the chain is brought up to date in
                    place: the backups it holds are checked against it (MD5s from the
                    .dat), then only the missing ones are appended and FILE is fsynced.
                    A FILE that does not check out (another chain, written to since,
                    packed, longer than the state), has no .dat to check it against,
                    has other hard links, or cannot be written in place is rebuilt in
                    full (-v says why). A failed or interrupted append cuts FILE back
                    to its old size. The result is the same bytes as a full restore.
  -Q, --quick       With an existing -o FILE, check only the last backup it holds
                    against it, not every one (ignored with -F).
                    A chain that does not start with a full backup (it was deleted), or
                    whose full backup is no FileStorage, is refused before anything is
                    written (Python repozo writes such a chain out as a file that is no
                    database).

Verify options:
  -Q, --quick       Check sizes only, not checksums.

Locking: a backup makes the repository's lock file (.repozo.lock, mode 0600, so only its
owner can take it) and removes it when done; restore and verify share it while it exists
and they can open it, and go on without it otherwise. A run waits for another run's lock
for at most 600 seconds (ZFS_REPOZO_LOCK_WAIT=SECONDS changes that), then fails naming the
process that holds it. Files in the repository that belong to another user (not you, the
repository's owner or root) are not taken for backups.

Exit status: 0 done; 1 an error (the message says which file and why) or a failed
verification; 130 interrupted (Ctrl-C or SIGTERM): temporary files are removed and the
repository and any restore target are left as they were (unless the run said it deleted
the old restore target to make room: then the message says it is gone).
";

fn usage_text(program: &str) -> String {
    USAGE.replace("%(program)s", program)
}

/// Usage error: the usage text and the message on stderr, exit 1.
fn usage_error(program: &str, msg: &str) -> ExitCode {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{}", usage_text(program));
    let _ = writeln!(e, "{msg}");
    ExitCode::from(1)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Backup,
    Recover,
    Verify,
}

#[derive(Default)]
struct Options {
    mode: Option<Mode>,
    verbose: bool,
    quick: bool,
    file: Option<String>,
    repository: Option<String>,
    full: bool,
    date: Option<String>,
    output: Option<String>,
    gzip: bool,
    killold: bool,
    withverify: bool,
}

fn log(verbose: bool, msg: &str) {
    if verbose {
        eprintln!("{msg}");
    }
}

/// Parses the command line as repozo does; `Err` is the exit code of a usage error or help.
fn parse(program: &str, args: &[String]) -> Result<Options, ExitCode> {
    let (opts, rest) = getopt::getopt(args, SHORT, LONG).map_err(|m| usage_error(program, &m))?;
    let mut o = Options::default();
    for opt in opts {
        let v = opt.value;
        match opt.name.as_str() {
            "-h" | "--help" => {
                println!("{}", usage_text(program));
                let _ = std::io::stdout().flush();
                return Err(ExitCode::SUCCESS);
            }
            "--version" => {
                println!("zodbfs-repozo {}", zfs_cli::version::long());
                let _ = std::io::stdout().flush();
                return Err(ExitCode::SUCCESS);
            }
            "-v" | "--verbose" => o.verbose = true,
            "-R" | "--recover" | "-B" | "--backup" | "-V" | "--verify" => {
                if o.mode.is_some() {
                    return Err(usage_error(
                        program,
                        "-B, -R, and -V are mutually exclusive",
                    ));
                }
                o.mode = Some(match opt.name.as_str() {
                    "-R" | "--recover" => Mode::Recover,
                    "-B" | "--backup" => Mode::Backup,
                    _ => Mode::Verify,
                });
            }
            "-Q" | "--quick" => o.quick = true,
            "-f" | "--file" => o.file = Some(v),
            "-r" | "--repository" => o.repository = Some(v),
            "-F" | "--full" => o.full = true,
            "-D" | "--date" => o.date = Some(v),
            "-o" | "--output" => o.output = Some(v),
            "-z" | "--gzip" => o.gzip = true,
            "-k" | "--kill-old-on-full" => o.killold = true,
            "-w" | "--with-verify" => o.withverify = true,
            other => unreachable!("getopt only returns declared options, got {other}"),
        }
    }
    if !rest.is_empty() {
        return Err(usage_error(
            program,
            &format!("Invalid arguments: {}", rest.join(", ")),
        ));
    }
    let Some(mode) = o.mode else {
        return Err(usage_error(
            program,
            "Either --backup, --recover or --verify is required",
        ));
    };
    if o.repository.is_none() {
        return Err(usage_error(program, "--repository is required"));
    }
    let vb = o.verbose;
    match mode {
        Mode::Backup => {
            if o.date.take().is_some() {
                log(vb, "--date option is ignored in backup mode");
            }
            if o.output.take().is_some() {
                log(vb, "--output option is ignored in backup mode");
            }
            if std::mem::take(&mut o.withverify) {
                log(vb, "--with-verify option is ignored in backup mode");
            }
            if !matches!(o.file.as_deref(), Some(f) if !f.is_empty()) {
                return Err(usage_error(program, "--file is required in backup mode"));
            }
        }
        Mode::Recover => {
            if o.file.take().is_some() {
                log(vb, "--file option is ignored in recover mode");
            }
            if std::mem::take(&mut o.killold) {
                log(vb, "--kill-old-on-full option is ignored in recover mode");
            }
            if o.full && std::mem::take(&mut o.quick) {
                log(vb, "--quick option is ignored if --full option is used");
            }
        }
        Mode::Verify => {
            if o.date.take().is_some() {
                log(vb, "--date option is ignored in verify mode");
            }
            if o.output.take().is_some() {
                log(vb, "--output option is ignored in verify mode");
            }
            if std::mem::take(&mut o.full) {
                log(vb, "--full option is ignored in verify mode");
            }
            if std::mem::take(&mut o.gzip) {
                log(vb, "--gzip option is ignored in verify mode");
            }
            if o.file.take().is_some() {
                log(vb, "--file option is ignored in verify mode");
            }
            if std::mem::take(&mut o.killold) {
                log(vb, "--kill-old-on-full option is ignored in verify mode");
            }
            if std::mem::take(&mut o.withverify) {
                log(vb, "--with-verify option is ignored in verify mode");
            }
        }
    }
    Ok(o)
}

/// Settings read from the environment (ours; Python repozo has none).
struct Env {
    /// `ZFS_REPOZO_GZIP_LEVEL`: the gzip level of `-z` backups, 1 to 9 (default 6).
    gzip_level: u32,
    /// `ZFS_REPOZO_LOCK_WAIT`: seconds to wait for another run's lock.
    lock_wait: std::time::Duration,
}

impl Env {
    /// Reads the variables; a value that is set but not valid is refused, naming the
    /// variable and what it accepts.
    fn read() -> Result<Env, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let gzip_level = match var("ZFS_REPOZO_GZIP_LEVEL") {
            None => zfs_repozo::gz::DEFAULT_LEVEL,
            Some(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=9).contains(l))
                .ok_or_else(|| {
                    format!("ZFS_REPOZO_GZIP_LEVEL={v:?}: expected a gzip level from 1 to 9")
                })?,
        };
        let lock_wait = match var("ZFS_REPOZO_LOCK_WAIT") {
            None => zfs_repozo::repo::DEFAULT_LOCK_WAIT,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map(std::time::Duration::from_secs)
                .map_err(|_| {
                    format!("ZFS_REPOZO_LOCK_WAIT={v:?}: expected a number of seconds (0 or more)")
                })?,
        };
        Ok(Env {
            gzip_level,
            lock_wait,
        })
    }
}

/// The clock: the system's, or `REPOZO_TEST_NOW` (`YYYY-MM-DD-hh-mm-ss`, UTC) for tests, as
/// ZODB's tests inject `test_now`.
fn test_now() -> Option<zfs_repozo::Stamp> {
    std::env::var("REPOZO_TEST_NOW")
        .ok()
        .and_then(|s| zfs_repozo::Stamp::parse(s.trim()))
}

fn run(o: Options, env: &Env) -> zfs_repozo::Result<()> {
    let verbose = o.verbose;
    let log = move |m: &str| {
        if verbose {
            eprintln!("{m}");
        }
    };
    let notice = |m: &str| eprintln!("{m}");
    let hooks = Hooks {
        log: &log,
        notice: &notice,
        progress: &zfs_format::NoProgress,
        verbose,
        interrupt: Some(zfs_cli::signals::on_signals()),
    };
    let repository = o.repository.unwrap_or_default();
    match o.mode {
        Some(Mode::Backup) => {
            let opts = BackupOptions {
                repository,
                file: o.file.unwrap_or_default(),
                full: o.full,
                quick: o.quick,
                gzip: o.gzip,
                gzip_level: env.gzip_level,
                kill_old: o.killold,
                now: test_now(),
                lock_wait: env.lock_wait,
            };
            backup(&opts, &hooks).map(|_| ())
        }
        Some(Mode::Recover) => {
            let opts = RestoreOptions {
                repository,
                date: o.date,
                output: o.output.map(Into::into),
                with_verify: o.withverify,
                now: test_now(),
                lock_wait: env.lock_wait,
                full: o.full,
                quick: o.quick,
            };
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            restore(&opts, &hooks, &mut lock).map(|_| ())
        }
        Some(Mode::Verify) | None => {
            let opts = VerifyOptions {
                repository,
                quick: o.quick,
                now: test_now(),
                lock_wait: env.lock_wait,
            };
            verify(&opts, &hooks).map(|_| ())
        }
    }
}

fn main() -> ExitCode {
    let mut argv = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
    let program = argv.next().unwrap_or_else(|| "repozo".into());
    let args: Vec<String> = argv.collect();
    let opts = match parse(&program, &args) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let env = match Env::read() {
        Ok(env) => env,
        Err(msg) => {
            eprintln!("repozo: {msg}");
            return ExitCode::from(1);
        }
    };
    match run(opts, &env) {
        Ok(()) => ExitCode::SUCCESS,
        Err(zfs_repozo::Error::Interrupted) => {
            eprintln!("repozo: interrupted; temporary files removed, nothing was changed");
            ExitCode::from(zfs_cli::exit::INTERRUPTED)
        }
        Err(e) if e.is_interrupted() => {
            // Interrupted after the old restore target was deleted: the message says so.
            eprintln!("repozo: {e}");
            ExitCode::from(zfs_cli::exit::INTERRUPTED)
        }
        Err(e) => {
            eprintln!("{}", message(&e));
            ExitCode::from(1)
        }
    }
}

/// An error as repozo prints it: an OS error in Python's words (which name the error
/// already), any other with its causes after it.
fn message(e: &zfs_repozo::Error) -> String {
    let mut text = e.to_string();
    if !matches!(e, zfs_repozo::Error::Io { .. }) {
        let mut cause = std::error::Error::source(e);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
    }
    text
}
