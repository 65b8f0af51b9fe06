//! Scanning and indexing throughput on a synthetic file built with the record writer.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use zfs_format::{index_file, scan, FileStorage, NoProgress};
use zfs_testdata::linked;

fn bench(c: &mut Criterion) {
    // 20,000 transactions of 10 records of ~300 bytes over 50,000 objects: about 70 MB.
    let bytes = linked(20_000, 10, 50_000, 300);
    let fs = FileStorage::from_data(bytes.as_slice(), "synthetic.fs".into()).expect("valid file");
    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.sample_size(10);
    g.bench_function("end (header walk)", |b| b.iter(|| fs.end().expect("clean")));
    g.bench_function("records (sequential walk)", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for t in fs.transactions() {
                for r in t.expect("clean").records() {
                    n += r.expect("clean").pos;
                }
            }
            n
        })
    });
    g.bench_function("build_index (parallel)", |b| {
        b.iter(|| scan::build_index(&fs, &NoProgress).expect("clean"))
    });
    let s = scan::build_index(&fs, &NoProgress).expect("clean");
    g.bench_function("index_bytes", |b| {
        b.iter(|| index_file::index_bytes(&s.index, s.end.pos))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
