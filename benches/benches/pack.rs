//! Criterion benchmark of `zfs_pack::pack` with GC on a copy of the ZODB-made experiment
//! database, GC on and off (set ZFS_PACK_BENCH_FILE and ZFS_PACK_BENCH_TID to bench a
//! large file instead).

use criterion::{criterion_group, criterion_main, Criterion};
use zfs_format::{NoProgress, Tid};

fn bench(c: &mut Criterion) {
    let src = std::env::var("ZFS_PACK_BENCH_FILE").unwrap_or_else(|_| {
        zfs_testdata::fixture("pack/experiment.fs")
            .display()
            .to_string()
    });
    let tid =
        std::env::var("ZFS_PACK_BENCH_TID").unwrap_or_else(|_| "03f58e00b7777778".to_string());
    let stop = Tid::from_hex(&tid).expect("ZFS_PACK_BENCH_TID: 16 hex digits");
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("Data.fs");
    let mut g = c.benchmark_group("pack");
    g.sample_size(10);
    g.bench_function("gc", |b| {
        b.iter(|| {
            std::fs::copy(&src, &f).expect("copy");
            let _ = std::fs::remove_file(dir.path().join("Data.fs.old"));
            zfs_pack::pack(&f, &zfs_pack::PackOptions::new(stop), &NoProgress).expect("pack")
        })
    });
    g.bench_function("nogc", |b| {
        b.iter(|| {
            std::fs::copy(&src, &f).expect("copy");
            let _ = std::fs::remove_file(dir.path().join("Data.fs.old"));
            let mut o = zfs_pack::PackOptions::new(stop);
            o.gc = false;
            zfs_pack::pack(&f, &o, &NoProgress).expect("pack")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
