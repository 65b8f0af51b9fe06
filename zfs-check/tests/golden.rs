//! fsdump's and fstail's text for the committed fixtures (made by real ZODB, with ZODB's own
//! output beside them in `<name>.expected/`), byte for byte.

use std::path::{Path, PathBuf};

use zfs_format::FileStorage;

fn fixtures() -> Vec<(String, PathBuf, PathBuf)> {
    let v = zfs_testdata::paths::expected_fixtures();
    assert!(v.len() >= 7, "fixtures missing: {v:?}");
    v
}

fn expected(dir: &Path, file: &str) -> Option<String> {
    // Empty where ZODB itself failed on the file (its error is recorded in info.json).
    std::fs::read_to_string(dir.join(file))
        .ok()
        .filter(|s| !s.is_empty())
}

#[test]
fn dump_equals_fsdump() {
    let mut compared = 0;
    for (name, path, exp) in fixtures() {
        let Some(want) = expected(&exp, "fsdump.txt") else {
            continue;
        };
        let fs = FileStorage::open(&path).expect("fixture opens");
        let mut got = Vec::new();
        zfs_check::dump::dump(&fs, &mut got).expect("dump");
        assert_eq!(String::from_utf8_lossy(&got), want, "fsdump of {name}");
        compared += 1;
    }
    assert!(compared >= 6, "only {compared} fixtures have fsdump.txt");
}

#[test]
fn tail_equals_fstail() {
    let mut compared = 0;
    for (name, path, exp) in fixtures() {
        for (file, n) in [("fstail.txt", 10), ("fstail-all.txt", 1_000_000)] {
            // Absent where ZODB's fstail itself fails (empty and torn files).
            let Some(want) = expected(&exp, file) else {
                continue;
            };
            let fs = FileStorage::open(&path).expect("fixture opens");
            let mut got = Vec::new();
            zfs_check::tail::tail(&fs, n, &mut got).expect("tail");
            assert_eq!(String::from_utf8_lossy(&got), want, "{file} of {name}");
            compared += 1;
        }
    }
    assert!(compared >= 10, "only {compared} fstail outputs compared");
}

/// Where fstail fails (a torn last transaction), we show the complete transactions.
#[test]
fn tail_of_a_torn_file_starts_at_the_last_complete_transaction() {
    let fs = FileStorage::open(zfs_testdata::fixture("torn.fs")).expect("fixture opens");
    let end = fs.end().expect("end");
    assert!(end.pos < fs.len(), "torn.fs has a torn tail");
    let mut got = Vec::new();
    let n = zfs_check::tail::tail(&fs, 1, &mut got).expect("tail");
    assert_eq!(n, 1);
    let text = String::from_utf8(got).expect("utf-8");
    assert!(text.contains("offset="), "{text}");
    let last = fs
        .transactions_rev(end.pos)
        .next()
        .expect("one")
        .expect("ok");
    assert!(
        text.contains(&format!("offset={} ", last.header.pos)),
        "{text}"
    );
}
