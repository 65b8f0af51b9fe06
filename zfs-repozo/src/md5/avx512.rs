//! MD5's compression function on AVX-512 (x86-64): the same rounds as everywhere, but each
//! 32-bit word lives in lane 0 of a vector register, so that every round function is one
//! `vpternlogd` and every rotation one `vprold`. A step is then four dependent instructions
//! (round function, add, rotate, add) where the general-purpose registers need four or five.
//! That pays only where those vector instructions take one cycle: on some CPUs with AVX-512
//! they take two, and the scalar code is faster (`BENCHMARKS.md`), which is why
//! [`super::Md5::new`] measures both before choosing.
//!
//! Runs only when the CPU reports AVX-512F and AVX-512VL ([`available`]); the digest is the
//! same as any other MD5's (tested against `md-5` on random inputs and split points).
#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_cvtsi128_si32, _mm_rol_epi32, _mm_set1_epi32,
    _mm_ternarylogic_epi32,
};

use super::K;

/// True when this CPU can run [`compress`].
pub(crate) fn available() -> bool {
    std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl")
}

/// Runs the compression function over whole 64-byte blocks; on a CPU without AVX-512 (never
/// chosen there) the scalar code does the work.
pub(crate) fn compress(state: &mut [u32; 4], data: &[u8]) {
    debug_assert!(data.len().is_multiple_of(64));
    if available() {
        // SAFETY: the CPU has the features `compress_avx512` is compiled for (checked just
        // above; the check is a cached load).
        unsafe { compress_avx512(state, data) }
    } else {
        super::scalar::compress(state, data)
    }
}

/// One MD5 step: `a = b + rotl(a + w + f(b, c, d), s)`, `f` given as a ternary-logic table.
macro_rules! step {
    ($a:ident, $b:ident, $c:ident, $d:ident, $f:literal, $s:literal, $w:expr) => {
        $a = _mm_add_epi32($a, _mm_set1_epi32($w as i32));
        $a = _mm_add_epi32($a, _mm_ternarylogic_epi32::<$f>($b, $c, $d));
        $a = _mm_rol_epi32::<$s>($a);
        $a = _mm_add_epi32($a, $b);
    };
}

/// Four steps of one round: message word `m[g(i)]` with `g(i) = (mul * i + add) % 16`.
macro_rules! four {
    ($a:ident, $b:ident, $c:ident, $d:ident, $m:ident, $f:literal, $i:literal,
     $mul:literal, $add:literal, $s0:literal, $s1:literal, $s2:literal, $s3:literal) => {
        step!(
            $a,
            $b,
            $c,
            $d,
            $f,
            $s0,
            $m[($mul * $i + $add) % 16].wrapping_add(K[$i])
        );
        step!(
            $d,
            $a,
            $b,
            $c,
            $f,
            $s1,
            $m[($mul * ($i + 1) + $add) % 16].wrapping_add(K[$i + 1])
        );
        step!(
            $c,
            $d,
            $a,
            $b,
            $f,
            $s2,
            $m[($mul * ($i + 2) + $add) % 16].wrapping_add(K[$i + 2])
        );
        step!(
            $b,
            $c,
            $d,
            $a,
            $f,
            $s3,
            $m[($mul * ($i + 3) + $add) % 16].wrapping_add(K[$i + 3])
        );
    };
}

// Ternary-logic tables, operands (b, c, d): F = b ? c : d (0xCA), G = d ? b : c (0xE4),
// H = b ^ c ^ d (0x96), I = c ^ (b | !d) (0x39).
#[target_feature(enable = "avx512f,avx512vl")]
unsafe fn compress_avx512(state: &mut [u32; 4], data: &[u8]) {
    let lane = |x: u32| _mm_set1_epi32(x as i32);
    let word = |v: __m128i| _mm_cvtsi128_si32(v) as u32;
    let (mut a, mut b, mut c, mut d) = (
        lane(state[0]),
        lane(state[1]),
        lane(state[2]),
        lane(state[3]),
    );
    for block in data.chunks_exact(64) {
        let mut m = [0u32; 16];
        for (w, bytes) in m.iter_mut().zip(block.chunks_exact(4)) {
            *w = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        let (a0, b0, c0, d0) = (a, b, c, d);
        four!(a, b, c, d, m, 0xCA, 0, 1, 0, 7, 12, 17, 22);
        four!(a, b, c, d, m, 0xCA, 4, 1, 0, 7, 12, 17, 22);
        four!(a, b, c, d, m, 0xCA, 8, 1, 0, 7, 12, 17, 22);
        four!(a, b, c, d, m, 0xCA, 12, 1, 0, 7, 12, 17, 22);
        four!(a, b, c, d, m, 0xE4, 16, 5, 1, 5, 9, 14, 20);
        four!(a, b, c, d, m, 0xE4, 20, 5, 1, 5, 9, 14, 20);
        four!(a, b, c, d, m, 0xE4, 24, 5, 1, 5, 9, 14, 20);
        four!(a, b, c, d, m, 0xE4, 28, 5, 1, 5, 9, 14, 20);
        four!(a, b, c, d, m, 0x96, 32, 3, 5, 4, 11, 16, 23);
        four!(a, b, c, d, m, 0x96, 36, 3, 5, 4, 11, 16, 23);
        four!(a, b, c, d, m, 0x96, 40, 3, 5, 4, 11, 16, 23);
        four!(a, b, c, d, m, 0x96, 44, 3, 5, 4, 11, 16, 23);
        four!(a, b, c, d, m, 0x39, 48, 7, 0, 6, 10, 15, 21);
        four!(a, b, c, d, m, 0x39, 52, 7, 0, 6, 10, 15, 21);
        four!(a, b, c, d, m, 0x39, 56, 7, 0, 6, 10, 15, 21);
        four!(a, b, c, d, m, 0x39, 60, 7, 0, 6, 10, 15, 21);
        a = _mm_add_epi32(a, a0);
        b = _mm_add_epi32(b, b0);
        c = _mm_add_epi32(c, c0);
        d = _mm_add_epi32(d, d0);
    }
    *state = [word(a), word(b), word(c), word(d)];
}
