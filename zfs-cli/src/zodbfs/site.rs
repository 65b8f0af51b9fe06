//! Whole-site backups (`--blobs`, `--blob-backups`): `backup`, `restore` (and `--drill`),
//! `verify`, `list`, `prune`, and `check --blobs`, over [`zfs_site`].
//!
//! Deleting or replacing anything asks first on a terminal; without one, `--yes` is
//! required and nothing is ever asked.

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};

use zfs_cli::exit;
use zfs_site::consistency::BlobCheck;

use crate::backup::BackupArgs;
use crate::common::{self, path_str, print_json, with_hooks, Ctx};
use crate::restore::RestoreArgs;
use crate::verify::VerifyArgs;

/// Arguments of `zodbfs list`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit codes: 0 = listed; 1 = it could not run (no repository, an I/O error); 2 = \
bad arguments."
)]
pub struct ListArgs {
    /// The repozo repository.
    pub repository: PathBuf,
    /// The blob backup directory (collective.backup's blob_backup_location).
    #[arg(long, value_name = "DIR")]
    pub blob_backups: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `zodbfs prune`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Chains (a full backup and its incrementals) are ordered by the stamps in \
their names. The newest chain is never removed, nor a blob tree that a kept point restores \
with. Exit codes: 0 done (or nothing to do); 1 error; 2 usage, or deleting without --yes \
and no terminal to ask."
)]
pub struct PruneArgs {
    /// The repozo repository.
    pub repository: PathBuf,
    /// The blob backup directory; its trees go with their chains.
    #[arg(long, value_name = "DIR")]
    pub blob_backups: Option<PathBuf>,
    /// Full backups to keep (with their incrementals and blob trees).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub keep: u64,
    /// Also keep every chain with a backup younger than DAYS days.
    #[arg(long, value_name = "DAYS")]
    pub keep_days: Option<u64>,
    /// List what would be removed, and the space it frees; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove without asking (required when there is no terminal to ask).
    #[arg(long)]
    pub yes: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The error with its chain; repozo's OS errors in our words (see [`common::plain`]).
fn plain(e: zfs_site::Error) -> anyhow::Error {
    match e {
        zfs_site::Error::Repozo(r) => common::plain(r),
        other => anyhow::Error::new(other),
    }
}

fn usage(msg: &str) -> anyhow::Result<u8> {
    Err(common::usage(msg))
}

/// A report with whether it found everything right: `{"ok": ..., KEY: report}`.
#[derive(serde::Serialize)]
struct Checked<'a, T: serde::Serialize> {
    ok: bool,
    #[serde(flatten)]
    report: Keyed<'a, T>,
}

/// A report under its name.
#[derive(serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum Keyed<'a, T: serde::Serialize> {
    Drill(&'a T),
    Verify(&'a T),
}

/// A prune's plan, done or not.
#[derive(serde::Serialize)]
struct Pruned<'a> {
    dry_run: bool,
    plan: &'a zfs_site::prune::PrunePlan,
}

/// Asks `question` on the terminal; `None` when there is none to ask on.
fn ask(question: &str) -> Option<bool> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return None;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).ok()?;
    Some(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Prints the lines of a blob check worth reading.
fn describe_check(c: &BlobCheck, what: &str) {
    eprintln!(
        "{what}: {} blob records, {} blob files; {} missing, {} of the wrong size, {} orphans",
        c.records, c.files, c.missing_count, c.wrong_size_count, c.orphan_count
    );
    for m in c.missing.iter().take(10) {
        eprintln!(
            "  missing: {} (oid {} tid {}{})",
            m.path,
            m.oid,
            m.tid,
            if m.current {
                ", current revision"
            } else {
                ", old revision"
            }
        );
    }
    for w in c.wrong_size.iter().take(10) {
        eprintln!(
            "  wrong size: {} is {} bytes, was {}",
            w.path, w.found, w.expected
        );
    }
}

/// `zodbfs backup FILE -r REPO --blobs DIR --blob-backups DIR`.
pub fn run_backup(a: BackupArgs, c: &Ctx) -> anyhow::Result<u8> {
    let (Some(blobs), Some(blob_backups)) = (a.blobs.clone(), a.blob_backups.clone()) else {
        return usage("--blobs and --blob-backups go together");
    };
    if a.kill_old_on_full {
        return usage("-k would leave blob trees without their Data.fs backups; use `zodbfs prune --keep N` instead");
    }
    let opts = zfs_site::backup::BackupOptions {
        datafs: zfs_repozo::backup::BackupOptions {
            repository: path_str(&a.repository)?,
            file: path_str(&a.file)?,
            full: a.full,
            quick: a.quick,
            gzip: a.gzip,
            gzip_level: a.level,
            kill_old: false,
            now: None,
            lock_wait: std::time::Duration::from_secs(a.lock_wait),
        },
        blobs,
        blob_backups,
    };
    let t0 = std::time::Instant::now();
    let r = with_hooks(c, a.verbose, |h| zfs_site::backup::backup(&opts, h)).map_err(plain)?;
    let problems = r.check.as_ref().is_some_and(|c| !c.is_ok()) || r.datafs.left_out.is_some();
    if a.json {
        print_json(&r)?;
    } else if !c.quiet {
        let range = r.datafs.start.zip(r.datafs.end);
        eprintln!(
            "{}",
            crate::backup::backup_summary(
                &a.file,
                r.datafs.action,
                r.datafs.file.as_deref(),
                range,
                t0.elapsed()
            )
        );
        let b = &r.blobs;
        if b.created {
            eprintln!(
                "blob backup {}: {} files ({} bytes), {} linked to {}, {} copied ({} bytes)",
                b.tree.display(),
                b.files,
                b.bytes,
                b.linked,
                b.previous.as_deref().unwrap_or("-"),
                b.copied,
                b.copied_bytes
            );
        } else {
            eprintln!("blob backup {} exists already", b.tree.display());
        }
        if let Some(ch) = &r.check {
            describe_check(ch, "blob check");
        }
    }
    for n in &r.notices {
        eprintln!("zodbfs: {n}");
    }
    Ok(if problems {
        exit::FOUND_PROBLEMS
    } else {
        exit::OK
    })
}

/// `zodbfs restore REPO -o Data.fs --blob-backups DIR --blobs-to DIR`, and `--drill`.
pub fn run_restore(a: RestoreArgs, c: &Ctx) -> anyhow::Result<u8> {
    if a.drill {
        return run_drill(a, c);
    }
    let (Some(output), Some(blob_backups), Some(blobs_to)) =
        (a.output.clone(), a.blob_backups.clone(), a.blobs_to.clone())
    else {
        return usage("a site restore needs -o, --blob-backups and --blobs-to");
    };
    let opts = zfs_site::restore::RestoreOptions {
        repository: path_str(&a.repository)?,
        date: a.date.clone(),
        output: output.clone(),
        blob_backups,
        blobs_to: blobs_to.clone(),
        with_verify: a.with_verify,
        now: None,
    };
    let plan = zfs_site::restore::plan(&opts).map_err(plain)?;
    let replaces = output.exists() || blobs_to.exists();
    if replaces && !a.yes {
        let q = format!(
            "replace {} and {} with the backup of {} (blobs from {})?",
            output.display(),
            blobs_to.display(),
            plan.state,
            plan.tree.display()
        );
        match ask(&q) {
            Some(true) => {}
            Some(false) => {
                eprintln!("zodbfs: nothing restored");
                return Ok(exit::OK);
            }
            None => {
                return usage("refusing to replace the site without --yes (no terminal to ask)")
            }
        }
    }
    let r = with_hooks(c, a.verbose, |h| zfs_site::restore::restore(&opts, h)).map_err(plain)?;
    if a.json {
        print_json(&r)?;
    } else if !c.quiet {
        eprintln!(
            "restored the state of {}: {} ({} bytes) and {} ({} files, {} bytes, from {}) in {:.1} s",
            r.plan.state,
            output.display(),
            r.datafs_bytes,
            blobs_to.display(),
            r.files,
            r.bytes,
            r.plan.tree.display(),
            r.seconds
        );
        if !r.plan.exact() {
            eprintln!(
                "zodbfs: no blob backup has the stamp {}; the newest older one ({}) was restored",
                r.plan.state, r.plan.tree_stamp
            );
        }
        describe_check(&r.check, "blob check");
    }
    Ok(if r.check.is_ok() {
        exit::OK
    } else {
        exit::FOUND_PROBLEMS
    })
}

fn run_drill(a: RestoreArgs, c: &Ctx) -> anyhow::Result<u8> {
    let opts = zfs_site::restore::DrillOptions {
        repository: path_str(&a.repository)?,
        date: a.date.clone(),
        blob_backups: a.blob_backups.clone(),
        blob_name: None,
        scratch: a.scratch.clone().unwrap_or_else(std::env::temp_dir),
    };
    let r = with_hooks(c, a.verbose, |h| zfs_site::restore::drill(&opts, h)).map_err(plain)?;
    if a.json {
        print_json(&Checked {
            ok: r.is_ok(),
            report: Keyed::Drill(&r),
        })?;
    } else {
        eprintln!(
            "drill: restored the state of {} ({} bytes{}) in {:.1} s; checked in {:.1} s",
            r.state,
            r.datafs_bytes,
            if r.tree.is_some() {
                format!(", {} blob files of {} bytes", r.blob_files, r.blob_bytes)
            } else {
                String::new()
            },
            r.restore_seconds,
            r.check_seconds
        );
        eprintln!(
            "Data.fs check: {} transactions, {} records, {} problems",
            r.datafs_check.transactions, r.datafs_check.records, r.datafs_check.finding_count
        );
        for f in &r.datafs_check.findings {
            eprintln!("  {f}");
        }
        if let Some(b) = &r.blob_check {
            describe_check(b, "blob check");
        }
        eprintln!("drill {}", if r.is_ok() { "passed" } else { "FAILED" });
    }
    Ok(if r.is_ok() {
        exit::OK
    } else {
        exit::FOUND_PROBLEMS
    })
}

/// `zodbfs verify REPO --blob-backups DIR`.
pub fn run_verify(a: VerifyArgs, c: &Ctx) -> anyhow::Result<u8> {
    let Some(blob_backups) = a.blob_backups.clone() else {
        return usage("--all needs --blob-backups");
    };
    let opts = zfs_site::verify::VerifyOptions {
        repository: path_str(&a.repository)?,
        quick: a.quick,
        blob_backups,
        blob_name: None,
        all: a.all,
    };
    let r = with_hooks(c, a.verbose, |h| zfs_site::verify::verify(&opts, h)).map_err(plain)?;
    if a.json {
        print_json(&Checked {
            ok: r.is_ok(),
            report: Keyed::Verify(&r),
        })?;
    } else {
        match &r.datafs_problem {
            Some(p) => eprintln!("Data.fs backups: {p}"),
            None => eprintln!("Data.fs backups: {} files verified", r.datafs_files.len()),
        }
        for t in &r.trees {
            describe_check(&t.check, &t.tree);
        }
    }
    Ok(if r.is_ok() {
        exit::OK
    } else {
        exit::FOUND_PROBLEMS
    })
}

/// `zodbfs list REPO [--blob-backups DIR]`.
pub fn run_list(a: ListArgs, c: &Ctx) -> anyhow::Result<u8> {
    let repository = path_str(&a.repository)?;
    let l = with_hooks(c, false, |h| {
        zfs_site::list::list(&repository, a.blob_backups.as_deref(), None, h)
    })
    .map_err(plain)?;
    if a.json {
        print_json(&l)?;
        return Ok(exit::OK);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:19}  {:11}  {:>12}  {:>9}  {:>14}  {:8}  RESTORABLE",
        "STAMP", "KIND", "DATA.FS", "BLOBS", "BLOB BYTES", "CHECKED"
    )?;
    for p in &l.points {
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        let blobs = match (&p.tree, p.tree_exact) {
            (Some(_), true) => opt(p.blob_files),
            (Some(_), false) => format!("{}*", opt(p.blob_files)),
            (None, _) => "-".into(),
        };
        let checked = match &p.checked {
            Some(ch) if ch.ok => "ok",
            Some(_) => "PROBLEMS",
            None => "-",
        };
        writeln!(
            out,
            "{:19}  {:11}  {:>12}  {:>9}  {:>14}  {:8}  {}",
            p.stamp,
            p.kind,
            opt(p.datafs_size),
            blobs,
            opt(p.blob_bytes),
            checked,
            match &p.problem {
                None => "yes".to_string(),
                Some(why) => format!("no: {why}"),
            }
        )?;
    }
    if l.points.iter().any(|p| p.tree.is_some() && !p.tree_exact) {
        writeln!(out, "* blobs from the newest older blob backup")?;
    }
    for t in &l.orphan_trees {
        writeln!(
            out,
            "orphan blob backup (no Data.fs backup has its stamp): {t}"
        )?;
    }
    Ok(exit::OK)
}

/// `zodbfs prune REPO --keep N`.
pub fn run_prune(a: PruneArgs, c: &Ctx) -> anyhow::Result<u8> {
    let opts = zfs_site::prune::PruneOptions {
        repository: path_str(&a.repository)?,
        blob_backups: a.blob_backups.clone(),
        blob_name: None,
        keep: usize::try_from(a.keep).unwrap_or(usize::MAX),
        keep_days: a.keep_days,
        now: None,
    };
    let plan = zfs_site::prune::plan(&opts).map_err(plain)?;
    let show = |plan: &zfs_site::prune::PrunePlan, verb: &str| {
        for r in &plan.removals {
            eprintln!(
                "{verb} {} ({}, {} bytes)",
                r.path.display(),
                r.kind,
                r.bytes
            );
        }
        for t in &plan.orphan_trees_kept {
            eprintln!("orphan blob backup kept with its chain: {t}");
        }
        eprintln!(
            "{} full backups kept, {} removed; {} bytes freed",
            plan.kept.len(),
            plan.removed_chains.len(),
            plan.bytes_freed
        );
    };
    if a.dry_run || plan.removals.is_empty() {
        if a.json {
            print_json(&Pruned {
                dry_run: a.dry_run,
                plan: &plan,
            })?;
        } else {
            show(&plan, "would remove");
        }
        return Ok(exit::OK);
    }
    if !a.yes {
        show(&plan, "would remove");
        match ask("remove these?") {
            Some(true) => {}
            Some(false) => {
                eprintln!("zodbfs: nothing removed");
                return Ok(exit::OK);
            }
            None => return usage("refusing to remove backups without --yes (no terminal to ask)"),
        }
    }
    let expect: Vec<PathBuf> = plan.removals.iter().map(|r| r.path.clone()).collect();
    let done = with_hooks(c, false, |h| {
        zfs_site::prune::prune(&opts, Some(&expect), h)
    })
    .map_err(plain)?;
    if a.json {
        print_json(&Pruned {
            dry_run: false,
            plan: &done,
        })?;
    } else if !c.quiet {
        show(&done, "removed");
    }
    Ok(exit::OK)
}

/// `zodbfs check FILE --blobs DIR`: the blob half of the check, after the Data.fs half.
pub fn check_blobs(file: &Path, blobs: &Path, ctx: &Ctx) -> anyhow::Result<BlobCheck> {
    with_hooks(ctx, false, |h| {
        let stop = zfs_site::Stop::of(h);
        let layout = zfs_format::blob::Layout::of_dir(blobs)
            .map_err(|e| zfs_site::Error::io("reading", blobs, e))?;
        let walked = zfs_site::tree::walk(blobs, &stop)?;
        let records = zfs_site::records::blob_records_of_file(file, &stop)?;
        Ok(zfs_site::consistency::check(
            &records,
            layout,
            &walked.files,
            None,
        ))
    })
    .map_err(plain)
}

/// Prints the blob half of `check`.
pub fn print_blob_check(c: &BlobCheck) {
    describe_check(c, "blobs");
    if c.orphan_count > 0 {
        eprintln!(
            "  {} blob files no record names (orphans: left by aborted or later transactions)",
            c.orphan_count
        );
    }
}
