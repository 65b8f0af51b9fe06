//! Transformed records: zc.zlibstorage's `.z` + zlib stream, and the `.h` + hex encoding of
//! ZODB's test-only HexStorage. A plain pickle never starts with `.` (a `STOP` on an empty
//! stack), so the prefixes cannot be mistaken for pickle data.

use std::borrow::Cow;

use flate2::{Decompress, FlushDecompress, Status};

use super::error::{PickleError, PickleErrorKind as K};

/// Default cap on a decompressed record: 1 GiB. ZODB records are far smaller; the cap stops
/// a crafted stream (zlib expands up to ~1000:1) from exhausting memory.
pub const DEFAULT_MAX_UNTRANSFORMED: usize = 1 << 30;

/// Whether a payload is transformed (`.z` or `.h` prefix).
pub fn is_transformed(data: &[u8]) -> bool {
    data.starts_with(b".z") || data.starts_with(b".h")
}

/// The pickle inside a record payload: `.z` records decompressed, `.h` records hex-decoded,
/// anything else borrowed unchanged. Output is capped at [`DEFAULT_MAX_UNTRANSFORMED`].
///
/// As zc.zlibstorage, bytes after the end of the zlib stream are ignored, and a stream that
/// decompresses to nothing yields the payload unchanged (`decompress(d) or d`).
pub fn untransform(data: &[u8]) -> Result<Cow<'_, [u8]>, PickleError> {
    untransform_with_limit(data, DEFAULT_MAX_UNTRANSFORMED)
}

/// [`untransform`] with an explicit cap on the output size, in bytes.
pub fn untransform_with_limit(data: &[u8], limit: usize) -> Result<Cow<'_, [u8]>, PickleError> {
    if let Some(stream) = data.strip_prefix(b".z") {
        let out = inflate(stream, limit)?;
        return Ok(if out.is_empty() {
            Cow::Borrowed(data)
        } else {
            Cow::Owned(out)
        });
    }
    if let Some(hex) = data.strip_prefix(b".h") {
        return unhex(hex, limit).map(Cow::Owned);
    }
    Ok(Cow::Borrowed(data))
}

/// Inflates a zlib stream (header and Adler-32 checked), refusing output beyond `limit`.
fn inflate(stream: &[u8], limit: usize) -> Result<Vec<u8>, PickleError> {
    let zerr = |msg: String| PickleError::new(2, K::Zlib(msg));
    let too_large = || PickleError::new(0, K::TooLarge { limit });
    // One byte of room beyond the limit tells "exactly the limit" from "more".
    let cap = limit.saturating_add(1);
    let mut z = Decompress::new(true);
    let mut out: Vec<u8> = Vec::with_capacity(stream.len().saturating_mul(4).clamp(64, cap));
    loop {
        if out.len() == out.capacity() {
            if out.len() >= cap {
                return Err(too_large());
            }
            out.reserve_exact(out.capacity().max(64).min(cap - out.len()));
        }
        let consumed = usize::try_from(z.total_in()).map_err(|_| zerr("input too large".into()))?;
        let input = stream.get(consumed..).unwrap_or_default();
        let before = out.len();
        let status = z
            .decompress_vec(input, &mut out, FlushDecompress::None)
            .map_err(|e| zerr(e.to_string()))?;
        if out.len() > limit {
            return Err(too_large());
        }
        if status == Status::StreamEnd {
            return Ok(out);
        }
        let took_input = usize::try_from(z.total_in()).map_or(true, |t| t > consumed);
        if out.len() == before && !took_input && out.len() < out.capacity() {
            return Err(zerr("incomplete or truncated stream".into()));
        }
    }
}

/// `binascii.unhexlify`: an even number of hex digits, either case.
fn unhex(hex: &[u8], limit: usize) -> Result<Vec<u8>, PickleError> {
    if !hex.len().is_multiple_of(2) {
        return Err(PickleError::new(2, K::BadHex));
    }
    if hex.len() / 2 > limit {
        return Err(PickleError::new(0, K::TooLarge { limit }));
    }
    hex.chunks_exact(2)
        .enumerate()
        .map(|(i, pair)| {
            let digit = |b: u8| char::from(b).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
                _ => Err(PickleError::new(2 + 2 * i, K::BadHex)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("write to a Vec");
        e.finish().expect("finish to a Vec")
    }

    #[test]
    fn plain_data_is_borrowed() {
        let d = b"\x80\x03cfoo\nBar\nq\x00.";
        assert!(matches!(untransform(d), Ok(Cow::Borrowed(x)) if x == d));
    }

    #[test]
    fn zlib_round_trip_and_trailing_bytes() {
        let payload = b"\x80\x03}q\x00.".repeat(100);
        let mut rec = b".z".to_vec();
        rec.extend(zlib(&payload));
        assert_eq!(
            untransform(&rec).expect("valid stream").as_ref(),
            payload.as_slice()
        );
        rec.extend(b"junk");
        assert_eq!(
            untransform(&rec).expect("trailing bytes ignored").as_ref(),
            payload.as_slice()
        );
    }

    #[test]
    fn zlib_errors() {
        let payload = b"hello world".repeat(10);
        let mut rec = b".z".to_vec();
        rec.extend(zlib(&payload));
        // Truncated (no Adler-32), corrupted checksum, not zlib at all.
        let truncated = &rec[..rec.len() - 4];
        assert!(matches!(
            untransform(truncated),
            Err(PickleError {
                kind: K::Zlib(_),
                ..
            })
        ));
        let mut bad_sum = rec.clone();
        *bad_sum.last_mut().expect("non-empty") ^= 1;
        assert!(matches!(
            untransform(&bad_sum),
            Err(PickleError {
                kind: K::Zlib(_),
                ..
            })
        ));
        assert!(matches!(
            untransform(b".zxyz"),
            Err(PickleError {
                kind: K::Zlib(_),
                ..
            })
        ));
        assert!(matches!(
            untransform(b".z"),
            Err(PickleError {
                kind: K::Zlib(_),
                ..
            })
        ));
    }

    #[test]
    fn zlib_limit() {
        let payload = vec![0u8; 1 << 20];
        let mut rec = b".z".to_vec();
        rec.extend(zlib(&payload));
        assert!(rec.len() < 2000, "a bomb-like ratio");
        let err = untransform_with_limit(&rec, 1000).expect_err("over the limit");
        assert_eq!(err.kind, K::TooLarge { limit: 1000 });
        assert_eq!(
            untransform_with_limit(&rec, 1 << 20)
                .expect("at the limit")
                .len(),
            1 << 20
        );
    }

    #[test]
    fn empty_stream_gives_the_record_back() {
        let mut rec = b".z".to_vec();
        rec.extend(zlib(b""));
        assert_eq!(untransform(&rec).expect("valid").as_ref(), rec.as_slice());
    }

    #[test]
    fn hex_records() {
        assert_eq!(untransform(b".h4e2e").expect("hex").as_ref(), b"N.");
        assert_eq!(untransform(b".h4E2E").expect("hex").as_ref(), b"N.");
        assert_eq!(untransform(b".h4e2").expect_err("odd").kind, K::BadHex);
        assert_eq!(untransform(b".h4g").expect_err("odd").kind, K::BadHex);
        assert_eq!(untransform(b".hzz").expect_err("digit").kind, K::BadHex);
    }
}
