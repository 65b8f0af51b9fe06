//! Replays inputs the fuzzers found (`tests/fuzzed/<target>/*`) and mutated fixtures through
//! the bodies of the `check` and `recover` fuzz targets, so `cargo test` keeps the tolerant
//! walkers panic-free without a nightly toolchain.

use std::fs;
use std::path::{Path, PathBuf};

use zfs_check::fuzzing;

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
fn check_inputs_do_not_panic() {
    assert!(
        replay("check", fuzzing::check) > 0,
        "no committed check inputs"
    );
}

#[test]
fn recover_inputs_do_not_panic() {
    assert!(
        replay("recover", fuzzing::recover) > 0,
        "no committed recover inputs"
    );
}

/// Three single-byte changes and one truncation at every third offset of the first 2 KiB
/// of a fixture written by ZODB.
#[test]
fn mutated_fixture_prefixes_do_not_panic() {
    let fixture = zfs_testdata::fixture("check/base.fs");
    let data = fs::read(&fixture).expect("fixture");
    let n = data.len().min(2048);
    for i in (0..n).step_by(3) {
        fuzzing::check(&data[..i]);
        fuzzing::recover(&data[..i]);
        let mut m = data.clone();
        for v in [0x00, 0xff, m[i] ^ 0x80] {
            m[i] = v;
            fuzzing::check(&m);
            fuzzing::recover(&m);
        }
    }
}
