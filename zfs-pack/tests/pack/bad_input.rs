//! Bad input and interrupted packs: the error names what and where, the original is never
//! changed, and no `.pack` file is left after a clean error. (More in `experiments`:
//! a time-stamp reduction, an unreadable pickle, dangling references; and in the CLI
//! tests: a full disk, a live ZODB's lock, a pack killed midway.)

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use zfs_format::record::RawDataHeader;
use zfs_format::txn::RawTxnHeader;
use zfs_format::{NoProgress, Tid};
use zfs_pack::{pack, PackError, PackOptions};

use crate::{experiment, sha1};

const STOP: &str = "03f58e00b7777778";

/// A copy of the experiment database with `damage` applied to its bytes.
fn damaged(dir: &Path, damage: impl FnOnce(&mut Vec<u8>)) -> (PathBuf, Vec<u8>) {
    let mut b = std::fs::read(experiment()).expect("fixture");
    damage(&mut b);
    let f = dir.join("Data.fs");
    std::fs::write(&f, &b).expect("write");
    (f, b)
}

/// Positions of the transactions of the experiment database.
fn txn_positions(b: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut pos = 4;
    while let Some(h) = RawTxnHeader::decode(b, pos) {
        out.push(pos);
        pos = h.next_pos().expect("a small file");
    }
    out
}

/// The header of the first data record of the transaction at `t`.
fn first_record(b: &[u8], t: u64) -> RawDataHeader {
    let h = RawTxnHeader::decode(b, t).expect("a transaction header");
    RawDataHeader::decode(b, t + h.header_len()).expect("a data record header")
}

/// Overwrites `b` at `pos` with `bytes`.
fn put(b: &mut [u8], pos: u64, bytes: &[u8]) {
    let at = usize::try_from(pos).expect("small");
    b[at..at + bytes.len()].copy_from_slice(bytes);
}

fn assert_untouched(dir: &Path, f: &Path, bytes: &[u8]) {
    assert_eq!(
        std::fs::read(f).expect("read"),
        bytes,
        "the original is unchanged"
    );
    assert!(!dir.join("Data.fs.pack").exists(), "no .pack left");
    assert!(!dir.join("Data.fs.old").exists());
    assert!(!dir.join("Data.fs.index").exists());
}

#[test]
fn redundant_length_mismatch_is_refused_like_zodb() {
    // ZODB's testCorruptionInPack: the last transaction's trailing length is wrong.
    let d = tempfile::tempdir().expect("tempdir");
    let mut last = 0;
    let (f, b) = damaged(d.path(), |b| {
        last = *txn_positions(b).last().expect("txns");
        let n = b.len();
        b[n - 1] ^= 1;
    });
    let stop = Tid::from_u64(u64::MAX >> 1);
    let e = pack(&f, &PackOptions::new(stop), &NoProgress).expect_err("damaged");
    assert!(
        matches!(
            e,
            PackError::Format(zfs_format::Error::RedundantLength { .. })
        ),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains(&last.to_string()),
        "{msg} names transaction {last}"
    );
    assert_untouched(d.path(), &f, &b);
}

#[test]
fn a_backpointer_forward_is_refused_with_its_offset() {
    // The first record of the second transaction becomes a backpointer to itself.
    let d = tempfile::tempdir().expect("tempdir");
    let mut rec = 0;
    let (f, b) = damaged(d.path(), |b| {
        let mut h = first_record(b, txn_positions(b)[1]);
        rec = h.pos;
        assert!(h.plen >= 8);
        // plen 0, back = its own position; the rest of the old pickle stays as junk the
        // transaction length still covers, so only the record is wrong.
        h.plen = 0;
        put(b, h.pos, &h.to_bytes());
        let back = h.backpointer_pos().expect("small");
        put(b, back, &h.pos.to_be_bytes());
    });
    let r = pack(
        &f,
        &PackOptions::new(Tid::from_hex(STOP).expect("hex")),
        &NoProgress,
    );
    match r {
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(&rec.to_string()), "{msg} names offset {rec}");
        }
        Ok(r) => panic!("packed a damaged file: {r:?}"),
    }
    assert_untouched(d.path(), &f, &b);
}

#[test]
fn a_truncated_record_inside_a_transaction_is_refused() {
    // A data record's length runs past its transaction.
    let d = tempfile::tempdir().expect("tempdir");
    let (f, b) = damaged(d.path(), |b| {
        let mut h = first_record(b, txn_positions(b)[2]);
        h.plen = 100_000;
        put(b, h.pos, &h.to_bytes());
    });
    let r = pack(
        &f,
        &PackOptions::new(Tid::from_hex(STOP).expect("hex")),
        &NoProgress,
    );
    let msg = r.expect_err("damaged").to_string();
    assert!(msg.contains("offset"), "{msg}");
    assert_untouched(d.path(), &f, &b);
}

static STOP_NOW: AtomicBool = AtomicBool::new(true);

#[test]
fn an_interrupted_pack_changes_nothing_and_removes_its_pack_file() {
    let d = tempfile::tempdir().expect("tempdir");
    let (f, b) = damaged(d.path(), |_| {});
    let o = PackOptions::new(Tid::from_hex(STOP).expect("hex"));
    let run = zfs_format::Interruptible {
        progress: &NoProgress,
        flag: &STOP_NOW,
    };
    assert!(matches!(pack(&f, &o, &run), Err(PackError::Interrupted)));
    assert_untouched(d.path(), &f, &b);
}

#[test]
fn a_stale_pack_file_from_a_killed_run_is_removed() {
    let d = tempfile::tempdir().expect("tempdir");
    let (f, _) = damaged(d.path(), |_| {});
    std::fs::write(d.path().join("Data.fs.pack"), vec![b'x'; 50_000]).expect("write");
    pack(
        &f,
        &PackOptions::new(Tid::from_hex(STOP).expect("hex")),
        &NoProgress,
    )
    .expect("packs");
    // ZODB 6.4's bytes for this stop (see `experiments`).
    assert_eq!(sha1(&f), "afa9fc9d9fbbc91daf43532ac0020436eb0d4103");
    assert!(!d.path().join("Data.fs.pack").exists());
    assert!(!d.path().join("Data.fs.index.index_tmp").exists());
}

#[test]
fn a_stale_index_is_replaced_and_never_paired_with_the_packed_file() {
    let d = tempfile::tempdir().expect("tempdir");
    let (f, _) = damaged(d.path(), |_| {});
    std::fs::write(d.path().join("Data.fs.index"), b"stale").expect("write");
    pack(
        &f,
        &PackOptions::new(Tid::from_hex(STOP).expect("hex")),
        &NoProgress,
    )
    .expect("packs");
    assert_eq!(
        sha1(&d.path().join("Data.fs.index")),
        "70161b0624156002f7f076322ad996a1aeff0fa4"
    );
}

#[test]
fn a_torn_tail_is_never_lost() {
    // The bytes of an unfinished commit after the last transaction are not packed. They are
    // saved to `Data.fs.tr0`, as ZODB saves them when its open truncates the file, whether
    // `.old` is kept or not (a later pack removes `.old`).
    let tail = b"\x03\xf5\x8e\x01\x00\x00\x00\x00\x00\x00\x00\x10 torn".to_vec();
    for keep_old in [true, false] {
        let d = tempfile::tempdir().expect("tempdir");
        let (f, b) = damaged(d.path(), |b| b.extend_from_slice(&tail));
        let mut o = PackOptions::new(Tid::from_hex(STOP).expect("hex"));
        o.keep_old = keep_old;
        let r = pack(&f, &o, &NoProgress).expect("packs");
        // The packed bytes are those of the file without its tail.
        assert_eq!(sha1(&f), "afa9fc9d9fbbc91daf43532ac0020436eb0d4103");
        let tr0 = d.path().join("Data.fs.tr0");
        if keep_old {
            assert_eq!(std::fs::read(d.path().join("Data.fs.old")).expect("old"), b);
        } else {
            assert!(!d.path().join("Data.fs.old").exists());
        }
        assert_eq!(std::fs::read(&tr0).expect(".tr0"), tail);
        assert_eq!(r.tail_saved.as_deref(), Some(tr0.as_path()));
        assert_eq!(r.tail, tail.len() as u64);
    }
}

#[test]
fn damage_before_a_sane_saved_index_is_still_refused() {
    // With a saved index that passes ZODB's sanity test, the committed end is found by
    // walking only what follows the index; damage before it must still stop the pack, the
    // files unchanged: a transaction marked 'c' (a walk stops there), a record running
    // past its transaction, a transaction length running past the file.
    let n_txns = txn_positions(&std::fs::read(experiment()).expect("fixture")).len();
    assert!(n_txns > 8, "{n_txns} transactions");
    let damages: [fn(&mut Vec<u8>); 3] = [
        |b| {
            let t = txn_positions(b)[2];
            b[usize::try_from(t).expect("small") + 16] = b'c';
        },
        |b| {
            let mut h = first_record(b, txn_positions(b)[2]);
            h.plen = 100_000;
            put(b, h.pos, &h.to_bytes());
        },
        |b| {
            let t = txn_positions(b)[2];
            put(b, t + 8, &(1u64 << 40).to_be_bytes());
        },
    ];
    for (i, damage) in damages.into_iter().enumerate() {
        let d = tempfile::tempdir().expect("tempdir");
        let good = std::fs::read(experiment()).expect("fixture");
        let (f, b) = damaged(d.path(), damage);
        // The index of the undamaged file, saved beside the damaged one.
        let index_path = d.path().join("Data.fs.index");
        {
            let good_path = d.path().join("good.fs");
            std::fs::write(&good_path, &good).expect("write");
            let fs = zfs_format::FileStorage::open(&good_path).expect("open");
            let scan = zfs_format::scan::build_index(&fs, &NoProgress).expect("index");
            let mut out = Vec::new();
            zfs_format::index_file::write_index(&mut out, &scan.index, good.len() as u64)
                .expect("index bytes");
            std::fs::write(&index_path, out).expect("write index");
            std::fs::remove_file(&good_path).expect("remove");
            let fs = zfs_format::FileStorage::open(&f).expect("open damaged");
            assert!(
                zfs_format::index_file::check_sanity(&fs, &scan.index, good.len() as u64).is_some(),
                "damage {i}: the saved index is sane for the damaged file"
            );
        }
        let saved = std::fs::read(&index_path).expect("index");
        for gc in [true, false] {
            let mut o = PackOptions::new(Tid::from_u64(u64::MAX >> 1));
            o.gc = gc;
            let r = pack(&f, &o, &NoProgress);
            let e = r.expect_err(&format!("damage {i}, gc {gc}: packed a damaged file"));
            assert!(e.to_string().contains("offset"), "damage {i}: {e}");
            assert_eq!(std::fs::read(&f).expect("read"), b, "damage {i}: unchanged");
            assert_eq!(std::fs::read(&index_path).expect("read"), saved);
            assert!(!d.path().join("Data.fs.pack").exists(), "no .pack left");
            assert!(!d.path().join("Data.fs.old").exists());
        }
    }
}

#[test]
fn a_blob_directory_that_is_missing_or_a_file_is_refused_before_anything() {
    // A mistyped --blobs, or the Data.fs itself, used to be found only after the swap (the
    // file packed, then "finishing failed"); now nothing is read or written.
    let d = tempfile::tempdir().expect("tempdir");
    let (f, bytes) = damaged(d.path(), |_| {});
    for (blobs, why) in [
        (d.path().join("no-such-dir"), "it does not exist"),
        (f.clone(), "it is a file"),
    ] {
        let mut o = PackOptions::new(Tid::from_hex(STOP).expect("hex"));
        o.blob_dir = Some(blobs.clone());
        match pack(&f, &o, &NoProgress) {
            Err(e @ PackError::NotBlobDir { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(why), "{msg}");
                assert!(msg.contains(&*blobs.to_string_lossy()), "{msg}");
            }
            other => panic!("expected NotBlobDir, got {other:?}"),
        }
        assert_untouched(d.path(), &f, &bytes);
        assert!(!d.path().join("no-such-dir").exists());
    }
}
