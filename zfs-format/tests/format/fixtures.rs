//! Our answers equal ZODB's for every committed fixture: `.index` bytes, end of data, and the
//! class and references of every record.

use std::fmt::Write as _;

use zfs_format::pickle::{class_name, references};
use zfs_format::{index_file, scan, FileStorage, NoProgress};

#[test]
fn index_bytes_equal_zodbs() {
    for (name, path, expected) in crate::fixtures() {
        let want = std::fs::read(expected.join("index")).expect("expected/index exists");
        let fs = FileStorage::open(&path).expect("fixture opens");
        let s = scan::build_index(&fs, &NoProgress).expect("fixture scans");
        let got = index_file::index_bytes(&s.index, s.end.pos.max(4));
        assert!(got == want, "{name}: index bytes differ from ZODB's");
        // And a saved index is trusted and gives the same result, as ZODB's open would.
        let (pos, loaded) = index_file::load_index(&want).expect("ZODB's index loads");
        assert_eq!(pos, s.end.pos.max(4), "{name}");
        assert_eq!(loaded, s.index, "{name}");
    }
}

#[test]
fn end_of_data_equals_zodbs_get_size() {
    for (name, path, expected) in crate::fixtures() {
        let info = std::fs::read_to_string(expected.join("info.json")).expect("info.json exists");
        let size = field(&info, "size").expect("info.json has size");
        let fs = FileStorage::open(&path).expect("fixture opens");
        let end = fs.end().expect("fixture walks");
        assert_eq!(end.pos.max(4).to_string(), size, "{name}: end of data");
        let last = field(&info, "last_tid").expect("info.json has last_tid");
        assert_eq!(
            format!("\"{}\"", end.last_tid),
            last,
            "{name}: lastTransaction"
        );
    }
}

/// The raw text of a top-level JSON field (numbers bare, strings with their quotes).
fn field(json: &str, key: &str) -> Option<String> {
    let at = json.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = json[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = rest.find([',', '}', '\n']).unwrap_or(rest.len());
    Some(rest[..end].trim().to_string())
}

#[test]
fn references_and_classes_equal_zodbs() {
    for (name, path, expected) in crate::fixtures() {
        let want =
            std::fs::read_to_string(expected.join("records.txt")).expect("records.txt exists");
        let fs = FileStorage::open(&path).expect("fixture opens");
        let mode = fs.magic().string_mode();
        let mut got = String::new();
        for t in fs.transactions() {
            for r in t.expect("fixture walks").records() {
                let r = r.expect("fixture records");
                let Some(d) = r.data() else { continue };
                let class = class_name(d, mode);
                write!(got, "pos={} oid={} class={class} refs=", r.pos, r.oid).expect("string");
                match references(d, mode) {
                    Ok(refs) => {
                        let hex: Vec<String> = refs
                            .iter()
                            .map(|o| o.iter().map(|b| format!("{b:02x}")).collect())
                            .collect();
                        got.push_str(&hex.join(","));
                    }
                    Err(_) => got.push_str("ERROR"),
                }
                got.push('\n');
            }
        }
        let mut compared = 0;
        for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
            if w.contains("refs=ERROR") {
                // ZODB could not read this record (documented difference): skip.
                continue;
            }
            assert_eq!(g, w, "{name}: record line {}", i + 1);
            compared += 1;
        }
        assert_eq!(
            got.lines().count(),
            want.lines().count(),
            "{name}: number of records"
        );
        assert!(compared > 0 || want.is_empty(), "{name}: nothing compared");
    }
}
