//! Phases A and B of ZODB's packer: the scan up to the pack time (`buildPackIndex`), the
//! redundant-pack rule, and reachability (from the root, and from backpointers after the
//! pack time), computed in parallel with ZODB's sequential results.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Deref;

use rayon::prelude::*;
use zfs_format::pickle::{untransform, Scanner, StringMode};
use zfs_format::{DataRecord, FileStorage, Oid, Payload, Progress, Status, Tid, Transaction};

use crate::error::{Dangling, PackError, Result};
use crate::oidmap::{Bits, OidMap, ABSENT};
use crate::reach::Reach;

/// Transactions per parallel work unit.
const CHUNK: usize = 128;
/// Most bytes of transactions walked per batch.
const BATCH_BYTES: u64 = 4 << 20;
/// Records whose references are extracted between two releases of the mapping.
const TRACE_CHUNK: usize = 4096;
/// Bytes read at once for a record during tracing (most records fit).
const READ_AHEAD: usize = 1024;

/// What the analysis decided.
#[derive(Debug)]
pub enum Analysis {
    /// The storage holds no object (ZODB returns at once and touches nothing).
    Empty,
    /// Already packed to a later time, or nothing new since the last pack (ZODB's
    /// `RedundantPackWarning`).
    Redundant,
    /// The revisions to keep.
    Work(Box<Plan>),
}

/// The outcome of phases A and B.
#[derive(Debug)]
pub struct Plan {
    /// The kept revisions.
    pub reach: Reach,
    /// Position of the first transaction after the pack time.
    pub packpos: u64,
    /// Objects kept only because of our fix of ZODB's future-backpointer quirk (decision 4).
    pub extra_kept: usize,
    /// Dangling references ignored under `allow_dangling`, and those found in revisions kept
    /// by decision 4 (ZODB keeps those revisions without looking at them).
    pub dangling_ignored: Vec<Dangling>,
    /// Number of data records before the pack time.
    pub records_before: u64,
    /// Number of transactions before the pack time.
    pub txns_before: u64,
}

/// Options of the analysis.
#[derive(Clone, Copy, Debug)]
pub struct AnalyzeOptions {
    /// The stop tid: transactions with tid <= stop are packed.
    pub stop: Tid,
    /// Garbage collection.
    pub gc: bool,
    /// Pack even if reachable objects refer to missing ones.
    pub allow_dangling: bool,
    /// Stop when set.
    pub interrupt: Option<&'static std::sync::atomic::AtomicBool>,
}

fn corrupt<T: Deref<Target = [u8]>>(fs: &FileStorage<T>, offset: u64, what: String) -> PackError {
    PackError::Corrupt {
        path: fs.path().to_path_buf(),
        offset,
        what,
    }
}

fn oid_repr(b: [u8; 8]) -> String {
    // ZODB's oid_repr: 0x + hex without leading zeros, padded to an even length.
    let v = u64::from_be_bytes(b);
    let mut s = format!("{v:x}");
    if s.len() % 2 == 1 {
        s.insert(0, '0');
    }
    format!("0x{s}")
}

/// ZODB's `checkData` for a record of the transaction at `tpos`.
fn check_data<T: Deref<Target = [u8]>>(fs: &FileStorage<T>, r: &DataRecord<'_>) -> Result<()> {
    if !r.version.is_empty() {
        return Err(corrupt(
            fs,
            r.pos,
            "non-zero version length: versions are not supported".into(),
        ));
    }
    if r.prev >= r.pos {
        return Err(corrupt(
            fs,
            r.pos,
            format!("invalid previous pointer: {}", r.prev),
        ));
    }
    if let Payload::Backpointer(back) = r.payload {
        if back >= r.pos {
            return Err(corrupt(fs, r.pos, format!("invalid back pointer: {back}")));
        }
    }
    Ok(())
}

/// Walks transaction headers from `start` to `end` (stopping early when `stop_after` says
/// so) with ZODB's `checkTxn`, in batches for parallel record work.
struct Walker<'a, T: Deref<Target = [u8]>> {
    fs: &'a FileStorage<T>,
    it: zfs_format::Transactions<'a>,
    end: u64,
    ltid: Tid,
    /// Header that ended the walk because of the tid limit.
    pending: Option<Transaction<'a>>,
    done: bool,
}

impl<'a, T: Deref<Target = [u8]>> Walker<'a, T> {
    fn new(fs: &'a FileStorage<T>, start: u64, end: u64, ltid: Tid) -> Self {
        Walker {
            fs,
            it: fs.transactions_from(start),
            end,
            ltid,
            pending: None,
            done: false,
        }
    }

    /// Next batch of checked transactions with tid <= `limit`.
    fn batch(&mut self, limit: Option<Tid>) -> Result<Vec<Transaction<'a>>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        while !self.done && bytes < BATCH_BYTES {
            if self.it.pos() >= self.end {
                self.done = true;
                break;
            }
            let Some(t) = self.it.next() else {
                self.done = true;
                break;
            };
            let t = t?;
            if limit.is_some_and(|s| t.tid() > s) {
                self.pending = Some(t);
                self.done = true;
                break;
            }
            if t.tid() <= self.ltid {
                return Err(corrupt(
                    self.fs,
                    t.pos(),
                    format!(
                        "time-stamp reduction: {} <= {}",
                        oid_repr(t.tid().0),
                        oid_repr(self.ltid.0)
                    ),
                ));
            }
            self.ltid = t.tid();
            if let Status::Other(b) = t.status() {
                return Err(corrupt(
                    self.fs,
                    t.pos(),
                    format!("invalid transaction status: {:?}", char::from(b)),
                ));
            }
            if t.status() == Status::Checkpoint {
                return Err(corrupt(
                    self.fs,
                    t.pos(),
                    "transaction with checkpoint flag set".into(),
                ));
            }
            bytes += t.tlen() + 8;
            out.push(t);
        }
        Ok(out)
    }
}

/// Per-chunk result of the scan to the pack time.
#[derive(Default)]
struct ScanPart {
    /// (oid, position or ABSENT) in file order.
    pairs: Vec<(u64, u64)>,
    records: u64,
    any_indexed: bool,
}

/// Backpointers into the packed region found in a chunk, and whether it held records.
type FuturePart = (Vec<(u64, u64)>, bool);

/// Runs phases A and B over the committed part `[4, end)` of `fs`.
pub fn analyze<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    end: u64,
    opts: AnalyzeOptions,
    progress: &dyn Progress,
) -> Result<Analysis> {
    // Phase A: the scan to the pack time.
    progress.start("scanning to the pack time", end.saturating_sub(4));
    let mut map = OidMap::new();
    let mut pending: Vec<(u64, u64)> = Vec::new();
    let mut walker = Walker::new(fs, zfs_format::FIRST_TXN, end, Tid::default());
    // Reads ahead of the scan and drops behind it what it brought into memory.
    let mut stream = fs.stream(zfs_format::FIRST_TXN);
    let mut unpacked = false;
    let mut any_indexed = false;
    let mut last_status = None;
    let mut records_before = 0;
    let mut txns_before = 0;
    loop {
        crate::interrupt::check(opts.interrupt)?;
        let batch = walker.batch(Some(opts.stop))?;
        if batch.is_empty() {
            break;
        }
        for t in &batch {
            if t.status() != Status::Packed {
                unpacked = true;
            }
            last_status = Some(t.status());
        }
        txns_before += batch.len() as u64;
        let parts: Vec<Result<ScanPart>> = batch
            .par_chunks(CHUNK)
            .map(|chunk| {
                let mut part = ScanPart::default();
                let mut done = 0;
                for t in chunk {
                    for r in t.records() {
                        let r = r?;
                        check_data(fs, &r)?;
                        let keep = !matches!(r.payload, Payload::Backpointer(0));
                        part.pairs
                            .push((r.oid.as_u64(), if keep { r.pos } else { ABSENT }));
                        part.records += 1;
                        if t.status() != Status::Undone {
                            part.any_indexed = true;
                        }
                    }
                    done += t.tlen() + 8;
                }
                progress.advance(done);
                Ok(part)
            })
            .collect();
        for p in parts {
            let p = p?;
            pending.extend_from_slice(&p.pairs);
            records_before += p.records;
            any_indexed |= p.any_indexed;
        }
        stream.advance(fs.bytes(), walker.it.pos());
        if pending.len() > (64 * 1024).max(map.slots() / 4) {
            map.apply(std::mem::take(&mut pending));
        }
    }
    if !pending.is_empty() {
        map.apply(pending);
    }
    let packpos = walker.pending.map_or(walker.it.pos().min(end), |t| t.pos());
    let ltid = walker.ltid;
    if let Some(t) = walker.pending {
        last_status = Some(t.status());
    }

    // The future scan (also tells whether the storage holds any object at all).
    progress.start("scanning after the pack time", end.saturating_sub(packpos));
    let mut future: Vec<(u64, u64)> = Vec::new();
    stream.finish(fs.bytes());
    let mut stream = fs.stream(packpos);
    let mut walker = Walker::new(fs, packpos, end, ltid);
    loop {
        crate::interrupt::check(opts.interrupt)?;
        let batch = walker.batch(None)?;
        if batch.is_empty() {
            break;
        }
        let parts: Vec<Result<FuturePart>> = batch
            .par_chunks(CHUNK)
            .map(|chunk| {
                let mut v = Vec::new();
                let mut any = false;
                let mut done = 0;
                for t in chunk {
                    for r in t.records() {
                        let r = r?;
                        check_data(fs, &r)?;
                        if t.status() != Status::Undone {
                            any = true;
                        }
                        if let Payload::Backpointer(back) = r.payload {
                            if back != 0 && back < packpos {
                                v.push((r.oid.as_u64(), back));
                            }
                        }
                    }
                    done += t.tlen() + 8;
                }
                progress.advance(done);
                Ok((v, any))
            })
            .collect();
        for p in parts {
            let (v, any) = p?;
            future.extend(v);
            any_indexed |= any;
        }
        stream.advance(fs.bytes(), walker.it.pos());
    }

    if !any_indexed {
        return Ok(Analysis::Empty);
    }
    if !unpacked && last_status == Some(Status::Packed) {
        return Ok(Analysis::Redundant);
    }

    let mut reach = Reach {
        marked: Bits::new(if opts.gc { map.slots() } else { 0 }),
        all_live: !opts.gc,
        map,
        moved: BTreeMap::new(),
        extra: BTreeMap::new(),
    };
    let mut plan = Plan {
        reach: Reach::default(),
        packpos,
        extra_kept: 0,
        dangling_ignored: Vec::new(),
        records_before,
        txns_before,
    };
    if opts.gc {
        gc(fs, &mut reach, &future, opts, &mut plan, progress)?;
    } else {
        no_gc_future(fs, &mut reach, &future)?;
    }
    plan.reach = reach;
    Ok(Analysis::Work(Box::new(plan)))
}

/// Without GC, ZODB keeps the current revision of every object and ignores backpointers
/// after the pack time; one to a non-current revision then makes its pack fail. We keep
/// such revisions (decision 5): only where ZODB fails does the result differ.
fn no_gc_future<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    reach: &mut Reach,
    future: &[(u64, u64)],
) -> Result<()> {
    for &(oid, back) in future {
        let cur = reach.map.get(oid);
        if cur == Some(back) || reach.is_reachable(oid, back) {
            continue;
        }
        // A chain ending in "does not exist" needs no revision: ZODB writes such records
        // with a zero backpointer whenever the target cannot be found.
        if resolve(fs, back)?.is_none() {
            continue;
        }
        if reach.contains(oid) {
            reach.extra.entry(oid).or_default().push(back);
        } else {
            reach.moved.insert(oid, back);
        }
    }
    Ok(())
}

/// Follows a backpointer chain from `back` to the record holding data, as ZODB's
/// `_loadBack_impl` does (no oid check): `None` when the chain ends in "does not exist".
pub fn resolve<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    mut back: u64,
) -> Result<Option<DataRecord<'_>>> {
    loop {
        if back == 0 {
            return Ok(None);
        }
        let r = fs.record_at(back)?;
        match r.payload {
            Payload::Data(_) => return Ok(Some(r)),
            Payload::Backpointer(next) => {
                if next >= back {
                    return Err(corrupt(
                        fs,
                        back,
                        format!("backpointer chain does not go backwards: {next}"),
                    ));
                }
                back = next;
            }
        }
    }
}

/// A reference as found in a pickle.
enum Ref {
    Oid(u64),
    Raw(Vec<u8>),
}

/// The strong references of the revision at `pos` (backpointers followed).
fn refs_at<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    sc: &mut Scanner,
    pos: u64,
) -> Result<Vec<Ref>> {
    let r = fs.record_at(pos)?;
    let data = match r.payload {
        Payload::Data(_) => r,
        Payload::Backpointer(b) => match resolve(fs, b)? {
            Some(d) => d,
            None => return Ok(Vec::new()),
        },
    };
    scan_refs(sc, data.data().unwrap_or_default(), r.oid, data.pos)
}

/// The strong references in `bytes`, the pickles of `oid`'s record at `data_pos`.
fn scan_refs(sc: &mut Scanner, bytes: &[u8], oid: Oid, data_pos: u64) -> Result<Vec<Ref>> {
    let perr = |source| PackError::Pickle {
        oid,
        offset: data_pos,
        source,
    };
    let plain: Cow<'_, [u8]> = untransform(bytes).map_err(perr)?;
    let mut out = Vec::new();
    // Bytes mode reads Python 2 strings as raw bytes: the same oids wherever Python 3
    // ZODB succeeds, and no UnicodeDecodeError where it fails (decision 2).
    sc.references_into(&plain, StringMode::Bytes, &mut out)
        .map_err(perr)?;
    Ok(out
        .into_iter()
        .map(|o| match <[u8; 8]>::try_from(&*o) {
            Ok(b) => Ref::Oid(u64::from_be_bytes(b)),
            Err(_) => Ref::Raw(o.into_owned()),
        })
        .collect())
}

/// Follows the backpointer chain from `pos` with positioned reads on `file` (as
/// [`resolve`] does on the mapping) and leaves the data of the record found in `buf`:
/// `(its oid, its position)`, or `None` when the chain ends in "does not exist".
///
/// Records are read where they lie, at random: reading them with `pread` keeps their
/// pages out of this process (a fault on a mapping maps a whole large folio of the page
/// cache, up to megabytes, for one record).
pub fn read_resolved<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    file: &RecordFile,
    buf: &mut Vec<u8>,
    pos: u64,
) -> Result<Option<(Oid, u64)>> {
    use std::os::unix::fs::FileExt;
    let ioe = |e| PackError::io(fs.path(), e);
    let mut at = pos;
    // The backpointer records passed on the way, remembered once the chain's end is known.
    let mut hops: Vec<u64> = Vec::new();
    let mut remembered = false;
    loop {
        if !remembered {
            if let Some(end) = file.chains.get(at) {
                file.chains.put(&hops, end);
                remembered = true;
                if end == 0 {
                    return Ok(None);
                }
                at = end;
            }
        }
        // One read for the header and, usually, the whole pickle.
        buf.resize(READ_AHEAD, 0);
        let n = file.read_at(buf, at).map_err(ioe)?;
        if n < 42 {
            return Err(corrupt(
                fs,
                at,
                "data record header runs past the end of the file".into(),
            ));
        }
        let word =
            |b: &[u8], i: usize| u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        if buf[32..34] != [0, 0] {
            return Err(corrupt(
                fs,
                at,
                "non-zero version length: versions are not supported".into(),
            ));
        }
        let plen = word(buf, 34);
        if plen > 0 {
            let oid = Oid(buf[..8].try_into().expect("8 bytes"));
            let len = usize::try_from(plen)
                .ok()
                .filter(|&l| at + 42 + l as u64 <= fs.len())
                .ok_or_else(|| {
                    corrupt(
                        fs,
                        at,
                        format!("data length {plen} runs past the end of the file"),
                    )
                })?;
            if 42 + len <= n {
                buf.copy_within(42..42 + len, 0);
                buf.truncate(len);
            } else {
                buf.resize(len, 0);
                file.read_exact_at(buf, at + 42).map_err(ioe)?;
            }
            if !remembered {
                file.chains.put(&hops, at);
            }
            return Ok(Some((oid, at)));
        }
        if n < 50 {
            return Err(corrupt(
                fs,
                at,
                "backpointer runs past the end of the file".into(),
            ));
        }
        let back = word(buf, 42);
        if back == 0 {
            if !remembered {
                hops.push(at);
                file.chains.put(&hops, 0);
            }
            return Ok(None);
        }
        if back >= at {
            return Err(corrupt(
                fs,
                at,
                format!("backpointer chain does not go backwards: {back}"),
            ));
        }
        if !remembered {
            hops.push(at);
        }
        at = back;
    }
}

/// [`refs_at`] with positioned reads on the file instead of the mapping.
fn refs_at_file<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    file: &RecordFile,
    sc: &mut Scanner,
    buf: &mut Vec<u8>,
    pos: u64,
) -> Result<Vec<Ref>> {
    let Some((oid, data_pos)) = read_resolved(fs, file, buf, pos)? else {
        return Ok(Vec::new());
    };
    scan_refs(sc, buf, oid, data_pos)
}

/// The data file opened for positioned reads, if it is the file `fs` maps (same length).
pub fn open_for_reads<T: Deref<Target = [u8]>>(fs: &FileStorage<T>) -> Option<RecordFile> {
    std::fs::File::open(fs.path())
        .ok()
        .filter(|f| f.metadata().is_ok_and(|m| m.len() == fs.len()))
        .map(|file| RecordFile {
            file,
            chains: Chains::default(),
        })
}

/// The data file opened for positioned reads, with the backpointer chains resolved so far.
pub struct RecordFile {
    file: std::fs::File,
    chains: Chains,
}

impl Deref for RecordFile {
    type Target = std::fs::File;
    fn deref(&self) -> &std::fs::File {
        &self.file
    }
}

/// Shards of the chain memo.
const CHAIN_SHARDS: usize = 16;
/// Entries a shard holds before it is emptied (bounds the memo to about 6 MB).
const CHAIN_SHARD_LIMIT: usize = 16 * 1024;

/// A memo of resolved backpointer chains: the position of a backpointer record → the
/// position of the data record its chain ends at (0: "does not exist"). Undo-heavy files
/// have chains of hundreds of hops that many records share; without the memo each hop of
/// each resolution is one `pread`. Sharded so the tracing threads rarely wait on each other.
#[derive(Default)]
struct Chains {
    shards: [std::sync::Mutex<std::collections::HashMap<u64, u64>>; CHAIN_SHARDS],
}

impl Chains {
    fn shard(&self, pos: u64) -> &std::sync::Mutex<std::collections::HashMap<u64, u64>> {
        &self.shards[(pos.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize % CHAIN_SHARDS]
    }
    fn get(&self, pos: u64) -> Option<u64> {
        self.shard(pos).lock().ok()?.get(&pos).copied()
    }
    fn put(&self, hops: &[u64], end: u64) {
        for &pos in hops {
            if let Ok(mut m) = self.shard(pos).lock() {
                if m.len() >= CHAIN_SHARD_LIMIT {
                    m.clear();
                }
                m.insert(pos, end);
            }
        }
    }
}

/// A revision whose references are to be followed.
#[derive(Clone, Copy)]
struct Todo {
    oid: u64,
    pos: u64,
    /// Traced only because of decision 4: missing targets are reported, not fatal.
    lenient: bool,
}

fn gc<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    reach: &mut Reach,
    future: &[(u64, u64)],
    opts: AnalyzeOptions,
    plan: &mut Plan,
    progress: &dyn Progress,
) -> Result<()> {
    progress.start_counting("tracing references", reach.map.live() as u64, "objects");
    // Random reads: without read-ahead and fault-around, only the pages read become
    // resident.
    // Records are read where they lie, at random: read them with positioned reads when
    // the file is at hand, so their pages are not mapped into this process.
    let file = open_for_reads(fs);
    gc_inner(fs, file.as_ref(), reach, future, opts, plan, progress)
}

fn gc_inner<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    file: Option<&RecordFile>,
    reach: &mut Reach,
    future: &[(u64, u64)],
    opts: AnalyzeOptions,
    plan: &mut Plan,
    progress: &dyn Progress,
) -> Result<()> {
    let mut dangling = Vec::new();
    // From the root.
    let mut roots = Vec::new();
    match reach.map.slot(0) {
        Some(s) if reach.map.pos_at(s) != ABSENT => {
            reach.marked.set(s);
            roots.push(Todo {
                oid: 0,
                pos: reach.map.pos_at(s),
                lenient: false,
            });
            progress.advance(1);
        }
        // Packing to before the root's creation: nothing is reachable.
        _ if reach.map.live() == 0 => {}
        _ => dangling.push(Dangling {
            from: Oid::from_u64(0),
            offset: 0,
            missing: vec![0; 8],
        }),
    }
    trace(
        fs,
        file,
        reach,
        roots,
        &mut dangling,
        &mut plan.dangling_ignored,
        &mut 0,
        progress,
        opts.interrupt,
    )?;

    // From the future: backpointers after the pack time into the packed region.
    let mut extra_roots = Vec::new();
    for &(oid, back) in future {
        if reach.contains(oid) {
            let l = reach.extra.entry(oid).or_default();
            if !l.contains(&back) {
                l.push(back);
                extra_roots.push(Todo {
                    oid,
                    pos: back,
                    lenient: false,
                });
            }
        } else {
            reach.moved.insert(oid, back);
            // ZODB keeps this revision without following its references (quirk 1.4-2);
            // we follow them, so the packed file has no dangling reference (decision 4).
            extra_roots.push(Todo {
                oid,
                pos: back,
                lenient: true,
            });
        }
    }
    let mut extra_kept = 0;
    trace(
        fs,
        file,
        reach,
        extra_roots,
        &mut dangling,
        &mut plan.dangling_ignored,
        &mut extra_kept,
        progress,
        opts.interrupt,
    )?;
    plan.extra_kept = extra_kept;
    if !dangling.is_empty() {
        dangling
            .sort_by(|a, b| (a.from, a.offset, &a.missing).cmp(&(b.from, b.offset, &b.missing)));
        dangling.dedup();
        if !opts.allow_dangling {
            return Err(PackError::Dangling(dangling));
        }
        plan.dangling_ignored.extend(dangling);
    }
    Ok(())
}

/// Marks everything reachable from the references of `todo`, level by level, the
/// references of each level extracted in parallel.
#[allow(clippy::too_many_arguments)]
fn trace<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    file: Option<&RecordFile>,
    reach: &mut Reach,
    mut todo: Vec<Todo>,
    dangling: &mut Vec<Dangling>,
    lenient_dangling: &mut Vec<Dangling>,
    lenient_marked: &mut usize,
    progress: &dyn Progress,
    interrupt: Option<&std::sync::atomic::AtomicBool>,
) -> Result<()> {
    // A stack worked a chunk at a time: it stays about as deep as the object graph times
    // its fan-out, where a breadth-first frontier would hold whole levels. The order does
    // not matter: the result is a set.
    while !todo.is_empty() {
        crate::interrupt::check(interrupt)?;
        let chunk_owned = todo.split_off(todo.len().saturating_sub(TRACE_CHUNK));
        let next = &mut todo;
        {
            let chunk = &chunk_owned[..];
            let found: Vec<Result<Vec<Ref>>> = chunk
                .par_iter()
                .map_init(
                    || (Scanner::new(), Vec::new()),
                    |(sc, buf), t| match file {
                        Some(f) => refs_at_file(fs, f, sc, buf, t.pos),
                        None => refs_at(fs, sc, t.pos),
                    },
                )
                .collect();
            for (t, refs) in chunk.iter().zip(found) {
                for r in refs? {
                    let missing = |raw: Vec<u8>| Dangling {
                        from: Oid::from_u64(t.oid),
                        offset: t.pos,
                        missing: raw,
                    };
                    let oid = match r {
                        Ref::Oid(o) => o,
                        Ref::Raw(raw) => {
                            if t.lenient {
                                lenient_dangling.push(missing(raw));
                            } else {
                                dangling.push(missing(raw));
                            }
                            continue;
                        }
                    };
                    if reach.moved.contains_key(&oid) {
                        continue;
                    }
                    match reach.map.slot(oid) {
                        Some(s) if reach.map.pos_at(s) != ABSENT => {
                            if reach.marked.set(s) {
                                progress.advance(1);
                                if t.lenient {
                                    *lenient_marked += 1;
                                }
                                next.push(Todo {
                                    oid,
                                    pos: reach.map.pos_at(s),
                                    lenient: t.lenient,
                                });
                            }
                        }
                        _ => {
                            let d = missing(oid.to_be_bytes().to_vec());
                            if t.lenient {
                                lenient_dangling.push(d);
                            } else {
                                dangling.push(d);
                            }
                        }
                    }
                }
            }
            if file.is_none() {
                fs.release(0, fs.len());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zfs_format::writer::FileBuilder;

    /// Two oids: oid 1 gets data, then 60 undo-like backpointers, each to the one before
    /// (a chain of growing length); oid 2's chain ends in "does not exist". Every record is
    /// resolved twice, in an order that starts in the middle of the chains, with the memo,
    /// and must agree with the resolver over the mapping.
    #[test]
    fn chain_memo_agrees_with_the_mapped_resolver() {
        let mut fb = FileBuilder::new(*b"FS30");
        let mut positions = Vec::new();
        let (mut prev1, mut prev2) = (0u64, 0u64);
        for i in 0..62u64 {
            let mut t = fb
                .txn(
                    Tid::from_u64(0x0300_0000_0000_0000 + i),
                    Status::Committed,
                    b"",
                    b"",
                    b"",
                )
                .expect("txn");
            let p1 = if i == 0 {
                t.data(Oid::from_u64(1), 0, b"data of one")
            } else {
                t.backpointer(Oid::from_u64(1), prev1, prev1)
            };
            let p2 = if i == 0 {
                t.backpointer(Oid::from_u64(2), 0, 0)
            } else {
                t.backpointer(Oid::from_u64(2), prev2, prev2)
            };
            positions.extend([p1, p2]);
            (prev1, prev2) = (p1, p2);
            fb.push(t);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("chains.fs");
        std::fs::write(&path, fb.into_bytes()).expect("write");
        let fs = FileStorage::open(&path).expect("open");
        let file = open_for_reads(&fs).expect("file");
        let mut order = positions.clone();
        order.rotate_left(positions.len() / 2);
        order.extend(positions.iter().rev());
        let mut buf = Vec::new();
        for &pos in &order {
            let want = resolve(&fs, pos).expect("mapped").map(|r| (r.oid, r.pos));
            let got = read_resolved(&fs, &file, &mut buf, pos).expect("read");
            assert_eq!(got, want, "record at {pos}");
            if got.is_some() {
                assert_eq!(&buf[..], b"data of one");
            }
        }
        let memo: usize = file
            .chains
            .shards
            .iter()
            .map(|s| s.lock().expect("lock").len())
            .sum();
        assert!(
            memo >= 120,
            "the memo holds the backpointer records ({memo})"
        );
    }
}
