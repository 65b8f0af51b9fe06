//! What the integration tests of zfs-repozo share: synthetic Data.fs files.

/// The bytes of `n` transactions (each about 20 KB, four records of some 5 KB) and the
/// offsets where they end.
pub fn transactions(n: u64) -> (Vec<u8>, Vec<u64>) {
    let mut f = zfs_testdata::Maker::new().meta(b"", b"test");
    let mut ends = Vec::new();
    for t in 0..n {
        f.txn((0..4).map(|i| {
            let state = format!("{t}/{i}:{}", "z".repeat(5000 + (t as usize * 37) % 900));
            ((t * 4 + i) % 97, state)
        }));
        ends.push(f.pos());
    }
    (f.into_bytes(), ends)
}
