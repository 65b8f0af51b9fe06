//! Helpers shared by the benchmarks: synthetic Data.fs files made with the record writer.

use zfs_format::writer::FileBuilder;
use zfs_format::{Oid, Status, Tid};

/// A synthetic FS30 file of `txns` transactions with `per_txn` records each over `oids`
/// objects, pickles of `size` bytes that refer to the next object (so scans have work).
pub fn synthetic_file(txns: u64, per_txn: u64, oids: u64, size: usize) -> Vec<u8> {
    let mut f = FileBuilder::new(*b"FS30");
    let mut n = 0u64;
    for t in 0..txns {
        let tid = Tid::from_u64(0x03f5_8e00_0000_0000 + t * 0x1000);
        let mut b = f
            .txn(tid, Status::Committed, b"/ bench", b"benchmark", b"")
            .expect("short strings");
        for _ in 0..per_txn {
            let oid = n % oids;
            n += 1;
            b.data(Oid::from_u64(oid), 0, &pickle(oid, (oid + 1) % oids, size));
        }
        f.push(b);
    }
    f.into_bytes()
}

/// A protocol-3 record: class `bench.Item`, a state dict with one reference and padding.
pub fn pickle(_oid: u64, target: u64, size: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(size + 64);
    p.extend_from_slice(b"\x80\x03cbench\nItem\nq\x00.");
    p.extend_from_slice(b"\x80\x03}q\x01(X\x04\x00\x00\x00nextq\x02C\x08");
    p.extend_from_slice(&target.to_be_bytes());
    p.extend_from_slice(b"h\x00\x86q\x03QX\x04\x00\x00\x00bodyq\x04B");
    let pad = size.saturating_sub(p.len() + 8);
    p.extend_from_slice(&(pad as u32).to_le_bytes());
    p.resize(p.len() + pad, b'x');
    p.extend_from_slice(b"q\x05u.");
    p
}
