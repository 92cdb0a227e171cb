//! AVX-512 VNNI kernels (x86_64: Intel Ice Lake / Sapphire Rapids and later, AMD Zen 4).
//!
//! `vpdpbusd` multiplies unsigned bytes by signed bytes and adds each group of four products to
//! an i32 lane, wrapping like the reference and never saturating (|4 * 255 * 128| < 2^31), so
//! these kernels are exact for every int8 value, including -128 weights:
//! - the packed conv path ([`crate::kernels::Kernels::gemm_u8i8`]): output channels in lanes, one
//!   broadcast quad of a patch (read in place from the channels-last input) against 16
//!   channels' weight quads per instruction, up to 4 patches x 64 channels of accumulators in
//!   registers;
//! - `matvec_i8` (dense layers, and conv when the arena is minimal) computes `x . w` as
//!   `(x ^ 0x80) . w - 128 * sum(w)`, both halves by `vpdpbusd`.
//!
//! Requantization runs 16 lanes at a time; row sums and `matvec_pairs_i16` reuse the AVX2
//! kernels (the table requires AVX2 too).

use core::arch::x86_64::*;

use super::avx2;
use crate::kernels::{Kernels, PACK_OC, Patches, Requant, scalar};

/// Private: reachable only through the functions below, which establish the CPU features.
static AVX512_VNNI: Kernels = Kernels {
    name: "avx512-vnni",
    conv_packed: true,
    matvec_i8,
    // Exact for every weight: nothing to gain from the symmetric bound.
    matvec_i8_sym: matvec_i8,
    matvec_pairs_i16: avx2::matvec_pairs_i16,
    matvec4_i8: None,
    gemm_u8i8,
    gemm_u8i8_max,
    row_sums_i8: avx2::row_sums_i8,
    requantize_i32,
    requantize_rows,
};

/// The AVX-512 VNNI table; compiled only when the target guarantees its features.
#[cfg(all(target_feature = "avx2", target_feature = "avx512f", target_feature = "avx512bw", target_feature = "avx512vnni"))]
pub fn avx512_vnni() -> &'static Kernels {
    &AVX512_VNNI
}

/// The AVX-512 VNNI table without a check.
///
/// # Safety
/// The CPU running any of the table's functions must support AVX2, AVX-512F, AVX-512BW and
/// AVX-512 VNNI.
pub unsafe fn avx512_vnni_unchecked() -> &'static Kernels {
    &AVX512_VNNI
}

/// The AVX-512 VNNI table if the running CPU supports AVX2, AVX-512F, AVX-512BW and VNNI.
#[cfg(feature = "std")]
pub fn detect_avx512_vnni() -> Option<&'static Kernels> {
    let ok = std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vnni");
    ok.then_some(&AVX512_VNNI)
}

fn matvec_i8(w: &[i8], x: &[i8], out: &mut [i32]) {
    // SAFETY: this function is only reachable through `AVX512_VNNI`, which is only handed out
    // when the CPU supports its features (compile-time features, runtime detection, or the
    // caller's promise).
    unsafe { matvec_vnni(w, x, out) }
}

fn gemm_u8i8(wp: &[i8], src: &Patches<'_>, bias: &[i32], out: &mut [i32]) {
    // SAFETY: as in `matvec_i8`.
    unsafe { gemm_vnni::<false>(wp, src, bias, out) }
}

fn gemm_u8i8_max(wp: &[i8], src: &Patches<'_>, bias: &[i32], pmax: &mut [i32]) {
    // SAFETY: as in `matvec_i8`.
    unsafe { gemm_vnni::<true>(wp, src, bias, pmax) }
}

fn requantize_i32(acc: &mut [i32], q: &Requant<'_>) {
    let n = acc.len();
    // SAFETY: as in `matvec_i8`.
    unsafe { requant_avx512(acc, n, n, q) }
}

fn requantize_rows(acc: &mut [i32], stride: usize, channels: usize, q: &Requant<'_>) {
    if stride < channels || stride == 0 {
        return;
    }
    // SAFETY: as in `matvec_i8`.
    unsafe { requant_avx512(acc, stride, channels, q) }
}

/// Mask of the first `n` (<= 64) bytes of a 64-byte vector.
#[inline]
fn byte_mask(n: usize) -> __mmask64 {
    if n >= 64 { u64::MAX } else { (1u64 << n) - 1 }
}

/// See [`crate::kernels::Kernels::matvec_i8`]: 4 rows per pass share each 64-byte piece of `x`.
///
/// # Safety
/// The table's CPU features must be available. (Any slice lengths are memory-safe: a broken
/// contract takes the scalar path.)
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
unsafe fn matvec_vnni(w: &[i8], x: &[i8], out: &mut [i32]) {
    let k = x.len();
    let rows = out.len();
    if k == 0 || rows.checked_mul(k) != Some(w.len()) {
        return scalar::matvec_i8(w, x, out);
    }
    let flip = _mm512_set1_epi8(-128);
    let mut r = 0;
    while r < rows {
        let nr = (rows - r).min(4);
        // acc: sum (x + 128) * w; bias: sum 128 * w (both wrapping; their difference is x . w).
        let mut acc = [_mm512_setzero_si512(); 4];
        let mut bias = [_mm512_setzero_si512(); 4];
        let mut kk = 0;
        while kk < k {
            let m = byte_mask(k - kk);
            // SAFETY: the mask covers bytes kk..min(kk + 64, k) of `x` and of each row
            // r + j < rows (row j spans (r + j) * k..(r + j + 1) * k of `w`, `w.len() == rows * k`);
            // masked-off bytes are not read and load as 0.
            unsafe {
                let xu = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, x.as_ptr().add(kk).cast()), flip);
                for j in 0..nr {
                    let wv = _mm512_maskz_loadu_epi8(m, w.as_ptr().add((r + j) * k + kk).cast());
                    acc[j] = _mm512_dpbusd_epi32(acc[j], xu, wv);
                    bias[j] = _mm512_dpbusd_epi32(bias[j], flip, wv);
                }
            }
            kk += 64;
        }
        for j in 0..nr {
            out[r + j] = _mm512_reduce_add_epi32(_mm512_sub_epi32(acc[j], bias[j]));
        }
        r += nr;
    }
}

/// See [`crate::kernels::Kernels::gemm_u8i8`] (`MAX = false`; `out` holds `n * ocp` values) and
/// [`crate::kernels::Kernels::gemm_u8i8_max`] (`MAX = true`; `out` is `pmax`, `ocp` values): blocks of up
/// to 4 patches x 64 channels (16 zmm accumulators, started at `bias`); per quad, the channels'
/// weights are loaded once and each patch's quad is broadcast once.
///
/// # Safety
/// The table's CPU features must be available. (Any lengths are memory-safe: a broken contract
/// takes the scalar path.)
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
unsafe fn gemm_vnni<const MAX: bool>(wp: &[i8], src: &Patches<'_>, bias: &[i32], out: &mut [i32]) {
    let n = src.starts.len();
    let fallback = |out: &mut [i32]| {
        if MAX { scalar::gemm_u8i8_max(wp, src, bias, out) } else { scalar::gemm_u8i8(wp, src, bias, out) }
    };
    if n == 0 || (!MAX && !out.len().is_multiple_of(n)) {
        return fallback(out);
    }
    let ocp = if MAX { out.len() } else { out.len() / n };
    let kp = src.rows.checked_mul(src.seg);
    if ocp % PACK_OC != 0 || !src.in_bounds() || kp.and_then(|k| k.checked_mul(ocp)) != Some(wp.len()) || bias.len() < ocp {
        return fallback(out);
    }
    let mut i = 0;
    while i < n {
        let np = (n - i).min(4);
        let mut o = 0;
        while o < ocp {
            let v = ((ocp - o) / 16).min(4);
            // SAFETY: patches i..i + np exist (np <= n - i) and lie inside `xu` (`in_bounds`);
            // channels o..o + 16 * v <= ocp; `wp` holds rows * seg * ocp bytes, `bias` ocp values,
            // `out` n * ocp (or ocp with MAX); the CPU features are this function's precondition.
            unsafe {
                let args = Block {
                    wp: wp.as_ptr(),
                    xu: src.xu.as_ptr(),
                    starts: src.starts.as_ptr().add(i),
                    rows: src.rows,
                    row_stride: src.row_stride,
                    seg: src.seg,
                    bias: bias.as_ptr(),
                    ocp,
                    o,
                    out: if MAX { out.as_mut_ptr() } else { out.as_mut_ptr().add(i * ocp) },
                };
                match (np, v) {
                    (4, 4) => block::<4, 4, MAX>(args),
                    (4, 3) => block::<4, 3, MAX>(args),
                    (4, 2) => block::<4, 2, MAX>(args),
                    (4, _) => block::<4, 1, MAX>(args),
                    (3, 4) => block::<3, 4, MAX>(args),
                    (3, 3) => block::<3, 3, MAX>(args),
                    (3, 2) => block::<3, 2, MAX>(args),
                    (3, _) => block::<3, 1, MAX>(args),
                    (2, 4) => block::<2, 4, MAX>(args),
                    (2, 3) => block::<2, 3, MAX>(args),
                    (2, 2) => block::<2, 2, MAX>(args),
                    (2, _) => block::<2, 1, MAX>(args),
                    (_, 4) => block::<1, 4, MAX>(args),
                    (_, 3) => block::<1, 3, MAX>(args),
                    (_, 2) => block::<1, 2, MAX>(args),
                    (_, _) => block::<1, 1, MAX>(args),
                }
            }
            o += 16 * v;
        }
        i += np;
    }
}

/// One register block of [`gemm_vnni`]: the `P` patches whose starts are at `starts`, channels
/// `o..o + 16 * V`; `out` points at the first of those patches' output rows (`pmax` with MAX).
type Block = super::PackedBlock;

/// # Safety
/// `starts` valid for `P` offsets whose patches lie inside `xu`; `wp` valid for
/// `rows * seg * ocp` bytes, `bias` for `ocp` i32s, `out` for `P * ocp` i32s (`ocp` with
/// `MAX`); `seg % 4 == 0`, `o + 16 * V <= ocp`; the table's CPU features available.
#[inline]
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
unsafe fn block<const P: usize, const V: usize, const MAX: bool>(b: Block) {
    // SAFETY: channels o..o + 16V of `bias` (o + 16V <= ocp).
    let start: [__m512i; V] = core::array::from_fn(|v| unsafe { _mm512_loadu_si512(b.bias.add(b.o + 16 * v).cast()) });
    let mut acc = [start; P];
    // SAFETY: P offsets at `starts`.
    let base: [*const u8; P] = core::array::from_fn(|p| unsafe { b.xu.add(*b.starts.add(p)) });
    let quads = b.seg / 4;
    let mut wrow = b.wp;
    for r in 0..b.rows {
        for q in 0..quads {
            // SAFETY: quad (r * quads + q) of channels o..o + 16V lies inside `wp` (`wrow` walks
            // those quads in order, ocp * 4 bytes apart); byte 4q + 3 < seg of segment r of each
            // patch lies inside `xu` (the patches are in bounds).
            unsafe {
                let w0 = wrow.add(b.o * 4);
                let wv: [__m512i; V] = core::array::from_fn(|v| _mm512_loadu_si512(w0.add(64 * v).cast()));
                for (accp, &x) in acc.iter_mut().zip(&base) {
                    let quad = core::ptr::read_unaligned(x.add(r * b.row_stride + 4 * q).cast::<i32>());
                    let xb = _mm512_set1_epi32(quad);
                    for (a, w) in accp.iter_mut().zip(&wv) {
                        *a = _mm512_dpbusd_epi32(*a, xb, *w);
                    }
                }
                wrow = wrow.add(b.ocp * 4);
            }
        }
    }
    if MAX {
        for v in 0..V {
            // SAFETY: pmax channels o + 16v..o + 16v + 16 <= ocp.
            unsafe {
                let dst = b.out.add(b.o + 16 * v);
                let mut m = _mm512_loadu_si512(dst.cast());
                for accp in &acc {
                    m = _mm512_max_epi32(m, accp[v]);
                }
                _mm512_storeu_si512(dst.cast(), m);
            }
        }
    } else {
        for (p, accp) in acc.iter().enumerate() {
            for (v, a) in accp.iter().enumerate() {
                // SAFETY: output row p (of P), channels o + 16v..o + 16v + 16 <= ocp.
                unsafe { _mm512_storeu_si512(b.out.add(p * b.ocp + b.o + 16 * v).cast(), *a) };
            }
        }
    }
}

/// Sixteen lanes of [`crate::requant::requantize`], step for step as `avx2::requant_avx2` (whose
/// comments explain each step), with mask registers for the compares and the tails. Rows of
/// `stride` values, channels `0..channels` of each (`stride >= channels >= 1`): the outer loop
/// walks groups of 16 channels and prepares their parameters once, the inner one the rows.
///
/// # Safety
/// The table's CPU features must be available. (Parameters shorter than `channels` or out of
/// range take the scalar path.)
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
unsafe fn requant_avx512(acc: &mut [i32], stride: usize, channels: usize, q: &Requant<'_>) {
    let ranges_ok = (-128..=127).contains(&q.zp_out) && (-128..=127).contains(&q.lo);
    if !ranges_ok || q.multiplier.len() / 4 < channels || q.shift.len() / 4 < channels {
        return scalar::rows_with(scalar::requantize_i32, acc, stride, channels, q);
    }
    let one = _mm512_set1_epi32(1);
    let nudge = _mm512_set1_epi64(1 << 30);
    let (zp, lo, hi) = (_mm512_set1_epi32(q.zp_out), _mm512_set1_epi32(q.lo), _mm512_set1_epi32(127));
    let min = _mm512_set1_epi32(i32::MIN);
    let len = acc.len();
    let mut c0 = 0;
    while c0 < channels {
        let group: __mmask16 = if channels - c0 >= 16 { 0xFFFF } else { (1u16 << (channels - c0)) - 1 };
        // SAFETY: the mask keeps channels c0..min(c0 + 16, channels) of `multiplier`/`shift`,
        // which hold at least 4 * channels bytes (checked above).
        let (m, s) = unsafe {
            (
                _mm512_maskz_loadu_epi32(group, q.multiplier.as_ptr().add(4 * c0).cast()),
                _mm512_maskz_loadu_epi32(group, q.shift.as_ptr().add(4 * c0).cast()),
            )
        };
        let s = _mm512_max_epi32(_mm512_min_epi32(s, _mm512_set1_epi32(31)), _mm512_set1_epi32(-31));
        let left = _mm512_max_epi32(_mm512_sub_epi32(_mm512_setzero_si512(), s), _mm512_setzero_si512());
        let right = _mm512_max_epi32(s, _mm512_setzero_si512());
        let m_min = _mm512_cmpeq_epi32_mask(m, min);
        let mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, right), one);
        let half = _mm512_srli_epi32::<1>(mask);
        let m_odd = _mm512_srli_epi64::<32>(m);
        let mut row = c0;
        while row < len {
            // Lanes of this group inside `acc` (the last row may be partial).
            let k = group & if len - row >= 16 { 0xFFFF } else { (1u16 << (len - row)) - 1 };
            // SAFETY: the mask keeps indices row..min(row + 16, len) of `acc`.
            let a = unsafe { _mm512_maskz_loadu_epi32(k, acc.as_ptr().add(row)) };
            let shl = _mm512_sllv_epi32(a, left);
            let exact = _mm512_cmpeq_epi32_mask(_mm512_srav_epi32(shl, left), a);
            let sat = _mm512_xor_si512(_mm512_srai_epi32::<31>(a), _mm512_set1_epi32(i32::MAX));
            let x = _mm512_mask_blend_epi32(exact, sat, shl);
            let pe = _mm512_add_epi64(_mm512_mul_epi32(x, m), nudge);
            let po = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64::<32>(x), m_odd), nudge);
            let y = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64::<31>(pe), _mm512_slli_epi64::<1>(po));
            let both_min = _mm512_cmpeq_epi32_mask(x, min) & m_min;
            let y = _mm512_mask_mov_epi32(y, both_min, _mm512_set1_epi32(i32::MAX));
            let rem = _mm512_and_si512(y, mask);
            let thr = _mm512_add_epi32(half, _mm512_srli_epi32::<31>(y));
            let shifted = _mm512_srav_epi32(y, right);
            let z = _mm512_mask_add_epi32(shifted, _mm512_cmpgt_epi32_mask(rem, thr), shifted, one);
            let z = _mm512_max_epi32(_mm512_min_epi32(z, _mm512_set1_epi32(512)), _mm512_set1_epi32(-512));
            let r = _mm512_max_epi32(_mm512_min_epi32(_mm512_add_epi32(z, zp), hi), lo);
            // SAFETY: as for the load.
            unsafe { _mm512_mask_storeu_epi32(acc.as_mut_ptr().add(row), k, r) };
            row += stride;
        }
        c0 += 16;
    }
}
