//! AVX2 kernels (x86_64).
//!
//! Exactness: bytes are sign-extended to i16 (`vpmovsxbw`) and multiplied with `vpmaddwd`, whose
//! pair sums are at most 2 * 128 * 128 = 32768 in magnitude, exact in i32; accumulation is wrapping
//! i32 like the reference. (`vpmaddubsw` would be cheaper but saturates its i16 pair sums.)
//!
//! Shape: 8 (then 4, then 1) weight rows per pass share each sign-extended 16-byte piece of `x`
//! (the conv layers' output channels: conv2 of the MNIST model is 64 rows of 800). A `k % 16`
//! tail re-reads the last 16 bytes of `x` and of each row with the already-counted lanes of `x`
//! zeroed (`TAIL_MASK`), so no read leaves the row. Requantization runs 8 channels per step.
//!
//! The packed conv path (`gemm_u8i8`, see [`gemm_avx2`]) takes the same `vpmaddwd` route on
//! unsigned activations: `vpmovzxbw` of a broadcast quad gives `x` in [0, 255] as i16, `vpmovsxbw`
//! of 4 channels' weight quads gives `w` in [-128, 127], and each i32 lane gets
//! `x0 w0 + x1 w1` with |x w| <= 255 * 128 = 32640, so |pair| <= 65280: exact in i32 for every
//! byte value, with no bound on the weights (`vpmaddubsw` would saturate: 2 * 255 * 128 > 32767).
//!
//! `matvec_i8_sym` (weights in [-127, 127]) multiplies 32 bytes per instruction with
//! `vpmaddubsw`: unsigned `|x|` (at most 128) times signed `w * sign(x)` (`vpsignb`, at most 127 in
//! magnitude because w != -128), so each i16 pair sum is at most 2 * 128 * 127 = 32512 and never
//! saturates; `vpmaddwd` with ones widens the pairs to i32. Per 32 bytes of a row that is 4
//! instructions against the i16 path's 6.

use core::arch::x86_64::*;

use crate::kernels::{Kernels, PACK_OC, Patches, Requant, scalar};

/// Private: reachable only through the functions below, which establish AVX2 support.
static AVX2: Kernels = Kernels {
    name: "avx2",
    conv_packed: true,
    matvec_i8,
    matvec_i8_sym,
    matvec_pairs_i16,
    matvec4_i8: None,
    gemm_u8i8,
    gemm_u8i8_max,
    row_sums_i8,
    requantize_i32,
    requantize_rows,
};

/// The AVX2 table; compiled only when the target guarantees AVX2.
#[cfg(target_feature = "avx2")]
pub fn avx2() -> &'static Kernels {
    &AVX2
}

/// The AVX2 table without a check.
///
/// # Safety
/// The CPU running any of the table's functions must support AVX2.
pub unsafe fn avx2_unchecked() -> &'static Kernels {
    &AVX2
}

/// The AVX2 table if the running CPU supports AVX2.
#[cfg(feature = "std")]
pub fn detect_avx2() -> Option<&'static Kernels> {
    if std::is_x86_feature_detected!("avx2") { Some(&AVX2) } else { None }
}

fn matvec_i8(w: &[i8], x: &[i8], out: &mut [i32]) {
    // SAFETY: this function is only reachable through `AVX2` and `avx512_vnni::AVX512_VNNI`, which
    // are only handed out when the CPU supports AVX2 (compile-time feature, runtime detection,
    // or the caller's promise; the AVX-512 table requires AVX2 too).
    unsafe { matvec_avx2(w, x, out) }
}

fn gemm_u8i8(wp: &[i8], src: &Patches<'_>, bias: &[i32], out: &mut [i32]) {
    // SAFETY: as in `matvec_i8`.
    unsafe { gemm_avx2::<false>(wp, src, bias, out) }
}

fn gemm_u8i8_max(wp: &[i8], src: &Patches<'_>, bias: &[i32], pmax: &mut [i32]) {
    // SAFETY: as in `matvec_i8`.
    unsafe { gemm_avx2::<true>(wp, src, bias, pmax) }
}

fn matvec_i8_sym(w: &[i8], x: &[i8], out: &mut [i32]) {
    // SAFETY: as in `matvec_i8`.
    unsafe { matvec_sym_avx2(w, x, out) }
}

pub(super) fn matvec_pairs_i16(wt: &[i32], xp: &[i32], out: &mut [i32]) {
    // SAFETY: as in `matvec_i8`.
    unsafe { matvec_pairs_avx2(wt, xp, out) }
}

pub(super) fn row_sums_i8(w: &[i8], k_len: usize, out: &mut [i32]) {
    // SAFETY: as in `matvec_i8`.
    unsafe { row_sums_avx2(w, k_len, out) }
}

fn requantize_rows(acc: &mut [i32], stride: usize, channels: usize, q: &Requant<'_>) {
    scalar::rows_with(requantize_i32, acc, stride, channels, q);
}

pub(super) fn requantize_i32(acc: &mut [i32], q: &Requant<'_>) {
    // SAFETY: as in `matvec_i8`.
    unsafe { requant_avx2(acc, q) }
}

/// Row sums with `vpsadbw`: bytes XOR 0x80 are `w + 128` as u8, summed exactly into u64 lanes;
/// the result is `sum(w + 128) - 128 * k`, wrapped to i32 like the reference.
///
/// # Safety
/// AVX2 must be available. (Any slice lengths are memory-safe: a broken contract takes the
/// scalar path.)
#[target_feature(enable = "avx2")]
unsafe fn row_sums_avx2(w: &[i8], k_len: usize, out: &mut [i32]) {
    if k_len == 0 || out.len().checked_mul(k_len) != Some(w.len()) {
        return scalar::row_sums_i8(w, k_len, out);
    }
    let k32 = k_len - k_len % 32;
    let flip = _mm256_set1_epi8(-128);
    for (o, row) in out.iter_mut().zip(w.chunks_exact(k_len)) {
        let mut acc = _mm256_setzero_si256();
        let mut kk = 0;
        while kk < k32 {
            // SAFETY: kk + 32 <= k32 <= row.len().
            let v = unsafe { _mm256_loadu_si256(row.as_ptr().add(kk).cast()) };
            acc = _mm256_add_epi64(acc, _mm256_sad_epu8(_mm256_xor_si256(v, flip), _mm256_setzero_si256()));
            kk += 32;
        }
        let s = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256::<1>(acc));
        let s = _mm_add_epi64(s, _mm_unpackhi_epi64(s, s));
        // Sums of u8 fit easily in i64; only the low 32 bits matter (wrapping).
        let biased = (_mm_cvtsi128_si64(s) as i32).wrapping_sub((k32 as i32).wrapping_mul(128));
        let tail = row[k32..].iter().fold(0i32, |a, &v| a.wrapping_add(v as i32));
        *o = biased.wrapping_add(tail);
    }
}

/// Eight lanes of [`crate::requant::requantize`], step for step:
/// saturating left shift (shift < 0), SRDHM as `(x * M + 2^30) >> 31` on exact i64 products
/// (even and odd lanes separately: `vpmuldq` multiplies the low i32 of each i64), rounding right
/// shift with ties away from zero (shift > 0), then zero point and clamp.
///
/// # Safety
/// AVX2 must be available. (Parameters shorter than `acc` or out of range take the scalar
/// path.)
#[target_feature(enable = "avx2")]
unsafe fn requant_avx2(acc: &mut [i32], q: &Requant<'_>) {
    let n = acc.len();
    // Outside the documented ranges the reference defines the result; use it.
    let ranges_ok = (-128..=127).contains(&q.zp_out) && (-128..=127).contains(&q.lo);
    if !ranges_ok || q.multiplier.len() / 4 < n || q.shift.len() / 4 < n {
        return scalar::requantize_i32(acc, q);
    }
    let n8 = n - n % 8;
    let one = _mm256_set1_epi32(1);
    let nudge = _mm256_set1_epi64x(1 << 30);
    let (zp, lo, hi) = (_mm256_set1_epi32(q.zp_out), _mm256_set1_epi32(q.lo), _mm256_set1_epi32(127));
    let mut i = 0;
    while i < n8 {
        // SAFETY: i + 8 <= n8 <= n: inside `acc`, and inside `multiplier`/`shift`, which hold at
        // least 4 * n bytes (checked above); unaligned loads/stores.
        let (a, m, s) = unsafe {
            (
                _mm256_loadu_si256(acc.as_ptr().add(i).cast()),
                _mm256_loadu_si256(q.multiplier.as_ptr().add(4 * i).cast()),
                _mm256_loadu_si256(q.shift.as_ptr().add(4 * i).cast()),
            )
        };
        let s = _mm256_max_epi32(_mm256_min_epi32(s, _mm256_set1_epi32(31)), _mm256_set1_epi32(-31));
        let left = _mm256_max_epi32(_mm256_sub_epi32(_mm256_setzero_si256(), s), _mm256_setzero_si256());
        let right = _mm256_max_epi32(s, _mm256_setzero_si256());
        // x = clamp(a * 2^left): the shift is exact iff shifting back restores `a`.
        let shl = _mm256_sllv_epi32(a, left);
        let exact = _mm256_cmpeq_epi32(_mm256_srav_epi32(shl, left), a);
        let sat = _mm256_xor_si256(_mm256_srai_epi32::<31>(a), _mm256_set1_epi32(i32::MAX));
        let x = _mm256_blendv_epi8(sat, shl, exact);
        // y = (x * M + 2^30) >> 31; the result fits i32, so the low 32 bits of a logical shift
        // of the (exact) i64 are right. Even lanes shift down by 31, odd lanes up by 1.
        let pe = _mm256_add_epi64(_mm256_mul_epi32(x, m), nudge);
        let po = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64::<32>(x), _mm256_srli_epi64::<32>(m)), nudge);
        let y = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<31>(pe), _mm256_slli_epi64::<1>(po));
        // The reference saturates i32::MIN * i32::MIN (only reachable with an invalid M).
        let min = _mm256_set1_epi32(i32::MIN);
        let both_min = _mm256_and_si256(_mm256_cmpeq_epi32(x, min), _mm256_cmpeq_epi32(m, min));
        let y = _mm256_blendv_epi8(y, _mm256_set1_epi32(i32::MAX), both_min);
        // z = rdbpot(y, right): (y >> e) + (remainder > (mask >> 1) + (y < 0)).
        let mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
        let rem = _mm256_and_si256(y, mask);
        let thr = _mm256_add_epi32(_mm256_srli_epi32::<1>(mask), _mm256_srli_epi32::<31>(y));
        let z = _mm256_sub_epi32(_mm256_srav_epi32(y, right), _mm256_cmpgt_epi32(rem, thr));
        // clamp(zp + z, lo, 127); pre-clamping z to +-512 keeps the add exact and changes
        // nothing after the final clamp (zp and lo are in [-128, 127]).
        let z = _mm256_max_epi32(_mm256_min_epi32(z, _mm256_set1_epi32(512)), _mm256_set1_epi32(-512));
        let r = _mm256_max_epi32(_mm256_min_epi32(_mm256_add_epi32(z, zp), hi), lo);
        // SAFETY: as for the loads.
        unsafe { _mm256_storeu_si256(acc.as_mut_ptr().add(i).cast(), r) };
        i += 8;
    }
    if let Some(rest) = acc.get_mut(n8..) {
        for (o, a) in rest.iter_mut().enumerate() {
            let c = n8 + o;
            let (m, s) = (crate::bytes::le_i32(q.multiplier, c), crate::bytes::le_i32(q.shift, c));
            *a = crate::requant::requantize(*a, m, s, q.zp_out, q.lo) as i32;
        }
    }
}

/// Sign-extends 16 bytes at `p` to 16 i16 lanes.
///
/// # Safety
/// `p` must be valid for reading 16 bytes; AVX2 must be available.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load16(p: *const i8) -> __m256i {
    // SAFETY: the caller guarantees 16 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm256_cvtepi8_epi16(_mm_loadu_si128(p.cast())) }
}

/// See [`Kernels::matvec_i8`].
///
/// # Safety
/// AVX2 must be available. (Any slice lengths are memory-safe: a broken contract takes the
/// scalar path.)
#[target_feature(enable = "avx2")]
unsafe fn matvec_avx2(w: &[i8], x: &[i8], out: &mut [i32]) {
    let k = x.len();
    let rows = out.len();
    // Everything below reads `w` only inside `rows * k` bytes; a broken contract takes the safe
    // path instead of reading out of bounds. Rows shorter than one vector are rare (tiny
    // layers) and take it too.
    if k < 16 || rows.checked_mul(k) != Some(w.len()) {
        return scalar::matvec_i8(w, x, out);
    }
    let k16 = k - k % 16;
    // Tail: the last 16 bytes of `x`, the first `16 - k % 16` of them (already counted) zeroed.
    let xt = (k16 < k).then(|| {
        // SAFETY: k >= 16, so x[k - 16..k] is in bounds; TAIL_MASK[rem..rem + 16] with rem < 16.
        unsafe {
            let v = _mm_loadu_si128(x.as_ptr().add(k - 16).cast());
            let m = _mm_loadu_si128(crate::kernels::TAIL_MASK.as_ptr().add(k - k16).cast());
            _mm256_cvtepi8_epi16(_mm_and_si128(v, m))
        }
    });
    let mut r = 0;
    while r + 8 <= rows {
        // SAFETY: rows r..r+8 exist (`r + 8 <= rows`) and `w.len() == rows * k` (checked above);
        // `x` holds `k >= 16` bytes; AVX2 is this function's own precondition.
        let a = unsafe { dot_rows::<8>(w.as_ptr().add(r * k), k, x.as_ptr(), k16, xt) };
        let s = hsum8(a);
        // SAFETY: out[r..r+8] is in bounds (`r + 8 <= rows == out.len()`); storeu is unaligned.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(r).cast(), s) };
        r += 8;
    }
    while r + 4 <= rows {
        // SAFETY: as above with 4 rows.
        let a = unsafe { dot_rows::<4>(w.as_ptr().add(r * k), k, x.as_ptr(), k16, xt) };
        let s = hsum4(a);
        // SAFETY: out[r..r+4] is in bounds.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().add(r).cast(), s) };
        r += 4;
    }
    while r < rows {
        // SAFETY: as above with 1 row.
        let a = unsafe { dot_rows::<1>(w.as_ptr().add(r * k), k, x.as_ptr(), k16, xt) };
        out[r] = _mm_cvtsi128_si32(hsum1(a[0]));
        r += 1;
    }
}

/// See [`Kernels::matvec_i8_sym`].
///
/// # Safety
/// AVX2 must be available. (Any slice lengths are memory-safe: rows shorter than 32 bytes or a
/// broken contract take [`matvec_avx2`], exact for every weight.)
#[target_feature(enable = "avx2")]
unsafe fn matvec_sym_avx2(w: &[i8], x: &[i8], out: &mut [i32]) {
    let k = x.len();
    let rows = out.len();
    if k < 32 || rows.checked_mul(k) != Some(w.len()) {
        // SAFETY: AVX2 is this function's own precondition.
        return unsafe { matvec_avx2(w, x, out) };
    }
    let k32 = k - k % 32;
    // Tail: the last 32 bytes of `x`, the first `32 - k % 32` of them (already counted) zeroed;
    // |0| = 0 and sign(w, 0) = 0, so those lanes add nothing.
    let xt = (k32 < k).then(|| {
        // SAFETY: k >= 32, so x[k - 32..k] is in bounds; TAIL_MASK32[rem..rem + 32], rem < 32.
        unsafe {
            let v = _mm256_loadu_si256(x.as_ptr().add(k - 32).cast());
            let m = _mm256_loadu_si256(crate::kernels::TAIL_MASK32.as_ptr().add(k - k32).cast());
            _mm256_and_si256(v, m)
        }
    });
    let mut r = 0;
    while r + 8 <= rows {
        // SAFETY: rows r..r+8 exist (`r + 8 <= rows`) and `w.len() == rows * k` (checked above);
        // `x` holds `k >= 32` bytes; AVX2 is this function's own precondition.
        let a = unsafe { dot_rows_sym::<8>(w.as_ptr().add(r * k), k, x.as_ptr(), k32, xt) };
        let s = hsum8(a);
        // SAFETY: out[r..r+8] is in bounds (`r + 8 <= rows == out.len()`); storeu is unaligned.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(r).cast(), s) };
        r += 8;
    }
    while r + 4 <= rows {
        // SAFETY: as above with 4 rows.
        let a = unsafe { dot_rows_sym::<4>(w.as_ptr().add(r * k), k, x.as_ptr(), k32, xt) };
        let s = hsum4(a);
        // SAFETY: out[r..r+4] is in bounds.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().add(r).cast(), s) };
        r += 4;
    }
    while r < rows {
        // SAFETY: as above with 1 row.
        let a = unsafe { dot_rows_sym::<1>(w.as_ptr().add(r * k), k, x.as_ptr(), k32, xt) };
        out[r] = _mm_cvtsi128_si32(hsum1(a[0]));
        r += 1;
    }
}

/// `acc + x . w` over 32 bytes, `ax = |x|`: exact when no byte of `w` is -128 (module docs).
#[inline]
#[target_feature(enable = "avx2")]
fn step_sym(acc: __m256i, ax: __m256i, x: __m256i, w: __m256i) -> __m256i {
    let pairs = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(w, x));
    _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
}

/// [`dot_rows`] for `matvec_i8_sym`, 32 bytes per step; `xt` is the masked tail of `x` (None
/// when `k32 == k`).
///
/// # Safety
/// `w` valid for `R * k` bytes, `x` for `k`; `32 <= k`, `k32 = k - k % 32`; AVX2 available.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn dot_rows_sym<const R: usize>(w: *const i8, k: usize, x: *const i8, k32: usize, xt: Option<__m256i>) -> [__m256i; R] {
    let mut acc = [_mm256_setzero_si256(); R];
    let mut kk = 0;
    // Two 32-byte steps per iteration halve the loop and address overhead.
    while kk + 64 <= k32 {
        // SAFETY: kk + 64 <= k32 <= k: inside `x` and inside each row (j * k + kk + 64 <= R * k).
        unsafe {
            let x0 = _mm256_loadu_si256(x.add(kk).cast());
            let x1 = _mm256_loadu_si256(x.add(kk + 32).cast());
            let (a0, a1) = (_mm256_abs_epi8(x0), _mm256_abs_epi8(x1));
            for (j, a) in acc.iter_mut().enumerate() {
                let row = w.add(j * k + kk);
                let w0 = _mm256_loadu_si256(row.cast());
                let w1 = _mm256_loadu_si256(row.add(32).cast());
                *a = step_sym(step_sym(*a, a0, x0, w0), a1, x1, w1);
            }
        }
        kk += 64;
    }
    if kk < k32 {
        // SAFETY: kk + 32 == k32 <= k: inside `x` and inside each row.
        unsafe {
            let xv = _mm256_loadu_si256(x.add(kk).cast());
            let ax = _mm256_abs_epi8(xv);
            for (j, a) in acc.iter_mut().enumerate() {
                let wv = _mm256_loadu_si256(w.add(j * k + kk).cast());
                *a = step_sym(*a, ax, xv, wv);
            }
        }
    }
    if let Some(xt) = xt {
        let ax = _mm256_abs_epi8(xt);
        for (j, a) in acc.iter_mut().enumerate() {
            // SAFETY: the row's last 32 bytes (k >= 32); the bytes already counted meet the
            // zeroed lanes of `xt`.
            let wv = unsafe { _mm256_loadu_si256(w.add(j * k + k - 32).cast()) };
            *a = step_sym(*a, ax, xt, wv);
        }
    }
    acc
}

/// See [`Kernels::matvec_pairs_i16`]: `vpmaddwd` of 8 columns' weight pairs with the broadcast
/// input pair (exact: `vpmaddwd`'s one overflow, (-2^15)^2 * 2, wraps to i32::MIN as the
/// reference's wrapping sum does), 32 columns per pass in 4 accumulators.
///
/// # Safety
/// AVX2 must be available. (Any slice lengths are memory-safe: a broken contract takes the
/// scalar path.)
#[target_feature(enable = "avx2")]
unsafe fn matvec_pairs_avx2(wt: &[i32], xp: &[i32], out: &mut [i32]) {
    let n = out.len();
    if xp.len().checked_mul(n) != Some(wt.len()) {
        return scalar::matvec_pairs_i16(wt, xp, out);
    }
    let mut j = 0;
    while j + 32 <= n {
        let mut acc = [_mm256_setzero_si256(); 4];
        for (p, &x) in xp.iter().enumerate() {
            let xv = _mm256_set1_epi32(x);
            for (g, a) in acc.iter_mut().enumerate() {
                // SAFETY: p * n + j + 8 * g + 8 <= p * n + n <= wt.len() (p < xp.len()).
                let wv = unsafe { _mm256_loadu_si256(wt.as_ptr().add(p * n + j + 8 * g).cast()) };
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(wv, xv));
            }
        }
        for (g, a) in acc.iter().enumerate() {
            // SAFETY: j + 8 * g + 8 <= j + 32 <= n == out.len().
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(j + 8 * g).cast(), *a) };
        }
        j += 32;
    }
    while j + 8 <= n {
        let mut acc = _mm256_setzero_si256();
        for (p, &x) in xp.iter().enumerate() {
            // SAFETY: j + 8 <= n, so inside row p of `wt`.
            let wv = unsafe { _mm256_loadu_si256(wt.as_ptr().add(p * n + j).cast()) };
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(wv, _mm256_set1_epi32(x)));
        }
        // SAFETY: j + 8 <= n == out.len().
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(j).cast(), acc) };
        j += 8;
    }
    // Fewer than 8 columns left: the reference's formula, column by column.
    for (jj, o) in out.iter_mut().enumerate().skip(j) {
        *o = xp.iter().enumerate().fold(0i32, |s, (p, &x)| {
            let w = wt[p * n + jj];
            let (w0, w1, x0, x1) = (w as i16 as i32, (w >> 16) as i16 as i32, x as i16 as i32, (x >> 16) as i16 as i32);
            s.wrapping_add((w0 * x0).wrapping_add(w1 * x1))
        });
    }
}

/// Per-row i32x8 partial sums of the `R` rows of length `k` starting at `w`, dotted with `x`;
/// `xt` is the masked, sign-extended tail of `x` (None when `k16 == k`).
///
/// # Safety
/// `w` valid for `R * k` bytes, `x` for `k`; `16 <= k`, `k16 = k - k % 16`; AVX2 available.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn dot_rows<const R: usize>(w: *const i8, k: usize, x: *const i8, k16: usize, xt: Option<__m256i>) -> [__m256i; R] {
    let mut acc = [_mm256_setzero_si256(); R];
    // SAFETY: j * k < R * k for j < R.
    let rows: [*const i8; R] = core::array::from_fn(|j| unsafe { w.add(j * k) });
    let mut kk = 0;
    // Two 16-byte steps per iteration halve the loop overhead.
    while kk + 32 <= k16 {
        // SAFETY: kk + 32 <= k16 <= k: inside `x` and inside each row.
        unsafe {
            let x0 = load16(x.add(kk));
            let x1 = load16(x.add(kk + 16));
            for j in 0..R {
                let p0 = _mm256_madd_epi16(x0, load16(rows[j].add(kk)));
                let p1 = _mm256_madd_epi16(x1, load16(rows[j].add(kk + 16)));
                acc[j] = _mm256_add_epi32(acc[j], _mm256_add_epi32(p0, p1));
            }
        }
        kk += 32;
    }
    if kk < k16 {
        // SAFETY: kk + 16 == k16 <= k: inside `x` and inside each row.
        unsafe {
            let xv = load16(x.add(kk));
            for j in 0..R {
                acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(xv, load16(rows[j].add(kk))));
            }
        }
    }
    if let Some(xt) = xt {
        for j in 0..R {
            // SAFETY: the row's last 16 bytes (k >= 16); the bytes already counted meet the
            // zeroed lanes of `xt`.
            let wv = unsafe { load16(rows[j].add(k - 16)) };
            acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(xt, wv));
        }
    }
    acc
}

/// Lane j of the result = wrapping sum of the 8 lanes of `a[j]`.
#[inline]
#[target_feature(enable = "avx2")]
fn hsum8(a: [__m256i; 8]) -> __m256i {
    // hadd(hadd(a0,a1), hadd(a2,a3)) = [a0..a3 low-half sums | a0..a3 high-half sums].
    let h0123 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
    let h4567 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]), _mm256_hadd_epi32(a[6], a[7]));
    let lo = _mm256_permute2x128_si256::<0x20>(h0123, h4567);
    let hi = _mm256_permute2x128_si256::<0x31>(h0123, h4567);
    _mm256_add_epi32(lo, hi)
}

#[inline]
#[target_feature(enable = "avx2")]
fn hsum4(a: [__m256i; 4]) -> __m128i {
    let h = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
    _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h))
}

/// Lane 0 of the result = wrapping sum of the 8 lanes of `a`.
#[inline]
#[target_feature(enable = "avx2")]
fn hsum1(a: __m256i) -> __m128i {
    let s = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256::<1>(a));
    let s = _mm_hadd_epi32(s, s);
    _mm_hadd_epi32(s, s)
}

/// See [`Kernels::gemm_u8i8`] (`MAX = false`; `out` holds `n * ocp` values) and
/// [`Kernels::gemm_u8i8_max`] (`MAX = true`; `out` is `pmax`, `ocp` values). Channels in lanes as
/// in the VNNI kernel, but 4 per register: a `vpmovsxbw` of 16 bytes of a quad row is 4
/// channels' quads as i16, and `vpmaddwd` with the patch's quad (zero-extended, repeated) leaves
/// each channel's sum in two adjacent i32 lanes, added once per block (`vphaddd`). Blocks of up
/// to 2 patches x 24 channels: 12 accumulators, the 2 patches' quads and one weight register
/// fill the 16 ymm registers.
///
/// # Safety
/// AVX2 must be available. (Any lengths are memory-safe: a broken contract takes the scalar
/// path.)
#[target_feature(enable = "avx2")]
unsafe fn gemm_avx2<const MAX: bool>(wp: &[i8], src: &Patches<'_>, bias: &[i32], out: &mut [i32]) {
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
        let np = (n - i).min(PATCHES);
        let mut o = 0;
        while o < ocp {
            // Registers of 4 channels: blocks of 24 channels, and of 16 to end on a multiple of
            // 16 (ocp and so ocp - o are multiples of 8: 8 left takes a block of 2 registers).
            let rem = ocp - o;
            let v = if rem == 16 || rem == 32 {
                4
            } else if rem >= 24 {
                6
            } else {
                2
            };
            // SAFETY: patches i..i + np exist (np <= n - i) and lie inside `xu` (`in_bounds`);
            // channels o..o + 4 * v <= ocp; `wp` holds rows * seg * ocp bytes, `bias` ocp values,
            // `out` n * ocp (or ocp with MAX); AVX2 is this function's precondition.
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
                    (2, 6) => block::<2, 6, MAX>(args),
                    (2, 4) => block::<2, 4, MAX>(args),
                    (2, _) => block::<2, 2, MAX>(args),
                    (_, 6) => block::<1, 6, MAX>(args),
                    (_, 4) => block::<1, 4, MAX>(args),
                    (_, _) => block::<1, 2, MAX>(args),
                }
            }
            o += 4 * v;
        }
        i += np;
    }
}

/// Patches per register block of [`gemm_avx2`].
const PATCHES: usize = 2;

/// One register block of [`gemm_avx2`]: the `P` patches whose starts are at `starts`, channels
/// `o..o + 4 * V`; `out` points at the first of those patches' output rows (`pmax` with MAX).
type Block = super::PackedBlock;

/// # Safety
/// `starts` valid for `P` offsets whose patches lie inside `xu`; `wp` valid for
/// `rows * seg * ocp` bytes, `bias` for `ocp` i32s, `out` for `P * ocp` i32s (`ocp` with
/// `MAX`); `seg % 4 == 0`, `V` even, `o + 4 * V <= ocp`; AVX2 available.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn block<const P: usize, const V: usize, const MAX: bool>(b: Block) {
    // acc[v][p]: channels o + 4v..o + 4v + 4 of patch p, each in two adjacent lanes.
    let mut acc = [[_mm256_setzero_si256(); P]; V];
    // SAFETY: P offsets at `starts`.
    let base: [*const u8; P] = core::array::from_fn(|p| unsafe { b.xu.add(*b.starts.add(p)) });
    let quads = b.seg / 4;
    // SAFETY: channel o's first quad; the loop below stays inside `wp` (see there).
    let mut wrow = unsafe { b.wp.add(b.o * 4) };
    for r in 0..b.rows {
        for q in 0..quads {
            // SAFETY: byte 4q + 3 < seg of segment r of each patch lies inside `xu` (the
            // patches are in bounds); quad (r * quads + q) of channels o..o + 4V lies inside `wp`
            // (`wrow` walks those quads in order, ocp * 4 bytes apart).
            unsafe {
                // Each patch's quad as i16, repeated: [x0 x1 x2 x3] x 4.
                let xq: [__m256i; P] = core::array::from_fn(|p| {
                    let quad = core::ptr::read_unaligned(base[p].add(r * b.row_stride + 4 * q).cast::<i32>());
                    _mm256_cvtepu8_epi16(_mm_set1_epi32(quad))
                });
                for (v, accv) in acc.iter_mut().enumerate() {
                    let w = _mm256_cvtepi8_epi16(_mm_loadu_si128(wrow.add(16 * v).cast()));
                    for (a, x) in accv.iter_mut().zip(&xq) {
                        *a = _mm256_add_epi32(*a, _mm256_madd_epi16(w, *x));
                    }
                }
                wrow = wrow.add(b.ocp * 4);
            }
        }
    }
    for (v, pair) in acc.chunks_exact(2).enumerate() {
        let c = b.o + 8 * v;
        for (p, (lo, hi)) in pair[0].iter().zip(&pair[1]).enumerate() {
            // Lanes (2c, 2c + 1) of a register hold one of its 4 channels: pairwise sums of
            // the two registers give [c0 c1 c4 c5 | c2 c3 c6 c7], reordered to c0..c7.
            let sums = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_hadd_epi32(*lo, *hi));
            // SAFETY: channels c..c + 8 <= o + 4V <= ocp of `bias`, and of output row p (or
            // of `pmax`).
            unsafe {
                let y = _mm256_add_epi32(sums, _mm256_loadu_si256(b.bias.add(c).cast()));
                if MAX {
                    let dst = b.out.add(c);
                    _mm256_storeu_si256(dst.cast(), _mm256_max_epi32(_mm256_loadu_si256(dst.cast()), y));
                } else {
                    _mm256_storeu_si256(b.out.add(p * b.ocp + c).cast(), y);
                }
            }
        }
    }
}
