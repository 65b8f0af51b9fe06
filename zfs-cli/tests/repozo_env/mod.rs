//! What the `repozo` end-to-end tests share: a temporary directory with a `repo/` inside,
//! and the binary run there with a frozen clock (`REPOZO_TEST_NOW`).
// Each test crate that includes this module uses only part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;

use assert_cmd::Command;

pub struct Env {
    _dir: tempfile::TempDir,
    /// The directory the binary runs in.
    pub root: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        std::fs::create_dir(root.join("repo")).expect("mkdir");
        Env { _dir: dir, root }
    }
    pub fn path(&self, p: &str) -> PathBuf {
        self.root.join(p)
    }
    pub fn repo(&self) -> String {
        self.path("repo").to_str().expect("utf8").to_string()
    }
    pub fn write(&self, p: &str, bytes: &[u8]) {
        std::fs::write(self.path(p), bytes).expect("write");
    }
    pub fn read(&self, p: &str) -> Vec<u8> {
        std::fs::read(self.path(p)).expect("read")
    }
    /// The names in `repo/`, sorted, without the repository's lock file.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path("repo"))
            .expect("ls")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
            .filter(|n| n != zfs_repozo::repo::LOCK_FILE)
            .collect();
        v.sort();
        v
    }
    pub fn run(&self, now: &str, args: &[&str]) -> Output {
        Command::cargo_bin("zodbfs-repozo")
            .expect("binary")
            .current_dir(&self.root)
            .env("REPOZO_TEST_NOW", now)
            .args(args)
            .output()
            .expect("run")
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
