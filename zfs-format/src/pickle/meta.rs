//! Class names of records, as ZODB's `get_pickle_metadata` gives them (fsdump, fsrefs,
//! fsoids, space and netspace print `"module.name"` from it).
//!
//! ZODB's rules: skip 2 bytes if byte 0 is `0x80` (`PROTO`); if the rest starts with `c` or
//! `(c`, split it on the first two newlines and decode the module (minus the opcode) and the
//! class as UTF-8. Otherwise unpickle the class pickle for real: a tuple whose element 0 is
//! a tuple gives `(module, name)` from that element, another tuple is itself `(module,
//! name)`, anything else gives `(repr(value), "")`, and an unpickling error gives
//! `("", "")`. The fast path and the unpacking of tuples run outside ZODB's `try`, so some
//! inputs make `get_pickle_metadata` (and fsdump) raise: [`ClassSource::ZodbRaises`].
//!
//! Differences we accept, all outside what ZODB writes: the real unpickling imports the
//! modules named by `GLOBAL`s and runs `REDUCE`-like opcodes; we assume they succeed and
//! treat their results as opaque, and a result we cannot print as Python would sets
//! [`ClassName::exact`] to `false`.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::fmt;

use super::scan::{Flavor, Machine};
use super::value::{Val, V};
use super::{text, StringMode};

/// How a class name was obtained (which path of ZODB's `get_pickle_metadata`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClassSource {
    /// The class pickle starts with `GLOBAL` (possibly after `PROTO` and `MARK`): the names
    /// are its two text lines. Every record written by ZODB for an ordinary class.
    Global,
    /// The class pickle unpickles to a tuple: `((module, name), args)`, written by ZODB for
    /// instances of persistent classes, or `(module, name)`.
    Tuple,
    /// The class pickle unpickles to something else: `module` is its `repr()`, `name` empty.
    Repr,
    /// Unpickling fails: ZODB gives `("", "")`, printed as `"."`.
    Unreadable,
    /// `get_pickle_metadata` itself raises (empty data, fewer than two newlines or invalid
    /// UTF-8 in the `GLOBAL` lines, a tuple that does not unpack into two); fsdump would
    /// crash. The names are our best effort (lossy UTF-8 of the lines, or empty).
    ZodbRaises,
}

/// A record's class as ZODB names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClassName<'a> {
    /// The module (or the `repr()` of an unknown class pickle).
    pub module: Cow<'a, str>,
    /// The class name.
    pub name: Cow<'a, str>,
    /// Which path produced it.
    pub source: ClassSource,
    /// `false` when Python's output cannot be known without running Python (the `str()` of
    /// an imported global or of an object built by code, a huge integer, a long container).
    pub exact: bool,
}

impl fmt::Display for ClassName<'_> {
    /// `module.name`, as fsdump prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.module, self.name)
    }
}

impl<'a> ClassName<'a> {
    /// The `(module, name)` pair, as `get_pickle_metadata` returns it.
    pub fn into_parts(self) -> (Cow<'a, str>, Cow<'a, str>) {
        (self.module, self.name)
    }
}

impl ClassName<'_> {
    /// A name with no borrowed parts.
    fn owned(module: String, name: String, source: ClassSource, exact: bool) -> ClassName<'static> {
        ClassName {
            module: Cow::Owned(module),
            name: Cow::Owned(name),
            source,
            exact,
        }
    }
}

/// The class of a record's payload, as ZODB's `get_pickle_metadata(data)` gives it.
///
/// `mode` decides how Python 2 strings are read when the class pickle has to be unpickled,
/// and how the `GLOBAL` lines are decoded: [`StringMode::Ascii`] is Python 3 ZODB (strict
/// ASCII, UTF-8 lines: invalid UTF-8 makes ZODB raise); [`StringMode::Bytes`] is Python 2
/// ZODB (strings are bytes, never an error; shown here as lossy UTF-8).
pub fn class_name(data: &[u8], mode: StringMode) -> ClassName<'_> {
    let raises = || ClassName::owned(String::new(), String::new(), ClassSource::ZodbRaises, true);
    let Some(&first) = data.first() else {
        return raises();
    };
    let d = if first == 0x80 {
        data.get(2..).unwrap_or_default()
    } else {
        data
    };
    let prefix = if d.starts_with(b"(c") {
        2
    } else if d.starts_with(b"c") {
        1
    } else {
        0
    };
    if prefix > 0 {
        return from_global_lines(d, prefix, mode);
    }
    let mut machine = Machine::default();
    let mut pos = 0;
    match machine.run(d, &mut pos, mode, Flavor::Load) {
        Ok(v) => from_value(&machine, d, v, mode),
        Err(_) => ClassName::owned(String::new(), String::new(), ClassSource::Unreadable, true),
    }
}

/// The fast path: the two lines after a leading `c` or `(c`.
fn from_global_lines(d: &[u8], prefix: usize, mode: StringMode) -> ClassName<'_> {
    let mut lines = d.splitn(3, |&b| b == b'\n');
    let (Some(module), Some(name), Some(_)) = (lines.next(), lines.next(), lines.next()) else {
        return ClassName::owned(String::new(), String::new(), ClassSource::ZodbRaises, true);
    };
    let module = module.get(prefix..).unwrap_or_default();
    match (std::str::from_utf8(module), std::str::from_utf8(name)) {
        (Ok(m), Ok(n)) => ClassName {
            module: Cow::Borrowed(m),
            name: Cow::Borrowed(n),
            source: ClassSource::Global,
            exact: true,
        },
        _ => {
            let source = match mode {
                StringMode::Ascii => ClassSource::ZodbRaises,
                StringMode::Bytes => ClassSource::Global,
            };
            let m = String::from_utf8_lossy(module).into_owned();
            let n = String::from_utf8_lossy(name).into_owned();
            ClassName::owned(m, n, source, mode == StringMode::Ascii)
        }
    }
}

/// The names from an unpickled class pickle.
fn from_value(m: &Machine, d: &[u8], v: Val, mode: StringMode) -> ClassName<'static> {
    let r = Render {
        m,
        d,
        mode,
        open: RefCell::new(Vec::new()),
        budget: Cell::new(MAX_REPR_ITEMS),
    };
    let pair = |t: usize, source| {
        let hdr = m.tuples[t];
        if hdr.len != 2 {
            return ClassName::owned(String::new(), String::new(), ClassSource::ZodbRaises, true);
        }
        let (module, e1) = r.str(hdr.head[0]);
        let (name, e2) = r.str(hdr.head[1]);
        ClassName::owned(module, name, source, e1 && e2)
    };
    match v.get() {
        V::Tuple(t) => match m.tuples[t].head[0].get() {
            V::Tuple(inner) => pair(inner, ClassSource::Tuple),
            _ => pair(t, ClassSource::Tuple),
        },
        _ => {
            let (repr, exact) = r.repr(v, 0);
            ClassName::owned(repr, String::new(), ClassSource::Repr, exact)
        }
    }
}

/// Nesting beyond which a container is shown as `...` (Python itself gives up with
/// `RecursionError` near 1000 levels; we stay far from our own stack's limit).
const MAX_REPR_DEPTH: usize = 100;

/// Values rendered in one `repr` beyond which the rest is shown as `...`: a list holding
/// the same list twice, nested, doubles the output at each level.
const MAX_REPR_ITEMS: usize = 10_000;

/// A container being rendered: lists and tuples are numbered apart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    List(usize),
    Tuple(usize),
}

/// Python's `str()`/`repr()` of machine values.
struct Render<'m> {
    m: &'m Machine,
    d: &'m [u8],
    mode: StringMode,
    /// The containers on the path from the value being rendered to the root: one met again
    /// is a cycle, which Python shows as `[...]` or `(...)`.
    open: RefCell<Vec<Open>>,
    /// Values that may still be rendered.
    budget: Cell<usize>,
}

impl Render<'_> {
    /// The bytes of string `i`.
    fn bytes(&self, i: usize) -> &[u8] {
        self.m.src_bytes(self.d, self.m.strs[i])
    }

    /// `str(v)` and whether it is exactly Python's.
    fn str(&self, v: Val) -> (String, bool) {
        match v.get() {
            V::Text(i) => (text::lossy(self.bytes(i)), true),
            // Python 2's str() of a byte string is the string itself.
            V::Bytes(i) if self.mode == StringMode::Bytes => {
                (String::from_utf8_lossy(self.bytes(i)).into_owned(), true)
            }
            _ => self.repr(v, 0),
        }
    }

    /// `repr(v)` and whether it is exactly Python's.
    fn repr(&self, v: Val, depth: usize) -> (String, bool) {
        if depth > MAX_REPR_DEPTH || self.budget.get() == 0 {
            return ("...".into(), false);
        }
        self.budget.set(self.budget.get() - 1);
        match v.get() {
            V::None => ("None".into(), true),
            V::Bool(b) => (if b { "True" } else { "False" }.into(), true),
            V::Int(i) => (i.to_string(), true),
            V::Float(f) => (float_repr(self.m.floats[f]), true),
            V::Text(i) => (text::repr_str(self.bytes(i)), true),
            V::Bytes(i) if self.mode == StringMode::Bytes => {
                // Python 2's repr of a byte string has no b prefix.
                let r = crate::repr::bytes_repr(self.bytes(i));
                (r.get(1..).unwrap_or_default().to_owned(), true)
            }
            V::Bytes(i) => (crate::repr::bytes_repr(self.bytes(i)), true),
            V::Tuple(t) => {
                if self.open.borrow().contains(&Open::Tuple(t)) {
                    return ("(...)".into(), true);
                }
                let hdr = self.m.tuples[t];
                self.open.borrow_mut().push(Open::Tuple(t));
                let (items, exact) = self.items(&hdr.head, hdr.len, depth);
                self.open.borrow_mut().pop();
                let body = if hdr.len == 1 {
                    format!("({items},)")
                } else {
                    format!("({items})")
                };
                (body, exact)
            }
            V::List(l) => {
                if self.open.borrow().contains(&Open::List(l)) {
                    return ("[...]".into(), true);
                }
                let hdr = self.m.lists[l];
                self.open.borrow_mut().push(Open::List(l));
                let (items, exact) = self.items(&hdr.head, hdr.len, depth);
                self.open.borrow_mut().pop();
                (format!("[{items}]"), exact)
            }
            V::Global(at) => {
                // str() of an imported class; a function or other object prints differently.
                let mut lines = self
                    .d
                    .get(at + 1..)
                    .unwrap_or_default()
                    .split(|&b| b == b'\n');
                let module = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
                let name = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
                (format!("<class '{module}.{name}'>"), false)
            }
            V::Dict => ("{...}".into(), false),
            V::BigInt | V::Opaque | V::Unset => ("...".into(), false),
        }
    }

    /// Comma-separated reprs of the kept items; inexact when items were not kept.
    fn items(&self, head: &[Val], len: usize, depth: usize) -> (String, bool) {
        let mut exact = len <= head.len();
        let mut parts = Vec::with_capacity(head.len());
        for &v in head.iter().take(len) {
            let (s, e) = self.repr(v, depth + 1);
            exact &= e;
            parts.push(s);
        }
        if len > head.len() {
            parts.push("...".into());
        }
        (parts.join(", "), exact)
    }
}

/// Python's `repr(float)`: the shortest round-trip digits, positional for decimal exponents
/// from -4 to 15, scientific (`1e+16`, `1.5e-05`) otherwise.
fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf" } else { "inf" }.into();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e-7".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let n = digits.len() as i32;
    if (-4..16).contains(&exp) {
        let decpt = exp + 1;
        let body = if decpt <= 0 {
            format!("0.{}{digits}", "0".repeat((-decpt) as usize))
        } else if decpt >= n {
            format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
        } else {
            let (a, b) = digits.split_at(decpt as usize);
            format!("{a}.{b}")
        };
        format!("{sign}{body}")
    } else {
        let (a, b) = digits.split_at(1);
        let frac = if b.is_empty() {
            String::new()
        } else {
            format!(".{b}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{a}{frac}e{esign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_reprs_match_python() {
        // Values from Python 3.11's repr().
        for (f, want) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.5, "1.5"),
            (100.0, "100.0"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456789012345.6, "123456789012345.6"),
            (1e15, "1000000000000000.0"),
            (0.1, "0.1"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
        ] {
            assert_eq!(float_repr(f), want, "{f:e}");
        }
    }
}
