//! Incremental restore through the binaries: `repozo -R -o EXISTING` (with the messages
//! proposed for Python repozo), `zodbfs restore` and `zodbfs standby` (text and JSON), and
//! the standby's refusal while a ZODB has the target open.

use std::process::Command;

use assert_cmd::cargo::CommandCargoExt as _;

mod repozo_env;
use repozo_env::{stderr, Env};

const T1: &str = "2010-05-14-02-03-04";
const T2: &str = "2010-05-14-03-03-04";
const T3: &str = "2010-05-14-04-03-04";
const NOW: &str = "2010-05-15-13-30-57";

/// Four states of a growing FileStorage (the first three are backed up by `chain`).
fn states() -> [Vec<u8>; 4] {
    let mut f = zfs_testdata::Maker::new();
    let mut out = Vec::new();
    for t in 0..40u64 {
        f.txn([(t % 7, format!("state {t} {}", "x".repeat(300)))]);
        if t % 10 == 9 {
            out.push(f.bytes());
        }
    }
    out.try_into().expect("four states")
}

/// A repository with a full backup of the first state and incrementals of the others.
fn chain(e: &Env, s: &[Vec<u8>; 4], gzip: bool) {
    for (t, v) in [(T1, &s[0]), (T2, &s[1]), (T3, &s[2])] {
        e.write("Data.fs", v);
        let mut args = vec!["-B", "-r", "repo", "-f", "Data.fs"];
        if gzip {
            args.push("-z");
        }
        let o = e.run(t, &args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
}

fn zodbfs(e: &Env, args: &[&str]) -> std::process::Output {
    Command::cargo_bin("zodbfs")
        .expect("binary")
        .current_dir(&e.root)
        .args(args)
        .output()
        .expect("run")
}

#[test]
fn repozo_appends_to_an_existing_output_and_says_so_with_v() {
    let s = states();
    for gzip in [false, true] {
        let e = Env::new();
        chain(&e, &s, gzip);
        let o = e.run(NOW, &["-R", "-r", "repo", "-D", T1, "-o", "out.fs"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let o = e.run(NOW, &["-R", "-v", "-r", "repo", "-o", "out.fs"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(e.read("out.fs"), s[2]);
        let z = if gzip { "z" } else { "" };
        let err = stderr(&o);
        let want = format!(
            "Recovering (incrementally) file to out.fs\n\
             remaining files needed to recover incrementally onto target file:\n\
             \trepo/{T2}.deltafs{z}\n\
             \trepo/{T3}.deltafs{z}\n"
        );
        assert!(err.contains(&want), "{err}");
        assert!(
            err.ends_with(&format!(
                "Restoring index file repo/{T3}.index to out.fs.index\n"
            )),
            "{err}"
        );
        assert_eq!(e.read("out.fs.index"), e.read(&format!("repo/{T3}.index")));
        // Again: nothing to do.
        let o = e.run(NOW, &["-R", "-v", "-r", "repo", "-o", "out.fs"]);
        assert!(
            stderr(&o).contains("Target file is same size as latest backup, doing nothing."),
            "{}",
            stderr(&o)
        );
        // -F rebuilds; -F and -Q together: -Q is ignored, as proposed upstream.
        let o = e.run(NOW, &["-R", "-v", "-F", "-Q", "-r", "repo", "-o", "out.fs"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("--quick option is ignored if --full option is used"),
            "{err}"
        );
        assert!(!err.contains("incrementally"), "{err}");
        assert_eq!(e.read("out.fs"), s[2]);
        // A damaged target: the fallback says why.
        let mut bad = s[1].clone();
        bad[20] ^= 1;
        e.write("out.fs", &bad);
        let o = e.run(NOW, &["-R", "-v", "-r", "repo", "-o", "out.fs"]);
        assert!(
            stderr(&o).contains(&format!(
                "Target file is not consistent with backup repo/{T1}.fs{z}, falling back to a full recover."
            )),
            "{}",
            stderr(&o)
        );
        assert_eq!(e.read("out.fs"), s[2]);
    }
}

#[test]
fn zodbfs_restore_reports_what_it_did() {
    let s = states();
    let e = Env::new();
    chain(&e, &s, false);
    let o = zodbfs(&e, &["restore", "repo", "-D", T2, "-o", "out.fs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with(&format!(
            "restored 'out.fs' in full from 2 backup files: {} bytes; ",
            s[1].len()
        )),
        "{}",
        stderr(&o)
    );
    let o = zodbfs(&e, &["restore", "repo", "-o", "out.fs", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["method"], "appended");
    assert_eq!(v["from"], s[1].len() as u64);
    assert_eq!(v["size"], s[2].len() as u64);
    assert_eq!(v["bytes"], (s[2].len() - s[1].len()) as u64);
    assert_eq!(v["appended"][0], format!("repo/{T3}.deltafs"));
    assert_eq!(e.read("out.fs"), s[2]);
    let o = zodbfs(&e, &["restore", "repo", "-D", T1, "-o", "out.fs", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["method"], "full");
    assert!(v["reason"]
        .as_str()
        .expect("a reason")
        .starts_with("Target file is larger than latest backup"));
    assert_eq!(e.read("out.fs"), s[0]);
}

#[test]
fn standby_brings_the_target_to_the_newest_state() {
    let s = states();
    let e = Env::new();
    chain(&e, &s, true);
    // A fresh standby: a full restore.
    let o = zodbfs(&e, &["standby", "repo", "standby.fs", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["method"], "full");
    assert_eq!(e.read("standby.fs"), s[2]);
    // Nothing new.
    let o = zodbfs(&e, &["standby", "repo", "standby.fs"]);
    assert!(
        stderr(&o).starts_with(&format!(
            "'standby.fs' holds that state already ({} bytes)",
            s[2].len()
        )),
        "{}",
        stderr(&o)
    );
    // A new backup arrives: appended.
    let more = s[3].clone();
    e.write("Data.fs", &more);
    let o = e.run(
        "2010-05-15-00-00-00",
        &["-B", "-z", "-r", "repo", "-f", "Data.fs"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = zodbfs(&e, &["standby", "repo", "standby.fs", "-Q"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with(&format!(
            "appended {} bytes (1 backup file) to 'standby.fs' from offset {}",
            s[3].len() - s[2].len(),
            s[2].len()
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(e.read("standby.fs"), more);
    // A ZODB has the standby open: refused, nothing changed.
    let lock = std::fs::File::create(e.path("standby.fs.lock")).expect("lock file");
    lock.lock().expect("flock");
    let before = e.read("standby.fs");
    let o = zodbfs(&e, &["standby", "repo", "standby.fs"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is open in a running ZODB"),
        "{}",
        stderr(&o)
    );
    assert_eq!(e.read("standby.fs"), before);
}
