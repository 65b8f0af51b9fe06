//! Verify a site's backups: repozo's verify of the newest Data.fs chain, and the blob trees
//! checked against the blob records of their Data.fs states (from the tree's manifest, or,
//! for a tree another tool made, from the state restored into a temporary file).

use std::path::{Path, PathBuf};

use serde::Serialize;
use zfs_format::blob::Layout;
use zfs_format::FileStorage;

use crate::checked::Checked;
use crate::consistency::{self, BlobCheck};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::names::{self, BlobTree};
use crate::records::blob_records;
use crate::tree;
use crate::{Hooks, Stop};

/// What to verify.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// The repozo repository.
    pub repository: String,
    /// Sizes only for the repozo files (no checksums).
    pub quick: bool,
    /// The blob backup directory.
    pub blob_backups: PathBuf,
    /// The blob directory's name, when several share the backup directory.
    pub blob_name: Option<String>,
    /// Every tree, not only the newest.
    pub all: bool,
}

/// The check of one tree.
#[derive(Clone, Debug, Serialize)]
pub struct TreeVerify {
    /// The tree's name.
    pub tree: String,
    /// Where the blob records came from: `manifest` or `restored Data.fs`.
    pub records_from: &'static str,
    /// The check.
    pub check: BlobCheck,
}

/// The result of a verify.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// The repozo files of the newest chain that were verified (path, size).
    pub datafs_files: Vec<(String, u64)>,
    /// What repozo's verify found wrong, if anything.
    pub datafs_problem: Option<String>,
    /// The trees checked.
    pub trees: Vec<TreeVerify>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.datafs_problem.is_none() && self.trees.iter().all(|t| t.check.is_ok())
    }
}

/// Verifies the repository and the trees.
pub fn verify(opts: &VerifyOptions, hooks: &Hooks<'_>) -> Result<VerifyReport> {
    let mut report = VerifyReport {
        datafs_files: Vec::new(),
        datafs_problem: None,
        trees: Vec::new(),
    };
    match zfs_repozo::verify::verify(
        &zfs_repozo::verify::VerifyOptions {
            repository: opts.repository.clone(),
            quick: opts.quick,
            now: None,
            ..Default::default()
        },
        hooks,
    ) {
        Ok(files) => report.datafs_files = files.into_iter().map(|f| (f.path, f.size)).collect(),
        Err(
            e @ (zfs_repozo::Error::Missing(_)
            | zfs_repozo::Error::WrongSize { .. }
            | zfs_repozo::Error::Unreadable { .. }
            | zfs_repozo::Error::WrongChecksum { .. }
            | zfs_repozo::Error::BadGzip { .. }
            | zfs_repozo::Error::BadDatLine { .. }),
        ) => report.datafs_problem = Some(e.to_string()),
        Err(e) => return Err(e.into()),
    }
    let _lock = crate::lock_dir(&opts.blob_backups, false, hooks)?;
    let trees = match &opts.blob_name {
        Some(n) => names::trees_of(&opts.blob_backups, n)?,
        None => {
            let all = names::trees(&opts.blob_backups)?;
            match all.last() {
                Some(t) => names::trees_of(&opts.blob_backups, &t.prefix.clone())?,
                None => all,
            }
        }
    };
    let chosen: Vec<&BlobTree> = if opts.all {
        trees.iter().collect()
    } else {
        trees.last().into_iter().collect()
    };
    for t in chosen {
        let v = verify_tree(opts, t, hooks)?;
        Checked::of(&v.check, "verify").write(&t.path)?;
        report.trees.push(v);
    }
    Ok(report)
}

/// Checks one tree.
pub fn verify_tree(opts: &VerifyOptions, t: &BlobTree, hooks: &Hooks<'_>) -> Result<TreeVerify> {
    let stop = Stop::of(hooks);
    let dir = t.blob_dir(opts.blob_name.as_deref().unwrap_or(&t.prefix))?;
    stop.start(&format!("checking {}", t.name), 0, "files");
    let walked = tree::walk(&dir, &stop)?;
    let layout = Layout::of_dir(&dir).map_err(|e| Error::io("reading", &dir, e))?;
    let manifest = Manifest::read(&t.path)?.filter(|m| m.datafs_end > 0);
    let (records, expected, from) = match manifest {
        Some(m) => (m.records.clone(), Some(tree::by_path(&m.files)), "manifest"),
        None => (
            restored_records(&opts.repository, &opts.blob_backups, &t.stamp, hooks)?,
            None,
            "restored Data.fs",
        ),
    };
    Ok(TreeVerify {
        tree: t.name.clone(),
        records_from: from,
        check: consistency::check(&records, layout, &walked.files, expected.as_ref()),
    })
}

/// The blob records of the Data.fs state at `stamp`, restored into a temporary file in
/// `scratch` (removed before returning).
fn restored_records(
    repository: &str,
    scratch: &Path,
    stamp: &str,
    hooks: &Hooks<'_>,
) -> Result<Vec<(zfs_format::Oid, zfs_format::Tid)>> {
    let mut out = zfs_files::OutputSpec::new(scratch.join(".zodbfs-verify.fs")).create()?;
    zfs_repozo::restore::restore(
        &zfs_repozo::restore::RestoreOptions {
            repository: repository.to_string(),
            date: Some(stamp.to_string()),
            output: None,
            with_verify: false,
            now: None,
            ..Default::default()
        },
        hooks,
        &mut out,
    )?;
    let path = out.temp_path().to_path_buf();
    let file = out
        .file()
        .try_clone()
        .map_err(|e| Error::io("reading", &path, e))?;
    let fs = FileStorage::open_file(file, &path).map_err(|source| Error::Format {
        path: path.clone(),
        source,
    })?;
    let stop = Stop::of(hooks);
    blob_records(&fs, zfs_format::FIRST_TXN, u64::MAX, &stop)
}
