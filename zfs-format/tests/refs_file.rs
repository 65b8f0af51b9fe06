//! The references file (`zfs_format::refs_file`): whatever `write_refs` writes, `RefsFile::parse`
//! reads back the same; any changed or missing byte of it is refused; and the inputs committed
//! for the `refs_file` fuzz target are what they say they are.

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;
use zfs_format::refs_file::{write_refs, Entry, Refs, RefsFile, ABSENT, UNKNOWN};
use zfs_format::{fuzzing, Oid, Tid};

/// What an entry's references are meant to be.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Want {
    Unknown,
    Absent,
    Known(Vec<u32>),
}

/// A references file to write: `end`, `last_tid`, entries, list, and each entry's references.
#[derive(Clone, Debug)]
struct Case {
    end: u64,
    last_tid: Tid,
    entries: Vec<Entry>,
    list: Vec<u32>,
    want: Vec<Want>,
}

impl Case {
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write_refs(&mut out, self.end, self.last_tid, &self.entries, &self.list)
            .expect("write to a Vec");
        out
    }
}

/// Entries with sorted unique oids and arbitrary positions and tids; a list of groups (a
/// count, then that many entry numbers below `n`), some of them unused; each entry's start
/// [`UNKNOWN`], [`ABSENT`] or the start of a group, which entries may share.
fn case() -> impl Strategy<Value = Case> {
    let oids = prop::collection::btree_set(any::<u64>(), 0..24);
    let groups = prop::collection::vec(prop::collection::vec(any::<u32>(), 0..6), 0..8);
    (any::<u64>(), any::<u64>(), oids, groups).prop_flat_map(|(end, last_tid, oids, groups)| {
        let n = oids.len();
        let each = (any::<u64>(), any::<u64>(), 0u8..3, any::<Index>());
        prop::collection::vec(each, n).prop_map(move |rest| {
            // References below n; with no entries, no group can hold any.
            let groups: Vec<Vec<u32>> = groups
                .iter()
                .map(|g| g.iter().filter(|_| n > 0).map(|&r| r % n as u32).collect())
                .collect();
            let mut list = Vec::new();
            let mut starts = Vec::new();
            for g in &groups {
                starts.push(list.len() as u32);
                list.push(g.len() as u32);
                list.extend_from_slice(g);
            }
            let mut entries = Vec::with_capacity(n);
            let mut want = Vec::with_capacity(n);
            for (&oid, &(pos, tid, kind, at)) in oids.iter().zip(&rest) {
                let (start, w) = match kind {
                    0 => (UNKNOWN, Want::Unknown),
                    1 => (ABSENT, Want::Absent),
                    _ if groups.is_empty() => (UNKNOWN, Want::Unknown),
                    _ => {
                        let g = at.index(groups.len());
                        (starts[g], Want::Known(groups[g].clone()))
                    }
                };
                entries.push(Entry {
                    oid: Oid::from_u64(oid),
                    pos,
                    tid: Tid::from_u64(tid),
                    start,
                });
                want.push(w);
            }
            Case {
                end,
                last_tid: Tid::from_u64(last_tid),
                entries,
                list,
                want,
            }
        })
    })
}

fn got(f: &RefsFile<'_>, i: usize) -> Want {
    match f.refs(i) {
        Refs::Unknown => Want::Unknown,
        Refs::Absent => Want::Absent,
        Refs::Known(r) => Want::Known(r.iter().collect()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn what_is_written_reads_back(c in case()) {
        let b = c.bytes();
        let f = RefsFile::parse(&b).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!((f.end, f.last_tid), (c.end, c.last_tid));
        prop_assert_eq!(f.len(), c.entries.len());
        prop_assert_eq!(f.is_empty(), c.entries.is_empty());
        for (i, e) in c.entries.iter().enumerate() {
            prop_assert_eq!(f.entry(i), *e);
            prop_assert_eq!(got(&f, i), c.want[i].clone());
        }
        // The fuzz body's own checks (rewrites, rebuilt list) hold for every valid file.
        fuzzing::refs_file(&b);
    }

    #[test]
    fn any_changed_byte_is_refused(c in case(), at in any::<Index>(), x in 1u8..=255) {
        let mut b = c.bytes();
        let i = at.index(b.len());
        b[i] ^= x;
        prop_assert!(RefsFile::parse(&b).is_err(), "byte {} of {} changed by {:#x}", i, b.len(), x);
    }

    #[test]
    fn any_cut_or_extension_is_refused(c in case(), at in any::<Index>(),
                                       more in prop::collection::vec(any::<u8>(), 1..9)) {
        let b = c.bytes();
        let cut = at.index(b.len());
        prop_assert!(RefsFile::parse(&b[..cut]).is_err(), "cut at {} of {}", cut, b.len());
        let mut longer = b.clone();
        longer.extend_from_slice(&more);
        prop_assert!(RefsFile::parse(&longer).is_err(), "{} bytes appended", more.len());
    }
}

fn seed(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzzed/refs_file")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn entry(oid: u64, pos: u64, tid: u64, start: u32) -> Entry {
    Entry {
        oid: Oid::from_u64(oid),
        pos,
        tid: Tid::from_u64(tid),
        start,
    }
}

fn written(end: u64, last_tid: u64, entries: &[Entry], list: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    write_refs(&mut out, end, Tid::from_u64(last_tid), entries, list).expect("write to a Vec");
    out
}

fn sample() -> Vec<Entry> {
    vec![
        entry(0, 100, 7, 0),
        entry(1, 200, 8, 3),
        entry(5, 300, 9, ABSENT),
        entry(9, 400, 9, UNKNOWN),
    ]
}

/// The seeds of the fuzz target are what `write_refs` writes (the valid ones parse, so the
/// replay runs the fuzz body's round trips) or are refused for what their names say.
#[test]
fn committed_fuzz_seeds_are_what_they_say() {
    let valid = [
        ("valid-sample", written(500, 9, &sample(), &[2, 1, 3, 0])),
        ("valid-no-entries", written(4, 0, &[], &[])),
        (
            "valid-shared-groups",
            written(
                1000,
                42,
                &[
                    entry(3, 4, 40, 0),
                    entry(7, 500, 41, 1),
                    entry(8, 600, 42, 3),
                    entry(10, 700, 42, 0),
                ],
                &[2, 1, 1, 0],
            ),
        ),
    ];
    for (name, bytes) in valid {
        assert_eq!(seed(name), bytes, "{name}");
        RefsFile::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let refused = [
        ("empty", "too short"),
        ("bad-checksum", "checksum mismatch"),
        ("reference-out-of-range", "reference to entry 4 of 4"),
        ("count-past-the-list", "run past the list"),
        ("entry-count-overflows", "do not fill"),
    ];
    for (name, why) in refused {
        let e = RefsFile::parse(&seed(name)).expect_err(name);
        assert!(e.to_string().contains(why), "{name}: {e}");
    }
    assert_eq!(
        seed("reference-out-of-range"),
        written(500, 9, &sample(), &[2, 1, 4, 0])
    );
    assert_eq!(
        seed("count-past-the-list"),
        written(10, 1, &[entry(1, 4, 1, 0)], &[UNKNOWN])
    );
    let mut bad = written(500, 9, &sample(), &[2, 1, 3, 0]);
    *bad.last_mut().expect("checksum") ^= 0x40;
    assert_eq!(seed("bad-checksum"), bad);
}
