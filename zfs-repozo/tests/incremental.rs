//! Incremental restore: an existing target restored at any earlier state of a chain is
//! brought to any later state by appending, and ends byte-identical to a full restore;
//! targets that do not check out (damaged, foreign, packed, longer, written to since) are
//! rebuilt in full with the reason; an interrupted or failed append leaves the old bytes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

mod common;
use common::transactions;
use zfs_repozo::backup::{backup, BackupOptions};
use zfs_repozo::restore::{restore, Method, RestoreOptions, RestoreReport};
use zfs_repozo::{Error, Hooks, Stamp};

const NOW: Stamp = Stamp {
    secs: 1_800_000_000,
};

/// A repository with a chain of `steps` states: a full backup of the first, then one
/// incremental per state (gzipped where `gzip(i)` says), and the bytes of every state.
struct Chain {
    dir: tempfile::TempDir,
    states: Vec<Vec<u8>>,
    stamps: Vec<Stamp>,
}

impl Chain {
    fn new(steps: usize, gzip: impl Fn(usize) -> bool) -> Chain {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("repo")).expect("mkdir");
        let (all, ends) = transactions(10 + 6 * steps as u64);
        let mut c = Chain {
            dir,
            states: Vec::new(),
            stamps: Vec::new(),
        };
        for i in 0..steps {
            let state = all[..ends[9 + 6 * i] as usize].to_vec();
            let stamp = Stamp {
                secs: 1_700_000_000 + 100 * i as i64,
            };
            let src = c.path("Data.fs");
            std::fs::write(&src, &state).expect("write");
            let mut o = BackupOptions::new(c.repo(), src.to_str().expect("utf8"));
            o.now = Some(stamp);
            o.gzip = gzip(i);
            backup(&o, &Hooks::silent()).expect("backup");
            c.states.push(state);
            c.stamps.push(stamp);
        }
        c
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn repo(&self) -> String {
        self.path("repo").to_str().expect("utf8").to_string()
    }
    fn opts(&self, out: &Path, state: usize) -> RestoreOptions {
        RestoreOptions {
            repository: self.repo(),
            date: Some(self.stamps[state].format()),
            output: Some(out.to_path_buf()),
            now: Some(NOW),
            ..Default::default()
        }
    }
    fn restore(&self, o: &RestoreOptions) -> RestoreReport {
        restore(o, &Hooks::silent(), &mut std::io::sink()).expect("restore")
    }
    fn index_of(&self, state: usize) -> Vec<u8> {
        std::fs::read(self.path(&format!("repo/{}.index", self.stamps[state].format())))
            .expect("index")
    }
}

/// A FileStorage of another database, cut to `len` bytes.
fn other_database(len: usize) -> Vec<u8> {
    let mut f = zfs_testdata::Maker::new()
        .tids(0x0400_0000_0000_0000, 1)
        .meta(b"other", b"");
    while f.pos() < len as u64 {
        let t = f.count();
        f.txn([(t % 5, [t as u8; 3000])]);
    }
    let mut bytes = f.into_bytes();
    bytes.truncate(len);
    bytes
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).expect("read")
}

fn reason(r: &RestoreReport) -> String {
    match &r.method {
        Method::Full { reason: Some(r) } => r.clone(),
        other => panic!("not a full restore with a reason: {other:?}"),
    }
}

#[test]
fn every_earlier_state_is_brought_to_every_later_one() {
    let steps = 5;
    for (label, gzip) in [
        ("plain", &(|_| false) as &dyn Fn(usize) -> bool),
        ("gzip", &|_| true),
        ("mixed", &|i| i % 2 == 1),
    ] {
        let c = Chain::new(steps, gzip);
        let out = c.path("out.fs");
        for from in 0..steps {
            for to in from..steps {
                for (quick, verify) in [(false, false), (true, false), (false, true)] {
                    let _ = std::fs::remove_file(&out);
                    let _ = std::fs::remove_file(c.path("out.fs.index"));
                    let first = c.restore(&c.opts(&out, from));
                    assert_eq!(first.method, Method::Full { reason: None });
                    let mut o = c.opts(&out, to);
                    o.quick = quick;
                    o.with_verify = verify;
                    let r = c.restore(&o);
                    let what = format!("{label}: {from} -> {to}, -Q {quick}, -w {verify}");
                    assert_eq!(read(&out), c.states[to], "{what}");
                    assert_eq!(read(&c.path("out.fs.index")), c.index_of(to), "{what}");
                    assert_eq!(r.size, c.states[to].len() as u64, "{what}");
                    if from == to {
                        assert_eq!(r.method, Method::UpToDate, "{what}");
                        assert_eq!(r.bytes, 0, "{what}");
                    } else {
                        let Method::Appended { from: at, files } = &r.method else {
                            panic!("{what}: {:?}", r.method);
                        };
                        assert_eq!(*at, c.states[from].len() as u64, "{what}");
                        assert_eq!(files.len(), to - from, "{what}");
                        assert_eq!(
                            r.bytes,
                            (c.states[to].len() - c.states[from].len()) as u64,
                            "{what}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn targets_that_do_not_check_out_are_rebuilt_with_the_reason() {
    let c = Chain::new(4, |i| i == 2);
    let out = c.path("out.fs");
    let full = |state: usize| {
        let _ = std::fs::remove_file(&out);
        c.restore(&c.opts(&out, state));
    };
    // Longer than the state (a restore of a later state, or a target written to since).
    full(3);
    let r = c.restore(&c.opts(&out, 1));
    assert!(
        reason(&r).starts_with("Target file is larger than latest backup"),
        "{r:?}"
    );
    assert_eq!(read(&out), c.states[1]);
    // Shorter than the full backup (or empty).
    std::fs::write(&out, &c.states[0][..100]).expect("write");
    let r = c.restore(&c.opts(&out, 2));
    assert!(
        reason(&r).starts_with("Target file smaller than full backup"),
        "{r:?}"
    );
    assert_eq!(read(&out), c.states[2]);
    // A byte changed inside what the target holds: the MD5 check finds it.
    full(1);
    let mut damaged = read(&out);
    damaged[50] ^= 1;
    std::fs::write(&out, &damaged).expect("write");
    let r = c.restore(&c.opts(&out, 3));
    assert!(
        reason(&r).starts_with("Target file is not consistent with backup"),
        "{r:?}"
    );
    assert_eq!(read(&out), c.states[3]);
    // With -Q only the last backup the target holds is checked (as proposed upstream): a
    // change in an earlier one goes unseen and is kept.
    std::fs::write(&out, &damaged).expect("write");
    let mut o = c.opts(&out, 3);
    o.quick = true;
    let r = c.restore(&o);
    assert!(matches!(r.method, Method::Appended { .. }), "{r:?}");
    assert_eq!(read(&out)[50], damaged[50]);
    assert_eq!(read(&out)[100..], c.states[3][100..]);
    // ... but one in the last backup it holds is found.
    full(1);
    let mut damaged = read(&out);
    let last = damaged.len() - 10;
    damaged[last] ^= 1;
    std::fs::write(&out, &damaged).expect("write");
    let mut o = c.opts(&out, 3);
    o.quick = true;
    let r = c.restore(&o);
    assert!(
        reason(&r).starts_with("Target file is not consistent with backup"),
        "{r:?}"
    );
    assert_eq!(read(&out), c.states[3]);
    // A file of another database, as long as a state of this chain: rebuilt.
    std::fs::write(&out, other_database(c.states[1].len())).expect("write");
    let r = c.restore(&c.opts(&out, 3));
    assert!(
        matches!(r.method, Method::Full { reason: Some(_) }),
        "{r:?}"
    );
    assert_eq!(read(&out), c.states[3]);
    // Written to since it was restored (a database opened read-write appended to it).
    full(1);
    let mut written = read(&out);
    written.extend_from_slice(&transactions(3).0[4..]);
    std::fs::write(&out, &written).expect("write");
    let r = c.restore(&c.opts(&out, 3));
    assert!(
        reason(&r).contains("was written to since it was restored"),
        "{r:?}"
    );
    assert_eq!(read(&out), c.states[3]);
    // -F: a full restore, no reason needed.
    let mut o = c.opts(&out, 3);
    o.full = true;
    assert_eq!(c.restore(&o).method, Method::Full { reason: None });
    assert_eq!(read(&out), c.states[3]);
}

#[test]
fn what_cannot_be_appended_to_in_place_is_rebuilt() {
    let c = Chain::new(3, |_| false);
    let out = c.path("out.fs");
    c.restore(&c.opts(&out, 0));
    // Another name for the same file: appending would change it too.
    let other = c.path("kept-copy.fs");
    std::fs::hard_link(&out, &other).expect("link");
    let r = c.restore(&c.opts(&out, 2));
    assert!(reason(&r).contains("hard links"), "{r:?}");
    assert_eq!(read(&out), c.states[2]);
    assert_eq!(read(&other), c.states[0], "the other name keeps its bytes");
    // A symlink is replaced, not appended through.
    let real = c.path("real.fs");
    std::fs::write(&real, &c.states[0]).expect("write");
    let link = c.path("link.fs");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let r = c.restore(&c.opts(&link, 2));
    assert!(reason(&r).contains("symlink"), "{r:?}");
    assert_eq!(read(&real), c.states[0]);
    assert_eq!(read(&link), c.states[2]);
    // No .dat to check the target against.
    std::fs::remove_file(c.path(&format!("repo/{}.dat", c.stamps[0].format()))).expect("rm");
    let _ = std::fs::remove_file(&out);
    c.restore(&c.opts(&out, 0));
    let r = c.restore(&c.opts(&out, 2));
    assert!(reason(&r).contains("no .dat describes the chain"), "{r:?}");
    assert_eq!(read(&out), c.states[2]);
}

#[test]
fn a_tail_left_by_a_killed_append_is_completed_and_a_foreign_one_is_not() {
    for gzip in [false, true] {
        let c = Chain::new(4, |_| gzip);
        let out = c.path("out.fs");
        // The state of step 1 plus the first bytes of step 2's backup: what a restore
        // killed while appending leaves.
        let partial = &c.states[2][..c.states[1].len() + 777];
        std::fs::write(&out, partial).expect("write");
        let r = c.restore(&c.opts(&out, 3));
        assert_eq!(
            r.method,
            Method::Appended {
                from: c.states[1].len() as u64,
                files: vec![
                    format!(
                        "{}/{}.deltafs{}",
                        c.repo(),
                        c.stamps[2].format(),
                        if gzip { "z" } else { "" }
                    ),
                    format!(
                        "{}/{}.deltafs{}",
                        c.repo(),
                        c.stamps[3].format(),
                        if gzip { "z" } else { "" }
                    ),
                ]
            },
            "gzip {gzip}"
        );
        assert_eq!(read(&out), c.states[3]);
        // The same length, other bytes: rebuilt.
        let mut foreign = partial.to_vec();
        let n = foreign.len();
        foreign[n - 3] ^= 1;
        std::fs::write(&out, &foreign).expect("write");
        let r = c.restore(&c.opts(&out, 3));
        assert!(reason(&r).contains("written to since"), "{r:?}");
        assert_eq!(read(&out), c.states[3]);
    }
}

/// Sets the interrupt flag the first time the phase `phase` reports progress.
struct StopIn<'a> {
    phase: &'a str,
    current: Mutex<String>,
    flag: &'a AtomicBool,
}

impl zfs_format::Progress for StopIn<'_> {
    fn start(&self, phase: &str, _total: u64) {
        *self.current.lock().expect("mutex") = phase.to_string();
    }
    fn advance(&self, _n: u64) {
        if *self.current.lock().expect("mutex") == self.phase {
            self.flag.store(true, Ordering::SeqCst);
        }
    }
    fn interrupted(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

#[test]
fn an_interrupted_or_failed_append_leaves_the_old_target() {
    for gzip in [false, true] {
        let c = Chain::new(4, |_| gzip);
        let out = c.path("out.fs");
        c.restore(&c.opts(&out, 1));
        let old_index = read(&c.path("out.fs.index"));
        // Interrupted while checking, then while appending.
        for phase in ["checking", "restoring"] {
            let flag = AtomicBool::new(false);
            let progress = StopIn {
                phase,
                current: Mutex::new(String::new()),
                flag: &flag,
            };
            let hooks = Hooks {
                progress: &progress,
                ..Hooks::silent()
            };
            let e =
                restore(&c.opts(&out, 3), &hooks, &mut std::io::sink()).expect_err("interrupted");
            assert!(matches!(e, Error::Interrupted), "{phase}: {e}");
            assert_eq!(read(&out), c.states[1], "gzip {gzip}, {phase}");
            // The index goes before the first byte is appended, never to stay beside a
            // file it does not describe.
            if phase == "checking" {
                assert_eq!(read(&c.path("out.fs.index")), old_index);
            } else {
                assert!(!c.path("out.fs.index").exists());
                std::fs::write(c.path("out.fs.index"), &old_index).expect("write");
            }
        }
        // A backup file that is not what the .dat says, found by -w after part of the
        // append: cut back.
        let last = c.path(&format!(
            "repo/{}.deltafs{}",
            c.stamps[3].format(),
            if gzip { "z" } else { "" }
        ));
        let good = read(&last);
        let (bad_state, _) = transactions(80);
        let size = c.states[3].len() - c.states[2].len();
        let bad = &bad_state[4..4 + size];
        if gzip {
            let mut z = Vec::new();
            zfs_repozo::gz::gzip_parallel(bad, 6, &mut z, &zfs_format::NoProgress).expect("gzip");
            std::fs::write(&last, z).expect("write");
        } else {
            std::fs::write(&last, bad).expect("write");
        }
        let mut o = c.opts(&out, 3);
        o.with_verify = true;
        let e = restore(&o, &Hooks::silent(), &mut std::io::sink()).expect_err("checksum");
        assert!(matches!(e, Error::WrongChecksum { .. }), "{e}");
        assert_eq!(read(&out), c.states[1], "gzip {gzip}: cut back");
        assert!(!c.path("out.fs.index").exists());
        std::fs::write(&last, good).expect("write");
        assert!(matches!(
            c.restore(&c.opts(&out, 3)).method,
            Method::Appended { .. }
        ));
        assert_eq!(read(&out), c.states[3]);
    }
}

#[test]
fn a_database_in_use_is_not_restored_over() {
    let c = Chain::new(2, |_| false);
    let out = c.path("out.fs");
    c.restore(&c.opts(&out, 0));
    // A running ZODB holds out.fs.lock (zc.lockfile takes an exclusive flock).
    let lock = std::fs::File::create(c.path("out.fs.lock")).expect("create");
    lock.lock().expect("flock");
    for full in [false, true] {
        let mut o = c.opts(&out, 1);
        o.full = full;
        let e = restore(&o, &Hooks::silent(), &mut std::io::sink()).expect_err("in use");
        assert!(matches!(e, Error::TargetInUse { .. }), "{e}");
        assert_eq!(read(&out), c.states[0]);
    }
    drop(lock);
    c.restore(&c.opts(&out, 1));
    assert_eq!(read(&out), c.states[1]);
}

#[test]
fn an_index_that_does_not_fit_the_file_is_not_restored() {
    let c = Chain::new(3, |_| false);
    let out = c.path("out.fs");
    c.restore(&c.opts(&out, 0));
    assert_eq!(read(&c.path("out.fs.index")), c.index_of(0));
    // The repository's index of the newest state is another state's.
    std::fs::write(
        c.path(&format!("repo/{}.index", c.stamps[2].format())),
        c.index_of(1),
    )
    .expect("write");
    let notices = Mutex::new(Vec::new());
    let notice = |m: &str| notices.lock().expect("mutex").push(m.to_string());
    let hooks = Hooks {
        notice: &notice,
        ..Hooks::silent()
    };
    let r = restore(&c.opts(&out, 2), &hooks, &mut std::io::sink()).expect("restore");
    assert!(matches!(r.method, Method::Appended { .. }));
    assert_eq!(read(&out), c.states[2]);
    assert_eq!(r.index, None);
    assert!(!c.path("out.fs.index").exists());
    assert!(notices.lock().expect("mutex")[0].contains("does not fit"));
}
