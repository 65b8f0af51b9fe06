//! The oracle: a Python with the pinned ZODB (`testdata/oracle/setup.sh` makes it) and the
//! scripts beside it.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::paths::{in_repo, repo_root};

/// The environment variable naming the oracle's python (the conformance scripts export it).
pub const PYTHON_VAR: &str = "ORACLE_PY";

/// Where the oracle's python is looked for: `$ORACLE_PY`, else the python of the virtualenv
/// `setup.sh` makes (`$ZFS_VENV`, default `testdata/oracle/.venv`); relative paths are taken
/// from the repository's root.
pub fn python_candidate() -> PathBuf {
    if let Some(p) = std::env::var_os(PYTHON_VAR) {
        return in_repo(p);
    }
    let venv = std::env::var_os("ZFS_VENV")
        .map_or_else(|| repo_root().join("testdata/oracle/.venv"), in_repo);
    venv.join("bin/python")
}

/// The oracle's python when it is there and imports ZODB.
pub fn python() -> Option<PathBuf> {
    let p = python_candidate();
    Command::new(&p)
        .args(["-c", "import ZODB.FileStorage"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        .then_some(p)
}

/// The oracle's python; panics saying how to make it (for tests marked
/// `#[ignore = "needs the ZODB oracle ..."]`, run with `--ignored`).
pub fn require_python() -> PathBuf {
    python().unwrap_or_else(|| {
        panic!(
            "no python with ZODB at {}: run testdata/oracle/setup.sh or set {PYTHON_VAR}",
            python_candidate().display()
        )
    })
}

/// A script of `testdata/oracle` by name.
pub fn script(name: &str) -> PathBuf {
    repo_root().join("testdata/oracle").join(name)
}
