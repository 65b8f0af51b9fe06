//! `zodbfs check`, `refs`, `recover`, `stats`, `oids` as a user runs them: exit codes,
//! output, JSON.

use assert_cmd::Command;
use predicates::prelude::*;

const BASE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/fixtures/check/base.fs"
);
const PACKED_DANGLING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/fixtures/check/packed_dangling.fs"
);

fn zodbfs() -> Command {
    Command::cargo_bin("zodbfs").expect("the zodbfs binary is built")
}

/// A copy of base.fs in a temporary directory, with `edit` applied.
fn damaged(edit: impl FnOnce(&mut Vec<u8>)) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut v = std::fs::read(BASE).expect("fixture");
    edit(&mut v);
    let p = dir.path().join("Data.fs");
    std::fs::write(&p, v).expect("write");
    (dir, p)
}

#[test]
fn check_clean_file_exits_0() {
    zodbfs()
        .args(["check", BASE])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("no problems found"));
}

#[test]
fn check_reports_every_problem_and_exits_3() {
    // A bad tloc at 4009 (fstest stops there) and a zeroed serial at 4161 (fstest never looks).
    let (_d, p) = damaged(|v| {
        v[4009 + 24..4009 + 32].copy_from_slice(&3830u64.to_be_bytes());
        v[4161 + 8..4161 + 16].fill(0);
    });
    zodbfs()
        .arg("check")
        .arg(&p)
        .assert()
        .code(3)
        .stdout(predicate::str::contains("4009: bad-tloc"))
        .stdout(predicate::str::contains("4161: serial-mismatch"))
        .stdout(predicate::str::contains("2 problems found"));
    // --quick: structure only.
    zodbfs()
        .args(["check", "--quick"])
        .arg(&p)
        .assert()
        .code(3)
        .stdout(predicate::str::contains("4161").not());
}

#[test]
fn check_json() {
    let (_d, p) = damaged(|v| v[1113 + 16] = b'c');
    let out = zodbfs()
        .args(["check", "--json"])
        .arg(&p)
        .assert()
        .code(3)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
    assert_eq!(v["clean"], false);
    assert_eq!(v["findings"][0]["offset"], 1113);
    assert_eq!(v["findings"][0]["kind"], "checkpoint");
    assert_eq!(v["findings"][0]["fstest_detects"], true);
}

#[test]
fn check_compares_the_saved_index() {
    let (d, p) = damaged(|_| {});
    zodbfs().arg("reindex").arg(&p).assert().success();
    zodbfs()
        .arg("check")
        .arg(&p)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("compared with"));
    // A garbage .index is reported; --no-index skips it.
    std::fs::write(d.path().join("Data.fs.index"), b"junk").expect("write");
    zodbfs()
        .arg("check")
        .arg(&p)
        .assert()
        .code(3)
        .stdout(predicate::str::contains("index-unreadable"));
    zodbfs()
        .args(["check", "--no-index"])
        .arg(&p)
        .assert()
        .code(0);
}

#[test]
fn check_bad_magic_still_walks() {
    let (_d, p) = damaged(|v| v[..4].copy_from_slice(b"XX30"));
    zodbfs()
        .arg("check")
        .arg(&p)
        .assert()
        .code(3)
        .stdout(predicate::str::contains("0: bad-magic"));
}

#[test]
fn check_missing_file_exits_1() {
    zodbfs()
        .args(["check", "/nonexistent/Data.fs"])
        .assert()
        .code(1);
}

#[test]
fn refs_finds_what_fsrefs_finds() {
    // fsrefs on base.fs: oid 0x3 refers to oid 0x09, "object creation was undone".
    zodbfs()
        .args(["refs", BASE])
        .assert()
        .code(3)
        .stdout(predicate::str::contains(
            "0000000000000003 -> 0000000000000009: object creation was undone (referrer persistent.mapping.PersistentMapping",
        ));
    let out = zodbfs()
        .args(["refs", "--json", PACKED_DANGLING])
        .assert()
        .code(3)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
    let pairs: Vec<(String, String)> = v["dangling"]
        .as_array()
        .expect("list")
        .iter()
        .map(|d| {
            (
                d["target"].as_str().unwrap_or("").to_string(),
                d["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("0000000000000003".to_string(), "missing".to_string()),
            ("0000000000000006".to_string(), "missing".to_string())
        ]
    );
}

#[test]
fn recover_copies_and_reports_losses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.fs");
    zodbfs().arg("recover").arg(BASE).arg(&out).assert().code(0);
    assert_eq!(
        std::fs::read(&out).expect("out"),
        std::fs::read(BASE).expect("in")
    );
    // The output exists: refused without --force.
    zodbfs().arg("recover").arg(BASE).arg(&out).assert().code(1);
    let (_d, p) = damaged(|v| v[1475..1483].copy_from_slice(&363u64.to_be_bytes()));
    zodbfs()
        .args(["recover", "--force"])
        .arg(&p)
        .arg(&out)
        .assert()
        .code(3)
        .stdout(predicate::str::contains("lost 370 bytes at offset 1113"));
}

#[test]
fn stats_and_oids() {
    zodbfs()
        .args(["stats", BASE])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "persistent.mapping.PersistentMapping",
        ));
    let out = zodbfs()
        .args(["stats", "--json", BASE])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
    assert_eq!(v["records"], 28);
    assert_eq!(v["deletions"], 2);
    zodbfs()
        .args(["oids", BASE, "0x9", "3"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "oid 0000000000000009 persistent.mapping.PersistentMapping 1 revision",
        ))
        .stdout(predicate::str::contains("referenced by 0000000000000003"));
    zodbfs().args(["oids", BASE, "zz"]).assert().code(2);
}

#[test]
fn check_with_blobs_names_a_missing_blob_file_and_exits_3() {
    let d = tempfile::tempdir().expect("tempdir");
    let blobs = d.path().join("blobs");
    zfs_testdata::paths::copy_tree(&zfs_testdata::fixture("blobs.blobdir"), &blobs);
    let file = zfs_testdata::fixture("blobs.fs").display().to_string();
    zodbfs()
        .args(["check", &file, "--blobs"])
        .arg(&blobs)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("no problems found ("));
    let victim = walk_blobs(&blobs)
        .pop()
        .expect("the fixture has blob files");
    std::fs::remove_file(&victim).expect("remove");
    let name = victim
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    zodbfs()
        .args(["check", &file, "--blobs"])
        .arg(&blobs)
        .assert()
        .code(3)
        .stdout(predicate::str::contains("no problems found in the file ("))
        .stdout(predicate::str::contains("its blob directory has problems"))
        .stderr(predicate::str::contains("1 missing"))
        .stderr(predicate::str::contains(name));
}

/// Every `.blob` file under `dir`, sorted.
fn walk_blobs(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(walk_blobs(&p));
        } else if p.extension().is_some_and(|x| x == "blob") {
            out.push(p);
        }
    }
    out.sort();
    out
}
