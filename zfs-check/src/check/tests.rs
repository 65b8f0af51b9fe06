//! Tests of `check` on a file written by ZODB, damaged in the ways `fstest` detects and in
//! the ways it does not.

use std::collections::HashMap;

use super::headers::Step;
use super::records::{Part, Rec};
use super::*;
use zfs_format::progress::Counter;
use zfs_format::resync::resync;
use zfs_format::{IndexBuilder, Interruptible, NoProgress, Oid, Tid};

/// [`super::check`] with a run context that is never interrupted.
fn check(file: &[u8], opts: &Options<'_>, progress: &dyn Progress) -> Report {
    super::check(file, opts, progress).expect("never interrupted")
}

/// [`super::check_in_batches`] with a run context that is never interrupted.
fn check_in_batches(
    file: &[u8],
    opts: &Options<'_>,
    progress: &dyn Progress,
    batch: u64,
) -> Report {
    super::check_in_batches(file, opts, progress, batch).expect("never interrupted")
}

/// A database written by ZODB 6.4 (testdata/oracle/make_check_fixtures.py): 15 transactions with
/// an undo (backpointers) and a deleteObject.
const BASE: &[u8] = include_bytes!("../../../testdata/fixtures/check/base.fs");

fn run(data: &[u8], quick: bool) -> Report {
    check(data, &Options { quick, index: None }, &NoProgress)
}

fn edited(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = BASE.to_vec();
    f(&mut v);
    v
}

fn put(v: &mut [u8], at: usize, bytes: &[u8]) {
    v[at..at + bytes.len()].copy_from_slice(bytes);
}

fn kinds(r: &Report) -> Vec<(u64, Kind)> {
    r.findings.iter().map(|f| (f.offset, f.kind)).collect()
}

#[test]
fn zodb_file_is_clean() {
    for quick in [false, true] {
        let r = run(BASE, quick);
        assert!(r.is_clean(), "{:?}", r.findings);
        // fstest -v on this file lists 15 transactions.
        assert_eq!(r.transactions, 15);
        assert_eq!(r.records, 28);
    }
}

/// Each damage with the offset ZODB 6.4's fstest names for it (its message in the
/// comment), and the kind we report there.
#[test]
fn fstest_offsets() {
    type Edit = fn(&mut Vec<u8>);
    let cases: &[(&str, Edit, u64, Kind)] = &[
        // "checkpoint flag was not cleared at 1113"
        (
            "status c",
            |v| put(v, 1113 + 16, b"c"),
            1113,
            Kind::Checkpoint,
        ),
        // "has invalid status 'b'Z'' at 1113"
        (
            "status Z",
            |v| put(v, 1113 + 16, b"Z"),
            1113,
            Kind::BadStatus,
        ),
        // "time-stamp reduction at 1113: 0x040d32edbff1a0ee <= 0x040d32edbff1a0ee"
        (
            "tid equal",
            |v| {
                let t = v[770..778].to_vec();
                put(v, 1113, &t)
            },
            1113,
            Kind::TimestampReduction,
        ),
        // "data record exceeds transaction record at 4009: tloc 3830 != tpos 3829"
        (
            "tloc",
            |v| put(v, 4009 + 24, &3830u64.to_be_bytes()),
            4009,
            Kind::BadTloc,
        ),
        // "has inconsistent transaction length for undone transaction at 1475"
        (
            "redundant length",
            |v| put(v, 1113 + 362, &363u64.to_be_bytes()),
            1475,
            Kind::RedundantLength,
        ),
        // "has data records that extend beyond the transaction record; end at 5051"
        (
            "plen",
            |v| put(v, 4009 + 34, &1000u64.to_be_bytes()),
            4009,
            Kind::RecordOverrun,
        ),
        // "has an invalid transaction header at 1113"
        (
            "tlen below header",
            |v| put(v, 1113 + 8, &28u64.to_be_bytes()),
            1113,
            Kind::InvalidHeader,
        ),
        // "data record exceeds transaction record at 1475: tloc 2305843009314357345 != tpos 1113"
        (
            "tlen grown",
            |v| put(v, 1113 + 8, &862u64.to_be_bytes()),
            1475,
            Kind::BadTloc,
        ),
        // "truncated possibly because of damaged records at 1113"
        (
            "tlen past eof",
            |v| put(v, 1113 + 8, &4356u64.to_be_bytes()),
            1113,
            Kind::TruncatedTransaction,
        ),
        // "truncated at 4269"
        (
            "cut in header",
            |v| v.truncate(4274),
            4269,
            Kind::TruncatedHeader,
        ),
        // "truncated possibly because of damaged records at 4269"
        (
            "cut in transaction",
            |v| v.truncate(4327),
            4269,
            Kind::TruncatedTransaction,
        ),
        // "data record exceeds transaction record at 2179: tloc 0 != tpos 1880"
        ("zeroed", |v| put(v, 2000, &[0; 1000]), 2179, Kind::BadTloc),
        // "time-stamp reduction at 1113: 0x0000000000000000 <= 0x040d32edbff1a0ee"
        (
            "zeroed header",
            |v| put(v, 1113, &[0; 23]),
            1113,
            Kind::InvalidHeader,
        ),
        // "invalid file header"
        ("magic", |v| put(v, 0, b"FS99"), 0, Kind::BadMagic),
    ];
    for (name, edit, offset, kind) in cases {
        let data = edited(edit);
        for quick in [false, true] {
            let r = run(&data, quick);
            assert!(
                r.findings
                    .iter()
                    .any(|f| f.offset == *offset && f.kind == *kind),
                "{name} (quick {quick}): {:?}",
                kinds(&r)
            );
        }
    }
}

#[test]
fn overrun_message_names_fstest_end() {
    let r = run(
        &edited(|v| put(v, 4009 + 34, &1000u64.to_be_bytes())),
        false,
    );
    assert!(
        r.findings[0].message.contains("ends at 5051"),
        "{:?}",
        r.findings
    );
}

#[test]
fn keeps_going_after_damage() {
    // Two damages far apart: both are reported, and the walk resynchronises after a
    // zeroed header (the next transaction starts at 1483).
    let data = edited(|v| {
        put(v, 1113, &[0; 23]);
        put(v, 4009 + 24, &3830u64.to_be_bytes());
    });
    let r = run(&data, false);
    let k = kinds(&r);
    assert!(k.contains(&(1113, Kind::InvalidHeader)), "{k:?}");
    assert!(k.contains(&(1113, Kind::Unreadable)), "{k:?}");
    assert!(k.contains(&(4009, Kind::BadTloc)), "{k:?}");
    assert_eq!(r.skipped_bytes, 1483 - 1113);
    // Pointers into the skipped region are not reported again.
    assert!(!k.iter().any(|(_, k)| *k == Kind::BadPrev), "{k:?}");
}

/// The pointer findings of the rule `check` implements, computed the simple way: every
/// sound record of the file collected first, then every pointer looked up.
fn exact_pointer_findings(file: &[u8]) -> Vec<(u64, Kind)> {
    let mut w = Walker::new(file, &Options::default());
    w.batch_bytes = u64::MAX;
    // Collect the jobs without walking their records.
    let mut pos = FIRST_TXN;
    let mut ltid = Tid::default();
    while pos < w.len {
        match w.transaction(pos, ltid) {
            Step::Next(n, t) => {
                ltid = t;
                pos = n;
            }
            Step::Lost(from) => match resync(file, from, Some(ltid)) {
                Some(q) => {
                    w.mark_damaged((pos, q));
                    pos = q;
                }
                None => {
                    w.mark_damaged((pos, w.len));
                    break;
                }
            },
            Step::End => break,
        }
    }
    let mut part = Part::default();
    for (i, j) in w.jobs.iter().enumerate() {
        part.walk(file, false, j, u32::try_from(i).expect("jobs fit in u32"));
    }
    w.damaged.extend(part.damaged);
    w.damaged.sort_unstable();
    let recs: Vec<Rec> = part.recs;
    let oid_at: HashMap<u64, Oid> = recs.iter().map(|r| (r.pos, r.oid)).collect();
    let mut out = Vec::new();
    for r in &recs {
        for (target, kind) in [(r.prev, Kind::BadPrev), (r.back, Kind::BadBackpointer)] {
            if target == 0 {
                continue;
            }
            let bad = if target >= r.pos {
                true
            } else {
                match oid_at.get(&target) {
                    Some(o) => *o != r.oid,
                    None => !w.in_damage(target),
                }
            };
            if bad {
                out.push((r.pos, kind));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn what_fstest_misses() {
    // Records of base.fs: 4161 (oid 6) and 4298 (oid 9, a deleteObject record in the last
    // transaction, at 4269), 4009 (oid 0xc, prev 3861 of the same oid).
    type Edit = fn(&mut Vec<u8>);
    let cases: &[(&str, Edit, u64, Kind)] = &[
        (
            "prev forward",
            |v| put(v, 4009 + 16, &4051u64.to_be_bytes()),
            4009,
            Kind::BadPrev,
        ),
        (
            "prev into a header",
            |v| put(v, 4009 + 16, &3832u64.to_be_bytes()),
            4009,
            Kind::BadPrev,
        ),
        (
            "serial",
            |v| put(v, 4009 + 8, &[0; 8]),
            4009,
            Kind::SerialMismatch,
        ),
        (
            "status u",
            |v| put(v, 1113 + 16, b"u"),
            1113,
            Kind::UndoneStatus,
        ),
        (
            "back forward",
            |v| put(v, 4298 + 42, &4303u64.to_be_bytes()),
            4298,
            Kind::BadBackpointer,
        ),
        (
            "back to another oid",
            |v| put(v, 4298 + 42, &4161u64.to_be_bytes()),
            4298,
            Kind::BadBackpointer,
        ),
    ];
    for (name, edit, offset, kind) in cases {
        let data = edited(edit);
        let r = run(&data, false);
        assert!(
            r.findings
                .iter()
                .any(|f| f.offset == *offset && f.kind == *kind),
            "{name}: {:?}",
            kinds(&r)
        );
        assert!(!kind.fstest_detects());
        if *kind != Kind::UndoneStatus {
            assert!(
                run(&data, true).is_clean(),
                "{name}: quick mode checks structure only"
            );
        }
    }
}

#[test]
fn saved_index() {
    use zfs_format::index_file::index_bytes;
    let fs = zfs_format::FileStorage::from_data(BASE, "base.fs".into()).expect("FS30");
    let scan = zfs_format::scan::build_index(&fs, &NoProgress).expect("sound");
    let good = index_bytes(&scan.index, BASE.len() as u64);
    let r = check(
        BASE,
        &Options {
            quick: false,
            index: Some(&good),
        },
        &NoProgress,
    );
    assert!(r.is_clean() && r.index_checked, "{:?}", r.findings);
    // An index saved for the file without its last transaction (4269) is fine too.
    let mut b = IndexBuilder::new();
    for t in fs.transactions() {
        let t = t.expect("sound");
        if t.pos() < 4269 {
            for rec in t.records() {
                let rec = rec.expect("sound");
                b.insert(rec.oid, rec.pos);
            }
        }
    }
    let older = index_bytes(&b.finish(), 4269);
    assert!(check(
        BASE,
        &Options {
            quick: false,
            index: Some(&older)
        },
        &NoProgress
    )
    .is_clean());
    // The full index claimed for 4269 disagrees about oid 9: it names the record at 4298,
    // after 4269; up to 4269 the current record is at 3094.
    let wrong = index_bytes(&scan.index, 4269);
    let r = check(
        BASE,
        &Options {
            quick: false,
            index: Some(&wrong),
        },
        &NoProgress,
    );
    assert_eq!(kinds(&r), vec![(3094, Kind::IndexMismatch)]);
    assert!(
        r.findings[0].message.contains("at 4298"),
        "{:?}",
        r.findings
    );
    // Not a boundary; not an index at all.
    let r = check(
        BASE,
        &Options {
            quick: false,
            index: Some(&index_bytes(&scan.index, 4270)),
        },
        &NoProgress,
    );
    assert_eq!(kinds(&r), vec![(4270, Kind::IndexPosition)]);
    let r = check(
        BASE,
        &Options {
            quick: false,
            index: Some(b"junk"),
        },
        &NoProgress,
    );
    assert_eq!(kinds(&r), vec![(0, Kind::IndexUnreadable)]);
}

#[test]
fn tiny_files() {
    assert_eq!(kinds(&run(b"", false)), vec![(0, Kind::EmptyFile)]);
    assert!(run(b"FS30", false).is_clean());
    assert!(run(b"FS21", false).is_clean());
    assert_eq!(kinds(&run(b"FS", false)), vec![(0, Kind::BadMagic)]);
    assert_eq!(
        kinds(&run(b"FS30abc", false)),
        vec![(4, Kind::TruncatedHeader)]
    );
}

#[test]
fn fs21_is_checked_like_fs30() {
    let data = edited(|v| put(v, 0, b"FS21"));
    assert!(run(&data, false).is_clean());
}

proptest::proptest! {
    #[test]
    fn batches_do_not_change_the_report(
        edits in proptest::collection::vec((0usize..4356, proptest::prelude::any::<u8>()), 0..6),
        cut in 3000usize..5000,
        saved in 0usize..3,
    ) {
        let mut v = BASE.to_vec();
        for (at, b) in edits {
            v[at] = b;
        }
        v.truncate(cut);
        let fs = zfs_format::FileStorage::from_data(BASE, "base.fs".into()).expect("FS30");
        let scan = zfs_format::scan::build_index(&fs, &NoProgress).expect("sound");
        // No saved index, one for the whole file, one for the file up to 4269.
        let index = match saved {
            0 => None,
            1 => Some(zfs_format::index_file::index_bytes(&scan.index, BASE.len() as u64)),
            _ => Some(zfs_format::index_file::index_bytes(&scan.index, 4269)),
        };
        let opts = Options { quick: false, index: index.as_deref() };
        let whole = check_in_batches(&v, &opts, &NoProgress, u64::MAX);
        let small = check_in_batches(&v, &opts, &NoProgress, 1);
        proptest::prop_assert_eq!(&whole.findings, &small.findings);
        proptest::prop_assert_eq!(
            (whole.transactions, whole.records, whole.skipped_bytes),
            (small.transactions, small.records, small.skipped_bytes)
        );
        // Pointer findings agree with the exact rule: the target is the position of a
        // sound record of the same oid.
        let ptr = |r: &Report| -> Vec<(u64, Kind)> {
            let mut v: Vec<(u64, Kind)> = r.findings.iter()
                .filter(|f| matches!(f.kind, Kind::BadPrev | Kind::BadBackpointer))
                .map(|f| (f.offset, f.kind)).collect();
            v.sort();
            v
        };
        proptest::prop_assert_eq!(ptr(&whole), exact_pointer_findings(&v));
    }

    #[test]
    fn never_panics(edits in proptest::collection::vec((0usize..4356, proptest::prelude::any::<u8>()), 0..8),
                    cut in 0usize..5000) {
        let mut v = BASE.to_vec();
        for (at, b) in edits {
            v[at] = b;
        }
        v.truncate(cut);
        let r = run(&v, false);
        let q = run(&v, true);
        proptest::prop_assert!(q.findings.len() <= r.findings.len() + 1);
    }
}

/// A damaged header at 4, then at 27 a transaction whose first record claims a pickle of
/// nearly 2^64 bytes: the candidate at 27 is not plausible (its record cannot fit), so the
/// walk does not resume there (the rest of the file is the truncated transaction's), and
/// nothing overflows.
#[test]
fn overflowing_first_record_is_skipped() {
    let data: &[u8] = include_bytes!("../../tests/fuzzed/check/overflowing-first-record");
    for quick in [false, true] {
        let r = run(data, quick);
        assert_eq!(
            kinds(&r),
            vec![(4, Kind::TruncatedTransaction)],
            "{:?}",
            r.findings
        );
        assert_eq!(r.skipped_bytes, 96);
        assert_eq!(r.transactions, 0);
    }
}

#[test]
fn an_interrupted_run_context_stops_the_check() {
    let flag = std::sync::atomic::AtomicBool::new(true);
    let counter = Counter::default();
    let run = Interruptible {
        progress: &counter,
        flag: &flag,
    };
    for quick in [false, true] {
        for batch in [1, u64::MAX] {
            let r = super::check_in_batches(BASE, &Options { quick, index: None }, &run, batch);
            assert_eq!(r.err(), Some(Interrupted));
        }
    }
    flag.store(false, std::sync::atomic::Ordering::Relaxed);
    let r = super::check(BASE, &Options::default(), &run).expect("not interrupted");
    assert!(r.is_clean(), "{:?}", r.findings);
}
