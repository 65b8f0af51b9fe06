//! `zfs-gen`: writes a large, realistic Data.fs (and its blob files), deterministically.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use clap::Parser;
use zfs_testdata::gen::{output::write_files_from, Config};

/// Write a realistic ZODB FileStorage (Data.fs) of a given size; the same arguments give
/// the same bytes.
#[derive(Parser, Debug)]
#[command(name = "zfs-gen", version)]
struct Args {
    /// The Data.fs to create (must not exist).
    out: PathBuf,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop once the file is at least this long: bytes, or with a suffix K, M, G (powers
    /// of 1000).
    #[arg(long, value_parser = parse_size)]
    size: Option<u64>,
    /// Stop after this many transactions.
    #[arg(long)]
    txns: Option<u64>,
    /// Also write the blob files, into this new directory (bushy layout).
    #[arg(long)]
    blobs: Option<PathBuf>,
    /// Largest blob file, in bytes.
    #[arg(long, default_value_t = 20_000)]
    blob_bytes: u64,
    /// Most objects changed by an ordinary transaction.
    #[arg(long, default_value_t = 12)]
    max_ops: u64,
    /// Undo the last transaction about once per N transactions (creations and double
    /// changes are undone half as often).
    #[arg(long, default_value_t = 20)]
    undo_every: u64,
    /// Size in kB of the large records written once per 300 to 700 transactions (0: none).
    #[arg(long, default_value_t = 300)]
    large_kb: u64,
    /// At the end, delete this many objects that are still referenced (dangling
    /// references, as `fsrefs` reports them).
    #[arg(long, default_value_t = 0)]
    dangling: u64,
    /// Write only the bytes from this position on: the continuation of the file the same
    /// arguments with a smaller --size make (append it to that file to let it grow).
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    from_byte: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1_000),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1_000_000),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1_000_000_000),
        _ => (s, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("not a size: {s:?}"))
}

/// Prints a line to stderr every tenth of the target, when stderr is a terminal.
struct Tenths {
    total: AtomicU64,
    done: AtomicU64,
    shown: AtomicU64,
}

impl zfs_format::Progress for Tenths {
    fn start(&self, _phase: &str, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }
    fn advance(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        let total = self.total.load(Ordering::Relaxed);
        if total == 0 {
            return;
        }
        let tenth = (done * 10 / total).min(10);
        if tenth > self.shown.load(Ordering::Relaxed) {
            self.shown.store(tenth, Ordering::Relaxed);
            eprintln!("zfs-gen: {}%", tenth * 10);
        }
    }
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    if a.size.is_none() && a.txns.is_none() {
        anyhow::bail!("give --size or --txns");
    }
    let config = Config {
        seed: a.seed,
        size: a.size,
        transactions: a.txns,
        max_ops: a.max_ops,
        undo_every: a.undo_every,
        large_kb: a.large_kb,
        blob_bytes: a.blob_bytes,
        blob_files: a.blobs.is_some(),
        dangling: a.dangling,
    };
    let progress = Tenths {
        total: AtomicU64::new(0),
        done: AtomicU64::new(0),
        shown: AtomicU64::new(if std::io::stderr().is_terminal() {
            0
        } else {
            10
        }),
    };
    let t0 = std::time::Instant::now();
    let s = write_files_from(&config, &a.out, a.blobs.as_deref(), a.from_byte, &progress)
        .with_context(|| format!("writing '{}'", a.out.display()))?;
    let secs = t0.elapsed().as_secs_f64();
    let written = s.bytes.saturating_sub(a.from_byte);
    if a.json {
        let v = serde_json::json!({
            "file": a.out.display().to_string(),
            "bytes": s.bytes,
            "written": written,
            "transactions": s.transactions,
            "records": s.records,
            "backpointers": s.backpointers,
            "deletions": s.deletions,
            "objects": s.objects,
            "blob_records": s.blob_records,
            "blob_bytes": s.blob_bytes,
            "last_tid": s.last_tid.to_string(),
            "seconds": secs,
        });
        println!("{v}");
    } else {
        println!(
            "{}: {} bytes written of a file of {} bytes, {} transactions, {} records ({} backpointers, {} deletions), {} objects, {} blob records ({} bytes of blob files), last tid {}; {:.1} s ({:.0} MB/s)",
            a.out.display(),
            written,
            s.bytes,
            s.transactions,
            s.records,
            s.backpointers,
            s.deletions,
            s.objects,
            s.blob_records,
            s.blob_bytes,
            s.last_tid,
            secs,
            written as f64 / 1e6 / secs.max(1e-9)
        );
    }
    Ok(())
}
