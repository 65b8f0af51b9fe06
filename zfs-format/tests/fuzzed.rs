//! Replays inputs the fuzzers found (`tests/fuzzed/<target>/*`) and mutated fixtures through
//! the fuzz targets' bodies, so `cargo test` keeps every parser panic-free without a nightly
//! toolchain.

use std::fs;
use std::path::{Path, PathBuf};

use zfs_format::fuzzing;

fn inputs(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzzed")
        .join(dir);
    let mut v: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn replay(target: &str, f: fn(&[u8])) -> usize {
    let files = inputs(target);
    for p in &files {
        let data = fs::read(p).expect("read input");
        let r = std::panic::catch_unwind(|| f(&data));
        assert!(r.is_ok(), "{target}: {} panics", p.display());
    }
    files.len()
}

#[test]
fn datafs_inputs_do_not_panic() {
    assert!(
        replay("datafs", fuzzing::datafs) > 0,
        "no committed datafs inputs"
    );
}

#[test]
fn index_file_inputs_do_not_panic() {
    assert!(
        replay("index_file", fuzzing::index_file) > 0,
        "no committed index_file inputs"
    );
}

#[test]
fn refs_file_inputs_do_not_panic() {
    assert!(
        replay("refs_file", fuzzing::refs_file) > 0,
        "no committed refs_file inputs"
    );
}

#[test]
fn pickle_inputs_do_not_panic() {
    assert!(
        replay("pickle", fuzzing::pickle) > 0,
        "no committed pickle inputs"
    );
}

/// Every single-byte change in the first 2 KiB of a fixture, and every truncation there.
#[test]
fn mutated_fixture_prefixes_do_not_panic() {
    let fixture = zfs_testdata::fixture("undo.fs");
    let data = fs::read(&fixture).expect("fixture");
    let n = data.len().min(2048);
    for i in 0..n {
        fuzzing::datafs(&data[..i]);
        let mut m = data[..n].to_vec();
        for v in [0x00, 0xff, m[i] ^ 0x80] {
            m[i] = v;
            fuzzing::datafs(&m);
        }
    }
}
