//! Hot backups: a writer keeps appending transactions to the source (in pieces, so the file
//! often ends in a torn transaction) while backups run. Every backup must hold exactly the
//! complete transactions found when it started: a prefix of the final file that ends on a
//! transaction boundary, with the `.dat` line's MD5 and the `.index` position to match; the
//! chain restores to that prefix.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

mod common;
use common::transactions;
use zfs_repozo::backup::{backup, Action, BackupOptions};
use zfs_repozo::restore::{restore, RestoreOptions};
use zfs_repozo::{Hooks, Stamp};

#[test]
fn backups_of_a_growing_file_hold_the_transactions_complete_at_their_start() {
    let (all, ends) = transactions(400);
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).expect("mkdir");
    let repo = repo.to_str().expect("utf8").to_string();
    let src = dir.path().join("Data.fs");
    let first = usize::try_from(ends[20]).expect("small");
    std::fs::write(&src, &all[..first]).expect("write");
    let writing = AtomicBool::new(true);
    let mut seen = Vec::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&src)
                .expect("open for append");
            // Pieces of 7 KB: most moments end inside a transaction.
            for piece in all[first..].chunks(7 * 1024) {
                f.write_all(piece).expect("append");
                std::thread::sleep(std::time::Duration::from_micros(300));
            }
            writing.store(false, Ordering::SeqCst);
        });
        let mut secs = 1_700_000_000;
        loop {
            // One more backup after the writer is done: the whole file.
            let last_round = !writing.load(Ordering::SeqCst);
            secs += 1;
            let mut o = BackupOptions::new(repo.clone(), src.to_str().expect("utf8"));
            o.now = Some(Stamp { secs });
            o.quick = secs % 3 == 0;
            o.gzip = secs % 4 == 0;
            let r = backup(&o, &Hooks::silent()).expect("backup");
            if r.action == Action::NothingToDo {
                if last_round {
                    break;
                }
                continue;
            }
            let line = r.dat_line.expect("a .dat line");
            assert!(
                ends.contains(&line.end),
                "backup ends at {} inside a transaction",
                line.end
            );
            let range = &all[line.start as usize..line.end as usize];
            assert_eq!(line.md5, zfs_repozo::md5::md5_hex(range));
            let index =
                std::fs::read(format!("{repo}/{}.index", Stamp { secs }.format())).expect("index");
            let (pos, _) = zfs_format::index_file::load_index(&index).expect("load");
            assert_eq!(pos, line.end);
            let mut out = Vec::new();
            let ro = RestoreOptions {
                repository: repo.clone(),
                now: Some(Stamp { secs }),
                with_verify: true,
                ..Default::default()
            };
            restore(&ro, &Hooks::silent(), &mut out).expect("restore");
            assert_eq!(out, &all[..line.end as usize]);
            seen.push(line.end);
            if last_round {
                break;
            }
        }
    });
    assert!(seen.len() >= 3, "{seen:?}");
    assert_eq!(*seen.last().expect("one"), *ends.last().expect("one"));
}
