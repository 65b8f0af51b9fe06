//! Phase B with garbage collection: reachability from the root and from backpointers after
//! the pack time, the references of each level of revisions extracted on all cores.

use std::borrow::Cow;
use std::ops::Deref;

use rayon::prelude::*;
use zfs_format::pickle::{untransform, Scanner, StringMode};
use zfs_format::{FileStorage, Oid, Progress};

use super::{AnalyzeOptions, Plan};
use crate::error::{Dangling, PackError, Result};
use crate::oidmap::ABSENT;
use crate::reach::Reach;
use crate::records::{open_for_reads, read_state_at, state_at, RecordFile};

/// Records whose references are extracted between two releases of the mapping.
const TRACE_CHUNK: usize = 4096;

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

/// A revision whose references are to be followed.
#[derive(Clone, Copy)]
struct Todo {
    oid: u64,
    pos: u64,
    /// Traced only because of decision 4: missing targets are reported, not fatal.
    lenient: bool,
}

/// Marks every revision reachable from the root, then from the backpointers after the
/// pack time (`future`: (oid, target) pairs); dangling references fail the analysis
/// unless `allow_dangling`.
pub(super) fn gc<T: Deref<Target = [u8]> + Sync>(
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

/// [`gc`] with the data file for positioned reads, when it could be opened.
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
