//! What a backup or restore leaves when things go wrong under it: a source that shrinks
//! while it is read, a restore interrupted after the old target had to be deleted, and the
//! leftovers of a full backup killed before its data file was renamed into place.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

mod common;
use common::transactions;
use zfs_repozo::backup::{backup, Action, BackupOptions};
use zfs_repozo::restore::{restore, RestoreOptions};
use zfs_repozo::verify::{verify, VerifyOptions};
use zfs_repozo::{Error, Hooks, Stamp};

/// Every name in `dir` except the repository's lock file, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
        .filter(|n| n != zfs_repozo::repo::LOCK_FILE)
        .collect();
    v.sort();
    v
}

/// Runs `act` once, the first time a phase named `phase` reports progress.
struct OnPhase<'a> {
    phase: &'a str,
    current: Mutex<String>,
    fired: AtomicBool,
    act: &'a (dyn Fn() + Sync),
}

impl zfs_format::Progress for OnPhase<'_> {
    fn start(&self, phase: &str, _total: u64) {
        *self.current.lock().expect("mutex") = phase.to_string();
    }
    fn advance(&self, _n: u64) {
        if *self.current.lock().expect("mutex") == self.phase
            && !self.fired.swap(true, Ordering::SeqCst)
        {
            (self.act)();
        }
    }
}

fn on_phase<'a>(phase: &'a str, act: &'a (dyn Fn() + Sync)) -> OnPhase<'a> {
    OnPhase {
        phase,
        current: Mutex::new(String::new()),
        fired: AtomicBool::new(false),
        act,
    }
}

#[test]
fn a_source_that_shrinks_while_it_is_read_puts_nothing_in_place() {
    let d = tempfile::tempdir().expect("tempdir");
    let repo = d.path().join("repo");
    std::fs::create_dir(&repo).expect("mkdir");
    let src = d.path().join("Data.fs");
    let (data, _) = transactions(600);
    std::fs::write(&src, &data).expect("write");
    let cut = || {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&src)
            .expect("open");
        f.set_len(4096).expect("truncate");
    };
    let progress = on_phase("compressing", &cut);
    let hooks = Hooks {
        progress: &progress,
        ..Hooks::silent()
    };
    let mut o = BackupOptions::new(repo.to_str().expect("utf8"), src.to_str().expect("utf8"));
    o.now = Some(Stamp {
        secs: 1_700_000_000,
    });
    o.gzip = true;
    let e = backup(&o, &hooks).expect_err("shrunk");
    assert!(progress.fired.load(Ordering::SeqCst));
    assert!(e.to_string().contains("shrank while it was read"), "{e}");
    assert!(names(&repo).is_empty(), "{:?}", names(&repo));
}

/// A tmpfs of `size` bytes on a temporary directory, unmounted when dropped (needs root).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn new(size: u64) -> Tmpfs {
        assert!(
            rustix::process::geteuid().is_root(),
            "this test mounts a tmpfs: run it as root"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount");
        assert!(ok.success(), "mount tmpfs");
        Tmpfs { dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_restore_interrupted_after_deleting_the_old_target_says_it_is_gone() {
    let d = tempfile::tempdir().expect("tempdir");
    let repo = d.path().join("repo");
    std::fs::create_dir(&repo).expect("mkdir");
    let repo_s = repo.to_str().expect("utf8").to_string();
    let src = d.path().join("Data.fs");
    let (data, _) = transactions(60);
    std::fs::write(&src, &data).expect("write");
    let mut o = BackupOptions::new(repo_s.clone(), src.to_str().expect("utf8"));
    o.now = Some(Stamp {
        secs: 1_700_000_000,
    });
    backup(&o, &Hooks::silent()).expect("backup");
    // Room for one copy only: the old target must go first.
    let small = Tmpfs::new(data.len() as u64 + data.len() as u64 / 2);
    let target = small.dir.path().join("target.fs");
    std::fs::write(&target, &data[..data.len() * 9 / 10]).expect("old target");
    let flag = AtomicBool::new(false);
    let stop = || flag.store(true, Ordering::SeqCst);
    let progress = on_phase("restoring", &stop);
    let notices = Mutex::new(Vec::new());
    let notice = |m: &str| notices.lock().expect("mutex").push(m.to_string());
    let hooks = Hooks {
        progress: &progress,
        notice: &notice,
        interrupt: Some(&flag),
        ..Hooks::silent()
    };
    let r = RestoreOptions {
        repository: repo_s.clone(),
        output: Some(target.clone()),
        now: Some(Stamp {
            secs: 1_800_000_000,
        }),
        ..Default::default()
    };
    let e = restore(&r, &hooks, &mut std::io::sink()).expect_err("interrupted");
    assert!(e.is_interrupted(), "{e}");
    assert!(matches!(e, Error::TargetDeleted { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with("interrupted") && text.contains("does not exist now"),
        "{text}"
    );
    assert!(!text.contains("nothing was changed"), "{text}");
    assert!(notices.lock().expect("mutex")[0].contains("deleted now to make room"));
    // What the message says is what is there: no target, no temporary filling the disk.
    assert_eq!(names(small.dir.path()), ["target.fs.lock"]);
    // The next run restores it.
    restore(&r, &Hooks::silent(), &mut std::io::sink()).expect("restore");
    assert_eq!(std::fs::read(&target).expect("read"), data);
}

#[test]
fn what_a_full_backup_killed_before_its_data_file_leaves_is_harmless_and_cleaned() {
    let d = tempfile::tempdir().expect("tempdir");
    let repo = d.path().join("repo");
    std::fs::create_dir(&repo).expect("mkdir");
    let repo_s = repo.to_str().expect("utf8").to_string();
    let src = d.path().join("Data.fs");
    let (v2, ends) = transactions(80);
    let v1 = &v2[..ends[49] as usize];
    let run = |data: &[u8], secs: i64, full: bool| {
        std::fs::write(&src, data).expect("write");
        let mut o = BackupOptions::new(repo_s.clone(), src.to_str().expect("utf8"));
        o.now = Some(Stamp { secs });
        o.full = full;
        backup(&o, &Hooks::silent()).expect("backup")
    };
    run(v1, 1_700_000_000, false);
    let first = names(&repo);
    // A full backup killed after its .index and .dat are in place, before its data file:
    // make one and take its data file away.
    run(v1, 1_700_000_100, true);
    let killed = Stamp {
        secs: 1_700_000_100,
    }
    .format();
    std::fs::remove_file(repo.join(format!("{killed}.fs"))).expect("rm");
    assert_eq!(names(&repo).len(), first.len() + 2);
    // Both readers see the chain before it, whole.
    let r = RestoreOptions {
        repository: repo_s.clone(),
        now: Some(Stamp {
            secs: 1_800_000_000,
        }),
        with_verify: true,
        ..Default::default()
    };
    let mut out = Vec::new();
    restore(&r, &Hooks::silent(), &mut out).expect("restore");
    assert_eq!(out, v1);
    let v = VerifyOptions {
        repository: repo_s.clone(),
        now: Some(Stamp {
            secs: 1_800_000_000,
        }),
        ..Default::default()
    };
    verify(&v, &Hooks::silent()).expect("verify");
    // The next backup removes them and goes on from the chain that is there.
    let rep = run(&v2, 1_700_000_200, false);
    assert_eq!(rep.action, Action::Incremental);
    let left = names(&repo);
    assert!(!left.iter().any(|n| n.starts_with(&killed)), "{left:?}");
    let mut out = Vec::new();
    restore(&r, &Hooks::silent(), &mut out).expect("restore");
    assert_eq!(out, v2);
}
