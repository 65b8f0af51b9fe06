//! MD5's compression function in plain Rust, written for the length of its dependency chain,
//! which is all that bounds MD5's speed (each step needs the previous one's result).
//!
//! A step is `a = b + rotl(a + m + k + f(b, c, d), s)`. Everything but `f`'s use of `b`
//! can be computed while the previous step runs, so the chain per step is the part of `f`
//! that waits for `b`, then an add, a rotation and an add:
//! - F as `d ^ (b & (c ^ d))`: two instructions after `b`;
//! - G as `(!d & c) + (d & b)`, the first term added early (the two terms never share a
//!   set bit, so adding them is the same as or-ing them): one instruction after `b`;
//! - H as `b ^ (c ^ d)`: one;
//! - I as `c ^ (b | !d)`: two.
//!
//! That is 4.5 dependent instructions per byte on average, as OpenSSL's assembly does. One
//! more trick is needed to keep it: the constants `k` are read through
//! [`std::hint::black_box`], because the compiler otherwise moves an addition of a constant
//! to the end of the sum, after `f`, which puts one more add on the chain (measured: 15%
//! slower).

use super::K;

/// `a += m + k + F(b, c, d)`, rotated by `s`, plus `b`.
macro_rules! f {
    ($a:ident, $b:ident, $c:ident, $d:ident, $mk:expr, $s:literal) => {
        $a = $a
            .wrapping_add($mk)
            .wrapping_add($d ^ ($b & ($c ^ $d)))
            .rotate_left($s)
            .wrapping_add($b);
    };
}

/// As [`f`] with G: the term without `b` is added first.
macro_rules! g {
    ($a:ident, $b:ident, $c:ident, $d:ident, $mk:expr, $s:literal) => {
        $a = $a
            .wrapping_add($mk)
            .wrapping_add(!$d & $c)
            .wrapping_add($d & $b)
            .rotate_left($s)
            .wrapping_add($b);
    };
}

/// As [`f`] with H.
macro_rules! h {
    ($a:ident, $b:ident, $c:ident, $d:ident, $mk:expr, $s:literal) => {
        $a = $a
            .wrapping_add($mk)
            .wrapping_add($b ^ ($c ^ $d))
            .rotate_left($s)
            .wrapping_add($b);
    };
}

/// As [`f`] with I.
macro_rules! i {
    ($a:ident, $b:ident, $c:ident, $d:ident, $mk:expr, $s:literal) => {
        $a = $a
            .wrapping_add($mk)
            .wrapping_add($c ^ ($b | !$d))
            .rotate_left($s)
            .wrapping_add($b);
    };
}

/// Runs the compression function over whole 64-byte blocks.
pub(crate) fn compress(state: &mut [u32; 4], data: &[u8]) {
    debug_assert!(data.len().is_multiple_of(64));
    let k: &[u32; 64] = std::hint::black_box(&K);
    let [mut a, mut b, mut c, mut d] = *state;
    for block in data.chunks_exact(64) {
        let mut m = [0u32; 16];
        for (w, bytes) in m.iter_mut().zip(block.chunks_exact(4)) {
            *w = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        let (a0, b0, c0, d0) = (a, b, c, d);
        // Four steps of one round from step `$i`, message word `m[(mul * i + add) % 16]`.
        macro_rules! four {
            ($op:ident, $i:literal, $mul:literal, $add:literal,
             $s0:literal, $s1:literal, $s2:literal, $s3:literal) => {
                $op!(
                    a,
                    b,
                    c,
                    d,
                    m[($mul * $i + $add) % 16].wrapping_add(k[$i]),
                    $s0
                );
                $op!(
                    d,
                    a,
                    b,
                    c,
                    m[($mul * ($i + 1) + $add) % 16].wrapping_add(k[$i + 1]),
                    $s1
                );
                $op!(
                    c,
                    d,
                    a,
                    b,
                    m[($mul * ($i + 2) + $add) % 16].wrapping_add(k[$i + 2]),
                    $s2
                );
                $op!(
                    b,
                    c,
                    d,
                    a,
                    m[($mul * ($i + 3) + $add) % 16].wrapping_add(k[$i + 3]),
                    $s3
                );
            };
        }
        four!(f, 0, 1, 0, 7, 12, 17, 22);
        four!(f, 4, 1, 0, 7, 12, 17, 22);
        four!(f, 8, 1, 0, 7, 12, 17, 22);
        four!(f, 12, 1, 0, 7, 12, 17, 22);
        four!(g, 16, 5, 1, 5, 9, 14, 20);
        four!(g, 20, 5, 1, 5, 9, 14, 20);
        four!(g, 24, 5, 1, 5, 9, 14, 20);
        four!(g, 28, 5, 1, 5, 9, 14, 20);
        four!(h, 32, 3, 5, 4, 11, 16, 23);
        four!(h, 36, 3, 5, 4, 11, 16, 23);
        four!(h, 40, 3, 5, 4, 11, 16, 23);
        four!(h, 44, 3, 5, 4, 11, 16, 23);
        four!(i, 48, 7, 0, 6, 10, 15, 21);
        four!(i, 52, 7, 0, 6, 10, 15, 21);
        four!(i, 56, 7, 0, 6, 10, 15, 21);
        four!(i, 60, 7, 0, 6, 10, 15, 21);
        a = a.wrapping_add(a0);
        b = b.wrapping_add(b0);
        c = c.wrapping_add(c0);
        d = d.wrapping_add(d0);
    }
    *state = [a, b, c, d];
}
