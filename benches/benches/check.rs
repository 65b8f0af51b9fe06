//! Throughput of `check` (full and quick) and `refs` on a synthetic file built with the
//! record writer.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use zfs_check::check::{check, Options};
use zfs_format::{scan, FileStorage, NoProgress};
use zfs_testdata::linked;

fn bench(c: &mut Criterion) {
    // 20,000 transactions of 10 records of ~300 bytes over 50,000 objects: about 70 MB.
    let bytes = linked(20_000, 10, 50_000, 300);
    let fs = FileStorage::from_data(bytes.as_slice(), "synthetic.fs".into()).expect("valid file");
    let index = scan::build_index(&fs, &NoProgress).expect("clean").index;
    let mut g = c.benchmark_group("check");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.sample_size(10);
    g.bench_function("check (full)", |b| {
        b.iter(|| {
            check(
                &bytes,
                &Options {
                    quick: false,
                    index: None,
                },
                &NoProgress,
            )
        })
    });
    g.bench_function("check (quick)", |b| {
        b.iter(|| {
            check(
                &bytes,
                &Options {
                    quick: true,
                    index: None,
                },
                &NoProgress,
            )
        })
    });
    g.bench_function("refs", |b| {
        b.iter(|| zfs_check::refs::dangling_refs(&fs, &index, &NoProgress))
    });
    g.bench_function("stats", |b| {
        b.iter(|| zfs_check::stats::stats(&fs, &index, &NoProgress).expect("clean"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
