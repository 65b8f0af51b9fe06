//! The manifest a blob backup tree carries: its files with their sizes, and the blob
//! records of the Data.fs state it goes with (so the next backup reads only the new
//! transactions, and `verify` checks sizes and records without the Data.fs).
//!
//! A text file, `NAME.<stamp>/.zodbfs-manifest`:
//!
//! ```text
//! zodbfs blob manifest 1
//! stamp 2026-10-01-03-00-05
//! dir blobstorage
//! layout bushy
//! datafs-end 123456
//! R 000000000000001a03f58e007bbbbbbb      one per blob record: oid and tid, hex
//! F 5120 0x00/.../0x1a/0x03f58e007bbbbbbb.blob      one per file: size and path
//! ```

use std::path::Path;

use zfs_format::blob::Layout;
use zfs_format::{Oid, Tid};

use crate::error::{Error, Result};
use crate::names::MANIFEST;
use crate::tree::FileInfo;

const HEADER: &str = "zodbfs blob manifest 1";

/// What a tree holds and what its Data.fs state names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The tree's stamp.
    pub stamp: String,
    /// The name of the blob directory backed up.
    pub dir: String,
    /// Its layout.
    pub layout: Option<Layout>,
    /// The end of the Data.fs state (its size once restored); 0 when unknown.
    pub datafs_end: u64,
    /// The blob records of that state, in file order.
    pub records: Vec<(Oid, Tid)>,
    /// Every regular file of the blob directory's copy.
    pub files: Vec<FileInfo>,
}

impl Manifest {
    /// Total bytes of the files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Writes the manifest into the tree at `tree` (through a private temporary).
    pub fn write(&self, tree: &Path) -> Result<()> {
        let spec = zfs_files::OutputSpec::new(tree.join(MANIFEST)).mode(0o600);
        zfs_files::write_file(spec, |w| {
            writeln!(w, "{HEADER}")?;
            writeln!(w, "stamp {}", self.stamp)?;
            writeln!(w, "dir {}", self.dir)?;
            if let Some(l) = self.layout {
                writeln!(w, "layout {}", l.name())?;
            }
            writeln!(w, "datafs-end {}", self.datafs_end)?;
            for (o, t) in &self.records {
                writeln!(w, "R {o}{t}")?;
            }
            for f in &self.files {
                writeln!(w, "F {} {}", f.size, f.rel)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Reads the manifest of the tree at `tree`; `None` when it has none (a tree made by
    /// another tool).
    pub fn read(tree: &Path) -> Result<Option<Manifest>> {
        let path = tree.join(MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("reading", path, e)),
        };
        parse(&text)
            .map(Some)
            .map_err(|line| Error::BadManifest { path, line })
    }
}

/// Parses a manifest; on failure, the 1-based number of the first bad line.
fn parse(text: &str) -> std::result::Result<Manifest, usize> {
    let mut m = Manifest::default();
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, HEADER)) => {}
        _ => return Err(1),
    }
    for (i, line) in lines {
        let bad = || i + 1;
        let (key, rest) = line.split_once(' ').ok_or_else(bad)?;
        match key {
            "R" => {
                let (o, t) = (
                    rest.get(..16).ok_or_else(bad)?,
                    rest.get(16..).ok_or_else(bad)?,
                );
                let o = Oid::from_hex(o).filter(|_| t.len() == 16).ok_or_else(bad)?;
                let t = Tid::from_hex(t).ok_or_else(bad)?;
                m.records.push((o, t));
            }
            "F" => {
                let (size, rel) = rest.split_once(' ').ok_or_else(bad)?;
                let size = size.parse().map_err(|_| bad())?;
                m.files.push(FileInfo {
                    rel: rel.to_string(),
                    size,
                });
            }
            "stamp" => m.stamp = rest.to_string(),
            "dir" => m.dir = rest.to_string(),
            "layout" => {
                m.layout = Some(match rest {
                    "bushy" => Layout::Bushy,
                    "lawn" => Layout::Lawn,
                    _ => return Err(bad()),
                })
            }
            "datafs-end" => m.datafs_end = rest.parse().map_err(|_| bad())?,
            // Keys of later versions are skipped.
            _ => {}
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let d = tempfile::tempdir().expect("tempdir");
        let m = Manifest {
            stamp: "2026-10-01-03-00-05".into(),
            dir: "blobstorage".into(),
            layout: Some(Layout::Lawn),
            datafs_end: 4242,
            records: vec![(Oid::from_u64(0x1a), Tid::from_u64(0x03f58e007bbbbbbb))],
            files: vec![
                FileInfo {
                    rel: "0x1a/0x03f58e007bbbbbbb.blob".into(),
                    size: 7,
                },
                FileInfo {
                    rel: "with space/x".into(),
                    size: 0,
                },
            ],
        };
        m.write(d.path()).expect("write");
        assert_eq!(Manifest::read(d.path()).expect("read"), Some(m));
        assert_eq!(Manifest::read(&d.path().join("none")).expect("read"), None);
        for bad in [
            "nope",
            "zodbfs blob manifest 1\nR 12",
            "zodbfs blob manifest 1\nF x y",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
