//! The manifest: what an unfinished conversion has copied, kept in the destination itself.
//!
//! A table `zodbfs_convert_manifest (key, value)` in the destination's `public` schema. Each
//! copy stream updates its own key in the same PostgreSQL transaction that commits its rows,
//! so after a kill the manifest says exactly what is in the tables. The last transaction of
//! a conversion drops it, so a finished database holds only RelStorage's schema.

use std::collections::BTreeMap;

use postgres::GenericClient;

use crate::error::{DbContext, Result};

/// The manifest table's name.
pub const TABLE: &str = "zodbfs_convert_manifest";

/// Manifest keys.
pub(crate) mod key {
    /// Format of the manifest itself.
    pub const FORMAT: &str = "format";
    /// `history-preserving` or `history-free`.
    pub const MODE: &str = "mode";
    /// The source's path when the conversion started (for messages only).
    pub const SOURCE: &str = "source";
    /// MD5 of the source's first bytes, up to 1 MiB or the bulk end.
    pub const HEAD_MD5: &str = "head_md5";
    /// Where the bulk copy ends in the source.
    pub const END_POS: &str = "end_pos";
    /// The tid of the last transaction of the bulk copy.
    pub const END_TID: &str = "end_tid";
    /// `1` when the pack tables are filled too.
    pub const PACK_REFS: &str = "pack_refs";
    /// Number of object streams.
    pub const STREAMS: &str = "streams";
    /// `load` (bulk copy running), or `follow` (bulk finished; later transactions being
    /// copied one by one).
    pub const PHASE: &str = "phase";
    /// In phase `follow`: where the next transaction to copy starts.
    pub const FOLLOW_POS: &str = "follow_pos";
    /// In phase `follow`: the tid of the last transaction copied.
    pub const FOLLOW_TID: &str = "follow_tid";
    /// Prefix of the saved constraint and index definitions.
    pub const DDL: &str = "ddl.";
    /// Prefix of the per-stream progress.
    pub const STREAM: &str = "stream.";
}

/// The current manifest format.
pub(crate) const FORMAT: &str = "1";

/// True when the destination has a manifest table.
pub(crate) fn exists(c: &mut impl GenericClient) -> Result<bool> {
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_name = $1)",
            &[&TABLE],
        )
        .db(|| "looking for a conversion manifest".into())?;
    Ok(row.get(0))
}

/// Reads every entry.
pub(crate) fn load(c: &mut impl GenericClient) -> Result<BTreeMap<String, String>> {
    let rows = c
        .query(&format!("SELECT key, value FROM {TABLE}"), &[])
        .db(|| "reading the conversion manifest".into())?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Creates the table with `entries`.
pub(crate) fn create(c: &mut impl GenericClient, entries: &BTreeMap<String, String>) -> Result<()> {
    c.batch_execute(&format!(
        "CREATE TABLE {TABLE} (key text PRIMARY KEY, value text NOT NULL)"
    ))
    .db(|| "creating the conversion manifest".into())?;
    for (k, v) in entries {
        set(c, k, v)?;
    }
    Ok(())
}

/// Sets one entry.
pub(crate) fn set(c: &mut impl GenericClient, k: &str, v: &str) -> Result<()> {
    c.execute(
        &format!(
            "INSERT INTO {TABLE} (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        ),
        &[&k, &v],
    )
    .db(|| format!("updating the conversion manifest ({k})"))?;
    Ok(())
}

/// Drops the table.
pub(crate) fn drop_table(c: &mut impl GenericClient) -> Result<()> {
    c.batch_execute(&format!("DROP TABLE IF EXISTS {TABLE}"))
        .db(|| "dropping the conversion manifest".into())
}
