//! Persistent references: the forms ZODB writes, and how each collected persistent id is
//! classified once both pickles of a record have run (as ZODB does: it looks at the ids
//! after `noload()`, so a list id sees its final contents).

use std::borrow::Cow;

use super::error::{PickleError, PickleErrorKind as K};
use super::scan::Machine;
use super::value::{Pid, StrSrc, Val, V};
use super::{text, StringMode};

/// The form of a persistent reference (ZODB's `ObjectWriter.persistent_id` forms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefKind {
    /// A bare oid: `oid` (classes with `__getnewargs__`, e.g. persistent classes).
    Oid,
    /// A tuple whose element 0 is the oid: `(oid, klass)`, the normal same-database form.
    /// Tuples of any other length count too (element 0 is taken, as `referencesf` does).
    OidClass,
    /// A weak reference: `['w', (oid,)]`, or `['w', (oid, db)]` to another database.
    Weak,
    /// A legacy weak reference: `[oid]`.
    LegacyWeak,
    /// A cross-database reference: `['m', (db, oid, klass)]`.
    CrossDatabase,
    /// A cross-database reference without class: `['n', (db, oid)]`.
    CrossDatabaseNoClass,
    /// Any other list: empty, an unknown tag, wrong arity or item types. `oid` is empty.
    UnknownList,
}

impl RefKind {
    /// Whether pack follows this reference (ZODB's `referencesf` returns it).
    pub fn is_strong(self) -> bool {
        matches!(self, RefKind::Oid | RefKind::OidClass)
    }
}

/// One persistent reference, in the order the unpickler met it.
///
/// `oid` and `database` borrow the payload except in rare cases that need decoding
/// (protocol-0 `STRING`/`UNICODE` escapes, a non-ASCII `str` oid under
/// [`StringMode::Bytes`]), hence `Cow` rather than a plain slice.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference<'a> {
    /// The oid as ZODB would use it (a `str` oid encoded per the mode). Usually 8 bytes, but
    /// nothing checks that, as in ZODB. Empty for [`RefKind::UnknownList`].
    pub oid: Cow<'a, [u8]>,
    /// The form of the reference.
    pub kind: RefKind,
    /// The database name of a cross-database or cross-database weak reference (UTF-8 for a
    /// Python `str`, raw bytes for a Python 2 string).
    pub database: Option<Cow<'a, [u8]>>,
    /// Payload offset of the `PERSID`/`BINPERSID` opcode that produced it.
    pub offset: usize,
}

/// A strong reference's oid and form.
type Strong<'a> = (Cow<'a, [u8]>, RefKind);

impl Machine {
    /// A string value's bytes, borrowed from the payload when possible.
    fn str_cow<'a>(&self, data: &'a [u8], idx: usize) -> Cow<'a, [u8]> {
        match self.strs[idx] {
            StrSrc::Slice(a, b) => Cow::Borrowed(data.get(a..b).unwrap_or_default()),
            StrSrc::Owned(i) => Cow::Owned(self.owned.get(i).cloned().unwrap_or_default()),
        }
    }

    /// The raw bytes of a `bytes` or `str` value, if it is one.
    fn string<'a>(&self, data: &'a [u8], v: Val) -> Option<Cow<'a, [u8]>> {
        match v.get() {
            V::Bytes(i) | V::Text(i) => Some(self.str_cow(data, i)),
            _ => None,
        }
    }

    /// The oid `referencesf` derives from a value: `bytes` as is, a `str` encoded (ASCII
    /// under `Ascii`, as ZODB; Latin-1 under `Bytes`, as the FS21 oracle does).
    fn strong_oid<'a>(&self, data: &'a [u8], v: Val, mode: StringMode) -> Result<Cow<'a, [u8]>, K> {
        match v.get() {
            V::Bytes(i) => Ok(self.str_cow(data, i)),
            V::Text(i) => {
                let s = self.str_cow(data, i);
                if s.is_ascii() {
                    return Ok(s);
                }
                match mode {
                    StringMode::Ascii => Err(K::UnicodeEncode),
                    StringMode::Bytes => text::latin1(&s).map(Cow::Owned).ok_or(K::UnicodeEncode),
                }
            }
            _ => Err(K::BadPersistentId(
                "element 0 of a tuple persistent id is not bytes or str",
            )),
        }
    }

    /// The oid of a strong persistent id, `None` for a list (skipped by `referencesf`).
    fn strong<'a>(
        &self,
        data: &'a [u8],
        pid: Pid,
        mode: StringMode,
    ) -> Result<Option<Strong<'a>>, PickleError> {
        let err = |kind| PickleError::new(pid.offset, kind);
        match pid.val.get() {
            V::Tuple(t) => {
                let hdr = self.tuples[t];
                if hdr.len == 0 {
                    return Err(err(K::EmptyTuplePid));
                }
                let oid = self.strong_oid(data, hdr.head[0], mode).map_err(err)?;
                Ok(Some((oid, RefKind::OidClass)))
            }
            V::Bytes(_) | V::Text(_) => {
                let oid = self.strong_oid(data, pid.val, mode).map_err(err)?;
                Ok(Some((oid, RefKind::Oid)))
            }
            V::List(_) => Ok(None),
            _ => Err(err(K::BadPersistentId(
                "not a tuple, list, bytes or str (e.g. None built by REDUCE)",
            ))),
        }
    }

    /// Appends the oids `referencesf` returns for the collected ids.
    pub(super) fn strong_refs<'a>(
        &self,
        data: &'a [u8],
        mode: StringMode,
        out: &mut Vec<Cow<'a, [u8]>>,
    ) -> Result<(), PickleError> {
        for &pid in &self.pids {
            if let Some((oid, _)) = self.strong(data, pid, mode)? {
                out.push(oid);
            }
        }
        Ok(())
    }

    /// Appends every collected id, classified.
    pub(super) fn all_refs<'a>(
        &self,
        data: &'a [u8],
        mode: StringMode,
        out: &mut Vec<Reference<'a>>,
    ) -> Result<(), PickleError> {
        for &pid in &self.pids {
            let r = match self.strong(data, pid, mode)? {
                Some((oid, kind)) => Reference {
                    oid,
                    kind,
                    database: None,
                    offset: pid.offset,
                },
                None => self.list_ref(data, pid),
            };
            out.push(r);
        }
        Ok(())
    }

    /// Classifies a list persistent id (weak and cross-database forms).
    fn list_ref<'a>(&self, data: &'a [u8], pid: Pid) -> Reference<'a> {
        let unknown = Reference {
            oid: Cow::Borrowed(&[]),
            kind: RefKind::UnknownList,
            database: None,
            offset: pid.offset,
        };
        let V::List(l) = pid.val.get() else {
            return unknown;
        };
        let list = self.lists[l];
        let s = |v| self.string(data, v);
        if list.len == 1 {
            return match s(list.head[0]) {
                Some(oid) => Reference {
                    oid,
                    kind: RefKind::LegacyWeak,
                    ..unknown
                },
                None => unknown,
            };
        }
        let (Some(tag), V::Tuple(t)) = (s(list.head[0]), list.head[1].get()) else {
            return unknown;
        };
        if list.len != 2 {
            return unknown;
        }
        let args = self.tuples[t];
        // The class item of the 'm' form may be anything (noload turns a class into None).
        let [a0, a1, _] = args.head;
        let found = match (&*tag, args.len) {
            (b"w", 1) => s(a0).map(|oid| (RefKind::Weak, oid, None)),
            (b"w", 2) => s(a0)
                .zip(s(a1))
                .map(|(oid, db)| (RefKind::Weak, oid, Some(db))),
            (b"m", 3) => s(a0)
                .zip(s(a1))
                .map(|(db, oid)| (RefKind::CrossDatabase, oid, Some(db))),
            (b"n", 2) => s(a0)
                .zip(s(a1))
                .map(|(db, oid)| (RefKind::CrossDatabaseNoClass, oid, Some(db))),
            _ => None,
        };
        match found {
            Some((kind, oid, database)) => Reference {
                oid,
                kind,
                database,
                offset: pid.offset,
            },
            None => unknown,
        }
    }
}
