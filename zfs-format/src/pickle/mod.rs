//! Persistent references and class names read from record pickles, without Python.
//!
//! A data record's payload is two pickles written by one pickler: the class metadata, then
//! the object's state. They share one memo (the state pickle routinely `BINGET`s the class
//! memoised by the first). ZODB finds references with zodbpickle's `noload()`, run once per
//! pickle: a stack machine that builds containers and strings but replaces every object
//! built by code (`GLOBAL`, `REDUCE`, `NEWOBJ`, `INST`, `OBJ`, `EXT*`) with `None`, and hands
//! each persistent id (`PERSID`, `BINPERSID`) to a hook. [`Scanner`] emulates that machine
//! opcode for opcode (protocols 0 to 3; protocol 4 and above are refused as ZODB refuses
//! them), then classifies the ids as ZODB does:
//!
//! - [`references`] / [`Scanner::references_into`]: exactly the oid list of ZODB's
//!   `referencesf` (bare oids and tuple forms, duplicates kept, in opcode order), failing
//!   wherever `referencesf` raises, with the Python exception it raises
//!   ([`PickleError::python_exception`]);
//! - [`persistent_refs`] / [`Scanner::persistent_refs_into`]: every id as a [`Reference`]
//!   with its [`RefKind`] (weak and cross-database forms too), failing exactly where
//!   [`references`] fails.
//!
//! Oids are `Cow<[u8]>`: slices of the payload, except in the rare forms that need decoding
//! (protocol-0 `STRING`/`UNICODE` escapes, a non-ASCII `str` oid under
//! [`StringMode::Bytes`]). For many records, keep one [`Scanner`] per thread: it reuses its
//! buffers, so scanning allocates nothing per record once warm.
//!
//! Python 2 strings (`STRING`, `BINSTRING`, `SHORT_BINSTRING`) are read per [`StringMode`]:
//! use [`StringMode::Bytes`] for `FS21` files and [`StringMode::Ascii`] to agree with Python 3
//! ZODB on `FS30` files ([`StringMode::for_magic`] picks one from the file magic). Under
//! `Bytes`, a `str` oid (from `BINUNICODE`) is encoded as Latin-1, as the FS21 pack oracle
//! does; a tuple whose element 0 is not a string is an error in both modes (Python 2 ZODB
//! appended it to the oid list unchecked, and its pack then failed on it).
//!
//! Records transformed by zc.zlibstorage (`.z`) or HexStorage (`.h`) fail to scan, as in
//! ZODB; call [`untransform`] first. [`class_name`] gives what `get_pickle_metadata` gives.
//!
//! Known differences from ZODB, all on input no ZODB writes: a `PUT` index of 2^30 or more
//! is refused as CPython's `MemoryError` (CPython's outcome depends on the machine's memory);
//! `STRING` arguments containing NUL bytes (undefined behaviour in the C unpickler) are
//! decoded whole; numeric text arguments follow CPython 3.11's parsers (checked against it on
//! thousands of mutated pickles) but may differ in exotic spellings not met there.
//!
//! ```
//! use zfs_format::pickle::{references, StringMode};
//!
//! // class pickle `persistent.mapping.PersistentMapping`, then a state holding one
//! // reference `(oid, <class from memo 0>)`.
//! let data = b"\x80\x03cpersistent.mapping\nPersistentMapping\nq\x00.\
//!              \x80\x03C\x08\x00\x00\x00\x00\x00\x00\x00\x07h\x00\x86Q.";
//! let oids = references(data, StringMode::Ascii)?;
//! assert_eq!(oids, [&[0, 0, 0, 0, 0, 0, 0, 7][..]]);
//! # Ok::<(), zfs_format::pickle::PickleError>(())
//! ```

mod error;
mod meta;
mod refs;
mod scan;
mod text;
mod transform;
mod value;

use std::borrow::Cow;

pub use error::{PickleError, PickleErrorKind};
pub use meta::{class_name, ClassName, ClassSource};
pub use refs::{RefKind, Reference};
pub use transform::{
    is_transformed, untransform, untransform_with_limit, DEFAULT_MAX_UNTRANSFORMED,
};

use scan::{Flavor, Machine};

/// How Python 2 strings (`STRING`, `BINSTRING`, `SHORT_BINSTRING`) are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StringMode {
    /// As Python 3 ZODB reads them: decoded as strict ASCII into `str`. A byte >= 0x80 is an
    /// error, as ZODB's `UnicodeDecodeError` (pack, fsrefs and fsoids fail on such records).
    Ascii,
    /// As Python 2 ZODB read them: raw bytes, never an error. The mode for `FS21` files.
    Bytes,
}

impl StringMode {
    /// The default mode for a file magic: [`Bytes`](Self::Bytes) for `FS21` (Python 2),
    /// [`Ascii`](Self::Ascii) otherwise (`FS30`, Python 3, as ZODB).
    pub fn for_magic(magic: &[u8]) -> Self {
        if magic == b"FS21" {
            StringMode::Bytes
        } else {
            StringMode::Ascii
        }
    }
}

/// A reusable reference scanner: keeps its buffers between records, so scanning a file
/// allocates only when a record is larger than any before it.
#[derive(Debug, Default)]
pub struct Scanner {
    machine: Machine,
}

impl Scanner {
    /// A scanner with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs noload over both pickles of `data`, collecting persistent ids.
    fn run(&mut self, data: &[u8], mode: StringMode) -> Result<(), PickleError> {
        self.machine.reset();
        let mut pos = 0;
        self.machine.run(data, &mut pos, mode, Flavor::NoLoad)?;
        self.machine.run(data, &mut pos, mode, Flavor::NoLoad)?;
        Ok(())
    }

    /// Appends to `out` the oids ZODB's `referencesf(data)` returns. On error `out` is left
    /// as it was.
    pub fn references_into<'a>(
        &mut self,
        data: &'a [u8],
        mode: StringMode,
        out: &mut Vec<Cow<'a, [u8]>>,
    ) -> Result<(), PickleError> {
        let before = out.len();
        let result = self
            .run(data, mode)
            .and_then(|()| self.machine.strong_refs(data, mode, out));
        if result.is_err() {
            out.truncate(before);
        }
        result
    }

    /// Appends to `out` every persistent reference of `data`, classified. Fails exactly
    /// where [`references_into`](Self::references_into) fails. On error `out` is left as
    /// it was.
    pub fn persistent_refs_into<'a>(
        &mut self,
        data: &'a [u8],
        mode: StringMode,
        out: &mut Vec<Reference<'a>>,
    ) -> Result<(), PickleError> {
        let before = out.len();
        let result = self
            .run(data, mode)
            .and_then(|()| self.machine.all_refs(data, mode, out));
        if result.is_err() {
            out.truncate(before);
        }
        result
    }
}

/// The oids ZODB's `referencesf(data)` returns: strong references only, in order, with
/// duplicates.
pub fn references(data: &[u8], mode: StringMode) -> Result<Vec<Cow<'_, [u8]>>, PickleError> {
    let mut out = Vec::new();
    Scanner::new().references_into(data, mode, &mut out)?;
    Ok(out)
}

/// Every persistent reference of `data`, classified, in order.
pub fn persistent_refs(data: &[u8], mode: StringMode) -> Result<Vec<Reference<'_>>, PickleError> {
    let mut out = Vec::new();
    Scanner::new().persistent_refs_into(data, mode, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests;
