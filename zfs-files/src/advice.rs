//! Telling the kernel how a file will be read (`posix_fadvise`): which bytes to start
//! reading now, and which to drop.

use std::fs::File;
use std::os::fd::AsRawFd;

/// `posix_fadvise` on `len` bytes of `file` from `start` (0: to the end); failure is
/// harmless and ignored.
pub(crate) fn fadvise(file: &File, start: usize, len: usize, advice: libc::c_int) {
    let (Ok(start), Ok(len)) = (libc::off_t::try_from(start), libc::off_t::try_from(len)) else {
        return;
    };
    // SAFETY: posix_fadvise takes a descriptor we own for the call and touches no memory
    // of ours; WILLNEED only starts reads into the page cache, DONTNEED only drops clean,
    // unmapped pages from it (read again from the file if needed).
    #[allow(unsafe_code)]
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), start, len, advice);
    }
}

/// Starts reading `len` bytes of `file` at `pos` into the page cache without waiting
/// (`POSIX_FADV_WILLNEED`): reads asked for together are served together, and a later
/// `pread` of those bytes finds them read or under way.
pub fn will_read(file: &File, pos: u64, len: u64) {
    if let (Ok(pos), Ok(len)) = (usize::try_from(pos), usize::try_from(len)) {
        fadvise(file, pos, len, libc::POSIX_FADV_WILLNEED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resident(m: &[u8]) -> usize {
        crate::cached_pages(m).expect("mincore")
    }

    const PAGE: usize = 4096;

    /// A file of `pages` pages on the repository's file system (a tmpfs keeps its pages),
    /// written, then dropped from the page cache; its map.
    fn cold_file(dir: &tempfile::TempDir, pages: usize) -> (std::path::PathBuf, crate::Map) {
        let p = dir.path().join("f");
        let mut f = File::create(&p).expect("create");
        std::io::Write::write_all(&mut f, &vec![5u8; pages * PAGE]).expect("write");
        f.sync_all().expect("fsync");
        fadvise(&f, 0, pages * PAGE, libc::POSIX_FADV_DONTNEED);
        let m = crate::Map::new(File::open(&p).expect("open"), &p).expect("map");
        assert_eq!(
            resident(&m),
            0,
            "the file could not be dropped from the page cache"
        );
        (p, m)
    }

    #[test]
    fn a_read_asked_for_comes_into_the_page_cache_without_a_read() {
        let d = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("tempdir");
        let (p, m) = cold_file(&d, 64);
        let f = File::open(&p).expect("open");
        will_read(&f, 30 * PAGE as u64 + 4000, 1024);
        // The reads are under way; they end soon after.
        let want = &m[30 * PAGE..32 * PAGE];
        let t = std::time::Instant::now();
        while resident(want) < 2 && t.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(resident(want), 2, "the two pages asked for");
        // Nothing far from them (the kernel reads what it is asked for, in whole pages).
        assert_eq!(resident(&m[..16 * PAGE]) + resident(&m[48 * PAGE..]), 0);
        // Beyond the end, or at a position no offset can hold: nothing, and no error.
        will_read(&f, 1 << 40, 1024);
        will_read(&f, u64::MAX, u64::MAX);
    }
}
