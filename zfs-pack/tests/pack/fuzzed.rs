//! Replays inputs the fuzzer found (`tests/fuzzed/pack/*`) and mutated fixtures through the
//! body of the `pack` fuzz target, so `cargo test` keeps the pack's analysis and copies
//! panic-free without a nightly toolchain.

use std::fs;
use std::path::{Path, PathBuf};

use zfs_pack::fuzzing;

fn inputs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzzed/pack");
    let mut v: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn pack_inputs_do_not_panic() {
    let files = inputs();
    for p in &files {
        let data = fs::read(p).expect("read input");
        let r = std::panic::catch_unwind(|| fuzzing::pack(&data));
        assert!(r.is_ok(), "pack: {} panics", p.display());
    }
    assert!(!files.is_empty(), "no committed pack inputs");
}

/// The experiment database, and a single-byte change at every 16th offset of its first
/// 4 KiB.
#[test]
fn mutated_fixture_does_not_panic() {
    let data = fs::read(crate::experiment()).expect("fixture");
    fuzzing::pack(&data);
    let n = data.len().min(4096);
    for i in (0..n).step_by(16) {
        let mut m = data.clone();
        m[i] ^= 0x55;
        fuzzing::pack(&m);
    }
}
