//! Integration tests of `zfs_pack` (one test binary, one module per concern):
//!
//! - `experiments`: the experiment database (made by real ZODB), ZODB's bytes for
//!   it, the lock, dry runs, blobs, and bad inputs derived from it;
//! - `edge`: edge cases made by real ZODB, with ZODB's bytes;
//! - `decisions`: one test per rule where we differ from ZODB's packer (the list is in
//!   the crate's documentation), on small synthetic files (compared with ZODB's packer too by the `..._as_zodb` tests,
//!   ignored without the oracle's Python);
//! - `bad_input`: damaged files, interruption, and what is left behind on errors;
//! - `fuzzed`: inputs the fuzzer found, replayed through the fuzz target's body;
//! - `saved_refs`: packs from saved references (`prepare`, `<file>.refs`).

mod bad_input;
mod decisions;
mod edge;
mod experiments;
mod fuzzed;
mod saved_refs;

use std::path::{Path, PathBuf};
use std::process::Command;

use sha1::{Digest, Sha1};
use zfs_format::{NoProgress, Oid, Payload};

/// The experiment database (`testdata/oracle/make_pack_fixtures.py`, 20 transactions,
/// 9805 bytes).
pub fn experiment() -> PathBuf {
    data("experiment.fs")
}

/// A committed pack fixture (`testdata/fixtures/pack`).
pub fn data(name: &str) -> PathBuf {
    zfs_testdata::fixture(&format!("pack/{name}"))
}

/// Hex sha1 of a file.
pub fn sha1(p: &Path) -> String {
    Sha1::digest(std::fs::read(p).expect("readable"))
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Every path under `dir`, relative and sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, p: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(p).expect("dir") {
            let e = e.expect("entry");
            out.push(
                e.path()
                    .strip_prefix(root)
                    .expect("under")
                    .display()
                    .to_string(),
            );
            if e.file_type().expect("type").is_dir() {
                walk(root, &e.path(), out);
            }
        }
    }
    let mut v = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut v);
    }
    v.sort();
    v
}

/// Every strong reference of every data record points to an object of the file.
pub fn no_dangling(f: &Path) {
    let fs = zfs_format::FileStorage::open(f).expect("open");
    let mode = fs.magic().string_mode();
    let scan = zfs_format::scan::build_index(&fs, &NoProgress).expect("scan");
    for t in fs.transactions() {
        for r in t.expect("txn").records() {
            let r = r.expect("record");
            if let Payload::Data(d) = r.payload {
                let plain = zfs_format::pickle::untransform(d).expect("untransform");
                for o in zfs_format::pickle::references(&plain, mode).expect("refs") {
                    let oid = Oid(o.as_ref().try_into().expect("8 bytes"));
                    assert!(
                        scan.index.contains(oid),
                        "{} refers to missing {}",
                        r.oid,
                        oid
                    );
                }
            }
        }
    }
}

/// Packs `file` in place with ZODB's packer (testdata/oracle/pack_oracle.py), with its blob
/// directory `blobs` if given: ZODB's error, `None` when it packed. Panics without the
/// oracle's Python.
pub fn zodb_pack(file: &Path, stop: &str, gc: bool, blobs: Option<&Path>) -> Option<String> {
    let py = zfs_testdata::oracle::require_python();
    let script = zfs_testdata::oracle::script("pack_oracle.py");
    let mut cmd = Command::new(py);
    cmd.arg(script).arg(file).args(["--tid", stop]);
    if !gc {
        cmd.arg("--no-gc");
    }
    if let Some(b) = blobs {
        cmd.arg("--blobs").arg(b);
    }
    let out = cmd.output().expect("python runs");
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        line.starts_with('{'),
        "oracle: {line} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = line
        .split("\"error\": ")
        .nth(1)
        .expect("error field")
        .to_string();
    (!err.starts_with("null")).then_some(err)
}
