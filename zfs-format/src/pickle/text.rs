//! Decoders for the text arguments of protocol-0 opcodes and for Python's string codecs,
//! written to accept and reject what CPython 3.11 and zodbpickle's C unpickler do.
//!
//! Python `str` values are kept as "generalized UTF-8": UTF-8 in which the surrogate code
//! points U+D800..U+DFFF may also appear (encoded on three bytes, as Python's
//! `surrogatepass` handler writes them). Rust's `str` cannot hold those, so they stay bytes.

/// An integer parsed from pickle text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PyInt {
    /// Fits in an `i64`.
    Small(i64),
    /// Valid, but outside `i64`.
    Big,
}

/// CPython's `Py_ISSPACE` for bytes.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The argument as C code sees it: everything up to the first NUL byte.
pub(super) fn c_string(s: &[u8]) -> &[u8] {
    match s.iter().position(|&b| b == 0) {
        Some(n) => s.get(..n).unwrap_or(s),
        None => s,
    }
}

/// Why Python's `int()` refused a text argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IntError {
    /// `ValueError`: not an integer literal, or more than 4300 decimal digits.
    Invalid,
    /// `UnicodeDecodeError`: not an integer literal, and the first 200 bytes (which CPython
    /// decodes as UTF-8 to quote them in the `ValueError` message) are not UTF-8.
    NotUtf8,
}

/// Python's `int(s, base)` as `PyLong_FromString` does it, for `base` 0 or 10, on a
/// NUL-truncated C string (leading and trailing whitespace allowed, `_` between digits,
/// `0x`/`0o`/`0b` prefixes in base 0, and at most 4300 decimal digits, Python 3.11's limit).
pub(super) fn python_int(s: &[u8], base: u32) -> Result<PyInt, IntError> {
    let s = c_string(s);
    match parse_int(s, base) {
        Ok(v) => Ok(v),
        Err(Syntax::DigitLimit) => Err(IntError::Invalid),
        Err(Syntax::Invalid) => {
            let quoted = s.get(..s.len().min(200)).unwrap_or(s);
            if std::str::from_utf8(quoted).is_ok() {
                Err(IntError::Invalid)
            } else {
                Err(IntError::NotUtf8)
            }
        }
    }
}

/// How [`parse_int`] failed.
enum Syntax {
    /// Not an integer literal.
    Invalid,
    /// More decimal digits than Python 3.11 converts.
    DigitLimit,
}

/// Skips leading white space and one sign: the index after them, and whether the sign
/// was `-` (as both Python's `int()` and C's `strtol` start).
fn space_and_sign(s: &[u8]) -> (usize, bool) {
    let mut i = 0;
    while s.get(i).is_some_and(|&b| is_space(b)) {
        i += 1;
    }
    match s.get(i) {
        Some(b'+') => (i + 1, false),
        Some(b'-') => (i + 1, true),
        _ => (i, false),
    }
}

/// The parser behind [`python_int`].
fn parse_int(s: &[u8], base: u32) -> Result<PyInt, Syntax> {
    let (mut i, negative) = space_and_sign(s);
    let mut radix = base;
    let mut only_zero = false;
    if base == 0 {
        radix = 10;
        if s.get(i) == Some(&b'0') {
            match s.get(i + 1).map(u8::to_ascii_lowercase) {
                Some(b'x') => radix = 16,
                Some(b'o') => radix = 8,
                Some(b'b') => radix = 2,
                // A C-style octal literal: only zero is accepted.
                _ => only_zero = true,
            }
            if radix != 10 {
                i += 2;
                if s.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
        }
    }
    if s.get(i) == Some(&b'_') {
        return Err(Syntax::Invalid);
    }
    let mut digits = 0usize;
    let mut value: Option<i128> = Some(0);
    let mut prev_underscore = false;
    while let Some(&b) = s.get(i) {
        if b == b'_' {
            if prev_underscore {
                return Err(Syntax::Invalid);
            }
            prev_underscore = true;
            i += 1;
            continue;
        }
        let Some(d) = char::from(b).to_digit(radix) else {
            break;
        };
        prev_underscore = false;
        digits += 1;
        value = value
            .and_then(|v| v.checked_mul(i128::from(radix)))
            .and_then(|v| v.checked_add(i128::from(d)));
        i += 1;
    }
    if radix == 10 && digits > 4300 {
        return Err(Syntax::DigitLimit);
    }
    if digits == 0 || prev_underscore {
        return Err(Syntax::Invalid);
    }
    if only_zero && value != Some(0) {
        return Err(Syntax::Invalid);
    }
    while s.get(i).is_some_and(|&b| is_space(b)) {
        i += 1;
    }
    if i != s.len() {
        return Err(Syntax::Invalid);
    }
    let value = value.map(|v| if negative { -v } else { v });
    Ok(match value.and_then(|v| i64::try_from(v).ok()) {
        Some(v) => PyInt::Small(v),
        None => PyInt::Big,
    })
}

/// glibc's `strtol(s, &end, 0)` on a NUL-truncated C string: the value (`None` on overflow,
/// which sets `errno`) and the index where parsing stopped (0 when no digits were found).
fn c_strtol0(s: &[u8]) -> (Option<i64>, usize) {
    let (mut i, negative) = space_and_sign(s);
    let mut radix = 10;
    if s.get(i) == Some(&b'0') {
        let x = s.get(i + 1).is_some_and(|&b| b | 0x20 == b'x');
        if x && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit) {
            radix = 16;
            i += 2;
        } else {
            radix = 8;
        }
    }
    let start = i;
    let mut value: Option<i128> = Some(0);
    while let Some(d) = s.get(i).and_then(|&b| char::from(b).to_digit(radix)) {
        value = value
            .and_then(|v| v.checked_mul(i128::from(radix)))
            .and_then(|v| v.checked_add(i128::from(d)));
        i += 1;
    }
    if i == start {
        return (Some(0), 0);
    }
    let value = value
        .map(|v| if negative { -v } else { v })
        .and_then(|v| i64::try_from(v).ok());
    (value, i)
}

/// The `INT` opcode's argument (the line with its newline, at least 2 bytes): `strtol` in
/// base 0, falling back to Python's `int(s, 0)`. `"00\n"` and `"01\n"` are booleans.
pub(super) enum IntArg {
    /// A boolean written as `I00`/`I01`.
    Bool(bool),
    /// An integer.
    Int(PyInt),
}

/// Parses the argument of `INT` as zodbpickle does; `None` when Python raises.
pub(super) fn int_arg(line: &[u8]) -> Option<IntArg> {
    let c = c_string(line);
    let (value, end) = c_strtol0(c);
    let stop = c.get(end).copied().unwrap_or(0);
    if let (Some(x), b'\n' | 0) = (value, stop) {
        if line.len() == 3 && (x == 0 || x == 1) {
            return Some(IntArg::Bool(x == 1));
        }
        return Some(IntArg::Int(PyInt::Small(x)));
    }
    python_int(line, 0).ok().map(IntArg::Int)
}

/// The `LONG` opcode's argument (line with newline, at least 2 bytes): a trailing `L` before
/// the newline is dropped, then Python's `int(s, 0)`.
pub(super) fn long_arg(line: &[u8]) -> Result<PyInt, IntError> {
    let n = line.len();
    match line.get(..n.saturating_sub(2)) {
        Some(head) if n >= 2 && line.get(n - 2) == Some(&b'L') => python_int(head, 0),
        _ => python_int(line, 0),
    }
}

/// Why a `FLOAT` argument was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FloatError {
    /// Not a number in Python's syntax (`ValueError`).
    Invalid,
    /// A finite literal that rounds to infinity (`OverflowError`).
    Overflow,
}

/// The `FLOAT` opcode's argument, as `PyOS_string_to_double` with an overflow check: the
/// longest prefix in Python's float syntax (no leading whitespace) is converted, a finite
/// literal that rounds to infinity is an overflow, and then the prefix must be followed by
/// the newline or a NUL byte.
pub(super) fn float_arg(line: &[u8]) -> Result<f64, FloatError> {
    use FloatError::{Invalid, Overflow};
    let c = c_string(line);
    let (len, special) = float_prefix(c);
    if len == 0 {
        return Err(Invalid);
    }
    let text = c.get(..len).ok_or(Invalid)?;
    let t = std::str::from_utf8(text).map_err(|_| Invalid)?;
    let v = if special {
        let negative = t.starts_with('-');
        match (
            t.trim_start_matches(['+', '-']).as_bytes().first(),
            negative,
        ) {
            (Some(b'n' | b'N'), _) => f64::NAN,
            (_, true) => f64::NEG_INFINITY,
            (_, false) => f64::INFINITY,
        }
    } else {
        let v = t.parse::<f64>().map_err(|_| Invalid)?;
        if v.is_infinite() {
            return Err(Overflow);
        }
        v
    };
    match c.get(len) {
        None | Some(b'\n') => Ok(v),
        Some(_) => Err(Invalid),
    }
}

/// The length of the longest prefix of `s` in Python's float syntax, and whether it is an
/// `inf`/`infinity`/`nan` word: `[sign] (digits [. [digits]] | . digits) [e [sign] digits]`.
fn float_prefix(s: &[u8]) -> (usize, bool) {
    let mut i = usize::from(matches!(s.first(), Some(b'+' | b'-')));
    let rest = s.get(i..).unwrap_or_default();
    let word = |w: &[u8]| rest.len() >= w.len() && rest[..w.len()].eq_ignore_ascii_case(w);
    for w in [&b"infinity"[..], b"inf", b"nan"] {
        if word(w) {
            return (i + w.len(), true);
        }
    }
    let int_digits = count_digits(s, &mut i);
    let mut frac_digits = 0;
    if s.get(i) == Some(&b'.') {
        let mut j = i + 1;
        frac_digits = count_digits(s, &mut j);
        if int_digits + frac_digits > 0 {
            i = j;
        }
    }
    if int_digits + frac_digits == 0 {
        return (0, false);
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(s.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if count_digits(s, &mut j) > 0 {
            i = j;
        }
    }
    (i, false)
}

/// Advances `i` over ASCII digits and returns how many there were.
fn count_digits(b: &[u8], i: &mut usize) -> usize {
    let start = *i;
    while b.get(*i).is_some_and(u8::is_ascii_digit) {
        *i += 1;
    }
    *i - start
}

/// The `STRING` opcode's argument (line with newline): strips trailing bytes that compare
/// `<= ' '` as a signed C `char` (so bytes >= 0x80 too), requires matching quotes, then
/// decodes Python's bytes escapes. Returns the raw bytes or, when they contain no
/// backslash, the range of the argument that is the value itself.
pub(super) fn string_arg(line: &[u8]) -> Result<StringArg, &'static str> {
    let mut len = line.len();
    while len > 0 && line.get(len - 1).is_some_and(|&b| (b as i8) <= b' ' as i8) {
        len -= 1;
    }
    let first = line.first().copied();
    let last = line.get(len.wrapping_sub(1)).copied();
    let quoted = len > 1 && first == last && matches!(first, Some(b'"' | b'\''));
    if !quoted {
        return Err("insecure string pickle");
    }
    let inner = line.get(1..len - 1).ok_or("insecure string pickle")?;
    if !inner.contains(&b'\\') {
        return Ok(StringArg::Range(1, len - 1));
    }
    decode_escape(inner).map(StringArg::Owned)
}

/// A decoded `STRING` argument.
pub(super) enum StringArg {
    /// The value is `line[start..end]`.
    Range(usize, usize),
    /// The value after escape decoding.
    Owned(Vec<u8>),
}

/// Python's bytes-literal escape decoding (`PyBytes_DecodeEscape`), strict.
fn decode_escape(s: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&c) = s.get(i) else {
            return Err("trailing backslash");
        };
        i += 1;
        match c {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(c),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b'v' => out.push(0x0b),
            b'a' => out.push(0x07),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match s.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                // CPython stores the value in a char: values above 0o377 wrap.
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let hi = s.get(i).and_then(|&d| char::from(d).to_digit(16));
                let lo = s.get(i + 1).and_then(|&d| char::from(d).to_digit(16));
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => return Err("invalid \\x escape"),
                }
            }
            // An unknown escape keeps its backslash; the character is read normally.
            _ => {
                out.push(b'\\');
                i -= 1;
            }
        }
    }
    Ok(out)
}

/// Python's `raw_unicode_escape` decoding (the `UNICODE` opcode): bytes are Latin-1 code
/// points except `\uXXXX` and `\UXXXXXXXX` after an odd number of backslashes. Returns
/// generalized UTF-8, borrowed when the input is ASCII without escapes.
pub(super) fn raw_unicode_escape(s: &[u8]) -> Result<Option<Vec<u8>>, &'static str> {
    if s.is_ascii() && !s.contains(&b'\\') {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(s.len() + 8);
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b != b'\\' {
            push_code_point(&mut out, u32::from(b));
            i += 1;
            continue;
        }
        let run_start = i;
        while s.get(i) == Some(&b'\\') {
            i += 1;
        }
        let run = i - run_start;
        let escape = match s.get(i) {
            Some(b'u') => Some(4),
            Some(b'U') => Some(8),
            _ => None,
        };
        let Some(count) = escape.filter(|_| run % 2 == 1) else {
            out.resize(out.len() + run, b'\\');
            continue;
        };
        out.resize(out.len() + run - 1, b'\\');
        i += 1;
        let mut cp: u32 = 0;
        for _ in 0..count {
            let d = s
                .get(i)
                .and_then(|&d| char::from(d).to_digit(16))
                .ok_or("truncated \\uXXXX escape")?;
            cp = (cp << 4) | d;
            i += 1;
        }
        if cp > 0x10_ffff {
            return Err("\\Uxxxxxxxx out of range");
        }
        push_code_point(&mut out, cp);
    }
    Ok(Some(out))
}

/// Appends a code point (surrogates included) in generalized UTF-8.
fn push_code_point(out: &mut Vec<u8>, cp: u32) {
    // The casts keep the low bits of values already masked or shifted into range.
    if cp < 0x80 {
        out.push(cp as u8);
    } else if cp < 0x800 {
        out.extend([0xc0 | (cp >> 6) as u8, 0x80 | (cp & 0x3f) as u8]);
    } else if cp < 0x1_0000 {
        out.extend([
            0xe0 | (cp >> 12) as u8,
            0x80 | ((cp >> 6) & 0x3f) as u8,
            0x80 | (cp & 0x3f) as u8,
        ]);
    } else {
        out.extend([
            0xf0 | (cp >> 18) as u8,
            0x80 | ((cp >> 12) & 0x3f) as u8,
            0x80 | ((cp >> 6) & 0x3f) as u8,
            0x80 | (cp & 0x3f) as u8,
        ]);
    }
}

/// Whether `s` is UTF-8 as Python's decoder with `surrogatepass` accepts it: strict UTF-8
/// plus encoded surrogates.
pub(super) fn is_utf8_surrogatepass(mut s: &[u8]) -> bool {
    // Strict UTF-8 is the common case, checked with wide vector instructions.
    if simdutf8::basic::from_utf8(s).is_ok() {
        return true;
    }
    loop {
        match std::str::from_utf8(s) {
            Ok(_) => return true,
            Err(e) => {
                let bad = e.valid_up_to();
                match s.get(bad..bad + 3) {
                    Some([0xed, 0xa0..=0xbf, 0x80..=0xbf]) => {
                        s = s.get(bad + 3..).unwrap_or_default();
                    }
                    _ => return false,
                }
            }
        }
    }
}

/// Decodes generalized UTF-8 to code points; `None` on a malformed sequence.
fn code_points(s: &[u8]) -> impl Iterator<Item = Option<u32>> + Clone + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let &b0 = s.get(i)?;
        let (len, init) = match b0 {
            0x00..=0x7f => (1, u32::from(b0)),
            0xc0..=0xdf => (2, u32::from(b0 & 0x1f)),
            0xe0..=0xef => (3, u32::from(b0 & 0x0f)),
            0xf0..=0xf7 => (4, u32::from(b0 & 0x07)),
            _ => {
                // A byte no sequence starts with ends the text, as a broken sequence does.
                i = s.len();
                return Some(None);
            }
        };
        let mut cp = init;
        for k in 1..len {
            match s.get(i + k) {
                Some(&c) if c & 0xc0 == 0x80 => cp = (cp << 6) | u32::from(c & 0x3f),
                _ => {
                    i = s.len();
                    return Some(None);
                }
            }
        }
        i += len;
        Some(Some(cp))
    })
}

/// `s.encode('latin-1')` of a generalized UTF-8 string; `None` if a code point is above U+00FF.
pub(super) fn latin1(s: &[u8]) -> Option<Vec<u8>> {
    code_points(s)
        .map(|cp| cp.and_then(|c| u8::try_from(c).ok()))
        .collect()
}

/// Generalized UTF-8 as a Rust string, surrogates replaced by U+FFFD.
pub(super) fn lossy(s: &[u8]) -> String {
    match std::str::from_utf8(s) {
        Ok(t) => t.to_owned(),
        Err(_) => code_points(s)
            .map(|cp| cp.and_then(char::from_u32).unwrap_or('\u{fffd}'))
            .collect(),
    }
}

/// Python's `repr()` of a `str` given as generalized UTF-8 (a malformed sequence reads as
/// U+FFFD, a lone surrogate prints as `\udXXX`).
pub(super) fn repr_str(s: &[u8]) -> String {
    crate::repr::code_points_repr(code_points(s).map(|c| c.unwrap_or(0xfffd)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_int_rules() {
        use IntError::{Invalid, NotUtf8};
        assert_eq!(python_int(b"12\n", 10), Ok(PyInt::Small(12)));
        assert_eq!(python_int(b" -1_000 \n", 10), Ok(PyInt::Small(-1000)));
        assert_eq!(python_int(b"1__0\n", 10), Err(Invalid));
        assert_eq!(python_int(b"_1\n", 10), Err(Invalid));
        assert_eq!(python_int(b"1_\n", 10), Err(Invalid));
        assert_eq!(python_int(b"0x1f\n", 0), Ok(PyInt::Small(31)));
        assert_eq!(python_int(b"0x_1f\n", 0), Ok(PyInt::Small(31)));
        assert_eq!(python_int(b"0x1f\n", 10), Err(Invalid));
        assert_eq!(python_int(b"010\n", 0), Err(Invalid));
        assert_eq!(python_int(b"000\n", 0), Ok(PyInt::Small(0)));
        assert_eq!(python_int(b"12\x00junk", 10), Ok(PyInt::Small(12)));
        assert_eq!(python_int(b"99999999999999999999\n", 10), Ok(PyInt::Big));
        assert_eq!(python_int(b"\n", 10), Err(Invalid));
        assert_eq!(python_int(b"\x810\n", 10), Err(NotUtf8));
        assert_eq!(python_int("\u{e9}\n".as_bytes(), 10), Err(Invalid));
        let long = vec![b'1'; 4301];
        assert_eq!(python_int(&long, 10), Err(Invalid));
    }

    #[test]
    fn int_opcode_rules() {
        assert!(matches!(int_arg(b"01\n"), Some(IntArg::Bool(true))));
        assert!(matches!(int_arg(b"00\n"), Some(IntArg::Bool(false))));
        assert!(matches!(
            int_arg(b"1\n"),
            Some(IntArg::Int(PyInt::Small(1)))
        ));
        assert!(matches!(
            int_arg(b"0x10\n"),
            Some(IntArg::Int(PyInt::Small(16)))
        ));
        assert!(matches!(
            int_arg(b"010\n"),
            Some(IntArg::Int(PyInt::Small(8)))
        ));
        assert!(int_arg(b"08\n").is_none());
        assert!(matches!(int_arg(b"\x00x\n"), Some(IntArg::Bool(false))));
        assert!(int_arg(b"x\n").is_none());
        assert!(matches!(
            int_arg(b"99999999999999999999999\n"),
            Some(IntArg::Int(PyInt::Big))
        ));
    }

    #[test]
    fn float_rules() {
        assert_eq!(float_arg(b"1.5\n"), Ok(1.5));
        assert_eq!(float_arg(b"-1e3\n"), Ok(-1000.0));
        assert_eq!(float_arg(b".5\n"), Ok(0.5));
        assert_eq!(float_arg(b"1.\n"), Ok(1.0));
        assert_eq!(float_arg(b" 1.5\n"), Err(FloatError::Invalid));
        assert_eq!(float_arg(b"1e999\n"), Err(FloatError::Overflow));
        assert!(float_arg(b"-inf\n").is_ok_and(f64::is_infinite));
        assert!(float_arg(b"nan\n").is_ok_and(f64::is_nan));
        assert_eq!(float_arg(b"1_0\n"), Err(FloatError::Invalid));
        assert_eq!(float_arg(b"e5\n"), Err(FloatError::Invalid));
        // The overflow is seen on the numeric prefix, before what follows it.
        assert_eq!(float_arg(b"1e999K."), Err(FloatError::Overflow));
        assert_eq!(float_arg(b"1.5K."), Err(FloatError::Invalid));
        assert_eq!(float_arg(b"1e\n"), Err(FloatError::Invalid));
        assert_eq!(float_arg(b"1.5"), Ok(1.5));
        assert_eq!(float_arg(b"-Infinity\n"), Ok(f64::NEG_INFINITY));
        assert_eq!(float_arg(b"infx\n"), Err(FloatError::Invalid));
        assert_eq!(float_arg(b"1.5\x00x"), Ok(1.5));
    }

    #[test]
    fn string_escapes() {
        let Ok(StringArg::Range(1, 4)) = string_arg(b"'abc'\n") else {
            panic!("plain string must borrow");
        };
        let Ok(StringArg::Owned(v)) = string_arg(b"'\\x00\\n\\'\\q\\101'\n") else {
            panic!("escaped string must decode");
        };
        assert_eq!(v, b"\x00\n'\\qA");
        assert!(string_arg(b"'abc\n").is_err());
        assert!(string_arg(b"'\\x0'\n").is_err());
        assert!(string_arg(b"'abc\\'\n").is_err());
        // Bytes >= 0x80 after the closing quote compare below ' ' as signed chars.
        assert!(matches!(
            string_arg(b"'ab'\xff\n"),
            Ok(StringArg::Range(1, 3))
        ));
    }

    #[test]
    fn raw_unicode_escape_rules() {
        assert_eq!(raw_unicode_escape(b"abc"), Ok(None));
        assert_eq!(
            raw_unicode_escape(b"\\u00e9"),
            Ok(Some("é".as_bytes().to_vec()))
        );
        assert_eq!(
            raw_unicode_escape(b"\\\\u00e9"),
            Ok(Some(b"\\\\u00e9".to_vec()))
        );
        assert_eq!(
            raw_unicode_escape(b"\xe9"),
            Ok(Some("é".as_bytes().to_vec()))
        );
        assert!(raw_unicode_escape(b"\\u12").is_err());
        assert!(raw_unicode_escape(b"\\U00110000").is_err());
        assert_eq!(
            raw_unicode_escape(b"\\ud800"),
            Ok(Some(vec![0xed, 0xa0, 0x80]))
        );
    }

    #[test]
    fn utf8_and_latin1() {
        assert!(is_utf8_surrogatepass("é".as_bytes()));
        assert!(is_utf8_surrogatepass(b"a\xed\xa0\x80b"));
        assert!(!is_utf8_surrogatepass(b"\xff"));
        assert!(!is_utf8_surrogatepass(b"\xc0\x80"));
        assert_eq!(latin1("é".as_bytes()), Some(vec![0xe9]));
        assert_eq!(latin1("€".as_bytes()), None);
    }

    #[test]
    fn reprs_of_generalized_utf8() {
        assert_eq!(repr_str(b"abc"), "'abc'");
        assert_eq!(repr_str("é\u{1}".as_bytes()), "'é\\x01'");
        assert_eq!(repr_str(b"a\xed\xa0\x80"), "'a\\ud800'");
        assert_eq!(repr_str(b"a\xff"), "'a\u{fffd}'");
    }
}
