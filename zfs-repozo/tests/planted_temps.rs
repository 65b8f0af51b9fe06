//! Files planted at the temporary names a run will use (`.NAME.tmp-PID-N`, the names
//! zfs-files picks) are never written through: symlinks are not followed, files made by
//! someone else are not reused. The counter `N` is read just before each run, and every
//! file the run creates finds planted names at the numbers it draws first.

use std::path::Path;

mod common;
use common::transactions;
use zfs_repozo::backup::{backup, BackupOptions};
use zfs_repozo::restore::{restore, RestoreOptions};
use zfs_repozo::{Hooks, Stamp};

/// The number the next temporary name of this process gets.
fn next_number() -> u64 {
    let probe = zfs_files::temp_name(std::ffi::OsStr::new("probe"));
    let s = probe.to_str().expect("utf8");
    let n: u64 = s
        .rsplit('-')
        .next()
        .expect("a number")
        .parse()
        .expect("a number");
    n + 1
}

/// Plants, for each (name, count), symlinks to `victim` (even N) and files of ours (odd N)
/// at the next `count` temporary names of that name. The names a run creates first get
/// the shorter ranges, so that each create still finds planted names when it starts.
fn plant(dir: &Path, names: &[(String, u64)], victim: &Path) -> Vec<std::path::PathBuf> {
    let first = next_number();
    let mut files = Vec::new();
    for (name, count) in names {
        for n in first..first + count {
            let p = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
            if n % 2 == 0 {
                std::os::unix::fs::symlink(victim, &p).expect("symlink");
            } else {
                std::fs::write(&p, b"planted").expect("write");
                files.push(p);
            }
        }
    }
    files
}

#[test]
fn planted_temporaries_are_passed_by() {
    let d = tempfile::tempdir().expect("tempdir");
    let repo = d.path().join("repo");
    std::fs::create_dir(&repo).expect("mkdir");
    let victim = d.path().join("victim");
    std::fs::write(&victim, b"precious").expect("write");
    let repo_s = repo.to_str().expect("utf8").to_string();
    let src = d.path().join("Data.fs");
    let (v2, ends) = transactions(60);
    let v1 = &v2[..ends[39] as usize];
    let mut planted = Vec::new();
    for (data, secs, data_ext) in [
        (v1, 1_700_000_000, ".fs"),
        (&v2[..], 1_700_000_100, ".deltafs"),
    ] {
        let s = Stamp { secs }.format();
        // The data file and its .index are created together, then the .dat.
        let names = [
            (format!("{s}{data_ext}"), 16),
            (format!("{s}.index"), 16),
            (
                format!(
                    "{}.dat",
                    Stamp {
                        secs: 1_700_000_000
                    }
                    .format()
                ),
                64,
            ),
        ];
        planted.extend(plant(&repo, &names, &victim));
        std::fs::write(&src, data).expect("write");
        let mut o = BackupOptions::new(repo_s.clone(), src.to_str().expect("utf8"));
        o.now = Some(Stamp { secs });
        backup(&o, &Hooks::silent()).expect("backup");
    }
    let out = d.path().join("out.fs");
    let names = [("out.fs".to_string(), 16), ("out.fs.index".to_string(), 64)];
    planted.extend(plant(d.path(), &names, &victim));
    let o = RestoreOptions {
        repository: repo_s,
        output: Some(out.clone()),
        now: Some(Stamp {
            secs: 1_800_000_000,
        }),
        ..Default::default()
    };
    restore(&o, &Hooks::silent(), &mut std::io::sink()).expect("restore");
    assert_eq!(std::fs::read(&out).expect("read"), v2);
    assert_eq!(
        std::fs::read(d.path().join("out.fs.index")).expect("index"),
        std::fs::read(repo.join(format!(
                "{}.index",
                Stamp {
                    secs: 1_700_000_100
                }
                .format()
            )))
        .expect("index")
    );
    assert_eq!(std::fs::read(&victim).expect("victim"), b"precious");
    for p in &planted {
        assert_eq!(
            std::fs::read(p).expect("planted"),
            b"planted",
            "{}",
            p.display()
        );
    }
    // Every create drew planted names first: the counter moved past them all.
    assert!(next_number() > 16 * 3, "the planted names were not reached");
}
