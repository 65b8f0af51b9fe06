//! Edge cases made by real ZODB 6.4 with a fake clock (`testdata/oracle/make_pack_fixtures.py`):
//! where ZODB packs without losing data, our bytes must be its bytes; where it
//! fails or loses data, the rules listed in the crate's documentation apply.

use std::path::PathBuf;

use zfs_format::{NoProgress, Tid};
use zfs_pack::{pack, Outcome, PackOptions};

use crate::{data, no_dangling, sha1};

/// Packs a copy of fixture `name`; returns the temp dir, the packed file and the report.
fn packed(name: &str, stop: &str, gc: bool) -> (tempfile::TempDir, PathBuf, zfs_pack::Report) {
    let d = tempfile::tempdir().expect("tempdir");
    let f = d.path().join("Data.fs");
    std::fs::copy(data(name), &f).expect("copy");
    let mut o = PackOptions::new(Tid::from_hex(stop).expect("hex"));
    o.gc = gc;
    let r = pack(&f, &o, &NoProgress).expect("packs");
    (d, f, r)
}

#[test]
fn two_records_of_one_oid_after_the_pack_time_are_identical_to_zodb() {
    for gc in [true, false] {
        let (d, f, r) = packed("dup.fs", "03f58e00c4444444", gc);
        assert_eq!(r.outcome, Outcome::Packed);
        assert_eq!(sha1(&f), "c6fee833c25d522ae73bca791867269808d087db");
        assert_eq!(
            sha1(&d.path().join("Data.fs.index")),
            "9ae52420782eee6112ccb7df458841210a68ea15"
        );
    }
}

#[test]
fn undo_after_the_pack_time_to_a_non_current_root_revision_keeps_it_like_zodb() {
    // root -> o1 -> o2; del root['obj']; S; undo of the deletion. ZODB keeps the old root
    // revision as an extra root, and o1, o2 with it.
    let (d, f, r) = packed("extra.fs", "03f58e0084444444", true);
    assert_eq!(r.extra_kept, 0);
    assert_eq!(sha1(&f), "995e6d1d8d57f5a69545b15aadfda24ef71f4ee6");
    assert_eq!(
        sha1(&d.path().join("Data.fs.index")),
        "7f2d62fc7dd7d1c6acf2bb9215187cc63201d0ae"
    );
    no_dangling(&f);
}

#[test]
fn no_gc_with_undo_to_a_non_current_revision_succeeds() {
    // ZODB: AssertionError (the undo record's target revision was not copied), `.pack`
    // left behind. We keep the revision: here the result equals the GC pack's.
    let (d, f, r) = packed("extra.fs", "03f58e0084444444", false);
    assert_eq!(r.outcome, Outcome::Packed);
    assert_eq!(sha1(&f), "995e6d1d8d57f5a69545b15aadfda24ef71f4ee6");
    assert!(!d.path().join("Data.fs.pack").exists());
    no_dangling(&f);
    let (_d, f, _r) = packed("unreached.fs", "03f58e0040000000", false);
    no_dangling(&f);
}

#[test]
fn referents_of_revisions_kept_by_undo_are_kept() {
    // root -> x -> y; x.child = None; del root['x']; S; undo of "x.child = None". ZODB
    // keeps x's old revision (it refers to y) but collects y: a dangling reference
    // (ZODB's output: sha1 c6d2ef0e7618df36aea286cefd049731a8614f99). We keep y too.
    let (_d, f, r) = packed("unreached.fs", "03f58e0040000000", true);
    assert_eq!(r.outcome, Outcome::Packed);
    assert_eq!(r.extra_kept, 1);
    assert_ne!(sha1(&f), "c6d2ef0e7618df36aea286cefd049731a8614f99");
    no_dangling(&f);
}
