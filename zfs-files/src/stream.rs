//! Walking a mapped file in order through a memory limit.
//!
//! A container's memory limit counts the page cache its processes fill. A walk over a file
//! much larger than that limit, left to the kernel, keeps the cgroup at its limit: every
//! read-ahead must first reclaim (and gives up when that fails, so the walk then faults
//! page by page), and the pages the walk has finished with compete with the ones it is
//! about to read. [`Stream`] keeps the walk below the limit instead: it asks the kernel to
//! read ahead of the walk in pieces the kernel honours, hands the pages behind the walk
//! back (they leave the process), and drops from the page cache the pages the walk itself
//! brought in. Pages that were cached before the walk (a file already read) stay cached:
//! a walk over a warm file leaves the cache as it found it. A file that fits easily (a
//! quarter of the memory the process may use: its cgroup's limit, or the machine's memory)
//! is left in the page cache, as any read leaves it.
//!
//! When the walk covers a whole map, the page cache work (reading ahead, dropping what the
//! walk brought in) is done through the file by a thread of the stream's own, beside the
//! walk: the walk's own threads then only parse, and no call of that thread touches this
//! process's mappings. That thread reads ahead through the kernel's own sequential
//! read-ahead (the bytes handed to `/dev/null` with `sendfile`, never copied), which fills
//! the page cache with large folios as a plain `read` does; `POSIX_FADV_WILLNEED` fills
//! it page by page, and every later step (mapping, dropping) then costs per page.

use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::sync::mpsc;

use crate::advice::fadvise;
use crate::sigbus;

const PAGE: usize = 4096;
/// Bytes asked for at once: the kernel reads at most its read-ahead window (or the
/// device's largest request) per request and drops the rest.
const PIECE: usize = 256 * 1024;
/// The largest folio the page cache builds (a huge page): the walk drops whole multiples
/// of it, since a folio only leaves the page cache whole.
const FOLIO_MAX: usize = 2 << 20;

/// A walk in file order over the bytes of a [`crate::Map`] (see the module docs). For any
/// other bytes it does nothing.
#[derive(Debug)]
pub struct Stream {
    base: usize,
    len: usize,
    active: bool,
    ahead: usize,
    /// Everything before this was asked for.
    asked: usize,
    /// Everything before this left the process.
    released: usize,
    /// Ranges the walk brought into the page cache, ascending, not dropped yet.
    ours: VecDeque<(usize, usize)>,
    /// Bytes the walk asked to leave the page cache so far.
    dropped: usize,
    /// Whether pages the walk brought in are dropped behind it.
    drop_behind: bool,
    /// Which pieces were mostly in the page cache before the walk began (one bit per piece
    /// from where it began), taken at the walk's first step: the read-ahead this walk sets
    /// off fills pieces before they are asked for, and those are the walk's to drop.
    cached_before: Option<Vec<u64>>,
    /// Where the first piece starts.
    first: usize,
    /// Bytes behind the walk that stay (for reads of recent records).
    lag: usize,
    /// The thread that reads ahead and drops pages through the mapped file, when the walk
    /// is over a whole map: its pages are then dropped from the page cache once unmapped
    /// (cheaper than paging out mapped ones).
    advisor: Option<Advisor>,
}

/// What the advisor thread is asked to do with a range of the file.
enum Advice {
    /// Read it into the page cache (see the module docs).
    Read(usize, usize),
    /// Drop it from the page cache (`POSIX_FADV_DONTNEED`): clean pages no process maps.
    Drop(usize, usize),
}

/// A thread that gives the kernel advice about one file, in the order asked, while the
/// walk goes on.
#[derive(Debug)]
struct Advisor {
    tx: Option<mpsc::Sender<Advice>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Advisor {
    /// An advisor for `file`, or `None` when no thread can be started.
    fn start(file: std::fs::File) -> Option<Advisor> {
        let (tx, rx) = mpsc::channel::<Advice>();
        let thread = std::thread::Builder::new()
            .name("zfs-stream".into())
            .spawn(move || {
                // Where the bytes read ahead go; without it (or once a read fails),
                // `POSIX_FADV_WILLNEED` instead.
                let mut null = std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/null")
                    .ok();
                for a in rx {
                    match a {
                        Advice::Read(start, end) => {
                            if null
                                .as_ref()
                                .is_some_and(|n| read_through(&file, n, start, end))
                            {
                                continue;
                            }
                            null = None;
                            // Ask in pieces the kernel honours (see PIECE).
                            let mut at = start;
                            while at < end {
                                let n = PIECE.min(end - at);
                                fadvise(&file, at, n, libc::POSIX_FADV_WILLNEED);
                                at += n;
                            }
                        }
                        // At once: a folio only leaves the page cache when the range
                        // covers all of it.
                        Advice::Drop(start, end) => {
                            fadvise(&file, start, end - start, libc::POSIX_FADV_DONTNEED);
                        }
                    }
                }
            })
            .ok()?;
        Some(Advisor {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues `a`; false if the thread is gone.
    fn send(&self, a: Advice) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(a).is_ok())
    }

    /// Waits until everything asked was done.
    fn join(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Advisor {
    fn drop(&mut self) {
        self.join();
    }
}

/// Reads `start..end` of `file` into the page cache through the kernel's sequential
/// read-ahead, handing the bytes to `null` (`/dev/null`) with `sendfile`, which copies
/// nothing; false when the kernel refuses (the caller then asks with `posix_fadvise`).
fn read_through(file: &std::fs::File, null: &std::fs::File, start: usize, end: usize) -> bool {
    let Ok(mut off) = libc::off_t::try_from(start) else {
        return false;
    };
    let mut left = end.saturating_sub(start);
    while left > 0 {
        // SAFETY: sendfile moves bytes between two descriptors we hold, from the offset we
        // pass (the file's own position is left alone), and touches no memory of ours; past
        // the end of a shrunk file it returns 0 instead of raising SIGBUS.
        #[allow(unsafe_code)]
        let n = unsafe { libc::sendfile(null.as_raw_fd(), file.as_raw_fd(), &mut off, left) };
        match usize::try_from(n) {
            // The end of the file.
            Ok(0) => return true,
            Ok(n) => left = left.saturating_sub(n),
            Err(_) => return false,
        }
    }
    true
}

impl Stream {
    /// A walk over `data` starting at `from`, reading `ahead` bytes ahead of itself.
    pub fn new(data: &[u8], from: u64, ahead: u64) -> Stream {
        let base = data.as_ptr() as usize;
        let len = data.len();
        let active = len > 0 && sigbus::is_guarded(base, base + len);
        let from = usize::try_from(from).map_or(len, |f| f.min(len)) / PAGE * PAGE;
        // A file that fits easily in the memory this process may use is left in the page
        // cache, as any read leaves it (a second walk finds it there).
        let drop_behind = (len as u64).saturating_mul(4) > memory_limit();
        // Over a whole map, the page cache work goes through its file, on a thread.
        let advisor = if active {
            crate::map::mapped_file(data).and_then(Advisor::start)
        } else {
            None
        };
        Stream {
            base,
            len,
            active,
            ahead: usize::try_from(ahead).unwrap_or(usize::MAX),
            asked: from,
            released: from,
            ours: VecDeque::new(),
            dropped: 0,
            drop_behind,
            cached_before: None,
            first: from,
            lag: 0,
            advisor,
        }
    }

    /// The same walk, keeping the last `bytes` behind it in memory: reads of records the
    /// walk passed recently (backpointer targets, mostly) then find them there.
    pub fn lagging(mut self, bytes: u64) -> Stream {
        self.lag = usize::try_from(bytes).unwrap_or(usize::MAX);
        self
    }

    /// The same walk, leaving in the page cache what it reads (for a file another reader
    /// of this process still needs, such as a copy running beside the walk).
    pub fn keep_cached(mut self) -> Stream {
        self.drop_behind = false;
        self
    }

    /// The walk is done with everything before `pos` and goes on from there.
    pub fn advance(&mut self, data: &[u8], pos: u64) {
        if !self.active || data.as_ptr() as usize != self.base || data.len() != self.len {
            return;
        }
        let pos = usize::try_from(pos).map_or(self.len, |p| p.min(self.len));
        let want = pos.saturating_add(self.ahead).min(self.len);
        if self.cached_before.is_none() {
            self.cached_before = Some(self.residency());
        }
        // Ask for a piece only once a whole one is due, so that the kernel gets big reads.
        while self.asked < want && (want - self.asked >= PIECE || want == self.len) {
            let start = self.asked;
            let end = (start + PIECE).min(self.len);
            self.asked = end;
            // A piece that was cached before the walk is neither read ahead nor dropped.
            if self.was_cached(start) {
                continue;
            }
            if self.drop_behind {
                match self.ours.back_mut() {
                    Some(last) if last.1 == start => last.1 = end,
                    _ => self.ours.push_back((start, end)),
                }
            }
            if !self
                .advisor
                .as_ref()
                .is_some_and(|a| a.send(Advice::Read(start, end)))
            {
                self.advise(start, end, libc::MADV_WILLNEED);
            }
        }
        // Behind the walk: every page leaves the process, and what the walk brought in
        // leaves the page cache: through the file once unmapped, or, without the file, by
        // paging out the pages while they are still mapped.
        let done = if pos == self.len && self.ahead == 0 {
            self.len.div_ceil(PAGE) * PAGE
        } else {
            pos.saturating_sub(self.lag) / PAGE * PAGE
        };
        if self.advisor.is_none() {
            self.drop_ours(done);
        }
        if done > self.released {
            self.advise(self.released, done, libc::MADV_DONTNEED);
            self.released = done;
        }
        if self.advisor.is_some() {
            self.drop_ours(done);
        }
    }

    /// Drops from the page cache the pages before `done` that the walk brought in: through
    /// the file, in whole multiples of the largest folio (the rest goes with the next call),
    /// or by paging them out.
    fn drop_ours(&mut self, done: usize) {
        let done = if self.advisor.is_some() && done < self.len {
            done / FOLIO_MAX * FOLIO_MAX
        } else {
            done
        };
        while let Some(&(start, end)) = self.ours.front() {
            if start >= done {
                break;
            }
            let stop = end.min(done);
            self.dropped += stop - start;
            let sent = self
                .advisor
                .as_ref()
                .is_some_and(|a| a.send(Advice::Drop(start, stop)));
            if !sent {
                self.advise(start, stop, libc::MADV_PAGEOUT);
            }
            if stop == end {
                self.ours.pop_front();
            } else {
                self.ours[0].0 = stop;
                break;
            }
        }
    }

    /// The walk is over: what it brought in leaves the page cache, every page the process.
    pub fn finish(&mut self, data: &[u8]) {
        self.ahead = 0;
        self.lag = 0;
        let end = self.len as u64 + PAGE as u64;
        self.advance(data, end);
        if let Some(a) = &mut self.advisor {
            a.join();
        }
    }

    /// Whether the piece starting at `start` was mostly in the page cache before the walk.
    fn was_cached(&self, start: usize) -> bool {
        let k = (start - self.first) / PIECE;
        self.cached_before
            .as_ref()
            .and_then(|bits| bits.get(k / 64))
            .is_some_and(|w| w >> (k % 64) & 1 == 1)
    }

    /// One bit per piece from `first` to the end: whether most of its pages are in the page
    /// cache now. Asked of the kernel a few hundred pieces at a time.
    fn residency(&self) -> Vec<u64> {
        let pieces = (self.len - self.first).div_ceil(PIECE);
        let mut bits = vec![0u64; pieces.div_ceil(64)];
        const AT_ONCE: usize = 256;
        let mut vec = vec![0u8; AT_ONCE * PIECE / PAGE];
        for k0 in (0..pieces).step_by(AT_ONCE) {
            let start = self.first + k0 * PIECE;
            let end = (start + AT_ONCE * PIECE).min(self.len);
            let pages = (end - start).div_ceil(PAGE);
            // SAFETY: `start..end` lies inside the guarded map (checked at construction) and
            // `vec` holds at least one byte per page of it, as mincore requires. mincore
            // only reports residency.
            #[allow(unsafe_code)]
            let r = unsafe {
                libc::mincore(
                    (self.base + start) as *mut libc::c_void,
                    end - start,
                    vec.as_mut_ptr(),
                )
            };
            if r != 0 {
                continue;
            }
            for (j, piece) in vec[..pages].chunks(PIECE / PAGE).enumerate() {
                if piece.iter().filter(|&&b| b & 1 == 1).count() * 2 > piece.len() {
                    let k = k0 + j;
                    bits[k / 64] |= 1 << (k % 64);
                }
            }
        }
        bits
    }

    fn advise(&self, start: usize, end: usize, advice: libc::c_int) {
        let end = end.min(self.len.div_ceil(PAGE) * PAGE);
        if end <= start {
            return;
        }
        // SAFETY: `start..end` are whole pages of a read-only shared file mapping of a live
        // `Map` (checked at construction; the map starts on a page and its last page is
        // whole in memory). WILLNEED only starts reads into the page cache; PAGEOUT drops
        // clean file pages from it (they are read again from the file if touched); DONTNEED
        // only drops this process's page table entries. No byte any reference sees changes,
        // and failure is harmless and ignored.
        #[allow(unsafe_code)]
        unsafe {
            libc::madvise(
                (self.base + start) as *mut libc::c_void,
                end - start,
                advice,
            );
        }
    }
}

/// The memory this process may use: the smallest limit of its memory cgroup and the
/// cgroups above it (cgroup v1 `memory.limit_in_bytes` or v2 `memory.max`), or the
/// machine's memory when there is no limit. Read once.
pub fn memory_limit() -> u64 {
    static LIMIT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        let total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .map_or(u64::MAX, |kb| kb.saturating_mul(1024));
        let Ok(groups) = std::fs::read_to_string("/proc/self/cgroup") else {
            return total;
        };
        let mut limit = total;
        for line in groups.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(ctl), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (root, file) = if ctl.split(',').any(|c| c == "memory") {
                ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")
            } else if ctl.is_empty() {
                ("/sys/fs/cgroup", "memory.max")
            } else {
                continue;
            };
            let mut dir = std::path::PathBuf::from(root);
            let mut dirs = vec![dir.clone()];
            for part in path.split('/').filter(|p| !p.is_empty()) {
                dir.push(part);
                dirs.push(dir.clone());
            }
            for d in dirs {
                if let Some(v) = std::fs::read_to_string(d.join(file))
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                {
                    limit = limit.min(v);
                }
            }
        }
        limit
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resident(m: &[u8]) -> usize {
        crate::cached_pages(m).expect("mincore")
    }

    #[test]
    fn other_bytes_are_left_alone() {
        let v = vec![1u8; 3 * PIECE];
        let mut s = Stream::new(&v, 0, PIECE as u64);
        assert!(!s.active);
        s.advance(&v, 2 * PIECE as u64);
        s.finish(&v);
        assert_eq!(v[PIECE], 1);
    }

    #[test]
    fn a_walk_reads_the_same_bytes_and_drops_what_it_brought_in() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("f");
        let bytes: Vec<u8> = (0..8 * PIECE + 123).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &bytes).expect("write");
        let m = crate::Map::new(std::fs::File::open(&p).expect("open"), &p).expect("map");
        let mut s = Stream::new(&m, 0, 2 * PIECE as u64).lagging(PIECE as u64);
        s.drop_behind = true;
        assert!(s.active);
        // The walk covers the whole map: it holds the file, and a walk over part of the
        // map does not.
        assert!(s.advisor.is_some());
        assert!(Stream::new(&m[PAGE..], 0, 0).advisor.is_none());
        let mut sum = 0u64;
        for (i, b) in m.iter().enumerate() {
            if i % PIECE == 0 {
                s.advance(&m, i as u64);
            }
            sum += u64::from(*b);
        }
        s.finish(&m);
        assert_eq!(sum, bytes.iter().map(|&b| u64::from(b)).sum::<u64>());
        assert!(s.ours.is_empty());
        assert!(memory_limit() > 0);
        assert_eq!(s.released, bytes.len().div_ceil(PAGE) * PAGE);
        // The bytes read after the walk are still the file's.
        assert_eq!(&m[PIECE..PIECE + 10], &bytes[PIECE..PIECE + 10]);
    }

    /// Walks `m` in file order as a walker does, dropping behind; returns the byte sum and
    /// the bytes the walk asked to leave the page cache.
    fn walk(m: &crate::Map) -> (u64, usize) {
        let mut s = Stream::new(m, 0, 2 * FOLIO_MAX as u64);
        s.drop_behind = true;
        let mut sum = 0u64;
        for (i, b) in m.iter().enumerate() {
            if i % (64 * 1024) == 0 {
                s.advance(m, i as u64);
            }
            sum += u64::from(*b);
        }
        s.finish(m);
        (sum, s.dropped)
    }

    #[test]
    fn a_cold_walk_leaves_nothing_cached_and_a_warm_one_leaves_the_cache_as_it_was() {
        // On the repository's file system, not a tmpfs: its pages can leave the cache.
        let d = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("tempdir");
        let p = d.path().join("f");
        let bytes: Vec<u8> = (0..32 * FOLIO_MAX + 4321)
            .map(|i| (i % 253) as u8)
            .collect();
        let want: u64 = bytes.iter().map(|&b| u64::from(b)).sum();
        {
            let mut f = std::fs::File::create(&p).expect("create");
            std::io::Write::write_all(&mut f, &bytes).expect("write");
            f.sync_all().expect("fsync");
            fadvise(&f, 0, bytes.len(), libc::POSIX_FADV_DONTNEED);
        }
        let m = crate::Map::new(std::fs::File::open(&p).expect("open"), &p).expect("map");
        let pages = m.len().div_ceil(PAGE);
        assert_eq!(
            resident(&m),
            0,
            "the file could not be dropped from the page cache"
        );
        // Cold: what the walk read ahead (through the kernel's read-ahead) leaves again.
        let (sum, dropped) = walk(&m);
        assert_eq!(sum, want);
        assert_eq!(dropped, bytes.len());
        assert!(
            resident(&m) < pages / 10,
            "{} of {pages} pages left",
            resident(&m)
        );
        // Warm: every page was cached before, and the walk drops none. The kernel may still
        // reclaim a few pages for other processes meanwhile, so the residency is only
        // required to stay near whole; a drop by the walk would take whole pieces.
        assert_eq!(std::fs::read(&p).expect("read").len(), bytes.len());
        let before = resident(&m);
        assert!(before > pages * 9 / 10, "{before} of {pages} pages cached");
        let (sum, dropped) = walk(&m);
        assert_eq!(sum, want);
        assert_eq!(dropped, 0, "the warm walk dropped cached pages");
        let after = resident(&m);
        assert!(
            after + PIECE / PAGE / 2 > before,
            "{after} of {before} cached pages stayed"
        );
    }

    #[test]
    fn read_through_fills_the_page_cache_without_copying() {
        let d = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("tempdir");
        let p = d.path().join("f");
        let f = {
            let mut f = std::fs::File::create(&p).expect("create");
            std::io::Write::write_all(&mut f, &vec![7u8; 4 * PIECE]).expect("write");
            f.sync_all().expect("fsync");
            fadvise(&f, 0, 4 * PIECE, libc::POSIX_FADV_DONTNEED);
            std::fs::File::open(&p).expect("open")
        };
        let m = crate::Map::new(f.try_clone().expect("clone"), &p).expect("map");
        assert_eq!(
            resident(&m),
            0,
            "the file could not be dropped from the page cache"
        );
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .expect("null");
        assert!(read_through(&f, &null, PIECE, 3 * PIECE));
        // All of it, but for what the kernel may reclaim for other processes meanwhile.
        let cached = resident(&m[PIECE..3 * PIECE]);
        assert!(cached > 2 * PIECE / PAGE * 9 / 10, "{cached} pages cached");
        // Past the end: nothing to read, and no error.
        assert!(read_through(&f, &null, 4 * PIECE, 5 * PIECE));
    }
}
