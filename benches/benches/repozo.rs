//! repozo throughput on a synthetic file: MD5, parallel gzip, and whole full/incremental
//! backups, restore and verify into a temporary repository.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use zfs_repozo::backup::{backup, BackupOptions};
use zfs_repozo::md5::Md5;
use zfs_repozo::restore::{restore, RestoreOptions};
use zfs_repozo::verify::{verify, VerifyOptions};
use zfs_repozo::{Hooks, Stamp};
use zfs_testdata::linked;

fn bench(c: &mut Criterion) {
    // About 35 MB of transactions.
    let bytes = linked(10_000, 10, 50_000, 300);
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("Data.fs");
    std::fs::write(&src, &bytes).expect("write source");
    let src = src.to_str().expect("utf8").to_string();
    let hooks = Hooks::silent();

    let mut g = c.benchmark_group("repozo");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.sample_size(10);
    // MD5: the code Md5::new chose, each of ours, and the md-5 crate.
    g.bench_function("md5", |b| b.iter(|| zfs_repozo::md5::md5_hex(&bytes)));
    g.bench_function("md5 scalar", |b| {
        b.iter(|| {
            let mut h = Md5::portable();
            h.update(&bytes);
            h.finish()
        })
    });
    if Md5::avx512().is_some() {
        g.bench_function("md5 avx512", |b| {
            b.iter(|| {
                let mut h = Md5::avx512().expect("checked above");
                h.update(&bytes);
                h.finish()
            })
        });
    }
    g.bench_function("md5 md-5 crate", |b| {
        b.iter(|| {
            use md5::Digest as _;
            md5::Md5::digest(&bytes)
        })
    });
    g.bench_function("gzip_parallel level 6", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(bytes.len() / 3);
            zfs_repozo::gz::gzip_parallel(&bytes, 6, &mut out, &zfs_format::NoProgress)
                .expect("gzip");
            out.len()
        })
    });
    let mut n = 0i64;
    let mut fresh_repo = || {
        n += 1;
        let repo = dir.path().join(format!("repo{n}"));
        std::fs::create_dir(&repo).expect("mkdir");
        repo.to_str().expect("utf8").to_string()
    };
    g.bench_function("full backup", |b| {
        b.iter_batched(
            &mut fresh_repo,
            |repo| {
                let mut o = BackupOptions::new(repo, src.clone());
                o.now = Some(Stamp {
                    secs: 1_700_000_000,
                });
                backup(&o, &hooks).expect("backup")
            },
            criterion::BatchSize::PerIteration,
        )
    });
    // One repository with a full backup for the restore and verify benchmarks.
    let repo = fresh_repo();
    let mut o = BackupOptions::new(repo.clone(), src.clone());
    o.now = Some(Stamp {
        secs: 1_700_000_000,
    });
    backup(&o, &hooks).expect("backup");
    g.bench_function(
        "default-mode no-op backup (hash repository and source)",
        |b| {
            b.iter(|| {
                let mut o = BackupOptions::new(repo.clone(), src.clone());
                o.now = Some(Stamp {
                    secs: 1_700_000_100,
                });
                backup(&o, &hooks).expect("backup")
            })
        },
    );
    let out = dir.path().join("restored.fs");
    g.bench_function("restore to a file", |b| {
        b.iter(|| {
            let o = RestoreOptions {
                repository: repo.clone(),
                output: Some(out.clone()),
                ..Default::default()
            };
            restore(&o, &hooks, &mut std::io::sink()).expect("restore")
        })
    });
    g.bench_function("verify", |b| {
        b.iter(|| {
            let o = VerifyOptions {
                repository: repo.clone(),
                ..Default::default()
            };
            verify(&o, &hooks).expect("verify")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
