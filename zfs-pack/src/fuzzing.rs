//! The body of the pack's fuzz target, shared by `fuzz/` (cargo-fuzz) and by the replay
//! test `tests/pack/fuzzed.rs`, so that an input once found by the fuzzer is checked by
//! `cargo test`. It must return normally on any input; a panic is a bug (a failed
//! assertion names the property that broke).

use std::hint::black_box;
use std::path::{Path, PathBuf};

use zfs_format::fuzzing::{assert_sound, Scratch};
use zfs_format::index_file::load_index;
use zfs_format::{scan, FileStorage, NoProgress, Tid};

use crate::{pack_storage, Outcome, PackOptions, Report, Result};

/// Packs arbitrary bytes as a Data.fs: dry runs (the analysis and the copy before the pack
/// time, with and without GC, at three pack times) over the bytes in memory and over a
/// file (positioned reads), which must agree; then a real pack of the file to the middle
/// of its history, whose output must be a sound FileStorage with the `.index` of its
/// records.
pub fn pack(input: &[u8]) {
    let Ok(mem) = FileStorage::from_data(input, PathBuf::new()) else {
        return;
    };
    let stops = stops(&mem);
    let mut in_memory = Vec::new();
    for &stop in &stops {
        for gc in [true, false] {
            in_memory.push(dry_run(&mem, Path::new(""), stop, gc));
        }
    }
    let Some(dir) = Scratch::new() else {
        return;
    };
    let path = dir.path("Data.fs");
    if std::fs::write(&path, input).is_err() {
        return;
    }
    {
        let Ok(fs) = FileStorage::open(&path) else {
            return;
        };
        let mut on_file = Vec::new();
        for &stop in &stops {
            for gc in [true, false] {
                on_file.push(dry_run(&fs, &path, stop, gc));
            }
        }
        for (m, f) in in_memory.iter().zip(&on_file) {
            assert_eq!(
                summary(m),
                summary(f),
                "a dry run over the mapping and one with positioned reads disagree"
            );
        }
    }
    real_pack(&path, stops[stops.len() / 2]);
}

/// Pack times: before the first transaction's tid, the middle one's, after the last one's.
fn stops<T: std::ops::Deref<Target = [u8]>>(fs: &FileStorage<T>) -> Vec<Tid> {
    let tids: Vec<Tid> = fs
        .transactions()
        .map_while(|t| t.ok().map(|t| t.tid()))
        .collect();
    let (Some(first), Some(last)) = (tids.first(), tids.last()) else {
        return vec![Tid::from_u64(u64::MAX)];
    };
    vec![
        Tid::from_u64(first.as_u64().saturating_sub(1).max(1)),
        tids[tids.len() / 2],
        Tid::from_u64(last.as_u64().saturating_add(1)),
    ]
}

/// A dry run of the pack of `fs` (at `path`) to `stop`.
fn dry_run<T>(fs: &FileStorage<T>, path: &Path, stop: Tid, gc: bool) -> Result<Report>
where
    T: std::ops::Deref<Target = [u8]> + Sync,
{
    let opts = PackOptions {
        gc,
        dry_run: true,
        ..PackOptions::new(stop)
    };
    black_box(pack_storage(fs, path, &opts, &NoProgress))
}

/// What two runs of the same pack must agree on: the outcome and the sizes, or failing.
fn summary(r: &Result<Report>) -> Option<(Outcome, u64, u64, u64, u64)> {
    r.as_ref().ok().map(|r| {
        (
            r.outcome,
            r.size_after,
            r.packpos,
            r.records_removed,
            r.objects_kept,
        )
    })
}

/// Packs the file at `path` for real; a packed file must be sound and come with its index.
fn real_pack(path: &Path, stop: Tid) {
    let Ok(fs) = FileStorage::open(path) else {
        return;
    };
    let opts = PackOptions {
        keep_old: false,
        ..PackOptions::new(stop)
    };
    let report = pack_storage(&fs, path, &opts, &NoProgress);
    drop(fs);
    let Ok(report) = report else {
        return;
    };
    if report.outcome != Outcome::Packed {
        return;
    }
    let Ok(bytes) = std::fs::read(path) else {
        return;
    };
    assert_eq!(bytes.len() as u64, report.size_after, "packed size");
    assert_sound(&bytes, "packed file");
    let mut index_path = path.as_os_str().to_os_string();
    index_path.push(".index");
    let Ok(saved) = std::fs::read(&index_path) else {
        return;
    };
    let (pos, index) = load_index(&saved).expect("the packed file's .index loads");
    assert_eq!(pos, report.size_after, "the .index covers the packed file");
    let packed = FileStorage::from_data(&bytes[..], path.to_path_buf()).expect("magic");
    let scanned = scan::build_index(&packed, &NoProgress).expect("a sound file scans");
    assert!(
        scanned.index == index,
        "the .index differs from the packed file's records"
    );
}
