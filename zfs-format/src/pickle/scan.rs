//! The noload machine: zodbpickle's `Unpickler.noload()` as a stack machine over bytes.
//!
//! Values are the 8-byte handles of [`super::value`]. All buffers live in a [`Machine`] that
//! is cleared, not freed, between records.
//!
//! A second flavour, [`Flavor::Load`], approximates the real `load()` that
//! `get_pickle_metadata` runs over the class pickle: globals become named values, persistent
//! ids and extension codes are errors, and objects built by code are opaque.

use std::collections::HashMap;

use super::error::{PickleError, PickleErrorKind as K};
use super::text::{self, IntArg, PyInt, StringArg};
use super::value::{ListHdr, Pid, StrSrc, TupleHdr, Val, V};
use super::StringMode;

/// Which unpickler is emulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flavor {
    /// zodbpickle's `noload()`, as `referencesf` runs it.
    NoLoad,
    /// A real `load()` without a persistent-load hook, as `get_pickle_metadata` runs it.
    Load,
}

/// Reusable state of the noload machine. The memo persists across the pickles of one record;
/// everything is cleared by [`Machine::reset`].
#[derive(Debug, Default)]
pub(super) struct Machine {
    stack: Vec<Val>,
    marks: Vec<usize>,
    memo: Vec<Val>,
    memo_sparse: HashMap<i64, Val>,
    /// String locations.
    pub strs: Vec<StrSrc>,
    /// Decoded strings that are not slices of the payload.
    pub owned: Vec<Vec<u8>>,
    /// Float values.
    pub floats: Vec<f64>,
    /// Tuples.
    pub tuples: Vec<TupleHdr>,
    /// Lists.
    pub lists: Vec<ListHdr>,
    /// Persistent ids in the order their opcodes ran.
    pub pids: Vec<Pid>,
}

type Step = Result<(), K>;

/// The first memo index CPython cannot store: it grows the memo table to twice the index,
/// 8 bytes a slot, so 2^30 asks for 16 GiB, beyond ordinary machines (ZODB then raises
/// `MemoryError`; on this project's test machine the golden vectors confirm it from 2^30.9).
const MEMO_LIMIT: i64 = 1 << 30;

/// Reads `n` bytes at `*pos`, advancing it.
#[inline(always)]
fn take<'d>(data: &'d [u8], pos: &mut usize, n: usize) -> Result<&'d [u8], K> {
    let end = pos.checked_add(n).ok_or(K::Eof)?;
    let s = data.get(*pos..end).ok_or(K::Eof)?;
    *pos = end;
    Ok(s)
}

/// Reads a fixed-size little-endian field.
#[inline(always)]
fn take_arr<const N: usize>(data: &[u8], pos: &mut usize) -> Result<[u8; N], K> {
    let s = take(data, pos, N)?;
    Ok(s.try_into().expect("take returned N bytes"))
}

/// Reads a line as the C unpickler does: up to and including `\n`, or whatever is left.
/// Returns the start offset and the line.
#[inline(always)]
fn line<'d>(data: &'d [u8], pos: &mut usize) -> (usize, &'d [u8]) {
    let start = *pos;
    let rest = data.get(start..).unwrap_or_default();
    let n = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => i + 1,
        None => rest.len(),
    };
    *pos = start + n;
    (start, rest.get(..n).unwrap_or_default())
}

/// A line of at least 2 bytes (a character and its newline). CPython refuses shorter ones,
/// an empty line or a cut at the end of the data, as "pickle data was truncated".
#[inline(always)]
fn line2<'d>(data: &'d [u8], pos: &mut usize) -> Result<(usize, &'d [u8]), K> {
    let (start, l) = line(data, pos);
    if l.len() < 2 {
        return Err(K::Truncated);
    }
    Ok((start, l))
}

impl Machine {
    /// Clears all state for a new record.
    pub fn reset(&mut self) {
        self.stack.clear();
        self.marks.clear();
        self.memo.clear();
        self.memo_sparse.clear();
        self.strs.clear();
        self.owned.clear();
        self.floats.clear();
        self.tuples.clear();
        self.lists.clear();
        self.pids.clear();
    }

    /// Runs one pickle from `*pos` to its `STOP` and returns the value `STOP` pops. The stack
    /// and marks start empty; the memo is kept from earlier pickles of the record.
    pub fn run(
        &mut self,
        data: &[u8],
        pos: &mut usize,
        mode: StringMode,
        flavor: Flavor,
    ) -> Result<Val, PickleError> {
        self.stack.clear();
        self.marks.clear();
        loop {
            let at = *pos;
            let Some(&op) = data.get(at) else {
                return Err(PickleError::new(data.len(), K::Eof));
            };
            *pos = at + 1;
            if op == b'.' {
                return self.pop().map_err(|k| PickleError::new(at, k));
            }
            if let Err(kind) = self.step(op, at, data, pos, mode, flavor) {
                return Err(PickleError::new(at, kind));
            }
        }
    }

    /// Executes one opcode (not `STOP`).
    #[inline(always)]
    fn step(
        &mut self,
        op: u8,
        at: usize,
        data: &[u8],
        pos: &mut usize,
        mode: StringMode,
        flavor: Flavor,
    ) -> Step {
        match op {
            // Stack and marks.
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                let len = self.stack.len();
                if self.marks.last() == Some(&len) {
                    self.marks.pop();
                } else if self.stack.pop().is_none() {
                    return Err(K::StackUnderflow);
                }
            }
            b'1' => {
                let i = self.marker()?;
                self.stack.truncate(i);
            }
            b'2' => {
                let top = *self.stack.last().ok_or(K::StackUnderflow)?;
                self.stack.push(top);
            }
            // Memo.
            b'p' => {
                let (_, l) = line2(data, pos)?;
                let top = *self.stack.last().ok_or(K::StackUnderflow)?;
                match text::python_int(l, 10).map_err(|e| int_error(e, "PUT index"))? {
                    PyInt::Small(i) if i >= 0 => self.memo_put(i, top, data.len())?,
                    PyInt::Small(_) => return Err(K::NegativeMemoIndex),
                    PyInt::Big => return Err(K::MemoIndexOverflow),
                }
            }
            b'q' => {
                let [i] = take_arr::<1>(data, pos)?;
                let top = *self.stack.last().ok_or(K::StackUnderflow)?;
                self.memo_put(i64::from(i), top, data.len())?;
            }
            b'r' => {
                let i = u32::from_le_bytes(take_arr::<4>(data, pos)?);
                let top = *self.stack.last().ok_or(K::StackUnderflow)?;
                self.memo_put(i64::from(i), top, data.len())?;
            }
            b'g' => {
                let (_, l) = line2(data, pos)?;
                match text::python_int(l, 10).map_err(|e| int_error(e, "GET index"))? {
                    PyInt::Small(i) => self.memo_get(i)?,
                    PyInt::Big => return Err(K::MemoIndexOverflow),
                }
            }
            b'h' => {
                let [i] = take_arr::<1>(data, pos)?;
                self.memo_get(i64::from(i))?;
            }
            b'j' => {
                let i = u32::from_le_bytes(take_arr::<4>(data, pos)?);
                self.memo_get(i64::from(i))?;
            }
            // Constants and numbers.
            b'N' => self.stack.push(Val::NONE),
            0x88 => self.stack.push(Val::bool(true)),
            0x89 => self.stack.push(Val::bool(false)),
            b'K' => {
                let [b] = take_arr::<1>(data, pos)?;
                self.stack.push(Val::int(i64::from(b)));
            }
            b'M' => {
                let v = u16::from_le_bytes(take_arr::<2>(data, pos)?);
                self.stack.push(Val::int(i64::from(v)));
            }
            b'J' => {
                let v = i32::from_le_bytes(take_arr::<4>(data, pos)?);
                self.stack.push(Val::int(i64::from(v)));
            }
            b'I' => {
                let (_, l) = line2(data, pos)?;
                let v = match text::int_arg(l).ok_or(K::BadNumber("INT"))? {
                    IntArg::Bool(b) => Val::bool(b),
                    IntArg::Int(i) => int_val(i),
                };
                self.stack.push(v);
            }
            b'L' => {
                let (_, l) = line2(data, pos)?;
                let v = text::long_arg(l).map_err(|e| int_error(e, "LONG"))?;
                self.stack.push(int_val(v));
            }
            0x8a => {
                let [n] = take_arr::<1>(data, pos)?;
                let bytes = take(data, pos, usize::from(n))?;
                self.stack.push(long_le(bytes));
            }
            0x8b => {
                let n = i32::from_le_bytes(take_arr::<4>(data, pos)?);
                let n = usize::try_from(n).map_err(|_| K::NegativeLength)?;
                let bytes = take(data, pos, n)?;
                self.stack.push(long_le(bytes));
            }
            b'F' => {
                let (_, l) = line2(data, pos)?;
                let v = match text::float_arg(l) {
                    Ok(v) => v,
                    Err(text::FloatError::Invalid) => return Err(K::BadNumber("FLOAT")),
                    Err(text::FloatError::Overflow) => return Err(K::FloatOverflow),
                };
                self.push_float(v);
            }
            b'G' => {
                let v = f64::from_be_bytes(take_arr::<8>(data, pos)?);
                self.push_float(v);
            }
            // Strings.
            b'C' => {
                let [n] = take_arr::<1>(data, pos)?;
                self.push_bytes(data, pos, usize::from(n))?;
            }
            b'B' => {
                let n = u32::from_le_bytes(take_arr::<4>(data, pos)?);
                self.push_bytes(data, pos, n as usize)?;
            }
            b'U' => {
                let [n] = take_arr::<1>(data, pos)?;
                self.push_py2_string(data, pos, usize::from(n), mode)?;
            }
            b'T' => {
                let n = i32::from_le_bytes(take_arr::<4>(data, pos)?);
                let n = usize::try_from(n).map_err(|_| K::NegativeLength)?;
                self.push_py2_string(data, pos, n, mode)?;
            }
            b'S' => {
                let (start, l) = line2(data, pos)?;
                let src = match text::string_arg(l).map_err(K::BadString)? {
                    StringArg::Range(a, b) => StrSrc::Slice(start + a, start + b),
                    StringArg::Owned(v) => self.own(v),
                };
                let ascii = self.src_bytes(data, src).is_ascii();
                self.push_str_src(src, mode, ascii)?;
            }
            b'X' => {
                let n = u32::from_le_bytes(take_arr::<4>(data, pos)?);
                let start = *pos;
                let s = take(data, pos, n as usize)?;
                if !s.is_ascii() && !text::is_utf8_surrogatepass(s) {
                    return Err(K::UnicodeDecode("invalid UTF-8 in BINUNICODE"));
                }
                let idx = self.strs.len();
                self.strs.push(StrSrc::Slice(start, *pos));
                self.stack.push(Val::text(idx));
            }
            b'V' => {
                let (start, l) = line(data, pos);
                let body = l.len().checked_sub(1).ok_or(K::Truncated)?;
                let src = match text::raw_unicode_escape(l.get(..body).unwrap_or_default())
                    .map_err(K::UnicodeDecode)?
                {
                    None => StrSrc::Slice(start, start + body),
                    Some(v) => self.own(v),
                };
                let idx = self.strs.len();
                self.strs.push(src);
                self.stack.push(Val::text(idx));
            }
            // Containers.
            b')' => {
                let v = self.new_tuple(self.stack.len());
                self.stack.push(v);
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if self.stack.len() < n {
                    return Err(K::StackUnderflow);
                }
                let v = self.new_tuple(self.stack.len() - n);
                self.stack.push(v);
            }
            b't' => {
                let i = self.marker()?;
                if i > self.stack.len() {
                    return Err(K::MarkAboveStack);
                }
                let v = self.new_tuple(i);
                self.stack.push(v);
            }
            b']' => {
                let v = self.new_list(self.stack.len());
                self.stack.push(v);
            }
            b'l' => {
                let i = self.marker()?;
                if i > self.stack.len() {
                    return Err(K::MarkAboveStack);
                }
                let v = self.new_list(i);
                self.stack.push(v);
            }
            b'}' => self.stack.push(Val::DICT),
            b'd' => {
                let i = self.marker()?;
                let items = self.stack.get(i..).unwrap_or_default();
                if items.chunks_exact(2).any(|kv| !self.hashable(kv[0])) {
                    return Err(K::Unhashable);
                }
                self.stack.truncate(i);
                self.stack.push(Val::DICT);
            }
            b'a' => {
                let x = self.stack.len().checked_sub(1).ok_or(K::StackUnderflow)?;
                self.appends(x)?;
            }
            b'e' => {
                let x = self.marker()?;
                self.appends(x)?;
            }
            b's' => {
                let x = self.stack.len().checked_sub(2).ok_or(K::StackUnderflow)?;
                self.setitems(x)?;
            }
            b'u' => {
                let x = self.marker()?;
                self.setitems(x)?;
            }
            // Object creation, neutralised.
            b'c' => {
                line(data, pos);
                line(data, pos);
                self.stack.push(match flavor {
                    Flavor::NoLoad => Val::NONE,
                    Flavor::Load => Val::global(at),
                });
            }
            b'R' => {
                let len = self.stack.len();
                if len < 2 {
                    return Err(K::StackUnderflow);
                }
                self.stack.truncate(len - 2);
                self.stack.push(built(flavor));
            }
            0x81 => {
                self.pop()?;
                self.pop()?;
                self.stack.push(built(flavor));
            }
            b'b' => {
                self.pop()?;
            }
            b'o' => {
                let i = self.marker()?;
                match flavor {
                    // noload keeps the first item after the mark (the class, usually None).
                    Flavor::NoLoad => self.stack.truncate(i + 1),
                    Flavor::Load => {
                        if i >= self.stack.len() {
                            return Err(K::StackUnderflow);
                        }
                        self.stack.truncate(i);
                        self.stack.push(Val::OPAQUE);
                    }
                }
            }
            b'i' => {
                let i = self.marker()?;
                self.stack.truncate(i);
                line(data, pos);
                line(data, pos);
                self.stack.push(built(flavor));
            }
            0x82..=0x84 => {
                let n = [1, 2, 4][usize::from(op - 0x82)];
                take(data, pos, n)?;
                if flavor == Flavor::Load {
                    return Err(K::Extension);
                }
                self.stack.push(Val::NONE);
            }
            // Persistent ids.
            b'P' => {
                if flavor == Flavor::Load {
                    return Err(K::NoPersistentLoad);
                }
                let (start, l) = line2(data, pos)?;
                let idx = self.strs.len();
                self.strs.push(StrSrc::Slice(start, start + l.len() - 1));
                self.pids.push(Pid {
                    val: Val::bytes(idx),
                    offset: at,
                });
                self.stack.push(Val::NONE);
            }
            b'Q' => {
                if flavor == Flavor::Load {
                    return Err(K::NoPersistentLoad);
                }
                let val = self.pop()?;
                self.pids.push(Pid { val, offset: at });
                self.stack.push(Val::NONE);
            }
            0x80 => {
                let [p] = take_arr::<1>(data, pos)?;
                if p > 3 {
                    return Err(K::UnsupportedProtocol(p));
                }
            }
            _ => return Err(K::UnknownOpcode(op)),
        }
        Ok(())
    }

    /// Pops the top of the stack ("bad pickle data" when empty).
    #[inline(always)]
    fn pop(&mut self) -> Result<Val, K> {
        self.stack.pop().ok_or(K::StackUnderflow)
    }

    /// Pops the innermost mark.
    #[inline(always)]
    fn marker(&mut self) -> Result<usize, K> {
        self.marks.pop().ok_or(K::MarkNotFound)
    }

    /// Stores `v` at memo index `i` (>= 0). Indices an honest pickle can reach (below the
    /// payload length) use a dense table; larger ones a map, so no input makes us allocate
    /// more than a small multiple of its size. From [`MEMO_LIMIT`] on, CPython runs out of
    /// memory, and so do we, on purpose.
    #[inline]
    fn memo_put(&mut self, i: i64, v: Val, data_len: usize) -> Step {
        if i >= MEMO_LIMIT {
            return Err(K::MemoTooLarge(i.unsigned_abs()));
        }
        match usize::try_from(i) {
            Ok(u) if u <= data_len => {
                if u >= self.memo.len() {
                    self.memo.resize(u + 1, Val::UNSET);
                }
                self.memo[u] = v;
            }
            _ => {
                self.memo_sparse.insert(i, v);
            }
        }
        Ok(())
    }

    /// Pushes memo entry `i` (`KeyError` if never stored).
    #[inline]
    fn memo_get(&mut self, i: i64) -> Step {
        let v = match usize::try_from(i) {
            Ok(u) if u < self.memo.len() => self.memo[u],
            _ => self.memo_sparse.get(&i).copied().unwrap_or(Val::UNSET),
        };
        if v == Val::UNSET {
            return Err(K::MissingMemoKey(i));
        }
        self.stack.push(v);
        Ok(())
    }

    /// Pushes a float.
    #[inline(always)]
    fn push_float(&mut self, v: f64) {
        self.floats.push(v);
        self.stack.push(Val::float(self.floats.len() - 1));
    }

    /// Stores an owned decoded string.
    fn own(&mut self, v: Vec<u8>) -> StrSrc {
        self.owned.push(v);
        StrSrc::Owned(self.owned.len() - 1)
    }

    /// The bytes of a string source.
    pub fn src_bytes<'d>(&'d self, data: &'d [u8], src: StrSrc) -> &'d [u8] {
        match src {
            StrSrc::Slice(a, b) => data.get(a..b).unwrap_or_default(),
            StrSrc::Owned(i) => self.owned.get(i).map(Vec::as_slice).unwrap_or_default(),
        }
    }

    /// Pushes `n` bytes at `*pos` as `bytes`.
    #[inline(always)]
    fn push_bytes(&mut self, data: &[u8], pos: &mut usize, n: usize) -> Step {
        let start = *pos;
        take(data, pos, n)?;
        self.strs.push(StrSrc::Slice(start, *pos));
        self.stack.push(Val::bytes(self.strs.len() - 1));
        Ok(())
    }

    /// Pushes a Python 2 string (`SHORT_BINSTRING`, `BINSTRING`) of `n` bytes at `*pos`.
    #[inline(always)]
    fn push_py2_string(
        &mut self,
        data: &[u8],
        pos: &mut usize,
        n: usize,
        mode: StringMode,
    ) -> Step {
        let start = *pos;
        let s = take(data, pos, n)?;
        let ascii = mode == StringMode::Bytes || s.is_ascii();
        self.push_str_src(StrSrc::Slice(start, *pos), mode, ascii)
    }

    /// Pushes a Python 2 string decoded per `mode`: raw bytes, or an ASCII `str`.
    #[inline(always)]
    fn push_str_src(&mut self, src: StrSrc, mode: StringMode, ascii: bool) -> Step {
        let idx = self.strs.len();
        let v = match mode {
            StringMode::Bytes => Val::bytes(idx),
            StringMode::Ascii if ascii => Val::text(idx),
            StringMode::Ascii => {
                return Err(K::UnicodeDecode(
                    "byte >= 0x80 in a Python 2 string (ASCII)",
                ))
            }
        };
        self.strs.push(src);
        self.stack.push(v);
        Ok(())
    }

    /// Whether a value can be a dict key.
    pub fn hashable(&self, v: Val) -> bool {
        match v.get() {
            V::List(_) | V::Dict => false,
            V::Tuple(i) => self.tuples[i].hashable,
            _ => true,
        }
    }

    /// Moves `stack[from..]` into a new tuple and returns its handle.
    #[inline]
    fn new_tuple(&mut self, from: usize) -> Val {
        let items = self.stack.get(from..).unwrap_or_default();
        let mut head = [Val::UNSET; 3];
        for (h, v) in head.iter_mut().zip(items) {
            *h = *v;
        }
        let hashable = items.iter().all(|&v| self.hashable(v));
        self.tuples.push(TupleHdr {
            len: items.len(),
            head,
            hashable,
        });
        self.stack.truncate(from);
        Val::tuple(self.tuples.len() - 1)
    }

    /// Moves `stack[from..]` into a new list and returns its handle.
    #[inline]
    fn new_list(&mut self, from: usize) -> Val {
        let items = self.stack.get(from..).unwrap_or_default();
        let mut head = [Val::UNSET; 2];
        for (h, v) in head.iter_mut().zip(items) {
            *h = *v;
        }
        self.lists.push(ListHdr {
            len: items.len(),
            head,
        });
        self.stack.truncate(from);
        Val::list(self.lists.len() - 1)
    }

    /// `APPEND`/`APPENDS` under noload: items above `x` go into `stack[x - 1]`, or are
    /// dropped when that is None.
    fn appends(&mut self, x: usize) -> Step {
        let len = self.stack.len();
        if x == 0 || x > len {
            return Err(K::StackUnderflow);
        }
        if x == len {
            return Ok(());
        }
        match self.stack[x - 1].get() {
            V::None | V::Opaque | V::Global(_) => {}
            V::List(l) => {
                let hdr = &mut self.lists[l];
                for &v in &self.stack[x..] {
                    if let Some(h) = hdr.head.get_mut(hdr.len) {
                        *h = v;
                    }
                    hdr.len += 1;
                }
            }
            _ => return Err(K::NotAppendable),
        }
        self.stack.truncate(x);
        Ok(())
    }

    /// `SETITEM`/`SETITEMS` under noload: key/value pairs above `x` go into `stack[x - 1]`,
    /// or are dropped when that is None.
    fn setitems(&mut self, x: usize) -> Step {
        let len = self.stack.len();
        if x == 0 || x > len {
            return Err(K::StackUnderflow);
        }
        let target = self.stack[x - 1].get();
        if matches!(target, V::None | V::Opaque | V::Global(_)) {
            self.stack.truncate(x);
            return Ok(());
        }
        if x == len {
            return Ok(());
        }
        if !(len - x).is_multiple_of(2) {
            return Err(K::OddSetItems);
        }
        let result = match target {
            V::Dict => {
                let pairs = self.stack.get(x..).unwrap_or_default();
                if pairs.chunks_exact(2).all(|kv| self.hashable(kv[0])) {
                    Ok(())
                } else {
                    Err(K::Unhashable)
                }
            }
            V::List(l) => self.list_setitems(l, x),
            _ => Err(K::NotAssignable),
        };
        self.stack.truncate(x);
        result
    }

    /// `list[key] = value` for each pair above `x`, with Python's index rules.
    fn list_setitems(&mut self, l: usize, x: usize) -> Step {
        let pairs = self.stack.get(x..).unwrap_or_default();
        for kv in pairs.chunks_exact(2) {
            let hdr = &mut self.lists[l];
            let key = match kv[0].get() {
                V::Int(i) => i,
                V::Bool(b) => i64::from(b),
                V::BigInt => return Err(K::ListIndex),
                _ => return Err(K::NotAssignable),
            };
            let n = i64::try_from(hdr.len).unwrap_or(i64::MAX);
            let idx = if key < 0 { key + n } else { key };
            if idx < 0 || idx >= n {
                return Err(K::ListIndex);
            }
            if let Some(h) = usize::try_from(idx).ok().and_then(|i| hdr.head.get_mut(i)) {
                *h = kv[1];
            }
        }
        Ok(())
    }
}

/// What an object-building opcode leaves on the stack.
#[inline(always)]
fn built(flavor: Flavor) -> Val {
    match flavor {
        Flavor::NoLoad => Val::NONE,
        Flavor::Load => Val::OPAQUE,
    }
}

/// The error for integer text Python refuses.
fn int_error(e: text::IntError, what: &'static str) -> K {
    match e {
        text::IntError::Invalid => K::BadNumber(what),
        text::IntError::NotUtf8 => K::UnicodeDecode("invalid integer text that is not UTF-8"),
    }
}

/// An integer value from parsed text.
fn int_val(i: PyInt) -> Val {
    match i {
        PyInt::Small(v) => Val::int(v),
        PyInt::Big => Val::BIGINT,
    }
}

/// A two's-complement little-endian integer (`LONG1`/`LONG4`).
fn long_le(bytes: &[u8]) -> Val {
    let Some(&last) = bytes.last() else {
        return Val::int(0);
    };
    let fill = if last & 0x80 != 0 { 0xff } else { 0 };
    if bytes.len() > 8 {
        let (low, high) = bytes.split_at(8);
        let sign_ok = high.iter().all(|&b| b == fill) && (low[7] & 0x80) == (fill & 0x80);
        if !sign_ok {
            return Val::BIGINT;
        }
        return Val::int(i64::from_le_bytes(low.try_into().expect("8 bytes")));
    }
    let mut buf = [fill; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    Val::int(i64::from_le_bytes(buf))
}
