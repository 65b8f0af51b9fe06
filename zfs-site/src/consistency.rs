//! Does a blob directory hold every blob its Data.fs names? Each blob record must have its
//! file (`oid`/`tid` in the directory's layout), a regular file of the size recorded for
//! it when a size was recorded; a missing file is tomorrow's POSKeyError when the blob is
//! opened. Blob files no record names are orphans: harmless (a transaction committed after
//! the Data.fs was copied, or an aborted one), reported so they can be cleaned.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use zfs_format::blob::{parse_blob_path, rel_blob_path, Layout};
use zfs_format::{Oid, Tid};

use crate::tree::FileInfo;

/// How many paths of each kind a report lists (the counts are always complete).
pub const LISTED: usize = 1000;

/// A blob record whose file is missing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Missing {
    /// The object id, 16 hex digits.
    pub oid: String,
    /// The record's tid, 16 hex digits.
    pub tid: String,
    /// Where the file should be, relative to the blob directory.
    pub path: String,
    /// True when it is the object's newest blob record (the revision the site serves).
    pub current: bool,
}

/// A blob file whose size is not the one recorded for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WrongSize {
    /// The file, relative to the blob directory.
    pub path: String,
    /// The size recorded when it was backed up.
    pub expected: u64,
    /// The size found.
    pub found: u64,
}

/// The result of a consistency check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BlobCheck {
    /// Blob records in the Data.fs state.
    pub records: u64,
    /// Blob files found.
    pub files: u64,
    /// Number of records without their file.
    pub missing_count: u64,
    /// Records without their file (the first [`LISTED`]).
    pub missing: Vec<Missing>,
    /// Number of files of the wrong size.
    pub wrong_size_count: u64,
    /// Files of the wrong size (the first [`LISTED`]).
    pub wrong_size: Vec<WrongSize>,
    /// Number of blob files no record names.
    pub orphan_count: u64,
    /// Blob files no record names (the first [`LISTED`]).
    pub orphans: Vec<String>,
}

impl BlobCheck {
    /// True when every blob record has its file with a plausible size.
    pub fn is_ok(&self) -> bool {
        self.missing_count == 0 && self.wrong_size_count == 0
    }
}

/// Checks the blob records `records` (in file order) against the files of a blob
/// directory copy in `layout`. `expected` gives recorded sizes by path, when known.
pub fn check(
    records: &[(Oid, Tid)],
    layout: Layout,
    files: &[FileInfo],
    expected: Option<&HashMap<String, u64>>,
) -> BlobCheck {
    let mut out = BlobCheck {
        records: records.len() as u64,
        ..BlobCheck::default()
    };
    let mut present: HashMap<(Oid, Tid), &FileInfo> = HashMap::with_capacity(files.len());
    for f in files {
        if let Some(id) = parse_blob_path(&f.rel, layout) {
            present.insert(id, f);
        }
    }
    out.files = present.len() as u64;
    let mut newest: HashMap<Oid, Tid> = HashMap::with_capacity(records.len());
    for &(o, t) in records {
        newest.insert(o, t);
    }
    let mut named: HashSet<(Oid, Tid)> = HashSet::with_capacity(records.len());
    for &(o, t) in records {
        if !named.insert((o, t)) {
            continue;
        }
        match present.get(&(o, t)) {
            None => {
                out.missing_count += 1;
                if out.missing.len() < LISTED {
                    out.missing.push(Missing {
                        oid: o.to_string(),
                        tid: t.to_string(),
                        path: rel_blob_path(layout, o, t),
                        current: newest.get(&o) == Some(&t),
                    });
                }
            }
            Some(f) => {
                if let Some(&want) = expected.and_then(|e| e.get(&f.rel)) {
                    if want != f.size {
                        out.wrong_size_count += 1;
                        if out.wrong_size.len() < LISTED {
                            out.wrong_size.push(WrongSize {
                                path: f.rel.clone(),
                                expected: want,
                                found: f.size,
                            });
                        }
                    }
                }
            }
        }
    }
    let mut orphans: Vec<&str> = present
        .iter()
        .filter(|(id, _)| !named.contains(id))
        .map(|(_, f)| f.rel.as_str())
        .collect();
    orphans.sort_unstable();
    out.orphan_count = orphans.len() as u64;
    out.orphans = orphans
        .into_iter()
        .take(LISTED)
        .map(str::to_string)
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(rel: &str, size: u64) -> FileInfo {
        FileInfo {
            rel: rel.into(),
            size,
        }
    }

    #[test]
    fn missing_wrong_sized_and_orphan_files_are_found() {
        let (o1, o2) = (Oid::from_u64(1), Oid::from_u64(2));
        let (t1, t2, t3) = (
            Tid::from_u64(0x10),
            Tid::from_u64(0x20),
            Tid::from_u64(0x30),
        );
        let records = [(o1, t1), (o2, t2), (o1, t3)];
        let files = [
            f("0x01/0x10.blob", 5),
            f("0x02/0x20.blob", 9),
            f("0x09/0x99.blob", 1),
            f(".layout", 5),
        ];
        let expected: HashMap<String, u64> = [("0x02/0x20.blob".to_string(), 8)].into();
        let c = check(&records, Layout::Lawn, &files, Some(&expected));
        assert_eq!((c.records, c.files), (3, 3));
        assert_eq!(
            c.missing,
            vec![Missing {
                oid: o1.to_string(),
                tid: t3.to_string(),
                path: "0x01/0x30.blob".into(),
                current: true,
            }]
        );
        assert_eq!(c.wrong_size_count, 1);
        assert_eq!(c.orphans, vec!["0x09/0x99.blob".to_string()]);
        assert!(!c.is_ok());
        let files = [
            f("0x01/0x10.blob", 5),
            f("0x02/0x20.blob", 8),
            f("0x01/0x30.blob", 1),
        ];
        let c = check(&records, Layout::Lawn, &files, Some(&expected));
        assert!(c.is_ok() && c.orphan_count == 0, "{c:?}");
    }
}
