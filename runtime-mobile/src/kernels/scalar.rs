//! Plain scalar reference kernels: the definition every SIMD kernel is tested against.

use super::{Kernels, Requant};
use crate::bytes::le_i32;
use crate::requant::requantize;

pub static KERNELS: Kernels = Kernels {
    name: "scalar",
    matvec_i8,
    // The reference is exact for every weight; the bound only matters to SIMD versions.
    matvec_i8_sym: matvec_i8,
    matvec_pairs_i16,
    row_sums_i8,
    requantize_i32,
};

/// See [`Kernels::matvec_i8`]. Iterators (`chunks_exact`/`zip`) keep it panic-free even if a
/// caller broke the length contract.
pub fn matvec_i8(w: &[i8], x: &[i8], out: &mut [i32]) {
    if x.is_empty() {
        out.fill(0);
        return;
    }
    for (o, row) in out.iter_mut().zip(w.chunks_exact(x.len())) {
        let mut acc = 0i32;
        for (&a, &b) in row.iter().zip(x) {
            acc = acc.wrapping_add(a as i32 * b as i32);
        }
        *o = acc;
    }
}

/// See [`Kernels::matvec_pairs_i16`].
pub fn matvec_pairs_i16(wt: &[i32], xp: &[i32], out: &mut [i32]) {
    let n = out.len();
    out.fill(0);
    if n == 0 {
        return;
    }
    for (row, &x) in wt.chunks_exact(n).zip(xp) {
        let (x0, x1) = (x as i16 as i32, (x >> 16) as i16 as i32);
        for (o, &w) in out.iter_mut().zip(row) {
            let (w0, w1) = (w as i16 as i32, (w >> 16) as i16 as i32);
            // Each product fits i32 (|i16 * i16| <= 2^30); the pair sum and the total wrap.
            *o = o.wrapping_add((w0 * x0).wrapping_add(w1 * x1));
        }
    }
}

/// See [`Kernels::row_sums_i8`].
pub fn row_sums_i8(w: &[i8], k_len: usize, out: &mut [i32]) {
    if k_len == 0 {
        out.fill(0);
        return;
    }
    for (o, row) in out.iter_mut().zip(w.chunks_exact(k_len)) {
        *o = row.iter().fold(0i32, |s, &v| s.wrapping_add(v as i32));
    }
}

/// See [`Kernels::requantize_i32`].
pub fn requantize_i32(acc: &mut [i32], q: &Requant<'_>) {
    for (o, a) in acc.iter_mut().enumerate() {
        *a = requantize(
            *a,
            le_i32(q.multiplier, o),
            le_i32(q.shift, o),
            q.zp_out,
            q.lo,
        ) as i32;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn matvec_small() {
        let w = [1i8, 2, 3, -1, -2, -3];
        let x = [10i8, -10, 127];
        let mut out = [0i32; 2];
        super::matvec_i8(&w, &x, &mut out);
        assert_eq!(out, [10 - 20 + 381, -10 + 20 - 381]);
        super::row_sums_i8(&w, 3, &mut out);
        assert_eq!(out, [6, -6]);
    }
}
