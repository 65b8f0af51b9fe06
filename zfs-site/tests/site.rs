//! Whole-site backups end to end, on Data.fs files and blob directories made here: every
//! listed point restores to the bytes of its moment, trees share unchanged blobs, the
//! checks find what is missing, prune removes exactly what its dry run lists, and an
//! interrupted backup leaves nothing half-made.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use zfs_format::blob::{blob_path, Layout};
use zfs_format::writer::FileBuilder;
use zfs_format::{Oid, Status, Tid};
use zfs_repozo::Stamp;
use zfs_site::{backup, list, prune, restore, verify, Hooks};

const BLOB: &[u8] = b"\x80\x03cZODB.blob\nBlob\nq\x00.\x80\x03N.";
const MAPPING: &[u8] = b"\x80\x03cpersistent.mapping\nPersistentMapping\nq\x00.\x80\x03}q\x01.";
const T0: i64 = 1_780_000_000;

/// A site: a Data.fs written with our encoder and a blob directory beside it.
struct Site {
    dir: tempfile::TempDir,
    file: FileBuilder,
    tid: u64,
    layout: Layout,
}

impl Site {
    fn new(layout: Layout) -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("blobstorage")).expect("mkdir");
        std::fs::write(
            dir.path().join("blobstorage/.layout"),
            format!("{}\n", layout.name()),
        )
        .expect("layout");
        std::fs::create_dir(dir.path().join("repo")).expect("mkdir");
        let s = Site {
            dir,
            file: FileBuilder::new(*b"FS30"),
            tid: 0x03f0_0000_0000_0000,
            layout,
        };
        std::fs::write(s.datafs(), s.file.clone().into_bytes()).expect("write");
        s
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn datafs(&self) -> PathBuf {
        self.p("Data.fs")
    }
    fn blobs(&self) -> PathBuf {
        self.p("blobstorage")
    }
    fn bb(&self) -> PathBuf {
        self.p("blob-backups")
    }
    fn repo(&self) -> String {
        self.p("repo").to_str().expect("utf-8").to_string()
    }

    /// Commits one transaction: a new revision of each blob in `blobs` (oid, bytes), and a
    /// change to object 0.
    fn commit(&mut self, blobs: &[(u64, &[u8])]) {
        self.tid += 0x1000;
        let tid = Tid::from_u64(self.tid);
        let mut t = self
            .file
            .txn(tid, Status::Committed, b"", b"", b"")
            .expect("txn");
        t.data(Oid::from_u64(0), 0, MAPPING);
        for &(oid, bytes) in blobs {
            t.data(Oid::from_u64(oid), 0, BLOB);
            let p = blob_path(&self.blobs(), self.layout, oid, self.tid);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, bytes).expect("blob");
        }
        self.file.push(t);
        std::fs::write(self.datafs(), self.file.clone().into_bytes()).expect("write");
    }

    fn opts(&self, secs: i64, full: bool) -> backup::BackupOptions {
        let mut d = zfs_repozo::backup::BackupOptions::new(
            self.repo(),
            self.datafs().to_str().expect("utf-8"),
        );
        d.now = Some(Stamp { secs: T0 + secs });
        d.full = full;
        d.gzip = secs % 2 == 0;
        d.quick = true;
        backup::BackupOptions {
            datafs: d,
            blobs: self.blobs(),
            blob_backups: self.bb(),
        }
    }

    fn backup(&self, secs: i64, full: bool) -> backup::BackupReport {
        backup::backup(&self.opts(secs, full), &Hooks::silent()).expect("backup")
    }
}

/// Every regular file of a tree, by path, with its bytes.
fn contents(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("ls").flatten() {
            let p = e.path();
            if e.file_type().expect("type").is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).expect("under root");
                out.insert(
                    rel.to_string_lossy().into_owned(),
                    std::fs::read(&p).expect("read"),
                );
            }
        }
    }
    out
}

fn restore_opts(site: &Site, date: Option<&str>, to: &Path) -> restore::RestoreOptions {
    restore::RestoreOptions {
        repository: site.repo(),
        date: date.map(str::to_string),
        output: to.join("Data.fs"),
        blob_backups: site.bb(),
        blobs_to: to.join("blobstorage"),
        with_verify: true,
        now: Some(Stamp { secs: T0 + 1000 }),
    }
}

#[test]
fn every_listed_point_restores_to_its_moment() {
    for layout in [Layout::Bushy, Layout::Lawn] {
        let mut site = Site::new(layout);
        let mut moments = Vec::new();
        site.commit(&[(1, b"one"), (2, b"two")]);
        let r1 = site.backup(10, false);
        assert_eq!(r1.datafs.action, "full");
        assert!(r1.check.as_ref().expect("checked").is_ok());
        moments.push((
            r1.stamp.clone(),
            std::fs::read(site.datafs()).expect("read"),
            contents(&site.blobs()),
        ));
        site.commit(&[(2, b"two, second revision"), (3, b"three")]);
        let r2 = site.backup(21, false);
        assert_eq!(r2.datafs.action, "incremental");
        assert_eq!((r2.blobs.linked, r2.blobs.copied), (2, 3), "{:?}", r2.blobs);
        assert!(
            r2.blobs.records_from > 4,
            "records of the first tree reused"
        );
        let c = r2.check.as_ref().expect("checked");
        assert_eq!((c.records, c.missing_count), (4, 0));
        moments.push((
            r2.stamp.clone(),
            std::fs::read(site.datafs()).expect("read"),
            contents(&site.blobs()),
        ));
        // Unchanged blobs are the same inode in both trees.
        let rel = blob_path(Path::new("blobstorage"), layout, 1, 0x03f0_0000_0000_1000);
        let ino = |t: &PathBuf| std::fs::metadata(t.join(&rel)).expect("blob").ino();
        assert_eq!(ino(&r1.blobs.tree), ino(&r2.blobs.tree));
        // No change: the tree of the same stamp is kept.
        let r3 = site.backup(30, false);
        assert_eq!(r3.datafs.action, "nothing");
        assert!(!r3.blobs.created);
        assert_eq!(
            std::fs::read_link(site.bb().join("latest")).expect("latest"),
            Path::new(&format!("blobstorage.{}", r2.stamp))
        );

        let l = list::list(&site.repo(), Some(&site.bb()), None, &Hooks::silent()).expect("list");
        assert_eq!(l.points.len(), 2);
        assert!(l.points.iter().all(|p| p.restorable && p.tree_exact));
        assert!(l
            .points
            .iter()
            .all(|p| p.checked.as_ref().is_some_and(|c| c.ok)));
        for ((stamp, datafs, blobs), p) in moments.iter().zip(&l.points) {
            assert_eq!(&p.stamp, stamp);
            assert_eq!(p.datafs_size, Some(datafs.len() as u64));
            let to = site.p(&format!("restored-{stamp}"));
            let r = restore::restore(&restore_opts(&site, Some(stamp), &to), &Hooks::silent())
                .expect("restore");
            assert!(
                r.check.is_ok() && r.check.orphan_count == 0,
                "{:?}",
                r.check
            );
            assert_eq!(&std::fs::read(to.join("Data.fs")).expect("read"), datafs);
            assert_eq!(&contents(&to.join("blobstorage")), blobs);
            assert!(to.join("Data.fs.index").exists());
        }
        let v = verify::verify(
            &verify::VerifyOptions {
                repository: site.repo(),
                blob_backups: site.bb(),
                all: true,
                ..Default::default()
            },
            &Hooks::silent(),
        )
        .expect("verify");
        assert!(v.is_ok(), "{v:?}");
        assert_eq!(v.trees.len(), 2);
    }
}

#[test]
fn a_restore_replaces_a_site_whole_and_refuses_half_a_site() {
    let mut site = Site::new(Layout::Bushy);
    site.commit(&[(1, b"one")]);
    site.backup(10, false);
    let to = site.p("live");
    std::fs::create_dir_all(to.join("blobstorage/old")).expect("mkdir");
    std::fs::write(to.join("blobstorage/old/x"), b"old").expect("write");
    std::fs::write(to.join("Data.fs"), b"old data").expect("write");
    std::fs::write(to.join("Data.fs.index"), b"old index").expect("write");
    let r = restore::restore(&restore_opts(&site, None, &to), &Hooks::silent()).expect("restore");
    assert!(r.replaced_datafs && r.replaced_blobs);
    assert_eq!(
        std::fs::read(to.join("Data.fs")).expect("read"),
        std::fs::read(site.datafs()).expect("read")
    );
    assert_eq!(contents(&to.join("blobstorage")), contents(&site.blobs()));
    let names: Vec<_> = std::fs::read_dir(&to)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "no temporaries left: {names:?}");

    // A Data.fs state older than every tree: refused, the site untouched.
    std::fs::remove_dir_all(site.bb()).expect("rm");
    std::fs::create_dir(site.bb()).expect("mkdir");
    let before = std::fs::read(to.join("Data.fs")).expect("read");
    let e =
        restore::restore(&restore_opts(&site, None, &to), &Hooks::silent()).expect_err("refused");
    assert!(matches!(e, zfs_site::Error::NoBlobBackup { .. }), "{e}");
    assert_eq!(std::fs::read(to.join("Data.fs")).expect("read"), before);
}

#[test]
fn missing_and_damaged_blobs_are_found() {
    let mut site = Site::new(Layout::Lawn);
    site.commit(&[(1, b"one"), (2, b"two")]);
    site.backup(10, false);
    site.commit(&[(3, b"three")]);
    // A blob file lost from the live directory (the POSKeyError of tomorrow).
    let lost = blob_path(&site.blobs(), Layout::Lawn, 3, site.tid);
    std::fs::remove_file(&lost).expect("rm");
    let r = site.backup(21, false);
    let c = r.check.expect("checked");
    assert_eq!(c.missing_count, 1);
    assert!(c.missing[0].current);
    assert_eq!(c.missing[0].oid, Oid::from_u64(3).to_string());

    // A file of the first tree truncated: verify sees its size change.
    let tree = site
        .bb()
        .join(format!("blobstorage.{}", Stamp { secs: T0 + 10 }.format()));
    let f = blob_path(
        &tree.join("blobstorage"),
        Layout::Lawn,
        2,
        0x03f0_0000_0000_1000,
    );
    let bytes = std::fs::read(&f).expect("read");
    std::fs::remove_file(&f).expect("unlink the shared inode");
    std::fs::write(&f, &bytes[..1]).expect("write");
    let v = verify::verify(
        &verify::VerifyOptions {
            repository: site.repo(),
            blob_backups: site.bb(),
            all: true,
            ..Default::default()
        },
        &Hooks::silent(),
    )
    .expect("verify");
    assert!(!v.is_ok());
    assert_eq!(v.trees[0].check.wrong_size_count, 1);
    assert_eq!(v.trees[1].check.missing_count, 1);
    let l = list::list(&site.repo(), Some(&site.bb()), None, &Hooks::silent()).expect("list");
    assert!(l
        .points
        .iter()
        .all(|p| p.checked.as_ref().is_some_and(|c| !c.ok)));
}

#[test]
fn prune_removes_exactly_what_its_dry_run_lists_and_nothing_a_kept_point_needs() {
    let mut site = Site::new(Layout::Bushy);
    let mut secs = 0;
    for chain in 0..4u64 {
        for step in 0..2u64 {
            site.commit(&[(10 * chain + step + 1, b"blob")]);
            secs += 10;
            site.backup(secs, step == 0);
        }
    }
    // The first point of the second chain lost its tree: it restores with the older one,
    // which must then survive a prune that keeps that chain.
    let trees = zfs_site::names::trees(&site.bb()).expect("trees");
    assert_eq!(trees.len(), 8);
    std::fs::remove_dir_all(&trees[2].path).expect("rm");
    let opts = prune::PruneOptions {
        repository: site.repo(),
        blob_backups: Some(site.bb()),
        keep: 3,
        ..Default::default()
    };
    let plan = prune::plan(&opts).expect("plan");
    assert_eq!(plan.removed_chains.len(), 1);
    let going: Vec<PathBuf> = plan.removals.iter().map(|r| r.path.clone()).collect();
    assert!(!going.contains(&trees[1].path), "needed by a kept point");
    assert!(going.contains(&trees[0].path));
    assert!(plan.bytes_freed > 0);
    let files_before: Vec<_> = std::fs::read_dir(site.p("repo"))
        .expect("ls")
        .flatten()
        .map(|e| e.path())
        .collect();
    let done = prune::prune(&opts, Some(&going), &Hooks::silent()).expect("prune");
    assert_eq!(done.removals, plan.removals);
    for p in &going {
        assert!(
            std::fs::symlink_metadata(p).is_err(),
            "{} removed",
            p.display()
        );
    }
    for p in files_before.iter().filter(|p| !going.contains(p)) {
        assert!(p.exists(), "{} kept", p.display());
    }
    let l = list::list(&site.repo(), Some(&site.bb()), None, &Hooks::silent()).expect("list");
    assert_eq!(l.points.len(), 6);
    assert!(l.points.iter().all(|p| p.restorable), "{:?}", l.points);
    for p in &l.points {
        let to = site.p(&format!("r-{}", p.stamp));
        restore::restore(&restore_opts(&site, Some(&p.stamp), &to), &Hooks::silent())
            .expect("every kept point restores");
    }
    // Nothing more to do; --keep 0 is refused.
    assert!(prune::plan(&opts).expect("plan").removals.is_empty());
    let zero = prune::PruneOptions { keep: 0, ..opts };
    assert!(prune::plan(&zero).is_err());
}

/// Sets the interrupt flag once the blob phase has copied `after` files.
struct InterruptAfter<'a> {
    flag: &'a AtomicBool,
    counting: AtomicBool,
    seen: AtomicU64,
    after: u64,
}

impl zfs_format::Progress for InterruptAfter<'_> {
    fn start(&self, _phase: &str, _total: u64) {
        self.counting.store(false, Ordering::Relaxed);
    }
    fn start_counting(&self, phase: &str, _total: u64, _unit: &'static str) {
        self.counting
            .store(phase == "blob backup", Ordering::Relaxed);
    }
    fn advance(&self, n: u64) {
        if self.counting.load(Ordering::Relaxed)
            && self.seen.fetch_add(n, Ordering::Relaxed) + n >= self.after
        {
            self.flag.store(true, Ordering::Relaxed);
        }
    }
}

#[test]
fn an_interrupted_backup_leaves_no_tree_and_the_next_run_completes() {
    let mut site = Site::new(Layout::Bushy);
    let blobs: Vec<(u64, Vec<u8>)> = (1..=40).map(|i| (i, vec![i as u8; 100])).collect();
    let refs: Vec<(u64, &[u8])> = blobs.iter().map(|(o, b)| (*o, b.as_slice())).collect();
    site.commit(&refs);
    let flag = AtomicBool::new(false);
    let progress = InterruptAfter {
        flag: &flag,
        counting: AtomicBool::new(false),
        seen: AtomicU64::new(0),
        after: 5,
    };
    let hooks = Hooks {
        progress: &progress,
        interrupt: Some(&flag),
        ..Hooks::silent()
    };
    let e = backup::backup(&site.opts(10, false), &hooks).expect_err("interrupted");
    assert!(e.is_interrupted(), "{e}");
    let left: Vec<_> = std::fs::read_dir(site.bb())
        .expect("ls")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "nothing half-made: {left:?}");
    // The Data.fs half is there; the next run adds the tree of its stamp.
    let r = site.backup(20, false);
    assert_eq!(r.datafs.action, "nothing");
    assert!(r.blobs.created);
    assert_eq!(r.stamp, Stamp { secs: T0 + 10 }.format());
    assert!(r.check.expect("checked").is_ok());
}
