//! The bodies of the fuzz targets, shared by `fuzz/` (cargo-fuzz) and by the replay test
//! `tests/fuzzed.rs`, so that an input once found by the fuzzer is checked by `cargo test`.
//! Each function must return normally (or with an error) on any input; a panic is a bug.

use std::hint::black_box;

use crate::index_file::{check_sanity, index_bytes, load_index};
use crate::pickle::{class_name, references, untransform, StringMode};
use crate::refs_file::{write_refs, Refs, RefsFile, ABSENT, UNKNOWN};
use crate::{scan, FileStorage, NoProgress};

/// Walks every structure of an arbitrary "Data.fs": forward, backward, records,
/// backpointers, the index scan and the index sanity check.
pub fn datafs(input: &[u8]) {
    let _ = black_box(walk(input));
}

/// The walks of [`datafs`], stopping at the first error.
fn walk(input: &[u8]) -> crate::Result<()> {
    let fs = FileStorage::from_data(input, "fuzz.fs".into())?;
    let end = fs.end();
    for t in fs.transactions() {
        let t = t?;
        black_box(t.records_bytes());
        for r in t.records() {
            let r = r?;
            black_box(fs.resolve(&r).ok());
            if let Some(d) = r.data() {
                black_box(references(d, fs.magic().string_mode()).ok());
            }
        }
    }
    if let Ok(end) = end {
        for t in fs.transactions_rev(end.pos) {
            black_box(t.ok());
        }
        for t in fs.transactions_rev(fs.len()) {
            black_box(t.ok());
        }
    }
    let s = scan::build_index(&fs, &NoProgress)?;
    black_box(check_sanity(&fs, &s.index, s.end.pos));
    black_box(check_sanity(&fs, &s.index, fs.len()));
    Ok(())
}

/// Loads arbitrary bytes as a `.index` file; whatever loads must save and load back to the
/// same index and position.
pub fn index_file(input: &[u8]) {
    if let Ok((pos, index)) = load_index(input) {
        let again = index_bytes(&index, pos);
        match load_index(&again) {
            Ok((pos2, index2)) => {
                assert_eq!(pos, pos2, "position changed by a save and load");
                assert!(index == index2, "index changed by a save and load");
            }
            Err(e) => panic!("our own .index output does not load: {e}"),
        }
    }
}

/// Parses arbitrary bytes as a references file (`<file>.refs`). Whatever parses must hold
/// only references to its own entries, write back byte for byte from its header, entries
/// and list, and, rewritten with one list group per entry from what [`RefsFile::refs`]
/// returns, parse again to the same header, entries (but for their starts) and references.
pub fn refs_file(input: &[u8]) {
    let Ok(f) = RefsFile::parse(input) else {
        return;
    };
    let n = f.len();
    let mut entries = Vec::with_capacity(n);
    // Words a list with one group per known entry takes (shared groups are repeated).
    let mut words = 0usize;
    for i in 0..n {
        let e = f.entry(i);
        match f.refs(i) {
            Refs::Unknown => assert_eq!(e.start, UNKNOWN, "entry {i}: unknown refs"),
            Refs::Absent => assert_eq!(e.start, ABSENT, "entry {i}: absent refs"),
            Refs::Known(r) => {
                assert!(e.start < ABSENT, "entry {i}: known refs at {}", e.start);
                assert_eq!(r.iter().len(), r.len(), "entry {i}: list length");
                for x in r.iter() {
                    assert!((x as usize) < n, "entry {i}: reference to entry {x} of {n}");
                }
                words = words.saturating_add(1 + r.len());
            }
        }
        entries.push(e);
    }
    // The list is what lies between the entries and the checksum.
    let list: Vec<u32> = input[40 + 28 * n..input.len() - 4]
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    let mut again = Vec::with_capacity(input.len());
    write_refs(&mut again, f.end, f.last_tid, &entries, &list).expect("write to a Vec");
    assert!(
        again == input,
        "the same header, entries and list write other bytes"
    );
    // Groups may be shared and overlap, so one group per entry can be quadratic in the
    // input: rebuild only when it is no longer than the input.
    if words > (input.len() / 4).min(ABSENT as usize) {
        return;
    }
    let mut compact = Vec::with_capacity(words);
    let mut rebuilt = entries.clone();
    for (i, e) in rebuilt.iter_mut().enumerate() {
        if let Refs::Known(r) = f.refs(i) {
            e.start = compact.len() as u32;
            compact.push(r.len() as u32);
            compact.extend(r.iter());
        }
    }
    again.clear();
    write_refs(&mut again, f.end, f.last_tid, &rebuilt, &compact).expect("write to a Vec");
    let g = match RefsFile::parse(&again) {
        Ok(g) => g,
        Err(e) => panic!("a rebuilt references file does not parse: {e}"),
    };
    assert_eq!(
        (g.end, g.last_tid, g.len()),
        (f.end, f.last_tid, n),
        "rebuilt header"
    );
    for (i, e) in entries.iter().enumerate() {
        let r = g.entry(i);
        assert_eq!(
            (r.oid, r.pos, r.tid),
            (e.oid, e.pos, e.tid),
            "rebuilt entry {i}"
        );
        match (f.refs(i), g.refs(i)) {
            (Refs::Known(a), Refs::Known(b)) => {
                assert!(
                    a.iter().eq(b.iter()),
                    "entry {i}: rebuilt references differ"
                );
            }
            (a, b) => assert_eq!(a, b, "entry {i}: rebuilt references"),
        }
    }
}

/// Scans arbitrary bytes as a record's pickles: references in both string modes, the class
/// name, and zlib untransform.
pub fn pickle(input: &[u8]) {
    for mode in [StringMode::Ascii, StringMode::Bytes] {
        black_box(references(input, mode).ok());
        black_box(class_name(input, mode).exact);
    }
    if let Ok(data) = untransform(input) {
        black_box(references(&data, StringMode::Bytes).ok());
    }
}

/// A private directory for fuzz bodies that need real files (positioned reads, an output
/// file), removed with everything in it when dropped. It is made in `/dev/shm` when that
/// exists, so that writes and fsyncs stay in memory, else in the temporary directory.
pub struct Scratch {
    dir: std::path::PathBuf,
}

impl Scratch {
    /// A new, empty directory, or `None` when none can be made.
    pub fn new() -> Option<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let shm = std::path::Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        for _ in 0..100 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = base.join(format!("zfs-fuzz-{}-{n}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Some(Scratch { dir }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(_) => return None,
            }
        }
        None
    }

    /// The path of `name` inside the directory.
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Asserts that `bytes` is a sound FileStorage from start to end: every transaction and
/// record reads, every backpointer chain resolves (same oid, strictly backwards), and the
/// last transaction ends at the end of the file. Returns the numbers of transactions and
/// records. For fuzz bodies that check what our writers (pack, recover) wrote; a written
/// file holds at least the magic.
pub fn assert_sound(bytes: &[u8], what: &str) -> (u64, u64) {
    let fs = FileStorage::from_data(bytes, what.into())
        .unwrap_or_else(|e| panic!("{what}: not a FileStorage: {e}"));
    let mut it = fs.transactions();
    let mut records = 0;
    for t in it.by_ref() {
        let t = t.unwrap_or_else(|e| panic!("{what}: damaged transaction: {e}"));
        for r in t.records() {
            let r = r.unwrap_or_else(|e| panic!("{what}: damaged record: {e}"));
            if let Err(e) = fs.resolve(&r) {
                panic!("{what}: backpointer chain: {e}");
            }
            records += 1;
        }
    }
    let end = it.finish();
    assert_eq!(
        end.pos,
        bytes.len() as u64,
        "{what}: the walk stops at {} ({:?}) before the end of the file",
        end.pos,
        end.reason
    );
    (end.transactions, records)
}
