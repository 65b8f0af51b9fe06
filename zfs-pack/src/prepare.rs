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
//! them. A pack that changes the file replaces them with those of the packed file (a pack
//! with GC after the last transaction) or removes them; a prepare that finds them still
//! describing the file reads only the transactions committed since.

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
    /// Where the read of the file started: the first transaction, or the end of the
    /// references saved before, when they still described the file (only the transactions
    /// committed since were read).
    pub read_from: u64,
}

/// Reads the FileStorage at `path` up to its last committed transaction and saves the
/// references of every object's current record to `<path>.refs` (a new file, fsynced and
/// renamed into place, with the file's mode). Uses the saved `.index` as ZODB's open does
/// (when it is sane, only the transactions after it are read for it), else builds one
/// first (a second read). References saved before, by a prepare or by a pack, that still
/// describe the file are kept: only the transactions committed after them are read.
pub fn prepare(path: &Path, progress: &dyn Progress) -> Result<Prepared> {
    let fs = FileStorage::open(path)?;
    // As ZODB opens a storage: the saved index, and the transactions committed after it
    // (while the site runs, it is the one written when the database was last closed).
    let index_path = zfs_files::with_suffix(path, ".index");
    let (scan, _) = zfs_format::index_file::open_index(&fs, &index_path, progress)?;
    let (index, end, last_tid) = (scan.index, scan.end.pos, scan.end.last_complete_tid);
    // References saved before (by a prepare or a pack) serve for what they cover.
    let previous = crate::saved_refs(path);
    let parsed = previous
        .as_ref()
        .and_then(|m| refs_file::RefsFile::parse(m).ok());
    let (saved, since) =
        crate::analyze::references_since(&fs, end, index, parsed.as_ref(), progress)?;
    drop(previous);
    fs.check_intact()?;
    let refs_path = zfs_files::with_suffix(path, ".refs");
    let mode = zfs_files::mode_of(path)?;
    zfs_files::write_file(OutputSpec::new(&refs_path).mode(mode), |w| {
        write_refs(w, end, last_tid, saved.entries(), saved.list())
    })?;
    let objects = saved.entries().len() as u64;
    Ok(Prepared {
        bytes: refs_file::file_len(objects, saved.list().len() as u64),
        path: refs_path,
        end,
        objects,
        left_to_the_pack: saved.unknown() as u64,
        read_from: since.unwrap_or(zfs_format::FIRST_TXN),
    })
}
