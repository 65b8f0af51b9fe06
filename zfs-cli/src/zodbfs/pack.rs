//! `zodbfs pack`: offline pack with garbage collection, byte-identical to ZODB's packer.

use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use zfs_cli::exit;
use zfs_format::timestamp::TimeStamp;
use zfs_format::Tid;
use zfs_pack::{Outcome, PackError, PackOptions, Report, SavedReferences};

use crate::common::{failure, usage, Ctx};

/// Arguments of `zodbfs pack`.
///
/// Packs FILE at rest as ZODB's `FileStorage.pack` does: the result (Data.fs, .index,
/// .old, blob files removed) is byte for byte what ZODB gives. The pack time defaults to
/// now (all history goes); revisions older than it that are not current, and (with GC)
/// objects not reachable from the root, are removed. Takes FILE.lock, the lock a running
/// ZODB holds, and refuses while the database is open elsewhere: stop the site (or its ZEO
/// server) first.
///
/// Where ZODB fails or loses data we do better: dangling references are listed and refused
/// (ZODB: KeyError; --allow-dangling packs anyway), objects referenced by old revisions
/// that undo records after the pack time keep are kept too (ZODB drops them), a pack
/// without GC keeps the revisions such records need (ZODB: PackError), the blob file of an
/// object linked anew after the pack time stays (ZODB removes it), Python 2 (FS21)
/// files and zlib-compressed records are read. A torn or unfinished last commit is not
/// packed and never lost: it is saved to FILE.trN (where ZODB's open saves it). Damage in
/// the middle of the file (complete transactions after it) is refused: run `zodbfs check`
/// and `zodbfs recover` first.
///
/// Exit codes: 0 packed (or nothing to do); 1 error (nothing changed, unless the message
/// says the file was packed and a later step failed); 2 usage; 3 dangling references or
/// damage, nothing changed; 130 interrupted, nothing changed.
#[derive(clap::Args, Debug)]
#[command(after_long_help = AFTER_HELP)]
pub struct Args {
    /// The Data.fs file.
    pub file: PathBuf,
    /// Pack to N days before now (like zeopack -d). With none of --days, --time and
    /// --tid the pack time is now: all history goes.
    #[arg(long, value_name = "N", group = "when", allow_negative_numbers = true)]
    pub days: Option<f64>,
    /// Pack to this UTC time, not in the future: YYYY-MM-DD[THH:MM[:SS[.ffffff]]] (a
    /// space may replace T).
    #[arg(long, value_name = "DATETIME", group = "when")]
    pub time: Option<String>,
    /// Pack to this exact stop tid (16 hex digits); transactions with tid <= it are packed.
    #[arg(long, value_name = "HEX", group = "when")]
    pub tid: Option<String>,
    /// No garbage collection: keep the current revision of every object.
    #[arg(long)]
    pub no_gc: bool,
    /// The blob directory: blob files of removed revisions are removed (or moved to DIR.old).
    #[arg(long, value_name = "DIR")]
    pub blobs: Option<PathBuf>,
    /// Do not keep the original as FILE.old (and DIR.old).
    #[arg(long)]
    pub no_keep_old: bool,
    /// Pack even when reachable objects refer to missing objects (treated as absent).
    #[arg(long)]
    pub allow_dangling: bool,
    /// Report what would be kept and removed; write nothing. Takes no lock, but notes when
    /// the database is open (its .lock is held), since the real pack would refuse then.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not pack: read FILE now (the database may be running; no lock is taken) and save
    /// the references of every object to FILE.refs, so that a later pack with GC to now
    /// reads FILE once instead of twice (see below). Reads only what was committed since
    /// the FILE.refs it finds, when that still describes FILE.
    #[arg(
        long,
        conflicts_with_all = ["days", "time", "tid", "no_gc", "blobs", "no_keep_old", "allow_dangling", "dry_run"]
    )]
    pub prepare: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Where `zodbfs pack` differs from ZODB on purpose, for `--help`.
const AFTER_HELP: &str = "\
The result (Data.fs, .index, .old, blob files removed or moved to DIR.old) is byte for byte \
what ZODB's FileStorage.pack gives, wherever ZODB succeeds without losing data. Where it \
does not, we differ on purpose:
  - dangling references from reachable objects: all are listed and nothing is changed, \
exit 3 (ZODB: KeyError on the first); --allow-dangling packs anyway;
  - objects referenced by old revisions that undo records after the pack time keep are \
kept too (ZODB collects them and leaves dangling references);
  - without GC, revisions such undo records need are kept (ZODB: PackError, .pack left);
  - a blob object unreachable at the pack time but written again after it (an \
application kept it and linked it anew) loses only its blob files up to the pack time \
(ZODB removes its whole directory, the current revision's file with it);
  - Python 2 (FS21) oids with bytes >= 0x80 and zlib-compressed records are read \
(ZODB on Python 3 fails on both); unreadable references are refused, naming oid and offset;
  - --blobs must name an existing directory (ZODB creates a missing one): a mistyped \
path is refused (exit 2) before anything is read or written;
  - offline only: FILE.lock is taken and the pack refuses while a ZODB has it open;
  - a torn or unfinished last commit is not packed and never lost: it is saved to the \
first free FILE.trN (where ZODB's open saves it), whether FILE.old is kept or not;
  - complete transactions after damage in the middle of the file are never dropped: the \
pack refuses (exit 3) and points to `zodbfs check` and `zodbfs recover`;
  - when nothing can be removed, a missing or stale FILE.index is written (as ZODB writes \
it when it closes the storage);
  - the list of garbage blob files (DIR/.removed) is saved before the packed file takes \
FILE's place; a pack stopped before it removed them all (killed, a full disk) leaves the \
list, and the next pack finishes it, removing only the files of revisions FILE no longer \
holds (ZODB overwrites the list and leaves those files for good).

Saved references (--prepare): a pack with GC must learn what is reachable before it \
copies, so it reads FILE twice. `zodbfs pack --prepare FILE` does the first read ahead of \
time, while the site runs, and saves FILE.refs. A later pack with GC to now (no --days, \
--time or --tid before the last transaction) with a FILE.index that covers FILE (ZODB \
writes it when it closes the database) then reads only the transactions committed since, \
and FILE once for its copy, which checks every record it keeps against FILE.refs and \
FILE.index (position, transaction, references); anything that does not fit, and the pack \
is done the usual way (reading FILE twice), with the same result. So it is when packing \
from them would hold more memory than the process may use (its cgroup's limit, or the \
machine's): the usual pack holds less per object. FILE.refs is read only \
when it is a regular file (not a symlink) of FILE's owner that no one may write who cannot \
write FILE. A pack that changes FILE replaces it: a pack with GC to now saves the \
references of the packed file (so the next one reads FILE once without --prepare), any \
other removes it. --prepare with a FILE.refs that still describes FILE reads only the \
transactions committed since (a nightly --prepare reads what the day added).

The pack time is now unless --days, --time or --tid says otherwise; it cannot be in the \
future. Every file written (the packed Data.fs, its .index, .trN, FILE.refs) is new, keeps the \
database's mode, and replaces the old one only once complete.

Exit codes: 0 packed or nothing to do; 1 error (nothing changed, unless the message says \
the file was packed and a later step failed); 2 usage; 3 dangling references or damage, \
nothing changed; 130 interrupted (SIGINT/SIGTERM), nothing changed and no temporary file \
left.";

/// The stop tid from `--tid`, `--time` or `--days` (default: now). A value that does not
/// parse, a negative number of days and a time in the future are usage errors.
fn stop_tid(a: &Args) -> anyhow::Result<Tid> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs_f64();
    let now_tid = Tid(TimeStamp::from_unix_time(now)
        .map_err(|e| anyhow::anyhow!("the clock: {e}"))?
        .raw());
    if let Some(h) = &a.tid {
        let tid = Some(h.as_str())
            .filter(|h| h.trim_start_matches("0x").len() == 16)
            .and_then(Tid::from_hex)
            .ok_or_else(|| usage(format!("--tid {h:?}: expected 16 hex digits")))?;
        if tid > now_tid {
            return Err(usage(format!(
                "--tid {h}: {} UTC is in the future; the pack time cannot be after now",
                stamp(tid)
            )));
        }
        return Ok(tid);
    }
    let t = match (&a.time, a.days) {
        (Some(s), _) => {
            let t = zfs_format::timestamp::parse_utc(s).ok_or_else(|| {
                usage(format!(
                    "--time {s:?}: expected a UTC time YYYY-MM-DD[THH:MM[:SS[.ffffff]]]"
                ))
            })?;
            if t > now {
                return Err(usage(format!(
                    "--time {s}: that is in the future; the pack time cannot be after now \
                     (with no --days, --time or --tid it is now)"
                )));
            }
            t
        }
        (None, Some(d)) if !(d >= 0.0 && d.is_finite()) => {
            return Err(usage(format!(
                "--days {d}: expected a number of days of 0 or more"
            )))
        }
        (None, Some(d)) => now - d * 86_400.0,
        (None, None) => now,
    };
    let ts = TimeStamp::from_unix_time(t).map_err(|e| usage(format!("pack time {t}: {e}")))?;
    Ok(Tid(ts.raw()))
}

/// A stop tid as people read it: `2026-12-04 20:19:35` (UTC, whole seconds).
fn stamp(tid: Tid) -> String {
    let s = TimeStamp::from_bytes(tid.0).to_string();
    s.split('.').next().unwrap_or(&s).to_string()
}

/// The pack's report as JSON: the library's report and what the command line adds.
fn print_json(a: &Args, r: &Report, secs: f64) {
    #[derive(serde::Serialize)]
    struct Json<'a> {
        file: String,
        dry_run: bool,
        gc: bool,
        stop_time: String,
        bytes_removed: u64,
        objects_removed: u64,
        seconds: f64,
        #[serde(flatten)]
        report: &'a Report,
    }
    let v = Json {
        file: a.file.display().to_string(),
        dry_run: a.dry_run,
        gc: !a.no_gc,
        stop_time: stamp(r.stop),
        bytes_removed: r.size_before.saturating_sub(r.size_after),
        objects_removed: r.objects_at_stop.saturating_sub(r.objects_kept),
        seconds: secs,
        report: r,
    };
    match serde_json::to_string(&v) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("zodbfs: error: the report cannot be written as JSON: {e}"),
    }
}

fn print_summary(a: &Args, r: &Report, secs: f64) {
    let f = a.file.display();
    match r.outcome {
        Outcome::Empty => println!("{f}: the storage holds no object; nothing done"),
        Outcome::Redundant => println!(
            "{f}: already packed to a later time, or no changes since the last pack; nothing done"
        ),
        Outcome::NothingToDo => {
            println!(
                "{f}: nothing to remove before {} UTC (tid {}); file unchanged",
                stamp(r.stop),
                r.stop
            )
        }
        Outcome::Packed | Outcome::WouldPack => {
            let verb = if r.outcome == Outcome::Packed {
                "packed"
            } else {
                "would pack"
            };
            println!(
                "{f}: {verb} to {} UTC (tid {}): {} -> {} bytes ({} removed)",
                stamp(r.stop),
                r.stop,
                r.size_before,
                r.size_after,
                r.size_before.saturating_sub(r.size_after)
            );
            println!(
                "  removed: {} of the {} objects that existed at the pack time{}, {} of the {} data records and {} of the {} transactions before it",
                r.objects_at_stop.saturating_sub(r.objects_kept),
                r.objects_at_stop,
                if a.no_gc { "" } else { " (unreachable)" },
                r.records_removed,
                r.records_before,
                r.txns_removed,
                r.txns_before
            );
            if r.extra_kept > 0 {
                println!(
                    "  {} objects kept that ZODB would drop (referenced by revisions that undo records after the pack time keep)",
                    r.extra_kept
                );
            }
            if a.blobs.is_some() {
                println!(
                    "  blobs: {} garbage entries, {} files ({} bytes) removed{}",
                    r.blob_lines,
                    r.blobs.files_removed,
                    r.blobs.bytes_removed,
                    if a.no_keep_old || a.dry_run {
                        ""
                    } else {
                        " (kept in the .old directory)"
                    }
                );
            }
            match r.saved_references {
                SavedReferences::Used => {
                    println!("  references: from '{f}.refs' (the file was read once)")
                }
                SavedReferences::Ignored => println!(
                    "  references: '{f}.refs' does not describe the file as it is now (or \
                     {f}.index does not); not used, the file was read twice"
                ),
                SavedReferences::TooLarge => println!(
                    "  references: '{f}.refs' not used: packing from them would take more \
                     memory than this process may use; the file was read twice"
                ),
                SavedReferences::None => {}
            }
            if r.references_saved {
                println!(
                    "  references of the packed file saved to '{f}.refs': the next pack to now \
                     reads the file once"
                );
            }
            println!("  time: {secs:.2} s");
        }
    }
    if r.earlier_blobs.files_removed > 0 {
        println!(
            "  blobs: {} files ({} bytes) that an earlier, interrupted pack left to remove {} \
             (their revisions are no longer in the file)",
            r.earlier_blobs.files_removed,
            r.earlier_blobs.bytes_removed,
            if a.dry_run {
                "would be removed"
            } else {
                "were removed"
            }
        );
    }
    if r.tail > 0 {
        match &r.tail_saved {
            Some(p) => println!(
                "  the {} bytes after the last committed transaction (a torn or unfinished commit) were saved to '{}'",
                r.tail,
                p.display()
            ),
            None if r.outcome == Outcome::WouldPack => println!(
                "  the {} bytes after the last committed transaction (a torn or unfinished commit) would be saved to {}.trN",
                r.tail,
                f
            ),
            None => println!(
                "  {} bytes after the last committed transaction (a torn or unfinished commit) stay in the file",
                r.tail
            ),
        }
    }
    for d in &r.dangling_ignored {
        eprintln!("zodbfs: warning: dangling reference kept: {d}");
    }
}

/// Runs `pack --prepare`.
fn prepare(a: &Args, ctx: &Ctx) -> anyhow::Result<u8> {
    let bar = zfs_cli::ui::Bar::new(ctx.quiet || a.json);
    let t0 = Instant::now();
    let result = zfs_pack::prepare(&a.file, &bar);
    bar.finish();
    let secs = t0.elapsed().as_secs_f64();
    let p = match result {
        Ok(p) => p,
        Err(PackError::Interrupted) => {
            return Err(failure(
                exit::INTERRUPTED,
                format!(
                    "interrupted; no references file was written for '{}'",
                    a.file.display()
                ),
            ))
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("saving the references of '{}'", a.file.display()))
        }
    };
    if a.json {
        crate::common::print_report_line(&a.file, secs, &p);
    } else if !ctx.quiet {
        println!(
            "{}: references of {} objects saved to '{}' ({} bytes), up to byte {}",
            a.file.display(),
            p.objects,
            p.path.display(),
            p.bytes,
            p.end
        );
        if p.read_from > zfs_format::FIRST_TXN {
            println!(
                "  read from byte {}: the references saved before still described the file \
                 up to there",
                p.read_from
            );
        }
        println!(
            "  a pack with GC to now, with {}.index covering the file, will read it once",
            a.file.display()
        );
        println!("  time: {secs:.2} s");
    }
    Ok(exit::OK)
}

/// Runs `pack`.
pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<u8> {
    if a.prepare {
        return prepare(&a, ctx);
    }
    let stop = stop_tid(&a)?;
    let opts = PackOptions {
        stop,
        gc: !a.no_gc,
        keep_old: !a.no_keep_old,
        blob_dir: a.blobs.clone(),
        allow_dangling: a.allow_dangling,
        dry_run: a.dry_run,
    };
    // No bar with --json: the output is for programs.
    let bar = zfs_cli::ui::Bar::new(ctx.quiet || a.json);
    if bar.visible() {
        eprintln!(
            "{} '{}' to {} UTC (tid {stop}): history before it goes",
            if a.dry_run { "would pack" } else { "packing" },
            a.file.display(),
            stamp(stop)
        );
    }
    let t0 = Instant::now();
    let result = zfs_pack::pack(&a.file, &opts, &bar);
    bar.finish();
    let secs = t0.elapsed().as_secs_f64();
    match result {
        Ok(r) => {
            let open = r.database_open;
            if a.json {
                print_json(&a, &r, secs);
            } else if !ctx.quiet {
                print_summary(&a, &r, secs);
            }
            if open {
                eprintln!(
                    "zodbfs: note: '{}' is locked: the database is open (or being packed), so a pack without --dry-run would refuse now",
                    zfs_pack::lock::lock_path(&a.file).display()
                );
            }
            Ok(exit::OK)
        }
        Err(PackError::Dangling(list)) => {
            let mut m = format!(
                "'{}': {} dangling reference(s) from reachable objects; nothing was changed \
                 (ZODB's pack fails here with KeyError; --allow-dangling packs anyway):",
                a.file.display(),
                list.len()
            );
            for d in &list {
                m.push_str(&format!("\n  {d}"));
            }
            Err(failure(exit::FOUND_PROBLEMS, m))
        }
        Err(PackError::Interrupted) => Err(failure(
            exit::INTERRUPTED,
            format!(
                "interrupted; '{}' is unchanged and no temporary file is left",
                a.file.display()
            ),
        )),
        Err(e @ PackError::NotBlobDir { .. }) => Err(failure(
            exit::USAGE,
            format!("{e}: --blobs names the blob directory; nothing was changed"),
        )),
        Err(e @ PackError::DamagedMiddle { .. }) => {
            Err(failure(exit::FOUND_PROBLEMS, e.to_string()))
        }
        Err(e) if e.original_unchanged() => Err(e).with_context(|| {
            format!(
                "pack of '{}' failed; the original file is unchanged",
                a.file.display()
            )
        }),
        Err(e) => Err(e).with_context(|| format!("pack of '{}'", a.file.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_times_are_shown_as_dates() {
        assert_eq!(
            stamp(Tid::from_hex("03f47f9555555555").expect("hex")),
            "2023-11-14 22:13:20"
        );
    }
}
