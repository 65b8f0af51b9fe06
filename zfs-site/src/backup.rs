//! A whole-site backup: repozo's backup of the Data.fs, then the blob tree of the same
//! stamp, then the consistency check of the tree against the blob records of the Data.fs
//! state just backed up.

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::Serialize;
use zfs_files::{FileId, NewDir};
use zfs_format::blob::Layout;
use zfs_format::{FileStorage, Oid, Tid, FIRST_TXN};
use zfs_repozo::backup::Action;
use zfs_repozo::repo::{self, DatLine};

use crate::checked::Checked;
use crate::consistency::{self, BlobCheck};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::names::{self, BlobTree};
use crate::records::blob_records;
use crate::tree::{self, Source};
use crate::{Hooks, Stop};

/// What to back up, and where.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    /// The Data.fs half, as repozo's options (repository, source, full, quick, gzip...).
    pub datafs: zfs_repozo::backup::BackupOptions,
    /// The site's blob directory.
    pub blobs: PathBuf,
    /// Where blob trees go (collective.backup's `blob_backup_location`); made if missing.
    pub blob_backups: PathBuf,
}

/// What the Data.fs half did.
#[derive(Clone, Debug, Serialize)]
pub struct DataFsBackup {
    /// `nothing`, `full` or `incremental`.
    pub action: &'static str,
    /// Why a full backup was made, if one was.
    pub reason: Option<String>,
    /// The new data file, as recorded in the `.dat`.
    pub file: Option<String>,
    /// The byte range of the source it holds.
    pub start: Option<u64>,
    /// End of that range: the size of the Data.fs state backed up.
    pub end: Option<u64>,
    /// Bytes written (compressed size with gzip).
    pub written: u64,
    /// Bytes of the source after damage in its middle that the backup does not hold
    /// (complete transactions follow the damage), counted from `end`.
    pub left_out: Option<u64>,
}

/// What the blob half did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BlobBackup {
    /// The tree's path.
    pub tree: PathBuf,
    /// False when the tree of this stamp existed already (no Data.fs change since).
    pub created: bool,
    /// The tree whose files were linked, if any.
    pub previous: Option<String>,
    /// The blob directory's layout.
    pub layout: &'static str,
    /// Files in the tree.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Directories created.
    pub dirs: u64,
    /// Files hard-linked to the previous tree.
    pub linked: u64,
    /// Files copied.
    pub copied: u64,
    /// Bytes copied.
    pub copied_bytes: u64,
    /// Of those, files cloned by the file system (reflink).
    pub reflinked: u64,
    /// Files removed from the blob directory while it was copied (by a pack).
    pub vanished: Vec<String>,
    /// Entries not copied (neither files, directories nor symlinks).
    pub skipped: Vec<String>,
    /// Where the blob record scan started: a previous tree's records were reused up to it.
    pub records_from: u64,
}

/// The result of a site backup.
#[derive(Clone, Debug, Serialize)]
pub struct BackupReport {
    /// The Data.fs half.
    pub datafs: DataFsBackup,
    /// The stamp both halves carry.
    pub stamp: String,
    /// The blob half.
    pub blobs: BlobBackup,
    /// The consistency check of the new tree (`None` when it could not be made; see
    /// `notices`).
    pub check: Option<BlobCheck>,
    /// Things worth telling (the check skipped, `latest` not updated...).
    pub notices: Vec<String>,
}

/// The repozo stamp of the newest data file in `repository`.
pub fn newest_stamp(repository: &str) -> Result<Option<String>> {
    Ok(repo::data_files(repository)?
        .last()
        .map(|n| zfs_repozo::names::strip_ext(n).to_string()))
}

/// The `.dat` lines of the chain whose newest file has `stamp`, and that chain's full
/// backup's stamp.
fn chain_lines(repository: &str, stamp: &str) -> Result<Option<(String, Vec<DatLine>, u64)>> {
    let chain = repo::find_files(repository, stamp)?;
    let (Some(first), Some(last)) = (chain.first(), chain.last()) else {
        return Ok(None);
    };
    let Some(lines) = repo::read_dat(&repo::dat_path_of(first))? else {
        return Ok(None);
    };
    let Some(end) = lines
        .iter()
        .find(|l| l.basename() == last.name)
        .map(|l| l.end)
    else {
        return Ok(None);
    };
    Ok(Some((first.root().to_string(), lines, end)))
}

/// Runs a site backup.
pub fn backup(opts: &BackupOptions, hooks: &Hooks<'_>) -> Result<BackupReport> {
    let blobs = &opts.blobs;
    if !std::fs::metadata(blobs).is_ok_and(|m| m.is_dir()) {
        return Err(Error::NotBlobDir {
            path: blobs.clone(),
        });
    }
    let prefix = names::dir_name(blobs)?;
    let layout =
        Layout::of_dir(blobs).map_err(|e| Error::io("reading", blobs.join(".layout"), e))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&opts.blob_backups)
        .map_err(|e| Error::io("creating", &opts.blob_backups, e))?;
    let _lock = crate::lock_dir(&opts.blob_backups, true, hooks)?;
    remove_stale(&opts.blob_backups);
    let mut notices = Vec::new();

    // The Data.fs half, with the identity of the source it read.
    let source = Path::new(&opts.datafs.file);
    let before = FileId::of_path(source).map_err(|e| Error::io("reading", source, e))?;
    let r = zfs_repozo::backup::backup(&opts.datafs, hooks)?;
    let datafs = DataFsBackup {
        action: match r.action {
            Action::NothingToDo => "nothing",
            Action::Full => "full",
            Action::Incremental => "incremental",
        },
        reason: r.reason.clone(),
        file: r.data_file.clone(),
        start: r.dat_line.as_ref().map(|l| l.start),
        end: r.dat_line.as_ref().map(|l| l.end),
        written: r.written,
        left_out: r.left_out.map(|l| l.bytes),
    };
    let repository = &opts.datafs.repository;
    let stamp = newest_stamp(repository)?.ok_or_else(|| Error::NoDataFsBackup {
        repository: repository.clone(),
        date: None,
    })?;

    let target = BlobTree::new(&opts.blob_backups, &prefix, &stamp);
    if std::fs::symlink_metadata(&target.path).is_ok() {
        // No Data.fs change since that tree was taken.
        names::point_latest(&opts.blob_backups, &target.name)?;
        return Ok(BackupReport {
            datafs,
            stamp,
            blobs: BlobBackup {
                tree: target.path,
                layout: layout.name(),
                ..BlobBackup::default()
            },
            check: None,
            notices,
        });
    }

    // The tree, linked to the newest earlier one.
    let earlier = names::trees_of(&opts.blob_backups, &prefix)?;
    let previous = earlier.iter().rev().find(|t| t.stamp < stamp).cloned();
    let stop = Stop::of(hooks);
    let prev_files: Option<(PathBuf, HashMap<String, u64>, Option<Manifest>)> = match &previous {
        Some(p) => {
            let m = Manifest::read(&p.path).ok().flatten();
            let root = p.blob_dir(&prefix)?;
            let files = match &m {
                Some(m) => tree::by_path(&m.files),
                None => {
                    stop.start("listing the previous blob backup", 0, "files");
                    tree::by_path(&tree::walk(&root, &stop)?.files)
                }
            };
            Some((root, files, m))
        }
        None => None,
    };
    let newdir = NewDir::create(&target.path)?;
    let inner = newdir.path().join(&prefix);
    let blobs_meta = std::fs::metadata(blobs).map_err(|e| Error::io("reading", blobs, e))?;
    std::fs::DirBuilder::new()
        .mode(blobs_meta.mode() & 0o7777 | 0o700)
        .create(&inner)
        .map_err(|e| Error::io("creating", &inner, e))?;
    stop.start(
        "blob backup",
        prev_files.as_ref().map_or(0, |(_, f, _)| f.len() as u64),
        "files",
    );
    let how = match &prev_files {
        Some((root, files, _)) => Source::LinkFrom {
            root,
            files,
            layout,
        },
        None => Source::Copy,
    };
    let m = tree::mirror(blobs, &inner, how, &stop)?;
    std::fs::set_permissions(&inner, blobs_meta.permissions())
        .map_err(|e| Error::io("setting the mode of", &inner, e))?;

    // The blob records of the Data.fs state, reusing the previous tree's where they are of
    // the same chain.
    let mut records_from = FIRST_TXN;
    let mut check = None;
    let mut records: Vec<(Oid, Tid)> = Vec::new();
    let mut datafs_end = 0;
    match chain_lines(repository, &stamp)? {
        None => notices.push(format!(
            "no .dat line for the newest backup in '{repository}': blob check skipped"
        )),
        Some((full_stamp, lines, end)) => {
            datafs_end = end;
            let base = prev_files
                .as_ref()
                .and_then(|(_, _, m)| m.as_ref())
                .filter(|m| {
                    m.datafs_end > 0
                        && m.datafs_end <= end
                        && m.stamp >= full_stamp
                        && lines.iter().any(|l| l.end == m.datafs_end)
                });
            if let Some(b) = base {
                records = b.records.clone();
                records_from = b.datafs_end;
            }
            match FileStorage::open(source) {
                Ok(fs) if FileId::of_file(fs.file()).ok() == before && fs.len() >= end => {
                    stop.start_bytes("blob records", end.saturating_sub(records_from));
                    let mut new = blob_records(&fs, records_from, end, &stop)?;
                    fs.check_intact().map_err(|e| Error::Format {
                        path: source.to_path_buf(),
                        source: e,
                    })?;
                    records.append(&mut new);
                    check = Some(consistency::check(&records, layout, &m.files, None));
                }
                Ok(_) => {
                    datafs_end = 0;
                    notices.push(format!(
                        "'{}' was replaced or shrank during the backup (a pack?): blob check \
                         skipped; the next backup will be a full one",
                        opts.datafs.file
                    ));
                }
                Err(e) => {
                    return Err(Error::Format {
                        path: source.to_path_buf(),
                        source: e,
                    })
                }
            }
        }
    }
    let manifest = Manifest {
        stamp: stamp.clone(),
        dir: prefix.clone(),
        layout: Some(layout),
        datafs_end: if check.is_some() { datafs_end } else { 0 },
        records: if check.is_some() { records } else { Vec::new() },
        files: m.files,
    };
    manifest.write(newdir.path())?;
    if let Some(c) = &check {
        Checked::of(c, "backup").write(newdir.path())?;
    }
    stop.check()?;
    newdir.commit(blobs_meta.mode())?;
    if let Err(e) = names::point_latest(&opts.blob_backups, &target.name) {
        notices.push(format!("'latest' not updated: {e}"));
    }
    Ok(BackupReport {
        datafs,
        stamp,
        blobs: BlobBackup {
            tree: target.path,
            created: true,
            previous: previous.map(|p| p.name),
            layout: layout.name(),
            files: manifest.files.len() as u64,
            bytes: manifest.bytes(),
            dirs: m.dirs,
            linked: m.linked,
            copied: m.copied,
            copied_bytes: m.copied_bytes,
            reflinked: m.reflinked,
            vanished: m.vanished,
            skipped: m.skipped,
            records_from,
        },
        check,
        notices,
    })
}

/// Removes what runs that died left in the blob backup directory: half-built trees and
/// trees half-removed by a prune (`.NAME.<stamp>.tmp-PID-N`, their process gone).
pub(crate) fn remove_stale(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut targets = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(s) = name.to_str() else { continue };
        if let Some((target, _)) = s.strip_prefix('.').and_then(|r| r.rsplit_once(".tmp-")) {
            targets.push(target.to_string());
        }
    }
    targets.sort();
    targets.dedup();
    for t in targets {
        zfs_files::remove_stale_temp_dirs(dir, std::ffi::OsStr::new(&t));
    }
}
