//! The error type of the pickle scanner: what went wrong and at which byte of the payload.

use std::fmt;

/// A pickle that cannot be scanned, with the position of the failing opcode.
///
/// `offset` counts bytes from the start of the payload given to the scanner (after any
/// untransform). It is the offset of the opcode that failed: for an argument cut short by
/// the end of the data, the opcode whose argument it is; for a missing opcode (no `STOP`),
/// the payload length; for persistent-id shape errors, the `PERSID` or `BINPERSID` opcode
/// that produced the id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("pickle offset {offset}: {kind}")]
pub struct PickleError {
    /// Byte offset inside the payload.
    pub offset: usize,
    /// What was wrong.
    pub kind: PickleErrorKind,
}

impl PickleError {
    /// Builds an error at `offset`.
    pub(crate) fn new(offset: usize, kind: PickleErrorKind) -> Self {
        Self { offset, kind }
    }

    /// The Python exception ZODB raises in the same situation (`referencesf` or the
    /// unpickler), for messages that compare our behaviour with ZODB's.
    pub fn python_exception(&self) -> &'static str {
        self.kind.python_exception()
    }
}

/// What the scanner found wrong. Each variant names the Python exception ZODB raises in the
/// same place ([`python_exception`](Self::python_exception)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PickleErrorKind {
    /// An opcode the noload machine does not know (`UnpicklingError: invalid load key`;
    /// `OverflowError` for bytes >= 0x80, whose `%c` formatting fails in CPython).
    UnknownOpcode(u8),
    /// The data ended where an opcode or its binary argument was due (`EOFError`).
    Eof,
    /// A text argument shorter than a character and its newline: an empty line, or a cut
    /// at the end of the data (`UnpicklingError: pickle data was truncated`).
    Truncated,
    /// A `PROTO` above 3 (`ValueError: unsupported pickle protocol`).
    UnsupportedProtocol(u8),
    /// An opcode needed more stack items than there were (`UnpicklingError: unpickling stack
    /// underflow`, or "bad pickle data" when a pop meets an empty stack, as `STOP` does on
    /// the `.z`/`.h` prefix of a transformed record).
    StackUnderflow,
    /// An opcode needed a mark and none was set (`UnpicklingError: could not find MARK`).
    MarkNotFound,
    /// `TUPLE` or `LIST` with a mark above the top of the stack (`SystemError` in CPython).
    MarkAboveStack,
    /// A `GET` of a memo slot never `PUT` (`KeyError`).
    MissingMemoKey(i64),
    /// A negative `PUT` index (`ValueError`).
    NegativeMemoIndex,
    /// A `GET`/`PUT` index beyond a Python index (`OverflowError`).
    MemoIndexOverflow,
    /// A `PUT` index of 2^30 or more: CPython grows its memo table to twice the index, 16 GiB
    /// or more, and fails with `MemoryError` on ordinary machines. No pickler writes one.
    MemoTooLarge(u64),
    /// A numeric text argument Python does not parse (`ValueError`).
    BadNumber(&'static str),
    /// A `FLOAT` literal too large for a double (`OverflowError`).
    FloatOverflow,
    /// A `STRING` argument without matching quotes or with a bad escape (`ValueError`).
    BadString(&'static str),
    /// A negative length in `BINSTRING` or `LONG4` (`UnpicklingError`).
    NegativeLength,
    /// A string did not decode: a byte >= 0x80 in a Python 2 string under
    /// [`StringMode::Ascii`](super::StringMode::Ascii), invalid UTF-8 in `BINUNICODE`, a bad
    /// `\u` escape in `UNICODE` (`UnicodeDecodeError`).
    UnicodeDecode(&'static str),
    /// A `str` oid that does not encode to bytes (non-ASCII under `Ascii`, above U+00FF under
    /// `Bytes`) (`UnicodeEncodeError`).
    UnicodeEncode,
    /// An unhashable dict key (`TypeError`).
    Unhashable,
    /// `APPEND`/`APPENDS` onto a value that is neither a list nor None (`AttributeError`).
    NotAppendable,
    /// `SETITEM`/`SETITEMS` onto a value that is neither a dict, a list nor None, or a list
    /// index that is not an integer (`TypeError`).
    NotAssignable,
    /// `SETITEM`/`SETITEMS` onto a list at an index out of range (`IndexError`).
    ListIndex,
    /// `SETITEMS` with an odd number of items (`UnpicklingError`).
    OddSetItems,
    /// An empty tuple as persistent id (`IndexError` in `referencesf`).
    EmptyTuplePid,
    /// A persistent id of a shape ZODB's `referencesf` rejects (`AssertionError`).
    BadPersistentId(&'static str),
    /// A persistent-id opcode in a pickle read without a persistent-load hook, as
    /// `get_pickle_metadata` reads class metadata (`UnpicklingError`).
    NoPersistentLoad,
    /// An `EXT1`/`EXT2`/`EXT4` opcode where a real load is emulated (`ValueError`).
    Extension,
    /// A zlib-compressed (`.z`) record that does not decompress (`zlib.error`).
    Zlib(String),
    /// A zlib-compressed record that would decompress beyond the allowed size.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A hex-encoded (`.h`) record with bad hex digits (`binascii.Error`).
    BadHex,
}

impl PickleErrorKind {
    /// The Python exception class ZODB raises for this problem.
    pub fn python_exception(&self) -> &'static str {
        use PickleErrorKind as K;
        match self {
            K::UnknownOpcode(b) if *b >= 0x80 => "OverflowError",
            K::UnknownOpcode(_)
            | K::Truncated
            | K::StackUnderflow
            | K::MarkNotFound
            | K::NegativeLength
            | K::OddSetItems
            | K::NoPersistentLoad => "UnpicklingError",
            K::Eof => "EOFError",
            K::UnsupportedProtocol(_)
            | K::NegativeMemoIndex
            | K::BadNumber(_)
            | K::BadString(_)
            | K::Extension => "ValueError",
            K::MemoIndexOverflow | K::FloatOverflow => "OverflowError",
            K::MarkAboveStack => "SystemError",
            K::MissingMemoKey(_) => "KeyError",
            K::MemoTooLarge(_) | K::TooLarge { .. } => "MemoryError",
            K::UnicodeDecode(_) => "UnicodeDecodeError",
            K::UnicodeEncode => "UnicodeEncodeError",
            K::Unhashable | K::NotAssignable => "TypeError",
            K::NotAppendable => "AttributeError",
            K::ListIndex | K::EmptyTuplePid => "IndexError",
            K::BadPersistentId(_) => "AssertionError",
            K::Zlib(_) => "zlib.error",
            K::BadHex => "binascii.Error",
        }
    }
}

impl fmt::Display for PickleErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use PickleErrorKind as K;
        match self {
            K::UnknownOpcode(b) => write!(f, "unknown opcode 0x{b:02x} ({:?})", char::from(*b)),
            K::Eof => f.write_str("unexpected end of data"),
            K::Truncated => f.write_str("text argument cut short by the end of the data"),
            K::UnsupportedProtocol(p) => write!(f, "unsupported pickle protocol {p}"),
            K::StackUnderflow => f.write_str("stack underflow"),
            K::MarkNotFound => f.write_str("no MARK to pop"),
            K::MarkAboveStack => f.write_str("MARK above the top of the stack"),
            K::MissingMemoKey(k) => write!(f, "memo key {k} was never stored"),
            K::NegativeMemoIndex => f.write_str("negative memo index"),
            K::MemoIndexOverflow => f.write_str("memo index beyond a Python index"),
            K::MemoTooLarge(i) => write!(f, "memo index {i} too large"),
            K::BadNumber(what) => write!(f, "invalid number: {what}"),
            K::FloatOverflow => f.write_str("FLOAT literal overflows a double"),
            K::BadString(what) => write!(f, "invalid STRING argument: {what}"),
            K::NegativeLength => f.write_str("negative length"),
            K::UnicodeDecode(what) => write!(f, "string does not decode: {what}"),
            K::UnicodeEncode => f.write_str("str oid does not encode to bytes"),
            K::Unhashable => f.write_str("unhashable dict key"),
            K::NotAppendable => f.write_str("append to a value that is not a list"),
            K::NotAssignable => f.write_str("item assignment on a value that is not a dict"),
            K::ListIndex => f.write_str("list assignment index out of range"),
            K::OddSetItems => f.write_str("odd number of items for SETITEMS"),
            K::EmptyTuplePid => f.write_str("empty tuple as persistent id"),
            K::BadPersistentId(what) => write!(f, "bad persistent id: {what}"),
            K::NoPersistentLoad => f.write_str("persistent id where none is allowed"),
            K::Extension => f.write_str("extension opcode (EXT1/EXT2/EXT4) in a real load"),
            K::Zlib(msg) => write!(f, "zlib: {msg}"),
            K::TooLarge { limit } => {
                write!(f, "decompressed record would exceed {limit} bytes")
            }
            K::BadHex => f.write_str("invalid hex in a .h record"),
        }
    }
}
