//! The bodies of the pack's fuzz targets (`pack`, `pack_refs`), shared by `fuzz/`
//! (cargo-fuzz) and by the replay tests `tests/pack/fuzzed.rs`, so that an input once found
//! by the fuzzer is checked by `cargo test`. They must return normally on any input; a
//! panic is a bug (a failed assertion names the property that broke).

use std::hint::black_box;
use std::path::{Path, PathBuf};

use zfs_format::fuzzing::{assert_sound, Scratch};
use zfs_format::index_file::{self, load_index};
use zfs_format::refs_file::{self, write_refs, Entry, RefsFile};
use zfs_format::{scan, FileStorage, NoProgress, Oid, Tid};

use crate::{pack_storage, Outcome, PackOptions, Report, Result, SavedReferences};

/// Packs arbitrary bytes as a Data.fs: dry runs (the analysis and the copy before the pack
/// time, with and without GC, at three pack times) over the bytes in memory and over a
/// file (positioned reads), which must agree; then a real pack of the file to the middle
/// of its history, whose output must be a sound FileStorage with the `.index` of its
/// records.
pub fn pack(input: &[u8]) {
    let Ok(mem) = FileStorage::from_data(input, PathBuf::new()) else {
        return;
    };
    let stops = stops(&mem);
    let mut in_memory = Vec::new();
    for &stop in &stops {
        for gc in [true, false] {
            in_memory.push(dry_run(&mem, Path::new(""), stop, gc));
        }
    }
    let Some(dir) = Scratch::new() else {
        return;
    };
    let path = dir.path("Data.fs");
    if std::fs::write(&path, input).is_err() {
        return;
    }
    {
        let Ok(fs) = FileStorage::open(&path) else {
            return;
        };
        let mut on_file = Vec::new();
        for &stop in &stops {
            for gc in [true, false] {
                on_file.push(dry_run(&fs, &path, stop, gc));
            }
        }
        for (m, f) in in_memory.iter().zip(&on_file) {
            assert_eq!(
                summary(m),
                summary(f),
                "a dry run over the mapping and one with positioned reads disagree"
            );
        }
    }
    real_pack(&path, stops[stops.len() / 2]);
}

/// Pack times: before the first transaction's tid, the middle one's, after the last one's.
fn stops<T: std::ops::Deref<Target = [u8]>>(fs: &FileStorage<T>) -> Vec<Tid> {
    let tids: Vec<Tid> = fs
        .transactions()
        .map_while(|t| t.ok().map(|t| t.tid()))
        .collect();
    let (Some(first), Some(last)) = (tids.first(), tids.last()) else {
        return vec![Tid::from_u64(u64::MAX)];
    };
    vec![
        Tid::from_u64(first.as_u64().saturating_sub(1).max(1)),
        tids[tids.len() / 2],
        Tid::from_u64(last.as_u64().saturating_add(1)),
    ]
}

/// A dry run of the pack of `fs` (at `path`) to `stop`.
fn dry_run<T>(fs: &FileStorage<T>, path: &Path, stop: Tid, gc: bool) -> Result<Report>
where
    T: std::ops::Deref<Target = [u8]> + Sync,
{
    let opts = PackOptions {
        gc,
        dry_run: true,
        ..PackOptions::new(stop)
    };
    black_box(pack_storage(fs, path, &opts, &NoProgress))
}

/// What two runs of the same pack must agree on: the outcome and the sizes, or failing.
fn summary(r: &Result<Report>) -> Option<(Outcome, u64, u64, u64, u64)> {
    r.as_ref().ok().map(|r| {
        (
            r.outcome,
            r.size_after,
            r.packpos,
            r.records_removed,
            r.objects_kept,
        )
    })
}

/// Packs the file at `path` for real; a packed file must be sound and come with its index.
fn real_pack(path: &Path, stop: Tid) {
    let Ok(fs) = FileStorage::open(path) else {
        return;
    };
    let opts = PackOptions {
        keep_old: false,
        ..PackOptions::new(stop)
    };
    let report = pack_storage(&fs, path, &opts, &NoProgress);
    drop(fs);
    let Ok(report) = report else {
        return;
    };
    if report.outcome != Outcome::Packed {
        return;
    }
    let Ok(bytes) = std::fs::read(path) else {
        return;
    };
    assert_eq!(bytes.len() as u64, report.size_after, "packed size");
    assert_sound(&bytes, "packed file");
    let mut index_path = path.as_os_str().to_os_string();
    index_path.push(".index");
    let Ok(saved) = std::fs::read(&index_path) else {
        return;
    };
    let (pos, index) = load_index(&saved).expect("the packed file's .index loads");
    assert_eq!(pos, report.size_after, "the .index covers the packed file");
    let packed = FileStorage::from_data(&bytes[..], path.to_path_buf()).expect("magic");
    let scanned = scan::build_index(&packed, &NoProgress).expect("a sound file scans");
    assert!(
        scanned.index == index,
        "the .index differs from the packed file's records"
    );
}

/// One instruction of [`pack_refs`]'s trailer: 8 bytes, an operation (byte 0), an index
/// (bytes 1 to 3, little-endian, taken modulo the length of what it indexes) and a value
/// (bytes 4 to 7, little-endian).
#[derive(Clone, Copy, Debug)]
struct Mutation {
    op: u8,
    at: usize,
    value: u32,
}

/// The operations of a [`Mutation`], by `op % MUTATIONS`.
const MUTATIONS: u8 = 14;
/// The operation that saves the references of an earlier state of the file.
const EARLIER: u8 = MUTATIONS - 1;

impl Mutation {
    fn read(b: &[u8]) -> Mutation {
        Mutation {
            op: b[0] % MUTATIONS,
            at: usize::from(b[1]) | usize::from(b[2]) << 8 | usize::from(b[3]) << 16,
            value: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// The Data.fs and the mutations of a [`pack_refs`] input: the last byte says how many
/// 8-byte mutations end the input (as many as fit), the Data.fs is what precedes them.
fn split_refs_input(input: &[u8]) -> Option<(&[u8], Vec<Mutation>)> {
    let (&k, rest) = input.split_last()?;
    let k = usize::from(k).min(rest.len() / 8);
    let (data, trailer) = rest.split_at(rest.len() - 8 * k);
    Some((data, trailer.chunks_exact(8).map(Mutation::read).collect()))
}

/// A references file's header, entries and reference list, as written (the list's words
/// where the entries' starts point).
struct RefsParts {
    end: u64,
    last_tid: Tid,
    entries: Vec<Entry>,
    list: Vec<u32>,
}

impl RefsParts {
    fn read(bytes: &[u8]) -> Option<RefsParts> {
        let refs = RefsFile::parse(bytes).ok()?;
        let entries: Vec<Entry> = (0..refs.len()).map(|i| refs.entry(i)).collect();
        // The list lies between the entries and the checksum.
        let list = bytes
            .get(40 + 28 * entries.len()..bytes.len() - 4)?
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        Some(RefsParts {
            end: refs.end,
            last_tid: refs.last_tid,
            entries,
            list,
        })
    }

    /// The references of entry `i` as the list holds them (none when not known or out of
    /// range).
    fn group(&self, i: usize) -> Vec<u32> {
        let s = self.entries[i].start as usize;
        let Some(&count) = self.list.get(s) else {
            return Vec::new();
        };
        self.list
            .get(s + 1..)
            .map(|l| l.iter().take(count as usize).copied().collect())
            .unwrap_or_default()
    }

    /// Gives entry `i` the references `refs`, appended to the list.
    fn set_group(&mut self, i: usize, refs: &[u32]) {
        self.entries[i].start = self.list.len() as u32;
        self.list.push(refs.len() as u32);
        self.list.extend_from_slice(refs);
    }

    fn apply(&mut self, m: Mutation) {
        let n = self.entries.len();
        let (e, l) = (m.at % n.max(1), m.at % self.list.len().max(1));
        let v = u64::from(m.value);
        match m.op {
            0 if n > 0 => self.entries[e].oid = Oid::from_u64(self.entries[e].oid.as_u64() ^ v),
            1 if n > 0 => self.entries[e].pos ^= v,
            2 if n > 0 => self.entries[e].tid = Tid::from_u64(self.entries[e].tid.as_u64() ^ v),
            3 if n > 0 => self.entries[e].start = m.value,
            4 if n > 0 => {
                self.entries[e].start = if m.value & 1 == 0 {
                    refs_file::UNKNOWN
                } else {
                    refs_file::ABSENT
                }
            }
            // An entry number, most often in range.
            5 if !self.list.is_empty() => self.list[l] = m.value % (n as u32 + 1),
            6 if !self.list.is_empty() => self.list[l] ^= m.value,
            7 => self.end ^= v,
            8 => self.last_tid = Tid::from_u64(self.last_tid.as_u64() ^ v),
            // The entry's references taken away.
            9 if n > 0 => self.set_group(e, &[]),
            // One more reference, or one fewer.
            10 if n > 0 => {
                let mut g = self.group(e);
                g.push(m.value % n as u32);
                self.set_group(e, &g);
            }
            11 if n > 0 => {
                let mut g = self.group(e);
                if !g.is_empty() {
                    g.remove(m.value as usize % g.len());
                }
                self.set_group(e, &g);
            }
            // An entry left out (the entry numbers after it now name the next ones).
            12 if n > 0 => {
                self.entries.remove(e);
            }
            _ => {}
        }
    }

    fn write(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write_refs(&mut out, self.end, self.last_tid, &self.entries, &self.list)
            .expect("writing to memory");
        out
    }
}

/// Writes `<f>.index` for the file at `f` as it is; false when it does not scan.
fn write_index_for(f: &Path) -> bool {
    let Ok(fs) = FileStorage::open(f) else {
        return false;
    };
    let Ok(scan) = scan::build_index(&fs, &NoProgress) else {
        return false;
    };
    let bytes = index_file::index_bytes(&scan.index, scan.end.pos);
    std::fs::write(zfs_files::with_suffix(f, ".index"), bytes).is_ok()
}

/// What must not depend on the references file: every count and size of a report.
fn refs_summary(r: &Result<Report>, dirs: &[&Path]) -> std::result::Result<String, String> {
    match r {
        Ok(r) => Ok(format!(
            "{:?} before {} after {} packpos {} txns {}/{} records {}/{} objects {}/{} \
             extra {} dangling {:?} index {} written {} refs {} tail {} saved {:?}",
            r.outcome,
            r.size_before,
            r.size_after,
            r.packpos,
            r.txns_before,
            r.txns_removed,
            r.records_before,
            r.records_removed,
            r.objects_at_stop,
            r.objects_kept,
            r.extra_kept,
            r.dangling_ignored,
            r.index_entries,
            r.index_written,
            r.references_saved,
            r.tail,
            r.tail_saved
                .as_ref()
                .map(|p| p.file_name().map(|n| n.to_owned())),
        )),
        Err(e) => {
            let mut s = e.to_string();
            for d in dirs {
                s = s.replace(&*d.to_string_lossy(), "<dir>");
            }
            Err(s)
        }
    }
}

/// The names in `dir`, the references file's only `with_refs`, and the bytes of each file.
fn contents(dir: &Path, with_refs: bool) -> Vec<(String, Option<Vec<u8>>)> {
    let mut v: Vec<(String, Option<Vec<u8>>)> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| with_refs || n != "Data.fs.refs")
                .map(|n| {
                    let bytes = std::fs::read(dir.join(&n)).ok();
                    (n, bytes)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Packs arbitrary bytes as a Data.fs twice, with and without saved references (whose
/// contents the input chooses), and checks that the result does not depend on them.
///
/// The input is a Data.fs followed by mutations of its references file: its last byte
/// says how many 8-byte [`Mutation`]s end the input (an operation, an index, a value:
/// xor an entry's oid, position or tid, set its start, make it unknown or absent, set or
/// xor a word of the reference list, xor the header's end or last tid, take away an
/// entry's references, add or remove one, leave an entry out, or save the references of
/// an earlier state of the file, the transactions committed since left for the pack to
/// read). The file is written into two directories with the `.index` of its records (a
/// saved index that covers it); [`crate::prepare`] writes the references of one, which
/// are then mutated and written back whole, with a valid checksum (so that the pack's
/// checks, not the checksum, refuse what does not fit). Dry runs with GC after the last
/// transaction of both must agree on the outcome and every count of the report, or fail
/// the same way; so must the real packs that follow, which must also leave the same
/// files, byte for byte (the data file, its `.index`, the references of the packed file,
/// anything else but the references `a` had when nothing was packed).
pub fn pack_refs(input: &[u8]) {
    pack_refs_report(input);
}

/// [`pack_refs`], returning how the real pack with references treated them (`None` when
/// the input did not get that far): the replay test checks that its seeds reach the pack
/// from saved references.
pub fn pack_refs_report(input: &[u8]) -> Option<SavedReferences> {
    let (data, mutations) = split_refs_input(input)?;
    // The pack time, after the last committed transaction.
    let (stop, earlier) = {
        let mem = FileStorage::from_data(data, PathBuf::new()).ok()?;
        let end = mem.end().ok()?;
        let stop = Tid::from_u64(end.last_complete_tid.as_u64().checked_add(1)?);
        // With [`EARLIER`], the references are saved while the file ended before one of its
        // transactions (chosen by the value; none for the last choice).
        let earlier = mutations
            .iter()
            .find(|m| m.op == EARLIER)
            .and_then(|m| {
                let pos: Vec<u64> = mem
                    .transactions()
                    .map_while(|t| t.ok().map(|t| t.pos()))
                    .filter(|&p| p < end.pos)
                    .collect();
                let cut = *pos.get(m.value as usize % (pos.len() + 1))?;
                usize::try_from(cut).ok()
            })
            .filter(|&cut| cut > 4);
        (stop, earlier)
    };
    let dir = Scratch::new()?;
    // Neither name is a prefix of the other (their paths are taken out of error messages).
    let (a_dir, b_dir) = (dir.path("a-with"), dir.path("b-without"));
    std::fs::create_dir(&a_dir).ok()?;
    std::fs::create_dir(&b_dir).ok()?;
    let (a, b) = (a_dir.join("Data.fs"), b_dir.join("Data.fs"));
    std::fs::write(&a, earlier.map_or(data, |cut| &data[..cut])).ok()?;
    if !write_index_for(&a) {
        return None;
    }
    let prepared = crate::prepare(&a, &NoProgress).ok()?;
    if earlier.is_some() {
        std::fs::write(&a, data).ok()?;
        if !write_index_for(&a) {
            return None;
        }
    }
    std::fs::write(&b, data).ok()?;
    if !write_index_for(&b) {
        return None;
    }
    let refs_path = zfs_files::with_suffix(&a, ".refs");
    let saved = std::fs::read(&refs_path).ok()?;
    assert_eq!(
        saved.len() as u64,
        prepared.bytes,
        "prepare says how long the references file it wrote is"
    );
    let mut parts = RefsParts::read(&saved).expect("prepare writes a references file that parses");
    assert!(
        parts.write() == saved,
        "a references file written back unchanged is the same bytes"
    );
    for &m in &mutations {
        parts.apply(m);
    }
    std::fs::write(&refs_path, parts.write()).ok()?;
    let dirs = [a_dir.as_path(), b_dir.as_path()];
    let dry = PackOptions {
        dry_run: true,
        ..PackOptions::new(stop)
    };
    let (x, y) = (
        black_box(crate::pack(&a, &dry, &NoProgress)),
        crate::pack(&b, &dry, &NoProgress),
    );
    assert_eq!(
        refs_summary(&x, &dirs),
        refs_summary(&y, &dirs),
        "a dry run with saved references and one without disagree"
    );
    let real = PackOptions {
        keep_old: false,
        ..PackOptions::new(stop)
    };
    let (x, y) = (
        black_box(crate::pack(&a, &real, &NoProgress)),
        crate::pack(&b, &real, &NoProgress),
    );
    assert_eq!(
        refs_summary(&x, &dirs),
        refs_summary(&y, &dirs),
        "a pack with saved references and one without disagree"
    );
    // A pack that changed the file leaves the references of the packed file, the same
    // whichever way it went; otherwise `a` keeps the (mutated) ones it had.
    let packed = matches!(&y, Ok(r) if r.outcome == Outcome::Packed);
    let (left_a, left_b) = (contents(&a_dir, packed), contents(&b_dir, packed));
    assert_eq!(
        left_a.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        left_b.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        "a pack with saved references and one without leave different files"
    );
    for ((name, x), (_, y)) in left_a.iter().zip(&left_b) {
        assert!(
            x == y,
            "a pack with saved references and one without leave different bytes in {name}"
        );
    }
    x.ok().map(|r| r.saved_references)
}
