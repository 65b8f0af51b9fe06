//! Packs of the experiment database made with real ZODB
//! (`testdata/oracle/make_pack_fixtures.py`: undo, undone creation, blobs, weak and
//! cross-database references, an empty transaction), compared with the bytes ZODB 6.4's
//! packer produced for the same stop tids; and the bad inputs derived from it.

use std::path::Path;

use zfs_format::{NoProgress, Tid};
use zfs_pack::{pack, Outcome, PackError, PackOptions};

use crate::{experiment, sha1, tree};

/// (stop tid, gc, sha1 of Data.fs after ZODB's pack, sha1 of its .index).
const ZODB: &[(&str, bool, &str, &str)] = &[
    (
        "03f58e00b7777778",
        true,
        "afa9fc9d9fbbc91daf43532ac0020436eb0d4103",
        "70161b0624156002f7f076322ad996a1aeff0fa4",
    ),
    (
        "03f58e00b7777778",
        false,
        "bb1d1198d9e42b7d2873b44952922aaf2891530a",
        "97767161fb04a3b98e394f6924f7b169e6eff804",
    ),
    (
        "03f58e0077777777",
        true,
        "0bf6439793bc6923644dcf148bb4174173973d8e",
        "44004fbf863fca83a181fa0755f4229667fecf26",
    ),
    (
        "03f58e00aaaaaaaa",
        true,
        "ebc2ae92a6584cbd79388e6ee5de6c06830dc5e9",
        "89e8818d9f050a1d02d92de636f8fc01bb75401a",
    ),
    (
        "03f58e005ddddddd",
        false,
        "7b0a6eeabfdfcc9e71f207de66d24d85ce4f1e58",
        "7dee456596632855808854175c51d88f9a96aefe",
    ),
];

fn copy(dir: &Path) -> std::path::PathBuf {
    let f = dir.join("Data.fs");
    std::fs::copy(experiment(), &f).expect("copy fixture");
    f
}

#[test]
fn byte_identical_to_zodb() {
    for &(stop, gc, data, index) in ZODB {
        let d = tempfile::tempdir().expect("tempdir");
        let f = copy(d.path());
        let mut o = PackOptions::new(Tid::from_hex(stop).expect("hex"));
        o.gc = gc;
        let r = pack(&f, &o, &NoProgress).expect("packs");
        assert_eq!(r.outcome, Outcome::Packed, "{stop} gc={gc}");
        assert_eq!(sha1(&f), data, "Data.fs for {stop} gc={gc}");
        assert_eq!(
            sha1(&d.path().join("Data.fs.index")),
            index,
            ".index for {stop} gc={gc}"
        );
        assert_eq!(
            sha1(&d.path().join("Data.fs.old")),
            sha1(&experiment()),
            ".old is the original"
        );
        assert!(!d.path().join("Data.fs.pack").exists());
    }
}

#[test]
fn before_first_transaction_is_a_no_op_that_removes_old() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = copy(d.path());
    std::fs::write(d.path().join("Data.fs.old"), b"stale").expect("write");
    let r = pack(
        &f,
        &PackOptions::new(Tid::from_hex("03f58e005ddddddc").expect("hex")),
        &NoProgress,
    )
    .expect("packs");
    assert_eq!(r.outcome, Outcome::NothingToDo);
    assert_eq!(sha1(&f), sha1(&experiment()));
    assert!(!d.path().join("Data.fs.old").exists());
    assert!(!d.path().join("Data.fs.pack").exists());
}

#[test]
fn second_pack_to_same_time_and_earlier_time() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = copy(d.path());
    let t8 = Tid::from_hex("03f58e0077777777").expect("hex");
    assert_eq!(
        pack(&f, &PackOptions::new(t8), &NoProgress)
            .expect("first")
            .outcome,
        Outcome::Packed
    );
    let packed = sha1(&f);
    assert_eq!(
        pack(&f, &PackOptions::new(t8), &NoProgress)
            .expect("again")
            .outcome,
        Outcome::NothingToDo
    );
    let t4 = Tid::from_hex("03f58e0066666666").expect("hex");
    assert_eq!(
        pack(&f, &PackOptions::new(t4), &NoProgress)
            .expect("earlier")
            .outcome,
        Outcome::Redundant
    );
    assert_eq!(sha1(&f), packed);
}

#[test]
fn zero_stop_and_a_locked_database_are_refused() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = copy(d.path());
    assert!(matches!(
        pack(&f, &PackOptions::new(Tid::default()), &NoProgress),
        Err(PackError::InvalidPackTime)
    ));
    let lock = zfs_pack::lock::acquire(&f).expect("lock");
    let e = pack(
        &f,
        &PackOptions::new(Tid::from_hex("03f58e00b7777778").expect("hex")),
        &NoProgress,
    );
    assert!(matches!(e, Err(PackError::Locked { .. })), "{e:?}");
    drop(lock);
    assert_eq!(sha1(&f), sha1(&experiment()));
}

#[test]
fn dry_run_writes_nothing() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = copy(d.path());
    let mut o = PackOptions::new(Tid::from_hex("03f58e00b7777778").expect("hex"));
    o.dry_run = true;
    let r = pack(&f, &o, &NoProgress).expect("dry run");
    assert_eq!(r.outcome, Outcome::WouldPack);
    assert_eq!(r.size_after, 2491);
    let names: Vec<_> = std::fs::read_dir(d.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("Data.fs")]);
}

/// The experiment database after `testdata/oracle/dangling.py ... 3 2`: objects 0x5 and
/// 0xb deleted (deleteObject) while the root and oid 2 still refer to them.
fn dangling() -> std::path::PathBuf {
    crate::data("dangling.fs")
}
/// A stop after its last transaction.
const DANGLING_STOP: &str = "040d3310866488ef";

#[test]
fn dangling_references_are_listed_and_refused() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = d.path().join("Data.fs");
    std::fs::copy(dangling(), &f).expect("copy");
    let o = PackOptions::new(Tid::from_hex(DANGLING_STOP).expect("hex"));
    match pack(&f, &o, &NoProgress) {
        Err(PackError::Dangling(list)) => {
            let text: Vec<String> = list.iter().map(ToString::to_string).collect();
            assert_eq!(
                text,
                vec![
                    "oid 0000000000000000 (record at offset 9324) -> missing oid 000000000000000b",
                    "oid 0000000000000002 (record at offset 7807) -> missing oid 0000000000000005",
                ]
            );
        }
        other => panic!("expected the dangling references, got {other:?}"),
    }
    assert_eq!(sha1(&f), sha1(&dangling()), "unchanged");
    assert!(!d.path().join("Data.fs.pack").exists());
    assert!(!d.path().join("Data.fs.old").exists());
    // --allow-dangling packs, treating the missing objects as absent.
    let mut o = o;
    o.allow_dangling = true;
    let r = pack(&f, &o, &NoProgress).expect("packs anyway");
    assert_eq!(r.outcome, Outcome::Packed);
    assert_eq!(r.dangling_ignored.len(), 2);
}

#[test]
fn dangling_without_gc_is_identical_to_zodb() {
    // ZODB packs this file without GC; the deleted objects' records are dropped.
    let d = tempfile::tempdir().expect("tempdir");
    let f = d.path().join("Data.fs");
    std::fs::copy(dangling(), &f).expect("copy");
    let mut o = PackOptions::new(Tid::from_hex(DANGLING_STOP).expect("hex"));
    o.gc = false;
    pack(&f, &o, &NoProgress).expect("packs");
    assert_eq!(sha1(&f), "5315f4b5de4945f12ddbc4754a1a078f4687f764");
    assert_eq!(
        sha1(&d.path().join("Data.fs.index")),
        "d66b7f8fcb384d29e739c3b0a7ac56f8ac40e3b9"
    );
}

/// The position of the root's current record in the fixture.
fn root_record(f: &Path) -> u64 {
    let fs = zfs_format::FileStorage::open(f).expect("open");
    let scan = zfs_format::scan::build_index(&fs, &NoProgress).expect("scan");
    scan.index.get(zfs_format::Oid::from_u64(0)).expect("root")
}

#[test]
fn unreadable_pickle_in_a_reachable_record_is_refused() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = copy(d.path());
    let root = root_record(&f);
    let mut bytes = std::fs::read(&f).expect("read");
    // The pickle's first byte (after the 42-byte header) becomes an unknown opcode.
    bytes[root as usize + 42] = 0xff;
    std::fs::write(&f, &bytes).expect("write");
    let e = pack(
        &f,
        &PackOptions::new(Tid::from_hex("03f58e00b7777778").expect("hex")),
        &NoProgress,
    );
    match e {
        Err(PackError::Pickle { oid, offset, .. }) => {
            assert_eq!(oid.as_u64(), 0);
            assert_eq!(offset, root);
        }
        other => panic!("expected a pickle error, got {other:?}"),
    }
    assert_eq!(std::fs::read(&f).expect("read"), bytes, "unchanged");
    assert!(!d.path().join("Data.fs.pack").exists());
}

#[test]
fn damaged_file_is_refused_with_the_offset() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = copy(d.path());
    let mut bytes = std::fs::read(&f).expect("read");
    // A time-stamp reduction: the second transaction gets the first one's tid.
    let first = zfs_format::txn::RawTxnHeader::decode(&bytes, 4).expect("a transaction");
    let second = usize::try_from(first.next_pos().expect("small")).expect("small");
    let tid1: [u8; 8] = bytes[4..12].try_into().expect("8");
    bytes[second..second + 8].copy_from_slice(&tid1);
    std::fs::write(&f, &bytes).expect("write");
    let e = pack(
        &f,
        &PackOptions::new(Tid::from_hex("03f58e00b7777778").expect("hex")),
        &NoProgress,
    );
    match e {
        Err(PackError::Corrupt { offset, what, .. }) => {
            assert_eq!(offset, second as u64);
            assert!(what.starts_with("time-stamp reduction"), "{what}");
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
    assert_eq!(std::fs::read(&f).expect("read"), bytes, "unchanged");
    assert!(!d.path().join("Data.fs.pack").exists());
}

/// The blob directory of the experiment database: blob oid 0xd, two revisions.
fn blob_tree(dir: &Path) -> std::path::PathBuf {
    let b = dir.join("blobs");
    let o = b.join("0x00/0x00/0x00/0x00/0x00/0x00/0x00/0x0d");
    std::fs::create_dir_all(&o).expect("mkdir");
    std::fs::write(b.join(".layout"), b"bushy\n").expect("layout");
    std::fs::write(o.join("0x03f58e007bbbbbbb.blob"), b"blob data v1").expect("blob");
    std::fs::write(o.join("0x03f58e0080000000.blob"), b"blob data v2").expect("blob");
    b
}

#[test]
fn blobs_of_garbage_are_moved_to_old_as_zodb_does() {
    // ZODB 6.4 with blob_dir: the blob object (deleted from the root in T18) is garbage:
    // its oid directory goes to blobs.old (with every other blob file), the empty bushy
    // parents are pruned, and the Data.fs bytes are those of a pack without blobs.
    let d = tempfile::tempdir().expect("tempdir");
    let f = copy(d.path());
    let b = blob_tree(d.path());
    let mut o = PackOptions::new(Tid::from_hex("03f58e00b7777778").expect("hex"));
    o.blob_dir = Some(b.clone());
    o.dry_run = true;
    let r = pack(&f, &o, &NoProgress).expect("dry run");
    assert_eq!(
        (r.blob_lines, r.blobs.files_removed, r.blobs.bytes_removed),
        (2, 2, 24)
    );
    o.dry_run = false;
    pack(&f, &o, &NoProgress).expect("packs");
    assert_eq!(sha1(&f), "afa9fc9d9fbbc91daf43532ac0020436eb0d4103");
    assert_eq!(tree(&b), vec![".layout"]);
    let oid_dir = "0x00/0x00/0x00/0x00/0x00/0x00/0x00/0x0d";
    let mut want = vec![".layout".to_string()];
    let mut p = String::new();
    for part in oid_dir.split('/') {
        p = if p.is_empty() {
            part.to_string()
        } else {
            format!("{p}/{part}")
        };
        want.push(p.clone());
    }
    want.push(format!("{oid_dir}/0x03f58e007bbbbbbb.blob"));
    want.push(format!("{oid_dir}/0x03f58e0080000000.blob"));
    want.sort();
    assert_eq!(tree(&d.path().join("blobs.old")), want);
    assert!(!b.join(".removed").exists());
}

#[test]
fn blobs_without_keep_old_are_removed() {
    let d = tempfile::tempdir().expect("tempdir");
    let f = copy(d.path());
    let b = blob_tree(d.path());
    let mut o = PackOptions::new(Tid::from_hex("03f58e00b7777778").expect("hex"));
    o.blob_dir = Some(b.clone());
    o.keep_old = false;
    let r = pack(&f, &o, &NoProgress).expect("packs");
    assert_eq!(r.blobs.files_removed, 2);
    assert_eq!(tree(&b), vec![".layout"]);
    assert!(!d.path().join("blobs.old").exists());
    assert!(!d.path().join("Data.fs.old").exists());
}
