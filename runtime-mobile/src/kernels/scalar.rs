//! Plain scalar reference kernels: the definition every SIMD kernel is tested against.

use super::{Kernels, Patches, Requant};
use crate::bytes::le_i32;
use crate::requant::requantize;

pub static KERNELS: Kernels = Kernels {
    name: "scalar",
    conv_packed: false,
    matvec_i8,
    // The reference is exact for every weight; the bound only matters to SIMD versions.
    matvec_i8_sym: matvec_i8,
    matvec_pairs_i16,
    matvec4_i8: None,
    gemm_u8i8,
    gemm_u8i8_max,
    row_sums_i8,
    requantize_i32,
    requantize_rows,
};

/// The reference with the engine's packed conv path switched on: what the SIMD tables that
/// take that path (AVX-512 VNNI, AVX2) are compared against, and how Miri checks the path's engine
/// code.
pub static KERNELS_PACKED: Kernels = Kernels { name: "scalar-packed", conv_packed: true, ..KERNELS };

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

/// See [`Kernels::matvec4_i8`] (the reference; the scalar tables leave the entry `None`).
/// Rows past the end of `w` are left alone, so a broken contract stays memory-safe.
pub fn matvec4_i8(w: &[i8], k: usize, xs: &[i8], out: &mut [i32]) {
    let n = xs.len() / 4;
    for (r, o4) in out.chunks_exact_mut(4).enumerate() {
        let Some(row) = r.checked_mul(k).and_then(|s| w.get(s..)).and_then(|row| row.get(..n)) else { return };
        for (o, x) in o4.iter_mut().zip(xs.chunks_exact(n.max(1))) {
            *o = row.iter().zip(x).fold(*o, |a, (&w, &x)| a.wrapping_add(w as i32 * x as i32));
        }
    }
}

/// `bias[o] + sum_t byte(i, t) * w(t, o)` for patch `i` and channel `o` of `ocp`, segment by
/// segment and quad by quad (a segment outside `xu`, or quads outside `wp`, count as 0: only a
/// broken contract gets there).
fn packed_dot(wp: &[i8], src: &Patches<'_>, bias: &[i32], ocp: usize, i: usize, o: usize) -> i32 {
    let mut acc = bias.get(o).copied().unwrap_or(0);
    let quads_per_seg = src.seg / 4;
    let start = src.starts.get(i).copied().unwrap_or(usize::MAX);
    for r in 0..src.rows {
        let seg = r
            .checked_mul(src.row_stride)
            .and_then(|off| off.checked_add(start))
            .and_then(|off| src.xu.get(off..off.checked_add(src.seg)?));
        let Some(seg) = seg else { continue };
        for (j, xq) in seg.as_chunks::<4>().0.iter().enumerate() {
            let q = r * quads_per_seg + j;
            let Some(wq) = wp.get((q * ocp + o) * 4..(q * ocp + o) * 4 + 4) else { continue };
            for (&u, &w) in xq.iter().zip(wq) {
                acc = acc.wrapping_add(u as i32 * w as i32);
            }
        }
    }
    acc
}

/// See [`Kernels::gemm_u8i8`].
pub fn gemm_u8i8(wp: &[i8], src: &Patches<'_>, bias: &[i32], out: &mut [i32]) {
    let n = src.starts.len();
    if n == 0 {
        return;
    }
    let ocp = out.len() / n;
    for (i, row) in out.chunks_exact_mut(ocp.max(1)).take(n).enumerate() {
        for (o, v) in row.iter_mut().enumerate() {
            *v = packed_dot(wp, src, bias, ocp, i, o);
        }
    }
}

/// See [`Kernels::gemm_u8i8_max`].
pub fn gemm_u8i8_max(wp: &[i8], src: &Patches<'_>, bias: &[i32], pmax: &mut [i32]) {
    let ocp = pmax.len();
    for i in 0..src.starts.len() {
        for (o, m) in pmax.iter_mut().enumerate() {
            *m = (*m).max(packed_dot(wp, src, bias, ocp, i, o));
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

/// See [`Kernels::requantize_rows`].
pub fn requantize_rows(acc: &mut [i32], stride: usize, channels: usize, q: &Requant<'_>) {
    rows_with(requantize_i32, acc, stride, channels, q);
}

/// [`Kernels::requantize_rows`] by calls of a `requantize_i32` implementation, row by row.
pub(crate) fn rows_with(f: fn(&mut [i32], &Requant<'_>), acc: &mut [i32], stride: usize, channels: usize, q: &Requant<'_>) {
    if stride < channels || stride == 0 {
        return;
    }
    for row in acc.chunks_mut(stride) {
        let n = row.len().min(channels);
        f(&mut row[..n], q);
    }
}

/// See [`Kernels::requantize_i32`].
pub fn requantize_i32(acc: &mut [i32], q: &Requant<'_>) {
    for (o, a) in acc.iter_mut().enumerate() {
        *a = requantize(*a, le_i32(q.multiplier, o), le_i32(q.shift, o), q.zp_out, q.lo) as i32;
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
