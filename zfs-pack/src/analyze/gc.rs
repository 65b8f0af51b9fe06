//! Phase B with garbage collection: reachability from the root and from backpointers after
//! the pack time, over the references gathered in file order (see `edges.rs`); the
//! revisions left out of those are read where they lie, on all cores.

use std::borrow::Cow;
use std::ops::Deref;

use rayon::prelude::*;
use zfs_format::pickle::{untransform, Scanner, StringMode};
use zfs_format::{FileStorage, Oid, Progress};

use super::edges::{self, Edges};
use super::{AnalyzeOptions, Plan};
use crate::error::{Dangling, PackError, Result};
use crate::oidmap::ABSENT;
use crate::reach::Reach;
use crate::records::{open_for_reads, read_state_at, state_at, RecordFile};

/// Revisions taken off the trace's stack at once: the records among them left out of the
/// gathered references are asked for together (see [`trace`]), and the mapping is released
/// after each chunk.
const TRACE_CHUNK: usize = 1 << 16;

/// A reference as found in a pickle.
enum Ref {
    Oid(u64),
    /// An object present at the pack time, by its slot (gathered references).
    Slot(usize),
    Raw(Vec<u8>),
}

/// The strong references of the revision at `pos` (backpointers followed).
fn refs_at<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    sc: &mut Scanner,
    pos: u64,
) -> Result<Vec<Ref>> {
    let Some(data) = state_at(fs, pos)? else {
        return Ok(Vec::new());
    };
    scan_refs(sc, data.data().unwrap_or_default(), data.oid, data.pos)
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
    // ZODB succeeds, and no UnicodeDecodeError where it fails (FS21 files are read whole).
    sc.references_into(&plain, StringMode::Bytes, &mut out)
        .map_err(perr)?;
    Ok(out
        .into_iter()
        .map(|o| match zfs_format::Oid::from_slice(&o) {
            Some(oid) => Ref::Oid(oid.as_u64()),
            None => Ref::Raw(o.into_owned()),
        })
        .collect())
}

/// [`refs_at`] with positioned reads on the file instead of the mapping.
fn refs_at_file<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    file: &RecordFile,
    sc: &mut Scanner,
    buf: &mut Vec<u8>,
    pos: u64,
) -> Result<Vec<Ref>> {
    let Some((oid, data_pos)) = read_state_at(fs, file, buf, pos)? else {
        return Ok(Vec::new());
    };
    scan_refs(sc, buf, oid, data_pos)
}

/// `Todo::slot` of a revision that is not the current one of its object.
const NOT_CURRENT: usize = usize::MAX;

/// A revision whose references are to be followed.
#[derive(Clone, Copy)]
struct Todo {
    oid: u64,
    pos: u64,
    /// The object's slot when `pos` is its current revision, else [`NOT_CURRENT`].
    slot: usize,
    /// Traced only because a backpointer after the pack time keeps the revision: missing
    /// targets are reported, not fatal.
    lenient: bool,
}

/// Marks every revision reachable from the root, then from the backpointers after the
/// pack time (`future`: (oid, target) pairs); dangling references fail the analysis
/// unless `allow_dangling`. Returns the references the trace took as gathered.
pub(super) fn gc<T: Deref<Target = [u8]> + Sync>(
    fs: &FileStorage<T>,
    reach: &mut Reach,
    future: &[(u64, u64)],
    opts: AnalyzeOptions,
    plan: &mut Plan,
    early: Option<Edges>,
    progress: &dyn Progress,
) -> Result<Edges> {
    // The references the scan gathered serve unless too many revisions were left out
    // (the pack time long before the saved index's, or no index): a walk in file order then
    // gathers the rest.
    let edges = match early {
        Some(e) if e.missing(&reach.map) <= reach.map.live() / MISSING_SHARE => e,
        base => edges::gather(fs, &reach.map, plan.packpos, base, progress)?,
    };
    plan.edges_bytes = edges.heap_bytes();
    progress.start_counting("tracing references", reach.map.live() as u64, "objects");
    // The records the trace reads are read where they lie, at random: read them with
    // positioned reads when the file is at hand, so their pages are not mapped into this
    // process.
    let file = open_for_reads(fs);
    let graph = Graph {
        fs,
        file: file.as_ref(),
        edges: &edges,
    };
    gc_inner(&graph, reach, future, opts, plan, progress)?;
    Ok(edges)
}

/// The share of present objects (one in this many) whose references, when left out by the
/// scan, the trace reads itself rather than walking the file again.
const MISSING_SHARE: usize = 16;

/// Where the trace finds the references of a revision.
struct Graph<'a, T: Deref<Target = [u8]>> {
    fs: &'a FileStorage<T>,
    /// The data file for positioned reads, when it could be opened.
    file: Option<&'a RecordFile>,
    /// The references gathered in file order.
    edges: &'a Edges,
}

/// [`gc`] once the references are at hand.
fn gc_inner<T: Deref<Target = [u8]> + Sync>(
    graph: &Graph<'_, T>,
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
                slot: s,
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
        graph,
        reach,
        roots,
        &mut dangling,
        &mut plan.dangling_ignored,
        &mut 0,
        progress,
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
                    slot: NOT_CURRENT,
                    lenient: false,
                });
            }
        } else {
            reach.moved.insert(oid, back);
            // ZODB keeps this revision without following its references, so its referents
            // are collected; we follow them, so the packed file has no dangling reference.
            extra_roots.push(Todo {
                oid,
                pos: back,
                slot: NOT_CURRENT,
                lenient: true,
            });
        }
    }
    let mut extra_kept = 0;
    trace(
        graph,
        reach,
        extra_roots,
        &mut dangling,
        &mut plan.dangling_ignored,
        &mut extra_kept,
        progress,
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

/// Marks everything reachable from the references of `todo`, a chunk of the stack at a
/// time: the references gathered are taken as they are, the chunk's other revisions are
/// read on all cores.
#[allow(clippy::too_many_arguments)]
fn trace<T: Deref<Target = [u8]> + Sync>(
    graph: &Graph<'_, T>,
    reach: &mut Reach,
    mut todo: Vec<Todo>,
    dangling: &mut Vec<Dangling>,
    lenient_dangling: &mut Vec<Dangling>,
    lenient_marked: &mut usize,
    progress: &dyn Progress,
) -> Result<()> {
    let (fs, file) = (graph.fs, graph.file);
    let gathered = |t: &Todo| {
        if t.slot == NOT_CURRENT {
            None
        } else {
            graph.edges.of(t.slot)
        }
    };
    // A stack worked a chunk at a time: it stays about as deep as the object graph times
    // its fan-out, where a breadth-first frontier would hold whole levels. The order does
    // not matter: the result is a set.
    while !todo.is_empty() {
        crate::interrupt::check(progress)?;
        let chunk = todo.split_off(todo.len().saturating_sub(TRACE_CHUNK));
        // The reads below wait for the disk one at a time per core; asked for together
        // first (and the records that backpointers among them lead to, next), the disk
        // serves them at once.
        if let Some(f) = file {
            let left = || chunk.iter().filter(|t| gathered(t).is_none());
            left().for_each(|t| f.will_read(t.pos));
            left().for_each(|t| f.will_follow(t.pos));
        }
        let read: Vec<Result<Vec<Ref>>> = chunk
            .par_iter()
            .filter(|t| gathered(t).is_none())
            .map_init(
                || (Scanner::new(), Vec::new()),
                |(sc, buf), t| match file {
                    Some(f) => refs_at_file(fs, f, sc, buf, t.pos),
                    None => refs_at(fs, sc, t.pos),
                },
            )
            .collect();
        let mut read = read.into_iter();
        let mut marker = Marker {
            reach: &mut *reach,
            next: &mut todo,
            dangling: &mut *dangling,
            lenient_dangling: &mut *lenient_dangling,
            lenient_marked: &mut *lenient_marked,
            progress,
        };
        for t in &chunk {
            if let Some(slots) = gathered(t) {
                for &s in slots {
                    marker.found(t, Ref::Slot(s as usize));
                }
                continue;
            }
            let refs = read.next().unwrap_or_else(|| Ok(Vec::new()))?;
            for r in refs {
                marker.found(t, r);
            }
        }
        if file.is_none() {
            fs.release(0, fs.len());
        }
    }
    Ok(())
}

/// What the trace updates for each reference it finds.
struct Marker<'a> {
    reach: &'a mut Reach,
    next: &'a mut Vec<Todo>,
    dangling: &'a mut Vec<Dangling>,
    lenient_dangling: &'a mut Vec<Dangling>,
    lenient_marked: &'a mut usize,
    progress: &'a dyn Progress,
}

impl Marker<'_> {
    /// Marks the object `r` (a reference of the revision `t`) and queues its current
    /// revision, or notes a dangling reference.
    fn found(&mut self, t: &Todo, r: Ref) {
        let missing = |raw: Vec<u8>| Dangling {
            from: Oid::from_u64(t.oid),
            offset: t.pos,
            missing: raw,
        };
        let map = &self.reach.map;
        let (oid, slot) = match r {
            Ref::Oid(o) => (Some(o), map.slot(o)),
            // The oid is only looked up when it is needed.
            Ref::Slot(s) => (None, Some(s)),
            Ref::Raw(raw) => {
                self.dangle(t, missing(raw));
                return;
            }
        };
        // Every reference has its oid or its slot.
        let oid = || {
            oid.or_else(|| slot.map(|s| map.oid_at(s)))
                .unwrap_or_default()
        };
        if !self.reach.moved.is_empty() && self.reach.moved.contains_key(&oid()) {
            return;
        }
        match slot {
            Some(s) if map.pos_at(s) != ABSENT => {
                if self.reach.marked.set(s) {
                    self.progress.advance(1);
                    if t.lenient {
                        *self.lenient_marked += 1;
                    }
                    let todo = Todo {
                        oid: oid(),
                        pos: map.pos_at(s),
                        slot: s,
                        lenient: t.lenient,
                    };
                    self.next.push(todo);
                }
            }
            _ => self.dangle(t, missing(oid().to_be_bytes().to_vec())),
        }
    }

    /// Notes a dangling reference of `t`: fatal unless `t` is traced leniently.
    fn dangle(&mut self, t: &Todo, d: Dangling) {
        if t.lenient {
            self.lenient_dangling.push(d);
        } else {
            self.dangling.push(d);
        }
    }
}
