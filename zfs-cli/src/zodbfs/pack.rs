//! `zodbfs pack`: offline pack with garbage collection, byte-identical to ZODB's packer.

use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use zfs_cli::exit;
use zfs_format::timestamp::TimeStamp;
use zfs_format::Tid;
use zfs_pack::{Outcome, PackError, PackOptions, Report};

use crate::common::Ctx;

/// Arguments of `zodbfs pack`.
///
/// Packs FILE at rest as ZODB's `FileStorage.pack` does: the result (Data.fs, .index,
/// .old, blob files removed) is byte for byte what ZODB gives. The pack time defaults to
/// now; revisions older than it that are not current, and (with GC) objects not reachable
/// from the root, are removed. Takes FILE.lock, the lock a running ZODB holds, and refuses
/// while the database is open elsewhere.
///
/// Where ZODB fails or loses data we do better: dangling references are listed and refused
/// (ZODB: KeyError; --allow-dangling packs anyway), objects referenced by old revisions
/// that undo records after the pack time keep are kept too (ZODB drops them), a pack
/// without GC keeps the revisions such records need (ZODB: PackError), Python 2 (FS21)
/// files and zlib-compressed records are read. A torn or unfinished last commit is not
/// packed and never lost: the untouched original keeps it in FILE.old, or, with
/// --no-keep-old, it is saved to FILE.trN (ZODB truncates it into FILE.trN on open).
///
/// Exit codes: 0 packed (or nothing to do); 1 error (nothing changed, unless the message
/// says the file was packed and a later step failed); 3 dangling references, nothing
/// changed; 130 interrupted, nothing changed.
#[derive(clap::Args, Debug)]
#[command(after_long_help = AFTER_HELP)]
pub struct Args {
    /// The Data.fs file.
    pub file: PathBuf,
    /// Pack to N days before now (like zeopack -d).
    #[arg(long, value_name = "N", group = "when")]
    pub days: Option<f64>,
    /// Pack to this UTC time: YYYY-MM-DD[THH:MM[:SS[.ffffff]]] (a space may replace T).
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
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Where `zodbfs pack` differs from ZODB on purpose (spec section 6), for `--help`.
const AFTER_HELP: &str = "\
The result (Data.fs, .index, .old, blob files removed or moved to DIR.old) is byte for byte \
what ZODB's FileStorage.pack gives, wherever ZODB succeeds without losing data. Where it \
does not, we differ on purpose:
  - dangling references from reachable objects: all are listed and nothing is changed, \
exit 3 (ZODB: KeyError on the first); --allow-dangling packs anyway;
  - objects referenced by old revisions that undo records after the pack time keep are \
kept too (ZODB collects them and leaves dangling references);
  - without GC, revisions such undo records need are kept (ZODB: PackError, .pack left);
  - Python 2 (FS21) oids with bytes >= 0x80 and zlib-compressed records are read \
(ZODB on Python 3 fails on both); unreadable references are refused, naming oid and offset;
  - offline only: FILE.lock is taken and the pack refuses while a ZODB has it open;
  - a torn or unfinished last commit is not packed and never lost: it stays in FILE.old, \
or with --no-keep-old goes to FILE.trN (ZODB's open truncates it into FILE.trN).

Exit codes: 0 packed or nothing to do; 1 error (nothing changed, unless the message says \
the file was packed and a later step failed); 3 dangling references, nothing changed; \
130 interrupted (SIGINT/SIGTERM), nothing changed and no .pack left.";

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the epoch of a UTC date-time.
fn parse_time(s: &str) -> anyhow::Result<f64> {
    let bad = || anyhow::anyhow!("--time {s:?}: expected YYYY-MM-DD[THH:MM[:SS[.ffffff]]] (UTC)");
    let s2 = s.trim().trim_end_matches('Z');
    let (date, time) = match s2.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s2, None),
    };
    let dp: Vec<&str> = date.split('-').collect();
    let [y, m, d] = dp.as_slice() else {
        return Err(bad());
    };
    let (y, m, d): (i64, i64, i64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let mut secs = (days_from_civil(y, m, d) * 86_400) as f64;
    if let Some(t) = time {
        let tp: Vec<&str> = t.split(':').collect();
        let (h, mi, sec): (i64, i64, f64) = match tp.as_slice() {
            [h, mi] => (
                h.parse().map_err(|_| bad())?,
                mi.parse().map_err(|_| bad())?,
                0.0,
            ),
            [h, mi, se] => (
                h.parse().map_err(|_| bad())?,
                mi.parse().map_err(|_| bad())?,
                se.parse().map_err(|_| bad())?,
            ),
            _ => return Err(bad()),
        };
        if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0.0..60.0).contains(&sec) {
            return Err(bad());
        }
        secs += (h * 3600 + mi * 60) as f64 + sec;
    }
    Ok(secs)
}

fn stop_tid(a: &Args) -> anyhow::Result<Tid> {
    if let Some(h) = &a.tid {
        if h.trim_start_matches("0x").len() != 16 {
            bail!("--tid {h:?}: expected 16 hex digits");
        }
        return Tid::from_hex(h).with_context(|| format!("--tid {h:?}: expected 16 hex digits"));
    }
    let t = match &a.time {
        Some(s) => parse_time(s)?,
        None => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .context("the clock is before 1970")?
                .as_secs_f64();
            now - a.days.unwrap_or(0.0) * 86_400.0
        }
    };
    let ts = TimeStamp::from_unix_time(t).map_err(|e| anyhow::anyhow!("pack time {t}: {e}"))?;
    Ok(Tid(ts.raw()))
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Empty => "empty",
        Outcome::Redundant => "redundant",
        Outcome::NothingToDo => "nothing-to-do",
        Outcome::Packed => "packed",
        Outcome::WouldPack => "would-pack",
    }
}

fn print_json(a: &Args, r: &Report, secs: f64, database_open: bool) {
    let v = serde_json::json!({
        "file": a.file.display().to_string(),
        "outcome": outcome_name(r.outcome),
        "dry_run": a.dry_run,
        "database_open": database_open,
        "gc": !a.no_gc,
        "stop_tid": r.stop.to_string(),
        "size_before": r.size_before,
        "size_after": r.size_after,
        "bytes_removed": r.size_before.saturating_sub(r.size_after),
        "pack_position": r.packpos,
        "transactions_before_stop": r.txns_before,
        "transactions_removed": r.txns_removed,
        "records_before_stop": r.records_before,
        "records_removed": r.records_removed,
        "objects_at_stop": r.objects_at_stop,
        "objects_kept": r.objects_kept,
        "objects_removed": r.objects_at_stop.saturating_sub(r.objects_kept),
        "extra_objects_kept": r.extra_kept,
        "dangling_ignored": r.dangling_ignored.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "blob_removed_lines": r.blob_lines,
        "blob_files_removed": r.blobs.files_removed,
        "blob_bytes_removed": r.blobs.bytes_removed,
        "tail_bytes": r.tail,
        "tail_saved_to": r.tail_saved.as_ref().map(|p| p.display().to_string()),
        "index_written": r.index_written,
        "seconds": secs,
    });
    println!("{v}");
}

fn print_summary(a: &Args, r: &Report, secs: f64) {
    let f = a.file.display();
    match r.outcome {
        Outcome::Empty => println!("{f}: the storage holds no object; nothing done"),
        Outcome::Redundant => println!(
            "{f}: already packed to a later time, or no changes since the last pack; nothing done"
        ),
        Outcome::NothingToDo => {
            println!("{f}: nothing to remove before {}; file unchanged", r.stop)
        }
        Outcome::Packed | Outcome::WouldPack => {
            let verb = if r.outcome == Outcome::Packed {
                "packed"
            } else {
                "would pack"
            };
            println!(
                "{f}: {verb} to {}: {} -> {} bytes ({} removed)",
                r.stop,
                r.size_before,
                r.size_after,
                r.size_before.saturating_sub(r.size_after)
            );
            println!(
                "  before the pack time: {} of {} objects kept, {} of {} revisions removed, {} of {} transactions removed",
                r.objects_kept, r.objects_at_stop, r.records_removed, r.records_before, r.txns_removed, r.txns_before
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
            println!("  time: {secs:.2} s");
        }
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

/// Runs `pack`.
pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<u8> {
    let stop = stop_tid(&a)?;
    let opts = PackOptions {
        stop,
        gc: !a.no_gc,
        keep_old: !a.no_keep_old,
        blob_dir: a.blobs.clone(),
        allow_dangling: a.allow_dangling,
        dry_run: a.dry_run,
        interrupt: Some(zfs_cli::signals::on_signals()),
    };
    // No bar with --json: the output is for programs.
    let bar = zfs_cli::ui::Bar::new(ctx.quiet || a.json);
    let t0 = Instant::now();
    let result = zfs_pack::pack(&a.file, &opts, &bar);
    bar.finish();
    let secs = t0.elapsed().as_secs_f64();
    match result {
        Ok(r) => {
            // A dry run takes no lock; it says when the real pack would be refused.
            let open = a.dry_run && zfs_pack::lock::is_held(&a.file).unwrap_or(false);
            if a.json {
                print_json(&a, &r, secs, open);
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
            eprintln!(
                "zodbfs: error: '{}': {} dangling reference(s) from reachable objects; nothing was changed \
                 (ZODB's pack fails here with KeyError; --allow-dangling packs anyway):",
                a.file.display(),
                list.len()
            );
            for d in &list {
                eprintln!("  {d}");
            }
            Ok(exit::FOUND_PROBLEMS)
        }
        Err(PackError::Interrupted) => {
            eprintln!(
                "zodbfs: interrupted; '{}' is unchanged and no temporary file is left",
                a.file.display()
            );
            Ok(exit::INTERRUPTED)
        }
        Err(e @ PackError::DamagedMiddle { .. }) => {
            eprintln!("zodbfs: error: {e}");
            Ok(exit::FOUND_PROBLEMS)
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
    fn times() {
        assert_eq!(parse_time("2024-01-01").expect("date"), 1704067200.0);
        assert_eq!(
            parse_time("2024-01-01T00:00:12.5").expect("datetime"),
            1704067212.5
        );
        assert_eq!(
            parse_time("2023-11-14 22:13:20").expect("datetime"),
            1700000000.0
        );
        assert!(parse_time("2024-13-01").is_err());
        assert!(parse_time("yesterday").is_err());
    }
}
