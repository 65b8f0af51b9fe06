//! Python's `repr` of `bytes` and `str`, as Python 3 prints them: the one home of that rule
//! for every crate (fsdump's and fstail's lines, class-name reprs of pickled values, error
//! texts that must read as Python repozo's).
//!
//! Both quote alike: single quotes unless the text holds a `'` and no `"`; the backslash,
//! `\t`, `\n`, `\r` and the chosen quote are escaped. What else is escaped differs: in
//! `bytes` every byte outside printable ASCII becomes `\xNN`; in `str` every character
//! Python does not consider printable becomes `\xNN`, `\uNNNN` or `\UNNNNNNNN`.

use std::fmt::Write as _;

/// `repr(b)` of a Python `bytes` value: `b'...'`.
pub fn bytes_repr(b: &[u8]) -> String {
    let q = quote_for(b.contains(&b'\''), b.contains(&b'"'));
    let mut s = String::with_capacity(b.len() + 3);
    s.push('b');
    s.push(q);
    for &c in b {
        match c {
            0x20..=0x7e => push_printable(&mut s, char::from(c), q),
            c => push_escape(&mut s, char::from(c), q, u32::from(c)),
        }
    }
    s.push(q);
    s
}

/// `repr(s)` of a Python `str`.
pub fn str_repr(s: &str) -> String {
    code_points_repr(s.chars().map(u32::from))
}

/// `repr(s)` of a Python `str` whose characters are the Latin-1 decoding of `b` (each
/// byte one character, U+0000 to U+00FF), as for a transaction's status byte.
pub fn str_repr_latin1(b: &[u8]) -> String {
    code_points_repr(b.iter().map(|&c| u32::from(c)))
}

/// `repr(s)` of a Python `str` given as code points; lone surrogates (which a pickle's
/// generalized UTF-8 may hold) print as `\udXXX`, as Python prints them.
pub fn code_points_repr(cps: impl IntoIterator<Item = u32> + Clone) -> String {
    let (mut single, mut double) = (false, false);
    for cp in cps.clone() {
        single |= cp == u32::from(b'\'');
        double |= cp == u32::from(b'"');
    }
    let q = quote_for(single, double);
    let mut s = String::new();
    s.push(q);
    for cp in cps {
        match char::from_u32(cp) {
            Some(c) if is_printable(c) => push_printable(&mut s, c, q),
            Some(c) => push_escape(&mut s, c, q, cp),
            None => push_escape(&mut s, char::REPLACEMENT_CHARACTER, q, cp),
        }
    }
    s.push(q);
    s
}

/// The quote Python chooses: `"` only for a text with a `'` and no `"`.
fn quote_for(has_single: bool, has_double: bool) -> char {
    if has_single && !has_double {
        '"'
    } else {
        '\''
    }
}

/// A printable character: itself, or backslash-escaped when it is `\` or the quote.
fn push_printable(s: &mut String, c: char, q: char) {
    if c == '\\' || c == q {
        s.push('\\');
    }
    s.push(c);
}

/// A character Python escapes: the short escapes first, then by the size of its code.
fn push_escape(s: &mut String, c: char, q: char, cp: u32) {
    match c {
        '\t' => s.push_str("\\t"),
        '\n' => s.push_str("\\n"),
        '\r' => s.push_str("\\r"),
        _ if c == q || c == '\\' => push_printable(s, c, q),
        _ => {
            let _ = match cp {
                0..=0xff => write!(s, "\\x{cp:02x}"),
                0x100..=0xffff => write!(s, "\\u{cp:04x}"),
                _ => write!(s, "\\U{cp:08x}"),
            };
        }
    }
}

/// Python's `str.isprintable` for one character, closely: ASCII from space to `~`, and
/// non-ASCII characters other than controls, separators (space excepted), private use,
/// soft hyphen and the common format characters.
fn is_printable(c: char) -> bool {
    if c.is_ascii() {
        return matches!(c, ' '..='~');
    }
    let cp = u32::from(c);
    !c.is_control()
        && !c.is_whitespace()
        && !matches!(cp, 0xad | 0xe000..=0xf8ff | 0xf_0000..=0x10_ffff | 0x200b..=0x200f | 0xfeff)
}

/// ZODB's `oid_repr` and `tid_repr` of an id read as a big-endian integer: `0x` and its hex
/// digits without leading zeros, one `0` added to make their count even (`0x00` for 0).
pub fn id_repr(v: u64) -> String {
    let mut s = format!("{v:x}");
    if s.len() % 2 == 1 {
        s.insert(0, '0');
    }
    format!("0x{s}")
}

/// Escapes arbitrary bytes for an error message (`"FS3\x00"`); not a Python repr.
pub fn escape_bytes(b: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in b {
        match c {
            0x20..=0x7e if c != b'"' && c != b'\\' => s.push(char::from(c)),
            c => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn python_bytes_repr() {
        // Values printed by CPython 3.11 repr().
        assert_eq!(bytes_repr(b""), "b''");
        assert_eq!(bytes_repr(b"/ tester"), "b'/ tester'");
        assert_eq!(bytes_repr(b"it's"), "b\"it's\"");
        assert_eq!(bytes_repr(b"it's \"x\""), "b'it\\'s \"x\"'");
        assert_eq!(
            bytes_repr(b"a\nb\tc\\\x00\x7f\xff"),
            "b'a\\nb\\tc\\\\\\x00\\x7f\\xff'"
        );
        assert_eq!(bytes_repr(b"a\x00\xff'"), "b\"a\\x00\\xff'\"");
        assert_eq!(bytes_repr(b"\x1f\x8b"), "b'\\x1f\\x8b'");
        assert_eq!(bytes_repr(b"\r"), "b'\\r'");
    }

    #[test]
    fn zodb_id_repr() {
        assert_eq!(id_repr(0), "0x00");
        assert_eq!(id_repr(7), "0x07");
        assert_eq!(id_repr(0x100), "0x0100");
        assert_eq!(id_repr(0x3f58e007bbbbbbb), "0x03f58e007bbbbbbb");
        assert_eq!(id_repr(u64::MAX), "0xffffffffffffffff");
    }

    #[test]
    fn python_str_repr() {
        // Values printed by CPython 3.11 repr().
        assert_eq!(str_repr("abc"), "'abc'");
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("a'\""), "'a\\'\"'");
        assert_eq!(str_repr("é\u{1}"), "'é\\x01'");
        assert_eq!(str_repr("/nope/Data.fs"), "'/nope/Data.fs'");
        assert_eq!(str_repr("tab\there\\"), "'tab\\there\\\\'");
        assert_eq!(str_repr("\u{7f}\u{85}\u{a0}"), "'\\x7f\\x85\\xa0'");
        assert_eq!(str_repr("\u{2028}\u{e000}"), "'\\u2028\\ue000'");
        assert_eq!(str_repr("\u{f0000}"), "'\\U000f0000'");
        assert_eq!(str_repr("€ 日本"), "'€ 日本'");
        assert_eq!(code_points_repr([0x61, 0xd800]), "'a\\ud800'");
    }

    #[test]
    fn python_str_repr_of_latin1_bytes() {
        assert_eq!(str_repr_latin1(b" "), "' '");
        assert_eq!(str_repr_latin1(b"'"), "\"'\"");
        assert_eq!(str_repr_latin1(b"\x00"), "'\\x00'");
        assert_eq!(str_repr_latin1(b"\xe9"), "'\u{e9}'");
        assert_eq!(str_repr_latin1(b"\xa0"), "'\\xa0'");
        assert_eq!(str_repr_latin1(b"\xad"), "'\\xad'");
    }

    proptest! {
        #[test]
        fn ascii_text_reprs_alike_as_bytes_and_str(b in proptest::collection::vec(0u8..0x80, 0..40)) {
            let text = std::str::from_utf8(&b).expect("ASCII");
            let br = bytes_repr(&b);
            prop_assert_eq!(&br[1..], str_repr(text));
            prop_assert_eq!(str_repr_latin1(&b), str_repr(text));
        }

        #[test]
        fn bytes_reprs_are_printable_ascii_and_quoted(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            let r = bytes_repr(&b);
            prop_assert!(r.bytes().all(|c| (0x20..0x7f).contains(&c)));
            let q = r.as_bytes()[1];
            prop_assert!(q == b'\'' || q == b'"');
            prop_assert_eq!(r.as_bytes()[r.len() - 1], q);
        }
    }
}
