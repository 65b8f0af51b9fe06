//! How much of a Data.fs a pack's copy must read: the share of read windows (4 KB to 8 MB)
//! that hold at least one byte of a kept record.
//!
//!   cargo run --release -p zfs-benches --example kept_density DATA.fs DATA.fs.index [PACKED.index]
//!
//! Without PACKED.index, the records counted are the current revision of every object in
//! the index. With the `.index` of the same file packed at a time after its last
//! transaction, they are the kept ones: each kept object's current record (nothing after
//! the pack time is copied verbatim then). A window holding no such record is one the
//! copy could leave unread; where nearly every window holds one, the copy reads the whole
//! file again, whatever it skips inside the windows.

use std::error::Error;

use zfs_format::record::RawDataHeader;
use zfs_format::{index_file, FileStorage, Index};

fn load(path: &str) -> Result<Index, Box<dyn Error>> {
    let bytes = std::fs::read(path).map_err(|e| format!("'{path}': {e}"))?;
    Ok(index_file::load_index(&bytes)?.1)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, index, rest @ ..] = args.as_slice() else {
        return Err("usage: kept_density DATA.fs DATA.fs.index [PACKED.index]".into());
    };
    let fs = FileStorage::open(data)?;
    let index = load(index)?;
    let kept = rest.first().map(|p| load(p)).transpose()?;
    let mut ranges = Vec::with_capacity(index.len());
    for (oid, pos) in index.iter() {
        if kept.as_ref().is_some_and(|k| !k.contains(oid)) {
            continue;
        }
        let end = RawDataHeader::decode(fs.bytes(), pos)
            .and_then(|h| h.end())
            .ok_or_else(|| format!("'{data}': no record at offset {pos} (oid {oid})"))?;
        ranges.push((pos, end));
    }
    ranges.sort_unstable();
    let bytes: u64 = ranges.iter().map(|(s, e)| e - s).sum();
    println!(
        "{} records, {} bytes ({:.1}% of the file's {})",
        ranges.len(),
        bytes,
        100.0 * bytes as f64 / fs.len() as f64,
        fs.len()
    );
    for window in [4u64 << 10, 64 << 10, 128 << 10, 1 << 20, 8 << 20] {
        let mut held = 0u64;
        let mut last = None;
        for &(s, e) in &ranges {
            let first = (s / window).max(last.map_or(0, |l| l + 1));
            let end = (e - 1) / window;
            if first <= end {
                held += end - first + 1;
                last = Some(end);
            }
        }
        let all = fs.len().div_ceil(window);
        println!(
            "{:>5} KB windows: {held} of {all} hold a record ({:.1}%)",
            window >> 10,
            100.0 * held as f64 / all as f64
        );
    }
    Ok(())
}
