//! Small synthetic Data.fs files for tests that need a valid file of a given size and no
//! particular content.

use zfs_format::writer::FileBuilder;
use zfs_format::{Oid, Status, Tid};

/// A FileStorage (`FS30`) of `txns` committed transactions, each storing one object (oids
/// cycling through 0..7) whose state is `state <n>` padded to at least `state_len` bytes.
pub fn datafs(txns: u64, state_len: usize) -> Vec<u8> {
    let mut f = FileBuilder::new(*b"FS30");
    for t in 0..txns {
        let mut b = f
            .txn(
                Tid::from_u64(0x03e0_0000_0000_0000 + t * 100),
                Status::Committed,
                b"",
                b"",
                b"",
            )
            .expect("short strings");
        let mut state = format!("state {t}").into_bytes();
        if state.len() < state_len {
            state.resize(state_len, b'.');
        }
        b.data(Oid::from_u64(t % 7), 0, &state);
        f.push(b);
    }
    f.into_bytes()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_file_reads_back_whole() {
        let bytes = super::datafs(50, 100);
        let fs = zfs_format::FileStorage::from_data(bytes, "t.fs".into()).expect("magic");
        let end = fs.end().expect("walk");
        assert_eq!(end.transactions, 50);
        assert_eq!(end.pos, fs.len());
    }
}
