//! NEON kernels (aarch64), with and without the dot-product extension (SDOT).
//!
//! Exactness: the plain table multiplies bytes to exact i16 products (`smull`, |p| <= 16384) and
//! widens them pairwise into i32 (`sadalp`); never two products summed in i16, since
//! (-128)(-128) * 2 = 32768 overflows, except in `matvec_i8_sym`, whose weights exclude -128. SDOT sums four exact products into each i32 lane.
//! Accumulation is wrapping i32 like the reference.
//!
//! Shape: 4 weight rows per pass share each 16-byte piece of `x`; the `k % 16` tail works as in
//! the AVX2 kernels (the last 16 bytes of `x` and of each row, counted lanes of `x` zeroed).
//! Requantization: `requant` (gemmlowp's steps as NEON instructions).

use core::arch::aarch64::*;
use core::arch::asm;

use super::{dotprod, requant, widen};
use crate::kernels::{Kernels, scalar};

/// NEON is part of every little-endian aarch64 Rust target that compiles this module
/// (`cfg(target_feature = "neon")` in `mod.rs`), so this table is always usable.
static NEON: Kernels = Kernels {
    name: "neon",
    conv_packed: true,
    matvec_i8: matvec_neon,
    matvec_i8_sym: matvec_neon_sym,
    // The reference: LLVM vectorizes its column loop with NEON; conv1-sized work.
    matvec_pairs_i16: scalar::matvec_pairs_i16,
    matvec4_i8: None,
    gemm_u8i8: widen::gemm_u8i8,
    gemm_u8i8_max: widen::gemm_u8i8_max,
    // The reference: LLVM vectorizes it with NEON (baseline), and it runs once per layer.
    row_sums_i8: scalar::row_sums_i8,
    requantize_i32: requant::requantize_i32,
    requantize_rows: requant::requantize_rows,
};

/// Private: reachable only through the functions below, which establish dotprod support.
static NEON_DOTPROD: Kernels = Kernels {
    name: "neon-dotprod",
    conv_packed: true,
    matvec_i8: matvec_dotprod,
    // SDOT sums four exact products per lane whatever the weights: nothing to gain from the bound.
    matvec_i8_sym: matvec_dotprod,
    // The reference: LLVM vectorizes its column loop with NEON; conv1-sized work.
    matvec_pairs_i16: scalar::matvec_pairs_i16,
    matvec4_i8: None,
    gemm_u8i8: dotprod::gemm_u8i8,
    gemm_u8i8_max: dotprod::gemm_u8i8_max,
    // The reference: LLVM vectorizes it with NEON (baseline), and it runs once per layer.
    row_sums_i8: scalar::row_sums_i8,
    requantize_i32: requant::requantize_i32,
    requantize_rows: requant::requantize_rows,
};

/// The plain NEON table (no extension needed).
pub fn neon() -> &'static Kernels {
    &NEON
}

/// The SDOT table; compiled only when the target guarantees the dot-product extension.
#[cfg(target_feature = "dotprod")]
pub fn neon_dotprod() -> &'static Kernels {
    &NEON_DOTPROD
}

/// The SDOT table without a check.
///
/// # Safety
/// The CPU running any of the table's functions must implement FEAT_DotProd.
pub unsafe fn neon_dotprod_unchecked() -> &'static Kernels {
    &NEON_DOTPROD
}

/// The SDOT table if the running CPU has the dot-product extension.
#[cfg(feature = "std")]
pub fn detect_dotprod() -> Option<&'static Kernels> {
    if std::arch::is_aarch64_feature_detected!("dotprod") { Some(&NEON_DOTPROD) } else { None }
}

/// One step of a row's dot product: `acc += x . w` over 16 bytes.
trait Step {
    /// # Safety
    /// The implementation's CPU feature must be available.
    unsafe fn step(acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t;
}

struct Widen;
impl Step for Widen {
    #[inline(always)]
    unsafe fn step(acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
        // SAFETY: register-only NEON intrinsics; NEON is guaranteed by this module's cfg.
        unsafe {
            let lo = vmull_s8(vget_low_s8(x), vget_low_s8(w));
            let hi = vmull_high_s8(x, w);
            vpadalq_s16(vpadalq_s16(acc, lo), hi)
        }
    }
}

/// `Widen` for weights in [-127, 127] (`Kernels::matvec_i8_sym`): two products summed in i16
/// (`smull` + `smlal2`, |sum| <= 2 * 128 * 127 = 32512) before one pairwise widening, a third
/// fewer instructions per 16 bytes.
struct WidenSym;
impl Step for WidenSym {
    #[inline(always)]
    unsafe fn step(acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
        // SAFETY: register-only NEON intrinsics; NEON is guaranteed by this module's cfg.
        unsafe {
            let p = vmlal_high_s8(vmull_s8(vget_low_s8(x), vget_low_s8(w)), x, w);
            vpadalq_s16(acc, p)
        }
    }
}

struct Sdot;
impl Step for Sdot {
    #[inline(always)]
    unsafe fn step(acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
        // SAFETY: the caller guarantees FEAT_DotProd; SDOT only reads/writes these registers.
        unsafe { sdot(acc, x, w) }
    }
}

/// `vdotq_s32` is unstable on our toolchain, hence the instruction itself.
///
/// # Safety
/// The CPU must implement FEAT_DotProd.
#[inline]
#[target_feature(enable = "dotprod")]
unsafe fn sdot(mut acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
    // SAFETY: FEAT_DotProd is enabled for this function (the caller guarantees the CPU has it);
    // the instruction touches only the named vector registers (no memory, no stack, no flags).
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {x:v}.16b, {w:v}.16b",
            acc = inout(vreg) acc,
            x = in(vreg) x,
            w = in(vreg) w,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

fn matvec_neon(w: &[i8], x: &[i8], out: &mut [i32]) {
    // SAFETY: `Widen` needs only NEON, which this module's cfg guarantees.
    unsafe { matvec::<Widen>(w, x, out) }
}

fn matvec_neon_sym(w: &[i8], x: &[i8], out: &mut [i32]) {
    // SAFETY: `WidenSym` needs only NEON, which this module's cfg guarantees.
    unsafe { matvec::<WidenSym>(w, x, out) }
}

fn matvec_dotprod(w: &[i8], x: &[i8], out: &mut [i32]) {
    // SAFETY: only reachable through `NEON_DOTPROD`, handed out only when the CPU has dotprod.
    unsafe { matvec_dotprod_tf(w, x, out) }
}

/// Instantiates the generic kernel with dotprod enabled, so SDOT inlines into the hot loop.
///
/// # Safety
/// The CPU must implement FEAT_DotProd.
#[target_feature(enable = "dotprod")]
unsafe fn matvec_dotprod_tf(w: &[i8], x: &[i8], out: &mut [i32]) {
    // SAFETY: dotprod is available (this function's precondition).
    unsafe { matvec::<Sdot>(w, x, out) }
}

/// # Safety
/// `S`'s CPU feature must be available.
#[inline(always)]
unsafe fn matvec<S: Step>(w: &[i8], x: &[i8], out: &mut [i32]) {
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
    // SAFETY: k >= 16, so x[k - 16..k] is in bounds; TAIL_MASK[rem..rem + 16] with rem < 16.
    let xt = (k16 < k).then(|| unsafe {
        vandq_s8(vld1q_s8(x.as_ptr().add(k - 16)), vld1q_s8(crate::kernels::TAIL_MASK.as_ptr().add(k - k16)))
    });
    let mut r = 0;
    while r + 4 <= rows {
        // SAFETY: rows r..r+4 exist and `w.len() == rows * k`; S's feature per our contract.
        let a = unsafe { dot_rows::<S, 4>(w.as_ptr().add(r * k), k, x.as_ptr(), k16, xt) };
        // SAFETY: register-only NEON (baseline here); out[r..r+4] is in bounds
        // (`r + 4 <= rows == out.len()`).
        unsafe {
            let s = vpaddq_s32(vpaddq_s32(a[0], a[1]), vpaddq_s32(a[2], a[3]));
            vst1q_s32(out.as_mut_ptr().add(r), s);
        }
        r += 4;
    }
    while r < rows {
        // SAFETY: as above with 1 row.
        let a = unsafe { dot_rows::<S, 1>(w.as_ptr().add(r * k), k, x.as_ptr(), k16, xt) };
        // SAFETY: register-only NEON (baseline here).
        out[r] = unsafe { vaddvq_s32(a[0]) };
        r += 1;
    }
}

/// Per-row i32x4 partial sums of the `R` rows of length `k` starting at `w`, dotted with `x`;
/// `xt` is the masked tail of `x` (None when `k16 == k`).
///
/// # Safety
/// `w` valid for `R * k` bytes, `x` for `k`; `16 <= k`, `k16 = k - k % 16`; `S`'s feature
/// available.
#[inline(always)]
unsafe fn dot_rows<S: Step, const R: usize>(
    w: *const i8,
    k: usize,
    x: *const i8,
    k16: usize,
    xt: Option<int8x16_t>,
) -> [int32x4_t; R] {
    // SAFETY: register-only NEON (baseline here).
    let mut acc = [unsafe { vdupq_n_s32(0) }; R];
    // SAFETY: j * k < R * k for j < R.
    let rows: [*const i8; R] = core::array::from_fn(|j| unsafe { w.add(j * k) });
    let mut kk = 0;
    while kk < k16 {
        // SAFETY: kk + 16 <= k16 <= k: inside `x` and inside each row; S's feature per contract.
        unsafe {
            let xv = vld1q_s8(x.add(kk));
            for j in 0..R {
                acc[j] = S::step(acc[j], xv, vld1q_s8(rows[j].add(kk)));
            }
        }
        kk += 16;
    }
    if let Some(xt) = xt {
        for j in 0..R {
            // SAFETY: the row's last 16 bytes (k >= 16), whose already-counted bytes meet the
            // zeroed lanes of `xt`; S's feature per contract.
            acc[j] = unsafe { S::step(acc[j], xt, vld1q_s8(rows[j].add(k - 16))) };
        }
    }
    acc
}
