//! A minimal command line over the library, for tests and benchmarks without the CLI:
//! `zpack FILE TID_HEX [--no-gc] [--blobs DIR] [--no-keep-old] [--allow-dangling] [--dry-run]`,
//! or `zpack FILE --prepare`.
//! With `ZPACK_MEMORY` set, prints the resident and peak memory (Linux `/proc`) at the
//! start of each phase and at the end; with `ZPACK_TIMINGS`, the time of each phase.

use std::path::PathBuf;

/// When the pack started.
static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Reports memory (and the time since the start) at phase starts.
struct Memory;

fn status_line(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l[key.len()..].trim().to_string())
        .unwrap_or_default()
}

impl Memory {
    fn print(what: &str) {
        eprintln!(
            "{:>8.3}s {what:32} rss {:>12}  peak {:>12}",
            START
                .get_or_init(std::time::Instant::now)
                .elapsed()
                .as_secs_f64(),
            status_line("VmRSS:"),
            status_line("VmHWM:")
        );
    }
}

impl zfs_format::Progress for Memory {
    fn start(&self, phase: &str, _total: u64) {
        Self::print(phase);
    }
    fn advance(&self, _n: u64) {}
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.get(1).map(String::as_str) == Some("--prepare") {
        let file = &args[0];
        match zfs_pack::prepare(file.as_ref(), &zfs_format::NoProgress) {
            Ok(p) => println!(
                "prepared {} objects, {} left to the pack, {} bytes",
                p.objects, p.left_to_the_pack, p.bytes
            ),
            Err(e) => {
                println!("error: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let (Some(file), Some(tid)) = (args.first(), args.get(1)) else {
        eprintln!("usage: zpack FILE TID_HEX [--no-gc] [--blobs DIR] [--no-keep-old] [--allow-dangling] [--dry-run]");
        std::process::exit(2);
    };
    let Some(stop) = zfs_format::Tid::from_hex(tid) else {
        eprintln!("bad tid {tid}");
        std::process::exit(2);
    };
    let mut o = zfs_pack::PackOptions::new(stop);
    let mut i = 2;
    while i < args.len() {
        match args[i].as_str() {
            "--no-gc" => o.gc = false,
            "--no-keep-old" => o.keep_old = false,
            "--allow-dangling" => o.allow_dangling = true,
            "--dry-run" => o.dry_run = true,
            "--blobs" => {
                i += 1;
                o.blob_dir = args.get(i).map(PathBuf::from);
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
        i += 1;
    }
    let memory = std::env::var_os("ZPACK_MEMORY").is_some();
    let progress: &dyn zfs_format::Progress = if memory {
        &Memory
    } else {
        &zfs_format::NoProgress
    };
    START.get_or_init(std::time::Instant::now);
    let result = zfs_pack::pack(file.as_ref(), &o, progress);
    if memory {
        Memory::print("end");
    }
    match result {
        Ok(r) => {
            println!(
                "{:?} {} -> {} kept={} extra={} saved_references={:?}",
                r.outcome,
                r.size_before,
                r.size_after,
                r.objects_kept,
                r.extra_kept,
                r.saved_references
            );
            if std::env::var_os("ZPACK_TIMINGS").is_some() {
                eprintln!("{:?}", r.timings);
            }
        }
        Err(e) => {
            println!("error: {e}");
            std::process::exit(1);
        }
    }
}
