//! MD5 of byte streams. Three implementations, chosen when a hasher is made:
//! - our AVX-512 code (`md5/avx512.rs`) on x86-64 CPUs that have AVX-512F/VL (checked at run
//!   time; cargo feature `avx512`, on by default);
//! - else OpenSSL's, when the opt-in cargo feature `openssl` is on (it links libcrypto);
//! - else RustCrypto's `md-5`, pure Rust, or its assembly block function with the cargo
//!   feature `md5-asm`.
//!
//! `BENCHMARKS.md` has their speeds. Every state can be cloned, which gives the digest of a
//! prefix for free.

#[cfg(all(target_arch = "x86_64", feature = "avx512"))]
mod avx512;

/// A running MD5 computation.
#[derive(Clone)]
pub struct Md5 {
    inner: Backend,
}

#[derive(Clone)]
enum Backend {
    #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
    Avx512(avx512::Avx512Md5),
    #[cfg(feature = "openssl")]
    OpenSsl(openssl::hash::Hasher),
    #[cfg(not(feature = "openssl"))]
    RustCrypto(md5::Md5),
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

impl Md5 {
    /// A hasher that has seen nothing, on the fastest code this CPU runs.
    pub fn new() -> Self {
        #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
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
            Backend::RustCrypto(md5::Md5::new())
        };
        Md5 { inner }
    }

    /// Which implementation `Md5::new` uses on this CPU, for `--version` and bug reports.
    pub fn implementation() -> &'static str {
        match Self::new().inner {
            #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
            Backend::Avx512(_) => "AVX-512 (zodbfs)",
            #[cfg(feature = "openssl")]
            Backend::OpenSsl(_) => "OpenSSL",
            #[cfg(all(not(feature = "openssl"), feature = "md5-asm"))]
            Backend::RustCrypto(_) => "md-5 (assembly)",
            #[cfg(all(not(feature = "openssl"), not(feature = "md5-asm")))]
            Backend::RustCrypto(_) => "md-5 (Rust)",
        }
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.inner {
            #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
            Backend::Avx512(h) => h.update(data),
            #[cfg(feature = "openssl")]
            Backend::OpenSsl(h) => h.update(data).expect("MD5 update does not fail"),
            #[cfg(not(feature = "openssl"))]
            Backend::RustCrypto(h) => {
                use md5::Digest as _;
                h.update(data)
            }
        }
    }

    /// The digest as 32 lowercase hex digits, as Python's `hexdigest()`.
    pub fn hex(self) -> String {
        let d: Vec<u8> = match self.inner {
            #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
            Backend::Avx512(h) => h.finish().to_vec(),
            #[cfg(feature = "openssl")]
            Backend::OpenSsl(mut h) => h.finish().expect("MD5 finish does not fail").to_vec(),
            #[cfg(not(feature = "openssl"))]
            Backend::RustCrypto(h) => {
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
    fn implementation_names_the_code_new_uses() {
        #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
        if avx512::Avx512Md5::available() {
            assert_eq!(Md5::implementation(), "AVX-512 (zodbfs)");
            return;
        }
        let expected = if cfg!(feature = "openssl") {
            "OpenSSL"
        } else if cfg!(feature = "md5-asm") {
            "md-5 (assembly)"
        } else {
            "md-5 (Rust)"
        };
        assert_eq!(Md5::implementation(), expected);
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
