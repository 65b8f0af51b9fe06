//! Walking the committed transactions in file order, in batches bounded in bytes, for jobs
//! that read the whole file on all cores (`refs`, `stats`, `oids`).
//!
//! A batch is handed out once its headers are checked; its records are then the caller's
//! to read in parallel. Memory stays bounded however large the file: the kernel is asked to
//! read [`AHEAD`] bytes past the walk in the background (so the disk works while the cores
//! parse), and the pages of a batch leave the process, and the page cache if the walk
//! brought them in, once the next batch is asked for ([`zfs_files::Stream`]).

use std::ops::Deref;

use crate::error::{Error, Result};
use crate::storage::{End, FileStorage, Transactions};
use crate::txn::Transaction;

/// Bytes of transactions per batch (a batch may be larger by one transaction).
pub const BATCH_BYTES: u64 = 16 << 20;
/// Bytes the kernel is asked to read ahead of the walk.
pub const AHEAD: u64 = 64 << 20;

/// The forward walk in batches.
pub struct Batches<'a, T: Deref<Target = [u8]>> {
    fs: &'a FileStorage<T>,
    walk: Transactions<'a>,
    max_bytes: u64,
    /// Reads ahead of the walk and drops what it brought in behind it.
    stream: zfs_files::Stream,
    /// A header error met while filling the last batch, returned on the next call.
    error: Option<Error>,
    done: bool,
}

impl<'a, T: Deref<Target = [u8]>> Batches<'a, T> {
    /// Walks from the first transaction.
    pub fn new(fs: &'a FileStorage<T>) -> Self {
        Self::starting_at(fs, crate::storage::FIRST_TXN)
    }

    /// Walks from `pos`, a transaction boundary.
    pub fn starting_at(fs: &'a FileStorage<T>, pos: u64) -> Self {
        Batches {
            fs,
            walk: fs.transactions_from(pos),
            max_bytes: BATCH_BYTES,
            stream: fs.stream(pos),
            error: None,
            done: false,
        }
    }

    /// The same walk with batches of at most `bytes` (at least one transaction each).
    pub fn with_batch_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes.max(1);
        self
    }

    /// Fills `out` with the next batch; `Ok(false)` once the walk is over. A damaged header
    /// ends the walk with its error, after the transactions before it were handed out.
    pub fn next_batch(&mut self, out: &mut Vec<Transaction<'a>>) -> Result<bool> {
        out.clear();
        let start = self.walk.pos();
        self.stream.advance(self.fs.bytes(), start);
        if let Some(e) = self.error.take() {
            self.done = true;
            self.stream.finish(self.fs.bytes());
            return Err(e);
        }
        if self.done {
            self.stream.finish(self.fs.bytes());
            return Ok(false);
        }
        let mut bytes = 0;
        while bytes < self.max_bytes {
            match self.walk.next() {
                Some(Ok(t)) => {
                    bytes += t.tlen() + 8;
                    out.push(t);
                }
                Some(Err(e)) => {
                    self.error = Some(e);
                    break;
                }
                None => {
                    self.done = true;
                    break;
                }
            }
        }
        if out.is_empty() {
            self.stream.finish(self.fs.bytes());
            if let Some(e) = self.error.take() {
                self.done = true;
                return Err(e);
            }
            return Ok(false);
        }
        Ok(true)
    }

    /// The position after the last transaction handed out (after the walk: where it
    /// stopped).
    pub fn pos(&self) -> u64 {
        self.walk.pos()
    }

    /// Where the committed data ends and why the walk stopped (once it is over).
    pub fn finish(&self) -> End {
        self.walk.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::FileBuilder;
    use crate::{Oid, Status, Tid};

    fn file(n: u64) -> Vec<u8> {
        let mut f = FileBuilder::new(*b"FS30");
        for i in 0..n {
            let mut t = f
                .txn(Tid::from_u64(1000 + i), Status::Committed, b"", b"", b"")
                .expect("short");
            t.data(Oid::from_u64(i), 0, &[b'x'; 100]);
            f.push(t);
        }
        f.into_bytes()
    }

    #[test]
    fn batches_cover_every_transaction_once_in_order() {
        let v = file(50);
        let fs = FileStorage::from_data(v.as_slice(), "t.fs".into()).expect("FS30");
        let mut b = Batches::new(&fs).with_batch_bytes(1000);
        let mut batch = Vec::new();
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        while b.next_batch(&mut batch).expect("sound") {
            sizes.push(batch.len());
            seen.extend(batch.iter().map(|t| t.tid().as_u64()));
        }
        assert_eq!(seen, (1000..1050).collect::<Vec<_>>());
        assert!(
            sizes.len() > 5 && sizes.iter().all(|&n| n <= 6),
            "{sizes:?}"
        );
        assert_eq!(b.finish().pos, v.len() as u64);
        assert!(!b.next_batch(&mut batch).expect("over"));
    }

    #[test]
    fn damage_comes_after_the_transactions_before_it() {
        let mut v = file(10);
        let len = v.len();
        // Break the redundant length of the last transaction.
        v[len - 1] ^= 1;
        let fs = FileStorage::from_data(v.as_slice(), "t.fs".into()).expect("FS30");
        let mut b = Batches::new(&fs);
        let mut batch = Vec::new();
        assert!(b.next_batch(&mut batch).expect("the sound ones"));
        assert_eq!(batch.len(), 9);
        assert!(b.next_batch(&mut batch).is_err());
        assert!(!b.next_batch(&mut batch).expect("over"));
    }
}
