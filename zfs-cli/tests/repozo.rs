//! The `repozo` binary end to end: the cases of ZODB's `test_repozo.py` worth having, as
//! observable behaviour (files, bytes, messages, exit statuses), plus our safety guarantees.
//! The clock is frozen with `REPOZO_TEST_NOW`, as ZODB's tests inject `test_now`.

use std::path::Path;
use std::process::Output;

use zfs_repozo::md5::md5_hex;

/// A growing FileStorage: each call to `commit` appends one transaction.
struct Db(zfs_testdata::Maker);

impl Db {
    fn new(magic: &[u8; 4]) -> Db {
        Db(zfs_testdata::Maker::with_magic(*magic)
            .tids(zfs_testdata::TID_BASE + 1000, 1000)
            .meta(b"", b"test"))
    }
    fn commit(&mut self, records: u64) {
        let n = self.0.count() + 1;
        self.0.txn((0..records).map(|i| {
            let data = format!(
                "object {i} state {n} {}",
                "x".repeat((i * 37 % 200) as usize)
            );
            (i % 50, data)
        }));
    }
    fn bytes(&self) -> Vec<u8> {
        self.0.bytes()
    }
}

mod repozo_env;
use repozo_env::{stderr, Env};

fn last_line(o: &Output) -> String {
    stderr(o).lines().last().unwrap_or("").to_string()
}

const T1: &str = "2010-05-14-12-52-31";
const T2: &str = "2010-05-14-12-53-00";
const T3: &str = "2010-05-14-13-00-00";

#[test]
fn command_line_errors_read_like_python() {
    let e = Env::new();
    let cases: &[(&[&str], &str)] = &[
        (&["-B", "-R"], "-B, -R, and -V are mutually exclusive"),
        (&["-R", "-V"], "-B, -R, and -V are mutually exclusive"),
        (&["-V", "-B"], "-B, -R, and -V are mutually exclusive"),
        (&[], "Either --backup, --recover or --verify is required"),
        (&["--crash-please"], "option --crash-please not recognized"),
        (&["crash", "please"], "Invalid arguments: crash, please"),
        (&["-B"], "--repository is required"),
        (&["-B", "-r", "repo"], "--file is required in backup mode"),
        (&["--ver"], "option --ver not a unique prefix"),
        (&["-r"], "option -r requires argument"),
        (&["--full=yes"], "option --full must not have an argument"),
    ];
    for (args, msg) in cases {
        let o = e.run(T1, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(last_line(&o), *msg, "{args:?}");
        assert!(
            stderr(&o).contains("--repository"),
            "usage text first: {args:?}"
        );
        assert!(o.stdout.is_empty());
    }
    let o = e.run(T1, &["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Usage:"));
    // -h is handled when reached: before a second mode flag it wins.
    assert_eq!(e.run(T1, &["-h", "-B", "-R"]).status.code(), Some(0));
    assert_eq!(e.run(T1, &["-B", "-R", "-h"]).status.code(), Some(1));
}

#[test]
fn ignored_options_are_logged_with_v_only() {
    let e = Env::new();
    let mut db = Db::new(b"FS30");
    db.commit(5);
    e.write("Data.fs", &db.bytes());
    let o = e.run(
        T1,
        &[
            "-B",
            "-v",
            "--with-verify",
            "-o",
            "x",
            "-D",
            "2011-12-13",
            "-r",
            "repo",
            "-f",
            "Data.fs",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        &lines[..3],
        [
            "--date option is ignored in backup mode",
            "--output option is ignored in backup mode",
            "--with-verify option is ignored in backup mode"
        ]
    );
    let o = e.run(T2, &["-B", "-r", "repo", "-v", "-f", "Data.fs"]);
    assert!(!stderr(&o).contains("ignored"));
    let o = e.run(
        T2,
        &["-R", "-v", "-f", "x", "-k", "-r", "repo", "-o", "out.fs"],
    );
    assert!(stderr(&o).starts_with("--file option is ignored in recover mode\n--kill-old-on-full option is ignored in recover mode\n"));
    let o = e.run(
        T2,
        &[
            "-V",
            "-v",
            "--with-verify",
            "-o",
            "x",
            "-D",
            "y",
            "-f",
            "z",
            "-z",
            "-k",
            "-F",
            "-r",
            "repo",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let want = [
        "--date option is ignored in verify mode",
        "--output option is ignored in verify mode",
        "--full option is ignored in verify mode",
        "--gzip option is ignored in verify mode",
        "--file option is ignored in verify mode",
        "--kill-old-on-full option is ignored in verify mode",
        "--with-verify option is ignored in verify mode",
    ];
    assert_eq!(&stderr(&o).lines().take(7).collect::<Vec<_>>(), &want);
}

#[test]
fn full_then_incrementals_then_restore() {
    let e = Env::new();
    let mut db = Db::new(b"FS30");
    for _ in 0..20 {
        db.commit(7);
    }
    let v1 = db.bytes();
    e.write("Data.fs", &v1);
    let o = e.run(T1, &["-B", "-r", "repo", "-f", "Data.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        e.names(),
        [
            format!("{T1}.dat"),
            format!("{T1}.fs"),
            format!("{T1}.index")
        ]
    );
    assert_eq!(e.read(&format!("repo/{T1}.fs")), v1);
    let dat = String::from_utf8(e.read(&format!("repo/{T1}.dat"))).expect("utf8");
    assert_eq!(
        dat,
        format!("repo/{T1}.fs 0 {} {}\n", v1.len(), md5_hex(&v1))
    );
    let (pos, index) =
        zfs_format::index_file::load_index(&e.read(&format!("repo/{T1}.index"))).expect("index");
    assert_eq!(pos, v1.len() as u64);
    assert_eq!(index.len(), 7);

    // Nothing changed: nothing to do.
    let o = e.run(T2, &["-B", "-v", "-r", "repo", "-f", "Data.fs"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).ends_with("No changes, nothing to do\n"),
        "{}",
        stderr(&o)
    );
    assert_eq!(e.names().len(), 3);

    // New transactions: an incremental with the new bytes, a .dat line, a full .index.
    for _ in 0..5 {
        db.commit(60);
    }
    let v2 = db.bytes();
    e.write("Data.fs", &v2);
    let o = e.run(T2, &["-B", "-r", "repo", "-f", "Data.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(e.read(&format!("repo/{T2}.deltafs")), &v2[v1.len()..]);
    let dat = String::from_utf8(e.read(&format!("repo/{T1}.dat"))).expect("utf8");
    assert_eq!(
        dat.lines().nth(1).expect("second line"),
        format!(
            "repo/{T2}.deltafs {} {} {}",
            v1.len(),
            v2.len(),
            md5_hex(&v2[v1.len()..])
        )
    );
    let (pos, index) =
        zfs_format::index_file::load_index(&e.read(&format!("repo/{T2}.index"))).expect("index");
    assert_eq!((pos, index.len()), (v2.len() as u64, 50));

    // Quick mode, gzipped.
    db.commit(3);
    let v3 = db.bytes();
    e.write("Data.fs", &v3);
    let o = e.run(T3, &["-BQz", "-r", "repo", "-f", "Data.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(e.names().contains(&format!("{T3}.deltafsz")));

    // Restore now, as of T2, and before T1.
    let o = e.run(T3, &["-R", "-r", "repo", "-o", "out.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(e.read("out.fs"), v3);
    assert_eq!(e.read("out.fs.index"), e.read(&format!("repo/{T3}.index")));
    assert!(!e.path("out.fs.part").exists());
    let o = e.run(T3, &["-R", "-r", "repo", "-D", T2, "-o", "out2.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(e.read("out2.fs"), v2);
    let o = e.run(T3, &["-R", "-r", "repo", "-D", "2010-05-14-12-52-30"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "No files in repository before 2010-05-14-12-52-30\n"
    );
    // A shortened date means "before that day".
    let o = e.run(T3, &["-R", "-r", "repo", "-D", "2010-05-14"]);
    assert_eq!(stderr(&o), "No files in repository before 2010-05-14\n");
    // To stdout, with -w and -v (messages on stderr only).
    let o = e.run(T3, &["-R", "-w", "-v", "-r", "repo"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, v3);
    assert!(stderr(&o).contains(&format!("Recovered a total of {} bytes", v3.len())));

    // Verify, plain and quick.
    let o = e.run(T3, &["-V", "-r", "repo"]);
    assert_eq!((o.status.code(), stderr(&o)), (Some(0), String::new()));
    let o = e.run(T3, &["-V", "-Q", "-v", "-r", "repo"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stderr(&o).matches("Verifying ").count(), 3);
}

#[test]
fn empty_repository_and_missing_things() {
    let e = Env::new();
    let o = e.run(T1, &["-R", "-r", "repo"]);
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (Some(1), "No files in repository\n".to_string())
    );
    let o = e.run(T1, &["-V", "-r", "repo"]);
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (Some(1), "No files in repository\n".to_string())
    );
    let o = e.run(T1, &["-B", "-r", "nosuch", "-f", "Data.fs"]);
    assert_eq!(
        stderr(&o),
        "[Errno 2] No such file or directory: 'nosuch'\n"
    );
    let o = e.run(T1, &["-B", "-r", "repo", "-f", "nosuch.fs"]);
    assert_eq!(
        stderr(&o),
        "[Errno 2] No such file or directory: 'nosuch.fs'\n"
    );
    assert_eq!(o.status.code(), Some(1));
    // An empty source: a clear error, nothing left behind.
    e.write("empty.fs", b"");
    let o = e.run(T1, &["-B", "-r", "repo", "-f", "empty.fs"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(e.names().is_empty(), "{:?}", e.names());
    // Only the magic: a valid 4-byte backup.
    e.write("magic.fs", b"FS30");
    let o = e.run(T1, &["-B", "-r", "repo", "-f", "magic.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(e.read(&format!("repo/{T1}.fs")), b"FS30");
    assert_eq!(e.read(&format!("repo/{T1}.index")).len(), 9);
}

#[test]
fn torn_tail_gives_empty_incrementals_and_same_second_backups_get_later_stamps() {
    let e = Env::new();
    let mut db = Db::new(b"FS30");
    for _ in 0..5 {
        db.commit(4);
    }
    let v1 = db.bytes();
    let mut torn = v1.clone();
    torn.extend_from_slice(&[0u8; 10]);
    e.write("Data.fs", &torn);
    assert_eq!(
        e.run(T1, &["-B", "-r", "repo", "-f", "Data.fs"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(e.read(&format!("repo/{T1}.fs")), v1);
    // The same second: Python would refuse (or, with another extension, make a file that
    // restore skips); we stamp it one second later.
    let o = e.run(T1, &["-B", "-r", "repo", "-f", "Data.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let next = "2010-05-14-12-52-32";
    assert_eq!(e.read(&format!("repo/{next}.deltafs")), b"");
    let dat = String::from_utf8(e.read(&format!("repo/{T1}.dat"))).expect("utf8");
    assert!(dat.ends_with(&format!(
        "{next}.deltafs {n} {n} d41d8cd98f00b204e9800998ecf8427e\n",
        n = v1.len()
    )));
    // A restore in that same second sees the file stamped a second ahead.
    let o = e.run(T1, &["-R", "-r", "repo", "-o", "out.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(e.read("out.fs"), v1);
}

#[test]
fn pack_forces_full_and_kill_old_removes_the_old_chain() {
    let e = Env::new();
    let mut db = Db::new(b"FS30");
    for _ in 0..10 {
        db.commit(5);
    }
    e.write("Data.fs", &db.bytes());
    assert_eq!(
        e.run(T1, &["-B", "-r", "repo", "-f", "Data.fs"])
            .status
            .code(),
        Some(0)
    );
    db.commit(5);
    e.write("Data.fs", &db.bytes());
    assert_eq!(
        e.run(T2, &["-B", "-r", "repo", "-f", "Data.fs"])
            .status
            .code(),
        Some(0)
    );
    // "Pack": a shorter file.
    let mut small = Db::new(b"FS30");
    small.commit(5);
    e.write("Data.fs", &small.bytes());
    let o = e.run(T3, &["-B", "-k", "-v", "-r", "repo", "-f", "Data.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("file shrunk, possibly because of a pack (full backup)"),
        "{err}"
    );
    assert!(err.contains(&format!(
        "removing old backup file {T1}.fs (and .dat / .index)"
    )));
    assert_eq!(
        e.names(),
        [
            format!("{T3}.dat"),
            format!("{T3}.fs"),
            format!("{T3}.index")
        ]
    );
}

/// The full backup of the hand-made repositories.
const FULL: &[u8] = b"FS30AAA";

/// test_repozo.py's verify and restore cases on hand-made repositories.
fn hand_made(e: &Env, gzip: bool) -> (String, String) {
    let (full, delta) = if gzip {
        ("2010-05-14-02-13-14.fsz", "2010-05-14-04-05-06.deltafsz")
    } else {
        ("2010-05-14-02-13-14.fs", "2010-05-14-04-05-06.deltafs")
    };
    let put = |name: &str, data: &[u8]| {
        if gzip {
            let mut z = Vec::new();
            zfs_repozo::gz::gzip_parallel(data, 9, &mut z, &zfs_format::NoProgress).expect("gzip");
            e.write(&format!("repo/{name}"), &z);
        } else {
            e.write(&format!("repo/{name}"), data);
        }
    };
    // test_repozo.py's "AAA" full backup, as a FileStorage (ours refuses to restore a full
    // backup that is none).
    put(full, FULL);
    put(delta, b"BBBB");
    e.write(
        "repo/2010-05-14-02-13-14.dat",
        format!(
            "/r/{full} 0 7 {}\n/r/{delta} 7 11 f50881ced34c7d9e6bce100bf33dec60\n",
            md5_hex(FULL)
        )
        .as_bytes(),
    );
    (full.to_string(), delta.to_string())
}

#[test]
fn verify_cases_of_test_repozo() {
    for gzip in [false, true] {
        let e = Env::new();
        let (_, delta) = hand_made(&e, gzip);
        let when = if gzip { " (when uncompressed)" } else { "" };
        let r = e.repo();
        assert_eq!(e.run(T1, &["-V", "-r", &r]).status.code(), Some(0));
        // Wrong content.
        let bad: &[u8] = b"BbBB";
        if gzip {
            let mut z = Vec::new();
            zfs_repozo::gz::gzip_parallel(bad, 9, &mut z, &zfs_format::NoProgress).expect("gzip");
            e.write(&format!("repo/{delta}"), &z);
        } else {
            e.write(&format!("repo/{delta}"), bad);
        }
        let o = e.run(T1, &["-V", "-r", &r]);
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(
            stderr(&o),
            format!("{r}/{delta} has checksum 36486440db255f0ee6ab109d5d231406{when} instead of f50881ced34c7d9e6bce100bf33dec60\n")
        );
        // -Q checks sizes only.
        assert_eq!(e.run(T1, &["-V", "-Q", "-r", &r]).status.code(), Some(0));
        // Wrong size.
        if gzip {
            let mut z = Vec::new();
            zfs_repozo::gz::gzip_parallel(b"BBB", 9, &mut z, &zfs_format::NoProgress)
                .expect("gzip");
            e.write(&format!("repo/{delta}"), &z);
        } else {
            e.write(&format!("repo/{delta}"), b"BBB");
        }
        let o = e.run(T1, &["-V", "-r", &r]);
        assert_eq!(
            stderr(&o),
            format!("{r}/{delta} is 3 bytes{when}, should be 4 bytes\n")
        );
        // Missing.
        std::fs::remove_file(e.path(&format!("repo/{delta}"))).expect("rm");
        let o = e.run(T1, &["-V", "-r", &r]);
        assert_eq!(
            (o.status.code(), stderr(&o)),
            (Some(1), format!("{r}/{delta} is missing\n"))
        );
    }
}

#[test]
fn restore_with_verify_cases_of_test_repozo() {
    let e = Env::new();
    let (_, delta) = hand_made(&e, false);
    let r = e.repo();
    let o = e.run(T1, &["-R", "-w", "-r", &r, "-o", "out.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(e.read("out.fs"), b"FS30AAABBBB");
    assert!(!e.path("out.fs.part").exists());
    // A wrong checksum in the .dat: the old output is kept, and no partial file is left
    // (Python leaves its .part).
    e.write(
        "repo/2010-05-14-02-13-14.dat",
        format!(
            "/r/2010-05-14-02-13-14.fs 0 7 {}\n/r/{delta} 7 11 f50881ced34c7d9e6bce100bf33dec61\n",
            md5_hex(FULL)
        )
        .as_bytes(),
    );
    let o = e.run(T1, &["-R", "-w", "-r", &r, "-o", "out.fs"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("{r}/{delta} has checksum f50881ced34c7d9e6bce100bf33dec60 instead of f50881ced34c7d9e6bce100bf33dec61\n")
    );
    assert!(!e.path("out.fs.part").exists());
    assert_eq!(e.read("out.fs"), b"FS30AAABBBB", "the old output is kept");
    let mut left: Vec<String> = std::fs::read_dir(&e.root)
        .expect("ls")
        .map(|d| d.expect("entry").file_name().into_string().expect("utf8"))
        .collect();
    left.sort();
    assert_eq!(left, ["out.fs", "out.fs.lock", "repo"]);
}

#[test]
fn broken_repositories_fail_cleanly() {
    let e = Env::new();
    let (full, delta) = hand_made(&e, false);
    e.write("out.fs", b"precious");
    // A truncated incremental: restore refuses it and keeps the old output.
    e.write(&format!("repo/{delta}"), b"BB");
    let o = e.run(T1, &["-R", "-r", "repo", "-o", "out.fs"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(last_line(&o).contains(&delta), "{}", stderr(&o));
    assert_eq!(e.read("out.fs"), b"precious");
    // A hole: the incremental is gone although the .dat lists it.
    std::fs::remove_file(e.path(&format!("repo/{delta}"))).expect("rm");
    let o = e.run(T1, &["-R", "-r", "repo", "-o", "out.fs"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("missing"), "{}", stderr(&o));
    // Garbage in the .dat: one clear line, status 1, for every reader.
    e.write(&format!("repo/{delta}"), b"BBBB");
    let dat = e.path("repo/2010-05-14-02-13-14.dat");
    let mut text = std::fs::read(&dat).expect("read");
    text.extend_from_slice(b"garbage\n");
    std::fs::write(&dat, text).expect("write");
    e.write("Data.fs", b"FS30");
    for args in [
        &["-V", "-r", "repo"][..],
        &["-B", "-Q", "-r", "repo", "-f", "Data.fs"],
        &["-R", "-w", "-r", "repo"],
    ] {
        let o = e.run(T1, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(stderr(&o).lines().count(), 1, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("line 3"), "{}", stderr(&o));
    }
    // A corrupt gzip: Python's message for a bad header, a clear one for bad data.
    let e = Env::new();
    let (full, _) = {
        let _ = full;
        hand_made(&e, true)
    };
    let path = e.path(&format!("repo/{full}"));
    let mut z = std::fs::read(&path).expect("read");
    std::fs::write(&path, b"XXjunk").expect("write");
    let o = e.run(T1, &["-R", "-r", "repo", "-o", "out.fs"]);
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (Some(1), "Not a gzipped file (b'XX')\n".to_string())
    );
    let o = e.run(T1, &["-V", "-r", "repo"]);
    assert_eq!(stderr(&o), format!("repo/{full} is missing\n"));
    let n = z.len();
    z.truncate(n - 6);
    std::fs::write(&path, &z).expect("write");
    let o = e.run(T1, &["-R", "-r", "repo"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn fs21_sources_are_backed_up() {
    let e = Env::new();
    let mut db = Db::new(b"FS21");
    for _ in 0..4 {
        db.commit(3);
    }
    e.write("Data.fs", &db.bytes());
    let o = e.run(T1, &["-B", "-r", "repo", "-f", "Data.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(e.read(&format!("repo/{T1}.fs")), db.bytes());
    let o = e.run(T1, &["-R", "-r", "repo"]);
    assert_eq!(o.stdout, db.bytes());
}

#[test]
fn nothing_is_left_half_written() {
    let e = Env::new();
    let mut db = Db::new(b"FS30");
    db.commit(3);
    e.write("Data.fs", &db.bytes());
    assert_eq!(
        e.run(T1, &["-B", "-z", "-r", "repo", "-f", "Data.fs"])
            .status
            .code(),
        Some(0)
    );
    // No temporary file remains, and nothing but the three files of the backup.
    assert_eq!(
        e.names(),
        [
            format!("{T1}.dat"),
            format!("{T1}.fsz"),
            format!("{T1}.index")
        ]
    );
    let _: &Path = e.root.as_path();
}
