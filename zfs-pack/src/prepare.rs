//! Saving, ahead of a pack, what its analysis would read the whole file for: the
//! references of every object's current record (`<file>.refs`, see
//! [`zfs_format::refs_file`]).
//!
//! A pack with garbage collection must know what is reachable before it copies, so it
//! reads the file twice: once for the references, once for the copy. [`prepare`] does the
//! first read beforehand, while the database runs (it takes no lock and reads the
//! committed transactions only); a later pack after the last transaction, with a saved
//! `.index` that covers the file, then reads only what was committed since, and the file
//! once for its copy, which checks every record against what was saved. Saved references
//! that do not fit the file are ignored: the pack then reads the file twice, as without
//! them. A pack that changes the file removes them.

use std::path::{Path, PathBuf};

use zfs_files::OutputSpec;
use zfs_format::refs_file::{self, write_refs};
use zfs_format::{FileStorage, Progress};

use crate::error::Result;

/// What [`prepare`] saved.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Prepared {
    /// The references file written.
    pub path: PathBuf,
    /// The end of the committed transactions it describes.
    pub end: u64,
    /// Objects in it.
    pub objects: u64,
    /// Of those, objects whose references a pack will still read itself (an undo's
    /// backpointer, a pickle that cannot be read, a reference to no object).
    pub left_to_the_pack: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Reads the FileStorage at `path` up to its last committed transaction and saves the
/// references of every object's current record to `<path>.refs` (a new file, fsynced and
/// renamed into place, with the file's mode). Uses the saved `.index` when it covers the
/// file, else builds one first (a second read).
pub fn prepare(path: &Path, progress: &dyn Progress) -> Result<Prepared> {
    let fs = FileStorage::open(path)?;
    let saved = crate::saved_index(path);
    let sane = saved.as_ref().and_then(|(ipos, index)| {
        zfs_format::index_file::check_sanity(&fs, index, *ipos).map(|ltid| (*ipos, ltid))
    });
    let walked = crate::committed_end(&fs, sane)?;
    let (index, end, last_tid) = match saved {
        Some((ipos, index)) if sane.is_some() && ipos == walked.pos => {
            (index, walked.pos, walked.last_complete_tid)
        }
        _ => {
            let scan = zfs_format::scan::build_index(&fs, progress)?;
            (scan.index, scan.end.pos, scan.end.last_complete_tid)
        }
    };
    let (entries, list) = crate::analyze::references(&fs, end, &index, progress)?;
    drop(index);
    fs.check_intact()?;
    let refs_path = zfs_files::with_suffix(path, ".refs");
    let mode = zfs_files::mode_of(path)?;
    zfs_files::write_file(OutputSpec::new(&refs_path).mode(mode), |w| {
        write_refs(w, end, last_tid, &entries, &list)
    })?;
    let left = entries
        .iter()
        .filter(|e| e.start == refs_file::UNKNOWN)
        .count();
    Ok(Prepared {
        bytes: 44 + 28 * entries.len() as u64 + 4 * list.len() as u64,
        path: refs_path,
        end,
        objects: entries.len() as u64,
        left_to_the_pack: left as u64,
    })
}
