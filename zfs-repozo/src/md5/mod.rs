//! MD5 of byte streams, in Rust only (no C library): the speed of a full backup and of
//! verify, since MD5 is one serial chain that cannot be split across cores.
//!
//! Two compression functions of ours, the rest (buffering, padding) shared:
//! - `scalar.rs`, for every CPU: as fast as OpenSSL's assembly (`BENCHMARKS.md`);
//! - `avx512.rs`, on x86-64 CPUs with AVX-512F/VL (cargo feature `avx512`, on by default):
//!   faster where its vector instructions take one cycle, slower where they take two. The
//!   first [`Md5::new`] of a process times both on 64 KiB (well under a millisecond) and
//!   keeps the faster.
//!
//! The environment variable `ZFS_MD5` (read once per process) overrides the timing:
//! `scalar` takes the scalar code whatever the CPU (to see what a CPU without AVX-512
//! gets), `avx512` the AVX-512 code where this build and CPU have it; `auto`, empty or
//! unset, the timing decides. Any other value is ignored, and [`Md5::implementation`] says so.
//!
//! Every state can be cloned, which gives the digest of a prefix for free.

#[cfg(all(target_arch = "x86_64", feature = "avx512"))]
mod avx512;
mod scalar;

/// The sine table of RFC 1321.
const K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

/// The initial state of RFC 1321.
const INIT: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

/// A compression function: the state after whole 64-byte blocks.
type Compress = fn(&mut [u32; 4], &[u8]);

/// A running MD5 computation.
#[derive(Clone)]
pub struct Md5 {
    state: [u32; 4],
    buf: [u8; 64],
    buffered: usize,
    total: u64,
    compress: Compress,
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

impl Md5 {
    /// A hasher that has seen nothing, on the faster code for this CPU.
    pub fn new() -> Self {
        Self::with(fastest().0)
    }

    /// A hasher on the scalar code, whatever the CPU.
    pub fn portable() -> Self {
        Self::with(scalar::compress)
    }

    /// A hasher on the AVX-512 code, when this build has it and the CPU runs it (for
    /// benchmarks: [`Md5::new`] chooses by itself).
    pub fn avx512() -> Option<Self> {
        #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
        if avx512::available() {
            return Some(Self::with(avx512::compress));
        }
        None
    }

    fn with(compress: Compress) -> Self {
        Md5 {
            state: INIT,
            buf: [0; 64],
            buffered: 0,
            total: 0,
            compress,
        }
    }

    /// Which code [`Md5::new`] uses on this CPU, for `--version` and bug reports.
    pub fn implementation() -> &'static str {
        fastest().1
    }

    /// Feeds `data`.
    pub fn update(&mut self, mut data: &[u8]) {
        self.total = self.total.wrapping_add(data.len() as u64);
        if self.buffered > 0 {
            let take = (64 - self.buffered).min(data.len());
            self.buf[self.buffered..self.buffered + take].copy_from_slice(&data[..take]);
            self.buffered += take;
            data = &data[take..];
            if self.buffered < 64 {
                return;
            }
            let block = self.buf;
            (self.compress)(&mut self.state, &block);
            self.buffered = 0;
        }
        let whole = data.len() / 64 * 64;
        (self.compress)(&mut self.state, &data[..whole]);
        let rest = &data[whole..];
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buffered = rest.len();
    }

    /// The digest.
    pub fn finish(mut self) -> [u8; 16] {
        let bits = self.total.wrapping_mul(8);
        let mut tail = [0u8; 128];
        tail[..self.buffered].copy_from_slice(&self.buf[..self.buffered]);
        tail[self.buffered] = 0x80;
        let len = if self.buffered < 56 { 64 } else { 128 };
        tail[len - 8..len].copy_from_slice(&bits.to_le_bytes());
        (self.compress)(&mut self.state, &tail[..len]);
        let mut out = [0u8; 16];
        for (o, s) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&s.to_le_bytes());
        }
        out
    }

    /// The digest as 32 lowercase hex digits, as Python's `hexdigest()`.
    pub fn hex(self) -> String {
        hex(&self.finish())
    }
}

/// The environment variable that overrides the choice of compression function.
pub const CHOICE_VAR: &str = "ZFS_MD5";

/// The compression function [`Md5::new`] uses, with its name: chosen once per process.
fn fastest() -> (Compress, &'static str) {
    static CHOSEN: std::sync::OnceLock<(Compress, String)> = std::sync::OnceLock::new();
    let (f, name) = CHOSEN.get_or_init(|| {
        let var = std::env::var_os(CHOICE_VAR);
        choose(
            var.as_deref().map(|v| v.to_string_lossy()).as_deref(),
            avx512_faster,
        )
    });
    (*f, name)
}

/// The AVX-512 code, when this build and CPU have it.
fn avx512_code() -> Option<Compress> {
    #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
    if avx512::available() {
        return Some(avx512::compress);
    }
    None
}

/// True when this build and CPU have the AVX-512 code and it hashes faster than the scalar.
fn avx512_faster() -> bool {
    #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
    if avx512::available() {
        return faster(avx512::compress, scalar::compress);
    }
    false
}

/// The code for a value of [`CHOICE_VAR`] (`None`: unset), `timing` telling whether the
/// AVX-512 code is faster when that decides; with its name.
fn choose(var: Option<&str>, timing: impl FnOnce() -> bool) -> (Compress, String) {
    let scalar: Compress = scalar::compress;
    let auto = |note: &str| match avx512_code() {
        Some(f) if timing() => (f, format!("AVX-512 (zodbfs{note})")),
        _ => (scalar, format!("scalar (zodbfs{note})")),
    };
    match var {
        None | Some("" | "auto") => auto(""),
        Some("scalar") => (scalar, format!("scalar (zodbfs, {CHOICE_VAR}=scalar)")),
        Some("avx512") => match avx512_code() {
            Some(f) => (f, format!("AVX-512 (zodbfs, {CHOICE_VAR}=avx512)")),
            None => (
                scalar,
                format!(
                    "scalar (zodbfs; {CHOICE_VAR}=avx512, but this CPU or build has no AVX-512)"
                ),
            ),
        },
        Some(other) => auto(&format!(
            "; {CHOICE_VAR}={other:?} ignored: scalar, avx512 or auto"
        )),
    }
}

/// True when `x` hashes 64 KiB faster than `y`: the best of three alternating runs each,
/// so that a run slowed by another process does not decide.
#[cfg(all(target_arch = "x86_64", feature = "avx512"))]
fn faster(x: Compress, y: Compress) -> bool {
    use std::time::{Duration, Instant};
    let data = vec![0x5a_u8; 64 << 10];
    let mut best = [Duration::MAX; 2];
    for _ in 0..3 {
        for (slot, f) in best.iter_mut().zip([x, y]) {
            let mut state = INIT;
            let t = Instant::now();
            f(&mut state, &data);
            std::hint::black_box(state);
            *slot = (*slot).min(t.elapsed());
        }
    }
    best[0] < best[1]
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
    use md5::Digest as _;
    use proptest::prelude::*;

    /// The scalar code, which every CPU runs (the AVX-512 code has its own tests, ignored
    /// where the CPU lacks it).
    fn all() -> Vec<(Compress, &'static str)> {
        vec![(scalar::compress, "scalar")]
    }

    /// Lengths around the padding boundaries, for `f` against the reference.
    fn padding_boundaries(f: Compress, name: &str) {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for len in [
            0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000,
        ] {
            let mut h = Md5::with(f);
            h.update(&data[..len]);
            assert_eq!(h.finish(), reference(&data[..len]), "{name}, length {len}");
        }
    }

    fn reference(data: &[u8]) -> [u8; 16] {
        md5::Md5::digest(data).into()
    }

    #[test]
    fn known_digests() {
        assert_eq!(md5_hex(b""), EMPTY_MD5);
        // Values from the .dat lines of ZODB's test_repozo.py.
        assert_eq!(md5_hex(b"AAA"), "e1faffb3e614e6c2fba74296962386b7");
        assert_eq!(md5_hex(b"BBBB"), "f50881ced34c7d9e6bce100bf33dec60");
        assert_eq!(md5_hex(b"BbBB"), "36486440db255f0ee6ab109d5d231406");
        // RFC 1321's test suite.
        assert_eq!(
            md5_hex(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            ),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn padding_boundaries_match_the_reference() {
        for (f, name) in all() {
            padding_boundaries(f, name);
        }
    }

    #[test]
    #[ignore = "needs a CPU with AVX-512F/VL"]
    fn avx512_code_matches_the_reference() {
        let f = avx512_code().expect("this CPU (or build) has no AVX-512F/VL");
        padding_boundaries(f, "avx512");
        // Random contents and splits, as the property test of the scalar code.
        let mut x = 0x2545_f491_u32;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for _ in 0..2000 {
            let len = (next() % 3000) as usize;
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut h = Md5::with(f);
            let mut at = 0;
            while at < len {
                let step = ((next() % 300) as usize).min(len - at);
                h.update(&data[at..at + step]);
                at += step;
            }
            assert_eq!(h.finish(), reference(&data), "length {len}");
        }
        let (chosen, name) = choose(Some("avx512"), || false);
        assert_eq!(chosen as usize, f as usize, "{name}");
    }

    #[test]
    fn the_variable_forces_or_leaves_the_choice() {
        let scalar = scalar::compress as Compress as usize;
        let (f, name) = choose(Some("scalar"), || panic!("no timing when forced"));
        assert_eq!(
            (f as usize, name.as_str()),
            (scalar, "scalar (zodbfs, ZFS_MD5=scalar)")
        );
        // Unset or auto: the timing decides, where there is a choice.
        let faster = avx512_code().map_or(scalar, |f| f as usize);
        assert_eq!(choose(None, || true).0 as usize, faster);
        assert_eq!(choose(Some("auto"), || true).0 as usize, faster);
        assert_eq!(choose(Some(""), || true).1, choose(None, || true).1);
        assert_eq!(choose(None, || false).0 as usize, scalar);
        // A value we do not know is named as ignored.
        let (f, name) = choose(Some("fast"), || false);
        assert_eq!(f as usize, scalar);
        assert!(name.contains("ZFS_MD5=\"fast\" ignored"), "{name}");
        // avx512 without the code falls back, saying so.
        if avx512_code().is_none() {
            let (f, name) = choose(Some("avx512"), || true);
            assert_eq!(f as usize, scalar);
            assert!(name.contains("no AVX-512"), "{name}");
        }
    }

    #[test]
    fn new_and_portable_agree() {
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
        let name = Md5::implementation();
        let (f, _) = fastest();
        assert_eq!(
            f as usize == scalar::compress as Compress as usize,
            name.starts_with("scalar")
        );
        #[cfg(not(all(target_arch = "x86_64", feature = "avx512")))]
        assert_eq!(name, "scalar (zodbfs)");
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

    proptest! {
        #[test]
        fn any_split_matches_the_reference(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            cuts in proptest::collection::vec(0usize..3000, 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort();
            for (f, name) in all() {
                let mut h = Md5::with(f);
                let mut at = 0;
                for &c in &cuts {
                    h.update(&data[at..c]);
                    at = c;
                }
                h.update(&data[at..]);
                prop_assert_eq!(h.finish(), reference(&data), "{}", name);
            }
        }
    }
}
