//! Integration tests of `zfs-format` against files made by real ZODB.

mod corpus;
mod fixtures;
mod mutated;

/// The repository's root (two levels above this crate's manifest).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate sits in the workspace")
        .to_path_buf()
}

/// The committed fixtures: `(name, Data.fs path, expected-outputs dir)`.
pub fn fixtures() -> Vec<(String, std::path::PathBuf, std::path::PathBuf)> {
    let dir = repo_root().join("testdata/fixtures");
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
