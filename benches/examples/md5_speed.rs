//! MD5 speed of each implementation on the same bytes in memory, interleaved so that a change
//! of load on a shared machine hits all alike; the best of N runs each (the least disturbed).
//!
//!   cargo run --release -p zfs-benches --example md5_speed [MIB [RUNS]]   (default 32 40)
//!
//! Compares what `Md5::new` chose, our scalar and AVX-512 code, and the md-5 crate. OpenSSL
//! is not linked here: `benches/compare/md5.sh` times `openssl md5` on a file.

use std::time::{Duration, Instant};

use md5::Digest as _;
use zfs_repozo::md5::Md5;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let mib = args.next().and_then(Result::ok).unwrap_or(32);
    let runs = args.next().and_then(Result::ok).unwrap_or(40);
    let data: Vec<u8> = (0..mib << 20)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8)
        .collect();
    type Run = Box<dyn Fn(&[u8]) -> [u8; 16]>;
    let mut cases: Vec<(String, Run)> = vec![
        (
            format!("Md5::new ({})", Md5::implementation()),
            Box::new(|d| {
                let mut h = Md5::new();
                h.update(d);
                h.finish()
            }),
        ),
        (
            "scalar (zodbfs)".into(),
            Box::new(|d| {
                let mut h = Md5::portable();
                h.update(d);
                h.finish()
            }),
        ),
    ];
    if Md5::avx512().is_some() {
        cases.push((
            "AVX-512 (zodbfs)".into(),
            Box::new(|d| {
                let mut h = Md5::avx512().expect("checked above");
                h.update(d);
                h.finish()
            }),
        ));
    }
    cases.push((
        "md-5 crate".into(),
        Box::new(|d| md5::Md5::digest(d).into()),
    ));
    let mut best = vec![Duration::MAX; cases.len()];
    let mut digests = vec![[0u8; 16]; cases.len()];
    for _ in 0..runs {
        for (i, (_, run)) in cases.iter().enumerate() {
            let t = Instant::now();
            digests[i] = run(&data);
            best[i] = best[i].min(t.elapsed());
        }
    }
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "digests differ");
    println!("{mib} MiB in memory, best of {runs} interleaved runs");
    for ((name, _), t) in cases.iter().zip(&best) {
        println!(
            "{name:<28} {:7.0} MB/s",
            data.len() as f64 / 1e6 / t.as_secs_f64()
        );
    }
}
