//! The `repozo` binary's safety guarantees, and test_repozo.py's `Test_do_recover` cases:
//! the repository lock, stale temporaries of an interrupted run, an existing restore target
//! and its index, restores without a `.dat`.

use std::process::Stdio;
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt as _;

mod repozo_env;
mod signals;
use repozo_env::{stderr, Env};

/// A FileStorage with `n` small transactions.
fn datafs(n: u64) -> Vec<u8> {
    zfs_testdata::datafs(n, 0)
}

const NOW: &str = "2010-05-15-13-30-57";

#[test]
fn restore_cases_of_test_do_recover() {
    // Two full backups, no .dat, no .index: the newest is restored.
    let e = Env::new();
    e.write("repo/2010-05-14-02-03-04.fs", b"FS30AAA");
    e.write("repo/2010-05-14-04-05-06.fs", b"FS30BBB");
    let o = e.run(NOW, &["-R", "-r", "repo", "-o", "Data.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(e.read("Data.fs"), b"FS30BBB");
    assert!(!e.path("Data.fs.index").exists());
    // With the newest backup's .index: copied beside the output.
    e.write("repo/2010-05-14-04-05-06.index", b"CCC");
    let o = e.run(NOW, &["-R", "-r", "repo", "-o", "Data.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(e.read("Data.fs.index"), b"CCC");

    // A full and an incremental, no .dat: concatenated.
    let e = Env::new();
    e.write("repo/2010-05-14-02-03-04.fs", b"FS30AAA");
    e.write("repo/2010-05-14-04-05-06.deltafs", b"BBB");
    e.write("repo/2010-05-14-04-05-06.index", b"CCC");
    let o = e.run(NOW, &["-R", "-r", "repo", "-o", "Data.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(e.read("Data.fs"), b"FS30AAABBB");
    assert_eq!(e.read("Data.fs.index"), b"CCC");
    // As of a date before every backup: Python's message.
    let o = e.run(NOW, &["-R", "-r", "repo", "-D", "2010-05-13-13-30-57"]);
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (
            Some(1),
            "No files in repository before 2010-05-13-13-30-57\n".to_string()
        )
    );
    // -w without a .dat: Python's OSError text.
    let o = e.run(NOW, &["-R", "-w", "-r", "repo", "-o", "Out.fs"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "[Errno 2] No such file or directory: 'repo/2010-05-14-02-03-04.dat'\n"
    );
}

#[test]
fn an_existing_output_and_its_index_are_replaced_only_when_the_new_ones_are_complete() {
    let e = Env::new();
    e.write("repo/2010-05-14-02-03-04.fs", b"FS30AAA");
    e.write("Data.fs", b"old data");
    e.write("Data.fs.index", b"old index");
    // No index in the repository: the old index does not stay beside the new file.
    let o = e.run(NOW, &["-R", "-v", "-r", "repo", "-o", "Data.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(e.read("Data.fs"), b"FS30AAA");
    assert!(!e.path("Data.fs.index").exists(), "a stale index was kept");
    // Python logs "Deleting old Data.fs" because it deletes first; we do not.
    assert!(!stderr(&o).contains("Deleting old"), "{}", stderr(&o));
    // A restore that fails (-w, wrong checksum) leaves the old output and index alone, and
    // no partial file (Python leaves its .part).
    e.write("Data.fs.index", b"old index");
    e.write(
        "repo/2010-05-14-02-03-04.dat",
        b"/r/2010-05-14-02-03-04.fs 0 7 00000000000000000000000000000000\n",
    );
    let o = e.run(NOW, &["-R", "-w", "-r", "repo", "-o", "Data.fs"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(e.read("Data.fs"), b"FS30AAA");
    assert_eq!(e.read("Data.fs.index"), b"old index");
    assert_eq!(
        names_beside(&e),
        ["Data.fs", "Data.fs.index", "Data.fs.lock", "repo"]
    );
    std::fs::remove_file(e.path("repo/2010-05-14-02-03-04.dat")).expect("rm");
    e.write("repo/2010-05-14-03-00-00.deltafs", b"BB");
    let o = e.run(NOW, &["-R", "-r", "repo", "-o", "Data.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(e.read("Data.fs"), b"FS30AAABB");
}

/// The names beside the repository (restore targets and what comes with them), sorted.
fn names_beside(e: &Env) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(&e.root)
        .expect("ls")
        .map(|d| d.expect("entry").file_name().into_string().expect("utf8"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_backup_waits_for_the_lock_of_another_run() {
    let e = Env::new();
    e.write("Data.fs", &datafs(5));
    let repo = e.path("repo");
    let repo = repo.to_str().expect("utf8");
    let held = zfs_repozo::Repository::new(repo)
        .lock(true, Duration::from_secs(5), &mut |_| {
            panic!("nobody else holds it")
        })
        .expect("lock");
    let child = std::process::Command::cargo_bin("zodbfs-repozo")
        .expect("binary")
        .current_dir(&e.root)
        .env("REPOZO_TEST_NOW", NOW)
        .args(["-B", "-r", "repo", "-f", "Data.fs"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(500));
    assert!(e.names().is_empty(), "the backup ran under our lock");
    drop(held);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0));
    // The notice names the holder (this test process) and the bound of the wait.
    assert!(
        stderr(&out).contains(&format!(
            "the repository repo is locked by process {}",
            std::process::id()
        )) && stderr(&out).contains("waiting up to 600 s for it to finish"),
        "{}",
        stderr(&out)
    );
    assert_eq!(e.names().len(), 3, "{:?}", e.names());
}

#[test]
fn temporaries_of_an_interrupted_run_are_removed_and_python_s_are_not() {
    let e = Env::new();
    e.write("Data.fs", &datafs(5));
    // Temporaries of runs whose process is gone (pids above the kernel's pid_max), in the
    // names of earlier versions and of zfs-files.
    e.write("repo/.2010-05-14-02-03-04.fs.tmp.2147483632", b"half");
    e.write("repo/.2010-05-14-02-03-04.index.tmp.2147483632.1", b"half");
    e.write("repo/.2010-05-14-02-03-04.dat.tmp-2147483632-3", b"half");
    e.write("repo/tmp.tmp", b"python's");
    let o = e.run(NOW, &["-B", "-r", "repo", "-f", "Data.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        e.names(),
        [
            format!("{NOW}.dat"),
            format!("{NOW}.fs"),
            format!("{NOW}.index"),
            "tmp.tmp".to_string()
        ]
    );
}

#[test]
fn backups_in_one_second_get_strictly_later_stamps() {
    let e = Env::new();
    e.write("Data.fs", &datafs(5));
    for _ in 0..3 {
        let o = e.run(NOW, &["-B", "-F", "-r", "repo", "-f", "Data.fs"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let fulls: Vec<String> = e
        .names()
        .into_iter()
        .filter(|n| n.ends_with(".fs"))
        .collect();
    assert_eq!(
        fulls,
        [
            "2010-05-15-13-30-57.fs",
            "2010-05-15-13-30-58.fs",
            "2010-05-15-13-30-59.fs"
        ]
    );
    // Every run of that second (and restores) sees the newest one.
    let o = e.run(NOW, &["-V", "-v", "-r", "repo"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Verifying repo/2010-05-15-13-30-59.fs"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn corrupt_chain_files_give_one_line_and_status_1() {
    let e = Env::new();
    let v1 = datafs(30);
    e.write("Data.fs", &v1);
    assert_eq!(
        e.run(
            "2010-05-14-00-00-00",
            &["-B", "-z", "-r", "repo", "-f", "Data.fs"]
        )
        .status
        .code(),
        Some(0)
    );
    let v2 = datafs(60);
    e.write("Data.fs", &v2);
    assert_eq!(
        e.run(
            "2010-05-14-00-00-10",
            &["-B", "-z", "-r", "repo", "-f", "Data.fs"]
        )
        .status
        .code(),
        Some(0)
    );
    // Flip a byte in the middle of the incremental's compressed data.
    let z = e.path("repo/2010-05-14-00-00-10.deltafsz");
    let mut bytes = std::fs::read(&z).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&z, &bytes).expect("write");
    e.write("out.fs", b"precious");
    for args in [
        &["-R", "-r", "repo", "-o", "out.fs"][..],
        &["-R", "-w", "-r", "repo", "-o", "out.fs"],
        &["-V", "-r", "repo"],
        &["-B", "-r", "repo", "-f", "Data.fs"],
    ] {
        let o = e.run(NOW, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panick"), "{}", stderr(&o));
        assert_eq!(e.read("out.fs"), b"precious");
    }
    // Truncated: the same.
    bytes.truncate(mid);
    std::fs::write(&z, &bytes).expect("write");
    for args in [
        &["-R", "-r", "repo", "-o", "out.fs"][..],
        &["-V", "-r", "repo"],
    ] {
        let o = e.run(NOW, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{args:?}: {}", stderr(&o));
        assert_eq!(e.read("out.fs"), b"precious");
    }
}

#[test]
fn a_backup_that_cannot_be_recorded_leaves_nothing_behind() {
    let e = Env::new();
    e.write("Data.fs", &datafs(5));
    // The .dat cannot be written (a directory holds its name).
    std::fs::create_dir(e.path(&format!("repo/{NOW}.dat"))).expect("mkdir");
    let o = e.run(NOW, &["-B", "-r", "repo", "-f", "Data.fs"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert_eq!(e.names(), [format!("{NOW}.dat")], "no data file, no .index");
}

#[test]
fn sigint_stops_a_restore_between_chain_files_with_status_130() {
    use std::io::Read as _;
    let e = Env::new();
    let mut full = b"FS30".to_vec();
    full.resize(2 << 20, b'A');
    e.write("repo/2010-05-14-02-03-04.fs", &full);
    e.write("repo/2010-05-14-04-05-06.deltafs", &vec![b'B'; 2 << 20]);
    let mut child = std::process::Command::cargo_bin("zodbfs-repozo")
        .expect("binary")
        .current_dir(&e.root)
        .env("REPOZO_TEST_NOW", NOW)
        .args(["-R", "-r", "repo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    // Once 64 KB have arrived, the restore is inside the first file, blocked on the pipe
    // (it holds 64 KB more at most): the signal is handled before it writes on.
    let mut got = vec![0u8; 64 << 10];
    out.read_exact(&mut got).expect("read");
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    out.read_to_end(&mut got).expect("read");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
    // The first file was finished, the second never started.
    assert_eq!(got, full);
}

#[test]
fn sigterm_stops_a_backup_and_leaves_the_repository_empty() {
    let e = Env::new();
    // Incompressible-looking states: the gzip of the debug binary takes a while.
    let mut noise = zfs_testdata::Noise::new(0x9e37_79b9);
    let f = zfs_testdata::Maker::new().txns(200, |t| [(t % 13, noise.bytes(20_000))]);
    e.write("Data.fs", &f.into_bytes());
    let child = std::process::Command::cargo_bin("zodbfs-repozo")
        .expect("binary")
        .current_dir(&e.root)
        .env("REPOZO_TEST_NOW", NOW)
        .args(["-B", "-z", "-r", "repo", "-f", "Data.fs"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    signals::sigterm_once_handled(child.id());
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
    let left = e.names();
    assert!(left.is_empty(), "{left:?}");
    // The next run makes the backup.
    let o = e.run(NOW, &["-B", "-z", "-r", "repo", "-f", "Data.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(e.names().len(), 3);
}
