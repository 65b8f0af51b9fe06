//! The repository: listing its data files, choosing the chain that makes a state
//! (`find_files`), its `.dat` file, deleting old backups (`-k`), and a lock on the directory.

use crate::error::{Error, Result};
use crate::names::{basename, join, parse_data_name, strip_ext, Kind, Stamp};

/// A data file of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainFile {
    /// Its path as repozo writes it: the repository argument joined with the name.
    pub path: String,
    /// Its name in the repository.
    pub name: String,
    /// Its kind (full or incremental, gzipped or not).
    pub kind: Kind,
}

impl ChainFile {
    /// The name without extension (the stamp).
    pub fn root(&self) -> &str {
        self.name.get(..19).unwrap_or(&self.name)
    }
}

/// The names of the data files in `repo`, ascending.
pub fn data_files(repo: &str) -> Result<Vec<String>> {
    // An empty repository argument is no directory (Python's `os.listdir('')` fails too).
    let rd = std::fs::read_dir(repo).map_err(|e| Error::io(repo, e))?;
    let mut names = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(repo, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            if parse_data_name(&name).is_some() {
                names.push(name);
            }
        }
    }
    names.sort();
    Ok(names)
}

/// The chain that makes the state as of `when` (a stamp or any prefix of one), oldest first:
/// the newest full backup whose stamp is `<= when` and every newer data file `<= when`.
pub fn find_files(repo: &str, when: &str) -> Result<Vec<ChainFile>> {
    let mut chain = Vec::new();
    for name in data_files(repo)?.into_iter().rev() {
        let Some((root, kind)) = parse_data_name(&name) else {
            continue;
        };
        if root > when {
            continue;
        }
        chain.push(ChainFile {
            path: join(repo, &name),
            name: name.clone(),
            kind,
        });
        if kind.is_full() {
            break;
        }
    }
    chain.reverse();
    Ok(chain)
}

/// The newest stamp of any data file in the repository.
pub fn newest_stamp(repo: &str) -> Result<Option<Stamp>> {
    Ok(data_files(repo)?
        .iter()
        .filter_map(|n| parse_data_name(n).and_then(|(root, _)| Stamp::parse(root)))
        .max())
}

/// One line of a `.dat` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatLine {
    /// The data file's path as recorded.
    pub path: String,
    /// Start offset in the source.
    pub start: u64,
    /// End offset in the source.
    pub end: u64,
    /// MD5 (hex) of the uncompressed bytes.
    pub md5: String,
}

impl DatLine {
    /// The line's text, with its newline.
    pub fn to_line(&self) -> String {
        format!("{} {} {} {}\n", self.path, self.start, self.end, self.md5)
    }
    /// The recorded file's base name.
    pub fn basename(&self) -> &str {
        basename(&self.path)
    }
}

/// Parses a `.dat` file's text; `dat_path` is used in messages. Every line must hold exactly
/// four fields, as Python requires (it crashes otherwise; we report the line).
pub fn parse_dat(dat_path: &str, text: &[u8]) -> Result<Vec<DatLine>> {
    let bad = |line: usize, t: &str| Error::BadDatLine {
        path: dat_path.to_string(),
        line,
        text: t.to_string(),
    };
    let text = std::str::from_utf8(text).map_err(|e| Error::BadDatLine {
        path: dat_path.to_string(),
        line: 1 + text[..e.valid_up_to()]
            .iter()
            .filter(|&&c| c == b'\n')
            .count(),
        text: "(not UTF-8)".into(),
    })?;
    let mut out = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let content = line.strip_suffix('\n').unwrap_or(line);
        let content = content.strip_suffix('\r').unwrap_or(content);
        let fields: Vec<&str> = content.split_whitespace().collect();
        let [path, start, end, md5] = fields[..] else {
            return Err(bad(i + 1, content));
        };
        let num = |s: &str| {
            s.parse::<u64>()
                .ok()
                .filter(|_| s.bytes().all(|c| c.is_ascii_digit()))
        };
        let (Some(start), Some(end)) = (num(start), num(end)) else {
            return Err(bad(i + 1, content));
        };
        if end < start {
            return Err(bad(i + 1, content));
        }
        out.push(DatLine {
            path: path.to_string(),
            start,
            end,
            md5: md5.to_string(),
        });
    }
    Ok(out)
}

/// The `.dat` path of a chain (the full backup's root + `.dat`).
pub fn dat_path_of(first: &ChainFile) -> String {
    format!("{}.dat", strip_ext(&first.path))
}

/// Reads and parses a `.dat`; `Ok(None)` when it does not exist.
pub fn read_dat(path: &str) -> Result<Option<Vec<DatLine>>> {
    match std::fs::read(path) {
        Ok(bytes) => parse_dat(path, &bytes).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Writes `bytes` to `path` atomically: a unique temporary name beside it, fsync, rename,
/// fsync of the directory.
pub fn write_atomically(path: &str, bytes: &[u8]) -> Result<()> {
    zfs_files::write_file(zfs_files::OutputSpec::new(path), |w| w.write_all(bytes))
        .map_err(|e| Error::io(path, e.into_io()))
}

/// Appends a line to a `.dat` (creating it if missing, as Python's mode `a`), atomically:
/// the old content plus the line are written under a temporary name and renamed over it.
pub fn append_dat(path: &str, line: &DatLine) -> Result<()> {
    let mut bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(path, e)),
    };
    bytes.extend_from_slice(line.to_line().as_bytes());
    write_atomically(path, &bytes)
}

/// `-k`: keeps the newest full backup and deletes every other data file with its `.dat` and
/// `.index`. Calls `log` with repozo's message before each deletion; returns the data files
/// removed.
pub fn kill_old(repo: &str, log: &dyn Fn(&str)) -> Result<Vec<String>> {
    let names = data_files(repo)?;
    let Some(keep) = names
        .iter()
        .rev()
        .find(|n| parse_data_name(n).is_some_and(|(_, k)| k.is_full()))
        .cloned()
    else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    for name in names.iter().filter(|n| **n != keep) {
        log(&format!(
            "removing old backup file {name} (and .dat / .index)"
        ));
        let root = strip_ext(name);
        let _ = std::fs::remove_file(join(repo, &format!("{root}.dat")));
        let _ = std::fs::remove_file(join(repo, &format!("{root}.index")));
        let path = join(repo, name);
        std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        removed.push(name.clone());
    }
    sync_dir(repo);
    Ok(removed)
}

/// Removes temporary files a killed run of ours left in the repository (`.<name>.tmp.<…>`
/// for a data, `.index` or `.dat` file). Call it only under the exclusive lock: then no
/// other run of ours is writing them. Python's own `tmp.tmp` is left alone. Returns the
/// names removed.
pub fn remove_stale_temps(repo: &str) -> Vec<String> {
    let dir = if repo.is_empty() { "." } else { repo };
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in rd.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some((target, _)) = name
            .strip_prefix('.')
            .and_then(|rest| rest.split_once(".tmp."))
        else {
            continue;
        };
        let ours = parse_data_name(target).is_some()
            || target.get(..19).is_some_and(|root| {
                Stamp::parse(root).is_some() && matches!(&target[19..], ".index" | ".dat")
            });
        if ours && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(name);
        }
    }
    removed.sort();
    removed
}

/// Makes renames and deletions in `dir` durable (best effort).
pub fn sync_dir(dir: &str) {
    let dir = if dir.is_empty() { "." } else { dir };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A lock on a repository directory, released when dropped.
pub struct RepoLock {
    _dir: std::fs::File,
}

/// Locks the repository directory (`flock` on the directory itself, so no file is added):
/// exclusive for a backup, shared for restore and verify. When another run holds it,
/// `waiting` is called once and the call blocks until the lock is free.
pub fn lock(repo: &str, exclusive: bool, waiting: &dyn Fn()) -> Result<RepoLock> {
    use rustix::fs::{flock, FlockOperation};
    let f = std::fs::File::open(repo).map_err(|e| Error::io(repo, e))?;
    let (try_op, op) = if exclusive {
        (
            FlockOperation::NonBlockingLockExclusive,
            FlockOperation::LockExclusive,
        )
    } else {
        (
            FlockOperation::NonBlockingLockShared,
            FlockOperation::LockShared,
        )
    };
    match flock(&f, try_op) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            waiting();
            flock(&f, op).map_err(|e| Error::io(repo, e.into()))?;
        }
        // File systems without flock: go on unlocked, as Python repozo always does.
        Err(_) => {}
    }
    Ok(RepoLock { _dir: f })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn touch(dir: &Path, names: &[&str]) {
        for n in names {
            std::fs::write(dir.join(n), n.as_bytes()).expect("write");
        }
    }

    #[test]
    fn find_files_picks_the_newest_chain_as_of_a_date() {
        // test_repozo.py's Test_find_files case.
        let t = tempfile::tempdir().expect("tempdir");
        touch(
            t.path(),
            &[
                "2010-05-14-02-13-14.fs",
                "2010-05-14-02-13-14.dat",
                "2010-05-14-03-14-15.deltafs",
                "2010-05-14-04-15-16.deltafs",
                "2010-05-14-05-16-17.deltafs",
                "2010-05-14-12-13-14.fs",
                "2010-05-14-12-13-14.dat",
                "2010-05-14-13-14-15.deltafs",
                "2010-05-14-14-15-16.deltafs",
                "tmp.tmp",
            ],
        );
        let repo = t.path().to_str().expect("utf8");
        let got = find_files(repo, "2010-05-14-13-30-57").expect("list");
        let names: Vec<_> = got.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["2010-05-14-12-13-14.fs", "2010-05-14-13-14-15.deltafs"]
        );
        assert_eq!(got[0].path, format!("{repo}/2010-05-14-12-13-14.fs"));
        // A shortened date means "before that day".
        assert!(find_files(repo, "2010-05-14").expect("list").is_empty());
        assert_eq!(find_files(repo, "zzz").expect("list").len(), 3);
        assert!(find_files(&format!("{repo}/none"), "zzz").is_err());
        assert!(find_files(repo, "2010-05-14-12-13-14").expect("list").len() == 1);
    }

    #[test]
    fn dat_lines() {
        let got =
            parse_dat("x.dat", b"foo.fs 0 123 ABC\n/r/b.deltafs 123 130 DEF\n").expect("parse");
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1],
            DatLine {
                path: "/r/b.deltafs".into(),
                start: 123,
                end: 130,
                md5: "DEF".into()
            }
        );
        assert_eq!(got[1].basename(), "b.deltafs");
        assert_eq!(got[0].to_line(), "foo.fs 0 123 ABC\n");
        assert!(parse_dat("x.dat", b"").expect("empty").is_empty());
        for bad in [
            &b"foo.fs 0 123 ABC\n\n"[..],
            b"foo 0 x y\n",
            b"a b c\n",
            b"a 1 2 3 4\n",
            b"a 5 2 m\n",
            b"\xff\n",
        ] {
            let e = parse_dat("x.dat", bad).expect_err("garbage");
            assert!(e.to_string().starts_with("x.dat: line "), "{e}");
        }
    }

    #[test]
    fn kill_old_keeps_the_newest_full() {
        // test_repozo.py: an empty directory, or one without repozo files, is no error.
        let t = tempfile::tempdir().expect("tempdir");
        let repo = t.path().to_str().expect("utf8");
        assert!(kill_old(repo, &|_| {}).expect("empty").is_empty());
        touch(t.path(), &["notes.txt", "2010-05-14-10-09-03.deltafs"]);
        assert!(kill_old(repo, &|_| {}).expect("no full").is_empty());
        std::fs::remove_file(t.path().join("2010-05-14-10-09-03.deltafs")).expect("rm");
        // The current chain's files stay.
        touch(
            t.path(),
            &[
                "2010-05-14-10-11-03.fsz",
                "2010-05-14-10-11-03.dat",
                "2010-05-14-10-11-03.index",
            ],
        );
        assert!(kill_old(repo, &|_| {}).expect("one chain").is_empty());
        for n in [
            "2010-05-14-10-11-03.fsz",
            "2010-05-14-10-11-03.dat",
            "2010-05-14-10-11-03.index",
        ] {
            std::fs::remove_file(t.path().join(n)).expect("rm");
        }
        touch(
            t.path(),
            &[
                "2010-05-14-10-08-03.fsz",
                "2010-05-14-10-08-03.dat",
                "2010-05-14-10-08-03.index",
                "2010-05-14-10-09-03.deltafsz",
                "2010-05-14-10-09-03.index",
                "2010-05-14-10-10-03.deltafs",
                "2010-05-14-10-10-03.index",
                "2010-05-14-10-11-03.fs",
                "2010-05-14-10-11-03.dat",
                "2010-05-14-10-11-03.index",
                "notes.txt",
            ],
        );
        let repo = t.path().to_str().expect("utf8");
        let logged = std::cell::RefCell::new(Vec::new());
        let removed = kill_old(repo, &|m| logged.borrow_mut().push(m.to_string())).expect("kill");
        assert_eq!(removed.len(), 3);
        let mut left: Vec<_> = std::fs::read_dir(t.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "2010-05-14-10-11-03.dat",
                "2010-05-14-10-11-03.fs",
                "2010-05-14-10-11-03.index",
                "notes.txt"
            ]
        );
        assert_eq!(
            logged.borrow()[0],
            "removing old backup file 2010-05-14-10-08-03.fsz (and .dat / .index)"
        );
    }

    #[test]
    fn stale_temporaries_of_ours_are_removed() {
        let t = tempfile::tempdir().expect("tempdir");
        touch(
            t.path(),
            &[
                ".2010-05-14-10-08-03.fsz.tmp.1234",
                ".2010-05-14-10-08-03.index.tmp.1234.99",
                ".2010-05-14-10-08-03.dat.tmp.1234.5",
                "tmp.tmp",
                ".hidden.tmp.1",
                "2010-05-14-10-08-03.fsz",
            ],
        );
        let repo = t.path().to_str().expect("utf8");
        assert_eq!(remove_stale_temps(repo).len(), 3);
        let mut left: Vec<_> = std::fs::read_dir(t.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [".hidden.tmp.1", "2010-05-14-10-08-03.fsz", "tmp.tmp"]
        );
    }

    #[test]
    fn a_second_run_waits_for_the_lock() {
        let t = tempfile::tempdir().expect("tempdir");
        let repo = t.path().to_str().expect("utf8").to_string();
        let first = lock(&repo, true, &|| panic!("the first run does not wait")).expect("lock");
        let waited = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let second = s.spawn(|| {
                lock(&repo, false, &|| {
                    waited.store(true, std::sync::atomic::Ordering::SeqCst)
                })
            });
            std::thread::sleep(std::time::Duration::from_millis(100));
            drop(first);
            second
                .join()
                .expect("no panic")
                .expect("locked after the first run");
        });
        assert!(waited.load(std::sync::atomic::Ordering::SeqCst));
        // Shared locks do not wait for each other.
        let _a = lock(&repo, false, &|| panic!("readers share")).expect("lock");
        let _b = lock(&repo, false, &|| panic!("readers share")).expect("lock");
    }
}
