//! The repository: listing its data files, choosing the chain that makes a state
//! (`find_files`), its `.dat` file, deleting old backups (`-k`), the lock of its writer, and
//! the cleaning of what killed runs left.

use std::time::Duration;

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

/// The names of the data files in `repo`, ascending. A file another user put there (one
/// owned by neither us, the repository's owner nor root) is no backup of ours and is left
/// out: a planted file cannot pose as a backup (Python repozo takes it).
pub fn data_files(repo: &str) -> Result<Vec<String>> {
    // An empty repository argument is no directory (Python's `os.listdir('')` fails too).
    let rd = std::fs::read_dir(repo).map_err(|e| Error::io(repo, e))?;
    let trusted = Trusted::of(repo);
    let mut names = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(repo, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            if parse_data_name(&name).is_some() && trusted.owns(&join(repo, &name)) {
                names.push(name);
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Whose files in a repository count as its backups: ours, its owner's, root's.
pub(crate) struct Trusted {
    uids: [u32; 3],
}

impl Trusted {
    /// The trusted owners of files in `repo`.
    pub(crate) fn of(repo: &str) -> Trusted {
        use std::os::unix::fs::MetadataExt as _;
        let dir = if repo.is_empty() { "." } else { repo };
        let us = rustix::process::geteuid().as_raw();
        let owner = std::fs::metadata(dir).map_or(us, |m| m.uid());
        Trusted {
            uids: [us, owner, 0],
        }
    }

    /// Whether the file at `path` (not followed) belongs to a trusted owner; a missing
    /// file does not.
    pub(crate) fn owns(&self, path: &str) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::symlink_metadata(path).is_ok_and(|m| self.uids.contains(&m.uid()))
    }
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
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DatLine {
    /// The data file's path as recorded.
    #[cfg_attr(feature = "serde", serde(skip))]
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

/// Writes `bytes` to `path` as a new file (zfs-files: private temporary, fsync, rename,
/// fsync of the directory) with permission bits `mode`.
pub fn write_atomically(path: &str, bytes: &[u8], mode: u32) -> Result<()> {
    zfs_files::write_file(zfs_files::OutputSpec::new(path).mode(mode), |w| {
        w.write_all(bytes)
    })
    .map_err(Error::from)
}

/// Appends a line to a `.dat` (creating it if missing, as Python's mode `a`), atomically:
/// the old content plus the line are written to a new file (permission bits `mode`) that
/// replaces it. A symlink at the `.dat` name is refused, never read through.
pub fn append_dat(path: &str, line: &DatLine, mode: u32) -> Result<()> {
    Ok(dat_with_line(path, line, mode)?.commit()?)
}

/// The `.dat` at `path` with `line` appended, written to a private temporary (fsynced, mode
/// `mode`) that replaces the `.dat` once committed. A symlink at the `.dat` name is
/// refused, never read through.
pub(crate) fn dat_with_line(path: &str, line: &DatLine, mode: u32) -> Result<zfs_files::Output> {
    let mut bytes = match read_nofollow(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(Error::Files(zfs_files::Error::NotRegular {
                path: path.into(),
                kind: "a symlink",
            }))
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    bytes.extend_from_slice(line.to_line().as_bytes());
    let mut out = zfs_files::OutputSpec::new(path).mode(mode).create()?;
    std::io::Write::write_all(&mut out, &bytes)
        .and_then(|()| out.file().sync_all())
        .map_err(|e| Error::io(path, e))?;
    Ok(out)
}

/// The bytes of the file at `path`, refusing a symlink (`ELOOP`) and never blocking on a
/// FIFO.
fn read_nofollow(path: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::from_raw_os_error(
            rustix::io::Errno::INVAL.raw_os_error(),
        ));
    }
    let mut out = Vec::new();
    f.read_to_end(&mut out)?;
    Ok(out)
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

/// True for the names repozo gives files in a repository: data files, `.index`, `.dat`.
fn is_repository_name(name: &str) -> bool {
    parse_data_name(name).is_some()
        || name.get(..19).is_some_and(|root| {
            Stamp::parse(root).is_some() && matches!(&name[19..], ".index" | ".dat")
        })
}

/// Removes the temporary files that killed runs of ours left in the repository (the
/// zfs-files temporaries of data, `.index` and `.dat` files, and the `.NAME.tmp.PID` names
/// of earlier versions) whose writer is gone. Python's own `tmp.tmp` is left alone. Call
/// it under the exclusive lock. Returns the names removed.
pub fn remove_stale_temps(repo: &str) -> Vec<String> {
    let dir = std::path::Path::new(if repo.is_empty() { "." } else { repo });
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut targets = std::collections::BTreeSet::new();
    for entry in rd.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let target = name
            .strip_prefix('.')
            .and_then(|rest| rest.split_once(".tmp"))
            .map(|(target, _)| target);
        if let Some(t) = target.filter(|t| is_repository_name(t)) {
            targets.insert(t.to_string());
        }
    }
    let mut removed: Vec<String> = targets
        .iter()
        .flat_map(|t| zfs_files::remove_stale_temps(dir, std::ffi::OsStr::new(t)))
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .collect();
    removed.sort();
    removed
}

/// Removes what a full backup killed before its data file was renamed into place leaves
/// behind (a full backup writes its `.dat`, then its `.index`, then its data file): a `.dat`
/// of one line that describes a full backup that does not exist, and the `.index` of the
/// same stamp when no data file has it. Neither means anything to a restore (ours or
/// Python's). Other files are left as they are, an `.index` without its data file among
/// them (an incremental killed before its data file, or a data file someone deleted):
/// harmless, and not ours to judge. Call it under the exclusive lock. Returns the names
/// removed.
pub fn remove_orphans(repo: &str) -> Result<Vec<String>> {
    let dir = if repo.is_empty() { "." } else { repo };
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(repo, e))?;
    let names: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    let has_data = |root: &str| {
        names
            .iter()
            .any(|n| parse_data_name(n).is_some_and(|(r, _)| r == root))
    };
    let mut removed = Vec::new();
    for name in &names {
        let Some(root) = name
            .strip_suffix(".dat")
            .filter(|r| Stamp::parse(r).is_some())
        else {
            continue;
        };
        if has_data(root) || !is_killed_full_dat(&join(repo, name), root) {
            continue;
        }
        if std::fs::remove_file(join(repo, name)).is_ok() {
            removed.push(name.clone());
        }
        let index = format!("{root}.index");
        if names.contains(&index) && std::fs::remove_file(join(repo, &index)).is_ok() {
            removed.push(index);
        }
    }
    if !removed.is_empty() {
        sync_dir(repo);
    }
    removed.sort();
    Ok(removed)
}

/// True when the `.dat` at `path` holds exactly the one line a full backup stamped `root`
/// writes before its data file is renamed into place.
fn is_killed_full_dat(path: &str, root: &str) -> bool {
    let Ok(bytes) = read_nofollow(path) else {
        return false;
    };
    match parse_dat(path, &bytes).as_deref() {
        Ok([line]) => {
            line.start == 0
                && [Kind::Full, Kind::FullGz]
                    .iter()
                    .any(|k| line.basename() == format!("{root}{}", k.ext()))
        }
        _ => false,
    }
}

/// Makes renames and deletions in `dir` durable (best effort).
pub fn sync_dir(dir: &str) {
    let dir = if dir.is_empty() { "." } else { dir };
    let _ = zfs_files::sync_dir(std::path::Path::new(dir));
}

/// The repository's lock file: hidden (Python repozo and `find_files` pass it by), mode
/// 0600 and owned by the user who makes the backups, so no other user can take it. A
/// backup creates it and removes it when it is done: another user who could open a lock
/// file left behind (its mode widened) holds nothing the next backup uses.
pub const LOCK_FILE: &str = ".repozo.lock";

/// How long a run waits for another run's lock unless told otherwise.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(600);

/// A lock on a repository, released when dropped (a backup's lock file is removed then).
#[derive(Debug)]
pub struct RepoLock {
    lock: Option<zfs_files::Lock>,
    remove: Option<std::path::PathBuf>,
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        // Removed while still held: a run waiting on this file finds it gone and makes a
        // new one.
        if let Some(p) = self.remove.take() {
            let _ = std::fs::remove_file(p);
        }
        self.lock.take();
    }
}

/// Locks the repository: exclusive for a backup, shared for restore and verify, through
/// [`LOCK_FILE`]. A backup creates the lock file (0600), fails if another user owns it,
/// and removes it when done. Restore and verify never create it: they share it while it
/// exists (a backup is running) and they can open it, and go on without a lock otherwise
/// (no backup, or a user who may only read the repository), so nobody but the backup's
/// user can block a backup. When another run holds the lock, `waiting` is told who (once),
/// and the call waits up to `wait`, then fails naming the holder. File systems without
/// `flock` go on unlocked, as Python repozo always does.
pub fn lock(
    repo: &str,
    exclusive: bool,
    wait: Duration,
    waiting: &mut dyn FnMut(&str),
) -> Result<RepoLock> {
    // The repository must be a directory we can list: Python's error text otherwise.
    std::fs::read_dir(repo).map_err(|e| Error::io(repo, e))?;
    let path = join(repo, LOCK_FILE);
    let path = std::path::Path::new(&path);
    let unlocked = RepoLock {
        lock: None,
        remove: None,
    };
    if !exclusive {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_file() && may_open(&m) => {}
            _ => return Ok(unlocked),
        }
        let opts = zfs_files::LockOptions {
            exclusive: false,
            wait,
            mode: 0o600,
            private: false,
            holder: None,
        };
        return match zfs_files::Lock::acquire(path, &opts, waiting) {
            Ok(l) => Ok(RepoLock {
                lock: Some(l),
                remove: None,
            }),
            Err(e) if lock_unsupported(&e) || e.io_error().is_some() => Ok(unlocked),
            Err(e) => Err(e.into()),
        };
    }
    // A lock file of ours is a regular file of a trusted owner, mode 0600. Anything else at
    // its name was put there or opened up by someone else (who may hold a lock on it): it
    // goes, and the backup makes its own.
    let trusted = Trusted::of(repo);
    let planted = std::fs::symlink_metadata(path).is_ok_and(|m| {
        use std::os::unix::fs::PermissionsExt as _;
        !m.is_file()
            || !trusted.owns(&path.to_string_lossy())
            || m.permissions().mode() & 0o077 != 0
    });
    if planted {
        let _ = std::fs::remove_file(path);
    }
    let start = std::time::Instant::now();
    let mut told = false;
    loop {
        let left = wait.saturating_sub(start.elapsed());
        let mut on_wait = |holder: &str| {
            if !told {
                told = true;
                waiting(holder);
            }
        };
        let l = match zfs_files::Lock::acquire(
            path,
            &zfs_files::LockOptions::private(left),
            &mut on_wait,
        ) {
            Ok(l) => l,
            Err(e) if lock_unsupported(&e) => return Ok(unlocked),
            Err(zfs_files::Error::Locked { path, holder, .. }) => {
                return Err(Error::Files(zfs_files::Error::Locked {
                    path,
                    holder,
                    waited: start.elapsed(),
                }))
            }
            Err(e) => return Err(e.into()),
        };
        // The holder we waited for removed the file: ours is a lock on nothing. Again,
        // on the file the path names now.
        let held = zfs_files::FileId::of_file(l.file()).map_err(|e| Error::io(path, e))?;
        if zfs_files::FileId::of_path(path).ok().flatten() == Some(held) {
            return Ok(RepoLock {
                lock: Some(l),
                remove: Some(path.to_path_buf()),
            });
        }
    }
}

/// Whether this process may open a lock file of `meta` for a shared lock: its owner, or
/// root.
fn may_open(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let us = rustix::process::geteuid();
    us.is_root() || meta.uid() == us.as_raw()
}

/// `flock` not supported by the file system.
fn lock_unsupported(e: &zfs_files::Error) -> bool {
    matches!(e, zfs_files::Error::Io { op: "locking", .. })
        && e.io_error()
            .and_then(std::io::Error::raw_os_error)
            .is_some_and(|c| {
                [
                    rustix::io::Errno::NOLCK,
                    rustix::io::Errno::OPNOTSUPP,
                    rustix::io::Errno::NOSYS,
                ]
                .iter()
                .any(|x| x.raw_os_error() == c)
            })
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

    fn names_in(dir: &Path) -> Vec<String> {
        let mut left: Vec<_> = std::fs::read_dir(dir)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
            .collect();
        left.sort();
        left
    }

    #[test]
    fn stale_temporaries_of_ours_are_removed() {
        let t = tempfile::tempdir().expect("tempdir");
        // pids above the kernel's pid_max: their writers are gone.
        touch(
            t.path(),
            &[
                ".2010-05-14-10-08-03.fsz.tmp.2147483632",
                ".2010-05-14-10-08-03.index.tmp.2147483632.99",
                ".2010-05-14-10-08-03.dat.tmp-2147483632-5",
                ".2010-05-14-10-08-04.deltafs.tmp-2147483633-0",
                "tmp.tmp",
                ".hidden.tmp.1",
                "2010-05-14-10-08-03.fsz",
            ],
        );
        // A temporary of a live writer (this process) stays.
        let ours = format!(".2010-05-14-10-08-05.fs.tmp-{}-7", std::process::id());
        touch(t.path(), &[ours.as_str()]);
        let repo = t.path().to_str().expect("utf8");
        assert_eq!(remove_stale_temps(repo).len(), 4);
        let mut want = vec![
            ".hidden.tmp.1".to_string(),
            ours.clone(),
            "2010-05-14-10-08-03.fsz".into(),
            "tmp.tmp".into(),
        ];
        want.sort();
        assert_eq!(names_in(t.path()), want);
    }

    #[test]
    fn what_a_killed_full_backup_left_before_its_data_file_is_removed() {
        let t = tempfile::tempdir().expect("tempdir");
        let repo = t.path().to_str().expect("utf8");
        let line = |name: &str, start: u64| format!("{repo}/{name} {start} 10 00\n");
        // A complete chain stays as it is.
        touch(
            t.path(),
            &["2010-05-14-10-00-00.fs", "2010-05-14-10-00-00.index"],
        );
        std::fs::write(
            t.path().join("2010-05-14-10-00-00.dat"),
            line("2010-05-14-10-00-00.fs", 0),
        )
        .expect("write");
        // A full backup killed after its .dat and .index: both go.
        touch(t.path(), &["2010-05-14-11-00-00.index"]);
        std::fs::write(
            t.path().join("2010-05-14-11-00-00.dat"),
            line("2010-05-14-11-00-00.fsz", 0),
        )
        .expect("write");
        // Killed after its .dat only: it goes.
        std::fs::write(
            t.path().join("2010-05-14-11-30-00.dat"),
            line("2010-05-14-11-30-00.fs", 0),
        )
        .expect("write");
        // An .index without its data file (an incremental killed before it, or a data file
        // someone deleted) stays: harmless, and not ours to judge.
        touch(t.path(), &["2010-05-14-12-00-00.index"]);
        // A .dat of several lines whose full backup was deleted stays (it is a record).
        std::fs::write(
            t.path().join("2010-05-14-09-00-00.dat"),
            line("2010-05-14-09-00-00.fs", 0) + &line("2010-05-14-09-30-00.deltafs", 10),
        )
        .expect("write");
        touch(t.path(), &["2010-05-14-09-30-00.deltafs"]);
        let removed = remove_orphans(repo).expect("clean");
        assert_eq!(
            removed,
            [
                "2010-05-14-11-00-00.dat",
                "2010-05-14-11-00-00.index",
                "2010-05-14-11-30-00.dat"
            ]
        );
        assert_eq!(
            names_in(t.path()),
            [
                "2010-05-14-09-00-00.dat",
                "2010-05-14-09-30-00.deltafs",
                "2010-05-14-10-00-00.dat",
                "2010-05-14-10-00-00.fs",
                "2010-05-14-10-00-00.index",
                "2010-05-14-12-00-00.index"
            ]
        );
    }

    #[test]
    fn a_second_run_waits_for_the_lock_boundedly() {
        let t = tempfile::tempdir().expect("tempdir");
        let repo = t.path().to_str().expect("utf8").to_string();
        let wait = Duration::from_secs(30);
        let first = lock(&repo, true, wait, &mut |_| {
            panic!("the first run does not wait")
        })
        .expect("lock");
        let lock_file = t.path().join(LOCK_FILE);
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&lock_file)
                .expect("meta")
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        let waited = std::sync::Mutex::new(String::new());
        std::thread::scope(|s| {
            let second = s.spawn(|| {
                lock(&repo, false, wait, &mut |h| {
                    *waited.lock().expect("mutex") = h.to_string()
                })
            });
            std::thread::sleep(Duration::from_millis(300));
            drop(first);
            second
                .join()
                .expect("no panic")
                .expect("locked after the first run");
        });
        let holder = waited.lock().expect("mutex").clone();
        assert!(
            holder.starts_with(&format!("process {}", std::process::id())),
            "{holder}"
        );
        assert!(!lock_file.exists(), "a backup removes its lock file");
        // Readers share a lock file while it exists (here one a killed backup left), and a
        // writer waits for them, but not forever, and names the file.
        std::fs::write(&lock_file, b"").expect("write");
        std::fs::set_permissions(&lock_file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
        let a = lock(&repo, false, wait, &mut |_| panic!("readers share")).expect("lock");
        let _b = lock(&repo, false, wait, &mut |_| panic!("readers share")).expect("lock");
        let e = lock(&repo, true, Duration::from_millis(200), &mut |_| {}).expect_err("held");
        assert!(e.to_string().contains("is locked by"), "{e}");
        assert!(e.to_string().contains(LOCK_FILE), "{e}");
        drop(a);
    }

    #[test]
    fn readers_never_create_the_lock_file() {
        let t = tempfile::tempdir().expect("tempdir");
        let repo = t.path().to_str().expect("utf8");
        let _r = lock(repo, false, Duration::ZERO, &mut |_| {}).expect("unlocked read");
        assert!(names_in(t.path()).is_empty());
        // A missing repository: Python's error text.
        let e =
            lock(&format!("{repo}/none"), true, Duration::ZERO, &mut |_| {}).expect_err("missing");
        assert_eq!(
            e.to_string(),
            format!("[Errno 2] No such file or directory: '{repo}/none'")
        );
    }

    #[test]
    fn a_lock_file_someone_else_made_or_opened_up_is_replaced() {
        let t = tempfile::tempdir().expect("tempdir");
        let victim = t.path().join("victim");
        std::fs::write(&victim, b"keep").expect("write");
        let lock_file = t.path().join(LOCK_FILE);
        std::os::unix::fs::symlink(&victim, &lock_file).expect("symlink");
        let repo = t.path().to_str().expect("utf8");
        // A reader goes on unlocked; a writer replaces the symlink, never follows it.
        lock(repo, false, Duration::ZERO, &mut |_| {}).expect("read");
        let l = lock(repo, true, Duration::ZERO, &mut |_| {}).expect("write");
        assert_eq!(std::fs::read(&victim).expect("read"), b"keep");
        assert!(std::fs::symlink_metadata(&lock_file)
            .expect("meta")
            .is_file());
        drop(l);
        assert!(!lock_file.exists(), "a backup removes its lock file");
        // A lock file left behind and opened up (0644), held by whoever opened it: not ours
        // to wait for.
        std::fs::write(&lock_file, b"").expect("write");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&lock_file, std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let other = std::fs::File::open(&lock_file).expect("open");
        other.lock_shared().expect("flock");
        let _l = lock(repo, true, Duration::ZERO, &mut |_| panic!("no wait"))
            .expect("a fresh lock file");
    }

    #[test]
    fn a_writer_waiting_for_a_lock_file_that_goes_takes_the_next_one() {
        let t = tempfile::tempdir().expect("tempdir");
        let repo = t.path().to_str().expect("utf8").to_string();
        let first = lock(&repo, true, Duration::ZERO, &mut |_| {}).expect("lock");
        std::thread::scope(|s| {
            let second = s.spawn(|| lock(&repo, true, Duration::from_secs(30), &mut |_| {}));
            std::thread::sleep(Duration::from_millis(300));
            drop(first);
            let second = second.join().expect("no panic").expect("locked");
            // It holds the file the path names now, so a third run waits for it.
            let e = lock(&repo, true, Duration::from_millis(200), &mut |_| {})
                .expect_err("held by the second");
            assert!(e.to_string().contains("is locked by"), "{e}");
            drop(second);
        });
        assert!(names_in(t.path()).is_empty());
    }
}
