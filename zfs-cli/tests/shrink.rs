//! A file that shrinks while it is mapped (a live ZODB truncating an aborted commit, or an
//! operator) ends every command with an error naming it, never with SIGBUS, and no writer
//! renames anything built from it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt as _;

/// True once `pid` has `path` mapped.
fn has_mapped(pid: u32, path: &Path) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_default()
        .lines()
        .any(|l| l.ends_with(&*path.to_string_lossy()))
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig}");
}

fn names(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_file_shrinking_under_any_command_is_an_error_not_a_crash() {
    let big = zfs_testdata::datafs(400_000, 40);
    let cases: &[&[&str]] = &[
        &["check", "--no-index"],
        &["refs"],
        &["info"],
        &["dump"],
        &["stats"],
        &["reindex"],
        &["pack", "--days", "0", "--no-gc"],
    ];
    for args in cases {
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("Data.fs");
        std::fs::write(&f, &big).expect("write");
        let mut child = Command::cargo_bin("zodbfs")
            .expect("built")
            .args(*args)
            .arg(&f)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let pid = child.id();
        let t = Instant::now();
        while !has_mapped(pid, &f) {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "{args:?}: never mapped"
            );
            assert!(
                child.try_wait().expect("wait").is_none(),
                "{args:?} ended before it mapped the file"
            );
            std::thread::sleep(Duration::from_micros(100));
        }
        signal(pid, "-STOP");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&f)
            .expect("open")
            .set_len(4096)
            .expect("truncate");
        signal(pid, "-CONT");
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("shrank while it was read"), "{args:?}: {err}");
        let left = names(d.path());
        assert!(
            left.iter().all(|n| n == "Data.fs" || n == "Data.fs.lock"),
            "{args:?} left {left:?}"
        );
    }
}
