//! `zodbfs pack` never loses data: damage in the middle is refused, a torn tail is kept in
//! `.trN`, modes are kept, planted symlinks and wrong paths change nothing, a missing index
//! is written even when there is nothing to pack.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::prelude::*;

fn fixture(name: &str) -> PathBuf {
    zfs_testdata::fixture(name)
}

fn zodbfs() -> Command {
    Command::cargo_bin("zodbfs").expect("built")
}

/// Positions of the transactions of a clean file.
fn txn_positions(d: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut pos = 4;
    while let Some(h) = zfs_format::txn::RawTxnHeader::decode(d, pos) {
        v.push(usize::try_from(pos).expect("small"));
        pos = h.next_pos().expect("small");
    }
    v
}

fn names(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
}

#[test]
fn damage_in_the_middle_is_refused_and_nothing_changes() {
    let clean = std::fs::read(fixture("undo.fs")).expect("fixture");
    let at = txn_positions(&clean)[10];
    let mut status_c = clean.clone();
    status_c[at + 16] = b'c';
    let mut tlen_max = clean.clone();
    tlen_max[at + 8..at + 16].copy_from_slice(&[0xff; 8]);
    for (case, bytes) in [("status c", status_c), ("tlen 2^64-1", tlen_max)] {
        for dry in [false, true] {
            let d = tempfile::tempdir().expect("tempdir");
            let f = d.path().join("Data.fs");
            std::fs::write(&f, &bytes).expect("write");
            let mut cmd = zodbfs();
            cmd.args(["pack", "--days", "0"]).arg(&f);
            if dry {
                cmd.arg("--dry-run");
            }
            let out = cmd.output().expect("runs");
            assert_eq!(out.status.code(), Some(3), "{case} dry={dry}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains(&format!("end at offset {at}"))
                    && err.contains("zodbfs recover")
                    && err.contains("nothing was changed"),
                "{case}: {err}"
            );
            assert_eq!(std::fs::read(&f).expect("read"), bytes, "{case}");
            let left = names(d.path());
            assert!(
                left.iter().all(|n| n == "Data.fs" || n == "Data.fs.lock"),
                "{case}: {left:?}"
            );
        }
    }
}

#[test]
fn a_torn_tail_is_saved_in_a_trn_file_with_the_database_mode() {
    let clean = std::fs::read(fixture("undo.fs")).expect("fixture");
    let last = *txn_positions(&clean).last().expect("txns");
    let torn = &clean[..last + 40];
    for keep_old in [true, false] {
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("Data.fs");
        std::fs::write(&f, torn).expect("write");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let mut cmd = zodbfs();
        cmd.args(["pack", "--days", "0", "--json"]).arg(&f);
        if !keep_old {
            cmd.arg("--no-keep-old");
        }
        let out = cmd.output().expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["outcome"], "packed");
        assert_eq!(v["tail_bytes"], 40);
        let tr0 = d.path().join("Data.fs.tr0");
        assert_eq!(v["tail_saved_to"], tr0.display().to_string());
        assert_eq!(std::fs::read(&tr0).expect("tr0"), &torn[last..]);
        for n in ["Data.fs", "Data.fs.index", "Data.fs.tr0"] {
            assert_eq!(mode(&d.path().join(n)), 0o600, "{n}");
        }
        // The next pack has nothing left to lose: the tail is in .tr0 whatever happens
        // to .old.
        let out = zodbfs()
            .args(["pack", "--days", "0"])
            .arg(&f)
            .output()
            .expect("runs");
        assert!(out.status.success());
        assert_eq!(std::fs::read(&tr0).expect("tr0"), &torn[last..]);
    }
}

#[test]
fn planted_symlinks_change_nothing() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = d.path().join("Data.fs");
    std::fs::copy(fixture("undo.fs"), &f).expect("copy");
    let victim = d.path().join("victim");
    std::fs::write(&victim, b"precious").expect("write");
    // The fixed names older versions (and ZODB) used, and ours for this pid range.
    for n in [
        "Data.fs.pack",
        "Data.fs.index.index_tmp",
        "Data.fs.index",
        "Data.fs.old",
    ] {
        std::os::unix::fs::symlink(&victim, d.path().join(n)).expect("symlink");
    }
    let out = zodbfs()
        .args(["pack", "--days", "0"])
        .arg(&f)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&victim).expect("read"), b"precious");
    for n in ["Data.fs", "Data.fs.index", "Data.fs.old"] {
        let m = std::fs::symlink_metadata(d.path().join(n)).expect("meta");
        assert!(m.is_file(), "{n} is a regular file of ours");
    }
    // A symlinked lock file is refused: zc.lockfile would truncate its target.
    let d = tempfile::tempdir().expect("tempdir");
    let f = d.path().join("Data.fs");
    std::fs::copy(fixture("undo.fs"), &f).expect("copy");
    std::os::unix::fs::symlink(&victim, d.path().join("Data.fs.lock")).expect("symlink");
    let out = zodbfs()
        .args(["pack", "--days", "0"])
        .arg(&f)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read(&victim).expect("read"), b"precious");
    assert_eq!(
        std::fs::read(&f).expect("read"),
        std::fs::read(fixture("undo.fs")).expect("read")
    );
}

#[test]
fn wrong_paths_leave_no_lock_file() {
    let d = tempfile::tempdir().expect("tempdir");
    for p in [d.path().join("nosuch.fs"), d.path().to_path_buf()] {
        let out = zodbfs()
            .args(["pack", "--days", "0"])
            .arg(&p)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1), "{}", p.display());
    }
    assert!(names(d.path()).is_empty(), "{:?}", names(d.path()));
}

#[test]
fn a_pack_with_nothing_to_do_writes_a_missing_index() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = d.path().join("Data.fs");
    std::fs::copy(fixture("undo.fs"), &f).expect("copy");
    zodbfs()
        .args(["pack", "--days", "0"])
        .arg(&f)
        .assert()
        .success();
    let index = d.path().join("Data.fs.index");
    let want = std::fs::read(&index).expect("index");
    // As after a pack killed between its two renames: the packed file without its index.
    std::fs::remove_file(&index).expect("rm");
    let packed = std::fs::read(&f).expect("read");
    zodbfs()
        .args(["pack", "--days", "0"])
        .arg(&f)
        .assert()
        .success();
    assert_eq!(std::fs::read(&f).expect("read"), packed);
    assert_eq!(std::fs::read(&index).expect("index"), want);
    // A stale index (another file's) is replaced too.
    std::fs::copy(fixture("small.expected").join("index"), &index).expect("copy");
    zodbfs()
        .args(["pack", "--days", "0"])
        .arg(&f)
        .assert()
        .success();
    assert_eq!(std::fs::read(&index).expect("index"), want);
}
