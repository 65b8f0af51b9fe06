//! Bounds-checked big-endian readers over untrusted bytes.
//!
//! Every integer in a FileStorage file is unsigned big-endian. These helpers return `None`
//! instead of panicking when the slice is too short (or a position does not fit in
//! `usize`), so callers turn a short read into a typed error that names the offset. Every
//! crate of the workspace reads file integers through them.

/// Reads a big-endian `u64` at `at`, or `None` if fewer than 8 bytes remain.
#[inline]
pub fn be_u64(data: &[u8], at: usize) -> Option<u64> {
    let end = at.checked_add(8)?;
    let b: [u8; 8] = data.get(at..end)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// Reads a big-endian `u16` at `at`, or `None` if fewer than 2 bytes remain.
#[inline]
pub fn be_u16(data: &[u8], at: usize) -> Option<u16> {
    let end = at.checked_add(2)?;
    let b: [u8; 2] = data.get(at..end)?.try_into().ok()?;
    Some(u16::from_be_bytes(b))
}

/// Reads 8 raw bytes at `at`, or `None` if fewer remain.
#[inline]
pub fn array8(data: &[u8], at: usize) -> Option<[u8; 8]> {
    let end = at.checked_add(8)?;
    data.get(at..end)?.try_into().ok()
}

/// Converts a file position to `usize`, or `None` on a 32-bit overflow.
#[inline]
pub fn to_usize(pos: u64) -> Option<usize> {
    usize::try_from(pos).ok()
}

/// Reads a big-endian `u64` at the file position `pos`, or `None` if fewer than 8 bytes
/// remain there.
#[inline]
pub fn be_u64_at(data: &[u8], pos: u64) -> Option<u64> {
    be_u64(data, to_usize(pos)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_reads_are_none() {
        let d = [0u8, 0, 0, 0, 0, 0, 1, 2];
        assert_eq!(be_u64(&d, 0), Some(258));
        assert_eq!(be_u64(&d, 1), None);
        assert_eq!(be_u16(&d, 6), Some(258));
        assert_eq!(be_u16(&d, 7), None);
        assert_eq!(be_u64(&d, usize::MAX), None);
        assert_eq!(array8(&d, 0), Some(d));
        assert_eq!(array8(&d, 1), None);
        assert_eq!(be_u64_at(&d, 0), Some(258));
        assert_eq!(be_u64_at(&d, 1), None);
        assert_eq!(be_u64_at(&d, u64::MAX), None);
    }

    proptest::proptest! {
        /// Whatever the slice and position, a read is the big-endian value of the 8 bytes
        /// there, or `None` exactly when they are not all in the slice.
        #[test]
        fn reads_agree_with_slicing(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
                                    at in 0usize..32) {
            let want = data.get(at..at + 8).map(|b| u64::from_be_bytes(b.try_into().expect("8")));
            proptest::prop_assert_eq!(be_u64(&data, at), want);
            proptest::prop_assert_eq!(be_u64_at(&data, at as u64), want);
            let want16 = data.get(at..at + 2).map(|b| u16::from_be_bytes(b.try_into().expect("2")));
            proptest::prop_assert_eq!(be_u16(&data, at), want16);
        }
    }
}
