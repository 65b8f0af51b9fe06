//! Blob files of the source and the large objects RelStorage keeps them in.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use postgres::GenericClient;
use zfs_format::blob::{self, Layout};

use crate::error::{ConvertError, DbContext, Result};

/// How much of a blob file one request to PostgreSQL carries.
const PIECE: usize = 4 << 20;

/// Whether a record's state is a blob record, as ZODB's `is_blob_record` decides on the
/// bytes as stored (zodbconvert does not untransform compressed records first).
pub(crate) fn is_blob(state: &[u8]) -> bool {
    !state.starts_with(b".z") && blob::is_blob_record(state)
}

/// A source blob directory.
#[derive(Clone, Debug)]
pub(crate) struct BlobDir {
    dir: PathBuf,
    layout: Layout,
}

impl BlobDir {
    /// Opens `dir`, reading its layout.
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        let layout = zfs_pack::blob::layout(dir)
            .map_err(|e| ConvertError::io(dir, io::Error::other(e.to_string())))?;
        Ok(BlobDir {
            dir: dir.to_path_buf(),
            layout,
        })
    }

    /// The committed blob file of (oid, tid).
    pub(crate) fn path(&self, oid: u64, tid: u64) -> PathBuf {
        blob::blob_path(&self.dir, self.layout, oid, tid)
    }
}

/// Copies the file at `path` into a new large object; `None` when the file does not exist
/// (zodbconvert then stores the object without a blob).
pub(crate) fn upload(c: &mut impl GenericClient, path: &Path) -> Result<Option<u32>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ConvertError::io(path, e)),
    };
    let mut buf = vec![0u8; PIECE];
    let mut oid: Option<u32> = None;
    let mut offset: i64 = 0;
    loop {
        let n = read_full(&mut f, &mut buf).map_err(|e| ConvertError::io(path, e))?;
        let piece = &buf[..n];
        match oid {
            None => {
                let row = c
                    .query_one("SELECT lo_from_bytea(0, $1)", &[&piece])
                    .db(|| format!("storing blob '{}' as a large object", path.display()))?;
                oid = Some(row.get(0));
            }
            Some(o) if n > 0 => {
                c.execute("SELECT lo_put($1, $2, $3)", &[&o, &offset, &piece])
                    .db(|| format!("storing blob '{}' as a large object", path.display()))?;
            }
            Some(_) => {}
        }
        offset += n as i64;
        if n < buf.len() {
            break;
        }
    }
    Ok(oid)
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_records() {
        assert!(is_blob(b"\x80\x03cZODB.blob\nBlob\nq\x00.\x80\x03N."));
        assert!(!is_blob(b"\x80\x03cZODB.blob\nBlobX\nq\x00.\x80\x03N."));
        assert!(!is_blob(b".zx\x9c"));
    }
}
