//! The one place that maps a file into memory.

use std::fs::File;

use memmap2::Mmap;

/// Maps `file` read-only.
///
/// An empty file cannot be mapped on every platform, so it gets an empty anonymous map.
pub(crate) fn map(file: &File) -> std::io::Result<Mmap> {
    if file.metadata()?.len() == 0 {
        return memmap2::MmapOptions::new()
            .len(0)
            .map_anon()?
            .make_read_only();
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

/// Drops the resident pages of the mapped bytes `data[start..end]` (whole pages inside the
/// range only).
pub(crate) fn release(data: &[u8], start: u64, end: u64) {
    const PAGE: usize = 4096;
    let len = data.len();
    let (Ok(start), Ok(end)) = (usize::try_from(start), usize::try_from(end)) else {
        return;
    };
    let end = end.min(len);
    let base = data.as_ptr() as usize;
    let first = (base + start).div_ceil(PAGE) * PAGE;
    let last = ((base + end) / PAGE) * PAGE;
    if last <= first {
        return;
    }
    // SAFETY: `first..last` lies inside `data`, which is a read-only shared mapping of a file
    // (`release` is only called for storages made by `open`). MADV_DONTNEED on such a mapping
    // only drops this process's page table entries: the next access reads the same bytes back
    // from the page cache or the file, so every `&[u8]` into the mapping stays valid and
    // unchanged. Failure is harmless and ignored.
    #[cfg(unix)]
    #[allow(unsafe_code)]
    unsafe {
        libc::madvise(
            first as *mut libc::c_void,
            last - first,
            libc::MADV_DONTNEED,
        );
    }
}
