//! The destination's RelStorage schema: which mode it is, and whether we know it.
//!
//! RelStorage stores no schema version. What identifies one: the tables of its mode, their
//! columns, and the comments RelStorage puts on its stored functions (the MD5 of each
//! function's source, re-written whenever a RelStorage with other sources opens the
//! database with `create-schema true`). The function sources are the same in RelStorage
//! 3.5 to 4.3, so those comments name that range.

use postgres::Client;

use crate::error::{ConvertError, DbContext, Result};

/// RelStorage's two layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `keep-history true`: every revision, the `transaction` and `current_object` tables.
    HistoryPreserving,
    /// `keep-history false`: the current state of each object only.
    HistoryFree,
}

impl Mode {
    /// The name used in messages and in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Mode::HistoryPreserving => "history-preserving",
            Mode::HistoryFree => "history-free",
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The RelStorage versions whose schema we load into, with their stored-function comments.
const KNOWN: &str = "RelStorage 3.5 to 4.3";

/// Function comments of RelStorage 3.5 to 4.3 (the same in both modes).
const COMMON_FUNCTIONS: &[(&str, &str)] = &[
    (
        "blob_chunk_delete_trigger",
        "3f37c31eda159d95014454855a371bdd",
    ),
    (
        "lock_objects_and_detect_conflicts",
        "ee076e814c3b707fe40d0df7e4bddad6",
    ),
    ("make_current_tid", "e9178e58c976ebe970e2bd3f96f7f14d"),
    ("make_tid_for_epoch", "9d9238bae9f4f9b4d4aa24e09115daee"),
    ("merge_blob_chunks", "565f42eaa9c8150e27e131919d4c9379"),
    (
        "temp_blob_chunk_delete_trigger",
        "e95dcdc6dc7b6246134f47d629b63a0c",
    ),
];
/// Function comments of the history-preserving procedures.
const HP_FUNCTIONS: &[(&str, &str)] = &[
    ("lock_and_choose_tid", "3f0c7dc2f1b97d53c5d281e9f71a37a0"),
    (
        "lock_and_choose_tid_and_move",
        "2b694c8a8f69ae3124ff80962fe80e9b",
    ),
];
/// Function comments of the history-free procedures.
const HF_FUNCTIONS: &[(&str, &str)] = &[
    ("lock_and_choose_tid", "15d14781539ecde6159055992e9f869f"),
    (
        "lock_and_choose_tid_and_move",
        "cdd2a18a14851273a0f88c9141d6e93e",
    ),
];
/// Comments RelStorage 3.0 wrote, to name that version when we refuse it.
const RELSTORAGE_3_0: &[&str] = &["fdc0f366", "cbcf27eb", "8bf51f86", "c96c950f", "8011e491"];

/// Columns (name, type) of the tables we write, in table order.
const HP_COLUMNS: &[(&str, &[(&str, &str)])] = &[
    (
        "transaction",
        &[
            ("tid", "bigint"),
            ("packed", "boolean"),
            ("is_empty", "boolean"),
            ("username", "bytea"),
            ("description", "bytea"),
            ("extension", "bytea"),
        ],
    ),
    (
        "object_state",
        &[
            ("zoid", "bigint"),
            ("tid", "bigint"),
            ("prev_tid", "bigint"),
            ("md5", "character"),
            ("state_size", "bigint"),
            ("state", "bytea"),
        ],
    ),
    ("current_object", &[("zoid", "bigint"), ("tid", "bigint")]),
    (
        "blob_chunk",
        &[
            ("zoid", "bigint"),
            ("tid", "bigint"),
            ("chunk_num", "bigint"),
            ("chunk", "oid"),
        ],
    ),
];
const HF_COLUMNS: &[(&str, &[(&str, &str)])] = &[
    (
        "object_state",
        &[
            ("zoid", "bigint"),
            ("tid", "bigint"),
            ("state_size", "bigint"),
            ("state", "bytea"),
        ],
    ),
    (
        "blob_chunk",
        &[
            ("zoid", "bigint"),
            ("chunk_num", "bigint"),
            ("tid", "bigint"),
            ("chunk", "oid"),
        ],
    ),
];

/// What we found in the destination.
#[derive(Clone, Debug)]
pub struct Schema {
    /// The mode its tables make.
    pub mode: Mode,
    /// The RelStorage versions it belongs to, for messages.
    pub version: &'static str,
}

fn tables(client: &mut Client) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            &[],
        )
        .db(|| "listing the destination's tables".into())?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Finds the mode of the destination's schema and checks that we know it; refuses a
/// database without RelStorage's schema, a mode other than `want` (when given), and
/// schemas of other RelStorage versions, naming what was found.
pub fn inspect(client: &mut Client, want: Option<Mode>) -> Result<Schema> {
    let t = tables(client)?;
    let has = |n: &str| t.iter().any(|x| x == n);
    if !has("object_state") || !has("blob_chunk") || !has("commit_row_lock") {
        return Err(ConvertError::Schema(
            "the destination holds no RelStorage schema: let RelStorage create it first \
             (open the database once with RelStorage, create-schema true, in the mode you \
             want), then convert"
                .into(),
        ));
    }
    let mode = match (has("transaction"), has("current_object")) {
        (true, true) => Mode::HistoryPreserving,
        (false, false) => Mode::HistoryFree,
        _ => {
            return Err(ConvertError::Schema(
                "the destination's RelStorage schema is incomplete: it has only one of the \
                 tables transaction and current_object"
                    .into(),
            ))
        }
    };
    if let Some(w) = want {
        if w != mode {
            return Err(ConvertError::Schema(format!(
                "the destination holds a {} RelStorage schema, not the {} one asked for",
                mode.name(),
                w.name()
            )));
        }
    }
    check_columns(client, mode)?;
    check_functions(client, mode)?;
    Ok(Schema {
        mode,
        version: KNOWN,
    })
}

fn check_columns(client: &mut Client, mode: Mode) -> Result<()> {
    let expected = match mode {
        Mode::HistoryPreserving => HP_COLUMNS,
        Mode::HistoryFree => HF_COLUMNS,
    };
    for (table, cols) in expected {
        let rows = client
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
                &[table],
            )
            .db(|| format!("reading the columns of table {table}"))?;
        let found: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let same = found.len() == cols.len()
            && found
                .iter()
                .zip(cols.iter())
                .all(|((n, t), (en, et))| n == en && t == et);
        if !same {
            let list: Vec<String> = found.iter().map(|(n, t)| format!("{n} {t}")).collect();
            return Err(ConvertError::Schema(format!(
                "table {table} of the destination has columns ({}), not those of the {} \
                 {} schema",
                list.join(", "),
                KNOWN,
                mode.name()
            )));
        }
    }
    Ok(())
}

fn check_functions(client: &mut Client, mode: Mode) -> Result<()> {
    let rows = client
        .query(
            "SELECT p.proname::text, coalesce(obj_description(p.oid, 'pg_proc'), '') \
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE n.nspname = 'public'",
            &[],
        )
        .db(|| "reading the destination's stored functions".into())?;
    let found: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let own = match mode {
        Mode::HistoryPreserving => HP_FUNCTIONS,
        Mode::HistoryFree => HF_FUNCTIONS,
    };
    for (name, md5) in COMMON_FUNCTIONS.iter().chain(own) {
        match found.iter().find(|(n, _)| n == name) {
            Some((_, c)) if c == md5 => {}
            Some((_, c)) => {
                let which = if RELSTORAGE_3_0.iter().any(|p| c.starts_with(p)) {
                    "RelStorage 3.0".to_string()
                } else {
                    format!("an unknown RelStorage version (comment '{c}')")
                };
                return Err(ConvertError::Schema(format!(
                    "the destination's schema was made by {which}: its function {name} is not \
                     the one of {KNOWN}; open it once with a RelStorage of that range \
                     (create-schema true) or convert with zodbconvert"
                )));
            }
            None => {
                return Err(ConvertError::Schema(format!(
                    "the destination's RelStorage schema lacks the stored function {name}; \
                     let RelStorage ({KNOWN}) create the schema"
                )))
            }
        }
    }
    Ok(())
}
