//! Writing record pickles the way ZODB's `ObjectWriter` does: one protocol-3 pickler per
//! record whose memo spans the class pickle and the state pickle, every string, bytes
//! object, tuple, list and dict memoised (`BINPUT`), a class or oid met again fetched from
//! the memo (`BINGET`), and persistent references in the forms ZODB writes:
//! `(oid, class)` tuples, bare oids (classes with `__getnewargs__`) and weak references
//! `['w', (oid,)]`.

/// A class as a pickle names it: module and name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Class {
    /// The module, e.g. `persistent.mapping`.
    pub module: &'static str,
    /// The class name, e.g. `PersistentMapping`.
    pub name: &'static str,
}

/// `persistent.mapping.PersistentMapping`.
pub const PERSISTENT_MAPPING: Class = Class {
    module: "persistent.mapping",
    name: "PersistentMapping",
};
/// `persistent.list.PersistentList`.
pub const PERSISTENT_LIST: Class = Class {
    module: "persistent.list",
    name: "PersistentList",
};
/// `BTrees.OOBTree.OOBTree`.
pub const OOBTREE: Class = Class {
    module: "BTrees.OOBTree",
    name: "OOBTree",
};
/// `BTrees.OOBTree.OOBucket`.
pub const OOBUCKET: Class = Class {
    module: "BTrees.OOBTree",
    name: "OOBucket",
};
/// `ZODB.blob.Blob`.
pub const BLOB: Class = Class {
    module: "ZODB.blob",
    name: "Blob",
};
/// `genmodel.Item`: a document (the oracle's `genmodel.py` defines it).
pub const ITEM: Class = Class {
    module: "genmodel",
    name: "Item",
};
/// `genmodel.Folder`: a container of items.
pub const FOLDER: Class = Class {
    module: "genmodel",
    name: "Folder",
};
/// `genmodel.Keyed`: has `__getnewargs__`, so it is referred to by bare oid.
pub const KEYED: Class = Class {
    module: "genmodel",
    name: "Keyed",
};
/// `genmodel.Counter`: a small object rewritten often.
pub const COUNTER: Class = Class {
    module: "genmodel",
    name: "Counter",
};

/// What a memo slot holds, to find it again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Memo {
    Class(Class),
    Oid(u64),
}

/// A pickler for one record at a time.
#[derive(Default)]
pub struct Pickler {
    buf: Vec<u8>,
    next: u32,
    memo: Vec<(Memo, u32)>,
}

impl Pickler {
    /// An empty pickler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a new record (clears the bytes and the memo).
    pub fn start(&mut self) {
        self.buf.clear();
        self.next = 0;
        self.memo.clear();
    }

    /// The record's bytes so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// `PROTO 3`: the start of each of the two pickles.
    pub fn proto(&mut self) {
        self.buf.extend_from_slice(b"\x80\x03");
    }

    /// `STOP`: the end of each of the two pickles.
    pub fn stop(&mut self) {
        self.buf.push(b'.');
    }

    /// Memoises the value on top of the stack; returns its memo index.
    pub fn put(&mut self) -> u32 {
        let i = self.next;
        self.next += 1;
        match u8::try_from(i) {
            Ok(b) => self.buf.extend_from_slice(&[b'q', b]),
            Err(_) => {
                self.buf.push(b'r');
                self.buf.extend_from_slice(&i.to_le_bytes());
            }
        }
        i
    }

    /// Pushes memo entry `i`.
    pub fn get(&mut self, i: u32) {
        match u8::try_from(i) {
            Ok(b) => self.buf.extend_from_slice(&[b'h', b]),
            Err(_) => {
                self.buf.push(b'j');
                self.buf.extend_from_slice(&i.to_le_bytes());
            }
        }
    }

    fn find(&self, m: Memo) -> Option<u32> {
        self.memo.iter().find(|(k, _)| *k == m).map(|(_, i)| *i)
    }

    /// A class: `GLOBAL` the first time in the record, `BINGET` after.
    pub fn global(&mut self, c: Class) {
        if let Some(i) = self.find(Memo::Class(c)) {
            self.get(i);
            return;
        }
        self.buf.push(b'c');
        self.buf.extend_from_slice(c.module.as_bytes());
        self.buf.push(b'\n');
        self.buf.extend_from_slice(c.name.as_bytes());
        self.buf.push(b'\n');
        let i = self.put();
        self.memo.push((Memo::Class(c), i));
    }

    /// A `str` (`BINUNICODE`), memoised; returns its memo index.
    pub fn text(&mut self, s: &[u8]) -> u32 {
        self.buf.push(b'X');
        self.buf
            .extend_from_slice(&u32::try_from(s.len()).expect("short text").to_le_bytes());
        self.buf.extend_from_slice(s);
        self.put()
    }

    /// An 8-byte oid as `bytes` (`SHORT_BINBYTES`), or `BINGET` when this record has it.
    pub fn oid(&mut self, oid: u64) {
        if let Some(i) = self.find(Memo::Oid(oid)) {
            self.get(i);
            return;
        }
        self.buf.extend_from_slice(b"C\x08");
        self.buf.extend_from_slice(&oid.to_be_bytes());
        let i = self.put();
        self.memo.push((Memo::Oid(oid), i));
    }

    /// An integer with the smallest opcode Python's pickler uses.
    pub fn int(&mut self, v: i64) {
        if let Ok(b) = u8::try_from(v) {
            self.buf.extend_from_slice(&[b'K', b]);
        } else if let Ok(w) = u16::try_from(v) {
            self.buf.push(b'M');
            self.buf.extend_from_slice(&w.to_le_bytes());
        } else if let Ok(d) = i32::try_from(v) {
            self.buf.push(b'J');
            self.buf.extend_from_slice(&d.to_le_bytes());
        } else {
            // LONG1: little-endian two's complement, as short as it can be.
            let bytes = v.to_le_bytes();
            let mut n = 8;
            while n > 1 {
                let top = bytes[n - 1];
                let below = bytes[n - 2];
                if (top == 0 && below < 0x80) || (top == 0xff && below >= 0x80) {
                    n -= 1;
                } else {
                    break;
                }
            }
            self.buf.extend_from_slice(&[0x8a, n as u8]);
            self.buf.extend_from_slice(&bytes[..n]);
        }
    }

    /// A float (`BINFLOAT`).
    pub fn float(&mut self, v: f64) {
        self.buf.push(b'G');
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// `None`.
    pub fn none(&mut self) {
        self.buf.push(b'N');
    }

    /// `MARK`.
    pub fn mark(&mut self) {
        self.buf.push(b'(');
    }

    /// An empty dict, memoised.
    pub fn empty_dict(&mut self) {
        self.buf.push(b'}');
        self.put();
    }

    /// An empty list, memoised.
    pub fn empty_list(&mut self) {
        self.buf.push(b']');
        self.put();
    }

    /// Ends a dict's items: `SETITEM` for one pair, `SETITEMS` (after a `MARK`) for more.
    pub fn set_items(&mut self, n: usize) {
        if n == 1 {
            self.buf.push(b's');
        } else if n > 1 {
            self.buf.push(b'u');
        }
    }

    /// Ends a list's items: `APPEND` for one, `APPENDS` (after a `MARK`) for more.
    pub fn append_items(&mut self, n: usize) {
        if n == 1 {
            self.buf.push(b'a');
        } else if n > 1 {
            self.buf.push(b'e');
        }
    }

    /// Opens the items of a container of `n` items: a `MARK` when there are several.
    pub fn open_items(&mut self, n: usize) {
        if n > 1 {
            self.mark();
        }
    }

    /// Opens a tuple of `n` items: a `MARK` for more than three.
    pub fn open_tuple(&mut self, n: usize) {
        if n > 3 {
            self.mark();
        }
    }

    /// Closes a tuple of `n` items opened with [`open_tuple`](Self::open_tuple):
    /// `EMPTY_TUPLE`, `TUPLE1`..`TUPLE3` or `TUPLE`, memoised unless empty.
    pub fn close_tuple(&mut self, n: usize) {
        match n {
            0 => {
                self.buf.push(b')');
                return;
            }
            1 => self.buf.push(0x85),
            2 => self.buf.push(0x86),
            3 => self.buf.push(0x87),
            _ => self.buf.push(b't'),
        }
        self.put();
    }

    /// A persistent reference `(oid, class)`, the normal form.
    pub fn reference(&mut self, oid: u64, class: Class) {
        self.oid(oid);
        self.global(class);
        self.close_tuple(2);
        self.buf.push(b'Q');
    }

    /// A persistent reference by bare oid (the target's class has `__getnewargs__`).
    pub fn bare_reference(&mut self, oid: u64) {
        self.oid(oid);
        self.buf.push(b'Q');
    }

    /// A weak reference to an object of the same database: `['w', (oid,)]`.
    pub fn weak_reference(&mut self, oid: u64) {
        self.empty_list();
        self.mark();
        self.text(b"w");
        self.oid(oid);
        self.close_tuple(1);
        self.append_items(2);
        self.buf.push(b'Q');
    }

    /// The class pickle of an ordinary persistent object: `class`, complete.
    pub fn class_pickle(&mut self, c: Class) {
        self.proto();
        self.global(c);
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zfs_format::pickle::{class_name, persistent_refs, RefKind, StringMode};

    #[test]
    fn references_read_back_in_every_form() {
        let mut p = Pickler::new();
        p.start();
        p.class_pickle(ITEM);
        p.proto();
        p.empty_dict();
        p.mark();
        p.text(b"a");
        p.reference(5, ITEM);
        p.text(b"b");
        p.bare_reference(6);
        p.text(b"c");
        p.weak_reference(5);
        p.set_items(3);
        p.stop();
        let refs = persistent_refs(p.bytes(), StringMode::Ascii).expect("scans");
        let got: Vec<_> = refs
            .iter()
            .map(|r| {
                (
                    zfs_format::Oid::from_slice(r.oid.as_ref())
                        .expect("8")
                        .as_u64(),
                    r.kind,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (5, RefKind::OidClass),
                (6, RefKind::Oid),
                (5, RefKind::Weak)
            ]
        );
        assert_eq!(
            class_name(p.bytes(), StringMode::Ascii).to_string(),
            "genmodel.Item"
        );
        // The class and the oid met a second time come from the memo.
        assert!(p.bytes().windows(2).any(|w| w == b"h\x00"));
    }

    #[test]
    fn integers_use_the_smallest_opcode() {
        let enc = |v: i64| {
            let mut p = Pickler::new();
            p.int(v);
            p.bytes().to_vec()
        };
        assert_eq!(enc(5), b"K\x05");
        assert_eq!(enc(300), b"M\x2c\x01");
        assert_eq!(enc(-1), b"J\xff\xff\xff\xff");
        assert_eq!(enc(1 << 40), b"\x8a\x06\x00\x00\x00\x00\x00\x01");
        assert_eq!(enc(1 << 31), b"\x8a\x05\x00\x00\x00\x80\x00");
    }
}
