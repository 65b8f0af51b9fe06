//! `zodbfs check`, `refs`, `recover`, `stats`, `oids`: integrity checks CI can trust.
//!
//! Exit codes (see `exit.rs`): 0 = ran and found nothing wrong; 3 = ran to its end and found
//! problems (damage, dangling references, data lost in recovery); 1 = could not run
//! (unreadable file, I/O error); 2 = bad arguments.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::json;
use zfs_cli::exit;
use zfs_format::FileStorage;

use crate::common::{open, Ctx};

/// Exit codes, shown by `--help` of every command here.
const EXIT_CODES: &str =
    "Exit codes: 0 = nothing wrong found; 3 = the command ran to its end and found \
problems (damage, dangling references, data lost or changed in recovery); 1 = it could not run \
(unreadable file, I/O error); 2 = bad arguments.";

/// Arguments of `zodbfs check`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct CheckArgs {
    /// The Data.fs file.
    pub file: PathBuf,
    /// Structure only (what fstest checks, plus 'u' transactions): skip the prev pointer,
    /// backpointer, serial and .index checks.
    #[arg(long)]
    pub quick: bool,
    /// The saved index to compare with the file (default: FILE.index, when it exists).
    #[arg(long, value_name = "PATH", conflicts_with = "no_index")]
    pub index: Option<PathBuf>,
    /// Do not compare a saved .index with the file.
    #[arg(long)]
    pub no_index: bool,
    /// The site's blob directory: check that every blob record has its file (missing
    /// files are reported; so are files no record names).
    #[arg(long, value_name = "DIR")]
    pub blobs: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}
/// Arguments of `zodbfs refs`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct RefsArgs {
    /// The Data.fs file.
    pub file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}
/// Arguments of `zodbfs recover`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct RecoverArgs {
    /// The damaged file.
    pub input: PathBuf,
    /// The new file.
    pub output: PathBuf,
    /// Overwrite OUTPUT if it exists.
    #[arg(short, long)]
    pub force: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}
/// Arguments of `zodbfs stats`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct StatsArgs {
    /// The Data.fs file.
    pub file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}
/// Arguments of `zodbfs oids`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct OidsArgs {
    /// The Data.fs file.
    pub file: PathBuf,
    /// Object ids: hex (`0x1a`, `000000000000001a`) or decimal (`26`).
    #[arg(required = true)]
    pub oids: Vec<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The bytes of a file: mapped when it has a known magic, read otherwise (so that `check`
/// can report a damaged magic and still walk the rest).
enum FileBytes {
    Mapped(FileStorage),
    Read(Vec<u8>),
}

impl FileBytes {
    fn load(path: &Path) -> anyhow::Result<Self> {
        match FileStorage::open(path) {
            Ok(fs) => Ok(FileBytes::Mapped(fs)),
            Err(zfs_format::Error::BadMagic { .. }) => {
                let v = std::fs::read(path).with_context(|| format!("'{}'", path.display()))?;
                Ok(FileBytes::Read(v))
            }
            Err(e) => Err(anyhow::Error::new(e).context(format!("'{}'", path.display()))),
        }
    }
    fn bytes(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(fs) => fs.bytes(),
            FileBytes::Read(v) => v,
        }
    }
}

fn index_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".index");
    PathBuf::from(s)
}

/// Runs `check`.
pub fn run_check(a: CheckArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    use zfs_check::check::{check, Options};
    let file = FileBytes::load(&a.file)?;
    let index_file = if a.no_index || a.quick {
        None
    } else {
        let (p, explicit) = match &a.index {
            Some(p) => (p.clone(), true),
            None => (index_path(&a.file), false),
        };
        match std::fs::read(&p) {
            Ok(b) => Some((p, b)),
            Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(anyhow::Error::new(e).context(format!("'{}'", p.display()))),
        }
    };
    let bar = ctx.bar();
    let opts = Options {
        quick: a.quick,
        index: index_file.as_ref().map(|(_, b)| b.as_slice()),
    };
    let report = check(file.bytes(), &opts, &bar);
    bar.finish();
    let mut out = std::io::stdout().lock();
    let magic = report.magic.map(|m| m.as_str());
    let index_shown = index_file.as_ref().map(|(p, _)| p.display().to_string());
    let blobs = match &a.blobs {
        Some(dir) => Some(crate::site::check_blobs(&a.file, dir, ctx)?),
        None => None,
    };
    let blobs_ok = blobs.as_ref().is_none_or(|b| b.is_ok());
    if a.json {
        let findings: Vec<_> = report
            .findings
            .iter()
            .map(|f| {
                json!({
                    "offset": f.offset,
                    "kind": f.kind.code(),
                    "fstest_detects": f.kind.fstest_detects(),
                    "message": f.message,
                })
            })
            .collect();
        let v = json!({
            "file": a.file.display().to_string(),
            "magic": magic,
            "file_len": report.file_len,
            "mode": if a.quick { "quick" } else { "full" },
            "index": index_shown,
            "transactions": report.transactions,
            "records": report.records,
            "skipped_bytes": report.skipped_bytes,
            "clean": report.is_clean() && blobs_ok,
            "findings": findings,
            "blobs": blobs,
        });
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        for f in &report.findings {
            writeln!(out, "{}: {}: {}", f.offset, f.kind, f.message)?;
        }
        let what = format!(
            "{}, {} bytes, {} transactions, {} data records, {} check{}",
            magic.unwrap_or("no valid magic"),
            report.file_len,
            report.transactions,
            report.records,
            if a.quick { "structural" } else { "full" },
            match &index_shown {
                Some(p) => format!(", compared with {p}"),
                None => String::new(),
            }
        );
        if report.is_clean() {
            writeln!(out, "{}: no problems found ({what})", a.file.display())?;
        } else {
            let n = report.findings.len();
            writeln!(
                out,
                "{}: {n} problem{} found ({what})",
                a.file.display(),
                if n == 1 { "" } else { "s" }
            )?;
        }
        if let Some(b) = &blobs {
            crate::site::print_blob_check(b);
        }
    }
    Ok(if report.is_clean() && blobs_ok {
        exit::OK
    } else {
        exit::FOUND_PROBLEMS
    })
}

/// The index of a file as ZODB would use it: the saved `.index` when it is sane, otherwise
/// a scan.
fn load_index(
    fs: &FileStorage,
    path: &Path,
    bar: &zfs_cli::ui::Bar,
) -> anyhow::Result<zfs_format::Index> {
    let (scan, _) =
        zfs_format::index_file::open_index(fs, &index_path(path), bar).with_context(|| {
            format!(
                "'{}' (run 'zodbfs check' to locate the damage)",
                path.display()
            )
        })?;
    Ok(scan.index)
}

fn hex_oid(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs `refs`.
pub fn run_refs(a: RefsArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let fs = open(&a.file)?;
    let bar = ctx.bar();
    let index = load_index(&fs, &a.file, &bar)?;
    let r = zfs_check::refs::dangling_refs(&fs, &index, &bar);
    bar.finish();
    let mut out = std::io::stdout().lock();
    if a.json {
        let dangling: Vec<_> = r
            .dangling
            .iter()
            .map(|d| {
                json!({
                    "referrer": d.referrer.to_string(),
                    "class": d.class,
                    "offset": d.offset,
                    "tid": d.tid.to_string(),
                    "target": hex_oid(&d.target),
                    "reason": d.reason.code(),
                })
            })
            .collect();
        let bad = |v: &[zfs_check::refs::Unscannable]| -> Vec<serde_json::Value> {
            v.iter()
                .map(|u| json!({"oid": u.oid.to_string(), "offset": u.offset, "error": u.error}))
                .collect()
        };
        let v = json!({
            "file": a.file.display().to_string(),
            "objects": r.objects,
            "undone": r.undone,
            "clean": r.is_clean(),
            "dangling": dangling,
            "unreadable": bad(&r.unreadable),
            "unscannable": bad(&r.unscannable),
        });
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        for d in &r.dangling {
            writeln!(
                out,
                "{} -> {}: {} (referrer {} at offset {}, tid {})",
                d.referrer,
                hex_oid(&d.target),
                d.reason.describe(),
                d.class,
                d.offset,
                d.tid
            )?;
        }
        for u in &r.unreadable {
            writeln!(
                out,
                "{}: cannot be loaded: {} (current record at offset {})",
                u.oid, u.error, u.offset
            )?;
        }
        for u in &r.unscannable {
            writeln!(
                out,
                "{}: references cannot be read: {} (current record at offset {})",
                u.oid, u.error, u.offset
            )?;
        }
        let n = r.dangling.len();
        writeln!(
            out,
            "{}: {} object{}, {n} dangling reference{}, {} unloadable, {} unscannable",
            a.file.display(),
            r.objects,
            if r.objects == 1 { "" } else { "s" },
            if n == 1 { "" } else { "s" },
            r.unreadable.len(),
            r.unscannable.len()
        )?;
    }
    Ok(if r.is_clean() {
        exit::OK
    } else {
        exit::FOUND_PROBLEMS
    })
}

/// Runs `recover`.
pub fn run_recover(a: RecoverArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let interrupt = zfs_cli::signals::on_signals();
    let input = FileBytes::load(&a.input)?;
    let input_meta =
        std::fs::metadata(&a.input).with_context(|| format!("'{}'", a.input.display()))?;
    let mode = zfs_files::permissions_of(&input_meta);
    // Checked before any work: OUTPUT is never the input (by any name), never reached
    // through a symlink, and replaced (only with --force) once it is complete.
    let mut spec = zfs_files::OutputSpec::new(&a.output)
        .replace(a.force)
        .mode(mode);
    spec = match &input {
        FileBytes::Mapped(fs) => spec.not_input_file(&a.input, fs.file())?,
        FileBytes::Read(_) => spec.not_input(&a.input)?,
    };
    let out = spec.create().map_err(|e| match e {
        zfs_files::Error::Exists { path } => {
            anyhow::anyhow!("'{}' exists (use --force to replace it)", path.display())
        }
        other => other.into(),
    })?;
    let bar = ctx.bar();
    let r = zfs_check::recover::recover(input.bytes(), out.file(), &bar).map_err(|e| match e {
        zfs_check::recover::RecoverError::Io(io) => anyhow::Error::new(out.write_error(io)),
        other => anyhow::Error::new(other).context(format!("recovering '{}'", a.input.display())),
    });
    bar.finish();
    if let FileBytes::Mapped(fs) = &input {
        fs.check_intact()?;
    }
    let r = r?;
    if interrupt.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(zfs_repozo::Error::Interrupted.into());
    }
    out.commit()?;
    let mut tail_file = None;
    if let Some(at) = r.checkpoint_at {
        // As fsrecover: save the unfinished transaction and what follows in OUTPUT.trN.
        let tail = usize::try_from(at)
            .ok()
            .and_then(|at| input.bytes().get(at..))
            .unwrap_or_default();
        tail_file = Some(zfs_files::save_free_trn(&a.output, tail, mode)?);
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        let losses: Vec<_> = r
            .losses
            .iter()
            .map(|l| json!({"offset": l.offset, "len": l.len, "why": l.why}))
            .collect();
        let retimed: Vec<_> = r
            .retimed
            .iter()
            .map(|(p, o, n)| json!({"offset": p, "tid": o.to_string(), "new_tid": n.to_string()}))
            .collect();
        let v = json!({
            "input": a.input.display().to_string(),
            "output": a.output.display().to_string(),
            "transactions": r.transactions,
            "records": r.records,
            "output_len": r.output_len,
            "removed_bytes": r.removed_bytes,
            "undone_bytes": r.undone_bytes,
            "checkpoint_at": r.checkpoint_at,
            "tail_file": tail_file.as_ref().map(|p| p.display().to_string()),
            "retimed": retimed,
            "losses": losses,
            "complete": r.is_complete(),
        });
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        for l in &r.losses {
            writeln!(
                out,
                "lost {} bytes at offset {}: {}",
                l.len, l.offset, l.why
            )?;
        }
        for (p, o, n) in &r.retimed {
            writeln!(
                out,
                "transaction at offset {p}: tid {o} is not above the previous one; written as {n}"
            )?;
        }
        if let (Some(at), Some(p)) = (r.checkpoint_at, &tail_file) {
            writeln!(
                out,
                "unfinished ('c') transaction at offset {at}: it and the {} bytes after it were not copied; saved in '{}'",
                input.bytes().len() as u64 - at,
                p.display()
            )?;
        }
        writeln!(
            out,
            "{} -> {}: {} transactions, {} data records, {} bytes written; {} bytes removed during recovery{}",
            a.input.display(),
            a.output.display(),
            r.transactions,
            r.records,
            r.output_len,
            r.removed_bytes,
            if r.undone_bytes > 0 {
                format!(", {} bytes of undone transactions skipped", r.undone_bytes)
            } else {
                String::new()
            }
        )?;
    }
    Ok(if r.is_complete() {
        exit::OK
    } else {
        exit::FOUND_PROBLEMS
    })
}

/// Runs `stats`.
pub fn run_stats(a: StatsArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    let fs = open(&a.file)?;
    let bar = ctx.bar();
    let index = load_index(&fs, &a.file, &bar)?;
    let s = zfs_check::stats::stats(&fs, &index, &bar)
        .with_context(|| format!("'{}'", a.file.display()))?;
    bar.finish();
    let mut out = std::io::stdout().lock();
    if a.json {
        let row = |c: &zfs_check::stats::ClassStats| json!({"current": c.current, "current_bytes": c.current_bytes, "old": c.old, "old_bytes": c.old_bytes});
        let classes: serde_json::Map<String, serde_json::Value> =
            s.classes.iter().map(|(k, v)| (k.clone(), row(v))).collect();
        let v = json!({
            "file": a.file.display().to_string(),
            "transactions": s.transactions,
            "transaction_bytes": s.transaction_bytes,
            "records": s.records,
            "objects": s.objects,
            "deletions": s.deletions,
            "unreadable": s.unreadable,
            "total": row(&s.total),
            "classes": classes,
        });
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        return Ok(exit::OK);
    }
    writeln!(
        out,
        "{} transactions ({} bytes), {} data records, {} objects, {} deletion records",
        s.transactions, s.transaction_bytes, s.records, s.objects, s.deletions
    )?;
    if s.unreadable > 0 {
        writeln!(
            out,
            "{} records with a broken backpointer (not counted)",
            s.unreadable
        )?;
    }
    writeln!(
        out,
        "{:<50} {:>9} {:>12} {:>9} {:>12} {:>6}",
        "class", "current", "cur bytes", "old", "old bytes", "pct"
    )?;
    let total = s.total.bytes().max(1);
    let mut rows: Vec<_> = s.classes.iter().collect();
    rows.sort_by(|x, y| y.1.bytes().cmp(&x.1.bytes()).then(x.0.cmp(y.0)));
    for (k, c) in rows {
        writeln!(
            out,
            "{:<50} {:>9} {:>12} {:>9} {:>12} {:>5.1}%",
            k,
            c.current,
            c.current_bytes,
            c.old,
            c.old_bytes,
            100.0 * c.bytes() as f64 / total as f64
        )?;
    }
    let t = &s.total;
    writeln!(
        out,
        "{:<50} {:>9} {:>12} {:>9} {:>12} {:>5.1}%",
        "total", t.current, t.current_bytes, t.old, t.old_bytes, 100.0
    )?;
    Ok(exit::OK)
}

/// Parses an oid given as hex (`0x1a`, or 16 hex digits) or decimal.
fn parse_oid(s: &str) -> anyhow::Result<zfs_format::Oid> {
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if s.len() == 16 {
        u64::from_str_radix(s, 16).ok()
    } else {
        s.parse::<u64>().ok()
    };
    v.map(zfs_format::Oid::from_u64)
        .ok_or_else(|| anyhow::anyhow!("'{s}' is not an oid (use 0x1a, 000000000000001a or 26)"))
}

/// Runs `oids`.
pub fn run_oids(a: OidsArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    use zfs_check::oids::What;
    let oids = a
        .oids
        .iter()
        .map(|s| parse_oid(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let fs = open(&a.file)?;
    let bar = ctx.bar();
    let index = load_index(&fs, &a.file, &bar)?;
    let hs = zfs_check::oids::histories(&fs, &index, &oids, &bar)
        .with_context(|| format!("'{}'", a.file.display()))?;
    bar.finish();
    let describe = |w: &What| -> String {
        match w {
            What::NewRevision {
                class,
                size,
                backpointer,
            } => {
                format!(
                    "new revision {class}, {size} bytes{}",
                    if *backpointer {
                        " (backpointer to an earlier state)"
                    } else {
                        ""
                    }
                )
            }
            What::Deleted => "does not exist from here (creation undone or deleted)".into(),
            What::Unreadable(e) => format!("unreadable revision: {e}"),
            What::References { target } => {
                let t = hex_oid(target);
                let known = <[u8; 8]>::try_from(target.as_slice())
                    .is_ok_and(|o| index.contains(zfs_format::Oid(o)));
                format!(
                    "references {t}{}",
                    if known {
                        ""
                    } else {
                        " (dangling: no such object)"
                    }
                )
            }
            What::ReferencedBy { referrer, class } => format!("referenced by {referrer} {class}"),
            What::Unscannable(e) => format!("references cannot be read: {e}"),
        }
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        let v: Vec<_> = hs
            .iter()
            .map(|h| {
                let events: Vec<_> = h
                    .events
                    .iter()
                    .map(|e| {
                        json!({
                            "tid": e.tid.to_string(),
                            "txn_offset": e.txn_pos,
                            "offset": e.offset,
                            "user": String::from_utf8_lossy(&e.user),
                            "description": String::from_utf8_lossy(&e.description),
                            "event": describe(&e.what),
                        })
                    })
                    .collect();
                json!({"oid": h.oid.to_string(), "class": h.class, "revisions": h.revisions, "current": h.in_index, "events": events})
            })
            .collect();
        serde_json::to_writer_pretty(
            &mut out,
            &json!({"file": a.file.display().to_string(), "oids": v}),
        )?;
        writeln!(out)?;
        return Ok(exit::OK);
    }
    for h in &hs {
        writeln!(
            out,
            "oid {} {} {} revision{}{}",
            h.oid,
            h.class.as_deref().unwrap_or("<no data record>"),
            h.revisions,
            if h.revisions == 1 { "" } else { "s" },
            if h.in_index {
                ""
            } else {
                " (not in the index: never stored, or packed away)"
            }
        )?;
        let mut last_txn = None;
        for e in &h.events {
            if last_txn != Some(e.txn_pos) {
                writeln!(
                    out,
                    "    tid {} offset={} user={} description={}",
                    e.tid,
                    e.txn_pos,
                    zfs_format::repr::bytes_repr(&e.user),
                    zfs_format::repr::bytes_repr(&e.description)
                )?;
                last_txn = Some(e.txn_pos);
            }
            writeln!(out, "        {} at {}", describe(&e.what), e.offset)?;
        }
    }
    Ok(exit::OK)
}
