//! `zodbfs pack` end to end: ZODB's bytes, the database lock against a live ZODB, a full
//! disk, a pack killed midway, dangling references.

mod signals;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use assert_cmd::prelude::*;
use sha1::{Digest, Sha1};

fn fixture(name: &str) -> PathBuf {
    zfs_testdata::fixture(&format!("pack/{name}"))
}

fn sha1(p: &Path) -> String {
    Sha1::digest(std::fs::read(p).expect("readable"))
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn copy(name: &str, dir: &Path) -> PathBuf {
    let f = dir.join("Data.fs");
    std::fs::copy(fixture(name), &f).expect("copy");
    f
}

fn zodbfs() -> Command {
    Command::cargo_bin("zodbfs").expect("built")
}

/// Runs `cmd`, which must succeed (its stderr shown otherwise), and returns its stdout.
fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn packs_like_zodb_and_reports_json() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = copy("experiment.fs", d.path());
    let out = stdout_of(
        zodbfs()
            .args(["pack", "--tid", "03f58e00b7777778", "--json"])
            .arg(&f),
    );
    // ZODB 6.4's FileStorage.pack with GC at this stop tid.
    assert_eq!(sha1(&f), "afa9fc9d9fbbc91daf43532ac0020436eb0d4103");
    assert_eq!(
        sha1(&d.path().join("Data.fs.index")),
        "70161b0624156002f7f076322ad996a1aeff0fa4"
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["outcome"], "packed");
    assert_eq!(v["size_before"], 9805);
    assert_eq!(v["size_after"], 2491);
    assert_eq!(v["objects_kept"], 12);
}

#[test]
fn a_prepared_pack_reads_the_saved_references_and_packs_as_without() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = copy("experiment.fs", d.path());
    let g = d.path().join("Other.fs");
    std::fs::copy(&f, &g).expect("copy");
    for file in [&f, &g] {
        zodbfs().arg("reindex").arg(file).assert().success();
    }
    let text = stdout_of(zodbfs().args(["pack", "--prepare"]).arg(&f));
    assert!(text.contains("references of 17 objects saved to"), "{text}");
    // Only the pack itself may be combined with nothing else.
    zodbfs()
        .args(["pack", "--prepare", "--days", "1"])
        .arg(&f)
        .assert()
        .code(2);
    let text = stdout_of(zodbfs().arg("pack").arg(&f));
    assert!(text.contains("references: from"), "{text}");
    assert!(
        text.contains("references of the packed file saved to"),
        "{text}"
    );
    let text = stdout_of(zodbfs().arg("pack").arg(&g));
    assert!(!text.contains("references: "), "{text}");
    assert!(
        text.contains("references of the packed file saved to"),
        "{text}"
    );
    // The same packed file, index and references for the next pack, either way.
    for suffix in ["", ".index", ".refs"] {
        assert_eq!(
            sha1(&zfs_files::with_suffix(&f, suffix)),
            sha1(&zfs_files::with_suffix(&g, suffix)),
            "{suffix}"
        );
    }
}

#[test]
#[ignore = "needs the ZODB oracle: testdata/oracle/setup.sh, or ORACLE_PY"]
fn refuses_while_a_zodb_holds_the_database_open() {
    let py = zfs_testdata::oracle::require_python();
    let d = tempfile::tempdir().expect("tempdir");
    let f = copy("experiment.fs", d.path());
    let mut live = Command::new(py)
        .args([
            "-c",
            "import sys, ZODB.FileStorage as F; s = F.FileStorage(sys.argv[1]); print('open', flush=True); sys.stdin.read(); s.close()",
        ])
        .arg(&f)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(live.stdout.as_mut().expect("stdout")),
        &mut line,
    )
    .expect("ready");
    assert_eq!(line.trim(), "open");
    let before = sha1(&f);
    let out = zodbfs()
        .args(["pack", "--tid", "03f58e00b7777778"])
        .arg(&f)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("locked"), "{err}");
    assert_eq!(sha1(&f), before);
    assert!(!d.path().join("Data.fs.pack").exists() && !d.path().join("Data.fs.old").exists());
    drop(live.stdin.take());
    assert!(live.wait().expect("python exits").success());
    zodbfs()
        .args(["pack", "--tid", "03f58e00b7777778"])
        .arg(&f)
        .assert()
        .success();
    assert_eq!(sha1(&f), "afa9fc9d9fbbc91daf43532ac0020436eb0d4103");
}

#[test]
fn a_full_disk_leaves_the_original_and_no_pack_file() {
    // RLIMIT_FSIZE stands for a full disk: writes past N KiB fail with EFBIG. At this stop
    // the packed file has 8523 bytes, so every limit below fails, in phase C (before the
    // pack time) for the small ones, in phase D (after it) for the larger ones.
    let bin = assert_cmd::cargo::cargo_bin("zodbfs");
    for kib in [1, 4, 8] {
        let d = tempfile::tempdir().expect("tempdir");
        let f = copy("experiment.fs", d.path());
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "trap '' XFSZ; ulimit -f {kib}; exec \"$0\" pack --tid 03f58e0077777777 \"$1\""
            ))
            .arg(&bin)
            .arg(&f)
            .output()
            .expect("bash");
        assert_eq!(out.status.code(), Some(1), "limit {kib} KiB");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(".Data.fs.tmp-")
                && err.contains("unchanged")
                && err.contains("File too large"),
            "limit {kib} KiB: {err}"
        );
        assert_eq!(sha1(&f), sha1(&fixture("experiment.fs")));
        let left: Vec<_> = std::fs::read_dir(d.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n != "Data.fs" && n != "Data.fs.lock")
            .collect();
        assert!(left.is_empty(), "limit {kib} KiB left {left:?}");
    }
}

#[test]
fn pack_time_as_zodb_computes_it() {
    // ZODB: TimeStamp(*gmtime(t)[:5] + (t % 60,)) for t = 1700000000.5 and 1700000000.0.
    for (time, want) in [
        ("2023-11-14 22:13:20.5", "03f47f9557777777"),
        ("2023-11-14T22:13:20", "03f47f9555555555"),
    ] {
        let d = tempfile::tempdir().expect("tempdir");
        let f = copy("experiment.fs", d.path());
        let out = zodbfs()
            .args(["pack", "--dry-run", "--json", "--time", time])
            .arg(&f)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["stop_tid"], want, "--time {time}");
    }
    // --days N: N days before now, so more days give an earlier stop tid.
    let d = tempfile::tempdir().expect("tempdir");
    let f = copy("experiment.fs", d.path());
    let stop = |days: &str| {
        let out = zodbfs()
            .args(["pack", "--dry-run", "--json", "--days", days])
            .arg(&f)
            .output()
            .expect("runs");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        u64::from_str_radix(v["stop_tid"].as_str().expect("tid"), 16).expect("hex")
    };
    let (s0, s1, s2) = (stop("0"), stop("1"), stop("2.5"));
    assert!(s0 > s1 && s1 > s2, "{s0:x} {s1:x} {s2:x}");
    // A day is 1440 minutes in the high 4 bytes, unless a month boundary lies between
    // (ZODB's months are 31 days long).
    assert!((s0 >> 32) - (s1 >> 32) >= 1440 && (s0 >> 32) - (s1 >> 32) <= 1440 * 4);
    zodbfs()
        .args(["pack", "--days", "1", "--tid", "03f47f9557777777"])
        .arg(&f)
        .assert()
        .code(2);
    zodbfs()
        .args(["pack", "--tid", "123"])
        .arg(&f)
        .assert()
        .failure()
        .stderr(predicates::str::contains("16 hex digits"));
}

#[test]
fn dry_run_reports_and_writes_nothing() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = copy("experiment.fs", d.path());
    let out = zodbfs()
        .args(["pack", "--dry-run", "--tid", "03f58e00b7777778"])
        .arg(&f)
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("would pack") && text.contains("9805 -> 2491 bytes"),
        "{text}"
    );
    let names: Vec<_> = std::fs::read_dir(d.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("Data.fs")]);
}

#[test]
fn dry_run_says_when_the_database_is_open() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = copy("experiment.fs", d.path());
    let dry = || {
        zodbfs()
            .args(["pack", "--dry-run", "--json", "--tid", "03f58e00b7777778"])
            .arg(&f)
            .output()
            .expect("runs")
    };
    let open = |o: &std::process::Output| -> bool {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        v["database_open"].as_bool().expect("a boolean")
    };
    let o = dry();
    assert!(o.status.success());
    assert!(!open(&o));
    assert!(String::from_utf8_lossy(&o.stderr).is_empty());
    // As a running ZODB does: the lock held by another process (here, this test).
    let lock = zfs_pack::lock::acquire(&f).expect("lock");
    let o = dry();
    assert!(o.status.success(), "a dry run still reports");
    assert!(open(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Data.fs.lock") && err.contains("would refuse"),
        "{err}"
    );
    // The real pack refuses, as the note said.
    zodbfs()
        .args(["pack", "--tid", "03f58e00b7777778"])
        .arg(&f)
        .assert()
        .failure();
    drop(lock);
    assert!(!open(&dry()));
}

#[test]
fn no_keep_old_removes_the_old_file() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = copy("experiment.fs", d.path());
    zodbfs()
        .args(["pack", "--no-keep-old", "--tid", "03f58e00b7777778"])
        .arg(&f)
        .assert()
        .success();
    assert_eq!(sha1(&f), "afa9fc9d9fbbc91daf43532ac0020436eb0d4103");
    assert!(!d.path().join("Data.fs.old").exists());
    assert!(!d.path().join("Data.fs.pack").exists());
}

#[test]
fn dangling_references_exit_3_and_are_listed() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = copy("dangling.fs", d.path());
    let out = zodbfs()
        .args(["pack", "--tid", "040d3310866488ef"])
        .arg(&f)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "oid 0000000000000002 (record at offset 7807) -> missing oid 0000000000000005"
        ),
        "{err}"
    );
    assert!(err.contains("-> missing oid 000000000000000b"), "{err}");
    assert_eq!(sha1(&f), sha1(&fixture("dangling.fs")));
    zodbfs()
        .args(["pack", "--tid", "040d3310866488ef", "--allow-dangling"])
        .arg(&f)
        .assert()
        .success();
}

/// A synthetic file of `n` transactions, each rewriting a few objects (garbage to remove).
fn big_file(path: &Path, n: u64) {
    fn pickle(i: u64) -> Vec<u8> {
        let mut p = b"\x80\x03cpersistent.mapping\nPersistentMapping\nq\x00.\x80\x03}q\x01X\x04\x00\x00\x00dataq\x02}q\x03s.".to_vec();
        p.extend(vec![b' '; (i % 7) as usize]);
        p
    }
    let f = zfs_testdata::Maker::new()
        .tids(0x03f5_8e00_0000_0000, 0x1000)
        .meta(b"u", b"d")
        .txns(n, |t| {
            (0..20).map(move |k| {
                let oid = if k == 0 { 0 } else { (t * 7 + k) % 5000 + 1 };
                (oid, pickle(t + k))
            })
        });
    std::fs::write(path, f.into_bytes()).expect("write");
}

#[test]
fn sigterm_midway_changes_nothing_and_removes_the_pack_file() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = d.path().join("Data.fs");
    big_file(&f, 60_000);
    let before = sha1(&f);
    let mut child = zodbfs()
        .args(["--quiet", "pack", "--tid", "0400000000000000"])
        .arg(&f)
        .spawn()
        .expect("spawn");
    signals::sigterm_once_handled(child.id());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    assert_eq!(sha1(&f), before);
    assert!(!d.path().join("Data.fs.pack").exists());
    assert!(!d.path().join("Data.fs.old").exists());
}

#[test]
fn a_pack_killed_midway_changes_nothing_and_the_next_pack_works() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = d.path().join("Data.fs");
    big_file(&f, 40_000);
    let before = sha1(&f);
    let mut child = zodbfs()
        .args(["--quiet", "pack", "--tid", "0400000000000000"])
        .arg(&f)
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(150));
    let _ = child.kill();
    let _ = child.wait();
    // Killed before the rename: the original is intact (a `.pack` may remain); killed
    // after it: the packed file is in place and the original is `.old`.
    let old = d.path().join("Data.fs.old");
    let completed = old.exists();
    if completed {
        assert_eq!(sha1(&old), before);
    } else {
        assert_eq!(sha1(&f), before);
    }
    zodbfs()
        .args(["--quiet", "pack", "--tid", "0400000000000000"])
        .arg(&f)
        .assert()
        .success();
    assert!(!d.path().join("Data.fs.pack").exists());
    if !completed {
        assert_eq!(sha1(&old), before);
        assert_ne!(sha1(&f), before);
    }
}

#[test]
fn help_names_the_deliberate_differences_from_zodb() {
    zodbfs()
        .args(["pack", "--help"])
        .assert()
        .success()
        .stdout(predicates::str::contains("--allow-dangling packs anyway"))
        .stdout(predicates::str::contains("ZODB: PackError"))
        .stdout(predicates::str::contains("130 interrupted"));
}

#[test]
fn a_mistyped_blob_directory_is_a_usage_error_and_changes_nothing() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = copy("experiment.fs", d.path());
    let before = sha1(&f);
    let out = zodbfs()
        .args(["pack", "--tid", "03f58e00b7777778", "--blobs"])
        .arg(d.path().join("blobstorge"))
        .arg(&f)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("blobstorge': not a blob directory (it does not exist)"),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(sha1(&f), before);
    assert!(!d.path().join("Data.fs.old").exists());
    assert!(!d.path().join("blobstorge").exists());
}
