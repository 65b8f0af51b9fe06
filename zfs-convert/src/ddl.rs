//! Keys, foreign keys and indexes dropped for the bulk load and re-created after it.
//!
//! Loading into tables without indexes and checking foreign keys once at the end is the
//! fastest way in. The definitions are read from the catalog (`pg_get_constraintdef`,
//! `pg_get_indexdef`) before they are dropped, kept in the manifest, and replayed with the
//! same names, so the schema ends exactly as RelStorage made it. CHECK constraints and the
//! trigger stay in place.

use std::collections::BTreeMap;

use postgres::GenericClient;

use crate::error::{ConvertError, DbContext, Result};
use crate::manifest::key;

/// What kind of definition, in the order they are re-created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// A primary key or unique constraint.
    Key,
    /// An index that backs no constraint.
    Index,
    /// A foreign key (created last: it needs the keys it references).
    ForeignKey,
}

/// One saved definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Item {
    pub kind: Kind,
    pub table: String,
    pub name: String,
    pub def: String,
}

impl Item {
    fn encode(&self) -> String {
        let k = match self.kind {
            Kind::Key => "key",
            Kind::Index => "index",
            Kind::ForeignKey => "fkey",
        };
        format!("{k}\t{}\t{}\t{}", self.table, self.name, self.def)
    }

    fn decode(s: &str) -> Option<Item> {
        let mut it = s.splitn(4, '\t');
        let kind = match it.next()? {
            "key" => Kind::Key,
            "index" => Kind::Index,
            "fkey" => Kind::ForeignKey,
            _ => return None,
        };
        Some(Item {
            kind,
            table: it.next()?.to_string(),
            name: it.next()?.to_string(),
            def: it.next()?.to_string(),
        })
    }

    fn drop_sql(&self) -> String {
        match self.kind {
            Kind::Index => format!("DROP INDEX public.{}", quote(&self.name)),
            _ => format!(
                "ALTER TABLE ONLY public.{} DROP CONSTRAINT {}",
                quote(&self.table),
                quote(&self.name)
            ),
        }
    }

    fn create_sql(&self) -> String {
        match self.kind {
            Kind::Index => self.def.clone(),
            _ => format!(
                "ALTER TABLE ONLY public.{} ADD CONSTRAINT {} {}",
                quote(&self.table),
                quote(&self.name),
                self.def
            ),
        }
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Reads the keys, foreign keys and plain indexes of `tables`.
pub(crate) fn capture(c: &mut impl GenericClient, tables: &[&str]) -> Result<Vec<Item>> {
    let names: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
    let mut items = Vec::new();
    let rows = c
        .query(
            "SELECT c.relname::text, k.conname::text, k.contype::text, \
                    pg_get_constraintdef(k.oid) \
             FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relname = ANY($1) AND k.contype IN ('p', 'u', 'f')",
            &[&names],
        )
        .db(|| "reading the destination's constraints".into())?;
    for r in rows {
        let contype: String = r.get(2);
        items.push(Item {
            kind: if contype == "f" {
                Kind::ForeignKey
            } else {
                Kind::Key
            },
            table: r.get(0),
            name: r.get(1),
            def: r.get(3),
        });
    }
    let rows = c
        .query(
            "SELECT t.relname::text, i.relname::text, pg_get_indexdef(x.indexrelid) \
             FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
             JOIN pg_class t ON t.oid = x.indrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE n.nspname = 'public' AND t.relname = ANY($1) \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)",
            &[&names],
        )
        .db(|| "reading the destination's indexes".into())?;
    for r in rows {
        items.push(Item {
            kind: Kind::Index,
            table: r.get(0),
            name: r.get(1),
            def: r.get(2),
        });
    }
    items.sort_by(|a, b| (a.kind, &a.table, &a.name).cmp(&(b.kind, &b.table, &b.name)));
    Ok(items)
}

/// The manifest entries that keep `items`.
pub(crate) fn to_manifest(items: &[Item], out: &mut BTreeMap<String, String>) {
    for (i, item) in items.iter().enumerate() {
        out.insert(format!("{}{i:04}", key::DDL), item.encode());
    }
}

/// The items kept in a manifest.
pub(crate) fn from_manifest(m: &BTreeMap<String, String>) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    for (k, v) in m.range(key::DDL.to_string()..) {
        if !k.starts_with(key::DDL) {
            break;
        }
        items.push(Item::decode(v).ok_or_else(|| {
            ConvertError::Manifest(format!("unreadable entry {k} in the conversion manifest"))
        })?);
    }
    Ok(items)
}

/// Drops `items` (foreign keys first).
pub(crate) fn drop_all(c: &mut impl GenericClient, items: &[Item]) -> Result<()> {
    let mut order: Vec<&Item> = items.iter().collect();
    order.sort_by_key(|i| std::cmp::Reverse(i.kind));
    for item in order {
        c.batch_execute(&item.drop_sql())
            .db(|| format!("dropping {} for the bulk load", item.name))?;
    }
    Ok(())
}

/// Re-creates `items` (keys, then indexes, then foreign keys, which are checked here).
pub(crate) fn create_all(
    c: &mut impl GenericClient,
    items: &[Item],
    progress: &dyn zfs_format::Progress,
) -> Result<()> {
    let mut order: Vec<&Item> = items.iter().collect();
    order.sort_by_key(|i| i.kind);
    for item in order {
        c.batch_execute(&item.create_sql())
            .db(|| format!("re-creating {} on table {}", item.name, item.table))?;
        progress.advance(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_survive_the_manifest() {
        let items = vec![
            Item {
                kind: Kind::Key,
                table: "object_state".into(),
                name: "object_state_pk".into(),
                def: "PRIMARY KEY (zoid, tid)".into(),
            },
            Item {
                kind: Kind::Index,
                table: "object_state".into(),
                name: "object_state_tid".into(),
                def: "CREATE INDEX object_state_tid ON public.object_state USING btree (tid)"
                    .into(),
            },
        ];
        let mut m = BTreeMap::new();
        m.insert("mode".into(), "x".into());
        m.insert("stream.0".into(), "4".into());
        to_manifest(&items, &mut m);
        assert_eq!(from_manifest(&m).expect("readable"), items);
        assert_eq!(
            items[0].create_sql(),
            "ALTER TABLE ONLY public.\"object_state\" ADD CONSTRAINT \"object_state_pk\" \
             PRIMARY KEY (zoid, tid)"
        );
    }
}
