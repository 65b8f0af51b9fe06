//! Walks every structure of an arbitrary "Data.fs": forward, backward, records, backpointers,
//! the index scan and the index sanity check.
#![no_main]

use std::hint::black_box;

use zfs_format::{index_file, scan, FileStorage, NoProgress};

fn fuzz(input: &[u8]) -> zfs_format::Result<()> {
    let fs = FileStorage::from_data(input, "fuzz.fs".into())?;
    let end = fs.end();
    for t in fs.transactions() {
        let t = t?;
        black_box(t.records_bytes());
        for r in t.records() {
            let r = r?;
            black_box(fs.resolve(&r).ok());
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
    black_box(index_file::check_sanity(&fs, &s.index, s.end.pos));
    black_box(index_file::check_sanity(&fs, &s.index, fs.len()));
    Ok(())
}

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let _ = black_box(fuzz(input));
});
