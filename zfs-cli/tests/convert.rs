//! `zodbfs convert` and `export` where no database is needed: arguments, and the errors a
//! user sees before any row moves. The conversions themselves are checked against
//! zodbconvert by `testdata/oracle/conformance_convert.sh` (it starts PostgreSQL).

use assert_cmd::Command;
use predicates::prelude::*;

const SMALL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/fixtures/small.fs");
/// Nothing listens on port 1 of the loopback address.
const NOBODY: &str = "postgresql://postgres@127.0.0.1:1/zodb?connect_timeout=5";

fn zodbfs() -> Command {
    Command::cargo_bin("zodbfs").expect("the zodbfs binary is built")
}

#[test]
fn a_missing_source_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nothing.fs");
    zodbfs()
        .args(["convert", missing.to_str().expect("utf-8"), NOBODY])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nothing.fs"));
}

#[test]
fn an_unreachable_database_is_named() {
    zodbfs()
        .args(["convert", SMALL, NOBODY])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("connecting to").and(predicate::str::contains("127.0.0.1:1")),
        );
}

#[test]
fn a_bad_url_is_an_error() {
    zodbfs()
        .args(["convert", SMALL, "postgresql://[::"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("database URL"));
}

#[test]
fn modes_exclude_each_other() {
    zodbfs()
        .args([
            "convert",
            SMALL,
            NOBODY,
            "--history-free",
            "--history-preserving",
        ])
        .assert()
        .code(2);
}

#[test]
fn export_needs_a_reachable_database_and_writes_nothing_without_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("Data.fs");
    zodbfs()
        .args(["export", NOBODY, out.to_str().expect("utf-8")])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("connecting to"));
    assert!(std::fs::read_dir(dir.path()).expect("dir").next().is_none());
}
