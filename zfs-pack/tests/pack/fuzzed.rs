//! Replays inputs the fuzzer found (`tests/fuzzed/pack/*`) and mutated fixtures through the
//! body of the `pack` fuzz target, so `cargo test` keeps the pack's analysis and copies
//! panic-free without a nightly toolchain; and the inputs of the `pack_refs` target
//! (`tests/fuzzed/pack_refs/*`: its seeds, and what the fuzzer found), whose packs with and
//! without saved references must agree.

use std::fs;
use std::path::{Path, PathBuf};

use zfs_pack::{fuzzing, SavedReferences};

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzzed")
        .join(target);
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
    let files = inputs("pack");
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

/// The seeds (named `seed-*`: small files with garbage to collect, their references as
/// saved or changed) and the inputs the fuzzer found. A seed whose references are as
/// saved (`seed-*-as-saved*`) must reach the pack from them, so that the fuzzer starts
/// from inputs that exercise it.
#[test]
fn pack_refs_inputs_do_not_panic() {
    let files = inputs("pack_refs");
    let mut used = 0;
    for p in &files {
        let data = fs::read(p).expect("read input");
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        let r = std::panic::catch_unwind(|| fuzzing::pack_refs_report(&data));
        let Ok(how) = r else {
            panic!("pack_refs: {} panics", p.display());
        };
        if name.starts_with("seed-") && name.contains("-as-saved") {
            assert_eq!(how, Some(SavedReferences::Used), "{name}");
        }
        used += usize::from(how == Some(SavedReferences::Used));
    }
    assert!(
        used > 0,
        "no committed pack_refs input packs from saved references"
    );
}
