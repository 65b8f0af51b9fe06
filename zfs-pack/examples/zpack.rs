//! A minimal command line over the library, for tests and benchmarks without the CLI:
//! `zpack FILE TID_HEX [--no-gc] [--blobs DIR] [--no-keep-old] [--allow-dangling] [--dry-run]`.

use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
    match zfs_pack::pack(file.as_ref(), &o, &zfs_format::NoProgress) {
        Ok(r) => {
            println!(
                "{:?} {} -> {} kept={} extra={}",
                r.outcome, r.size_before, r.size_after, r.objects_kept, r.extra_kept
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
