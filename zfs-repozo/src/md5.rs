//! MD5 of byte streams: OpenSSL's when the `openssl` feature is on (the fastest here), else
//! RustCrypto's `md-5`. Both states can be cloned, which gives the digest of a prefix for free.

/// A running MD5 computation.
#[derive(Clone)]
pub struct Md5 {
    #[cfg(feature = "openssl")]
    inner: openssl::hash::Hasher,
    #[cfg(not(feature = "openssl"))]
    inner: md5::Md5,
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

impl Md5 {
    /// A hasher that has seen nothing.
    pub fn new() -> Self {
        #[cfg(feature = "openssl")]
        {
            let inner = openssl::hash::Hasher::new(openssl::hash::MessageDigest::md5())
                .expect("OpenSSL always provides MD5");
            Md5 { inner }
        }
        #[cfg(not(feature = "openssl"))]
        {
            use md5::Digest as _;
            Md5 {
                inner: md5::Md5::new(),
            }
        }
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        #[cfg(feature = "openssl")]
        self.inner.update(data).expect("MD5 update does not fail");
        #[cfg(not(feature = "openssl"))]
        {
            use md5::Digest as _;
            self.inner.update(data);
        }
    }

    /// The digest as 32 lowercase hex digits, as Python's `hexdigest()`.
    pub fn hex(mut self) -> String {
        #[cfg(feature = "openssl")]
        let d = self
            .inner
            .finish()
            .expect("MD5 finish does not fail")
            .to_vec();
        #[cfg(not(feature = "openssl"))]
        let d = {
            use md5::Digest as _;
            self.inner.finalize().to_vec()
        };
        hex(&d)
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The MD5 of `data` in hex.
pub fn md5_hex(data: &[u8]) -> String {
    let mut h = Md5::new();
    h.update(data);
    h.hex()
}

/// MD5 of nothing.
pub const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(md5_hex(b""), EMPTY_MD5);
        // Values from the .dat lines of ZODB's test_repozo.py.
        assert_eq!(md5_hex(b"AAA"), "e1faffb3e614e6c2fba74296962386b7");
        assert_eq!(md5_hex(b"BBBB"), "f50881ced34c7d9e6bce100bf33dec60");
        assert_eq!(md5_hex(b"BbBB"), "36486440db255f0ee6ab109d5d231406");
    }

    #[test]
    fn clone_gives_prefix_digest() {
        let mut h = Md5::new();
        h.update(b"AAA");
        let prefix = h.clone();
        h.update(b"BBBB");
        assert_eq!(prefix.hex(), md5_hex(b"AAA"));
        assert_eq!(h.hex(), md5_hex(b"AAABBBB"));
    }
}
