//! The bodies of the fuzz targets, shared by `fuzz/` (cargo-fuzz) and by the replay test
//! `tests/fuzzed.rs`, so that an input once found by the fuzzer is checked by `cargo test`.
//! Each function must return normally (or with an error) on any input; a panic is a bug.

use std::hint::black_box;

use crate::index_file::{check_sanity, index_bytes, load_index};
use crate::pickle::{class_name, references, untransform, StringMode};
use crate::{scan, FileStorage, NoProgress};

/// Walks every structure of an arbitrary "Data.fs": forward, backward, records,
/// backpointers, the index scan and the index sanity check.
pub fn datafs(input: &[u8]) {
    let _ = black_box(walk(input));
}

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
