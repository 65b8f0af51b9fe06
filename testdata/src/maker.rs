//! Synthetic Data.fs files for tests that need a valid file of a given shape and no
//! particular content: committed transactions at evenly spaced tids, each storing a few
//! records whose states the test chooses.

use zfs_format::writer::FileBuilder;
use zfs_format::{Oid, Status, Tid};

/// The first tid of [`Maker::new`] (1970 + ~27 years; any valid tid would do).
pub const TID_BASE: u64 = 0x03e0_0000_0000_0000;

/// Writes transactions one after another: tid `base + n * step` for the `n`th, the same
/// user and description on each, every record a new revision with `prev` 0.
#[derive(Clone, Debug)]
pub struct Maker {
    file: FileBuilder,
    base: u64,
    step: u64,
    user: Vec<u8>,
    description: Vec<u8>,
    count: u64,
}

impl Default for Maker {
    fn default() -> Self {
        Self::new()
    }
}

impl Maker {
    /// An `FS30` file of no transactions; tids from [`TID_BASE`] by 100, no metadata.
    pub fn new() -> Self {
        Self::with_magic(*b"FS30")
    }

    /// The same with another magic (`FS21` for Python 2 files).
    pub fn with_magic(magic: [u8; 4]) -> Self {
        Maker {
            file: FileBuilder::new(magic),
            base: TID_BASE,
            step: 100,
            user: Vec::new(),
            description: Vec::new(),
            count: 0,
        }
    }

    /// The `n`th transaction (from 0) gets tid `base + n * step`.
    pub fn tids(mut self, base: u64, step: u64) -> Self {
        self.base = base;
        self.step = step;
        self
    }

    /// The user and description of every transaction from now on.
    pub fn meta(mut self, user: &[u8], description: &[u8]) -> Self {
        self.user = user.to_vec();
        self.description = description.to_vec();
        self
    }

    /// Appends one committed transaction holding `records` (oid, state).
    pub fn txn<S: AsRef<[u8]>>(&mut self, records: impl IntoIterator<Item = (u64, S)>) {
        let tid = Tid::from_u64(self.base + self.count * self.step);
        let mut t = self
            .file
            .txn(tid, Status::Committed, &self.user, &self.description, b"")
            .expect("metadata under 64 KiB");
        for (oid, state) in records {
            t.data(Oid::from_u64(oid), 0, state.as_ref());
        }
        self.file.push(t);
        self.count += 1;
    }

    /// Appends `n` transactions, the records of the `t`th (counting all transactions of
    /// the file from 0) given by `records(t)`.
    pub fn txns<S: AsRef<[u8]>, R: IntoIterator<Item = (u64, S)>>(
        mut self,
        n: u64,
        mut records: impl FnMut(u64) -> R,
    ) -> Self {
        for _ in 0..n {
            let t = self.count;
            self.txn(records(t));
        }
        self
    }

    /// Transactions written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The file's length so far (where the next transaction starts).
    pub fn pos(&self) -> u64 {
        self.file.pos()
    }

    /// The file so far, leaving the maker usable.
    pub fn bytes(&self) -> Vec<u8> {
        self.file.clone().into_bytes()
    }

    /// The file.
    pub fn into_bytes(self) -> Vec<u8> {
        self.file.into_bytes()
    }
}

/// A FileStorage (`FS30`) of `txns` committed transactions, each storing one object (oids
/// cycling through 0..7) whose state is `state <n>` padded with dots to at least
/// `state_len` bytes.
pub fn datafs(txns: u64, state_len: usize) -> Vec<u8> {
    Maker::new()
        .txns(txns, |t| {
            let mut state = format!("state {t}").into_bytes();
            if state.len() < state_len {
                state.resize(state_len, b'.');
            }
            [(t % 7, state)]
        })
        .into_bytes()
}

/// A FileStorage (`FS30`) for benchmarks: `txns` transactions of `per_txn` records each over
/// `oids` objects in turn, pickles of `size` bytes that refer to the next object (so scans
/// have work).
pub fn linked(txns: u64, per_txn: u64, oids: u64, size: usize) -> Vec<u8> {
    Maker::new()
        .tids(0x03f5_8e00_0000_0000, 0x1000)
        .meta(b"/ bench", b"benchmark")
        .txns(txns, |t| {
            (0..per_txn).map(move |i| {
                let oid = (t * per_txn + i) % oids;
                (oid, linked_pickle(oid, (oid + 1) % oids, size))
            })
        })
        .into_bytes()
}

/// A protocol-3 record of about `size` bytes: class `bench.Item`, a state dict with a
/// reference to `target` and padding (`_oid` is not stored: the state is the same for
/// every object).
pub fn linked_pickle(_oid: u64, target: u64, size: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(size + 64);
    p.extend_from_slice(b"\x80\x03cbench\nItem\nq\x00.");
    p.extend_from_slice(b"\x80\x03}q\x01(X\x04\x00\x00\x00nextq\x02C\x08");
    p.extend_from_slice(&target.to_be_bytes());
    p.extend_from_slice(b"h\x00\x86q\x03QX\x04\x00\x00\x00bodyq\x04B");
    let pad = size.saturating_sub(p.len() + 8);
    p.extend_from_slice(&u32::try_from(pad).expect("pad under 4 GiB").to_le_bytes());
    p.resize(p.len() + pad, b'x');
    p.extend_from_slice(b"q\x05u.");
    p
}

/// A xorshift32 stream: bytes that do not compress, the same for the same seed.
#[derive(Clone, Debug)]
pub struct Noise(u32);

impl Noise {
    /// The stream of `seed` (not 0).
    pub fn new(seed: u32) -> Self {
        Noise(seed)
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                let x = &mut self.0;
                *x ^= *x << 13;
                *x ^= *x >> 17;
                *x ^= *x << 5;
                *x as u8
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_reads_back_whole() {
        let bytes = datafs(50, 100);
        let fs = zfs_format::FileStorage::from_data(bytes, "t.fs".into()).expect("magic");
        let end = fs.end().expect("walk");
        assert_eq!(end.transactions, 50);
        assert_eq!(end.pos, fs.len());
    }

    #[test]
    fn tids_metadata_and_records_are_as_asked() {
        let m = Maker::new()
            .tids(0x03f0_0000_0000_0000, 0x1000)
            .meta(b"u", b"d")
            .txns(3, |t| [(t, vec![b'a'; 10]), (t + 1, vec![b'b'; 20])]);
        assert_eq!(m.count(), 3);
        assert_eq!(m.pos(), m.bytes().len() as u64);
        let fs = zfs_format::FileStorage::from_data(m.into_bytes(), "t.fs".into()).expect("magic");
        let txns: Vec<_> = fs.transactions().map(|t| t.expect("walks")).collect();
        assert_eq!(txns.len(), 3);
        assert_eq!(txns[2].header.tid, Tid::from_u64(0x03f0_0000_0000_2000));
        assert_eq!((txns[0].user, txns[0].description), (&b"u"[..], &b"d"[..]));
        let recs: Vec<_> = txns[1].records().map(|r| r.expect("record")).collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].oid, Oid::from_u64(2));
        assert_eq!(recs[1].data(), Some(&[b'b'; 20][..]));
    }

    #[test]
    fn noise_is_reproducible_and_not_constant() {
        let a = Noise::new(7).bytes(1000);
        assert_eq!(a, Noise::new(7).bytes(1000));
        assert_ne!(a, Noise::new(8).bytes(1000));
        assert!(a.iter().any(|&b| b != a[0]));
    }
}
