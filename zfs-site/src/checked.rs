//! The record of a tree's last consistency check (`NAME.<stamp>/.zodbfs-checked`, JSON),
//! written by `backup` and `verify`, read by `list`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::consistency::BlobCheck;
use crate::error::Result;
use crate::names::CHECKED;

/// When and how a tree was last checked, and what was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checked {
    /// UTC time of the check, as a repozo stamp.
    pub at: String,
    /// `backup` or `verify`.
    pub by: String,
    /// True when every blob record had its file with the recorded size.
    pub ok: bool,
    /// Blob records checked.
    pub records: u64,
    /// Blob files found.
    pub files: u64,
    /// Records without their file.
    pub missing: u64,
    /// Files of the wrong size.
    pub wrong_size: u64,
    /// Files no record names.
    pub orphans: u64,
}

impl Checked {
    /// The record of `check`, made now by `by`.
    pub fn of(check: &BlobCheck, by: &str) -> Checked {
        Checked {
            at: zfs_repozo::Stamp::now().format(),
            by: by.to_string(),
            ok: check.is_ok(),
            records: check.records,
            files: check.files,
            missing: check.missing_count,
            wrong_size: check.wrong_size_count,
            orphans: check.orphan_count,
        }
    }

    /// Writes the record into the tree at `tree`.
    pub fn write(&self, tree: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).expect("a plain struct serializes");
        let spec = zfs_files::OutputSpec::new(tree.join(CHECKED)).mode(0o600);
        zfs_files::write_file(spec, |w| w.write_all(&bytes))?;
        Ok(())
    }

    /// The tree's record, if it has a readable one.
    pub fn read(tree: &Path) -> Option<Checked> {
        let bytes = std::fs::read(tree.join(CHECKED)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}
