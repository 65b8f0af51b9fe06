//! The references RelStorage's pre-pack records in `object_ref`: for each state, the set of
//! oids ZODB's `referencesf` returns (bare oids and `(oid, class)` forms; cross-database
//! and weak forms are not among them), as integers (`relstorage/storage/pack.py`).

use std::collections::BTreeSet;
use std::path::PathBuf;

use zfs_format::pickle::{references, StringMode};
use zfs_format::DataRecord;

use crate::error::{ConvertError, Result};
use crate::View;

/// Reads the references of states, for the pack tables.
pub(crate) struct RefScanner {
    mode: StringMode,
    path: PathBuf,
}

impl RefScanner {
    /// A scanner for the pickles of `fs`.
    pub(crate) fn new(fs: &View<'_>) -> Self {
        RefScanner {
            mode: fs.magic().string_mode(),
            path: fs.path().to_path_buf(),
        }
    }

    /// The distinct oids `state` (the resolved state of `rec`) refers to, in order.
    pub(crate) fn oids(&mut self, state: &[u8], rec: &DataRecord<'_>) -> Result<BTreeSet<u64>> {
        let bad = |why: String| {
            ConvertError::Unsupported(format!(
                "'{}': the references of oid {} in the record at offset {} cannot be read \
                 ({why}), and RelStorage's pack could not read them either; convert without \
                 --pack-refs",
                self.path.display(),
                rec.oid,
                rec.pos
            ))
        };
        let found = references(state, self.mode).map_err(|e| bad(e.to_string()))?;
        found
            .iter()
            .map(|o| {
                <[u8; 8]>::try_from(&o[..])
                    .map(u64::from_be_bytes)
                    .map_err(|_| bad(format!("an oid of {} bytes", o.len())))
            })
            .collect()
    }
}
