//! `zodbfs recover` and `zodbfs reindex` never write over their input, never through a
//! planted symlink, never leave a partial output, and keep the database's mode.

mod signals;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use assert_cmd::prelude::*;

fn fixture(name: &str) -> PathBuf {
    zfs_testdata::fixture(name)
}

fn zodbfs() -> Command {
    Command::cargo_bin("zodbfs").expect("built")
}

fn names(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `Data.fs` plus a hard link and a symlink to it, in a new directory.
fn database_with_links() -> (tempfile::TempDir, PathBuf, Vec<PathBuf>) {
    let d = tempfile::tempdir().expect("tempdir");
    let f = d.path().join("Data.fs");
    std::fs::copy(fixture("small.fs"), &f).expect("copy");
    let hard = d.path().join("hard.fs");
    std::fs::hard_link(&f, &hard).expect("link");
    let sym = d.path().join("sym.fs");
    std::os::unix::fs::symlink(&f, &sym).expect("symlink");
    (d, f.clone(), vec![f, hard, sym])
}

#[test]
fn recover_and_reindex_refuse_their_input_as_output() {
    let want = std::fs::read(fixture("small.fs")).expect("fixture");
    let (d, f, outs) = database_with_links();
    for o in &outs {
        let out = zodbfs()
            .args(["recover", "--force"])
            .arg(&f)
            .arg(o)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1), "recover -> {}", o.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is the input file"), "{err}");
        let out = zodbfs()
            .arg("reindex")
            .arg(&f)
            .arg("-o")
            .arg(o)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1), "reindex -> {}", o.display());
        assert_eq!(std::fs::read(&f).expect("read"), want);
    }
    assert_eq!(names(d.path()), ["Data.fs", "hard.fs", "sym.fs"]);
}

#[test]
fn recover_does_not_follow_a_dangling_symlink_and_force_replaces_the_link_itself() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = d.path().join("Data.fs");
    std::fs::copy(fixture("small.fs"), &f).expect("copy");
    let out_path = d.path().join("out.fs");
    let elsewhere = d.path().join("elsewhere.fs");
    std::os::unix::fs::symlink(&elsewhere, &out_path).expect("symlink");
    let out = zodbfs()
        .arg("recover")
        .arg(&f)
        .arg(&out_path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert!(!elsewhere.exists());
    zodbfs()
        .args(["recover", "--force"])
        .arg(&f)
        .arg(&out_path)
        .assert()
        .success();
    assert!(!elsewhere.exists());
    assert!(std::fs::symlink_metadata(&out_path)
        .expect("meta")
        .is_file());
}

#[test]
fn outputs_keep_the_database_mode() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = d.path().join("Data.fs");
    std::fs::copy(fixture("small.fs"), &f).expect("copy");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let r = d.path().join("out.fs");
    zodbfs().arg("recover").arg(&f).arg(&r).assert().success();
    zodbfs().arg("reindex").arg(&f).assert().success();
    for p in [r, d.path().join("Data.fs.index")] {
        let m = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(m, 0o600, "{}", p.display());
    }
}

#[test]
fn a_full_disk_leaves_no_partial_output() {
    let bin = assert_cmd::cargo::cargo_bin("zodbfs");
    for kib in [1, 16, 64] {
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("Data.fs");
        std::fs::copy(fixture("small.fs"), &f).expect("copy");
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "trap '' XFSZ; ulimit -f {kib}; exec \"$0\" recover \"$1\" \"$2\""
            ))
            .arg(&bin)
            .arg(&f)
            .arg(d.path().join("out.fs"))
            .output()
            .expect("bash");
        assert_eq!(out.status.code(), Some(1), "limit {kib} KiB");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("out.fs") && err.contains("File too large"),
            "{err}"
        );
        assert_eq!(names(d.path()), ["Data.fs"], "limit {kib} KiB");
    }
}

#[test]
fn sigterm_leaves_no_output() {
    // Large enough that the work outlasts the signal's delivery (stop, signal, continue
    // once the handler is in place).
    let big = zfs_testdata::datafs(300_000, 40);
    for cmd in ["recover", "reindex"] {
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("Data.fs");
        std::fs::write(&f, &big).expect("write");
        let mut c = zodbfs();
        c.arg(cmd).arg(&f);
        if cmd == "recover" {
            c.arg(d.path().join("out.fs"));
        }
        let child = c
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        signals::sigterm_once_handled(child.id());
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(130), "{cmd}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("interrupted"),
            "{cmd}"
        );
        assert_eq!(names(d.path()), ["Data.fs"], "{cmd}");
    }
}
