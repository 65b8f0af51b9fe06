//! Interrupted runs (the binaries set `Hooks::interrupt` on SIGINT and SIGTERM): backup,
//! restore and verify stop with `Error::Interrupted`, leave no temporary file, and change
//! nothing that was there before. The flag is set before each run starts, so the first
//! check (after the first chunk of work) stops it: no timing is involved.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;

mod common;
use common::transactions;
use zfs_repozo::backup::{backup, BackupOptions};
use zfs_repozo::restore::{restore, RestoreOptions};
use zfs_repozo::verify::{verify, VerifyOptions};
use zfs_repozo::{Error, Hooks, Stamp};

/// A Data.fs of `n` transactions of about 20 KB each (several MB for a few hundred).
fn datafs(n: u64) -> Vec<u8> {
    transactions(n).0
}

/// Every file in `dir` (hidden temporaries included), with its bytes; the repository's
/// lock file (whose content names its last holder) is left out.
fn listing(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("ls")
        .filter(|e| {
            e.as_ref()
                .map_or(true, |e| e.file_name() != zfs_repozo::repo::LOCK_FILE)
        })
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().into_string().expect("utf8"),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

fn hooks(flag: &AtomicBool) -> Hooks<'_> {
    Hooks {
        interrupt: Some(flag),
        ..Hooks::silent()
    }
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("repo")).expect("mkdir");
        Setup { dir }
    }
    fn repo(&self) -> String {
        self.path("repo")
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().expect("utf8").into()
    }
    fn backup(
        &self,
        data: &[u8],
        secs: i64,
        gzip: bool,
        flag: &AtomicBool,
    ) -> zfs_repozo::Result<()> {
        std::fs::write(self.path("Data.fs"), data).expect("write");
        let mut o = BackupOptions::new(self.repo(), self.path("Data.fs"));
        o.now = Some(Stamp { secs });
        o.gzip = gzip;
        backup(&o, &hooks(flag)).map(|_| ())
    }
}

#[test]
fn an_interrupted_full_backup_leaves_nothing() {
    let data = datafs(400);
    assert!(data.len() > 4 << 20, "several chunks of work");
    for gzip in [false, true] {
        let s = Setup::new();
        let e = s
            .backup(&data, 1_700_000_000, gzip, &AtomicBool::new(true))
            .expect_err("interrupted");
        assert!(matches!(e, Error::Interrupted), "gzip {gzip}: {e}");
        assert_eq!(
            listing(Path::new(&s.repo())),
            BTreeMap::new(),
            "gzip {gzip}"
        );
        // The next run does the backup.
        s.backup(&data, 1_700_000_010, gzip, &AtomicBool::new(false))
            .expect("backup");
        assert_eq!(listing(Path::new(&s.repo())).len(), 3, "gzip {gzip}");
    }
}

#[test]
fn an_interrupted_incremental_leaves_the_repository_as_it_was() {
    let small = datafs(100);
    let big = datafs(400);
    for gzip in [false, true] {
        let s = Setup::new();
        s.backup(&small, 1_700_000_000, gzip, &AtomicBool::new(false))
            .expect("full backup");
        let before = listing(Path::new(&s.repo()));
        let e = s
            .backup(&big, 1_700_000_010, gzip, &AtomicBool::new(true))
            .expect_err("interrupted");
        assert!(matches!(e, Error::Interrupted), "gzip {gzip}: {e}");
        assert_eq!(listing(Path::new(&s.repo())), before, "gzip {gzip}");
    }
}

#[test]
fn an_interrupted_restore_keeps_the_old_output_and_no_part_file() {
    let s = Setup::new();
    let v1 = datafs(150);
    let v2 = datafs(400);
    let go = AtomicBool::new(false);
    s.backup(&v1, 1_700_000_000, false, &go).expect("full");
    s.backup(&v2, 1_700_000_010, false, &go)
        .expect("incremental");
    let out = s.path("restored.fs");
    for with_verify in [false, true] {
        std::fs::write(&out, b"the old file").expect("write");
        let o = RestoreOptions {
            repository: s.repo(),
            output: Some(out.clone().into()),
            with_verify,
            now: Some(Stamp {
                secs: 1_800_000_000,
            }),
            ..Default::default()
        };
        let e = restore(&o, &hooks(&AtomicBool::new(true)), &mut std::io::sink())
            .expect_err("interrupted");
        assert!(matches!(e, Error::Interrupted), "-w {with_verify}: {e}");
        assert_eq!(std::fs::read(&out).expect("read"), b"the old file");
        let mut names: Vec<String> = std::fs::read_dir(s.dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
            .collect();
        names.sort();
        assert_eq!(
            names,
            // The restore holds the target's ZODB lock file while it works.
            ["Data.fs", "repo", "restored.fs", "restored.fs.lock"],
            "-w {with_verify}"
        );
        // Not interrupted: the restore completes.
        restore(&o, &hooks(&go), &mut std::io::sink()).expect("restore");
        assert_eq!(std::fs::read(&out).expect("read"), v2);
        std::fs::remove_file(format!("{out}.index")).ok();
    }
}

#[test]
fn an_interrupted_verify_says_so() {
    let s = Setup::new();
    s.backup(&datafs(400), 1_700_000_000, false, &AtomicBool::new(false))
        .expect("full");
    let o = VerifyOptions {
        repository: s.repo(),
        quick: false,
        now: Some(Stamp {
            secs: 1_800_000_000,
        }),
        ..Default::default()
    };
    let e = verify(&o, &hooks(&AtomicBool::new(true))).expect_err("interrupted");
    assert!(matches!(e, Error::Interrupted), "{e}");
    verify(&o, &hooks(&AtomicBool::new(false))).expect("verify");
}
