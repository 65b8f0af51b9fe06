//! The `repozo` binary on a hostile or tight file system: planted symlinks and files at
//! output names, modes of 0600 databases, outputs that are inputs, devices and FIFOs as
//! outputs, a second user on the machine (run as `nobody` through `setpriv`), a disk that
//! cannot hold the old and the new restore target, a repository without its full backup,
//! and what `-V` says where `-R` refuses.
//!
//! The tests that switch users or mount a tmpfs need root (the CI runs as root); they fail
//! with a message saying so elsewhere.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assert_cmd::cargo::CommandCargoExt as _;

mod repozo_env;
use repozo_env::{stderr, Env};

const T1: &str = "2010-05-14-02-03-04";
const T2: &str = "2010-05-14-03-03-04";
const NOW: &str = "2010-05-15-13-30-57";

/// A FileStorage of `n` transactions of about `size` bytes each, hard to compress.
fn datafs(n: u64, size: usize) -> Vec<u8> {
    let mut noise = zfs_testdata::Noise::new(0x2545_f491);
    zfs_testdata::Maker::new()
        .txns(n, |t| [(t % 11, noise.bytes(size))])
        .into_bytes()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
}

/// Every name in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|d| d.expect("entry").file_name().into_string().expect("utf8"))
        .collect();
    v.sort();
    v
}

/// A full backup at T1 of `v1` and an incremental at T2 of `v2`.
fn two_backups(e: &Env, v1: &[u8], v2: &[u8], gzip: bool) {
    for (t, v) in [(T1, v1), (T2, v2)] {
        e.write("Data.fs", v);
        let mut args = vec!["-B", "-r", "repo", "-f", "Data.fs"];
        if gzip {
            args.push("-z");
        }
        let o = e.run(t, &args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
}

fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test switches users or mounts a tmpfs: run it as root"
    );
}

/// Runs `repozo` as `nobody` (setpriv) in `e`'s directory.
fn run_as_nobody(e: &Env, env: &[(&str, &str)], args: &[&str]) -> Output {
    require_root();
    let bin = assert_cmd::cargo::cargo_bin("zodbfs-repozo");
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid",
        "nobody",
        "--regid",
        "nogroup",
        "--clear-groups",
        "--",
    ])
    .arg(bin)
    .args(args)
    .current_dir(&e.root)
    .env("REPOZO_TEST_NOW", NOW);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("setpriv")
}

/// Makes `e`'s directory reachable and readable (not writable) by other users.
fn open_to_others(e: &Env) {
    let mut p = e.root.clone();
    loop {
        let m = mode(&p);
        chmod(&p, m | 0o755);
        if !p.pop() || p == Path::new("/") || p == Path::new("/tmp") {
            break;
        }
    }
}

#[test]
fn planted_symlinks_at_output_names_change_nothing() {
    let e = Env::new();
    e.write("victim", b"precious");
    let victim = e.path("victim");
    // Before the first backup: symlinks at the names of its .index and .dat.
    for name in [format!("{T1}.index"), format!("{T1}.dat")] {
        std::os::unix::fs::symlink(&victim, e.path(&format!("repo/{name}"))).expect("symlink");
    }
    let v1 = datafs(20, 500);
    let v2 = datafs(30, 500);
    two_backups(&e, &v1, &v2, false);
    assert_eq!(e.read("victim"), b"precious");
    for name in [format!("{T1}.index"), format!("{T1}.dat")] {
        let m = std::fs::symlink_metadata(e.path(&format!("repo/{name}"))).expect("meta");
        assert!(m.is_file(), "{name} is a file of ours now");
    }
    assert_eq!(e.run(NOW, &["-V", "-r", "repo"]).status.code(), Some(0));

    // Restore: symlinks at the target, its index and Python's `.part` name; a file another
    // user created at `.part`. None is followed or used.
    for (name, to) in [
        ("out.fs", "victim"),
        ("out.fs.index", "victim"),
        ("out.fs.part", "victim"),
    ] {
        std::os::unix::fs::symlink(e.path(to), e.path(name)).expect("symlink");
    }
    let o = e.run(NOW, &["-R", "-r", "repo", "-o", "out.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(e.read("victim"), b"precious");
    assert_eq!(e.read("out.fs"), v2);
    assert!(std::fs::symlink_metadata(e.path("out.fs"))
        .expect("meta")
        .is_file());
    assert_eq!(e.read("out.fs.index"), e.read(&format!("repo/{T2}.index")));
    assert!(std::fs::symlink_metadata(e.path("out.fs.part"))
        .expect("meta")
        .file_type()
        .is_symlink());
    // A symlink at the target's lock file: refused, nothing followed or changed.
    std::os::unix::fs::symlink(&victim, e.path("other.fs.lock")).expect("symlink");
    e.write("other.fs", b"old");
    let o = e.run(NOW, &["-R", "-r", "repo", "-o", "other.fs"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("symlink"), "{}", stderr(&o));
    assert_eq!(e.read("other.fs"), b"old");
    assert_eq!(e.read("victim"), b"precious");

    // The chain's .dat replaced by a symlink: the incremental refuses to write through it
    // and takes its data file back.
    let dat = e.path(&format!("repo/{T1}.dat"));
    let copy = e.path("dat-copy");
    std::fs::rename(&dat, &copy).expect("mv");
    std::os::unix::fs::symlink(&copy, &dat).expect("symlink");
    let before = e.names();
    e.write("Data.fs", &datafs(40, 500));
    let o = e.run(NOW, &["-B", "-r", "repo", "-f", "Data.fs"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("symlink"), "{}", stderr(&o));
    assert_eq!(e.names(), before);
    assert!(std::fs::symlink_metadata(&dat)
        .expect("meta")
        .file_type()
        .is_symlink());
}

#[test]
fn a_file_planted_at_the_part_name_by_another_user_is_left_alone() {
    require_root();
    let e = Env::new();
    let v1 = datafs(20, 500);
    two_backups(&e, &v1, &datafs(25, 500), false);
    open_to_others(&e);
    chmod(&e.root, 0o777);
    // nobody makes `out.fs.part` (0666): Python would write the database into it.
    let planted = Command::new("setpriv")
        .args([
            "--reuid",
            "nobody",
            "--regid",
            "nogroup",
            "--clear-groups",
            "--",
        ])
        .args(["sh", "-c", "umask 0; echo mine > out.fs.part"])
        .current_dir(&e.root)
        .status()
        .expect("setpriv");
    assert!(planted.success());
    let o = e.run(NOW, &["-R", "-r", "repo", "-o", "out.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(e.read("out.fs.part"), b"mine\n");
    let m = std::fs::metadata(e.path("out.fs")).expect("meta");
    assert_eq!(m.uid(), 0, "the restored file is ours, not the planter's");
    assert_eq!(
        mode(&e.path("out.fs")),
        mode(&e.path(&format!("repo/{T1}.fs")))
    );
}

#[test]
fn files_another_user_names_like_backups_are_no_backups() {
    require_root();
    let e = Env::new();
    let v1 = datafs(20, 300);
    e.write("Data.fs", &v1);
    let o = e.run(T1, &["-B", "-r", "repo", "-f", "Data.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    open_to_others(&e);
    chmod(&e.path("repo"), 0o777);
    // nobody plants a "full backup" newer than ours and files at this second's names.
    for name in [
        format!("{T2}.fsz"),
        format!("{NOW}.deltafs"),
        format!("{NOW}.index"),
        format!("{NOW}.dat"),
    ] {
        let ok = Command::new("setpriv")
            .args([
                "--reuid",
                "nobody",
                "--regid",
                "nogroup",
                "--clear-groups",
                "--",
            ])
            .args(["sh", "-c", "printf attacker > \"$1\"", "_"])
            .arg(e.path(&format!("repo/{name}")))
            .status()
            .expect("setpriv");
        assert!(ok.success());
    }
    let v2 = datafs(26, 300);
    e.write("Data.fs", &v2);
    let o = e.run(NOW, &["-B", "-v", "-r", "repo", "-f", "Data.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("doing incremental"), "{}", stderr(&o));
    // The backup took the next second, whose names nobody holds.
    assert!(e.path("repo/2010-05-15-13-30-58.deltafs").exists());
    let o = e.run(NOW, &["-R", "-r", "repo", "-o", "out.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(e.read("out.fs"), v2);
    assert_eq!(e.run(NOW, &["-V", "-r", "repo"]).status.code(), Some(0));
    assert_eq!(
        e.read(&format!("repo/{T2}.fsz")),
        b"attacker",
        "not ours to touch"
    );
}

#[test]
fn copies_of_a_private_database_stay_private() {
    for gzip in [false, true] {
        let e = Env::new();
        e.write("Data.fs", &datafs(20, 300));
        chmod(&e.path("Data.fs"), 0o600);
        let args: &[&str] = if gzip {
            &["-B", "-z", "-r", "repo", "-f", "Data.fs"]
        } else {
            &["-B", "-r", "repo", "-f", "Data.fs"]
        };
        let o = e.run(T1, args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        // An incremental: a new data file, .index, and the rewritten .dat.
        std::fs::write(e.path("Data.fs"), datafs(25, 300)).expect("write");
        let o = e.run(T2, args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let names = e.names();
        assert_eq!(names.len(), 5, "{names:?}");
        for n in &names {
            assert_eq!(
                mode(&e.path(&format!("repo/{n}"))),
                0o600,
                "{n}, gzip {gzip}"
            );
        }
        // A new restore target gets the backup's mode; an existing one keeps its own.
        let o = e.run(NOW, &["-R", "-r", "repo", "-o", "new.fs"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(mode(&e.path("new.fs")), 0o600);
        assert_eq!(mode(&e.path("new.fs.index")), 0o600);
        e.write("old.fs", b"old");
        chmod(&e.path("old.fs"), 0o640);
        let o = e.run(NOW, &["-R", "-r", "repo", "-o", "old.fs"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(mode(&e.path("old.fs")), 0o640);
        assert_eq!(mode(&e.path("old.fs.index")), 0o640);
    }
}

#[test]
fn a_restore_never_writes_onto_a_backup_file() {
    let e = Env::new();
    two_backups(&e, &datafs(20, 300), &datafs(25, 300), false);
    let full = e.path(&format!("repo/{T1}.fs"));
    let snapshot: Vec<Vec<u8>> = e
        .names()
        .iter()
        .map(|n| e.read(&format!("repo/{n}")))
        .collect();
    std::fs::hard_link(&full, e.path("hard.fs")).expect("link");
    std::os::unix::fs::symlink(&full, e.path("sym.fs")).expect("symlink");
    let full_s = full.to_str().expect("utf8").to_string();
    for out in [full_s.as_str(), "hard.fs", "sym.fs"] {
        let o = e.run(NOW, &["-R", "-r", "repo", "-o", out]);
        assert_eq!(o.status.code(), Some(1), "{out}");
        assert!(
            stderr(&o).contains("is the input file"),
            "{out}: {}",
            stderr(&o)
        );
    }
    // `-o repo/<stamp>` would write its index over a backup's .index.
    let o = e.run(NOW, &["-R", "-r", "repo", "-o", &format!("repo/{T2}")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let after: Vec<Vec<u8>> = e
        .names()
        .iter()
        .map(|n| e.read(&format!("repo/{n}")))
        .collect();
    assert_eq!(snapshot, after);
    assert_eq!(e.run(NOW, &["-V", "-r", "repo"]).status.code(), Some(0));
}

#[test]
fn devices_fifos_and_directories_are_refused_as_outputs() {
    require_root();
    let e = Env::new();
    two_backups(&e, &datafs(10, 100), &datafs(12, 100), false);
    let dev = e.path("null");
    let made = Command::new("mknod")
        .arg(&dev)
        .args(["c", "1", "3"])
        .status()
        .expect("mknod");
    assert!(made.success());
    let fifo = e.path("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo")
        .success());
    std::fs::create_dir(e.path("dir")).expect("mkdir");
    for (out, words) in [
        ("null", "'null' is a character device, not a regular file"),
        ("fifo", "'fifo' is a FIFO, not a regular file"),
        ("dir", "[Errno 21] Is a directory: 'dir'"),
    ] {
        let o = e.run(NOW, &["-R", "-r", "repo", "-o", out]);
        assert_eq!(
            (o.status.code(), stderr(&o)),
            (Some(1), format!("{words}\n")),
            "{out}"
        );
    }
    let m = std::fs::symlink_metadata(&dev).expect("meta");
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &m.file_type()
    ));
    assert!(names_in(&e.path("dir")).is_empty());
    // A FIFO as the source does not hang the backup; a directory or a device is refused
    // with its own words (no "No such device", no empty FS30 file from /dev/zero).
    let o = e.run(NOW, &["-B", "-r", "repo", "-f", "fifo"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is a FIFO"), "{}", stderr(&o));
    let o = e.run(NOW, &["-B", "-r", "repo", "-f", "dir"]);
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (Some(1), "[Errno 21] Is a directory: 'dir'\n".to_string())
    );
    let o = e.run(NOW, &["-B", "-r", "repo", "-f", "/dev/zero"]);
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (
            Some(1),
            "'/dev/zero' is a character device, not a regular file\n".to_string()
        )
    );
}

/// Starts `args` as `nobody`.
fn spawn_as_nobody(e: &Env, args: &[&str]) -> std::process::Child {
    Command::new("setpriv")
        .args([
            "--reuid",
            "nobody",
            "--regid",
            "nogroup",
            "--clear-groups",
            "--",
        ])
        .args(args)
        .current_dir(&e.root)
        .spawn()
        .expect("setpriv")
}

#[test]
fn another_user_cannot_block_backups_or_restores() {
    require_root();
    let e = Env::new();
    let v1 = datafs(20, 300);
    two_backups(&e, &v1, &datafs(24, 300), false);
    assert!(
        !e.path("repo/.repozo.lock").exists(),
        "a backup removes its lock file"
    );
    open_to_others(&e);
    // A lock file left by a killed backup and opened up since (0644), which nobody opens
    // and holds a lock on; nobody also holds flock on the repository directory (enough to
    // block earlier versions forever).
    e.write("repo/.repozo.lock", b"");
    chmod(&e.path("repo/.repozo.lock"), 0o644);
    let mut holders = [
        spawn_as_nobody(&e, &["flock", "-x", "repo", "sleep", "60"]),
        spawn_as_nobody(&e, &["flock", "-s", "repo/.repozo.lock", "sleep", "60"]),
    ];
    std::thread::sleep(std::time::Duration::from_millis(300));
    let run = |args: &[&str]| {
        Command::cargo_bin("zodbfs-repozo")
            .expect("binary")
            .current_dir(&e.root)
            .env("REPOZO_TEST_NOW", NOW)
            .env("ZFS_REPOZO_LOCK_WAIT", "5")
            .args(args)
            .output()
            .expect("run")
    };
    let t = std::time::Instant::now();
    e.write("Data.fs", &datafs(30, 300));
    let o = run(&["-B", "-r", "repo", "-f", "Data.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(&["-R", "-r", "repo", "-o", "out.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        t.elapsed() < std::time::Duration::from_secs(4),
        "a run waited"
    );
    for h in &mut holders {
        let _ = h.kill();
        let _ = h.wait();
    }
    assert!(!e.path("repo/.repozo.lock").exists());
}

#[test]
fn a_run_of_ours_holding_the_lock_is_waited_for_boundedly_and_named() {
    let e = Env::new();
    two_backups(&e, &datafs(10, 100), &datafs(12, 100), false);
    let repo = e.repo();
    let _held = zfs_repozo::Repository::new(repo.as_str())
        .lock(true, std::time::Duration::ZERO, &mut |_| panic!("free"))
        .expect("lock");
    let t = std::time::Instant::now();
    let o = Command::cargo_bin("zodbfs-repozo")
        .expect("binary")
        .current_dir(&e.root)
        .env("REPOZO_TEST_NOW", NOW)
        .env("ZFS_REPOZO_LOCK_WAIT", "1")
        .args(["-B", "-F", "-r", "repo", "-f", "Data.fs"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1));
    assert!(t.elapsed() < std::time::Duration::from_secs(30));
    let me = format!("is locked by process {}", std::process::id());
    assert!(
        stderr(&o).contains(&me) && stderr(&o).contains("waited 1 s"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_user_who_may_only_read_the_repository_restores_and_verifies() {
    require_root();
    let e = Env::new();
    let v2 = datafs(24, 300);
    two_backups(&e, &datafs(20, 300), &v2, true);
    open_to_others(&e);
    let out = tempfile::tempdir().expect("tempdir");
    chmod(out.path(), 0o777);
    let target = out.path().join("out.fs");
    let o = run_as_nobody(&e, &[], &["-V", "-r", "repo"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run_as_nobody(
        &e,
        &[],
        &["-R", "-r", "repo", "-o", target.to_str().expect("utf8")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read(&target).expect("read"), v2);
    assert!(
        !e.path("repo/.repozo.lock").exists(),
        "readers never make a lock file"
    );
}

#[test]
fn verify_calls_an_unreadable_file_unreadable() {
    require_root();
    let e = Env::new();
    two_backups(&e, &datafs(20, 300), &datafs(24, 300), false);
    open_to_others(&e);
    let delta = format!("repo/{T2}.deltafs");
    chmod(&e.path(&delta), 0o600);
    let o = run_as_nobody(&e, &[], &["-V", "-r", "repo"]);
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (
            Some(1),
            format!("{delta} is unreadable: [Errno 13] Permission denied\n")
        )
    );
    // A FIFO where a backup file should be: unreadable too, and no hang.
    std::fs::remove_file(e.path(&delta)).expect("rm");
    assert!(Command::new("mkfifo")
        .arg(e.path(&delta))
        .status()
        .expect("mkfifo")
        .success());
    let o = e.run(NOW, &["-V", "-r", "repo"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(&format!("{delta} is unreadable: ")) && stderr(&o).contains("FIFO"),
        "{}",
        stderr(&o)
    );
    // Gone: Python's words.
    std::fs::remove_file(e.path(&delta)).expect("rm");
    let o = e.run(NOW, &["-V", "-r", "repo"]);
    assert_eq!(stderr(&o), format!("{delta} is missing\n"));
}

#[test]
fn a_chain_without_its_full_backup_is_refused() {
    for gzip in [false, true] {
        let e = Env::new();
        two_backups(&e, &datafs(20, 300), &datafs(24, 300), gzip);
        let full = if gzip { "fsz" } else { "fs" };
        std::fs::remove_file(e.path(&format!("repo/{T1}.{full}"))).expect("rm");
        let o = e.run(NOW, &["-R", "-r", "repo", "-o", "out.fs"]);
        assert_eq!(o.status.code(), Some(1), "gzip {gzip}");
        assert!(
            stderr(&o).contains("no full backup precedes it"),
            "{}",
            stderr(&o)
        );
        assert!(!e.path("out.fs").exists());
        let o = e.run(NOW, &["-R", "-r", "repo"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(o.stdout.is_empty(), "nothing is written to stdout");
        let o = Command::cargo_bin("zodbfs")
            .expect("binary")
            .current_dir(&e.root)
            .args(["restore", "repo", "-o", "z.fs"])
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("no full backup precedes it"),
            "{}",
            stderr(&o)
        );
        assert!(!e.path("z.fs").exists());
    }
}

#[test]
fn a_full_backup_that_is_no_filestorage_is_refused() {
    let e = Env::new();
    e.write(&format!("repo/{T1}.fs"), b"not a database");
    let o = e.run(NOW, &["-R", "-r", "repo", "-o", "out.fs"]);
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (
            Some(1),
            format!("repo/{T1}.fs is not a FileStorage backup: it starts with b'not ', not FS30 or FS21\n")
        )
    );
    assert!(!e.path("out.fs").exists());
}

#[test]
fn an_incremental_without_its_dat_line_is_restored_and_verify_says_so() {
    let e = Env::new();
    let v2 = datafs(24, 300);
    two_backups(&e, &datafs(20, 300), &v2, false);
    // A run killed between renaming the incremental into place and writing its line.
    let dat = e.path(&format!("repo/{T1}.dat"));
    let text = std::fs::read_to_string(&dat).expect("read");
    std::fs::write(
        &dat,
        text.lines().next().expect("a line").to_string() + "\n",
    )
    .expect("write");
    // Restored, as Python restores it: its .index shows it continues the chain.
    let o = e.run(NOW, &["-R", "-r", "repo", "-o", "out.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("is not listed in"), "{}", stderr(&o));
    assert_eq!(e.read("out.fs"), v2);
    // -w cannot check it: refused, and says what to do.
    let o = e.run(NOW, &["-R", "-w", "-r", "repo", "-o", "out2.fs"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("-w cannot check it"), "{}", stderr(&o));
    // -V passes (as Python's) and warns.
    let o = e.run(NOW, &["-V", "-r", "repo"]);
    assert_eq!(o.status.code(), Some(0), "Python's -V passes: so does ours");
    assert!(
        stderr(&o).starts_with("warning: ")
            && stderr(&o).contains("neither -V nor -R -w can check it"),
        "{}",
        stderr(&o)
    );
    let o = Command::cargo_bin("zodbfs")
        .expect("binary")
        .current_dir(&e.root)
        .args(["verify", "repo", "--json"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["ok"], false);
    assert_eq!(v["files"].as_array().expect("files").len(), 1);
    assert!(v["warnings"][0]
        .as_str()
        .expect("a warning")
        .contains("is not listed in"));
    // Without its .index it could belong to another chain: -R refuses, -V warns of that.
    std::fs::remove_file(e.path(&format!("repo/{T2}.index"))).expect("rm");
    let o = e.run(NOW, &["-R", "-r", "repo", "-o", "out3.fs"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
    let o = e.run(NOW, &["-V", "-r", "repo"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).starts_with("warning: a restore of the newest state would refuse it: "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_full_disk_names_the_repository_file() {
    // RLIMIT_FSIZE stands for a full disk: writes past the limit fail with EFBIG.
    let e = Env::new();
    e.write("Data.fs", &datafs(40, 1000));
    let bin = assert_cmd::cargo::cargo_bin("zodbfs-repozo");
    for gzip in ["", "-z"] {
        let o = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "trap '' XFSZ; ulimit -f 8; exec \"$0\" -B {gzip} -r repo -f Data.fs"
            ))
            .arg(&bin)
            .current_dir(&e.root)
            .env("REPOZO_TEST_NOW", NOW)
            .output()
            .expect("bash");
        assert_eq!(o.status.code(), Some(1), "{gzip}");
        let ext = if gzip.is_empty() { "fs" } else { "fsz" };
        assert_eq!(
            stderr(&o),
            format!("[Errno 27] File too large: 'repo/{NOW}.{ext}'\n"),
            "{gzip}"
        );
        assert!(e.names().is_empty(), "{:?}", e.names());
        assert!(names_in(&e.path("repo")).len() <= 1, "only the lock file");
    }
}

/// A tmpfs of `size` bytes mounted on a temporary directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn new(size: u64) -> Tmpfs {
        require_root();
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount");
        assert!(ok.success(), "mount tmpfs");
        Tmpfs { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_tight_disk_keeps_the_old_target_unless_the_chain_is_whole() {
    // The restored file is about 1.3 MB, the old target as big; the tmpfs holds 2 MB:
    // there is room for one of them only.
    let v1 = datafs(100, 12_000);
    let v2 = datafs(110, 12_000);
    assert!(v2.len() > 1_250_000 && v2.len() < 1_500_000, "{}", v2.len());
    for gzip in [false, true] {
        let e = Env::new();
        two_backups(&e, &v1, &v2, gzip);
        let small = Tmpfs::new(2 << 20);
        let target = small.path("target.fs");
        let target_s = target.to_str().expect("utf8").to_string();
        let old: Vec<u8> = v1.iter().rev().copied().collect();
        let put_old = || {
            std::fs::write(&target, &old).expect("write");
            std::fs::write(small.path("target.fs.index"), b"old index").expect("write");
        };
        // A damaged last file: found before anything is deleted, with and without -w.
        let delta = e.path(&format!(
            "repo/{T2}.{}",
            if gzip { "deltafsz" } else { "deltafs" }
        ));
        let good = std::fs::read(&delta).expect("read");
        let mut bad = good.clone();
        if gzip {
            bad.truncate(bad.len() - 10);
        } else {
            let mid = bad.len() / 2;
            bad[mid] ^= 1;
        }
        std::fs::write(&delta, &bad).expect("write");
        for w in [false, true] {
            put_old();
            let mut args = vec!["-R", "-r", "repo", "-o", &target_s];
            if w {
                args.push("-w");
            }
            let o = e.run(NOW, &args);
            assert_eq!(
                o.status.code(),
                Some(1),
                "gzip {gzip} -w {w}: {}",
                stderr(&o)
            );
            assert!(!stderr(&o).contains("deleted"), "{}", stderr(&o));
            assert_eq!(std::fs::read(&target).expect("old target"), old);
            assert_eq!(
                std::fs::read(small.path("target.fs.index")).expect("old index"),
                b"old index"
            );
            assert_eq!(
                names_in(small.dir.path()),
                ["target.fs", "target.fs.index", "target.fs.lock"],
                "gzip {gzip} -w {w}"
            );
        }
        // Intact: the old file goes first, and the run says so.
        std::fs::write(&delta, &good).expect("write");
        put_old();
        let o = e.run(NOW, &["-R", "-r", "repo", "-o", &target_s]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("are deleted now to make room"),
            "{}",
            stderr(&o)
        );
        assert_eq!(std::fs::read(&target).expect("new"), v2);
        assert_eq!(
            std::fs::read(small.path("target.fs.index")).expect("index"),
            e.read(&format!("repo/{T2}.index"))
        );
        // Not even room after deleting the old one: refused, nothing changed.
        put_old();
        let filler = small.path("filler");
        let free = rustix::fs::statvfs(small.dir.path()).expect("statvfs");
        let room = free.f_bavail * free.f_frsize;
        std::fs::write(&filler, vec![0u8; (room - 64 * 1024) as usize]).expect("fill");
        let o = e.run(NOW, &["-R", "-r", "repo", "-o", &target_s]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("not enough free space")
                && stderr(&o).contains("nothing was changed"),
            "{}",
            stderr(&o)
        );
        assert_eq!(std::fs::read(&target).expect("old target"), old);
        std::fs::remove_file(&filler).expect("rm");
        // A target absent and no room at all: nothing is left filling the disk.
        std::fs::remove_file(&target).expect("rm");
        let free = rustix::fs::statvfs(small.dir.path()).expect("statvfs");
        let room = free.f_bavail * free.f_frsize;
        std::fs::write(&filler, vec![0u8; (room - 600 * 1024) as usize]).expect("fill");
        let o = e.run(NOW, &["-R", "-r", "repo", "-o", &target_s]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("No space left on device") && stderr(&o).contains("target.fs"),
            "{}",
            stderr(&o)
        );
        assert_eq!(
            names_in(small.dir.path()),
            ["filler", "target.fs.index", "target.fs.lock"]
        );
    }
}
