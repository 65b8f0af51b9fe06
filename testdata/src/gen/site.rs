//! The database the generator writes: a site of folders of documents, as a ZODB
//! application would store it, and the records of each of its objects.
//!
//! ```text
//! root (PersistentMapping)
//!  ├─ folders, folders-2, …   OOBTree of Folder        (a new tree every 3000 folders)
//!  │    └─ Folder ── items: OOBTree of Item ── OOBuckets
//!  │              └─ log: PersistentList of ints   (replaced when long: garbage)
//!  │         Item ── related: Items (strong), Keyed (bare oid), weak: Item (['w', …]),
//!  │                 attachment: Blob
//!  ├─ hot: PersistentList of 4 Counters       (rewritten by most transactions)
//!  ├─ scratch: PersistentMapping              (boxes whose creation is undone)
//!  ├─ sessions: PersistentMapping of Counters (removed, then deleted: deletion records)
//!  └─ pairs: PersistentMapping of PersistentMappings (changed twice, undone at once)
//! ```

use std::collections::VecDeque;

use super::pickle::{
    Class, Pickler, BLOB, COUNTER, FOLDER, ITEM, KEYED, PERSISTENT_LIST, PERSISTENT_MAPPING,
};
use super::rng::Rng;
use super::text;
use super::tree::Tree;

/// Folders per folders tree before a new tree is started.
pub const FOLDERS_PER_TREE: usize = 3000;
/// Folders that still receive items.
pub const ACTIVE_FOLDERS: usize = 20;

/// Per-oid flag: the object is an Item.
pub const ITEM_FLAG: u8 = 1;
/// Per-oid flag: the Item has a Blob (its oid is the item's + 1).
pub const HAS_BLOB: u8 = 2;
/// Per-oid flag: the Item has its own Keyed (its oid follows the item's and blob's).
pub const HAS_KEYED: u8 = 4;

/// A folder that still receives items.
#[derive(Clone, Debug)]
pub struct Folder {
    /// The Folder's oid.
    pub oid: u64,
    /// Its items.
    pub items: Tree,
    /// Its log list's oid.
    pub log_oid: u64,
    /// The log's contents (transaction numbers).
    pub log: Vec<u64>,
}

/// The generator's model of the database.
#[derive(Clone, Debug)]
pub struct Site {
    /// The root's `title`.
    pub title: String,
    /// `folders`, `folders-2`, …: trees of Folders.
    pub folder_trees: Vec<Tree>,
    /// The `hot` list's oid.
    pub hot: u64,
    /// The four counters: oid and value.
    pub counters: [(u64, i64); 4],
    /// The `scratch` mapping's oid.
    pub scratch: u64,
    /// Boxes created (and undone) in the current scratch mapping.
    pub scratch_uses: u32,
    /// The `sessions` mapping's oid.
    pub sessions: u64,
    /// The sessions it holds.
    pub session_list: Vec<u64>,
    /// The `pairs` mapping's oid.
    pub pairs: u64,
    /// The pairs it holds.
    pub pair_list: Vec<u64>,
    /// How often each pair was changed twice and undone (its undo chain grows each time).
    pub pair_uses: Vec<u32>,
    /// Folders still receiving items, oldest first.
    pub active: Vec<Folder>,
    /// Recent Keyed objects (referred to by bare oid).
    pub keyed: VecDeque<u64>,
    /// Recent Blobs (rewritten now and then).
    pub blobs: VecDeque<u64>,
}

/// An object to write: what is needed to find its state in the [`Site`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Obj {
    /// The root mapping.
    Root,
    /// The root as ZODB's `DB` first writes it: an empty mapping.
    EmptyRoot,
    /// The `hot` list.
    Hot,
    /// Counter `i` of the `hot` list.
    Counter(usize),
    /// Folders tree `i`.
    FolderTree(usize),
    /// Bucket `b` of folders tree `t`.
    FolderBucket(usize, usize),
    /// An active Folder (by oid).
    Folder(u64),
    /// The items tree of an active folder (by the folder's oid).
    ItemTree(u64),
    /// Bucket `b` of the items tree of an active folder.
    ItemBucket(u64, usize),
    /// The log list of an active folder.
    Log(u64),
    /// An Item (by oid) of the active folder (by oid; 0 for none).
    Item(u64, u64),
    /// A large Item: its body is `large_kb` kilobytes.
    LargeItem(u64, u64),
    /// A Keyed object.
    Keyed(u64),
    /// A Blob.
    Blob(u64),
    /// The scratch mapping, holding the box given (or nothing).
    Scratch(Option<u64>),
    /// A box of the scratch mapping: `(box, doc, keyed, list)` oids.
    Box(u64, u64, u64, u64),
    /// A list of `n` ints.
    IntList(u64, u64),
    /// The sessions mapping.
    Sessions,
    /// A session counter.
    Session(u64),
    /// The pairs mapping.
    Pairs,
    /// A pair (a mapping with one int).
    Pair(u64, i64),
}

/// A value of a mapping's entry.
enum Value<'a> {
    Ref(u64, Class),
    Bare(u64),
    Text(&'a [u8]),
}

/// Writes a `PersistentMapping` state: `{'data': {key: value, ...}}`.
fn mapping(p: &mut Pickler, entries: &[(Vec<u8>, Value<'_>)]) {
    p.start();
    p.class_pickle(PERSISTENT_MAPPING);
    p.proto();
    p.empty_dict();
    p.text(b"data");
    p.empty_dict();
    p.open_items(entries.len());
    for (k, v) in entries {
        p.text(k);
        match v {
            Value::Ref(oid, c) => p.reference(*oid, *c),
            Value::Bare(oid) => p.bare_reference(*oid),
            Value::Text(t) => {
                p.text(t);
            }
        }
    }
    p.set_items(entries.len());
    p.set_items(1);
    p.stop();
}

/// Writes a `PersistentList` state of persistent references or ints.
fn list(p: &mut Pickler, refs: &[u64], class: Class, ints: &[u64]) {
    p.start();
    p.class_pickle(PERSISTENT_LIST);
    p.proto();
    p.empty_dict();
    p.text(b"data");
    p.empty_list();
    let n = refs.len() + ints.len();
    debug_assert!(n <= 1000, "one APPENDS batch");
    p.open_items(n);
    for &r in refs {
        p.reference(r, class);
    }
    for &i in ints {
        p.int(i as i64);
    }
    p.append_items(n);
    p.set_items(1);
    p.stop();
}

/// Writes an object whose state is a dict of named ints.
fn small(p: &mut Pickler, class: Class, fields: &[(&[u8], i64)]) {
    p.start();
    p.class_pickle(class);
    p.proto();
    p.empty_dict();
    p.open_items(fields.len());
    for (k, v) in fields {
        p.text(k);
        p.int(*v);
    }
    p.set_items(fields.len());
    p.stop();
}

/// The key of a folder in its folders tree: `f` and 10 digits of its oid.
pub fn folder_name(oid: u64) -> String {
    format!("f{oid:010}")
}

/// Everything an Item's record needs besides the site.
pub struct ItemArgs<'a> {
    /// The item's oid.
    pub oid: u64,
    /// Its flags.
    pub flags: u8,
    /// Its folder's items, for references to siblings.
    pub siblings: Option<&'a Tree>,
    /// Recent Keyed objects.
    pub keyed: &'a VecDeque<u64>,
    /// Body size: `None` for an ordinary log-normal body, else kilobytes.
    pub large_kb: Option<u64>,
    /// The `stamp` attribute.
    pub stamp: f64,
}

/// Writes an Item: `{'title', 'body', 'tags', 'related', 'weak', 'stamp'[, 'attachment']}`.
pub fn item(p: &mut Pickler, rng: &mut Rng, a: &ItemArgs<'_>, body: &mut Vec<u8>) {
    body.clear();
    let words = match a.large_kb {
        Some(kb) => (kb * 1000 / 7) as usize,
        None => rng.lognormal(3.5, 1.2) as usize + 1,
    };
    text::words(rng, words.min(1 << 20), body);
    let mut related: Vec<(u64, bool)> = Vec::new();
    if let Some(t) = a.siblings {
        if rng.chance(0.4) {
            for _ in 0..rng.range(1, 3) {
                let (r1, r2) = (rng.next_u64(), rng.next_u64());
                if let Some((b, i)) = t.locate(r1, r2) {
                    let v = t.buckets[b].values[i];
                    if v != a.oid {
                        related.push((v, false));
                    }
                }
            }
        }
    }
    if a.flags & HAS_KEYED != 0 {
        let k = a.oid + 1 + u64::from(a.flags & HAS_BLOB != 0);
        related.push((k, true));
    } else if !a.keyed.is_empty() && rng.chance(0.05) {
        let k = a.keyed[rng.below(a.keyed.len() as u64) as usize];
        related.push((k, true));
    }
    let weak = a.siblings.filter(|_| rng.chance(0.15)).and_then(|t| {
        let (r1, r2) = (rng.next_u64(), rng.next_u64());
        t.locate(r1, r2).map(|(b, i)| t.buckets[b].values[i])
    });
    let ntags = rng.below(5) as usize;

    p.start();
    p.class_pickle(ITEM);
    p.proto();
    p.empty_dict();
    p.mark();
    p.text(b"title");
    p.text(format!("item{:010}", a.oid).as_bytes());
    p.text(b"body");
    p.text(body);
    p.text(b"tags");
    p.empty_list();
    p.open_items(ntags);
    for _ in 0..ntags {
        p.text(rng.pick(text::WORDS).as_bytes());
    }
    p.append_items(ntags);
    p.text(b"related");
    p.empty_list();
    p.open_items(related.len());
    for &(oid, bare) in &related {
        if bare {
            p.bare_reference(oid);
        } else {
            p.reference(oid, ITEM);
        }
    }
    p.append_items(related.len());
    p.text(b"weak");
    match weak {
        Some(w) => p.weak_reference(w),
        None => p.none(),
    }
    p.text(b"stamp");
    p.float((a.stamp * 1000.0).round() / 1000.0);
    let mut n = 6;
    if a.flags & HAS_BLOB != 0 {
        p.text(b"attachment");
        p.reference(a.oid + 1, BLOB);
        n += 1;
    }
    p.set_items(n);
    p.stop();
}

impl Site {
    /// A site with the given oids for its fixed objects and no folder yet.
    pub fn new(title: String, alloc: &mut dyn FnMut() -> u64) -> Self {
        let folders = Tree::new(alloc(), FOLDER, "f");
        let hot = alloc();
        let counters = [(alloc(), 0), (alloc(), 0), (alloc(), 0), (alloc(), 0)];
        Site {
            title,
            folder_trees: vec![folders],
            hot,
            counters,
            scratch: alloc(),
            scratch_uses: 0,
            sessions: alloc(),
            session_list: Vec::new(),
            pairs: alloc(),
            pair_list: Vec::new(),
            pair_uses: Vec::new(),
            active: Vec::new(),
            keyed: VecDeque::new(),
            blobs: VecDeque::new(),
        }
    }

    /// The active folder with this oid.
    pub fn folder(&self, oid: u64) -> Option<&Folder> {
        self.active.iter().find(|f| f.oid == oid)
    }

    /// The active folder with this oid, mutably.
    pub fn folder_mut(&mut self, oid: u64) -> Option<&mut Folder> {
        self.active.iter_mut().find(|f| f.oid == oid)
    }

    /// Writes the record of `obj` into `p` (except Items, written with [`item`]); returns
    /// the object's oid.
    pub fn encode(&self, p: &mut Pickler, obj: Obj) -> u64 {
        match obj {
            Obj::EmptyRoot => {
                mapping(p, &[]);
                0
            }
            Obj::Root => {
                let mut e: Vec<(Vec<u8>, Value<'_>)> = Vec::new();
                for (i, t) in self.folder_trees.iter().enumerate() {
                    let name = if i == 0 {
                        b"folders".to_vec()
                    } else {
                        format!("folders-{}", i + 1).into_bytes()
                    };
                    e.push((name, Value::Ref(t.oid, t_class())));
                }
                e.push((b"hot".to_vec(), Value::Ref(self.hot, PERSISTENT_LIST)));
                e.push((
                    b"scratch".to_vec(),
                    Value::Ref(self.scratch, PERSISTENT_MAPPING),
                ));
                e.push((
                    b"sessions".to_vec(),
                    Value::Ref(self.sessions, PERSISTENT_MAPPING),
                ));
                e.push((
                    b"pairs".to_vec(),
                    Value::Ref(self.pairs, PERSISTENT_MAPPING),
                ));
                e.push((b"title".to_vec(), Value::Text(self.title.as_bytes())));
                mapping(p, &e);
                0
            }
            Obj::Hot => {
                let refs: Vec<u64> = self.counters.iter().map(|c| c.0).collect();
                list(p, &refs, COUNTER, &[]);
                self.hot
            }
            Obj::Counter(i) => {
                let (oid, n) = self.counters[i];
                small(p, COUNTER, &[(b"n", n)]);
                oid
            }
            Obj::FolderTree(t) => {
                self.folder_trees[t].encode(p);
                self.folder_trees[t].oid
            }
            Obj::FolderBucket(t, b) => {
                self.folder_trees[t].encode_bucket(p, b);
                self.folder_trees[t].buckets[b].oid
            }
            Obj::Folder(oid) => {
                let f = self.folder(oid).expect("a written folder is active");
                p.start();
                p.class_pickle(FOLDER);
                p.proto();
                p.empty_dict();
                p.mark();
                p.text(b"name");
                p.text(folder_name(oid).as_bytes());
                p.text(b"items");
                p.reference(f.items.oid, t_class());
                p.text(b"log");
                p.reference(f.log_oid, PERSISTENT_LIST);
                p.set_items(3);
                p.stop();
                oid
            }
            Obj::ItemTree(oid) => {
                let f = self.folder(oid).expect("a written folder is active");
                f.items.encode(p);
                f.items.oid
            }
            Obj::ItemBucket(oid, b) => {
                let f = self.folder(oid).expect("a written folder is active");
                f.items.encode_bucket(p, b);
                f.items.buckets[b].oid
            }
            Obj::Log(oid) => {
                let f = self.folder(oid).expect("a written folder is active");
                list(p, &[], PERSISTENT_LIST, &f.log);
                f.log_oid
            }
            Obj::Keyed(oid) => {
                p.start();
                p.proto();
                p.global(KEYED);
                let key = p.text(format!("k{oid}").as_bytes());
                p.close_tuple(1);
                p.close_tuple(2);
                p.stop();
                p.proto();
                p.empty_dict();
                p.mark();
                p.text(b"key");
                p.get(key);
                p.text(b"value");
                p.int((oid.wrapping_mul(0x9e37_79b9) % 1_000_000) as i64);
                p.set_items(2);
                p.stop();
                oid
            }
            Obj::Blob(oid) => {
                p.start();
                p.class_pickle(BLOB);
                p.proto();
                p.none();
                p.stop();
                oid
            }
            Obj::Scratch(entry) => {
                let e: Vec<(Vec<u8>, Value<'_>)> = entry
                    .map(|b| {
                        (
                            format!("s{b:08}").into_bytes(),
                            Value::Ref(b, PERSISTENT_MAPPING),
                        )
                    })
                    .into_iter()
                    .collect();
                mapping(p, &e);
                self.scratch
            }
            Obj::Box(b, doc, keyed, l) => {
                mapping(
                    p,
                    &[
                        (b"doc".to_vec(), Value::Ref(doc, ITEM)),
                        (b"k".to_vec(), Value::Bare(keyed)),
                        (b"list".to_vec(), Value::Ref(l, PERSISTENT_LIST)),
                    ],
                );
                b
            }
            Obj::IntList(oid, n) => {
                let ints: Vec<u64> = (0..n).collect();
                list(p, &[], PERSISTENT_LIST, &ints);
                oid
            }
            Obj::Sessions => {
                let e: Vec<(Vec<u8>, Value<'_>)> = self
                    .session_list
                    .iter()
                    .map(|&s| (format!("s{s}").into_bytes(), Value::Ref(s, COUNTER)))
                    .collect();
                mapping(p, &e);
                self.sessions
            }
            Obj::Session(oid) => {
                small(p, COUNTER, &[(b"n", (oid % 97) as i64)]);
                oid
            }
            Obj::Pairs => {
                let e: Vec<(Vec<u8>, Value<'_>)> = self
                    .pair_list
                    .iter()
                    .map(|&s| {
                        (
                            format!("p{s}").into_bytes(),
                            Value::Ref(s, PERSISTENT_MAPPING),
                        )
                    })
                    .collect();
                mapping(p, &e);
                self.pairs
            }
            Obj::Pair(oid, v) => {
                p.start();
                p.class_pickle(PERSISTENT_MAPPING);
                p.proto();
                p.empty_dict();
                p.text(b"data");
                p.empty_dict();
                p.text(b"v");
                p.int(v);
                p.set_items(1);
                p.set_items(1);
                p.stop();
                oid
            }
            Obj::Item(..) | Obj::LargeItem(..) => unreachable!("items are written by item()"),
        }
    }
}

/// The class of trees (folders trees and items trees are `OOBTree`s).
fn t_class() -> Class {
    super::pickle::OOBTREE
}

#[cfg(test)]
mod tests {
    use super::*;
    use zfs_format::pickle::{class_name, persistent_refs, StringMode};

    #[test]
    fn every_object_scans_with_its_class() {
        let mut next = 0u64;
        let mut alloc = || {
            next += 1;
            next
        };
        let mut site = Site::new("t".into(), &mut alloc);
        site.active.push(Folder {
            oid: 50,
            items: Tree::new(51, ITEM, "item"),
            log_oid: 52,
            log: vec![1, 2, 300, 70000],
        });
        site.session_list.push(60);
        site.pair_list.push(61);
        let mut p = Pickler::new();
        let cases = [
            (Obj::Root, "persistent.mapping.PersistentMapping", 5),
            (Obj::Hot, "persistent.list.PersistentList", 4),
            (Obj::Counter(1), "genmodel.Counter", 0),
            (Obj::FolderTree(0), "BTrees.OOBTree.OOBTree", 0),
            (Obj::Folder(50), "genmodel.Folder", 2),
            (Obj::Log(50), "persistent.list.PersistentList", 0),
            (Obj::Keyed(9), "genmodel.Keyed", 0),
            (Obj::Blob(9), "ZODB.blob.Blob", 0),
            (
                Obj::Scratch(Some(70)),
                "persistent.mapping.PersistentMapping",
                1,
            ),
            (
                Obj::Box(70, 71, 72, 73),
                "persistent.mapping.PersistentMapping",
                3,
            ),
            (Obj::Sessions, "persistent.mapping.PersistentMapping", 1),
            (Obj::Pairs, "persistent.mapping.PersistentMapping", 1),
            (Obj::Pair(61, 5), "persistent.mapping.PersistentMapping", 0),
        ];
        for (obj, class, nrefs) in cases {
            site.encode(&mut p, obj);
            let refs = persistent_refs(p.bytes(), StringMode::Ascii)
                .unwrap_or_else(|e| panic!("{obj:?}: {e}"));
            assert_eq!(refs.len(), nrefs, "{obj:?}");
            assert_eq!(
                class_name(p.bytes(), StringMode::Ascii).to_string(),
                class,
                "{obj:?}"
            );
        }
    }
}
