//! Object ids and transaction ids: 8 raw bytes, compared bytewise, printed as 16 hex digits.

use std::fmt;

/// An object id (oid): 8 bytes, ordered as a big-endian unsigned integer.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Oid(pub [u8; 8]);

/// A transaction id (tid), which is also a [`TimeStamp`](crate::timestamp::TimeStamp).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Tid(pub [u8; 8]);

macro_rules! id_impl {
    ($t:ident) => {
        impl $t {
            /// The id as a big-endian integer.
            pub fn as_u64(self) -> u64 {
                u64::from_be_bytes(self.0)
            }
            /// The id of a big-endian integer.
            pub fn from_u64(v: u64) -> Self {
                $t(v.to_be_bytes())
            }
            /// The id of exactly 8 bytes (a reference read from a pickle), `None` for any
            /// other length.
            pub fn from_slice(b: &[u8]) -> Option<Self> {
                <[u8; 8]>::try_from(b).ok().map($t)
            }
            /// Parses 16 hex digits (an optional `0x` prefix is accepted; fewer digits are
            /// zero-padded on the left).
            pub fn from_hex(s: &str) -> Option<Self> {
                let s = s.strip_prefix("0x").unwrap_or(s);
                if s.is_empty() || s.len() > 16 {
                    return None;
                }
                u64::from_str_radix(s, 16).ok().map(Self::from_u64)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:016x}", self.as_u64())
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($t), "({:016x})"), self.as_u64())
            }
        }
    };
}
id_impl!(Oid);
id_impl!(Tid);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let o = Oid::from_u64(0x1234);
        assert_eq!(o.to_string(), "0000000000001234");
        assert_eq!(Oid::from_hex("0x1234"), Some(o));
        assert_eq!(Oid::from_hex("0000000000001234"), Some(o));
        assert_eq!(Oid::from_hex("00000000000012345"), None);
        assert_eq!(Tid::from_hex("zz"), None);
        assert!(Oid::from_u64(1) < Oid::from_u64(256));
        assert_eq!(
            Oid::from_slice(&[0, 0, 0, 0, 0, 0, 1, 2]),
            Some(Oid::from_u64(0x102))
        );
        assert_eq!(Oid::from_slice(&[1, 2]), None);
    }
}
