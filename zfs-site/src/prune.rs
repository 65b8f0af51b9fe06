//! Retention: keep the newest N full backups with their incrementals and blob trees (and
//! optionally every chain with a point in the last days), remove the older ones. Chains
//! are ordered by the stamps in their names, never by file times (which copies rewrite);
//! the newest chain is never removed, and no tree that a kept point restores with.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use zfs_repozo::names::{join, parse_data_name, strip_ext};
use zfs_repozo::{repo, Stamp};

use crate::error::{Error, Result};
use crate::names::{self, BlobTree};
use crate::{Hooks, Stop};

/// What to keep.
#[derive(Clone, Debug, Default)]
pub struct PruneOptions {
    /// The repozo repository.
    pub repository: String,
    /// The blob backup directory, if blobs are backed up.
    pub blob_backups: Option<PathBuf>,
    /// The blob directory's name, when several share the backup directory.
    pub blob_name: Option<String>,
    /// Full backups (chains) to keep, at least 1.
    pub keep: usize,
    /// Also keep every chain with a point younger than this many days.
    pub keep_days: Option<u64>,
    /// The clock for `keep_days`; `None` reads the system clock.
    pub now: Option<Stamp>,
}

/// One thing removed (or, in a dry run, to be removed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Removal {
    /// Its path.
    pub path: PathBuf,
    /// `data file`, `index`, `dat` or `blob tree`.
    pub kind: &'static str,
    /// Disk space it frees (allocated blocks; for a tree, only files with no link kept
    /// elsewhere).
    pub bytes: u64,
}

/// What a prune removes.
#[derive(Clone, Debug, Serialize)]
pub struct PrunePlan {
    /// Stamps of the full backups kept.
    pub kept: Vec<String>,
    /// Stamps of the full backups removed.
    pub removed_chains: Vec<String>,
    /// Everything removed, in the order it is removed.
    pub removals: Vec<Removal>,
    /// Total disk space freed.
    pub bytes_freed: u64,
    /// Trees whose stamp no data file has, kept because their chain is kept.
    pub orphan_trees_kept: Vec<String>,
}

/// A chain: a full backup and its incrementals (or incrementals before any full).
struct Chain {
    start: String,
    files: Vec<String>,
    newest: String,
}

fn chains(repository: &str) -> Result<Vec<Chain>> {
    let mut out: Vec<Chain> = Vec::new();
    for name in repo::data_files(repository)? {
        let Some((root, kind)) = parse_data_name(&name) else {
            continue;
        };
        let root = root.to_string();
        match out.last_mut() {
            Some(c) if !kind.is_full() => {
                c.newest = root;
                c.files.push(name);
            }
            _ => out.push(Chain {
                start: root.clone(),
                newest: root,
                files: vec![name],
            }),
        }
    }
    Ok(out)
}

fn allocated(m: &std::fs::Metadata) -> u64 {
    m.blocks() * 512
}

/// Disk space freed by removing `trees` together: a file's blocks count once all its
/// links are among them.
fn trees_bytes(trees: &[&BlobTree]) -> Result<Vec<u64>> {
    let mut seen: HashMap<(u64, u64), (u64, u64, u64)> = HashMap::new(); // (count, nlink, bytes)
    let mut per_tree: Vec<(u64, Vec<(u64, u64)>)> = Vec::new();
    for t in trees {
        let mut dirs = 0;
        let mut inodes = Vec::new();
        let mut stack = vec![t.path.clone()];
        while let Some(d) = stack.pop() {
            let m = std::fs::symlink_metadata(&d).map_err(|e| Error::io("reading", &d, e))?;
            dirs += allocated(&m);
            for e in std::fs::read_dir(&d).map_err(|e| Error::io("reading", &d, e))? {
                let e = e.map_err(|e| Error::io("reading", &d, e))?;
                let ft = e
                    .file_type()
                    .map_err(|err| Error::io("reading", e.path(), err))?;
                if ft.is_dir() {
                    stack.push(e.path());
                    continue;
                }
                let m = e
                    .metadata()
                    .map_err(|err| Error::io("reading", e.path(), err))?;
                let id = (m.dev(), m.ino());
                let s = seen.entry(id).or_insert((0, m.nlink(), allocated(&m)));
                s.0 += 1;
                inodes.push(id);
            }
        }
        per_tree.push((dirs, inodes));
    }
    // A file shared by several removed trees is counted in the first of them.
    let mut counted: HashSet<(u64, u64)> = HashSet::new();
    Ok(per_tree
        .into_iter()
        .map(|(dirs, inodes)| {
            dirs + inodes
                .into_iter()
                .filter(|id| {
                    let (count, nlink, _) = seen[id];
                    count >= nlink && counted.insert(*id)
                })
                .map(|id| seen[&id].2)
                .sum::<u64>()
        })
        .collect())
}

/// Works out what a prune removes, touching nothing.
pub fn plan(opts: &PruneOptions) -> Result<PrunePlan> {
    if opts.keep == 0 {
        return Err(Error::Usage(
            "--keep must be at least 1 (the newest full backup is always kept)".into(),
        ));
    }
    let chains = chains(&opts.repository)?;
    let n = chains.len();
    let mut first_kept = n.saturating_sub(opts.keep);
    if let Some(days) = opts.keep_days {
        let now = opts.now.unwrap_or_else(Stamp::now);
        let limit = Stamp {
            secs: now
                .secs
                .saturating_sub(i64::try_from(days.saturating_mul(86_400)).unwrap_or(i64::MAX)),
        }
        .format();
        while first_kept > 0 && chains[first_kept - 1].newest >= limit {
            first_kept -= 1;
        }
    }
    let (removed, kept) = chains.split_at(first_kept);
    let mut removals = Vec::new();
    let repo_path = |name: &str| PathBuf::from(join(&opts.repository, name));
    let size_of = |p: &Path| std::fs::symlink_metadata(p).map(|m| allocated(&m)).ok();
    for c in removed {
        // Newest first, so an interrupted prune leaves a chain that still starts with its
        // full backup.
        for name in c.files.iter().rev() {
            let p = repo_path(name);
            if let Some(bytes) = size_of(&p) {
                removals.push(Removal {
                    path: p,
                    kind: "data file",
                    bytes,
                });
            }
            let idx = repo_path(&format!("{}.index", strip_ext(name)));
            if let Some(bytes) = size_of(&idx) {
                removals.push(Removal {
                    path: idx,
                    kind: "index",
                    bytes,
                });
            }
        }
        let dat = repo_path(&format!("{}.dat", c.start));
        if let Some(bytes) = size_of(&dat) {
            removals.push(Removal {
                path: dat,
                kind: "dat",
                bytes,
            });
        }
    }
    let mut orphan_trees_kept = Vec::new();
    if let Some(bb) = &opts.blob_backups {
        let trees = match &opts.blob_name {
            Some(n) => names::trees_of(bb, n)?,
            None => names::trees(bb)?,
        };
        let cutoff = kept.first().map(|c| c.start.clone());
        let kept_points: Vec<String> = kept
            .iter()
            .flat_map(|c| c.files.iter().map(|f| strip_ext(f).to_string()))
            .collect();
        let protected: HashSet<&str> = kept_points
            .iter()
            .filter_map(|p| {
                trees
                    .iter()
                    .rev()
                    .find(|t| t.stamp <= *p)
                    .map(|t| t.name.as_str())
            })
            .collect();
        let all_points: HashSet<String> = chains
            .iter()
            .flat_map(|c| c.files.iter().map(|f| strip_ext(f).to_string()))
            .collect();
        let mut going = Vec::new();
        for t in &trees {
            let older = cutoff.as_ref().is_some_and(|c| t.stamp < *c);
            if older && !protected.contains(t.name.as_str()) {
                going.push(t);
            } else if !all_points.contains(&t.stamp) {
                orphan_trees_kept.push(t.name.clone());
            }
        }
        for (t, bytes) in going.iter().zip(trees_bytes(&going)?) {
            removals.push(Removal {
                path: t.path.clone(),
                kind: "blob tree",
                bytes,
            });
        }
    }
    Ok(PrunePlan {
        kept: kept.iter().map(|c| c.start.clone()).collect(),
        removed_chains: removed.iter().map(|c| c.start.clone()).collect(),
        bytes_freed: removals.iter().map(|r| r.bytes).sum(),
        removals,
        orphan_trees_kept,
    })
}

/// Prunes. With `expect`, refuses unless the plan made under the locks removes exactly
/// those paths (what a dry run showed, or what was confirmed).
pub fn prune(
    opts: &PruneOptions,
    expect: Option<&[PathBuf]>,
    hooks: &Hooks<'_>,
) -> Result<PrunePlan> {
    let _repo_lock = repo::lock(
        &opts.repository,
        true,
        repo::DEFAULT_LOCK_WAIT,
        &mut |holder| {
            (hooks.notice)(&format!(
                "the repository {} is locked by {holder}; waiting for it to finish",
                opts.repository
            ))
        },
    )?;
    let _blob_lock = match &opts.blob_backups {
        Some(b) if b.is_dir() => Some(crate::lock_dir(b, true, hooks)?),
        _ => None,
    };
    let plan = plan(opts)?;
    if let Some(want) = expect {
        let got: Vec<&Path> = plan.removals.iter().map(|r| r.path.as_path()).collect();
        if got != want.iter().map(PathBuf::as_path).collect::<Vec<_>>() {
            return Err(Error::Usage(
                "the backups changed since the list of what to remove was made; nothing removed, run again".into(),
            ));
        }
    }
    let stop = Stop::of(hooks);
    stop.start("pruning", plan.removals.len() as u64, "files");
    for r in &plan.removals {
        stop.check()?;
        if r.kind == "blob tree" {
            // Out of sight first: a prune that dies leaves a hidden temporary the next run
            // removes, never half a tree under a listed name.
            let dir = zfs_files::parent_dir(&r.path);
            let name = r.path.file_name().expect("a tree has a name");
            let hidden = dir.join(zfs_files::temp_name(name));
            std::fs::rename(&r.path, &hidden).map_err(|e| Error::io("renaming", &r.path, e))?;
            std::fs::remove_dir_all(&hidden).map_err(|e| Error::io("removing", &hidden, e))?;
        } else {
            std::fs::remove_file(&r.path).map_err(|e| Error::io("removing", &r.path, e))?;
        }
        stop.advance(1);
    }
    repo::sync_dir(&opts.repository);
    if let Some(bb) = &opts.blob_backups {
        let _ = zfs_files::sync_dir(bb);
        let latest = bb.join(names::LATEST);
        let dangling = std::fs::symlink_metadata(&latest).is_ok_and(|m| m.file_type().is_symlink())
            && !latest.exists();
        if dangling {
            let trees = match &opts.blob_name {
                Some(n) => names::trees_of(bb, n)?,
                None => names::trees(bb)?,
            };
            if let Some(t) = trees.last() {
                names::point_latest(bb, &t.name)?;
            }
        }
    }
    Ok(plan)
}
