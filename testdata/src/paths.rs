//! Where test inputs live: the repository, its committed fixtures, the real corpus.

use std::path::{Path, PathBuf};

/// The environment variable naming the directory of real Data.fs files.
pub const CORPUS_VAR: &str = "ZFS_CORPUS";

/// The corpus directory when [`CORPUS_VAR`] is not set, relative to the repository.
pub const CORPUS_DEFAULT: &str = "../shared/corpus/real";

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testdata sits in the repository")
        .to_path_buf()
}

/// `path` as given when absolute, else taken relative to the repository's root.
pub fn in_repo(path: impl AsRef<Path>) -> PathBuf {
    let path = path.as_ref();
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        repo_root().join(path)
    }
}

/// The directory of committed fixtures, `testdata/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    repo_root().join("testdata/fixtures")
}

/// A committed fixture by its path under `testdata/fixtures` (`"small.fs"`,
/// `"pack/experiment.fs"`); panics naming the path when it is missing.
pub fn fixture(name: &str) -> PathBuf {
    let p = fixtures_dir().join(name);
    assert!(p.exists(), "fixture {} missing", p.display());
    p
}

/// Copies the directory tree `from` (a fixture's blob directory, say) to `to`, which must
/// not exist yet; panics naming what failed.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
    let entries = std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    for e in entries {
        let e = e.unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        let (src, dest) = (e.path(), to.join(e.file_name()));
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            copy_tree(&src, &dest);
        } else {
            std::fs::copy(&src, &dest).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        }
    }
}

/// The top-level fixtures with ZODB's answers beside them, sorted by name: `(name, the
/// Data.fs, its <name>.expected directory)`.
pub fn expected_fixtures() -> Vec<(String, PathBuf, PathBuf)> {
    let dir = fixtures_dir();
    let mut v = Vec::new();
    for e in std::fs::read_dir(&dir).expect("testdata/fixtures exists") {
        let p = e.expect("readable dir").path();
        if p.extension().is_some_and(|x| x == "fs") {
            let name = p
                .file_stem()
                .expect("has a name")
                .to_string_lossy()
                .into_owned();
            let expected = dir.join(format!("{name}.expected"));
            v.push((name, p, expected));
        }
    }
    v.sort();
    assert!(!v.is_empty(), "no fixtures in {}", dir.display());
    v
}

/// The real corpus directory: `$ZFS_CORPUS`, else `../shared/corpus/real`, relative paths
/// taken from the repository's root. It may not exist.
pub fn corpus_dir() -> PathBuf {
    in_repo(
        std::env::var_os(CORPUS_VAR).map_or_else(|| PathBuf::from(CORPUS_DEFAULT), PathBuf::from),
    )
}

/// The files of the real corpus, sorted; panics when there is none (for tests marked
/// `#[ignore = "needs the real corpus ..."]`, run with `--ignored`).
pub fn corpus_files() -> Vec<PathBuf> {
    let dir = corpus_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "no real corpus at {} ({e}): set {CORPUS_VAR} to a directory of Data.fs files",
            dir.display()
        )
    });
    let mut v: Vec<PathBuf> = entries
        .map(|e| e.expect("readable dir").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    assert!(
        !v.is_empty(),
        "the corpus directory {} is empty",
        dir.display()
    );
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_holds_the_fixtures() {
        assert!(repo_root().join("Cargo.toml").is_file());
        assert!(fixture("small.fs").is_file());
        assert!(expected_fixtures()
            .iter()
            .any(|(n, _, e)| n == "undo" && e.is_dir()));
    }

    #[test]
    fn relative_paths_are_taken_from_the_repository() {
        assert_eq!(in_repo("a/b"), repo_root().join("a/b"));
        assert_eq!(in_repo("/x/y"), PathBuf::from("/x/y"));
    }
}
