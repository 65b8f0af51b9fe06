//! The one place that maps a file into memory.

use std::fs::File;

use memmap2::Mmap;

/// Maps `file` read-only.
///
/// An empty file cannot be mapped on every platform, so it gets an empty anonymous map.
pub(crate) fn map(file: &File) -> std::io::Result<Mmap> {
    if file.metadata()?.len() == 0 {
        return memmap2::MmapOptions::new().len(0).map_anon()?.make_read_only();
    }
    // SAFETY: the map is read-only and we never hand out references that outlive it. The
    // risk accepted is the usual one of mapped files: if another process truncates the file
    // while we read it (a live ZODB truncates Data.fs when a commit aborts), reading the lost
    // pages raises SIGBUS. Data.fs files are append-only otherwise, and our callers read only
    // up to the end of the last complete transaction found at open, which a live ZODB never
    // truncates.
    #[allow(unsafe_code)]
    let map = unsafe { Mmap::map(file)? };
    Ok(map)
}
