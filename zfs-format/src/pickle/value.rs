//! Values of the noload machine: 8-byte packed handles ([`Val`]) and what they point to.
//!
//! Strings are locations in the payload (or in a side buffer for decoded escapes); tuples and
//! lists keep only their length, their first items and, for tuples, whether they are
//! hashable: nothing else changes which persistent ids are collected, how they are
//! classified, or whether the scan fails.

/// A value, unpacked for matching (see [`Val`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum V {
    /// An empty memo slot; never on the stack.
    Unset,
    /// `None`, and what noload leaves for every object built by code.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An `int` that fits in 64 bits.
    Int(i64),
    /// A larger `int`.
    BigInt,
    /// A `float`: index into `Machine::floats`.
    Float(usize),
    /// A `bytes` value: index into `Machine::strs`.
    Bytes(usize),
    /// A `str` value (generalized UTF-8): index into `Machine::strs`.
    Text(usize),
    /// A tuple: index into `Machine::tuples`.
    Tuple(usize),
    /// A list: index into `Machine::lists`.
    List(usize),
    /// A dict (its contents never matter).
    Dict,
    /// `Flavor::Load` only: the object a `GLOBAL` imports; the payload offset of the opcode.
    Global(usize),
    /// `Flavor::Load` only: an object built by running code (REDUCE, NEWOBJ, OBJ, INST).
    Opaque,
}

/// A value on the stack or in the memo, packed in 8 bytes: a 4-bit tag and a 60-bit
/// payload (an index, an offset or a small integer). One 8-byte word per value keeps pushes
/// and pops to single loads and stores, which the CPU forwards without stalls.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Val(u64);

impl Val {
    /// An empty memo slot (all zero bits, so a fresh memo table is zeroed memory).
    pub const UNSET: Val = Val(0);
    /// `None`.
    pub const NONE: Val = Val(1);
    /// A large `int`.
    pub const BIGINT: Val = Val(4);
    /// A dict.
    pub const DICT: Val = Val(10);
    /// An object built by code (`Flavor::Load`).
    pub const OPAQUE: Val = Val(12);

    /// A value with a tag and an index payload (indices and offsets stay below 2^60).
    #[inline(always)]
    fn with(tag: u64, payload: usize) -> Val {
        Val(((payload as u64) << 4) | tag)
    }

    /// A boolean.
    #[inline(always)]
    pub fn bool(b: bool) -> Val {
        Val::with(2, usize::from(b))
    }

    /// An integer; beyond 60 bits it only counts as a large integer.
    #[inline(always)]
    pub fn int(i: i64) -> Val {
        if (i << 4) >> 4 == i {
            Val(((i << 4) as u64) | 3)
        } else {
            Val::BIGINT
        }
    }

    /// Float `i`.
    #[inline(always)]
    pub fn float(i: usize) -> Val {
        Val::with(5, i)
    }

    /// `bytes` string `i`.
    #[inline(always)]
    pub fn bytes(i: usize) -> Val {
        Val::with(6, i)
    }

    /// `str` string `i`.
    #[inline(always)]
    pub fn text(i: usize) -> Val {
        Val::with(7, i)
    }

    /// Tuple `i`.
    #[inline(always)]
    pub fn tuple(i: usize) -> Val {
        Val::with(8, i)
    }

    /// List `i`.
    #[inline(always)]
    pub fn list(i: usize) -> Val {
        Val::with(9, i)
    }

    /// The global whose `GLOBAL` opcode is at payload offset `at`.
    #[inline(always)]
    pub fn global(at: usize) -> Val {
        Val::with(11, at)
    }

    /// Unpacks for matching.
    #[inline(always)]
    pub fn get(self) -> V {
        let p = (self.0 >> 4) as usize;
        match self.0 & 15 {
            0 => V::Unset,
            1 => V::None,
            2 => V::Bool(p != 0),
            3 => V::Int((self.0 as i64) >> 4),
            4 => V::BigInt,
            5 => V::Float(p),
            6 => V::Bytes(p),
            7 => V::Text(p),
            8 => V::Tuple(p),
            9 => V::List(p),
            10 => V::Dict,
            11 => V::Global(p),
            _ => V::Opaque,
        }
    }
}

impl std::fmt::Debug for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// Where a string's bytes are.
#[derive(Clone, Copy, Debug)]
pub(super) enum StrSrc {
    /// `data[start..end]` of the payload.
    Slice(usize, usize),
    /// Index into `Machine::owned`.
    Owned(usize),
}

/// What the machine keeps of a tuple.
#[derive(Clone, Copy, Debug)]
pub(super) struct TupleHdr {
    /// Number of items.
    pub len: usize,
    /// The first items ([`Val::UNSET`] past `len`).
    pub head: [Val; 3],
    /// Whether every item is hashable.
    pub hashable: bool,
}

/// What the machine keeps of a list (lists are mutable: handles alias like Python objects).
#[derive(Clone, Copy, Debug)]
pub(super) struct ListHdr {
    /// Number of items.
    pub len: usize,
    /// The first items ([`Val::UNSET`] past `len`).
    pub head: [Val; 2],
}

/// A persistent id handed to the hook, with the offset of its opcode.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pid {
    /// The id.
    pub val: Val,
    /// Offset of the `PERSID`/`BINPERSID` opcode.
    pub offset: usize,
}
