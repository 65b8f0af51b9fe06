//! Blobs: which data records are blob records, and where ZODB keeps their files.
//!
//! A blob object's record holds only the class `ZODB.blob.Blob` (and an empty state); its
//! bytes live in a file of the storage's blob directory named by the oid and the record's
//! tid. ZODB's `FilesystemHelper` has two layouts (`ZODB/blob.py`, `BushyLayout` and
//! `LawnLayout`), recorded in the directory's `.layout` file:
//!
//! - bushy: `0x00/0x00/0x00/0x00/0x00/0x00/0x00/0x1a/0x03f58e007bbbbbbb.blob`, one
//!   directory level per oid byte;
//! - lawn: `0x1a/0x03f58e007bbbbbbb.blob`, one directory per oid named by its `oid_repr`.

use std::path::{Path, PathBuf};

use crate::ids::{Oid, Tid};

/// Whether `data` (a record's payload, possibly zlib-transformed) is a blob record: as
/// ZODB's `is_blob_record`, its first pickle must evaluate to exactly the class
/// `ZODB.blob.Blob`. We accept the forms a pickler writes for a bare class: optional
/// `PROTO`, `GLOBAL 'ZODB.blob Blob'`, optional memo put, `STOP`.
pub fn is_blob_record(data: &[u8]) -> bool {
    // Only a `.z`/`.h` transformed record needs decoding before its first bytes are read.
    let plain = match crate::pickle::untransform(data) {
        Ok(p) => p,
        Err(_) => return false,
    };
    let mut p: &[u8] = &plain;
    if p.first() == Some(&0x80) {
        p = p.get(2..).unwrap_or_default();
    }
    let Some(rest) = p.strip_prefix(b"cZODB.blob\nBlob\n") else {
        return false;
    };
    let rest = match rest.first() {
        Some(b'q') => rest.get(2..).unwrap_or_default(),
        Some(b'r') => rest.get(5..).unwrap_or_default(),
        Some(b'p') => match rest.iter().position(|&c| c == b'\n') {
            Some(i) => &rest[i + 1..],
            None => return false,
        },
        _ => rest,
    };
    rest.first() == Some(&b'.')
}

/// The two directory layouts of ZODB blob directories.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `0xHH/0xHH/.../0xHH` (8 levels, one per oid byte).
    Bushy,
    /// One directory per oid named by its `oid_repr`.
    Lawn,
}

impl Layout {
    /// The name written in the `.layout` marker.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Bushy => "bushy",
            Layout::Lawn => "lawn",
        }
    }

    /// The layout of `dir` as ZODB selects it (`auto_layout_select`): the `.layout` marker,
    /// else bushy for a missing or empty directory, lawn for one already holding entries.
    pub fn of_dir(dir: &Path) -> std::io::Result<Layout> {
        let marker = dir.join(".layout");
        match std::fs::read_to_string(&marker) {
            Ok(s) => {
                return Ok(if s.trim() == "lawn" {
                    Layout::Lawn
                } else {
                    Layout::Bushy
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let Ok(rd) = std::fs::read_dir(dir) else {
            return Ok(Layout::Bushy);
        };
        for e in rd.flatten() {
            if !e.file_name().to_string_lossy().starts_with('.') {
                return Ok(Layout::Lawn);
            }
        }
        Ok(Layout::Bushy)
    }
}

pub use crate::repr::id_repr;

/// Path of an oid's directory under `dir`.
pub fn oid_path(dir: &Path, layout: Layout, oid: u64) -> PathBuf {
    match layout {
        Layout::Bushy => {
            let mut p = dir.to_path_buf();
            for b in oid.to_be_bytes() {
                p.push(format!("0x{b:02x}"));
            }
            p
        }
        Layout::Lawn => dir.join(id_repr(oid)),
    }
}

/// Path of a committed blob file under `dir`.
pub fn blob_path(dir: &Path, layout: Layout, oid: u64, tid: u64) -> PathBuf {
    oid_path(dir, layout, oid).join(format!("{}.blob", id_repr(tid)))
}

/// Parses a `0x`-prefixed hex id of 1 to 16 digits.
fn parse_repr(s: &str) -> Option<u64> {
    let hex = s.strip_prefix("0x")?;
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The tid a committed blob file's name (`0x….blob`, in its oid's directory) names.
pub fn blob_file_tid(name: &str) -> Option<u64> {
    parse_repr(name.strip_suffix(".blob")?)
}

/// The oid and tid a blob file's path (relative to the blob directory, components joined
/// by `/`) names in `layout`, or `None` when it is not a committed blob file's path.
pub fn parse_blob_path(rel: &str, layout: Layout) -> Option<(Oid, Tid)> {
    let (dirs, file) = rel.rsplit_once('/')?;
    let tid = blob_file_tid(file)?;
    let oid = match layout {
        Layout::Lawn => parse_repr(dirs).filter(|_| !dirs.contains('/'))?,
        Layout::Bushy => {
            let mut v: u64 = 0;
            let mut n = 0;
            for part in dirs.split('/') {
                let hex = part.strip_prefix("0x").filter(|h| h.len() == 2)?;
                v = (v << 8) | u64::from(u8::from_str_radix(hex, 16).ok()?);
                n += 1;
                if n > 8 {
                    return None;
                }
            }
            if n != 8 {
                return None;
            }
            v
        }
    };
    Some((Oid::from_u64(oid), Tid::from_u64(tid)))
}

/// The path of a blob file relative to its blob directory, `/`-separated.
pub fn rel_blob_path(layout: Layout, oid: Oid, tid: Tid) -> String {
    blob_path(Path::new(""), layout, oid.as_u64(), tid.as_u64())
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_records() {
        // The class pickle ZODB writes for a Blob (protocol 3), then a state pickle.
        assert!(is_blob_record(
            b"\x80\x03cZODB.blob\nBlob\nq\x00.\x80\x03N."
        ));
        assert!(is_blob_record(b"cZODB.blob\nBlob\np0\n.N."));
        assert!(!is_blob_record(b"\x80\x03cZODB.blob\nBlobX\nq\x00.N."));
        assert!(!is_blob_record(
            b"\x80\x03cZODB.blob\nBlob\nq\x00N\x86q\x01."
        ));
        assert!(!is_blob_record(b"\x80\x03cfoo\nBar\nq\x00.ZODB.blob"));
        assert!(!is_blob_record(b""));
    }

    #[test]
    fn paths() {
        let d = Path::new("/b");
        assert_eq!(
            oid_path(d, Layout::Bushy, 0x1a),
            Path::new("/b/0x00/0x00/0x00/0x00/0x00/0x00/0x00/0x1a")
        );
        assert_eq!(oid_path(d, Layout::Lawn, 0x1a), Path::new("/b/0x1a"));
        assert_eq!(oid_path(d, Layout::Lawn, 0), Path::new("/b/0x00"));
        assert_eq!(
            blob_path(d, Layout::Lawn, 0x1a, 0x03f58e007bbbbbbb),
            Path::new("/b/0x1a/0x03f58e007bbbbbbb.blob")
        );
        assert_eq!(id_repr(0x3f58e007bbbbbbb), "0x03f58e007bbbbbbb");
    }

    #[test]
    fn blob_file_names() {
        assert_eq!(
            blob_file_tid("0x03f58e007bbbbbbb.blob"),
            Some(0x03f58e007bbbbbbb)
        );
        assert_eq!(blob_file_tid("0x01.blob"), Some(1));
        for bad in [
            "0x01.blobx",
            "01.blob",
            "0x.blob",
            "0x0g.blob",
            "0x00000000000000001.blob",
        ] {
            assert_eq!(blob_file_tid(bad), None, "{bad}");
        }
    }

    #[test]
    fn paths_parse_back() {
        for layout in [Layout::Bushy, Layout::Lawn] {
            for (oid, tid) in [(0x1a, 0x03f58e007bbbbbbb), (0, 1), (u64::MAX, u64::MAX)] {
                let (o, t) = (Oid::from_u64(oid), Tid::from_u64(tid));
                let rel = rel_blob_path(layout, o, t);
                assert_eq!(parse_blob_path(&rel, layout), Some((o, t)), "{rel}");
            }
        }
        for bad in [
            "0x1a/0x03.blobx",
            "0x1a/03.blob",
            "0x1a/0x.blob",
            "x/0x01.blob",
            "0x01.blob",
            "0x1a/0x1b/0x01.blob",
        ] {
            assert_eq!(parse_blob_path(bad, Layout::Lawn), None, "{bad}");
        }
        assert_eq!(parse_blob_path("0x1a/0x01.blob", Layout::Bushy), None);
        assert_eq!(
            parse_blob_path(
                "0x00/0x00/0x00/0x00/0x00/0x00/0x00/0x1a/0x1a/0x01.blob",
                Layout::Bushy
            ),
            None
        );
    }
}
