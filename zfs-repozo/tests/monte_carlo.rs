//! test_repozo.py's `MonteCarloTests`, in our words: a database grows one transaction at a
//! time, is sometimes packed (rewritten shorter) or left with a torn tail, and is backed up
//! after every change in a random mode (quick or not, gzip or not, sometimes `-F`/`-k`);
//! after every backup the newest state restores to the committed bytes, and at the end every
//! saved snapshot restores as of its own time. Every restore goes onto the previous one's
//! output, so it is brought up to date incrementally (or rebuilt) each time. The clock is injected, one second per step,
//! as ZODB's test makes `time.time()` increase.

use std::path::Path;

use zfs_repozo::backup::{backup, Action, BackupOptions};
use zfs_repozo::restore::{restore, Method, RestoreOptions};
use zfs_repozo::verify::{verify, VerifyOptions};
use zfs_repozo::{Hooks, Stamp};

/// A small deterministic generator (xorshift64*), so a failure can be replayed by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The database: the list of transactions (as record payloads) it holds.
struct Db {
    txns: Vec<Vec<(u64, String)>>,
    next_tid: u64,
}

impl Db {
    fn bytes(&self) -> Vec<u8> {
        let mut f = zfs_testdata::Maker::new()
            .tids(zfs_testdata::TID_BASE + self.next_tid * 1000, 1000)
            .meta(b"", b"monte carlo");
        for recs in &self.txns {
            f.txn(recs.iter().map(|(oid, state)| (*oid, state.as_bytes())));
        }
        f.into_bytes()
    }
    fn mutate(&mut self, rng: &mut Rng) {
        let n = 1 + rng.next() % 6;
        let recs = (0..n)
            .map(|_| {
                let oid = rng.next() % 40;
                let len = (rng.next() % 3000) as usize;
                let fill = char::from(b'a' + (rng.next() % 26) as u8);
                (oid, format!("{oid}:{}", fill.to_string().repeat(len)))
            })
            .collect();
        self.txns.push(recs);
    }
    /// A pack: keeps the newest state of each oid in one transaction, with a new tid base,
    /// so the file's beginning changes.
    fn pack(&mut self) {
        let mut newest = std::collections::BTreeMap::new();
        for recs in &self.txns {
            for (oid, s) in recs {
                newest.insert(*oid, s.clone());
            }
        }
        self.next_tid += self.txns.len() as u64 + 7;
        self.txns = vec![newest.into_iter().collect()];
    }
}

fn repo_str(p: &Path) -> String {
    p.to_str().expect("utf8 temp path").to_string()
}

/// Restores onto `out`, which holds the previous step's restore: brought up to date by
/// appending when it can be, rebuilt otherwise (after a pack, a new full backup, an older
/// `-D`). Returns the bytes and how it went.
fn restore_to(
    repo: &str,
    out: &Path,
    date: Option<String>,
    now: Stamp,
    quick: bool,
) -> (Vec<u8>, Method) {
    let o = RestoreOptions {
        repository: repo.to_string(),
        date,
        output: Some(out.to_path_buf()),
        with_verify: true,
        now: Some(now),
        quick,
        ..Default::default()
    };
    let r = restore(&o, &Hooks::silent(), &mut std::io::sink()).expect("restore");
    (std::fs::read(out).expect("read restored"), r.method)
}

fn run(seed: u64, steps: usize) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("backup");
    std::fs::create_dir(&repo).expect("mkdir");
    let repo = repo_str(&repo);
    let src = dir.path().join("Data.fs");
    let out = dir.path().join("Restored.fs");
    let mut db = Db {
        txns: Vec::new(),
        next_tid: 1,
    };
    let mut clock = 1_273_841_551i64; // 2010-05-14-12-52-31, test_repozo's time
    let mut snapshots: Vec<(Vec<u8>, String)> = Vec::new();
    let (mut fulls, mut incrementals) = (0, 0);
    let (mut appended, mut rebuilt) = (0, 0);
    for i in 0..steps {
        db.mutate(&mut rng);
        if rng.chance(10) {
            db.pack();
        }
        let committed = db.bytes();
        let mut on_disk = committed.clone();
        if rng.chance(15) {
            // A transaction being written: a torn tail the backup must not copy.
            on_disk.extend_from_slice(&committed[4..(4 + 40).min(committed.len())]);
        }
        std::fs::write(&src, &on_disk).expect("write source");
        clock += 1 + (rng.next() % 3) as i64;
        let mut o = BackupOptions::new(repo.clone(), repo_str(&src));
        o.now = Some(Stamp { secs: clock });
        o.quick = rng.chance(50);
        o.gzip = rng.chance(50);
        o.full = rng.chance(5);
        o.kill_old = rng.chance(10);
        let r = backup(&o, &Hooks::silent())
            .unwrap_or_else(|e| panic!("seed {seed} step {i}: backup failed: {e}"));
        match r.action {
            Action::Full => fulls += 1,
            Action::Incremental => incrementals += 1,
            Action::NothingToDo => {}
        }
        let now = Stamp { secs: clock };
        let (bytes, method) = restore_to(&repo, &out, None, now, rng.chance(50));
        assert_eq!(bytes, committed, "seed {seed} step {i}: the newest state");
        match method {
            Method::Appended { .. } => appended += 1,
            Method::UpToDate => {}
            Method::Full { .. } => rebuilt += 1,
        }
        if i % 7 == 0 {
            snapshots.push((committed, now.format()));
        }
        if o.kill_old && r.action == Action::Full {
            // Older states are gone with their files.
            snapshots.clear();
        }
    }
    assert!(
        fulls >= 1 && incrementals >= steps / 2,
        "{fulls} full, {incrementals} incremental"
    );
    // Every incremental backup is appended to the restored file; every new full backup
    // (a pack, -F) makes it rebuild.
    assert!(
        appended >= incrementals / 2 && rebuilt >= 1,
        "seed {seed}: {appended} appended, {rebuilt} rebuilt"
    );
    let end = Stamp { secs: clock + 10 };
    for (bytes, when) in &snapshots {
        assert_eq!(
            &restore_to(&repo, &out, Some(when.clone()), end, false).0,
            bytes,
            "seed {seed}: state as of {when}"
        );
    }
    let v = VerifyOptions {
        repository: repo.clone(),
        quick: false,
        now: Some(end),
        ..Default::default()
    };
    verify(&v, &Hooks::silent()).unwrap_or_else(|e| panic!("seed {seed}: verify: {e}"));
}

#[test]
fn monte_carlo_backups_restore_every_state() {
    for seed in 1..=4 {
        run(seed, 40);
    }
}
