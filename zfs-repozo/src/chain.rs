//! A chain and its `.dat`: what every file of a state must hold, checked before anything
//! is written (restore) or reported (verify).

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::md5::Md5;
use crate::repo::{self, ChainFile, DatLine};
use crate::source::read_uncompressed;
use crate::Ticker;

/// What a chain file must hold: its uncompressed size, and its MD5 when the `.dat` lists
/// it (a trailing file an interrupted backup did not list has only the size its `.index`
/// vouches for).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Want {
    /// Uncompressed bytes.
    pub size: u64,
    /// MD5 of them, from the `.dat`.
    pub md5: Option<String>,
}

/// What each chain file must hold, by path.
pub(crate) type Expected = HashMap<String, Want>;

/// A chain checked against its `.dat`.
#[derive(Debug)]
pub(crate) struct Checked {
    /// What each file must hold.
    pub expected: Expected,
    /// Trailing files the `.dat` does not list but their `.index` shows to continue the
    /// chain (an interrupted backup renamed them into place before writing their line).
    pub unlisted: Vec<String>,
}

/// Refuses a chain that does not start with a full backup (its full backup was deleted, so
/// the oldest file left is an incremental): concatenated, it would not be a FileStorage.
pub(crate) fn check_starts_full(repository: &str, chain: &[ChainFile]) -> Result<()> {
    match chain.first() {
        Some(first) if !first.kind.is_full() => Err(Error::NoFullBackup {
            first: first.path.clone(),
            repository: repository.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Refuses a full backup whose first bytes are not a FileStorage magic. A file that cannot
/// be read here is left to the restore, which reports why.
pub(crate) fn check_magic(first: &ChainFile) -> Result<()> {
    let Some(head) = first_bytes(first, 4) else {
        return Ok(());
    };
    if [zfs_format::Magic::Fs30, zfs_format::Magic::Fs21]
        .iter()
        .any(|m| head == m.bytes())
    {
        return Ok(());
    }
    Err(Error::NotFileStorage {
        path: first.path.clone(),
        found: crate::error::py_bytes_repr(&head),
    })
}

/// The first `n` uncompressed bytes of a chain file (fewer if it is shorter), or `None` if
/// it cannot be read.
fn first_bytes(c: &ChainFile, n: usize) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    let read = read_uncompressed(&c.path, c.kind.is_gzip(), &mut |b| {
        head.extend_from_slice(&b[..b.len().min(n - head.len())]);
        if head.len() == n {
            // Enough: stop reading (this error is never shown).
            return Err(Error::Interrupted);
        }
        Ok(())
    });
    (read.is_ok() || head.len() == n).then_some(head)
}

/// Checks the chain against the `.dat`: no hole, no file from another chain, contiguous
/// positions, plain files of the recorded size. Trailing files after every listed one are
/// taken when their `.index` (written before the data file) says the source ended exactly
/// where they end: what a backup killed between its data file and its `.dat` line leaves
/// (Python's restore takes them too). Any other unlisted file is refused.
pub(crate) fn check_against_dat(
    repository: &str,
    chain: &[ChainFile],
    lines: &[DatLine],
    when: &str,
) -> Result<Checked> {
    let dat_name = repo::dat_path_of(&chain[0]);
    let mut expected = Expected::new();
    let mut unlisted = Vec::new();
    let by_name: HashMap<&str, &DatLine> = lines.iter().map(|l| (l.basename(), l)).collect();
    let mut next_start = 0u64;
    for (i, c) in chain.iter().enumerate() {
        let Some(line) = by_name.get(c.name.as_str()) else {
            // Every line is taken by the files before this one (so the rest are unlisted
            // too): a backup run stopped between renaming its data file into place and
            // writing its line, or files of another chain.
            let trailing = i > 0 && i - unlisted.len() == lines.len();
            if let Some(size) = trailing.then(|| continues(c, next_start)).flatten() {
                expected.insert(c.path.clone(), Want { size, md5: None });
                unlisted.push(c.path.clone());
                next_start += size;
                continue;
            }
            return Err(Error::BrokenChain(match chain[..i].last() {
                Some(before) if trailing => format!(
                    "{} is not listed in {dat_name}: a backup run was interrupted before writing its line. \
                     The next backup of the source adds the line if the file matches it; \
                     -D {} restores the state before it",
                    c.path,
                    before.root()
                ),
                _ => format!(
                    "{} is not listed in {dat_name}: the repository mixes files of different full backups (was a newer full backup deleted?)",
                    c.path
                ),
            }));
        };
        if !unlisted.is_empty() {
            return Err(Error::BrokenChain(format!(
                "{} is not listed in {dat_name}, but {} after it is: the repository mixes files of different chains",
                unlisted[0], c.path
            )));
        }
        if line.start != next_start {
            return Err(Error::BrokenChain(format!(
                "{} starts at {} but the chain before it ends at {next_start}: a backup file is missing",
                c.path, line.start
            )));
        }
        next_start = line.end;
        if !c.kind.is_gzip() {
            let size = zfs_files::regular_len(std::path::Path::new(&c.path))?;
            if size != line.end - line.start {
                return Err(Error::BrokenChain(format!(
                    "{} is {size} bytes, should be {} bytes (truncated?)",
                    c.path,
                    line.end - line.start
                )));
            }
        }
        expected.insert(
            c.path.clone(),
            Want {
                size: line.end - line.start,
                md5: Some(line.md5.clone()),
            },
        );
    }
    for l in lines {
        let name = l.basename();
        let listed_before = name.get(..19).is_some_and(|root| root <= when);
        if listed_before && !chain.iter().any(|c| c.name == name) {
            return Err(Error::BrokenChain(format!(
                "{} is listed in {dat_name} but missing from the repository",
                crate::names::join(repository, name)
            )));
        }
    }
    Ok(Checked { expected, unlisted })
}

/// The uncompressed size of chain file `c` when its `.index` says the source ended right
/// after it, that is at `start` plus that size; `None` otherwise (no `.index`, unreadable,
/// another end).
fn continues(c: &ChainFile, start: u64) -> Option<u64> {
    let index = format!("{}.index", crate::names::strip_ext(&c.path));
    let bytes = std::fs::read(index).ok()?;
    let (pos, _) = zfs_format::index_file::load_index(&bytes).ok()?;
    let size = if c.kind.is_gzip() {
        let mut n = 0u64;
        read_uncompressed(&c.path, true, &mut |b| {
            n += b.len() as u64;
            Ok(())
        })
        .ok()?;
        n
    } else {
        zfs_files::regular_len(std::path::Path::new(&c.path)).ok()?
    };
    (start.checked_add(size) == Some(pos)).then_some(size)
}

/// Reads every file of the chain once, as a restore would, without writing anything: each
/// gzip stream must be intact, and each file must have the size and MD5 that `expected`
/// records for it (when it records one). Returns the size of the restored file.
pub(crate) fn read_through(
    chain: &[ChainFile],
    expected: Option<&Expected>,
    ticker: &Ticker<'_>,
) -> Result<u64> {
    let mut total = 0u64;
    for c in chain {
        let want = expected.and_then(|e| e.get(&c.path));
        let mut h = Md5::new();
        let mut n = 0u64;
        read_uncompressed(&c.path, c.kind.is_gzip(), &mut |b| {
            if want.is_some() {
                h.update(b);
            }
            n += b.len() as u64;
            ticker.advance(b.len() as u64)
        })?;
        if let Some(want) = want {
            if n != want.size {
                return Err(Error::WrongSize {
                    path: c.path.clone(),
                    found: n,
                    expected: want.size,
                    when: "",
                });
            }
            let md5 = h.hex();
            if let Some(sum) = want.md5.as_ref().filter(|sum| **sum != md5) {
                return Err(Error::WrongChecksum {
                    path: c.path.clone(),
                    found: md5,
                    expected: sum.clone(),
                    when: "",
                });
            }
        }
        total += n;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::Kind;

    fn file(dir: &std::path::Path, name: &str, bytes: &[u8]) -> ChainFile {
        std::fs::write(dir.join(name), bytes).expect("write");
        ChainFile {
            path: dir.join(name).to_str().expect("utf8").to_string(),
            name: name.to_string(),
            kind: crate::names::parse_data_name(name).expect("a data name").1,
        }
    }

    #[test]
    fn a_chain_must_start_with_a_full_backup_holding_a_filestorage() {
        let d = tempfile::tempdir().expect("tempdir");
        let full = file(d.path(), "2010-05-14-02-03-04.fs", b"FS30rest");
        let delta = file(d.path(), "2010-05-14-03-03-04.deltafs", b"more");
        check_starts_full("repo", &[full.clone(), delta.clone()]).expect("full first");
        check_magic(&full).expect("FS30");
        let e = check_starts_full("repo", std::slice::from_ref(&delta)).expect_err("no full");
        assert!(e.to_string().contains("no full backup precedes it"), "{e}");
        let bad = file(d.path(), "2010-05-14-04-03-04.fs", b"AB");
        let e = check_magic(&bad).expect_err("no magic");
        assert!(
            e.to_string()
                .ends_with("starts with b'AB', not FS30 or FS21"),
            "{e}"
        );
        let mut gz = Vec::new();
        crate::gz::gzip_parallel(b"FS21 and more", 6, &mut gz, &zfs_format::NoProgress)
            .expect("gzip");
        let z = file(d.path(), "2010-05-14-05-03-04.fsz", &gz);
        assert_eq!(z.kind, Kind::FullGz);
        check_magic(&z).expect("FS21 inside gzip");
        // Unreadable here: left to the restore, which says why.
        let broken = file(d.path(), "2010-05-14-06-03-04.fsz", b"XX");
        check_magic(&broken).expect("not judged");
    }

    #[test]
    fn reading_through_checks_sizes_sums_and_gzip() {
        let d = tempfile::tempdir().expect("tempdir");
        let full = file(d.path(), "2010-05-14-02-03-04.fs", b"FS30abc");
        let mut gz = Vec::new();
        crate::gz::gzip_parallel(b"defg", 6, &mut gz, &zfs_format::NoProgress).expect("gzip");
        let delta = file(d.path(), "2010-05-14-03-03-04.deltafsz", &gz);
        let chain = [full.clone(), delta.clone()];
        let ticker = crate::Hooks::silent();
        let ticker = ticker.ticker();
        assert_eq!(read_through(&chain, None, &ticker).expect("read"), 11);
        let want = |size, bytes: &[u8]| Want {
            size,
            md5: Some(crate::md5::md5_hex(bytes)),
        };
        let mut exp = Expected::new();
        exp.insert(full.path.clone(), want(7, b"FS30abc"));
        exp.insert(delta.path.clone(), want(4, b"defg"));
        assert_eq!(read_through(&chain, Some(&exp), &ticker).expect("read"), 11);
        exp.insert(delta.path.clone(), want(4, b"defX"));
        let e = read_through(&chain, Some(&exp), &ticker).expect_err("sum");
        assert!(matches!(e, Error::WrongChecksum { .. }), "{e}");
        let cut = &gz[..gz.len() - 6];
        std::fs::write(&delta.path, cut).expect("write");
        assert!(read_through(&chain, None, &ticker).is_err());
    }
}
