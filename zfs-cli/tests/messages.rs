//! What `zodbfs` says and which exit code it gives on the mistakes an administrator makes:
//! a wrong path, a bad option value, a bad date, a directory for a file; with `--json`, the
//! error as a JSON object; the one-line summaries of backup, restore and verify.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn zodbfs() -> Command {
    Command::cargo_bin("zodbfs").expect("the zodbfs binary is built")
}

fn repozo() -> Command {
    Command::cargo_bin("zodbfs-repozo").expect("the zodbfs-repozo binary is built")
}

/// A temporary directory with a small valid Data.fs in it.
fn site() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let p = d.path().join("Data.fs");
    std::fs::write(&p, zfs_testdata::datafs(20, 100)).expect("write");
    (d, p)
}

/// A repository holding one full backup of `file`.
fn repository(dir: &Path, file: &Path) -> PathBuf {
    let r = dir.join("repo");
    std::fs::create_dir(&r).expect("mkdir");
    zodbfs()
        .args(["-q", "backup"])
        .arg(file)
        .arg("-r")
        .arg(&r)
        .assert()
        .code(0);
    r
}

/// Files that are no FileStorage: random bytes, a text file, an empty file.
fn not_filestorages(dir: &Path) -> Vec<PathBuf> {
    let mut noise = Vec::with_capacity(3000);
    let mut x: u32 = 0x1234_5678;
    for _ in 0..3000 {
        // xorshift: fixed bytes that look random.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise.push(x as u8);
    }
    let files = [
        ("random.bin", noise),
        ("notes.txt", b"hello world, not a database\n".to_vec()),
        ("empty", Vec::new()),
    ];
    files
        .into_iter()
        .map(|(name, bytes)| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).expect("write");
            p
        })
        .collect()
}

#[test]
fn every_subcommand_says_not_a_filestorage_with_exit_1() {
    let d = tempfile::tempdir().expect("tempdir");
    let repo = d.path().join("repo");
    std::fs::create_dir(&repo).expect("mkdir");
    for f in not_filestorages(d.path()) {
        let f = f.to_str().expect("utf-8").to_string();
        let out = d.path().join("out.fs");
        let out = out.to_str().expect("utf-8");
        let repo = repo.to_str().expect("utf-8");
        let runs: Vec<Vec<&str>> = vec![
            vec!["info", &f],
            vec!["check", &f],
            vec!["refs", &f],
            vec!["stats", &f],
            vec!["oids", &f, "0"],
            vec!["recover", &f, out],
            vec!["pack", &f],
            vec!["dump", &f],
            vec!["tail", &f],
            vec!["records", &f],
            vec!["reindex", &f],
            vec!["backup", &f, "-r", repo],
        ];
        for args in runs {
            zodbfs()
                .args(&args)
                .assert()
                .code(1)
                .stderr(predicate::str::contains("not a FileStorage file"))
                .stderr(predicate::str::contains(f.as_str()));
        }
        assert!(!Path::new(out).exists(), "recover wrote nothing");
    }
}

#[test]
fn a_damaged_magic_before_real_transactions_is_damage() {
    let (_d, p) = site();
    let mut v = std::fs::read(&p).expect("read");
    v[..4].copy_from_slice(b"XX30");
    std::fs::write(&p, v).expect("write");
    zodbfs()
        .arg("check")
        .arg(&p)
        .assert()
        .code(3)
        .stdout(predicate::str::contains("bad-magic"));
}

#[test]
fn bad_option_values_are_usage_errors() {
    let (_d, p) = site();
    let p = p.to_str().expect("utf-8");
    for args in [
        vec!["pack", p, "--tid", "123"],
        vec!["pack", p, "--time", "yesterday"],
        vec!["pack", p, "--days", "-3"],
        vec!["oids", p, "zz"],
        vec!["tail", "-n", "many", p],
        vec!["backup", p, "-r", ".", "--level", "42"],
    ] {
        zodbfs()
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("error:"));
    }
}

#[test]
fn restore_refuses_a_date_that_is_no_date() {
    let (d, p) = site();
    let r = repository(d.path(), &p);
    let out = d.path().join("restored.fs");
    for date in [
        "garbage",
        "2026-13-45",
        "2026-02-30",
        "2026-12-04-25",
        "26-12-04",
    ] {
        zodbfs()
            .arg("restore")
            .arg(&r)
            .arg("-o")
            .arg(&out)
            .args(["-D", date])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!("-D \"{date}\"")));
        assert!(!out.exists(), "nothing restored for -D {date}");
    }
    // A real date (after the backup) restores.
    zodbfs()
        .arg("restore")
        .arg(&r)
        .arg("-o")
        .arg(&out)
        .args(["-D", "2999-12-31-23-59-59"])
        .assert()
        .code(0);
    assert_eq!(std::fs::read(&out).ok(), std::fs::read(&p).ok());
}

#[test]
fn repozo_keeps_pythons_answer_to_a_bad_date() {
    // Python repozo compares the text with the backups' names: "garbage" sorts after
    // every stamp, so the newest state is restored.
    let (d, p) = site();
    let r = repository(d.path(), &p);
    let out = d.path().join("restored.fs");
    repozo()
        .arg("-R")
        .arg("-r")
        .arg(&r)
        .arg("-o")
        .arg(&out)
        .args(["-D", "garbage"])
        .assert()
        .code(0);
    assert_eq!(std::fs::read(&out).ok(), std::fs::read(&p).ok());
}

#[test]
fn restore_to_a_directory_is_refused_in_our_words() {
    let (d, p) = site();
    let r = repository(d.path(), &p);
    let target = d.path().join("somewhere");
    std::fs::create_dir(&target).expect("mkdir");
    zodbfs()
        .arg("restore")
        .arg(&r)
        .arg("-o")
        .arg(&target)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is a directory"))
        .stderr(predicate::str::contains(target.to_str().expect("utf-8")))
        .stderr(predicate::str::contains("Errno").not());
}

#[test]
fn a_bad_gzip_level_in_the_environment_is_refused() {
    let (d, p) = site();
    let r = d.path().join("repo");
    std::fs::create_dir(&r).expect("mkdir");
    for level in ["42", "fast", "0"] {
        repozo()
            .env("ZFS_REPOZO_GZIP_LEVEL", level)
            .arg("-Bz")
            .arg("-r")
            .arg(&r)
            .arg("-f")
            .arg(&p)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("ZFS_REPOZO_GZIP_LEVEL"))
            .stderr(predicate::str::contains("1 to 9"));
        assert_eq!(std::fs::read_dir(&r).expect("ls").count(), 0);
    }
    repozo()
        .env("ZFS_REPOZO_GZIP_LEVEL", "9")
        .arg("-Bz")
        .arg("-r")
        .arg(&r)
        .arg("-f")
        .arg(&p)
        .assert()
        .code(0);
}

#[test]
fn short_and_long_help_open_alike_and_list_exit_codes() {
    let short = zodbfs()
        .arg("-h")
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let long = zodbfs()
        .arg("--help")
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let (short, long) = (
        String::from_utf8(short).expect("utf-8"),
        String::from_utf8(long).expect("utf-8"),
    );
    assert_eq!(short.lines().next(), long.lines().next());
    for text in [&short, &long] {
        assert!(text.contains("Exit codes:"), "{text}");
        assert!(text.contains("130 interrupted"), "{text}");
    }
}

#[test]
fn help_promises_only_the_exit_codes_a_subcommand_returns() {
    for cmd in ["stats", "oids"] {
        let out = zodbfs()
            .args([cmd, "--help"])
            .assert()
            .code(0)
            .get_output()
            .stdout
            .clone();
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains("Exit codes: 0"), "{text}");
        assert!(!text.contains("3 ="), "{cmd} never exits 3: {text}");
    }
    for cmd in ["check", "refs", "recover", "dump", "records", "verify"] {
        let out = zodbfs()
            .args([cmd, "--help"])
            .assert()
            .code(0)
            .get_output()
            .stdout
            .clone();
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains("3 = "), "{cmd}: {text}");
    }
    let out = zodbfs()
        .args(["recover", "--help"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).expect("utf-8");
    assert!(text.contains("structure only"), "{text}");
    assert!(text.contains("serial"), "{text}");
}

#[test]
fn with_json_an_error_is_a_json_object() {
    let d = tempfile::tempdir().expect("tempdir");
    let missing = d.path().join("missing.fs");
    let missing = missing.to_str().expect("utf-8");
    let (_s, p) = site();
    let p = p.to_str().expect("utf-8");
    let out = d.path().join("out.fs");
    let out = out.to_str().expect("utf-8");
    let runs: Vec<(Vec<&str>, i32)> = vec![
        (vec!["info", "--json", missing], 1),
        (vec!["check", "--json", missing], 1),
        (vec!["refs", "--json", missing], 1),
        (vec!["stats", "--json", missing], 1),
        (vec!["oids", "--json", missing, "0"], 1),
        (vec!["oids", "--json", p, "zz"], 2),
        (vec!["recover", "--json", missing, out], 1),
        (vec!["pack", "--json", missing], 1),
        (vec!["pack", "--json", p, "--time", "yesterday"], 2),
        (vec!["backup", "--json", missing, "-r", missing], 1),
        (vec!["restore", "--json", missing, "-o", out], 1),
        (vec!["verify", "--json", missing], 1),
        (vec!["list", "--json", missing], 1),
        (vec!["prune", "--json", missing, "--keep", "1"], 1),
        (vec!["standby", "--json", missing, out], 1),
        (vec!["info", "--json", "--no-such-option", p], 2),
    ];
    for (args, code) in runs {
        let o = zodbfs()
            .args(&args)
            .assert()
            .code(code)
            .get_output()
            .clone();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {:?}", o.stdout));
        assert_eq!(v["exit"], code, "{args:?}");
        let msg = v["error"].as_str().expect("error is text");
        assert!(!msg.is_empty(), "{args:?}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains(msg.lines().next().expect("a line")),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn errors_name_the_file_and_the_cause_once() {
    let d = tempfile::tempdir().expect("tempdir");
    let missing = d.path().join("missing.fs");
    let o = zodbfs()
        .arg("info")
        .arg(&missing)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let text = String::from_utf8(o.stderr).expect("utf-8");
    let name = missing.to_str().expect("utf-8");
    assert_eq!(text.matches(name).count(), 1, "{text}");
    assert_eq!(
        text.matches("No such file or directory").count(),
        1,
        "{text}"
    );
}

#[test]
fn backup_restore_and_verify_say_one_line_and_nothing_with_q() {
    let (d, p) = site();
    let r = d.path().join("repo");
    std::fs::create_dir(&r).expect("mkdir");
    let size = std::fs::metadata(&p).expect("stat").len();
    let o = zodbfs()
        .arg("backup")
        .arg(&p)
        .arg("-r")
        .arg(&r)
        .assert()
        .code(0)
        .get_output()
        .clone();
    let text = String::from_utf8(o.stderr).expect("utf-8");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains(&format!("full backup of '{}': {size} bytes", p.display())),
        "{text}"
    );
    assert!(!text.contains(".."), "no range notation: {text}");
    // Something to add for an incremental.
    std::fs::write(&p, zfs_testdata::datafs(25, 100)).expect("write");
    let o = zodbfs()
        .arg("backup")
        .arg(&p)
        .arg("-r")
        .arg(&r)
        .assert()
        .code(0)
        .get_output()
        .clone();
    let text = String::from_utf8(o.stderr).expect("utf-8");
    assert!(text.contains(&format!("from offset {size} to")), "{text}");

    let o = zodbfs()
        .arg("verify")
        .arg(&r)
        .assert()
        .code(0)
        .get_output()
        .clone();
    let text = String::from_utf8(o.stderr).expect("utf-8");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("2 backup files verified"), "{text}");

    let out = d.path().join("restored.fs");
    let o = zodbfs()
        .arg("restore")
        .arg(&r)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(0)
        .get_output()
        .clone();
    let text = String::from_utf8(o.stderr).expect("utf-8");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains(&format!("restored '{}' in full", out.display())),
        "{text}"
    );

    for args in [
        vec![
            "-q",
            "backup",
            p.to_str().expect("utf-8"),
            "-r",
            r.to_str().expect("utf-8"),
        ],
        vec!["-q", "verify", r.to_str().expect("utf-8")],
        vec![
            "-q",
            "restore",
            r.to_str().expect("utf-8"),
            "-o",
            out.to_str().expect("utf-8"),
        ],
    ] {
        zodbfs().args(&args).assert().code(0).stderr("").stdout("");
    }
}

#[test]
fn restore_to_stdout_keeps_stdout_for_the_data_even_with_json() {
    let d = tempfile::tempdir().expect("tempdir");
    let missing = d.path().join("no-repo");
    zodbfs()
        .args(["restore", "--json", "-o", "-"])
        .arg(&missing)
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("no-repo"));
}

#[test]
fn an_empty_repository_or_a_date_before_every_backup_is_said_in_our_words() {
    let (d, file) = site();
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    zodbfs()
        .arg("restore")
        .arg(&empty)
        .arg("-o")
        .arg(d.path().join("out.fs"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no backup in the repository"))
        .stderr(predicate::str::contains("No files in repository").not());
    let repo = repository(d.path(), &file);
    zodbfs()
        .arg("restore")
        .arg(&repo)
        .args(["-D", "2000-01-01"])
        .arg("-o")
        .arg(d.path().join("out.fs"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("as of 2000-01-01"));
    assert!(!d.path().join("out.fs").exists());
    // zodbfs-repozo keeps Python repozo's words.
    repozo()
        .args(["-R", "-r"])
        .arg(&empty)
        .arg("-o")
        .arg(d.path().join("out.fs"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("No files in repository"));
}
