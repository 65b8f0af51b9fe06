//! Read-only file mappings that survive their file shrinking.

use std::fs::File;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::sigbus;

/// A live guarded map: its slot, where its bytes start and how many, its file's path and
/// a handle on the file.
struct Live {
    slot: usize,
    base: usize,
    len: usize,
    path: PathBuf,
    file: Option<File>,
}

/// Guarded maps (live), and the files of maps that were hit and are gone.
static LIVE: Mutex<Vec<Live>> = Mutex::new(Vec::new());
static SHRUNK: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Every file that shrank under a read of one of this process's maps (live or dropped):
/// a binary checks this before it reports success, so that no output built on the zeros
/// of lost pages passes for good.
pub fn shrunk_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = SHRUNK.lock().map(|g| g.clone()).unwrap_or_default();
    if let Ok(live) = LIVE.lock() {
        v.extend(
            live.iter()
                .filter(|l| sigbus::was_hit(l.slot))
                .map(|l| l.path.clone()),
        );
    }
    v.sort();
    v.dedup();
    v
}

/// A read-only mapping of a whole file, guarded against SIGBUS (see the crate docs): if
/// the file shrinks while mapped, the lost pages read as zeros and
/// [`Map::check_intact`] fails.
pub struct Map {
    map: Mmap,
    slot: Option<usize>,
    file: File,
    path: PathBuf,
}

impl Map {
    /// Maps `file` (at `path`, for messages) as long as it is now.
    pub fn new(file: File, path: &Path) -> Result<Map> {
        let len = file
            .metadata()
            .map_err(|e| Error::io("reading the metadata of", path, e))?
            .len();
        let map = if len == 0 {
            // An empty file cannot be mapped on every platform.
            memmap2::MmapOptions::new()
                .len(0)
                .map_anon()
                .and_then(|m| m.make_read_only())
        } else {
            // SAFETY: the map is read-only and lives as long as this `Map`. The usual risk
            // of mapped files, SIGBUS when the file shrinks under us, is handled by the guard
            // registered below: lost pages read as zeros and `check_intact` reports them.
            #[allow(unsafe_code)]
            unsafe {
                Mmap::map(&file)
            }
        }
        .map_err(|e| Error::io("mapping", path, e))?;
        let slot = if map.is_empty() {
            None
        } else {
            sigbus::register(map.as_ptr() as usize, map.len())
        };
        if let (Some(s), Ok(mut live)) = (slot, LIVE.lock()) {
            live.push(Live {
                slot: s,
                base: map.as_ptr() as usize,
                len: map.len(),
                path: path.to_path_buf(),
                file: file.try_clone().ok(),
            });
        }
        Ok(Map {
            map,
            slot,
            file,
            path: path.to_path_buf(),
        })
    }

    /// Fails with [`Error::Shrunk`] if a read found part of the file gone: whatever was
    /// read from the map since it was made must then not be used.
    pub fn check_intact(&self) -> Result<()> {
        if self.slot.is_some_and(sigbus::was_hit) {
            let now = self.file.metadata().map(|m| m.len()).unwrap_or(0);
            return Err(Error::Shrunk {
                path: self.path.clone(),
                len: self.map.len() as u64,
                now,
            });
        }
        Ok(())
    }

    /// The mapped file's handle.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Hands the resident pages of `start..end` (whole pages inside it) back to the kernel:
    /// they leave this process's memory and are read again from the page cache if touched.
    pub fn release(&self, start: u64, end: u64) {
        release_mapped(&self.map, start, end);
    }

    /// Whether `bytes` lie in a guarded map whose file shrank under a read (false for
    /// bytes that are not such a map, e.g. a `Vec`). Lets code that only sees the bytes
    /// ask what [`Map::check_intact`] would say.
    pub fn shrunk_under(bytes: &[u8]) -> bool {
        !bytes.is_empty() && sigbus::hit_at(bytes.as_ptr() as usize)
    }
}

/// A handle on the file whose whole live [`Map`] `data` is (the same bytes, from the first
/// to the last), for calls that take the file (`posix_fadvise`); `None` for any other bytes.
pub(crate) fn mapped_file(data: &[u8]) -> Option<File> {
    let base = data.as_ptr() as usize;
    let live = LIVE.lock().ok()?;
    let l = live
        .iter()
        .find(|l| l.base == base && l.len == data.len() && l.len > 0)?;
    l.file.as_ref()?.try_clone().ok()
}

/// [`Map::release`] for bytes seen through a generic view: does something only when the
/// pages lie inside a live [`Map`] (checked against the guard's registry), nothing for any
/// other bytes (a `Vec`'s pages must never be dropped).
pub fn release_mapped(data: &[u8], start: u64, end: u64) {
    {
        const PAGE: usize = 4096;
        let len = data.len();
        let (Ok(start), Ok(end)) = (usize::try_from(start), usize::try_from(end)) else {
            return;
        };
        let end = end.min(len);
        if end <= start {
            return;
        }
        let base = data.as_ptr() as usize;
        let first = (base + start).div_ceil(PAGE) * PAGE;
        let last = ((base + end) / PAGE) * PAGE;
        if last <= first || !sigbus::is_guarded(first, last) {
            return;
        }
        // SAFETY: `first..last` lies inside a read-only shared file mapping of a live `Map`
        // (checked just above against the registry its constructor filled). MADV_DONTNEED
        // on such a mapping only drops this process's page table entries: the next access
        // reads the same bytes back from the page cache or the file, so every `&[u8]` into
        // the mapping stays valid and unchanged. Failure is harmless and ignored.
        #[allow(unsafe_code)]
        unsafe {
            libc::madvise(
                first as *mut libc::c_void,
                last - first,
                libc::MADV_DONTNEED,
            );
        }
    }
}

/// Asks the kernel to read the pages of `start..end` of mapped bytes now, in the
/// background (`MADV_WILLNEED`), so that a walk in file order finds them in the page cache
/// instead of waiting for each fault. Like [`release_mapped`], it does something only for
/// pages inside a live [`Map`].
pub fn prefetch_mapped(data: &[u8], start: u64, end: u64) {
    const PAGE: usize = 4096;
    let (Ok(start), Ok(end)) = (usize::try_from(start), usize::try_from(end)) else {
        return;
    };
    let end = end.min(data.len());
    if end <= start {
        return;
    }
    let base = data.as_ptr() as usize;
    // Whole pages covering the range (a map starts on a page).
    let first = ((base + start) / PAGE) * PAGE;
    let last = (base + end).div_ceil(PAGE) * PAGE;
    if !sigbus::is_guarded(base + start, base + end) {
        return;
    }
    // The kernel reads at most its read-ahead window (or the device's largest request) per
    // call and drops the rest of the range: ask in pieces no larger than either.
    const PIECE: usize = 256 * 1024;
    let mut at = first;
    while at < last {
        let n = PIECE.min(last - at);
        // SAFETY: `at..at + n` covers pages of a read-only shared file mapping of a live
        // `Map` (checked against the guard's registry). MADV_WILLNEED only starts reading
        // the file's pages into the page cache; it changes no byte any reference sees.
        // Failure is harmless and ignored.
        #[allow(unsafe_code)]
        unsafe {
            libc::madvise(at as *mut libc::c_void, n, libc::MADV_WILLNEED);
        }
        at += n;
    }
}

/// Tells the kernel that mapped bytes will be read at random (`MADV_RANDOM`): a fault
/// then reads the page it needs, not the read-ahead window around it. For a walk that
/// prefetches what it reads in order ([`prefetch_mapped`]) and also reads scattered
/// records. Does something only for bytes of a live [`Map`].
pub fn random_access_mapped(data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let base = data.as_ptr() as usize;
    if !sigbus::is_guarded(base, base + data.len()) {
        return;
    }
    let len = data.len().div_ceil(4096) * 4096;
    // SAFETY: `base..base + len` are the pages of a read-only shared file mapping of a live
    // `Map` (checked against the guard's registry; a map starts on a page). MADV_RANDOM only
    // changes how the kernel reads ahead on faults; no byte any reference sees changes.
    // Failure is harmless and ignored.
    #[allow(unsafe_code)]
    unsafe {
        libc::madvise(base as *mut libc::c_void, len, libc::MADV_RANDOM);
    }
}

/// How many pages of `data`, bytes of a live [`Map`], are in the page cache now
/// (`mincore`); `None` for other bytes, or when the kernel does not say.
pub fn cached_pages(data: &[u8]) -> Option<usize> {
    let start = data.as_ptr() as usize;
    if data.is_empty() || !sigbus::is_guarded(start, start + data.len()) {
        return None;
    }
    // mincore starts on a page; a map does too, so the page holding `start` is the map's.
    let base = start / 4096 * 4096;
    let len = start + data.len() - base;
    let mut pages = vec![0u8; len.div_ceil(4096)];
    // SAFETY: `base..base + len` are pages of a live `Map` (checked against the guard's
    // registry) and `pages` has a byte per page, as mincore requires; mincore only reports
    // residency into `pages`.
    #[allow(unsafe_code)]
    let r = unsafe { libc::mincore(base as *mut libc::c_void, len, pages.as_mut_ptr()) };
    (r == 0).then(|| pages.iter().filter(|&&b| b & 1 == 1).count())
}

impl Deref for Map {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // Unguard before the mapping goes (fields drop after this).
        if let Some(s) = self.slot.take() {
            if let Ok(mut live) = LIVE.lock() {
                live.retain(|l| l.slot != s);
            }
            if sigbus::was_hit(s) {
                if let Ok(mut shrunk) = SHRUNK.lock() {
                    shrunk.push(self.path.clone());
                }
            }
            sigbus::unregister(s);
        }
    }
}

impl std::fmt::Debug for Map {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Map")
            .field("path", &self.path)
            .field("len", &self.map.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_shrinking_under_the_map_reads_zeros_and_is_reported() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("Data.fs");
        std::fs::write(&p, vec![7u8; 64 * 1024]).expect("write");
        let m = Map::new(File::open(&p).expect("open"), &p).expect("map");
        assert_eq!(m[60_000], 7);
        m.check_intact().expect("intact");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .expect("open")
            .set_len(4096)
            .expect("truncate");
        // Without the guard this read raises SIGBUS and ends the test process.
        let sum: u64 = m[8192..].iter().map(|&b| u64::from(b)).sum();
        assert_eq!(sum, 0);
        assert_eq!(m[100], 7, "pages still in the file are untouched");
        let e = m.check_intact().expect_err("shrunk");
        assert!(
            e.to_string()
                .contains("shrank while it was read (it was 65536 bytes when opened, now 4096)"),
            "{e}"
        );
        drop(m);
        assert!(
            shrunk_files().contains(&p),
            "the shrink is remembered after the map"
        );
        // A fresh map of the same file is intact.
        let m2 = Map::new(File::open(&p).expect("open"), &p).expect("map");
        assert_eq!(m2.len(), 4096);
        m2.check_intact().expect("intact");
    }

    #[test]
    fn empty_files_map_to_nothing() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("e");
        std::fs::write(&p, b"").expect("write");
        let m = Map::new(File::open(&p).expect("open"), &p).expect("map");
        assert!(m.is_empty());
        m.check_intact().expect("intact");
    }
}
