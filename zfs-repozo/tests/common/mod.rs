//! What the integration tests of zfs-repozo share: synthetic Data.fs files.

use zfs_format::writer::FileBuilder;
use zfs_format::{Oid, Status, Tid};

/// The bytes of `n` transactions (each about 20 KB, four records of some 5 KB) and the
/// offsets where they end.
pub fn transactions(n: u64) -> (Vec<u8>, Vec<u64>) {
    let mut f = FileBuilder::new(*b"FS30");
    let mut ends = Vec::new();
    for t in 0..n {
        let mut b = f
            .txn(
                Tid::from_u64(0x03e0_0000_0000_0000 + t * 100),
                Status::Committed,
                b"",
                b"test",
                b"",
            )
            .expect("short strings");
        for i in 0..4 {
            let state = format!("{t}/{i}:{}", "z".repeat(5000 + (t as usize * 37) % 900));
            b.data(Oid::from_u64((t * 4 + i) % 97), 0, state.as_bytes());
        }
        f.push(b);
        ends.push(f.pos());
    }
    (f.into_bytes(), ends)
}
