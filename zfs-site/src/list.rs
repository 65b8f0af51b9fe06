//! Every restorable point of a site: each repozo data file is a Data.fs state; with it goes
//! the blob tree of its stamp (or the newest older one).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use zfs_repozo::names::parse_data_name;
use zfs_repozo::repo;

use crate::checked::Checked;
use crate::error::Result;
use crate::manifest::Manifest;
use crate::names::{self, BlobTree};
use crate::tree;
use crate::{Hooks, Stop};

/// One point a restore can return to.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    /// Its stamp (what `restore -D` takes).
    pub stamp: String,
    /// The repozo data file that ends its chain.
    pub file: String,
    /// `full` or `incremental`.
    pub kind: &'static str,
    /// Whether the file is gzipped.
    pub gzip: bool,
    /// The size of the Data.fs it restores, from the `.dat`.
    pub datafs_size: Option<u64>,
    /// The blob tree that goes with it.
    pub tree: Option<String>,
    /// Whether the tree has the point's own stamp (else it is the newest older one).
    pub tree_exact: bool,
    /// Files in the tree's blob directory copy.
    pub blob_files: Option<u64>,
    /// Their bytes.
    pub blob_bytes: Option<u64>,
    /// The tree's last consistency check.
    pub checked: Option<Checked>,
    /// Both halves are there (the chain complete per its `.dat`, a tree when blobs are
    /// backed up).
    pub restorable: bool,
    /// Why not, when not.
    pub problem: Option<String>,
}

/// The points of a site, oldest first, and the trees no point has.
#[derive(Clone, Debug, Serialize)]
pub struct Listing {
    /// The repozo repository.
    pub repository: String,
    /// The blob backup directory, if blobs are listed.
    pub blob_backups: Option<PathBuf>,
    /// Every point, oldest first.
    pub points: Vec<Point>,
    /// Trees whose stamp no repozo data file has.
    pub orphan_trees: Vec<String>,
}

/// Why the chain ending in `name` cannot be restored, if it cannot; and the Data.fs size.
pub(crate) fn chain_state(
    repository: &str,
    root: &str,
    name: &str,
) -> (Option<u64>, Option<String>) {
    let chain = match repo::find_files(repository, root) {
        Ok(c) => c,
        Err(e) => return (None, Some(e.to_string())),
    };
    if chain.last().is_none_or(|c| c.name != name) {
        return (None, Some("another file has the same stamp".into()));
    }
    if !chain[0].kind.is_full() {
        return (None, Some("no full backup before it".into()));
    }
    let dat = repo::dat_path_of(&chain[0]);
    let lines = match repo::read_dat(&dat) {
        Ok(Some(l)) => l,
        Ok(None) => return (None, Some(format!("{dat} is missing"))),
        Err(e) => return (None, Some(e.to_string())),
    };
    let mut next = 0;
    for c in &chain {
        match lines.iter().find(|l| l.basename() == c.name) {
            Some(l) if l.start == next => next = l.end,
            Some(_) => {
                return (
                    None,
                    Some(format!("{} does not follow the file before it", c.name)),
                )
            }
            None => return (None, Some(format!("{} has no line in {dat}", c.name))),
        }
    }
    (Some(next), None)
}

/// Counts of a tree: from its manifest, else by walking it.
pub(crate) fn tree_counts(t: &BlobTree, want: &str, stop: &Stop<'_>) -> Option<(u64, u64)> {
    if let Ok(Some(m)) = Manifest::read(&t.path) {
        return Some((m.files.len() as u64, m.bytes()));
    }
    let dir = t.blob_dir(want).ok()?;
    let w = tree::walk(&dir, stop).ok()?;
    Some((w.files.len() as u64, w.files.iter().map(|f| f.size).sum()))
}

/// Lists the points of the repository (with their trees, when `blob_backups` is given;
/// `blob_name` picks the blob directory when several share the directory).
pub fn list(
    repository: &str,
    blob_backups: Option<&Path>,
    blob_name: Option<&str>,
    hooks: &Hooks<'_>,
) -> Result<Listing> {
    let stop = Stop::of(hooks);
    let _lock = match blob_backups {
        Some(b) if b.is_dir() => Some(crate::lock_dir(b, false, hooks)?),
        _ => None,
    };
    let trees = match blob_backups {
        Some(b) => match blob_name {
            Some(n) => names::trees_of(b, n)?,
            None => {
                let all = names::trees(b)?;
                match all.last() {
                    Some(t) => names::trees_of(b, &t.prefix.clone())?,
                    None => all,
                }
            }
        },
        None => Vec::new(),
    };
    let files = repo::data_files(repository)?;
    let mut counts: HashMap<String, Option<(u64, u64)>> = HashMap::new();
    let mut points = Vec::new();
    for name in &files {
        let Some((root, kind)) = parse_data_name(name) else {
            continue;
        };
        let (datafs_size, mut problem) = chain_state(repository, root, name);
        let tree = trees.iter().rev().find(|t| t.stamp.as_str() <= root);
        if blob_backups.is_some() && tree.is_none() && problem.is_none() {
            problem = Some("no blob backup at or before it".into());
        }
        let c = tree.and_then(|t| {
            *counts
                .entry(t.name.clone())
                .or_insert_with(|| tree_counts(t, &t.prefix, &stop))
        });
        points.push(Point {
            stamp: root.to_string(),
            file: name.clone(),
            kind: if kind.is_full() {
                "full"
            } else {
                "incremental"
            },
            gzip: kind.is_gzip(),
            datafs_size,
            tree: tree.map(|t| t.name.clone()),
            tree_exact: tree.is_some_and(|t| t.stamp == root),
            blob_files: c.map(|c| c.0),
            blob_bytes: c.map(|c| c.1),
            checked: tree.and_then(|t| Checked::read(&t.path)),
            restorable: problem.is_none(),
            problem,
        });
    }
    let stamps: std::collections::HashSet<&str> = files
        .iter()
        .filter_map(|n| parse_data_name(n).map(|(r, _)| r))
        .collect();
    let orphan_trees = trees
        .iter()
        .filter(|t| !stamps.contains(t.stamp.as_str()))
        .map(|t| t.name.clone())
        .collect();
    Ok(Listing {
        repository: repository.to_string(),
        blob_backups: blob_backups.map(Path::to_path_buf),
        points,
        orphan_trees,
    })
}
