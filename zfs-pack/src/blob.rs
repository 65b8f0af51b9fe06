//! Blob directories: which records are blobs, the `.removed` file ZODB's packer writes,
//! the removal (or move to `<blob_dir>.old`) of the files it names, with ZODB's bushy and
//! lawn layouts, and the finishing of a removal an earlier pack left undone.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use zfs_files::OutputSpec;
use zfs_format::{FileStorage, Index, Oid};

use crate::error::{PackError, Result};

use zfs_format::blob::blob_file_tid;
pub use zfs_format::blob::{blob_path, id_repr, is_blob_record, oid_path, Layout};

/// The layout of `dir` as ZODB selects it: the `.layout` marker, else bushy for a missing
/// or unused directory, lawn for a used one.
pub fn layout(dir: &Path) -> Result<Layout> {
    Layout::of_dir(dir).map_err(|e| PackError::io(dir.join(".layout"), e))
}

/// Refuses a blob directory that is missing or not a directory (a mistyped `--blobs`, or
/// the Data.fs itself): checked before the pack starts, so such a mistake cannot surface
/// only after the packed file took the original's place.
pub fn check_dir(dir: &Path) -> Result<()> {
    let why = match fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => "it is a file",
        Err(e) if e.kind() == io::ErrorKind::NotFound => "it does not exist",
        Err(e) => return Err(PackError::io(dir, e)),
    };
    Err(PackError::NotBlobDir {
        path: dir.to_path_buf(),
        why,
    })
}

/// What the blob pass did.
#[derive(Clone, Debug, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BlobStats {
    /// Blob files removed (or moved to `.old`).
    #[cfg_attr(feature = "serde", serde(rename = "blob_files_removed"))]
    pub files_removed: u64,
    /// Bytes of those files.
    #[cfg_attr(feature = "serde", serde(rename = "blob_bytes_removed"))]
    pub bytes_removed: u64,
}

fn count_files(p: &Path, stats: &mut BlobStats) {
    if let Ok(m) = fs::symlink_metadata(p) {
        if m.is_dir() {
            if let Ok(rd) = fs::read_dir(p) {
                for e in rd.flatten() {
                    count_files(&e.path(), stats);
                }
            }
        } else if p.extension().is_some_and(|e| e == "blob") {
            stats.files_removed += 1;
            stats.bytes_removed += m.len();
        }
    }
}

/// Counts the blob files the `.removed` lines name, without touching anything (dry run).
pub fn preview(dir: &Path, removed: &[u8], stop: u64) -> Result<BlobStats> {
    let layout = layout(dir)?;
    let mut stats = BlobStats::default();
    let mut seen = std::collections::HashSet::new();
    for line in parse_lines(dir, removed)? {
        for p in garbage(dir, layout, line, stop)? {
            if seen.insert(p.clone()) {
                count_files(&p, &mut stats);
            }
        }
    }
    Ok(stats)
}

/// The paths a `.removed` line lets go. A garbage oid is its whole directory, as in ZODB,
/// unless that directory holds a blob file written after the pack time `stop`: the
/// object was unreachable at the pack time but lives again after it (an application
/// that kept it and linked it anew), and its newer revisions are in the packed file. ZODB
/// removes the directory all the same, losing the current revision's blob; ours lets go
/// only the files of revisions up to the pack time.
fn garbage(dir: &Path, layout: Layout, line: Line, stop: u64) -> Result<Vec<PathBuf>> {
    let p = match line {
        Line::Revision(o, t) => return Ok(vec![blob_path(dir, layout, o, t)]),
        Line::Oid(o) => oid_path(dir, layout, o),
    };
    let rd = match fs::read_dir(&p) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        // Not a directory (or unreadable): left to the move, which reports its error.
        Err(_) => return Ok(vec![p]),
    };
    let files = blob_files_in(&p, rd)?;
    if files.iter().any(|&(t, _)| t > stop) {
        Ok(files
            .into_iter()
            .filter(|&(t, _)| t <= stop)
            .map(|(_, f)| f)
            .collect())
    } else {
        Ok(vec![p])
    }
}

enum Line {
    Oid(u64),
    Revision(u64, u64),
}

impl Line {
    fn oid(&self) -> u64 {
        match *self {
            Line::Oid(o) | Line::Revision(o, _) => o,
        }
    }
}

/// One line: 16 hex digits (an oid) or 32 (an oid and a transaction).
fn parse_line(s: &str) -> Option<Line> {
    let s = s.trim();
    let hex = |h: &str| u64::from_str_radix(h, 16).ok();
    match s.len() {
        16 => Some(Line::Oid(hex(s)?)),
        32 => Some(Line::Revision(hex(s.get(..16)?)?, hex(s.get(16..)?)?)),
        _ => None,
    }
}

fn parse_lines(dir: &Path, removed: &[u8]) -> Result<Vec<Line>> {
    let mut out = Vec::new();
    for raw in removed.split(|&c| c == b'\n') {
        let s = String::from_utf8_lossy(raw);
        if s.trim().is_empty() {
            continue;
        }
        out.push(parse_line(&s).ok_or_else(|| PackError::BadRemovedLine {
            path: dir.join(".removed"),
            line: s.trim().to_string(),
        })?);
    }
    Ok(out)
}

fn io_err(p: &Path) -> impl FnOnce(io::Error) -> PackError + '_ {
    move |e| PackError::io(p, e)
}

/// Removes `dir`'s parent directories while they are empty and longer than the blob dir.
fn prune(blob_dir: &Path, mut p: PathBuf) {
    let limit = blob_dir.as_os_str().len();
    while let Some(parent) = p.parent().map(Path::to_path_buf) {
        if parent.as_os_str().len() <= limit {
            return;
        }
        match fs::read_dir(&parent) {
            Ok(mut rd) => {
                if rd.next().is_some() {
                    return;
                }
            }
            Err(_) => return,
        }
        if fs::remove_dir(&parent).is_err() {
            return;
        }
        p = parent;
    }
}

fn old_of(dir: &Path) -> PathBuf {
    let mut s = dir.as_os_str().to_os_string();
    s.push(".old");
    PathBuf::from(s)
}

/// Removes `<blob_dir>.old` if it exists (ZODB does so at the start of every pack).
pub fn remove_old(dir: &Path) -> Result<()> {
    let old = old_of(dir);
    if old.exists() {
        fs::remove_dir_all(&old).map_err(io_err(&old))?;
    }
    Ok(())
}

/// Writes `<blob_dir>/.removed`, ZODB's list of garbage blob objects and revisions, as
/// every file we write: complete and durable before it takes the name, never through a
/// symlink, with `mode` (the data file's).
pub fn write_removed(dir: &Path, removed: &[u8], mode: u32) -> Result<()> {
    let spec = OutputSpec::new(dir.join(".removed"))
        .replace(true)
        .mode(mode);
    zfs_files::write_file(spec, |w| w.write_all(removed))?;
    Ok(())
}

/// The lines of a `.removed` file an earlier pack left in `dir`, if it holds any: a pack
/// killed in its blob pass, or one of ZODB's that ended early or failed. Anything but a
/// regular file there is not read.
pub fn leftover(dir: &Path) -> Result<Option<Vec<u8>>> {
    let p = dir.join(".removed");
    match fs::symlink_metadata(&p) {
        Ok(m) if m.is_file() && m.len() > 0 => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(PackError::io(p, e)),
    }
    let bytes = fs::read(&p).map_err(io_err(&p))?;
    Ok(bytes
        .iter()
        .any(|c| !c.is_ascii_whitespace())
        .then_some(bytes))
}

/// Finishes the removal an earlier pack's `.removed` lines (`removed`) asked for, against
/// the file as it is now: a blob file those lines name is removed only when the file has
/// no record of its object and transaction, so it can never be loaded again. That makes
/// any leftover safe to finish, whoever wrote it and whether or not its pack took effect:
/// the lines of a pack that never swapped name revisions still in the file, and are kept.
/// Lines that do not parse (a list cut short) are passed over; a chain of revisions that
/// cannot be read keeps every file of its object; a file written after `last`, the file's
/// last committed transaction, is kept (it belongs to a commit the file does not hold,
/// such as a torn last one). With `dry_run`, counts and touches nothing; otherwise
/// `.removed` is removed at the end.
pub fn finish_earlier<T>(
    storage: &FileStorage<T>,
    index: &Index,
    last: u64,
    dir: &Path,
    removed: &[u8],
    dry_run: bool,
) -> Result<BlobStats>
where
    T: std::ops::Deref<Target = [u8]>,
{
    let layout = layout(dir)?;
    let mut stats = BlobStats::default();
    let mut lines: Vec<Line> = removed
        .split(|&c| c == b'\n')
        .filter_map(|raw| parse_line(&String::from_utf8_lossy(raw)))
        .collect();
    lines.sort_by_key(Line::oid);
    let mut known: Option<(u64, Option<HashSet<u64>>)> = None;
    for line in lines {
        let oid = line.oid();
        if known.as_ref().is_none_or(|(o, _)| *o != oid) {
            known = Some((oid, revisions(storage, index, oid)));
        }
        let Some((_, Some(tids))) = &known else {
            continue;
        };
        let candidates = match line {
            Line::Revision(o, t) => vec![(t, blob_path(dir, layout, o, t))],
            Line::Oid(o) => blob_files(&oid_path(dir, layout, o))?,
        };
        for (tid, p) in candidates {
            if tid > last || tids.contains(&tid) {
                continue;
            }
            let Ok(m) = fs::symlink_metadata(&p) else {
                continue;
            };
            if !m.is_file() {
                continue;
            }
            stats.files_removed += 1;
            stats.bytes_removed += m.len();
            if !dry_run {
                // What the file says is used only if it did not shrink under the reads.
                storage.check_intact()?;
                fs::remove_file(&p).map_err(io_err(&p))?;
                prune(dir, p);
            }
        }
    }
    if !dry_run {
        let rp = dir.join(".removed");
        fs::remove_file(&rp).map_err(io_err(&rp))?;
        zfs_files::sync_dir(dir).map_err(io_err(dir))?;
    }
    Ok(stats)
}

/// The transactions of every revision of `oid` in the file (its chain of `prev`
/// pointers from the index), or `None` when the chain cannot be read to its end.
fn revisions<T>(storage: &FileStorage<T>, index: &Index, oid: u64) -> Option<HashSet<u64>>
where
    T: std::ops::Deref<Target = [u8]>,
{
    let mut tids = HashSet::new();
    let Some(mut pos) = index.get(Oid::from_u64(oid)) else {
        return Some(tids);
    };
    loop {
        let rec = storage.record_at(pos).ok()?;
        if rec.oid.as_u64() != oid {
            return None;
        }
        tids.insert(rec.tid.as_u64());
        match rec.prev {
            0 => return Some(tids),
            // Every earlier revision lies before: anything else is a damaged chain.
            prev if prev < pos => pos = prev,
            _ => return None,
        }
    }
}

/// The blob files in an object's directory, with their transactions (none if it is
/// missing).
fn blob_files(oid_dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    match fs::read_dir(oid_dir) {
        Ok(rd) => blob_files_in(oid_dir, rd),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(PackError::io(oid_dir, e)),
    }
}

/// The blob files of the directory `oid_dir` being read by `rd`, with their transactions,
/// in the order of their transactions (and names).
fn blob_files_in(oid_dir: &Path, rd: fs::ReadDir) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(io_err(oid_dir))?;
        if let Some(t) = e.file_name().to_str().and_then(blob_file_tid) {
            out.push((t, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if fs::hard_link(from, to).is_err() {
        fs::copy(from, to).map_err(io_err(to))?;
    }
    Ok(())
}

/// Processes the `.removed` lines after the swap, as ZODB does: each garbage oid directory
/// or revision file is moved to `<blob_dir>.old` (with `keep_old`) or removed, empty
/// parents pruned; then, with `keep_old`, every remaining blob file is hard-linked into
/// `.old`, so `.old` holds the complete pre-pack tree. Blob files written after the pack
/// time `stop` are never let go (see [`garbage`]). The lines were saved in `.removed`
/// before the swap ([`write_removed`]): a pack killed here leaves them for the next one
/// ([`finish_earlier`]); the file is removed once they are all done.
pub fn apply(dir: &Path, removed: &[u8], keep_old: bool, stop: u64) -> Result<BlobStats> {
    let layout = layout(dir)?;
    let old = old_of(dir);
    let mut stats = BlobStats::default();
    if keep_old {
        fs::create_dir(&old).map_err(io_err(&old))?;
        let marker = dir.join(".layout");
        if marker.exists() {
            link_or_copy(&marker, &old.join(".layout"))?;
        }
    }
    let move_or_remove = |p: &Path, stats: &mut BlobStats| -> Result<()> {
        count_files(p, stats);
        if keep_old {
            let rel = p
                .strip_prefix(dir)
                .expect("paths are built under the blob dir");
            let dest = old.join(rel);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            fs::rename(p, &dest).map_err(io_err(p))
        } else if p.is_dir() {
            fs::remove_dir_all(p).map_err(io_err(p))
        } else {
            fs::remove_file(p).map_err(io_err(p))
        }
    };
    for line in parse_lines(dir, removed)? {
        for p in garbage(dir, layout, line, stop)? {
            if !p.exists() {
                continue;
            }
            move_or_remove(&p, &mut stats)?;
            prune(dir, p);
        }
    }
    let rp = dir.join(".removed");
    fs::remove_file(&rp).map_err(io_err(&rp))?;
    if keep_old {
        link_tree(dir, dir, &old)?;
    }
    Ok(stats)
}

fn link_tree(root: &Path, cur: &Path, old: &Path) -> Result<()> {
    let rd = fs::read_dir(cur).map_err(io_err(cur))?;
    for e in rd {
        let e = e.map_err(io_err(cur))?;
        let p = e.path();
        let ft = e.file_type().map_err(io_err(&p))?;
        if ft.is_dir() {
            link_tree(root, &p, old)?;
        } else if p.extension().is_some_and(|x| x == "blob") {
            let rel = p.strip_prefix(root).expect("walked under root");
            let dest = old.join(rel);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            if !dest.exists() {
                link_or_copy(&p, &dest)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_an_oid_or_an_oid_and_a_tid_and_nothing_else_parses() {
        assert!(matches!(
            parse_line("00000000000000ff"),
            Some(Line::Oid(0xff))
        ));
        assert!(matches!(
            parse_line(" 000000000000000103f58e0001000000\r"),
            Some(Line::Revision(1, 0x03f5_8e00_0100_0000))
        ));
        // Cut short, too long, not hex, and 32 bytes with a character across the middle
        // (what a damaged list gives through lossy UTF-8): refused, never a panic.
        for bad in [
            "00000000000000",
            "00000000000000ff0",
            "0000000000000g01",
            "000000000000000\u{fffd}00000000000000",
        ] {
            assert!(parse_line(bad).is_none(), "{bad:?}");
        }
        assert_eq!("000000000000000\u{fffd}00000000000000".len(), 32);
    }
}
