//! A paired restore: the Data.fs state and the blob tree that goes with it, both restored
//! into temporaries beside their targets and switched only once both are complete; and
//! the restore drill, which restores into a scratch directory, checks the result and
//! removes it.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use zfs_files::{with_suffix, NewDir};
use zfs_format::blob::Layout;
use zfs_repozo::repo;
use zfs_repozo::Stamp;

use crate::consistency::{self, BlobCheck};
use crate::error::{Error, Result};
use crate::names::{self, BlobTree};
use crate::records::blob_records_of_file;
use crate::tree::{self, Source};
use crate::{Hooks, Stop};

/// What to restore, and where.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// The repozo repository.
    pub repository: String,
    /// The state as of this date (`yyyy-mm-dd[-hh[-mm[-ss]]]`, UTC); `None`: the newest.
    pub date: Option<String>,
    /// The Data.fs to write (its `.index` goes beside it).
    pub output: PathBuf,
    /// The blob backup directory.
    pub blob_backups: PathBuf,
    /// The blob directory to write.
    pub blobs_to: PathBuf,
    /// Check every repozo file's size and checksum against the `.dat` while restoring.
    pub with_verify: bool,
    /// The clock; `None` reads the system clock.
    pub now: Option<Stamp>,
}

/// The two halves a restore takes.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// The stamp of the Data.fs state (its newest repozo file).
    pub state: String,
    /// The repozo files of the state, oldest first.
    pub chain: Vec<String>,
    /// The blob tree.
    pub tree: PathBuf,
    /// The tree's stamp.
    pub tree_stamp: String,
    /// The blob directory copy inside the tree.
    #[serde(skip)]
    pub tree_dir: PathBuf,
}

impl Plan {
    /// True when the tree has the state's own stamp (else it is the newest older one).
    pub fn exact(&self) -> bool {
        self.tree_stamp == self.state
    }
}

/// Picks the Data.fs state and its blob tree, refusing when either is missing.
pub fn plan(opts: &RestoreOptions) -> Result<Plan> {
    let when = match opts.date.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => d.to_string(),
        None => zfs_repozo::current_when(&opts.repository, opts.now.unwrap_or_else(Stamp::now))?,
    };
    let chain = repo::find_files(&opts.repository, &when)?;
    let Some(last) = chain.last() else {
        return Err(Error::NoDataFsBackup {
            repository: opts.repository.clone(),
            date: opts.date.clone(),
        });
    };
    let state = last.root().to_string();
    let want = names::dir_name(&opts.blobs_to)?;
    let tree: BlobTree = names::trees_of(&opts.blob_backups, &want)?
        .into_iter()
        .rev()
        .find(|t| t.stamp <= state)
        .ok_or_else(|| Error::NoBlobBackup {
            dir: opts.blob_backups.clone(),
            stamp: state.clone(),
        })?;
    let tree_dir = tree.blob_dir(&want)?;
    Ok(Plan {
        state,
        chain: chain.iter().map(|c| c.path.clone()).collect(),
        tree: tree.path,
        tree_stamp: tree.stamp,
        tree_dir,
    })
}

/// The result of a restore.
#[derive(Clone, Debug, Serialize)]
pub struct RestoreReport {
    /// What was restored.
    pub plan: Plan,
    /// Bytes of the Data.fs.
    pub datafs_bytes: u64,
    /// Whether a `.index` was restored beside it.
    pub index: bool,
    /// Files of the blob directory.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Files cloned by the file system (reflink) instead of copied.
    pub reflinked: u64,
    /// The restored blob directory checked against the restored Data.fs.
    pub check: BlobCheck,
    /// Whether an existing Data.fs was replaced.
    pub replaced_datafs: bool,
    /// Whether an existing blob directory was replaced.
    pub replaced_blobs: bool,
    /// Seconds the restore took, until both halves were in place.
    pub seconds: f64,
}

/// Removes a restored Data.fs and its index unless disarmed.
struct TempDataFs {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempDataFs {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_file(with_suffix(&self.path, ".index"));
        }
    }
}

/// Restores both halves and switches them into place together.
pub fn restore(opts: &RestoreOptions, hooks: &Hooks<'_>) -> Result<RestoreReport> {
    let t0 = Instant::now();
    let _lock = crate::lock_dir(&opts.blob_backups, false, hooks)?;
    let plan = plan(opts)?;
    let lock_file = with_suffix(&opts.output, ".lock");
    if zfs_files::is_held(&lock_file)? {
        return Err(Error::DatabaseOpen { path: lock_file });
    }
    let stop = Stop::of(hooks);
    for p in [&opts.output, &opts.blobs_to] {
        let dir = zfs_files::parent_dir(p);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::io("creating", &dir, e))?;
    }

    // The Data.fs, into a temporary beside its target.
    let out_dir = zfs_files::parent_dir(&opts.output);
    let out_name = opts
        .output
        .file_name()
        .ok_or_else(|| Error::Usage(format!("'{}' is no file name", opts.output.display())))?;
    zfs_files::remove_stale_temps(&out_dir, out_name);
    let tmp = TempDataFs {
        path: out_dir.join(zfs_files::temp_name(out_name)),
        armed: true,
    };
    let r = zfs_repozo::restore::restore(
        &zfs_repozo::restore::RestoreOptions {
            repository: opts.repository.clone(),
            date: Some(plan.state.clone()),
            output: Some(tmp.path.clone()),
            with_verify: opts.with_verify,
            now: opts.now,
            ..Default::default()
        },
        hooks,
        &mut std::io::sink(),
    )?;

    // The blob directory, into a temporary beside its target.
    let newdir = NewDir::create_replacing(&opts.blobs_to)?;
    let tree_meta =
        std::fs::metadata(&plan.tree_dir).map_err(|e| Error::io("reading", &plan.tree_dir, e))?;
    stop.start("restoring blobs", 0, "files");
    let m = tree::mirror(&plan.tree_dir, newdir.path(), Source::Copy, &stop)?;
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::lchown(newdir.path(), Some(tree_meta.uid()), Some(tree_meta.gid()))
            .map_err(|e| Error::io("setting the owner of", newdir.path(), e))?;
    }
    let layout =
        Layout::of_dir(newdir.path()).map_err(|e| Error::io("reading", newdir.path(), e))?;
    stop.start_bytes("checking blobs", r.bytes);
    let records = blob_records_of_file(&tmp.path, &stop)?;
    let check = consistency::check(&records, layout, &m.files, None);
    stop.check()?;

    // Both complete: switch them.
    let replaced_datafs = std::fs::symlink_metadata(&opts.output).is_ok();
    let old_blobs = newdir.commit_exchange(tree_meta.mode())?;
    if let Err(e) = std::fs::rename(&tmp.path, &opts.output) {
        if let Some(old) = &old_blobs {
            let _ = zfs_files::exchange(old, &opts.blobs_to);
            let _ = std::fs::remove_dir_all(old);
        }
        return Err(Error::io("renaming to", &opts.output, e));
    }
    let mut tmp = tmp;
    let index = with_suffix(&opts.output, ".index");
    let tmp_index = with_suffix(&tmp.path, ".index");
    let has_index = tmp_index.exists();
    if has_index {
        std::fs::rename(&tmp_index, &index).map_err(|e| Error::io("renaming to", &index, e))?;
    } else {
        // An old index beside the new data would describe another file.
        let _ = std::fs::remove_file(&index);
    }
    tmp.armed = false;
    zfs_files::sync_dir(&out_dir).map_err(|e| Error::io("syncing", &out_dir, e))?;
    let replaced_blobs = old_blobs.is_some();
    if let Some(old) = old_blobs {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io("removing", &old, e))?;
    }
    Ok(RestoreReport {
        datafs_bytes: r.bytes,
        index: has_index,
        files: m.files.len() as u64,
        bytes: m.files.iter().map(|f| f.size).sum(),
        reflinked: m.reflinked,
        check,
        replaced_datafs,
        replaced_blobs,
        seconds: t0.elapsed().as_secs_f64(),
        plan,
    })
}

/// What a drill restores, and where.
#[derive(Clone, Debug, Default)]
pub struct DrillOptions {
    /// The repozo repository.
    pub repository: String,
    /// The state as of this date; `None`: the newest.
    pub date: Option<String>,
    /// The blob backup directory; `None`: the Data.fs only.
    pub blob_backups: Option<PathBuf>,
    /// The blob directory's name (default: the name in the newest tree).
    pub blob_name: Option<String>,
    /// Where the scratch directory is made.
    pub scratch: PathBuf,
}

/// The Data.fs check of a drill.
#[derive(Clone, Debug, Serialize)]
pub struct DatafsCheck {
    /// Transactions read.
    pub transactions: u64,
    /// Data records read.
    pub records: u64,
    /// Whether the restored `.index` was compared with the file.
    pub index_checked: bool,
    /// Problems found (the first 20).
    pub findings: Vec<String>,
    /// Number of problems.
    pub finding_count: usize,
}

/// The result of a drill.
#[derive(Clone, Debug, Serialize)]
pub struct DrillReport {
    /// The stamp of the state restored.
    pub state: String,
    /// The blob tree restored with it, if blobs were drilled.
    pub tree: Option<PathBuf>,
    /// Bytes of the Data.fs.
    pub datafs_bytes: u64,
    /// Files and bytes of the blob directory.
    pub blob_files: u64,
    /// Bytes of the blob directory.
    pub blob_bytes: u64,
    /// Seconds the restore took (what a real restore of this point takes here).
    pub restore_seconds: f64,
    /// Seconds the checks took.
    pub check_seconds: f64,
    /// `zodbfs check` on the restored Data.fs.
    pub datafs_check: DatafsCheck,
    /// The blob check, if blobs were drilled.
    pub blob_check: Option<BlobCheck>,
}

impl DrillReport {
    /// True when both checks found nothing wrong.
    pub fn is_ok(&self) -> bool {
        self.datafs_check.finding_count == 0
            && self.blob_check.as_ref().is_none_or(BlobCheck::is_ok)
    }
}

/// Restores a point into a scratch directory, checks it and removes it.
pub fn drill(opts: &DrillOptions, hooks: &Hooks<'_>) -> Result<DrillReport> {
    let scratch = NewDir::create_replacing(opts.scratch.join("zodbfs-drill"))?;
    let output = scratch.path().join("Data.fs");
    let (state, tree, datafs_bytes, blob_files, blob_bytes, blob_check, restore_seconds) =
        match &opts.blob_backups {
            Some(bb) => {
                let name = match &opts.blob_name {
                    Some(n) => n.clone(),
                    None => names::trees(bb)?
                        .last()
                        .map(|t| t.prefix.clone())
                        .ok_or_else(|| Error::NoBlobBackup {
                            dir: bb.clone(),
                            stamp: "now".into(),
                        })?,
                };
                let r = restore(
                    &RestoreOptions {
                        repository: opts.repository.clone(),
                        date: opts.date.clone(),
                        output: output.clone(),
                        blob_backups: bb.clone(),
                        blobs_to: scratch.path().join(&name),
                        with_verify: true,
                        now: None,
                    },
                    hooks,
                )?;
                (
                    r.plan.state.clone(),
                    Some(r.plan.tree.clone()),
                    r.datafs_bytes,
                    r.files,
                    r.bytes,
                    Some(r.check),
                    r.seconds,
                )
            }
            None => {
                let t0 = Instant::now();
                let r = zfs_repozo::restore::restore(
                    &zfs_repozo::restore::RestoreOptions {
                        repository: opts.repository.clone(),
                        date: opts.date.clone(),
                        output: Some(output.clone()),
                        with_verify: true,
                        now: None,
                        ..Default::default()
                    },
                    hooks,
                    &mut std::io::sink(),
                )?;
                let state = r
                    .chain
                    .last()
                    .map(|p| {
                        zfs_repozo::names::strip_ext(zfs_repozo::names::basename(p)).to_string()
                    })
                    .unwrap_or_default();
                (state, None, r.bytes, 0, 0, None, t0.elapsed().as_secs_f64())
            }
        };
    let t1 = Instant::now();
    let datafs_check = check_datafs(&output, hooks)?;
    Ok(DrillReport {
        state,
        tree,
        datafs_bytes,
        blob_files,
        blob_bytes,
        restore_seconds,
        check_seconds: t1.elapsed().as_secs_f64(),
        datafs_check,
        blob_check,
    })
}

/// `zodbfs check` of a restored Data.fs, with its restored index.
fn check_datafs(path: &Path, hooks: &Hooks<'_>) -> Result<DatafsCheck> {
    let fs = zfs_format::FileStorage::open(path).map_err(|source| Error::Format {
        path: path.to_path_buf(),
        source,
    })?;
    let index = std::fs::read(with_suffix(path, ".index")).ok();
    let report = zfs_check::check::check(
        fs.bytes(),
        &zfs_check::check::Options {
            quick: false,
            index: index.as_deref(),
        },
        hooks.progress,
    );
    Ok(DatafsCheck {
        transactions: report.transactions,
        records: report.records,
        index_checked: report.index_checked,
        finding_count: report.findings.len(),
        findings: report
            .findings
            .iter()
            .take(20)
            .map(|f| format!("offset {}: {}", f.offset, f.message))
            .collect(),
    })
}
