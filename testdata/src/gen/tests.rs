//! The generator's output read back by the toolkit: sound, reproducible, and holding
//! every kind of history it claims.

use std::collections::HashMap;

use zfs_format::pickle::{persistent_refs, RefKind, StringMode};
use zfs_format::{FileStorage, NoProgress, Payload, Status};

use super::*;

fn make(cfg: &Config) -> (Vec<u8>, Summary) {
    let mut v = Vec::new();
    let s = generate(cfg, &mut v, &NoProgress).expect("in memory");
    (v, s)
}

fn small(seed: u64) -> Config {
    Config {
        seed,
        size: Some(2_000_000),
        undo_every: 6,
        large_kb: 40,
        ..Config::default()
    }
}

#[test]
fn same_config_same_bytes() {
    let (a, sa) = make(&small(5));
    let (b, sb) = make(&small(5));
    assert!(a == b && sa == sb);
    let (c, _) = make(&small(6));
    assert_ne!(a, c);
    // Blob files or not, the Data.fs is the same.
    let (d, _) = make(&Config {
        blob_files: false,
        ..small(5)
    });
    assert!(a == d);
}

#[test]
fn stops_at_the_first_boundary_past_the_size() {
    let (v, s) = make(&small(1));
    assert_eq!(s.bytes, v.len() as u64);
    assert!(s.bytes >= 2_000_000);
    let fs = FileStorage::from_data(v.as_slice(), "g.fs".into()).expect("FS30");
    let end = fs.end().expect("clean");
    assert_eq!(end.pos, s.bytes);
    assert_eq!(end.transactions, s.transactions);
    assert_eq!(end.last_complete_tid, s.last_tid);
    let (_, t) = make(&Config {
        size: None,
        transactions: Some(57),
        ..small(1)
    });
    assert!((57..57 + 4).contains(&t.transactions), "{t:?}");
}

/// What a file's history holds, counted from its records.
#[derive(Debug, Default)]
struct Kinds {
    empty_txns: u64,
    dual_txns: u64,
    backpointers: u64,
    deletions: u64,
    records: u64,
    forms: HashMap<RefKind, u64>,
    classes: HashMap<String, u64>,
    largest: usize,
}

fn kinds(v: &[u8]) -> Kinds {
    let fs = FileStorage::from_data(v, "g.fs".into()).expect("FS30");
    let mut k = Kinds::default();
    for t in fs.transactions() {
        let t = t.expect("sound");
        assert_eq!(t.status(), Status::Committed);
        let mut oids = Vec::new();
        for r in t.records() {
            let r = r.expect("sound");
            k.records += 1;
            oids.push(r.oid);
            match r.payload {
                Payload::Backpointer(0) => k.deletions += 1,
                Payload::Backpointer(_) => k.backpointers += 1,
                Payload::Data(d) => {
                    k.largest = k.largest.max(d.len());
                    for x in persistent_refs(d, StringMode::Ascii).expect("scans") {
                        *k.forms.entry(x.kind).or_default() += 1;
                    }
                    let c = zfs_format::pickle::class_name(d, StringMode::Ascii).to_string();
                    *k.classes.entry(c).or_default() += 1;
                }
            }
        }
        if oids.is_empty() {
            k.empty_txns += 1;
        }
        oids.sort();
        if oids.windows(2).any(|w| w[0] == w[1]) {
            k.dual_txns += 1;
        }
    }
    k
}

#[test]
fn the_history_holds_every_kind() {
    let (v, s) = make(&small(2));
    let k = kinds(&v);
    assert_eq!(k.records, s.records);
    assert_eq!((k.backpointers, k.deletions), (s.backpointers, s.deletions));
    assert!(k.empty_txns > 0, "{k:?}");
    assert!(k.dual_txns > 0, "{k:?}");
    assert!(k.backpointers > 0 && k.deletions > 0, "{k:?}");
    assert!(k.largest > 30_000, "a large record: {k:?}");
    for form in [RefKind::OidClass, RefKind::Oid, RefKind::Weak] {
        assert!(
            k.forms.get(&form).is_some_and(|n| *n > 0),
            "{form:?}: {k:?}"
        );
    }
    for c in [
        "BTrees.OOBTree.OOBTree",
        "BTrees.OOBTree.OOBucket",
        "genmodel.Item",
        "genmodel.Folder",
        "genmodel.Keyed",
        "genmodel.Counter",
        "ZODB.blob.Blob",
        "persistent.list.PersistentList",
        "persistent.mapping.PersistentMapping",
    ] {
        assert!(k.classes.contains_key(c), "{c}: {k:?}");
    }
    assert!(s.blob_records > 0);
}

fn refs_of(v: &[u8]) -> zfs_check::refs::RefsReport {
    let fs = FileStorage::from_data(v, "g.fs".into()).expect("FS30");
    let scan = zfs_format::scan::build_index(&fs, &NoProgress).expect("sound");
    zfs_check::refs::dangling_refs(&fs, &scan.index, &NoProgress)
}

#[test]
fn check_and_refs_find_nothing_wrong() {
    let (v, _) = make(&small(3));
    let r = zfs_check::check::check(
        &v,
        &zfs_check::check::Options {
            quick: false,
            index: None,
        },
        &NoProgress,
    );
    assert!(r.is_clean(), "{:?}", r.findings);
    let refs = refs_of(&v);
    assert!(refs.is_clean(), "{:?}", refs.dangling);
    assert!(
        refs.undone > 0,
        "undone creations and deletions are in the index"
    );
}

#[test]
fn dangling_references_are_made_on_request() {
    let (v, s) = make(&Config {
        dangling: 3,
        ..small(4)
    });
    let refs = refs_of(&v);
    assert!(!refs.dangling.is_empty() && refs.dangling.len() <= 3 + s.deletions as usize);
    assert!(refs
        .dangling
        .iter()
        .all(|d| d.reason == zfs_check::refs::Reason::CreationUndone));
    assert_eq!(
        refs.dangling
            .iter()
            .filter(|d| d.class == "BTrees.OOBTree.OOBucket" || d.class == "BTrees.OOBTree.OOBTree")
            .count(),
        refs.dangling
            .iter()
            .filter(|d| d.class.starts_with("BTrees"))
            .count()
    );
}

#[test]
fn pack_with_gc_collects_garbage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("Data.fs");
    let (v, s) = make(&small(7));
    std::fs::write(&path, &v).expect("write");
    let stop = zfs_format::Tid::from_u64(s.last_tid.as_u64() + 1);
    let r = zfs_pack::pack(&path, &zfs_pack::PackOptions::new(stop), &NoProgress).expect("packs");
    assert_eq!(r.outcome, zfs_pack::Outcome::Packed);
    assert!(
        r.objects_kept < r.objects_at_stop,
        "garbage collected: {r:?}"
    );
    assert!(r.size_after < r.size_before / 2, "{r:?}");
    let packed = std::fs::read(&path).expect("read");
    assert!(refs_of(&packed).is_clean());
}
