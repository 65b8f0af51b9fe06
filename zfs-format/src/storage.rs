//! The file: magic, mapping, and walking its transactions forwards and backwards.
//!
//! A live FileStorage truncates its file when a commit aborts (ZODB `FileStorage._abort`), so
//! a mapping of a file that is being written may lose its tail under us. We map read-only
//! through [`zfs_files::Map`], whose guard turns a read of a lost page into zeros and a
//! recorded shrink: callers check [`FileStorage::check_intact`] before they use or write
//! anything they read. Callers that copy a live file (repozo) read only up to the end of
//! the last complete transaction found when they started.

use std::ops::Deref;
use std::path::{Path, PathBuf};

use zfs_files::Map;

use crate::bytes::{be_u64, to_usize};
use crate::chain::{self, ChainError, ChainRules};
use crate::error::{Error, Result};
use crate::ids::Tid;
use crate::record::DataRecord;
use crate::resync::resync;
use crate::txn::{RawTxnHeader, Status, Transaction, TXN_HEADER_LEN};

/// The magic of files written by Python 3 ZODB.
pub const MAGIC_FS30: [u8; 4] = *b"FS30";
/// The magic of files written by Python 2 ZODB.
pub const MAGIC_FS21: [u8; 4] = *b"FS21";
/// Position of the first transaction.
pub const FIRST_TXN: u64 = 4;

/// Which of the two magics a file carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Magic {
    /// `FS30`: Python 3 pickles.
    Fs30,
    /// `FS21`: Python 2 pickles (strings are bytes).
    Fs21,
}

impl Magic {
    /// The four bytes.
    pub fn bytes(self) -> [u8; 4] {
        match self {
            Magic::Fs30 => MAGIC_FS30,
            Magic::Fs21 => MAGIC_FS21,
        }
    }
    /// How this file's pickles store Python 2 strings.
    pub fn string_mode(self) -> crate::pickle::StringMode {
        crate::pickle::StringMode::for_magic(&self.bytes())
    }
    /// The magic as text.
    pub fn as_str(self) -> &'static str {
        match self {
            Magic::Fs30 => "FS30",
            Magic::Fs21 => "FS21",
        }
    }
}

/// A read-only view of a FileStorage file over any bytes (an mmap, a `Vec`, a slice).
pub struct FileStorage<T = Map> {
    data: T,
    path: PathBuf,
    magic: Magic,
    /// True when `data` is a [`Map`] (guarded, its pages may be handed back).
    mapped: bool,
}

/// Instantiation.
impl FileStorage<Map> {
    /// Maps the file at `path` read-only and checks its magic. Only regular files are
    /// accepted (a FIFO or device is refused without blocking).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = zfs_files::open_input(path)?;
        Self::open_file(file, path)
    }

    /// Maps an already opened file (at `path`, for messages) and checks its magic.
    pub fn open_file(file: std::fs::File, path: &Path) -> Result<Self> {
        let map = Map::new(file, path)?;
        let mut fs = Self::from_data(map, path.to_path_buf())?;
        fs.mapped = true;
        Ok(fs)
    }

    /// The open file behind the mapping.
    pub fn file(&self) -> &std::fs::File {
        self.data.file()
    }
}

impl<T: Deref<Target = [u8]>> FileStorage<T> {
    /// Wraps bytes already in memory; `path` is only used in messages.
    ///
    /// A file of 0 bytes has no magic and is refused ([`Error::Empty`]); a file holding
    /// only the magic is an empty storage.
    pub fn from_data(data: T, path: PathBuf) -> Result<Self> {
        let magic = match data.get(..4) {
            None if data.is_empty() => return Err(Error::Empty),
            Some(m) if m == MAGIC_FS30 => Magic::Fs30,
            Some(m) if m == MAGIC_FS21 => Magic::Fs21,
            _ => {
                let n = data.len().min(4);
                return Err(Error::BadMagic {
                    found: crate::repr::escape_bytes(&data[..n]),
                });
            }
        };
        Ok(FileStorage {
            data,
            path,
            magic,
            mapped: false,
        })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }
    /// Length of the file in bytes.
    pub fn len(&self) -> u64 {
        self.data.len() as u64
    }
    /// True for a zero-length file.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// The path given at open, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The magic found.
    pub fn magic(&self) -> Magic {
        self.magic
    }

    /// Tells the kernel that the bytes in `start..end` will not be read again soon, so a
    /// mapped file's pages leave this process's resident memory (they stay in the page cache
    /// and are read back transparently if touched). Does nothing for in-memory data.
    pub fn release(&self, start: u64, end: u64) {
        if self.mapped {
            zfs_files::release_mapped(&self.data, start, end);
        }
    }

    /// A walk in file order from `from`, which reads ahead of itself and drops behind
    /// itself what it brought into memory (see [`zfs_files::Stream`]; it does nothing for
    /// in-memory data). Tell it how far the walk got with `stream.advance(fs.bytes(), pos)`.
    /// The last [`crate::walk::AHEAD`] bytes behind the walk stay cached: backpointers point
    /// mostly to recent records.
    pub fn stream(&self, from: u64) -> zfs_files::Stream {
        zfs_files::Stream::new(&self.data, from, crate::walk::AHEAD).lagging(crate::walk::AHEAD)
    }

    /// Asks the kernel to read `start..end` of a mapped file into the page cache in the
    /// background, ahead of a walk in file order. Does nothing for in-memory data.
    pub fn prefetch(&self, start: u64, end: u64) {
        if self.mapped {
            zfs_files::prefetch_mapped(&self.data, start, end);
        }
    }

    /// Fails if the mapped file shrank under a read (see the module docs): nothing read
    /// from this storage may then be used. Always `Ok` for in-memory data.
    pub fn check_intact(&self) -> Result<()> {
        if self.mapped && Map::shrunk_under(&self.data) {
            let now = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
            return Err(zfs_files::Error::Shrunk {
                path: self.path.clone(),
                len: self.len(),
                now,
            }
            .into());
        }
        Ok(())
    }

    /// Walks forward from the first transaction.
    pub fn transactions(&self) -> Transactions<'_> {
        self.transactions_from(FIRST_TXN)
    }

    /// Walks forward from `pos`, which must be a transaction boundary.
    pub fn transactions_from(&self, pos: u64) -> Transactions<'_> {
        Transactions {
            file: &self.data,
            pos,
            last_tid: Tid::default(),
            last_complete_tid: Tid::default(),
            count: 0,
            reason: EndReason::Clean,
            done: false,
        }
    }

    /// Walks backwards from the boundary `end` (use [`FileStorage::end`] for the end of the
    /// last complete transaction) to the first transaction.
    pub fn transactions_rev(&self, end: u64) -> TransactionsRev<'_> {
        TransactionsRev {
            file: &self.data,
            pos: end,
            failed: false,
        }
    }

    /// Finds the end of the last complete transaction as ZODB's `read_index` does, walking
    /// headers only (the records are not read).
    ///
    /// The walk reads one header per transaction, streaming through a mapped file (see
    /// [`FileStorage::stream`]), so a file much larger than memory can be walked.
    pub fn end(&self) -> Result<End> {
        const STRETCH: u64 = 4 << 20;
        let mut it = self.transactions();
        let mut stream = self.stream(FIRST_TXN);
        let mut told = FIRST_TXN;
        while let Some(t) = it.next() {
            t?;
            if it.pos() >= told + STRETCH {
                told = it.pos();
                stream.advance(&self.data, told);
            }
        }
        stream.finish(&self.data);
        Ok(it.finish())
    }

    /// The first position after `from` where a complete transaction with a tid later than
    /// `after` starts: its header fits, its status is committed, packed or undone (not
    /// `'c'`), its redundant length repeats its length and its strings and records fit.
    /// Bytes after a walk's end that hold such a transaction are damage in the middle of
    /// the file, not a torn or unfinished last commit.
    pub fn next_complete_txn(&self, from: u64, after: Tid) -> Option<u64> {
        // The candidates `resync` finds (plausible headers, first record included), of
        // which the first with every record sound and a finished status.
        let mut q = from.checked_add(1)?;
        loop {
            q = resync(&self.data, q, Some(after))?;
            let h = RawTxnHeader::decode(&self.data, q)?;
            let complete = h.status != Status::Checkpoint
                && Transaction::checked(&self.data, h)
                    .is_ok_and(|t| t.records().all(|r| r.is_ok()));
            if complete {
                return Some(q);
            }
            q = q.checked_add(1)?;
        }
    }

    /// Decodes the data record at `pos`.
    pub fn record_at(&self, pos: u64) -> Result<DataRecord<'_>> {
        DataRecord::decode(&self.data, pos)
    }

    /// Resolves a record's state: its own data, or the data at the end of its backpointer
    /// chain. `Ok(None)` when the object does not exist as of that record.
    ///
    /// Every link must point strictly backwards to a record of the same oid
    /// ([`ChainRules::SAME_OID`]).
    pub fn resolve<'a>(&'a self, rec: &DataRecord<'a>) -> Result<Option<DataRecord<'a>>> {
        // Most records hold their own state: no walk to set up.
        if rec.data().is_some() {
            return Ok(Some(*rec));
        }
        let bad = |offset, back, why| Error::BadBackpointer {
            offset,
            oid: rec.oid,
            back,
            why,
        };
        chain::resolve_from(&mut self.bytes(), rec.pos, *rec, ChainRules::SAME_OID).map_err(|e| {
            match e {
                ChainError::NotBackwards { at, back } => bad(at, back, "does not point backwards"),
                ChainError::OtherOid { at, back, .. } => bad(at, back, "target has another oid"),
                ChainError::Unreadable {
                    from: Some(at),
                    pos,
                    ..
                } => bad(at, pos, "target is not a readable record"),
                ChainError::Unreadable { source, .. } => source,
            }
        })
    }
}

/// Why a forward walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// The last transaction ends exactly at the end of the file.
    Clean,
    /// 1 to 22 bytes follow the last complete transaction.
    ShortHeader,
    /// A header whose transaction runs past the end of the file (a torn write).
    PastEnd,
    /// A transaction with status `'c'`: a commit in progress (or interrupted).
    Checkpoint,
    /// A header too short for its own strings, judged junk at the end of the file.
    Junk,
}

impl EndReason {
    /// Stable kebab-case name.
    pub fn code(self) -> &'static str {
        match self {
            EndReason::Clean => "clean",
            EndReason::ShortHeader => "short-header",
            EndReason::PastEnd => "torn-transaction",
            EndReason::Checkpoint => "uncommitted-transaction",
            EndReason::Junk => "junk",
        }
    }
}

/// Where the committed data of a file ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct End {
    /// Position after the last complete transaction: ZODB's `getSize()`, what repozo copies.
    pub pos: u64,
    /// The tid of the last header read, torn or not: ZODB's `lastTransaction()`.
    pub last_tid: Tid,
    /// The tid of the last complete transaction (zero for an empty file).
    pub last_complete_tid: Tid,
    /// Number of complete transactions walked.
    pub transactions: u64,
    /// Why the walk stopped.
    pub reason: EndReason,
}

impl End {
    /// True when bytes follow the last complete transaction.
    pub fn has_tail(&self, file_len: u64) -> bool {
        file_len > self.pos.max(FIRST_TXN)
    }
}

/// Forward walk over transactions with the stop rules of ZODB's `read_index`.
///
/// Yields a transaction once its header and redundant length are checked; its records are
/// checked when iterated. A damaged transaction in the middle of the file yields an error
/// and ends the walk; a torn or uncommitted tail ends it quietly (see [`EndReason`]).
pub struct Transactions<'a> {
    file: &'a [u8],
    pos: u64,
    last_tid: Tid,
    last_complete_tid: Tid,
    count: u64,
    reason: EndReason,
    done: bool,
}

impl<'a> Transactions<'a> {
    /// The position of the next transaction to read (after the walk: where it stopped).
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Summarises the walk once the iterator returned `None`.
    pub fn finish(&self) -> End {
        End {
            pos: self.pos,
            last_tid: self.last_tid,
            last_complete_tid: self.last_complete_tid,
            transactions: self.count,
            reason: self.reason,
        }
    }

    fn stop(&mut self, reason: EndReason) -> Option<Result<Transaction<'a>>> {
        self.reason = reason;
        self.done = true;
        None
    }

    fn fail(&mut self, e: Error) -> Option<Result<Transaction<'a>>> {
        self.done = true;
        Some(Err(e))
    }
}

impl<'a> Iterator for Transactions<'a> {
    type Item = Result<Transaction<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let file_len = self.file.len() as u64;
        let pos = self.pos;
        let remaining = file_len.saturating_sub(pos);
        if remaining < TXN_HEADER_LEN {
            return self.stop(if remaining == 0 {
                EndReason::Clean
            } else {
                EndReason::ShortHeader
            });
        }
        let Some(h) = RawTxnHeader::decode(self.file, pos) else {
            return self.stop(EndReason::ShortHeader);
        };
        // ZODB remembers the tid before it decides whether the transaction is complete.
        self.last_tid = h.tid;
        if h.next_pos().is_none_or(|n| n > file_len) {
            return self.stop(EndReason::PastEnd);
        }
        if h.status == Status::Checkpoint {
            return self.stop(EndReason::Checkpoint);
        }
        let hlen = h.header_len();
        if h.tlen < hlen {
            // ZODB: junk at the end of the file when the file's last 8 bytes are no sensible
            // transaction length; otherwise a damaged header in the middle.
            let rtl = be_u64(self.file, self.file.len() - 8).unwrap_or(0);
            if file_len.checked_sub(rtl).is_none_or(|x| x < pos) || rtl < TXN_HEADER_LEN {
                return self.stop(EndReason::Junk);
            }
            return self.fail(Error::InvalidTxnHeader {
                offset: pos,
                tlen: h.tlen,
                hlen,
            });
        }
        let rend = pos + h.tlen;
        let found = to_usize(rend)
            .and_then(|r| be_u64(self.file, r))
            .unwrap_or(!h.tlen);
        if found != h.tlen {
            return self.fail(Error::RedundantLength {
                txn: pos,
                offset: rend,
                expected: h.tlen,
                found,
            });
        }
        let t = match Transaction::checked(self.file, h) {
            Ok(t) => t,
            Err(e) => return self.fail(e),
        };
        self.pos = rend + 8;
        self.count += 1;
        self.last_complete_tid = h.tid;
        Some(Ok(t))
    }
}

/// Backward walk over transactions using the redundant lengths (what fstail does).
pub struct TransactionsRev<'a> {
    file: &'a [u8],
    pos: u64,
    failed: bool,
}

impl<'a> Iterator for TransactionsRev<'a> {
    type Item = Result<Transaction<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos <= FIRST_TXN {
            return None;
        }
        let end = self.pos;
        let result = (|| {
            let tlen = end
                .checked_sub(8)
                .filter(|_| end >= FIRST_TXN + 8)
                .and_then(|p| be_u64(self.file, to_usize(p).unwrap_or(usize::MAX)))
                .ok_or(Error::BackwardLength { end, tlen: 0 })?;
            let tpos = end
                .checked_sub(8)
                .and_then(|p| p.checked_sub(tlen))
                .filter(|p| *p >= FIRST_TXN)
                .ok_or(Error::BackwardLength { end, tlen })?;
            let h =
                RawTxnHeader::decode(self.file, tpos).ok_or(Error::BackwardLength { end, tlen })?;
            if h.tlen != tlen {
                return Err(Error::Corrupt {
                    offset: tpos,
                    what: format!(
                        "transaction header length {} != redundant length {tlen} at offset {}",
                        h.tlen,
                        end - 8
                    ),
                });
            }
            if h.header_len() > tlen {
                return Err(Error::InvalidTxnHeader {
                    offset: tpos,
                    tlen,
                    hlen: h.header_len(),
                });
            }
            Transaction::checked(self.file, h)
        })();
        match &result {
            Ok(t) => self.pos = t.pos(),
            Err(_) => self.failed = true,
        }
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_bytes_are_no_filestorage_but_the_magic_alone_is_an_empty_one() {
        let e = FileStorage::from_data(Vec::new(), "z.fs".into()).err();
        assert!(matches!(e, Some(Error::Empty)), "{e:?}");
        let fs = FileStorage::from_data(b"FS30".to_vec(), "m.fs".into()).expect("magic");
        assert_eq!(fs.end().expect("walk").transactions, 0);
    }

    #[test]
    fn devices_and_fifos_are_refused_at_open() {
        let e = FileStorage::open("/dev/zero").err().expect("refused");
        assert!(e.to_string().contains("character device"), "{e}");
        let d = std::env::temp_dir();
        let e = FileStorage::open(&d).err().expect("refused");
        assert!(e.to_string().contains("is a directory"), "{e}");
    }
}
