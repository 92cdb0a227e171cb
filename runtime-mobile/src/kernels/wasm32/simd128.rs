//! WebAssembly `simd128` kernels, bit-exact with [`scalar`].
//!
//! Exactness: bytes are widened to i16 (u8 activations to 0..=255, i8 weights to -128..=127)
//! and multiplied pairwise into i32 lanes by `i32x4.dot_i16x8_s`: each product fits in i16 x
//! i16 -> i32 exactly and the pair sum (|p| <= 2 * 32640) cannot overflow i32; the lanes then
//! add with wrapping i32 arithmetic like the reference, whose sums are order-independent.
//! No relaxed-SIMD: `i32x4.relaxed_dot_i8x16_i7x16_add_s` is only exact for 7-bit operands,
//! and int8 weights and activations use the full 8 bits.
//!
//! Shape: the packed conv path ([`Kernels::gemm_u8i8`]) takes one 4-byte quad of a patch per
//! step, broadcast against 16 channels' weights (four vectors); `matvec_i8` (dense layers)
//! runs 4 rows per pass over 16-byte pieces of `x`, the `k % 16` tail in scalar code.
//! Requantization and row sums are the reference (a few thousand values per inference).

use core::arch::wasm32::*;

use crate::kernels::{Kernels, PACK_OC, Patches, scalar};

static SIMD128: Kernels = Kernels {
    name: "wasm-simd128",
    conv_packed: true,
    matvec_i8,
    // Widening to i16 makes -128 weights exact too: one kernel for both.
    matvec_i8_sym: matvec_i8,
    matvec_pairs_i16,
    matvec4_i8: None,
    gemm_u8i8,
    gemm_u8i8_max,
    row_sums_i8: scalar::row_sums_i8,
    requantize_i32: scalar::requantize_i32,
    requantize_rows: scalar::requantize_rows,
};

/// The simd128 table (see the module docs for why no run-time check is needed).
pub fn simd128() -> &'static Kernels {
    &SIMD128
}

// The helpers enable simd128 too: an intrinsic only inlines into a function that has the feature
// (without `-C target-feature=+simd128`, a helper without it would call each intrinsic).

/// 16 bytes of `s` from `at`, or `None` past its end.
#[inline]
#[target_feature(enable = "simd128")]
fn load16<T: Copy>(s: &[T], at: usize) -> Option<v128> {
    let bytes = core::mem::size_of::<T>();
    let piece = s.get(at..at.checked_add(16usize.div_ceil(bytes))?)?;
    // SAFETY: `piece` holds 16 bytes (16 / size_of::<T>() elements of 1- or 4-byte T), and
    // v128_load has no alignment requirement.
    Some(unsafe { v128_load(piece.as_ptr().cast::<v128>()) })
}

/// `acc + dot(lo(w), lo(x)) + dot(hi(w), hi(x))` over 16 signed bytes widened to i16.
#[inline]
#[target_feature(enable = "simd128")]
fn dot16(acc: v128, w: v128, xlo: v128, xhi: v128) -> v128 {
    let lo = i32x4_dot_i16x8(i16x8_extend_low_i8x16(w), xlo);
    let hi = i32x4_dot_i16x8(i16x8_extend_high_i8x16(w), xhi);
    i32x4_add(acc, i32x4_add(lo, hi))
}

#[inline]
#[target_feature(enable = "simd128")]
fn hsum(v: v128) -> i32 {
    i32x4_extract_lane::<0>(v)
        .wrapping_add(i32x4_extract_lane::<1>(v))
        .wrapping_add(i32x4_extract_lane::<2>(v))
        .wrapping_add(i32x4_extract_lane::<3>(v))
}

#[target_feature(enable = "simd128")]
fn matvec_i8(w: &[i8], x: &[i8], out: &mut [i32]) {
    let k = x.len();
    if k < 16 || w.len() != out.len() * k {
        return scalar::matvec_i8(w, x, out);
    }
    let body = k - k % 16;
    let mut rows = out.chunks_exact_mut(4);
    let mut r0 = 0;
    for block in &mut rows {
        let mut acc = [i32x4_splat(0); 4];
        let mut c = 0;
        while c < body {
            let Some(xv) = load16(x, c) else { break };
            let (xlo, xhi) = (i16x8_extend_low_i8x16(xv), i16x8_extend_high_i8x16(xv));
            for (j, a) in acc.iter_mut().enumerate() {
                if let Some(wv) = load16(w, (r0 + j) * k + c) {
                    *a = dot16(*a, wv, xlo, xhi);
                }
            }
            c += 16;
        }
        for (j, o) in block.iter_mut().enumerate() {
            *o = hsum(acc[j]).wrapping_add(tail_dot(w, x, (r0 + j) * k, body));
        }
        r0 += 4;
    }
    for (j, o) in rows.into_remainder().iter_mut().enumerate() {
        let row = (r0 + j) * k;
        let mut acc = i32x4_splat(0);
        let mut c = 0;
        while c < body {
            if let (Some(xv), Some(wv)) = (load16(x, c), load16(w, row + c)) {
                acc = dot16(acc, wv, i16x8_extend_low_i8x16(xv), i16x8_extend_high_i8x16(xv));
            }
            c += 16;
        }
        *o = hsum(acc).wrapping_add(tail_dot(w, x, row, body));
    }
}

/// `sum w[row + c] * x[c]` for `c` from `from` to the end of `x` (the part after the 16-byte pieces).
fn tail_dot(w: &[i8], x: &[i8], row: usize, from: usize) -> i32 {
    let ws = w.get(row + from..row + x.len()).unwrap_or(&[]);
    ws.iter().zip(x.get(from..).unwrap_or(&[])).fold(0i32, |s, (&a, &b)| s.wrapping_add(a as i32 * b as i32))
}

#[target_feature(enable = "simd128")]
fn matvec_pairs_i16(wt: &[i32], xp: &[i32], out: &mut [i32]) {
    let n = out.len();
    if n < 4 || wt.len() != xp.len() * n {
        return scalar::matvec_pairs_i16(wt, xp, out);
    }
    let body = n - n % 4;
    let mut j = 0;
    while j < body {
        let mut acc = i32x4_splat(0);
        for (p, &x) in xp.iter().enumerate() {
            if let Some(w) = load16(wt, p * n + j) {
                acc = i32x4_add(acc, i32x4_dot_i16x8(w, i32x4_splat(x)));
            }
        }
        if let Some(o) = out.get_mut(j..j + 4) {
            o.copy_from_slice(&[
                i32x4_extract_lane::<0>(acc),
                i32x4_extract_lane::<1>(acc),
                i32x4_extract_lane::<2>(acc),
                i32x4_extract_lane::<3>(acc),
            ]);
        }
        j += 4;
    }
    for (jj, o) in out.iter_mut().enumerate().skip(body) {
        *o = xp.iter().enumerate().fold(0i32, |s, (p, &x)| {
            let w = wt.get(p * n + jj).copied().unwrap_or(0);
            let (w0, w1, x0, x1) = (w as i16 as i32, (w >> 16) as i16 as i32, x as i16 as i32, (x >> 16) as i16 as i32);
            s.wrapping_add((w0 * x0).wrapping_add(w1 * x1))
        });
    }
}

/// Whether the packed kernels' arguments hold what their contract says (else the reference,
/// which is memory-safe on anything, computes the unspecified result).
fn packed_args_ok(wp: &[i8], src: &Patches<'_>, bias: &[i32], ocp: usize) -> bool {
    let quads = src.rows.saturating_mul(src.seg / 4);
    ocp > 0
        && ocp.is_multiple_of(PACK_OC)
        && bias.len() >= ocp
        && src.in_bounds()
        && quads.checked_mul(ocp).and_then(|v| v.checked_mul(4)).is_some_and(|need| wp.len() >= need)
}

/// Patch `i`'s sums for the 16 channels from `o0`, plus their biases: four vectors of 4 channels.
#[inline]
#[target_feature(enable = "simd128")]
fn patch16(wp: &[i8], src: &Patches<'_>, bias: &[i32], ocp: usize, i: usize, o0: usize) -> [v128; 4] {
    // Named accumulators, not arrays: at opt-level "s" (the web profile) LLVM keeps an array
    // indexed in a loop in linear memory, which halves the speed.
    let z = i32x4_splat(0);
    let (mut lo0, mut hi0, mut lo1, mut hi1, mut lo2, mut hi2, mut lo3, mut hi3) = (z, z, z, z, z, z, z, z);
    let quads_per_seg = src.seg / 4;
    let start = src.starts.get(i).copied().unwrap_or(0);
    for r in 0..src.rows {
        let seg_at = start + r * src.row_stride;
        let Some(seg) = src.xu.get(seg_at..seg_at + src.seg) else { continue };
        let wrow = wp.get((r * quads_per_seg * ocp + o0) * 4..).unwrap_or(&[]);
        for (j, quad) in seg.as_chunks::<4>().0.iter().enumerate() {
            // [x0 x1 x2 x3 x0 x1 x2 x3] as i16: one quad against two channels per vector.
            let xq = u16x8_extend_low_u8x16(u32x4_splat(u32::from_le_bytes(*quad)));
            let Some(w) = wrow.get(j * ocp * 4..j * ocp * 4 + 64) else { continue };
            let (w0, w1, w2, w3) = (load16(w, 0), load16(w, 16), load16(w, 32), load16(w, 48));
            let (Some(w0), Some(w1), Some(w2), Some(w3)) = (w0, w1, w2, w3) else { continue };
            lo0 = i32x4_add(lo0, i32x4_dot_i16x8(i16x8_extend_low_i8x16(w0), xq));
            hi0 = i32x4_add(hi0, i32x4_dot_i16x8(i16x8_extend_high_i8x16(w0), xq));
            lo1 = i32x4_add(lo1, i32x4_dot_i16x8(i16x8_extend_low_i8x16(w1), xq));
            hi1 = i32x4_add(hi1, i32x4_dot_i16x8(i16x8_extend_high_i8x16(w1), xq));
            lo2 = i32x4_add(lo2, i32x4_dot_i16x8(i16x8_extend_low_i8x16(w2), xq));
            hi2 = i32x4_add(hi2, i32x4_dot_i16x8(i16x8_extend_high_i8x16(w2), xq));
            lo3 = i32x4_add(lo3, i32x4_dot_i16x8(i16x8_extend_low_i8x16(w3), xq));
            hi3 = i32x4_add(hi3, i32x4_dot_i16x8(i16x8_extend_high_i8x16(w3), xq));
        }
    }
    let b = |k: usize| load16(bias, o0 + 4 * k).unwrap_or(z);
    [halves(lo0, hi0, b(0)), halves(lo1, hi1, b(1)), halves(lo2, hi2, b(2)), halves(lo3, hi3, b(3))]
}

/// [`patch16`] for patches `i0` and `i1` at once: each quad of weights is loaded and widened
/// once for both (the widening is a third of the work per quad).
#[inline]
#[target_feature(enable = "simd128")]
fn patch16x2(wp: &[i8], src: &Patches<'_>, bias: &[i32], ocp: usize, i0: usize, i1: usize, o0: usize) -> [[v128; 4]; 2] {
    let z = i32x4_splat(0);
    let (mut a0, mut a1, mut a2, mut a3, mut a4, mut a5, mut a6, mut a7) = (z, z, z, z, z, z, z, z);
    let (mut b0, mut b1, mut b2, mut b3, mut b4, mut b5, mut b6, mut b7) = (z, z, z, z, z, z, z, z);
    let quads_per_seg = src.seg / 4;
    let (s0, s1) = (src.starts.get(i0).copied().unwrap_or(0), src.starts.get(i1).copied().unwrap_or(0));
    for r in 0..src.rows {
        let (at0, at1) = (s0 + r * src.row_stride, s1 + r * src.row_stride);
        let (Some(seg0), Some(seg1)) = (src.xu.get(at0..at0 + src.seg), src.xu.get(at1..at1 + src.seg)) else { continue };
        let wrow = wp.get((r * quads_per_seg * ocp + o0) * 4..).unwrap_or(&[]);
        let quads = seg0.as_chunks::<4>().0.iter().zip(seg1.as_chunks::<4>().0);
        for (j, (q0, q1)) in quads.enumerate() {
            let x0 = u16x8_extend_low_u8x16(u32x4_splat(u32::from_le_bytes(*q0)));
            let x1 = u16x8_extend_low_u8x16(u32x4_splat(u32::from_le_bytes(*q1)));
            let Some(w) = wrow.get(j * ocp * 4..j * ocp * 4 + 64) else { continue };
            let (Some(w0), Some(w1), Some(w2), Some(w3)) = (load16(w, 0), load16(w, 16), load16(w, 32), load16(w, 48)) else {
                continue;
            };
            let (l0, h0) = (i16x8_extend_low_i8x16(w0), i16x8_extend_high_i8x16(w0));
            let (l1, h1) = (i16x8_extend_low_i8x16(w1), i16x8_extend_high_i8x16(w1));
            a0 = i32x4_add(a0, i32x4_dot_i16x8(l0, x0));
            a1 = i32x4_add(a1, i32x4_dot_i16x8(h0, x0));
            a2 = i32x4_add(a2, i32x4_dot_i16x8(l1, x0));
            a3 = i32x4_add(a3, i32x4_dot_i16x8(h1, x0));
            b0 = i32x4_add(b0, i32x4_dot_i16x8(l0, x1));
            b1 = i32x4_add(b1, i32x4_dot_i16x8(h0, x1));
            b2 = i32x4_add(b2, i32x4_dot_i16x8(l1, x1));
            b3 = i32x4_add(b3, i32x4_dot_i16x8(h1, x1));
            let (l2, h2) = (i16x8_extend_low_i8x16(w2), i16x8_extend_high_i8x16(w2));
            let (l3, h3) = (i16x8_extend_low_i8x16(w3), i16x8_extend_high_i8x16(w3));
            a4 = i32x4_add(a4, i32x4_dot_i16x8(l2, x0));
            a5 = i32x4_add(a5, i32x4_dot_i16x8(h2, x0));
            a6 = i32x4_add(a6, i32x4_dot_i16x8(l3, x0));
            a7 = i32x4_add(a7, i32x4_dot_i16x8(h3, x0));
            b4 = i32x4_add(b4, i32x4_dot_i16x8(l2, x1));
            b5 = i32x4_add(b5, i32x4_dot_i16x8(h2, x1));
            b6 = i32x4_add(b6, i32x4_dot_i16x8(l3, x1));
            b7 = i32x4_add(b7, i32x4_dot_i16x8(h3, x1));
        }
    }
    let c = |k: usize| load16(bias, o0 + 4 * k).unwrap_or(z);
    let (c0, c1, c2, c3) = (c(0), c(1), c(2), c(3));
    [
        [halves(a0, a1, c0), halves(a2, a3, c1), halves(a4, a5, c2), halves(a6, a7, c3)],
        [halves(b0, b1, c0), halves(b2, b3, c1), halves(b4, b5, c2), halves(b6, b7, c3)],
    ]
}

/// `lo = [c0 t01, c0 t23, c1 t01, c1 t23]` and `hi` likewise for c2, c3: the four channels'
/// sums (the halves added), plus `bias`.
#[inline]
#[target_feature(enable = "simd128")]
fn halves(lo: v128, hi: v128, bias: v128) -> v128 {
    let even = i32x4_shuffle::<0, 2, 4, 6>(lo, hi);
    let odd = i32x4_shuffle::<1, 3, 5, 7>(lo, hi);
    i32x4_add(bias, i32x4_add(even, odd))
}

#[inline]
#[target_feature(enable = "simd128")]
fn store4(out: &mut [i32], at: usize, v: v128) {
    if let Some(o) = out.get_mut(at..at + 4) {
        o.copy_from_slice(&[
            i32x4_extract_lane::<0>(v),
            i32x4_extract_lane::<1>(v),
            i32x4_extract_lane::<2>(v),
            i32x4_extract_lane::<3>(v),
        ]);
    }
}

#[target_feature(enable = "simd128")]
fn gemm_u8i8(wp: &[i8], src: &Patches<'_>, bias: &[i32], out: &mut [i32]) {
    let n = src.starts.len();
    if n == 0 {
        return;
    }
    let ocp = out.len() / n;
    if !packed_args_ok(wp, src, bias, ocp) || out.len() != n * ocp {
        return scalar::gemm_u8i8(wp, src, bias, out);
    }
    for o0 in (0..ocp).step_by(16) {
        let mut i = 0;
        while i + 1 < n {
            let [p, q] = patch16x2(wp, src, bias, ocp, i, i + 1, o0);
            for (b, (vp, vq)) in p.into_iter().zip(q).enumerate() {
                store4(out, i * ocp + o0 + 4 * b, vp);
                store4(out, (i + 1) * ocp + o0 + 4 * b, vq);
            }
            i += 2;
        }
        if i < n {
            for (b, v) in patch16(wp, src, bias, ocp, i, o0).into_iter().enumerate() {
                store4(out, i * ocp + o0 + 4 * b, v);
            }
        }
    }
}

#[target_feature(enable = "simd128")]
fn gemm_u8i8_max(wp: &[i8], src: &Patches<'_>, bias: &[i32], pmax: &mut [i32]) {
    let ocp = pmax.len();
    if !packed_args_ok(wp, src, bias, ocp) {
        return scalar::gemm_u8i8_max(wp, src, bias, pmax);
    }
    for o0 in (0..ocp).step_by(16) {
        let low = i32x4_splat(i32::MIN);
        let (mut m0, mut m1, mut m2, mut m3) = (
            load16(pmax, o0).unwrap_or(low),
            load16(pmax, o0 + 4).unwrap_or(low),
            load16(pmax, o0 + 8).unwrap_or(low),
            load16(pmax, o0 + 12).unwrap_or(low),
        );
        let n = src.starts.len();
        let mut i = 0;
        while i + 1 < n {
            let [[p0, p1, p2, p3], [q0, q1, q2, q3]] = patch16x2(wp, src, bias, ocp, i, i + 1, o0);
            (m0, m1, m2, m3) = (i32x4_max(m0, p0), i32x4_max(m1, p1), i32x4_max(m2, p2), i32x4_max(m3, p3));
            (m0, m1, m2, m3) = (i32x4_max(m0, q0), i32x4_max(m1, q1), i32x4_max(m2, q2), i32x4_max(m3, q3));
            i += 2;
        }
        if i < n {
            let [s0, s1, s2, s3] = patch16(wp, src, bias, ocp, i, o0);
            (m0, m1, m2, m3) = (i32x4_max(m0, s0), i32x4_max(m1, s1), i32x4_max(m2, s2), i32x4_max(m3, s3));
        }
        for (b, v) in [m0, m1, m2, m3].into_iter().enumerate() {
            store4(pmax, o0 + 4 * b, v);
        }
    }
}
