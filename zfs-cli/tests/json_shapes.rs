//! The shape of every `--json` output of `zodbfs`: each is parsed with serde_json and its
//! keys and their types asserted, so a change of shape is a decision, not an accident.
//! (`convert` and `export` need a PostgreSQL server: their shapes are the library reports'
//! plus `file` and `seconds`, and are exercised by the conversion suite.)

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

/// A file with real pickles, undo and a dangling reference (made by ZODB).
const BASE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/fixtures/check/base.fs"
);

fn zodbfs() -> Command {
    Command::cargo_bin("zodbfs").expect("the zodbfs binary is built")
}

/// Runs `zodbfs ARGS`, expects `code`, parses stdout as one JSON document.
fn json(args: &[&str], code: i32) -> Value {
    let o = zodbfs().args(args).assert().code(code).get_output().clone();
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

/// The JSON types, as `has` checks them.
#[derive(Clone, Copy, Debug)]
enum T {
    Str,
    Int,
    Num,
    Bool,
    Arr,
    Obj,
    /// A string or null.
    OptStr,
    /// An integer or null.
    OptInt,
    /// 16 hex digits.
    Hex16,
}

/// Asserts that `v` has each key with its type.
fn has(v: &Value, what: &str, keys: &[(&str, T)]) {
    for (k, t) in keys {
        let x = v
            .get(k)
            .unwrap_or_else(|| panic!("{what}: no key {k:?} in {v}"));
        let ok = match t {
            T::Str => x.is_string(),
            T::Int => x.is_u64(),
            T::Num => x.is_number(),
            T::Bool => x.is_boolean(),
            T::Arr => x.is_array(),
            T::Obj => x.is_object(),
            T::OptStr => x.is_string() || x.is_null(),
            T::OptInt => x.is_u64() || x.is_null(),
            T::Hex16 => x
                .as_str()
                .is_some_and(|s| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())),
        };
        assert!(ok, "{what}: {k:?} should be {t:?}, is {x}");
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A temporary directory with a copy of BASE as Data.fs.
fn site() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let p = d.path().join("Data.fs");
    std::fs::copy(BASE, &p).expect("copy");
    (d, p)
}

#[test]
fn info() {
    let v = json(&["info", "--json", BASE], 0);
    has(
        &v,
        "info",
        &[
            ("file", T::Str),
            ("magic", T::Str),
            ("file_len", T::Int),
            ("size", T::Int),
            ("transactions", T::Int),
            ("data_records", T::Int),
            ("objects", T::Int),
            ("first_tid", T::Hex16),
            ("last_complete_tid", T::Hex16),
            ("last_tid", T::Hex16),
            ("tail_bytes", T::Int),
            ("end", T::Str),
        ],
    );
    assert_eq!(v["magic"], "FS30");
    assert_eq!(v["end"], "clean");
}

#[test]
fn check() {
    let (_d, p) = site();
    let mut b = std::fs::read(&p).expect("read");
    // The first transaction's length (after the magic and the tid).
    b[12] ^= 0xff;
    std::fs::write(&p, b).expect("write");
    let v = json(&["check", "--json", s(&p)], 3);
    has(
        &v,
        "check",
        &[
            ("file", T::Str),
            ("magic", T::OptStr),
            ("file_len", T::Int),
            ("mode", T::Str),
            ("index", T::OptStr),
            ("transactions", T::Int),
            ("records", T::Int),
            ("skipped_bytes", T::Int),
            ("index_checked", T::Bool),
            ("clean", T::Bool),
            ("findings", T::Arr),
        ],
    );
    assert_eq!(v["clean"], false);
    let f = &v["findings"][0];
    has(
        f,
        "finding",
        &[
            ("offset", T::Int),
            ("kind", T::Str),
            ("fstest_detects", T::Bool),
            ("message", T::Str),
        ],
    );
    assert!(v["blobs"].is_null());
}

#[test]
fn refs() {
    let v = json(&["refs", "--json", BASE], 3);
    has(
        &v,
        "refs",
        &[
            ("file", T::Str),
            ("objects", T::Int),
            ("undone", T::Int),
            ("clean", T::Bool),
            ("dangling", T::Arr),
            ("unreadable", T::Arr),
            ("unscannable", T::Arr),
        ],
    );
    has(
        &v["dangling"][0],
        "dangling reference",
        &[
            ("referrer", T::Hex16),
            ("class", T::Str),
            ("offset", T::Int),
            ("tid", T::Hex16),
            ("target", T::Hex16),
            ("reason", T::Str),
        ],
    );
    assert_eq!(v["dangling"][0]["reason"], "creation-undone");
}

#[test]
fn recover() {
    let (d, p) = site();
    let mut b = std::fs::read(&p).expect("read");
    let n = b.len();
    b[n / 2..n / 2 + 8].copy_from_slice(b"garbage!");
    std::fs::write(&p, b).expect("write");
    let out = d.path().join("out.fs");
    let v = json(&["recover", "--json", s(&p), s(&out)], 3);
    has(
        &v,
        "recover",
        &[
            ("input", T::Str),
            ("output", T::Str),
            ("transactions", T::Int),
            ("records", T::Int),
            ("output_len", T::Int),
            ("removed_bytes", T::Int),
            ("undone_bytes", T::Int),
            ("checkpoint_at", T::OptInt),
            ("tail_file", T::OptStr),
            ("retimed", T::Arr),
            ("losses", T::Arr),
            ("complete", T::Bool),
        ],
    );
    has(
        &v["losses"][0],
        "loss",
        &[("offset", T::Int), ("len", T::Int), ("why", T::Str)],
    );
}

#[test]
fn stats() {
    let v = json(&["stats", "--json", BASE], 0);
    has(
        &v,
        "stats",
        &[
            ("file", T::Str),
            ("transactions", T::Int),
            ("transaction_bytes", T::Int),
            ("records", T::Int),
            ("objects", T::Int),
            ("deletions", T::Int),
            ("unreadable", T::Int),
            ("total", T::Obj),
            ("classes", T::Obj),
        ],
    );
    let row = [
        ("current", T::Int),
        ("current_bytes", T::Int),
        ("old", T::Int),
        ("old_bytes", T::Int),
    ];
    has(&v["total"], "total", &row);
    let classes = v["classes"].as_object().expect("classes");
    assert!(!classes.is_empty());
    for (name, c) in classes {
        has(c, name, &row);
    }
}

#[test]
fn oids() {
    let v = json(&["oids", "--json", BASE, "0x9", "3"], 0);
    has(&v, "oids", &[("file", T::Str), ("oids", T::Arr)]);
    let h = &v["oids"][0];
    has(
        h,
        "history",
        &[
            ("oid", T::Hex16),
            ("class", T::OptStr),
            ("revisions", T::Int),
            ("current", T::Bool),
            ("events", T::Arr),
        ],
    );
    let e = &h["events"][0];
    has(
        e,
        "event",
        &[
            ("tid", T::Hex16),
            ("txn_offset", T::Int),
            ("offset", T::Int),
            ("what", T::Obj),
        ],
    );
    // Transaction texts: text when UTF-8 (else {"hex": ...}).
    for k in ["user", "description"] {
        assert!(e[k].is_string() || e[k]["hex"].is_string(), "{k}: {e}");
    }
    assert!(e["what"]["type"].is_string(), "{e}");
    let types: Vec<&str> = v["oids"]
        .as_array()
        .expect("oids")
        .iter()
        .flat_map(|h| h["events"].as_array().expect("events"))
        .filter_map(|e| e["what"]["type"].as_str())
        .collect();
    assert!(types.contains(&"new-revision"), "{types:?}");
    assert!(types.contains(&"referenced-by"), "{types:?}");
}

#[test]
fn pack() {
    let (_d, p) = site();
    let v = json(
        &["pack", "--json", "--dry-run", "--allow-dangling", s(&p)],
        0,
    );
    has(
        &v,
        "pack",
        &[
            ("file", T::Str),
            ("outcome", T::Str),
            ("dry_run", T::Bool),
            ("database_open", T::Bool),
            ("gc", T::Bool),
            ("stop_tid", T::Hex16),
            ("stop_time", T::Str),
            ("size_before", T::Int),
            ("size_after", T::Int),
            ("bytes_removed", T::Int),
            ("pack_position", T::Int),
            ("transactions_before_stop", T::Int),
            ("transactions_removed", T::Int),
            ("records_before_stop", T::Int),
            ("records_removed", T::Int),
            ("objects_at_stop", T::Int),
            ("objects_kept", T::Int),
            ("objects_removed", T::Int),
            ("extra_objects_kept", T::Int),
            ("dangling_ignored", T::Arr),
            ("blob_removed_lines", T::Int),
            ("blob_files_removed", T::Int),
            ("blob_bytes_removed", T::Int),
            ("earlier_pack_blobs", T::Obj),
            ("saved_references", T::Str),
            ("tail_bytes", T::Int),
            ("tail_saved_to", T::OptStr),
            ("index_written", T::Bool),
            ("references_saved", T::Bool),
            ("seconds", T::Num),
        ],
    );
    assert_eq!(v["outcome"], "would-pack");
    assert_eq!(v["database_open"], false);
    // A dry run on a database that a running ZODB holds open says so.
    let lock = std::fs::File::create(zfs_files::with_suffix(&p, ".lock")).expect("lock file");
    lock.lock().expect("flock");
    let v = json(
        &["pack", "--json", "--dry-run", "--allow-dangling", s(&p)],
        0,
    );
    assert_eq!(v["database_open"], true);
}

#[test]
fn pack_prepare() {
    let (_d, p) = site();
    let v = json(&["pack", "--prepare", "--json", s(&p)], 0);
    has(
        &v,
        "pack --prepare",
        &[
            ("file", T::Str),
            ("seconds", T::Num),
            ("path", T::Str),
            ("end", T::Int),
            ("objects", T::Int),
            ("left_to_the_pack", T::Int),
            ("bytes", T::Int),
            ("read_from", T::Int),
        ],
    );
    assert_eq!(
        v["bytes"],
        std::fs::metadata(zfs_files::with_suffix(&p, ".refs"))
            .expect("saved references")
            .len()
    );
}

/// A repository with a full and an incremental backup of a growing file.
fn backups(d: &Path) -> (PathBuf, PathBuf, Vec<Value>) {
    let p = d.join("Data.fs");
    let r = d.join("repo");
    std::fs::create_dir(&r).expect("mkdir");
    let mut reports = Vec::new();
    for txns in [10, 15, 15] {
        std::fs::write(&p, zfs_testdata::datafs(txns, 50)).expect("write");
        reports.push(json(&["backup", "--json", s(&p), "-r", s(&r)], 0));
    }
    (p, r, reports)
}

#[test]
fn backup() {
    let d = tempfile::tempdir().expect("tempdir");
    let (_p, _r, reports) = backups(d.path());
    let common = [
        ("action", T::Str),
        ("reason", T::OptStr),
        ("file", T::OptStr),
        ("source_size", T::Int),
        ("written", T::Int),
        ("removed", T::Arr),
    ];
    for v in &reports {
        has(v, "backup", &common);
        // Complete transactions after damage that the backup could not hold: none here.
        assert!(v["left_out"].is_null(), "{v}");
    }
    let made = [("start", T::Int), ("end", T::Int), ("md5", T::Str)];
    assert_eq!(reports[0]["action"], "full");
    has(&reports[0], "full backup", &made);
    assert_eq!(reports[1]["action"], "incremental");
    has(&reports[1], "incremental backup", &made);
    assert_eq!(reports[2]["action"], "nothing");
    assert!(reports[2]["file"].is_null());
}

#[test]
fn restore_and_standby() {
    let d = tempfile::tempdir().expect("tempdir");
    let (_p, r, _) = backups(d.path());
    let out = d.path().join("restored.fs");
    let keys = [
        ("output", T::Str),
        ("method", T::Str),
        ("chain", T::Arr),
        ("bytes", T::Int),
        ("size", T::Int),
        ("index", T::OptStr),
    ];
    let v = json(&["restore", "--json", s(&r), "-o", s(&out)], 0);
    has(&v, "restore", &keys);
    assert_eq!(v["method"], "full");
    assert!(v.get("md5").is_none(), "no md5 unless computed: {v}");
    let v = json(&["restore", "--json", "-w", s(&r), "-o", s(&out), "-F"], 0);
    has(&v, "restore -w", &[("md5", T::Str)]);
    let v = json(&["restore", "--json", s(&r), "-o", s(&out)], 0);
    assert_eq!(v["method"], "up-to-date");
    let standby = d.path().join("standby.fs");
    let v = json(&["standby", "--json", s(&r), s(&standby)], 0);
    has(&v, "standby", &keys);
}

#[test]
fn verify() {
    let d = tempfile::tempdir().expect("tempdir");
    let (_p, r, _) = backups(d.path());
    let v = json(&["verify", "--json", s(&r)], 0);
    has(
        &v,
        "verify",
        &[("ok", T::Bool), ("files", T::Arr), ("warnings", T::Arr)],
    );
    has(
        &v["files"][0],
        "verified file",
        &[("file", T::Str), ("size", T::Int), ("md5", T::Str)],
    );
    let v = json(&["verify", "--json", "-Q", s(&r)], 0);
    assert!(v["files"][0].get("md5").is_none(), "{v}");
    // A damaged backup file: a problem, still one JSON object.
    let full = std::fs::read_dir(&r)
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "fs"))
        .expect("a full backup");
    let mut b = std::fs::read(&full).expect("read");
    b[10] ^= 1;
    std::fs::write(&full, b).expect("write");
    let v = json(&["verify", "--json", s(&r)], 3);
    has(
        &v,
        "verify problem",
        &[("ok", T::Bool), ("problem", T::Str)],
    );
}

#[test]
fn list_and_prune() {
    let d = tempfile::tempdir().expect("tempdir");
    let (_p, r, _) = backups(d.path());
    let v = json(&["list", "--json", s(&r)], 0);
    assert!(v.is_object(), "{v}");
    has(&v, "list", &[("points", T::Arr)]);
    let v = json(&["prune", "--json", s(&r), "--keep", "1", "--dry-run"], 0);
    has(&v, "prune", &[("dry_run", T::Bool), ("plan", T::Obj)]);
}

#[test]
fn errors() {
    let v = json(&["info", "--json", "/nonexistent/Data.fs"], 1);
    has(&v, "error", &[("error", T::Str), ("exit", T::Int)]);
    // A pack refused for dangling references ends with exit 3, as an error object.
    let (_d, p) = site();
    let v = json(&["pack", "--json", s(&p)], 3);
    has(&v, "pack refused", &[("error", T::Str), ("exit", T::Int)]);
    assert_eq!(v["exit"], 3);
    assert!(
        v["error"].as_str().is_some_and(|m| m.contains("dangling")),
        "{v}"
    );
}

/// A site with blobs (made by ZODB) backed up once with its blob directory.
fn blob_site(d: &Path) -> (PathBuf, PathBuf, PathBuf, Value) {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/fixtures");
    let p = d.join("Data.fs");
    std::fs::copy(format!("{fixtures}/blobs.fs"), &p).expect("copy");
    let blobs = d.join("blobstorage");
    zfs_testdata::paths::copy_tree(Path::new(&format!("{fixtures}/blobs.blobdir")), &blobs);
    let r = d.join("repo");
    let bb = d.join("blobbackups");
    std::fs::create_dir(&r).expect("mkdir");
    std::fs::create_dir(&bb).expect("mkdir");
    let v = json(
        &[
            "backup",
            "--json",
            s(&p),
            "-r",
            s(&r),
            "--blobs",
            s(&blobs),
            "--blob-backups",
            s(&bb),
        ],
        0,
    );
    (p, r, bb, v)
}

#[test]
fn site_backup_drill_and_verify() {
    let d = tempfile::tempdir().expect("tempdir");
    let (_p, r, bb, v) = blob_site(d.path());
    has(
        &v,
        "site backup",
        &[("datafs", T::Obj), ("stamp", T::Str), ("blobs", T::Obj)],
    );
    has(
        &v["datafs"],
        "site backup datafs",
        &[("action", T::Str), ("file", T::OptStr), ("written", T::Int)],
    );
    has(
        &v["blobs"],
        "site backup blobs",
        &[
            ("tree", T::Str),
            ("created", T::Bool),
            ("files", T::Int),
            ("bytes", T::Int),
            ("linked", T::Int),
            ("copied", T::Int),
        ],
    );
    let v = json(
        &[
            "restore",
            "--json",
            s(&r),
            "--drill",
            "--blob-backups",
            s(&bb),
            "--scratch",
            s(d.path()),
        ],
        0,
    );
    has(&v, "drill", &[("ok", T::Bool), ("drill", T::Obj)]);
    has(
        &v["drill"],
        "drill report",
        &[
            ("state", T::Str),
            ("datafs_bytes", T::Int),
            ("blob_files", T::Int),
            ("restore_seconds", T::Num),
            ("check_seconds", T::Num),
            ("datafs_check", T::Obj),
        ],
    );
    let v = json(&["verify", "--json", s(&r), "--blob-backups", s(&bb)], 0);
    has(&v, "site verify", &[("ok", T::Bool), ("verify", T::Obj)]);
    has(
        &v["verify"],
        "site verify report",
        &[("datafs_files", T::Arr), ("trees", T::Arr)],
    );
}
