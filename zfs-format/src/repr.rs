//! Python-style `repr` of bytes and strings, as ZODB's scripts print them.

use std::fmt::Write as _;

/// `repr(b)` of a Python `bytes` value: `b'...'`, quotes chosen as Python chooses them.
pub fn bytes_repr(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() + 3);
    s.push('b');
    quote_into(&mut s, b);
    s
}

/// `repr(s)` of a Python `str` made only of the given ASCII-range bytes (e.g. a status byte).
///
/// Bytes at or above 0x80 are printed as the Latin-1 characters Python would show.
pub fn str_repr_latin1(b: &[u8]) -> String {
    let has_single = b.contains(&b'\'');
    let has_double = b.contains(&b'"');
    let q = if has_single && !has_double { '"' } else { '\'' };
    let mut s = String::new();
    s.push(q);
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            c if char::from(c) == q => {
                s.push('\\');
                s.push(q);
            }
            0x20..=0x7e => s.push(char::from(c)),
            0xa1..=0xff if c != 0xad => s.push(char::from(c)),
            c => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push(q);
    s
}

fn quote_into(s: &mut String, b: &[u8]) {
    let has_single = b.contains(&b'\'');
    let has_double = b.contains(&b'"');
    let q = if has_single && !has_double {
        b'"'
    } else {
        b'\''
    };
    s.push(char::from(q));
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            c if c == q => {
                s.push('\\');
                s.push(char::from(q));
            }
            0x20..=0x7e => s.push(char::from(c)),
            c => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push(char::from(q));
}

/// Escapes arbitrary bytes for an error message (`"FS3\x00"`).
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
        assert_eq!(str_repr_latin1(b" "), "' '");
        assert_eq!(str_repr_latin1(b"'"), "\"'\"");
        assert_eq!(str_repr_latin1(b"\x00"), "'\\x00'");
        assert_eq!(str_repr_latin1(b"\xe9"), "'\u{e9}'");
        assert_eq!(str_repr_latin1(b"\xa0"), "'\\xa0'");
    }
}
