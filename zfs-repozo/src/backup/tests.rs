//! Tests of backups: every decision path, and what other tools read of the result.

use super::*;
use crate::restore::{restore, RestoreOptions};
use crate::verify::{verify, VerifyOptions};
use zfs_format::writer::FileBuilder;
use zfs_format::{Oid, Status, Tid};

fn file(txns: u64) -> Vec<u8> {
    let mut f = FileBuilder::new(*b"FS30");
    for t in 0..txns {
        let mut b = f
            .txn(
                Tid::from_u64(0x03e0_0000_0000_0000 + t * 100),
                Status::Committed,
                b"",
                b"",
                b"",
            )
            .expect("short strings");
        for i in 0..3 {
            b.data(
                Oid::from_u64((t + i) % 10),
                0,
                format!("state {t} {i}").as_bytes(),
            );
        }
        f.push(b);
    }
    f.into_bytes()
}

struct Run {
    dir: tempfile::TempDir,
}

impl Run {
    fn new() -> Run {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("repo")).expect("mkdir");
        Run { dir }
    }
    fn repo(&self) -> String {
        self.dir
            .path()
            .join("repo")
            .to_str()
            .expect("utf8")
            .to_string()
    }
    fn backup(&self, data: &[u8], secs: i64, verbose: bool, quick: bool) -> BackupReport {
        let src = self.dir.path().join("Data.fs");
        std::fs::write(&src, data).expect("write");
        let mut o = BackupOptions::new(self.repo(), src.to_str().expect("utf8"));
        o.now = Some(Stamp { secs });
        o.quick = quick;
        let logged = std::cell::RefCell::new(Vec::new());
        let log = |m: &str| logged.borrow_mut().push(m.to_string());
        let hooks = Hooks {
            log: &log,
            notice: &|_| {},
            progress: &zfs_format::NoProgress,
            verbose,
        };
        backup(&o, &hooks).expect("backup")
    }
    fn listing(&self) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(self.repo())
            .expect("ls")
            .map(|e| {
                let e = e.expect("entry");
                (
                    e.file_name().into_string().expect("utf8"),
                    std::fs::read(e.path()).expect("read"),
                )
            })
            .collect();
        v.sort();
        v
    }
}

/// Transaction start positions of a file made by `file`.
fn txn_starts(data: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut pos = 4;
    while let Some(h) = zfs_format::txn::RawTxnHeader::decode(data, pos) {
        v.push(usize::try_from(pos).expect("small"));
        pos = h.next_pos().expect("small");
    }
    v
}

#[test]
fn data_after_damage_in_the_middle_is_reported_not_dropped_silently() {
    let clean = file(6);
    let starts = txn_starts(&clean);
    // The fourth transaction marked as still being committed: FileStorage reads up to it.
    let mut damaged = clean.clone();
    damaged[starts[3] + 16] = b'c';
    let r = Run::new().backup(&damaged, 1_700_000_000, false, false);
    assert_eq!(
        r.left_out,
        Some(LeftOut {
            at: starts[3] as u64,
            next_transaction: starts[4] as u64,
            bytes: (damaged.len() - starts[3]) as u64,
        })
    );
    assert_eq!(r.dat_line.expect("a full backup").end, starts[3] as u64);
    // A torn last transaction is an unfinished commit, not damage.
    let torn = &clean[..clean.len() - 5];
    let r = Run::new().backup(torn, 1_700_000_000, false, false);
    assert_eq!(r.left_out, None);
    assert_eq!(r.dat_line.expect("a full backup").end, starts[5] as u64);
}

#[test]
fn every_decision_path_makes_the_same_repository() {
    let full = file(30);
    let grown = file(40);
    let mut torn = grown.clone();
    torn.extend_from_slice(&[7; 12]);
    let mut packed = file(5);
    packed.extend_from_slice(&[1; 3]);
    let mut changed = grown.clone();
    changed[100] ^= 1;
    let steps: &[(&[u8], Action)] = &[
        (&full, Action::Full),
        (&full, Action::NothingToDo),
        (&grown, Action::Incremental),
        (&torn, Action::Incremental),
        (&changed, Action::Full),
        (&packed, Action::Full),
    ];
    let mut repos = Vec::new();
    for (verbose, quick) in [(false, false), (true, false), (false, true)] {
        let r = Run::new();
        for (i, (data, want)) in steps.iter().enumerate() {
            let got = r.backup(data, 1_700_000_000 + 10 * i as i64, verbose, quick);
            // Quick mode only looks at the last .dat line's range: the changed byte
            // at offset 100 goes unnoticed, as in Python.
            let want = if quick && i == 4 {
                &Action::NothingToDo
            } else {
                want
            };
            assert_eq!(
                &got.action, want,
                "step {i}, verbose {verbose}, quick {quick}"
            );
        }
        repos.push(r.listing());
        // The last state restores to the committed bytes of the last source.
        let mut out = Vec::new();
        let o = RestoreOptions {
            repository: r.repo(),
            now: Some(Stamp {
                secs: 1_800_000_000,
            }),
            ..Default::default()
        };
        restore(&o, &Hooks::silent(), &mut out).expect("restore");
        assert_eq!(out, &packed[..packed.len() - 3]);
        let o = VerifyOptions {
            repository: r.repo(),
            quick: false,
            now: Some(Stamp {
                secs: 1_800_000_000,
            }),
            ..Default::default()
        };
        assert_eq!(verify(&o, &Hooks::silent()).expect("verify").len(), 1);
    }
    // The .dat paths hold each run's own repository, so compare the rest.
    let strip = |l: &Vec<(String, Vec<u8>)>| -> Vec<(String, usize)> {
        l.iter().map(|(n, b)| (n.clone(), b.len())).collect()
    };
    assert_eq!(strip(&repos[0]), strip(&repos[1]));
    assert_eq!(strip(&repos[2]).len(), strip(&repos[0]).len() - 3);
    for ((n0, b0), (_, b1)) in repos[0].iter().zip(&repos[1]) {
        if !n0.ends_with(".dat") {
            assert_eq!(b0, b1, "{n0}");
        }
    }
}

#[test]
fn incremental_bytes_and_dat_line() {
    let r = Run::new();
    let v1 = file(10);
    let v2 = file(12);
    r.backup(&v1, 1_700_000_000, false, false);
    let rep = r.backup(&v2, 1_700_000_001, false, false);
    let line = rep.dat_line.expect("a line");
    assert_eq!((line.start, line.end), (v1.len() as u64, v2.len() as u64));
    assert_eq!(line.md5, crate::md5::md5_hex(&v2[v1.len()..]));
    let delta = std::fs::read(rep.data_file.expect("a file")).expect("read");
    assert_eq!(delta, &v2[v1.len()..]);
    // Same second again after new data: the stamp moves one second on.
    let v3 = file(13);
    let rep = r.backup(&v3, 1_700_000_001, false, false);
    assert!(rep
        .data_file
        .expect("a file")
        .ends_with("2023-11-14-22-13-22.deltafs"));
}

#[test]
fn an_existing_target_is_never_overwritten() {
    let r = Run::new();
    let now = Stamp {
        secs: 1_700_000_000,
    };
    // A file stamped now, and one an hour in the future (a clock moved back): the
    // future one is ignored, as Python ignores it, so the new name collides.
    std::fs::write(format!("{}/{}.fs", r.repo(), now.format()), b"old").expect("write");
    std::fs::write(
        format!(
            "{}/{}.deltafs",
            r.repo(),
            Stamp {
                secs: now.secs + 3600
            }
            .format()
        ),
        b"x",
    )
    .expect("write");
    let src = r.dir.path().join("Data.fs");
    std::fs::write(&src, file(3)).expect("write");
    let mut o = BackupOptions::new(r.repo(), src.to_str().expect("utf8"));
    o.now = Some(now);
    o.full = true;
    let e = backup(&o, &Hooks::silent()).expect_err("would overwrite");
    assert_eq!(
        e.to_string(),
        format!(
            "Cannot overwrite existing file: {}/{}.fs",
            r.repo(),
            now.format()
        )
    );
    assert_eq!(
        std::fs::read(format!("{}/{}.fs", r.repo(), now.format())).expect("read"),
        b"old"
    );
}

/// The `.dat` file of the repository's only chain.
fn dat_of(r: &Run) -> std::path::PathBuf {
    let name = r
        .listing()
        .into_iter()
        .map(|(n, _)| n)
        .find(|n| n.ends_with(".dat"))
        .expect("a .dat");
    Path::new(&r.repo()).join(name)
}

fn restore_now(r: &Run) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let o = RestoreOptions {
        repository: r.repo(),
        now: Some(Stamp {
            secs: 1_800_000_000,
        }),
        ..Default::default()
    };
    restore(&o, &Hooks::silent(), &mut out).map(|_| out)
}

#[test]
fn a_line_lost_by_an_interrupted_run_is_added_by_the_next_one() {
    let v1 = file(10);
    let v2 = file(14);
    let v3 = file(17);
    for (verbose, quick) in [(false, false), (true, false), (false, true)] {
        let r = Run::new();
        r.backup(&v1, 1_700_000_000, verbose, quick);
        r.backup(&v2, 1_700_000_010, verbose, quick);
        let dat = dat_of(&r);
        let whole = std::fs::read(&dat).expect("read");
        // The run that wrote the incremental stopped before its .dat line.
        let first_line = whole.iter().position(|&b| b == b'\n').expect("a line") + 1;
        std::fs::write(&dat, &whole[..first_line]).expect("write");
        // Both tools restore it meanwhile (its .index shows it continues the chain).
        assert_eq!(restore_now(&r).expect("restore"), v2);
        // Without its .index the file could be another chain's: refused.
        let index = Path::new(&r.repo()).join(format!(
            "{}.index",
            Stamp {
                secs: 1_700_000_010
            }
            .format()
        ));
        let saved = std::fs::read(&index).expect("index");
        std::fs::remove_file(&index).expect("rm");
        let e = restore_now(&r).expect_err("an unlisted file");
        assert!(
            e.to_string().contains("interrupted") && e.to_string().contains("-D "),
            "{e}"
        );
        std::fs::write(&index, saved).expect("write");
        // Same source: the line comes back, byte for byte, and nothing else is written.
        let rep = r.backup(&v2, 1_700_000_020, verbose, quick);
        assert_eq!(
            rep.action,
            Action::NothingToDo,
            "verbose {verbose} quick {quick}"
        );
        assert_eq!(std::fs::read(&dat).expect("read"), whole);
        assert_eq!(restore_now(&r).expect("restore"), v2);
        // Again, and the source grew meanwhile: the line, then an incremental after it.
        std::fs::write(&dat, &whole[..first_line]).expect("write");
        let rep = r.backup(&v3, 1_700_000_030, verbose, quick);
        assert_eq!(
            rep.action,
            Action::Incremental,
            "verbose {verbose} quick {quick}"
        );
        let line = rep.dat_line.expect("a line");
        assert_eq!((line.start, line.end), (v2.len() as u64, v3.len() as u64));
        assert_eq!(restore_now(&r).expect("restore"), v3);
    }
}

#[test]
fn a_full_backup_without_its_dat_gets_it_back() {
    // A full backup whose .dat is gone (a run of Python or of an older version killed
    // between the data file and the .dat, or a lost file): the next run writes its
    // line when its bytes are the source's, then goes on as usual.
    let v1 = file(10);
    let v2 = file(14);
    for (quick, empty) in [(false, false), (true, false), (false, true)] {
        let r = Run::new();
        r.backup(&v1, 1_700_000_000, false, quick);
        let dat = dat_of(&r);
        let whole = std::fs::read(&dat).expect("read");
        if empty {
            std::fs::write(&dat, b"").expect("truncate");
        } else {
            std::fs::remove_file(&dat).expect("rm");
        }
        assert!(restore_now(&r).is_ok(), "without -w the chain restores");
        let rep = r.backup(&v1, 1_700_000_010, false, quick);
        assert_eq!(rep.action, Action::NothingToDo, "quick {quick}");
        assert_eq!(std::fs::read(&dat).expect("read"), whole);
        std::fs::remove_file(&dat).expect("rm");
        let rep = r.backup(&v2, 1_700_000_020, false, quick);
        assert_eq!(rep.action, Action::Incremental, "quick {quick}");
        let lines = repo::read_dat(dat.to_str().expect("utf8"))
            .expect("read")
            .expect("a .dat");
        assert_eq!(lines.len(), 2, "quick {quick}");
        assert_eq!(lines[0].to_line().as_bytes(), &whole[..]);
        assert_eq!(restore_now(&r).expect("restore"), v2);
        let o = VerifyOptions {
            repository: r.repo(),
            now: Some(Stamp {
                secs: 1_800_000_000,
            }),
            ..Default::default()
        };
        assert_eq!(verify(&o, &Hooks::silent()).expect("verify").len(), 2);
    }
}

#[test]
fn a_full_backup_without_its_dat_that_is_not_the_source_is_left_alone() {
    let v1 = file(10);
    let mut other = file(14);
    other[30] ^= 1;
    let r = Run::new();
    r.backup(&v1, 1_700_000_000, false, false);
    let dat = dat_of(&r);
    std::fs::remove_file(&dat).expect("rm");
    let rep = r.backup(&other, 1_700_000_010, false, false);
    assert_eq!(rep.action, Action::Full);
    assert!(rep.reason.expect("a reason").contains("not listed"));
    assert!(!dat.exists(), "no line is made up for the old full backup");
    assert_eq!(restore_now(&r).expect("restore"), other);
}

#[test]
fn an_unlisted_file_that_does_not_match_forces_a_full_backup() {
    let v1 = file(10);
    let v2 = file(14);
    for quick in [false, true] {
        let r = Run::new();
        r.backup(&v1, 1_700_000_000, false, quick);
        let stray = Stamp {
            secs: 1_700_000_005,
        };
        std::fs::write(
            format!("{}/{}.deltafs", r.repo(), stray.format()),
            b"not the source's bytes",
        )
        .expect("write");
        let dat = dat_of(&r);
        let before = std::fs::read(&dat).expect("read");
        let rep = r.backup(&v2, 1_700_000_010, false, quick);
        assert_eq!(rep.action, Action::Full, "quick {quick}");
        assert!(rep.reason.expect("a reason").contains("not listed"));
        assert_eq!(std::fs::read(&dat).expect("read"), before);
        assert_eq!(restore_now(&r).expect("restore"), v2);
    }
}
