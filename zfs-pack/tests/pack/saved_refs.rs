//! Packs from saved references (`zfs_pack::prepare`, `<file>.refs`): the result is the
//! pack without them, byte for byte, whether they are used, or do not fit the file and are
//! left aside; and they are never used when they could be someone else's.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zfs_format::refs_file::{write_refs, Entry, Refs, RefsFile};
use zfs_format::{FileStorage, NoProgress, Tid};
use zfs_pack::{pack, prepare, Outcome, PackError, PackOptions, Report, SavedReferences};
use zfs_testdata::gen::{generate, Config};

use crate::{data, sha1};

/// A generated file of about `size` bytes.
fn generated(seed: u64, size: u64) -> Vec<u8> {
    let cfg = Config {
        seed,
        size: Some(size),
        ..Config::default()
    };
    let mut bytes = Vec::new();
    generate(&cfg, &mut bytes, &NoProgress).expect("generate");
    bytes
}

/// Writes `<f>.index` for `f` as it is (ZODB writes it when it closes the database).
fn reindex(f: &Path) {
    let fs = FileStorage::open(f).expect("open");
    let scan = zfs_format::scan::build_index(&fs, &NoProgress).expect("scan");
    let mut out = Vec::new();
    zfs_format::index_file::write_index(&mut out, &scan.index, scan.end.pos).expect("index");
    std::fs::write(zfs_files::with_suffix(f, ".index"), out).expect("write index");
}

/// `bytes` as `dir/name/Data.fs`, with its `.index`.
fn placed(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir(&d).expect("mkdir");
    let f = d.join("Data.fs");
    std::fs::write(&f, bytes).expect("write");
    reindex(&f);
    f
}

/// Where the transaction `num / den` of the way through `bytes` starts (the file as it was
/// before that transaction: a prefix ending at a transaction).
fn txn_start(dir: &Path, bytes: &[u8], num: usize, den: usize) -> usize {
    let f = placed(dir, "positions", bytes);
    let fs = FileStorage::open(&f).expect("open");
    let pos: Vec<u64> = fs.transactions().map(|t| t.expect("txn").pos()).collect();
    pos[pos.len() * num / den] as usize
}

/// Whether `f`'s saved index passes ZODB's sanity test.
fn index_is_sane(f: &Path) -> bool {
    let fs = FileStorage::open(f).expect("open");
    let bytes = std::fs::read(zfs_files::with_suffix(f, ".index")).expect("index");
    let (pos, index) = zfs_format::index_file::load_index(&bytes).expect("load");
    zfs_format::index_file::check_sanity(&fs, &index, pos).is_some()
}

/// The last committed tid of `f`, plus one: a pack time after every transaction.
fn after_last(f: &Path) -> Tid {
    let fs = FileStorage::open(f).expect("open");
    let end = fs.end().expect("end");
    Tid::from_u64(end.last_complete_tid.as_u64() + 1)
}

/// The report's counts, which must not depend on where the references came from.
fn counts(r: &Report) -> [u64; 9] {
    [
        r.size_before,
        r.size_after,
        r.txns_before,
        r.txns_removed,
        r.records_before,
        r.records_removed,
        r.objects_at_stop,
        r.objects_kept,
        r.index_entries,
    ]
}

/// Packs `f` with GC after its last transaction.
fn pack_now(f: &Path, dry_run: bool) -> Result<Report, PackError> {
    let mut o = PackOptions::new(after_last(f));
    o.dry_run = dry_run;
    pack(f, &o, &NoProgress)
}

/// Packs `with` (which has a `.refs`) and `without` (the same file, none); both results must
/// be the same files and counts. Returns `with`'s report.
fn same_pack(with: &Path, without: &Path) -> Report {
    let a = pack_now(with, false).expect("packs with saved references");
    let b = pack_now(without, false).expect("packs");
    // A copy dropped for not fitting the saved references leaves nothing behind.
    for e in std::fs::read_dir(with.parent().expect("dir")).expect("dir") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "{name} left");
    }
    assert_eq!(b.saved_references, SavedReferences::None);
    assert_eq!(a.outcome, b.outcome);
    assert_eq!(counts(&a), counts(&b), "{}", with.display());
    // The references left for the packed file do not depend on where the pack took its own
    // (a pack that changes nothing leaves `with`'s as they were).
    assert_eq!(a.references_saved, b.references_saved);
    let refs = if a.outcome == Outcome::Packed {
        ".refs"
    } else {
        ""
    };
    for suffix in ["", ".index", ".old", refs] {
        let (x, y) = (
            zfs_files::with_suffix(with, suffix),
            zfs_files::with_suffix(without, suffix),
        );
        assert_eq!(x.exists(), y.exists(), "{}", x.display());
        if x.exists() {
            assert_eq!(sha1(&x), sha1(&y), "{}", x.display());
        }
    }
    a
}

#[test]
fn a_pack_from_saved_references_is_the_pack_without_them() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut inputs: Vec<(String, Vec<u8>)> = [(1, 2 << 20), (2, 3 << 20), (7, 1 << 20)]
        .iter()
        .map(|&(seed, size)| (format!("seed{seed}"), generated(seed, size)))
        .collect();
    // Made by real ZODB: undos, undone creations, several records of one object.
    for name in ["experiment.fs", "dup.fs", "extra.fs", "unreached.fs"] {
        inputs.push((name.into(), std::fs::read(data(name)).expect("fixture")));
    }
    let corpus = if zfs_testdata::paths::corpus_dir().is_dir() {
        zfs_testdata::paths::corpus_files()
    } else {
        eprintln!("skipping the real corpus: none found (ZFS_CORPUS or ../shared/corpus/real)");
        Vec::new()
    };
    for p in corpus {
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        inputs.push((name, std::fs::read(&p).expect("corpus file")));
    }
    let mut used = 0;
    for (i, (name, bytes)) in inputs.iter().enumerate() {
        let with = placed(d.path(), &format!("{i}-with"), bytes);
        let without = placed(d.path(), &format!("{i}-without"), bytes);
        let p = prepare(&with, &NoProgress).expect("prepare");
        assert_eq!(p.path, zfs_files::with_suffix(&with, ".refs"));
        assert_eq!(
            std::fs::metadata(&p.path).expect("refs").len(),
            p.bytes,
            "{name}"
        );
        let dry = pack_now(&with, true).expect("dry run");
        let sane = index_is_sane(&with);
        let r = same_pack(&with, &without);
        if !sane {
            // ZODB's sanity test refuses some indexes (two records of one object in the
            // last transaction): a pack then scans, as ZODB's open would.
            assert_eq!(r.saved_references, SavedReferences::None, "{name}");
        } else if r.outcome == Outcome::Packed {
            assert_eq!(r.saved_references, SavedReferences::Used, "{name}");
            assert_eq!(dry.saved_references, SavedReferences::Used, "{name}");
            assert_eq!(dry.size_after, r.size_after, "{name}");
            // The references of the file before the pack went with it; those beside the
            // packed file describe it.
            assert!(r.references_saved, "{name}");
            assert_describes(&with, d.path(), name);
            used += 1;
        }
    }
    assert!(used >= 5, "only {used} packs used saved references");
}

/// What a references file says, with entry numbers resolved to oids (so that two files
/// whose lists are laid out differently compare equal when they say the same).
type Said = (u64, Tid, Vec<(u64, u64, Tid, Option<Vec<u64>>, bool)>);

/// Reads `<f>.refs` as [`Said`].
fn said(f: &Path) -> Said {
    let bytes = std::fs::read(zfs_files::with_suffix(f, ".refs")).expect("refs");
    let refs = RefsFile::parse(&bytes).expect("parse");
    let entries = (0..refs.len())
        .map(|i| {
            let e = refs.entry(i);
            let (known, absent) = match refs.refs(i) {
                Refs::Known(l) => (
                    Some(
                        l.iter()
                            .map(|j| refs.entry(j as usize).oid.as_u64())
                            .collect(),
                    ),
                    false,
                ),
                Refs::Unknown => (None, false),
                Refs::Absent => (None, true),
            };
            (e.oid.as_u64(), e.pos, e.tid, known, absent)
        })
        .collect();
    (refs.end, refs.last_tid, entries)
}

/// The `.refs` a pack left beside `f` says what `prepare` says of `f` (run on a copy in
/// `dir`): every object, its record, its tid and its references.
fn assert_describes(f: &Path, dir: &Path, name: &str) {
    let copy = dir.join(format!("{name}-prepared"));
    std::fs::create_dir(&copy).expect("mkdir");
    let copy = copy.join("Data.fs");
    std::fs::copy(f, &copy).expect("copy");
    std::fs::copy(
        zfs_files::with_suffix(f, ".index"),
        zfs_files::with_suffix(&copy, ".index"),
    )
    .expect("copy index");
    prepare(&copy, &NoProgress).expect("prepare");
    let (left, prepared) = (said(f), said(&copy));
    assert_eq!(
        (left.0, left.1),
        (prepared.0, prepared.1),
        "{name}: end and tid"
    );
    assert_eq!(left.2.len(), prepared.2.len(), "{name}: objects");
    for (a, b) in left.2.iter().zip(&prepared.2) {
        assert_eq!(a, b, "{name}: object {}", a.0);
    }
    // The layout is one for the same references, however they were gathered.
    assert_eq!(
        sha1(&zfs_files::with_suffix(f, ".refs")),
        sha1(&zfs_files::with_suffix(&copy, ".refs")),
        "{name}: the same references in other bytes"
    );
}

/// Appends to `f` one transaction after its last: for each `(oid, from)`, a new revision of
/// `oid` holding the state of the current revision of `from` (its references with it).
fn commit(f: &Path, changes: &[(u64, u64)]) {
    let fs = FileStorage::open(f).expect("open");
    let end = fs.end().expect("end");
    let scan = zfs_format::scan::build_index(&fs, &NoProgress).expect("scan");
    let tid = Tid::from_u64(end.last_complete_tid.as_u64() + 1);
    let mut t = zfs_format::writer::TxnBuilder::new(
        end.pos,
        tid,
        zfs_format::Status::Committed,
        b"",
        b"a later commit",
        b"",
    )
    .expect("txn");
    for &(oid, from) in changes {
        let prev = scan
            .index
            .get(zfs_format::Oid::from_u64(oid))
            .expect("object");
        let at = scan
            .index
            .get(zfs_format::Oid::from_u64(from))
            .expect("object");
        let data = match fs.record_at(at).expect("record").payload {
            zfs_format::Payload::Data(d) => d.to_vec(),
            _ => panic!("object {from} has a backpointer as its current record"),
        };
        t.data(zfs_format::Oid::from_u64(oid), prev, &data);
    }
    let bytes = t.finish();
    drop(fs);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(f)
        .expect("open");
    std::io::Write::write_all(&mut file, &bytes).expect("append");
    reindex(f);
}

#[test]
fn a_pack_leaves_references_for_the_next_pack() {
    let d = tempfile::tempdir().expect("tempdir");
    let bytes = generated(21, 3 << 20);
    let f = placed(d.path(), "f", &bytes);
    // No references beforehand: the usual pack, which leaves them for the packed file.
    let r = pack_now(&f, false).expect("packs");
    assert_eq!(r.outcome, Outcome::Packed);
    assert_eq!(r.saved_references, SavedReferences::None);
    assert!(r.references_saved);
    assert_describes(&f, d.path(), "first");
    // The site commits more; the next pack reads the file once, with the result it has
    // without them.
    let (_, _, entries) = said(&f);
    let objects: Vec<u64> = entries.iter().map(|e| e.0).collect();
    let leaf = entries
        .iter()
        .find(|e| e.3.as_ref().is_some_and(|l| l.is_empty()))
        .map(|e| e.0)
        .expect("an object without references");
    let rounds: [Vec<(u64, u64)>; 3] = [
        // Objects rewritten as they were.
        objects.iter().step_by(7).map(|&o| (o, o)).collect(),
        // An object takes another's references.
        vec![(objects[1], objects[2]), (objects[3], objects[3])],
        // The root refers to nothing any more: everything else is garbage.
        vec![(0, leaf)],
    ];
    for (i, changes) in rounds.iter().enumerate() {
        commit(&f, changes);
        let without = placed(
            d.path(),
            &format!("{i}-without"),
            &std::fs::read(&f).expect("read"),
        );
        let r = same_pack(&f, &without);
        assert_eq!(r.outcome, Outcome::Packed, "round {i}");
        assert_eq!(r.saved_references, SavedReferences::Used, "round {i}");
        assert!(r.references_saved, "round {i}");
        assert_describes(&f, d.path(), &format!("round{i}"));
    }
    assert_eq!(said(&f).2.len(), 1, "only the root is left");
}

#[test]
fn a_prepare_reads_only_what_was_committed_since_the_references_it_finds() {
    let d = tempfile::tempdir().expect("tempdir");
    let full = generated(23, 3 << 20);
    let cut = txn_start(d.path(), &full, 1, 2);
    let f = placed(d.path(), "f", &full[..cut]);
    let p = prepare(&f, &NoProgress).expect("prepare");
    assert_eq!(p.read_from, 4, "nothing saved before: the whole file");
    // The site commits more: the next prepare reads only that.
    std::fs::write(&f, &full).expect("the later commits");
    reindex(&f);
    let p = prepare(&f, &NoProgress).expect("prepare");
    assert_eq!(p.read_from, cut as u64);
    assert_describes(&f, d.path(), "since a prepare");
    // After a pack, which leaves the packed file's references, and more commits.
    pack_now(&f, false).expect("packs");
    let end = std::fs::metadata(&f).expect("packed").len();
    let objects: Vec<u64> = said(&f).2.iter().map(|e| e.0).collect();
    commit(&f, &[(objects[1], objects[2]), (objects[5], objects[5])]);
    let p = prepare(&f, &NoProgress).expect("prepare");
    assert_eq!(p.read_from, end);
    assert_describes(&f, d.path(), "since a pack");
    // References that do not describe the file (another file's) are read past, not used.
    let other = placed(d.path(), "other", &generated(24, 1 << 20));
    prepare(&other, &NoProgress).expect("prepare");
    std::fs::copy(
        zfs_files::with_suffix(&other, ".refs"),
        zfs_files::with_suffix(&f, ".refs"),
    )
    .expect("copy");
    let p = prepare(&f, &NoProgress).expect("prepare");
    assert_eq!(p.read_from, 4);
    assert_describes(&f, d.path(), "past another file's");
}

#[test]
fn transactions_committed_after_the_references_were_saved_are_read() {
    let d = tempfile::tempdir().expect("tempdir");
    let full = generated(11, 3 << 20);
    // The file as it was some transactions ago: a prefix ending at a transaction.
    let cut = txn_start(d.path(), &full, 2, 3);
    let with = placed(d.path(), "with", &full[..cut]);
    prepare(&with, &NoProgress).expect("prepare");
    std::fs::write(&with, &full).expect("the later commits");
    reindex(&with);
    let without = placed(d.path(), "without", &full);
    let r = same_pack(&with, &without);
    assert_eq!(r.outcome, Outcome::Packed);
    assert_eq!(r.saved_references, SavedReferences::Used);
}

/// Rewrites `f`'s `.refs` with `change` applied to its entries and list (a valid file).
fn rewrite_refs(f: &Path, change: impl FnOnce(&mut u64, &mut Vec<Entry>, &mut Vec<u32>)) {
    let p = zfs_files::with_suffix(f, ".refs");
    let bytes = std::fs::read(&p).expect("refs");
    let refs = RefsFile::parse(&bytes).expect("parse");
    let mut entries: Vec<Entry> = (0..refs.len()).map(|i| refs.entry(i)).collect();
    // The list rebuilt from the entries.
    let mut list = Vec::new();
    for (i, e) in entries.iter_mut().enumerate() {
        if let Refs::Known(l) = refs.refs(i) {
            e.start = list.len() as u32;
            list.push(l.len() as u32);
            list.extend(l.iter());
        }
    }
    let mut end = refs.end;
    let last = refs.last_tid;
    change(&mut end, &mut entries, &mut list);
    let mut out = Vec::new();
    write_refs(&mut out, end, last, &entries, &list).expect("write");
    std::fs::write(&p, out).expect("write refs");
}

#[test]
fn saved_references_that_do_not_describe_the_file_are_left_aside() {
    let d = tempfile::tempdir().expect("tempdir");
    let bytes = generated(5, 2 << 20);
    let other = generated(6, 2 << 20);
    type Spoil<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Spoil)> = vec![
        (
            "another file's",
            Box::new(|f: &Path| {
                let o = f.with_file_name("other.fs");
                std::fs::write(&o, &other).expect("write");
                reindex(&o);
                prepare(&o, &NoProgress).expect("prepare");
                std::fs::rename(
                    zfs_files::with_suffix(&o, ".refs"),
                    zfs_files::with_suffix(f, ".refs"),
                )
                .expect("rename");
            }),
        ),
        (
            // The one change that would lose data if it were believed: the root refers
            // to nothing, so nothing else would be reachable.
            "the root's references taken away",
            Box::new(|f: &Path| {
                rewrite_refs(f, |_, entries, list| {
                    entries[0].start = list.len() as u32;
                    list.push(0);
                })
            }),
        ),
        (
            "one reference of a reachable object taken away",
            Box::new(|f: &Path| {
                rewrite_refs(f, |_, entries, list| {
                    // The root's first reference leads to a reachable object with references.
                    let root = entries[0].start as usize;
                    let first = list[root + 1] as usize;
                    let s = entries[first].start as usize;
                    assert!(list[s] > 0, "the root's first referent has references");
                    let n = list[s] as usize;
                    let kept: Vec<u32> = list[s + 2..s + 1 + n].to_vec();
                    entries[first].start = list.len() as u32;
                    list.push(kept.len() as u32);
                    list.extend(kept);
                })
            }),
        ),
        (
            "a wrong tid",
            Box::new(|f: &Path| rewrite_refs(f, |_, entries, _| entries[0].tid = Tid::from_u64(1))),
        ),
        (
            "a wrong position",
            Box::new(|f: &Path| rewrite_refs(f, |_, entries, _| entries[1].pos += 1)),
        ),
        (
            "an end past the file",
            Box::new(|f: &Path| rewrite_refs(f, |end, _, _| *end += 1)),
        ),
        (
            "an object missing",
            Box::new(|f: &Path| {
                rewrite_refs(f, |_, entries, list| {
                    let gone = entries.len() - 1;
                    entries.pop();
                    // No reference may name the entry that is gone.
                    for e in entries.iter_mut() {
                        let s = e.start as usize;
                        if e.start < zfs_format::refs_file::ABSENT
                            && list[s + 1..=s + list[s] as usize].contains(&(gone as u32))
                        {
                            e.start = zfs_format::refs_file::UNKNOWN;
                        }
                    }
                })
            }),
        ),
        (
            "cut short",
            Box::new(|f: &Path| {
                let p = zfs_files::with_suffix(f, ".refs");
                let b = std::fs::read(&p).expect("refs");
                std::fs::write(&p, &b[..b.len() - 9]).expect("write");
            }),
        ),
    ];
    for (i, (what, spoil)) in cases.iter().enumerate() {
        let with = placed(d.path(), &format!("{i}-with"), &bytes);
        let without = placed(d.path(), &format!("{i}-without"), &bytes);
        prepare(&with, &NoProgress).expect("prepare");
        spoil(&with);
        let r = same_pack(&with, &without);
        assert_eq!(r.outcome, Outcome::Packed, "{what}");
        assert_eq!(r.saved_references, SavedReferences::Ignored, "{what}");
    }
}

#[test]
fn saved_references_someone_else_could_have_written_are_not_read() {
    let d = tempfile::tempdir().expect("tempdir");
    let bytes = generated(8, 1 << 20);
    // Group-writable while the file is not; a symlink to references that fit.
    type Spoil = fn(&Path);
    let spoil: [(&str, Spoil); 2] = [
        ("group-writable", |f| {
            let p = zfs_files::with_suffix(f, ".refs");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o664)).expect("chmod");
        }),
        ("a symlink", |f| {
            let p = zfs_files::with_suffix(f, ".refs");
            let real = f.with_file_name("elsewhere.refs");
            std::fs::rename(&p, &real).expect("rename");
            std::os::unix::fs::symlink(&real, &p).expect("symlink");
        }),
    ];
    for (i, (what, spoil)) in spoil.iter().enumerate() {
        let with = placed(d.path(), &format!("{i}-with"), &bytes);
        let without = placed(d.path(), &format!("{i}-without"), &bytes);
        std::fs::set_permissions(&with, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        std::fs::set_permissions(&without, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        prepare(&with, &NoProgress).expect("prepare");
        spoil(&with);
        let r = same_pack(&with, &without);
        assert_eq!(r.saved_references, SavedReferences::None, "{what}");
    }
}

#[test]
fn without_a_saved_index_that_covers_the_file_saved_references_are_not_read() {
    let d = tempfile::tempdir().expect("tempdir");
    let bytes = generated(9, 1 << 20);
    let with = placed(d.path(), "with", &bytes);
    let without = placed(d.path(), "without", &bytes);
    prepare(&with, &NoProgress).expect("prepare");
    // The index of another state of the file: not sane for it.
    std::fs::write(zfs_files::with_suffix(&with, ".index"), b"stale").expect("write");
    std::fs::write(zfs_files::with_suffix(&without, ".index"), b"stale").expect("write");
    let r = same_pack(&with, &without);
    assert_eq!(r.saved_references, SavedReferences::None);
    // A pack to a time before the last transaction does not read them either.
    let with = placed(d.path(), "with2", &bytes);
    prepare(&with, &NoProgress).expect("prepare");
    let fs = FileStorage::open(&with).expect("open");
    let mid = fs
        .transactions()
        .map(|t| t.expect("txn").tid())
        .nth(100)
        .expect("a middle transaction");
    drop(fs);
    let r = pack(&with, &PackOptions::new(mid), &NoProgress).expect("packs");
    assert_eq!(r.saved_references, SavedReferences::None);
}

static STOP_NOW: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

#[test]
fn an_interrupted_pack_from_saved_references_changes_nothing() {
    let d = tempfile::tempdir().expect("tempdir");
    let bytes = generated(10, 1 << 20);
    let f = placed(d.path(), "f", &bytes);
    prepare(&f, &NoProgress).expect("prepare");
    let run = zfs_format::Interruptible {
        progress: &NoProgress,
        flag: &STOP_NOW,
    };
    let o = PackOptions::new(after_last(&f));
    assert!(matches!(pack(&f, &o, &run), Err(PackError::Interrupted)));
    assert_eq!(std::fs::read(&f).expect("read"), bytes);
    let mut left: Vec<String> = std::fs::read_dir(f.parent().expect("dir"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["Data.fs", "Data.fs.index", "Data.fs.lock", "Data.fs.refs"]
    );
    // So is a prepare: nothing written.
    std::fs::remove_file(zfs_files::with_suffix(&f, ".refs")).expect("rm");
    assert!(matches!(prepare(&f, &run), Err(PackError::Interrupted)));
    assert!(!zfs_files::with_suffix(&f, ".refs").exists());
}

#[test]
fn damage_in_the_middle_is_refused_as_without_saved_references() {
    // A transaction in the middle with an invalid status (ZODB's checkTxn refuses it), or
    // with the status of an unfinished commit (the walk of the file stops there: the
    // transactions after it are complete, so the committed part is damaged).
    for (i, status) in [b'x', b'c'].into_iter().enumerate() {
        let d = tempfile::tempdir().expect("tempdir");
        let bytes = generated(12 + i as u64, 1 << 20);
        let with = placed(d.path(), "with", &bytes);
        let status_at = {
            let fs = FileStorage::open(&with).expect("open");
            let pos: Vec<u64> = fs.transactions().map(|t| t.expect("txn").pos()).collect();
            (pos[pos.len() / 2] + 16) as usize
        };
        let mut damaged = bytes.clone();
        damaged[status_at] = status;
        prepare(&with, &NoProgress).expect("prepare");
        std::fs::write(&with, &damaged).expect("damage");
        let without = placed(d.path(), "without", &bytes);
        std::fs::write(&without, &damaged).expect("damage");
        let a = pack_now(&with, false).expect_err("refused with saved references");
        let b = pack_now(&without, false).expect_err("refused");
        assert_eq!(
            a.to_string().replace("/with/", "/"),
            b.to_string().replace("/without/", "/")
        );
        assert_eq!(std::fs::read(&with).expect("read"), damaged);
        let mut left: Vec<String> = std::fs::read_dir(d.path().join("with"))
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["Data.fs", "Data.fs.index", "Data.fs.lock", "Data.fs.refs"]
        );
    }
}

#[test]
fn a_prepare_while_the_site_runs_reads_past_its_saved_index() {
    // The saved index is the one written when the database was last closed: older than
    // the file. The references saved must still be those of the file as it is.
    let d = tempfile::tempdir().expect("tempdir");
    let full = generated(14, 2 << 20);
    let cut = txn_start(d.path(), &full, 1, 2);
    let with = placed(d.path(), "with", &full[..cut]);
    std::fs::write(&with, &full).expect("the later commits");
    let p = prepare(&with, &NoProgress).expect("prepare");
    assert_eq!(p.end, full.len() as u64);
    // The site stops: ZODB writes the index.
    reindex(&with);
    let without = placed(d.path(), "without", &full);
    let r = same_pack(&with, &without);
    assert_eq!(r.saved_references, SavedReferences::Used);
}
