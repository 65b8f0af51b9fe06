//! `zodbfs convert`: a Data.fs into RelStorage on PostgreSQL, with zodbconvert's rows.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use zfs_cli::exit;
use zfs_convert::{ConvertError, ConvertOptions, ConvertReport, Mode};

use crate::common::{failure, Ctx};

/// Arguments of `zodbfs convert`.
///
/// Copies FILE (and its blob directory) into a PostgreSQL database that already holds
/// RelStorage's schema, with the very rows RelStorage's zodbconvert writes: every
/// transaction and revision (history-preserving) or the current state of each object
/// (history-free), undo records resolved, undone creations and deletions as RelStorage
/// records them, current_object, blobs as large objects, and zoid_seq past the largest oid.
/// Rows go in with binary COPY on parallel connections; keys and indexes are re-created at
/// the end with their RelStorage names.
///
/// Let RelStorage create the schema first (open the database once with RelStorage,
/// create-schema true, keep-history as wanted); the conversion refuses a database without
/// it or with a schema of another RelStorage version (3.5 to 4.3 are known).
///
/// Interrupted or killed, the conversion resumes where it stopped when run again with the
/// same FILE and DATABASE: a manifest table in the database records what each stream
/// committed, and is dropped when the conversion finishes. A destination holding anything
/// else is refused unless --clear.
///
/// With --follow, after the bulk copy the transactions appended to FILE since are copied
/// as they come, until interrupted (Ctrl-C leaves the database resumable); then, with the
/// site stopped, run the same command without --follow: it copies the last transactions
/// and finishes.
///
/// Exit codes: 0 converted (or, with --follow, stopped while following); 1 error (what
/// was committed stays and a rerun resumes); 2 usage; 130 interrupted (a rerun resumes).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The Data.fs file.
    pub file: PathBuf,
    /// The database, as a libpq URL (postgresql://user@host/db, or
    /// postgresql:///db?host=/run/postgresql) or key=value string.
    pub database: String,
    /// Require a history-preserving destination (the default: whatever the schema is).
    #[arg(long, group = "mode")]
    pub history_preserving: bool,
    /// Require a history-free destination.
    #[arg(long, group = "mode")]
    pub history_free: bool,
    /// The blob directory of FILE.
    #[arg(long, value_name = "DIR")]
    pub blobs: Option<PathBuf>,
    /// Parallel COPY streams for objects.
    #[arg(long, short, value_name = "N", default_value_t = 2)]
    pub jobs: usize,
    /// Empty the destination first (as zodbconvert --clear), also an unfinished conversion.
    #[arg(long)]
    pub clear: bool,
    /// Also fill RelStorage's pack tables (object_ref, object_refs_added) with the
    /// references of every state, as zodbpack's pre-pack would: the first zodbpack then has
    /// no reference analysis to do (zodbconvert leaves these tables empty).
    #[arg(long)]
    pub pack_refs: bool,
    /// After the bulk copy, keep copying new transactions until interrupted.
    #[arg(long)]
    pub follow: bool,
    /// How often --follow looks for new transactions, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub poll: f64,
    /// Each stream commits after about this many MB of the source (what an interruption
    /// loses).
    #[arg(long, value_name = "MB", default_value_t = 64.0)]
    pub checkpoint_mb: f64,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

fn print(a: &Args, r: &ConvertReport, secs: f64) {
    let mode = r.mode.map_or("", Mode::name);
    if a.json {
        #[derive(serde::Serialize)]
        struct Json<'a> {
            file: String,
            seconds: f64,
            #[serde(flatten)]
            report: &'a ConvertReport,
        }
        let v = Json {
            file: a.file.display().to_string(),
            seconds: secs,
            report: r,
        };
        match serde_json::to_string(&v) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("zodbfs: error: the report cannot be written as JSON: {e}"),
        }
        return;
    }
    println!(
        "{}: {} conversion {} ({}): {} bytes of rows copied, {} blobs{}; {:.2} s",
        a.file.display(),
        mode,
        if r.finished {
            "finished"
        } else {
            "stopped while following"
        },
        if r.resumed { "resumed" } else { "new" },
        r.copied_bytes,
        r.blobs,
        if r.followed > 0 {
            format!(", {} transactions copied after the bulk copy", r.followed)
        } else {
            String::new()
        },
        secs
    );
    if r.missing_blobs > 0 {
        eprintln!(
            "zodbfs: warning: {} blob files were missing; their objects were stored without \
             a blob, as zodbconvert does",
            r.missing_blobs
        );
    }
}

/// Runs `convert`.
pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<u8> {
    let mode = if a.history_preserving {
        Some(Mode::HistoryPreserving)
    } else if a.history_free {
        Some(Mode::HistoryFree)
    } else {
        None
    };
    if !(a.poll > 0.0 && a.poll < 86_400.0) {
        return Err(crate::common::usage(format!(
            "--poll {}: expected a number of seconds above 0 and below a day",
            a.poll
        )));
    }
    if !(a.checkpoint_mb > 0.0 && a.checkpoint_mb.is_finite()) {
        return Err(crate::common::usage(format!(
            "--checkpoint-mb {}: expected a number of megabytes above 0",
            a.checkpoint_mb
        )));
    }
    if a.jobs == 0 {
        return Err(crate::common::usage("--jobs 0: expected 1 or more streams"));
    }
    let opts = ConvertOptions {
        mode,
        blobs: a.blobs.clone(),
        jobs: a.jobs,
        clear: a.clear,
        follow: a.follow,
        pack_refs: a.pack_refs,
        poll: Duration::from_secs_f64(a.poll),
        checkpoint_bytes: (a.checkpoint_mb * 1e6).max(1.0) as u64,
        interrupt: Some(zfs_cli::signals::on_signals()),
    };
    let bar = zfs_cli::ui::Bar::new(ctx.quiet || a.json);
    let t0 = Instant::now();
    let result = zfs_convert::convert(&a.file, &a.database, &opts, &bar);
    bar.finish();
    match result {
        Ok(r) => {
            print(&a, &r, t0.elapsed().as_secs_f64());
            Ok(exit::OK)
        }
        Err(ConvertError::Interrupted) if a.follow => {
            eprintln!(
                "zodbfs: stopped; what was copied is committed. Run the same command without \
                 --follow (with the site stopped) to copy the rest and finish"
            );
            Ok(exit::OK)
        }
        Err(ConvertError::Interrupted) => Err(failure(
            exit::INTERRUPTED,
            "interrupted; what was copied is committed, and the same command resumes the conversion",
        )),
        Err(e) => Err(e)
            .with_context(|| format!("converting '{}' into '{}'", a.file.display(), a.database)),
    }
}
