//! The packed conv path on FEAT_DotProd (`SDOT`, by element), for the `neon-dotprod` table.
//!
//! Shape (as the VNNI kernel, and as XNNPACK's and tract's aarch64 int8 GEMMs): output channels
//! in lanes. A packed weight vector is 16 bytes = 4 channels x one quad of 4 taps, so one
//! `sdot vA.4s, vW.16b, vX.4b[l]` adds quad `l` of a 16-byte piece of a patch (read in place
//! from the channels-last input) to 4 channels. A block keeps up to 4 patches x 16 channels of
//! accumulators in registers; each weight load serves every patch of the block, each 16-byte
//! patch load serves 4 quads x 16 channels. Max pooling happens on the accumulators.
//!
//! # Exactness with signed `SDOT`
//!
//! The contract's activations are unsigned, `u = x + 128` (`x ^ 0x80`), and `SDOT` multiplies
//! signed bytes. The kernel flips them back: `s = u ^ 0x80` reinterpreted as i8 is exactly
//! `u - 128` for every `u` in 0..=255. Then for each channel, in integers,
//! `sum u * w = sum (s + 128) * w = sum s * w + 128 * sum w = sum s * w - sum (-128) * w`.
//! Both sums are `SDOT`s of int8 values (each product exact in i16, four summed exactly into
//! the i32 lane); the first is the patch's, the second (`corr`, the weights dotted with a
//! vector of -128) is the same for every patch of a call, so it costs one `SDOT` per weight
//! vector per block (a quarter of the patches' work with 4 patches). All accumulation wraps
//! mod 2^32, and `bias + acc - corr` mod 2^32 is `bias + sum u * w` mod 2^32: the scalar
//! reference's wrapping result, bit for bit, for every int8 weight (including -128) and every
//! activation byte.

use core::arch::aarch64::*;
use core::arch::asm;

use crate::kernels::{PACK_OC, Patches, scalar};

/// Patches per register block (the engine passes at most this many per call: a 2x2 pool window).
const MAX_P: usize = 4;

/// See [`crate::kernels::Kernels::gemm_u8i8`].
pub(super) fn gemm_u8i8(wp: &[i8], src: &Patches<'_>, bias: &[i32], out: &mut [i32]) {
    // SAFETY: only the `neon-dotprod` table refers to this function, and that table is handed
    // out only where FEAT_DotProd is known (compile time, detection, or the caller's promise).
    unsafe { gemm::<false>(wp, src, bias, out) }
}

/// See [`crate::kernels::Kernels::gemm_u8i8_max`].
pub(super) fn gemm_u8i8_max(wp: &[i8], src: &Patches<'_>, bias: &[i32], pmax: &mut [i32]) {
    // SAFETY: as in `gemm_u8i8`.
    unsafe { gemm::<true>(wp, src, bias, pmax) }
}

/// The checks every packed kernel makes before reading without bounds checks: `Some(ocp)`
/// when the lengths agree with each other and every patch lies inside `xu`.
pub(crate) fn packed_ocp<const MAX: bool>(wp: &[i8], src: &Patches<'_>, bias: &[i32], out: &[i32]) -> Option<usize> {
    let n = src.starts.len();
    if n == 0 || (!MAX && !out.len().is_multiple_of(n)) {
        return None;
    }
    let ocp = if MAX { out.len() } else { out.len() / n };
    let kp = src.rows.checked_mul(src.seg)?.checked_mul(ocp)?;
    let ok = ocp.is_multiple_of(PACK_OC) && src.in_bounds() && kp == wp.len() && bias.len() >= ocp;
    ok.then_some(ocp)
}

/// Blocks of up to 4 patches x 16 channels; `out` is `n * ocp` values, or `pmax` with `MAX`.
///
/// # Safety
/// The CPU must implement FEAT_DotProd. (Any lengths are memory-safe: a broken contract takes
/// the scalar path.)
#[target_feature(enable = "dotprod")]
unsafe fn gemm<const MAX: bool>(wp: &[i8], src: &Patches<'_>, bias: &[i32], out: &mut [i32]) {
    let Some(ocp) = packed_ocp::<MAX>(wp, src, bias, out) else {
        return if MAX { scalar::gemm_u8i8_max(wp, src, bias, out) } else { scalar::gemm_u8i8(wp, src, bias, out) };
    };
    let n = src.starts.len();
    let mut i = 0;
    while i < n {
        let np = (n - i).min(MAX_P);
        let mut o = 0;
        while o < ocp {
            // SAFETY: patches i..i + np exist and lie inside `xu` (`packed_ocp`); channels
            // o..o + 16 <= ocp; `wp` holds rows * seg * ocp bytes, `bias` ocp values, `out`
            // n * ocp (or ocp with MAX); FEAT_DotProd is this function's precondition.
            unsafe {
                let b = Block {
                    wp: wp.as_ptr().add(o * 4),
                    xu: src.xu.as_ptr(),
                    starts: src.starts.as_ptr().add(i),
                    rows: src.rows,
                    row_stride: src.row_stride,
                    seg: src.seg,
                    quad_stride: ocp * 4,
                    bias: bias.as_ptr().add(o),
                    out: if MAX { out.as_mut_ptr().add(o) } else { out.as_mut_ptr().add(i * ocp + o) },
                    out_stride: ocp,
                };
                // Segments shorter than 16 bytes (conv1's) get code without the 16-byte loop:
                // around a loop LLVM copies every accumulator in and out, once per kernel row.
                match (np, src.seg >= 16) {
                    (4, true) => block::<4, MAX, true>(b),
                    (3, true) => block::<3, MAX, true>(b),
                    (2, true) => block::<2, MAX, true>(b),
                    (_, true) => block::<1, MAX, true>(b),
                    (4, false) => block::<4, MAX, false>(b),
                    (3, false) => block::<3, MAX, false>(b),
                    (2, false) => block::<2, MAX, false>(b),
                    (_, false) => block::<1, MAX, false>(b),
                }
            }
            o += PACK_OC;
        }
        i += np;
    }
}

/// One register block: `P` patches x the 16 channels whose first weight quad is at `wp`.
#[derive(Clone, Copy)]
pub(crate) struct Block {
    /// The block's channels' weights of quad 0 (64 bytes); quad `q`'s are `q * quad_stride` on.
    pub wp: *const i8,
    pub xu: *const u8,
    /// `P` patch offsets into `xu`.
    pub starts: *const usize,
    pub rows: usize,
    pub row_stride: usize,
    pub seg: usize,
    pub quad_stride: usize,
    /// The block's 16 start values.
    pub bias: *const i32,
    /// Patch `p`'s 16 outputs at `out + p * out_stride` (with `MAX`: the 16 pooled values).
    pub out: *mut i32,
    pub out_stride: usize,
}

/// # Safety
/// `starts` valid for `P` offsets whose patches (`rows` segments of `seg` bytes, `row_stride`
/// apart) lie inside `xu`; `wp` valid for 64 bytes at each of the `rows * seg / 4` quad
/// offsets; `bias` for 16 i32s; `out` for 16 i32s at each of the `P` rows (1 with `MAX`);
/// `seg % 4 == 0`, and `seg >= 16` if `CHUNKS`; FEAT_DotProd available.
#[inline]
#[target_feature(enable = "dotprod")]
unsafe fn block<const P: usize, const MAX: bool, const CHUNKS: bool>(b: Block) {
    let zero = vdupq_n_s32(0);
    let flip = vdupq_n_u8(0x80);
    let minus128 = vdupq_n_s8(-128);
    let mut acc = [[zero; 4]; P];
    let mut corr = [zero; 4];
    // SAFETY: P offsets at `starts`.
    let base: [*const u8; P] = core::array::from_fn(|p| unsafe { b.xu.add(*b.starts.add(p)) });
    let mut w = b.wp;
    for r in 0..b.rows {
        let mut j = 0;
        // Four quads at a time: one 16-byte load per patch.
        while CHUNKS && j + 16 <= b.seg {
            // SAFETY: bytes j..j + 16 <= seg of segment r of each patch lie inside `xu`.
            let x: [int8x16_t; P] = core::array::from_fn(|p| unsafe {
                vreinterpretq_s8_u8(veorq_u8(vld1q_u8(base[p].add(r * b.row_stride + j)), flip))
            });
            // SAFETY: the next four quads' 64 bytes each lie inside `wp` (the caller's bound);
            // dotprod per our precondition.
            unsafe {
                quad::<P, 0>(&mut acc, &mut corr, &x, w, minus128);
                quad::<P, 1>(&mut acc, &mut corr, &x, w.add(b.quad_stride), minus128);
                quad::<P, 2>(&mut acc, &mut corr, &x, w.add(2 * b.quad_stride), minus128);
                quad::<P, 3>(&mut acc, &mut corr, &x, w.add(3 * b.quad_stride), minus128);
                w = w.add(4 * b.quad_stride);
            }
            j += 16;
        }
        // The segment's last 1..3 quads (conv1's 5-byte rows: 2 quads): two from an 8-byte
        // load, then one from a 4-byte load, never reading past the segment. Straight-line code,
        // so the accumulators stay in their registers (a loop here cost a move per register).
        if b.seg - j >= 8 {
            // SAFETY: bytes j..j + 8 <= seg of segment r lie inside `xu`.
            let x: [int8x16_t; P] = core::array::from_fn(|p| unsafe {
                let v = vld1_u8(base[p].add(r * b.row_stride + j));
                vreinterpretq_s8_u8(vcombine_u8(veor_u8(v, vget_low_u8(flip)), vdup_n_u8(0)))
            });
            // SAFETY: these two quads' 64 bytes each lie inside `wp`; dotprod per our precondition.
            unsafe {
                quad::<P, 0>(&mut acc, &mut corr, &x, w, minus128);
                quad::<P, 1>(&mut acc, &mut corr, &x, w.add(b.quad_stride), minus128);
                w = w.add(2 * b.quad_stride);
            }
            j += 8;
        }
        if j < b.seg {
            // SAFETY: bytes j..j + 4 <= seg (seg % 4 == 0) of segment r lie inside `xu`.
            let x: [int8x16_t; P] = core::array::from_fn(|p| unsafe {
                let q = core::ptr::read_unaligned(base[p].add(r * b.row_stride + j).cast::<u32>());
                vreinterpretq_s8_u8(veorq_u8(vreinterpretq_u8_u32(vdupq_n_u32(q)), flip))
            });
            // SAFETY: this quad's 64 bytes lie inside `wp`; dotprod per our precondition.
            unsafe {
                quad::<P, 0>(&mut acc, &mut corr, &x, w, minus128);
                w = w.add(b.quad_stride);
            }
        }
    }
    // SAFETY: 16 start values at `bias`; the outputs as the caller guarantees.
    unsafe { finish::<P, MAX>(&acc, &corr, b) }
}

/// One quad of every patch (lane `L` of `x`) against the 16 channels' weights at `w`, and the
/// correction sum of those weights.
///
/// # Safety
/// `w` valid for 64 bytes; FEAT_DotProd available.
#[inline]
#[target_feature(enable = "dotprod")]
unsafe fn quad<const P: usize, const L: i32>(
    acc: &mut [[int32x4_t; 4]; P],
    corr: &mut [int32x4_t; 4],
    x: &[int8x16_t; P],
    w: *const i8,
    minus128: int8x16_t,
) {
    // SAFETY: 64 bytes at `w`.
    let wv = unsafe { vld1q_s8_x4(w) };
    let wv = [wv.0, wv.1, wv.2, wv.3];
    for v in 0..4 {
        corr[v] = sdot(corr[v], wv[v], minus128);
        for p in 0..P {
            acc[p][v] = sdot_lane::<L>(acc[p][v], wv[v], x[p]);
        }
    }
}

/// `bias + acc - corr` per patch, stored, or max-reduced into the pooled values.
///
/// # Safety
/// As [`block`]'s outputs and bias.
#[inline(always)]
pub(crate) unsafe fn finish<const P: usize, const MAX: bool>(acc: &[[int32x4_t; 4]; P], corr: &[int32x4_t; 4], b: Block) {
    for v in 0..4 {
        // SAFETY: channels 4v..4v + 4 of the block's 16 (bias and outputs).
        unsafe {
            let start = vsubq_s32(vld1q_s32(b.bias.add(4 * v)), corr[v]);
            if MAX {
                let dst = b.out.add(4 * v);
                let mut m = vld1q_s32(dst);
                for a in acc {
                    m = vmaxq_s32(m, vaddq_s32(start, a[v]));
                }
                vst1q_s32(dst, m);
            } else {
                for (p, a) in acc.iter().enumerate() {
                    vst1q_s32(b.out.add(p * b.out_stride + 4 * v), vaddq_s32(start, a[v]));
                }
            }
        }
    }
}

/// `acc += w . x` per i32 lane (four byte products each): SDOT, full vectors.
#[inline]
#[target_feature(enable = "dotprod")]
fn sdot(mut acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
    // SAFETY: FEAT_DotProd is enabled for this function (its callers guarantee the CPU has it);
    // the instruction touches only the named vector registers (no memory, no stack, no flags).
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {w:v}.16b, {x:v}.16b",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            x = in(vreg) x,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// `acc += w . quad L of x` per i32 lane: SDOT by element (`vdotq_laneq_s32`, unstable here).
#[inline]
#[target_feature(enable = "dotprod")]
fn sdot_lane<const L: i32>(mut acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
    // SAFETY: as in `sdot`; `L` is a lane index 0..=3 (every caller passes a literal).
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {w:v}.16b, {x:v}.4b[{l}]",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            x = in(vreg) x,
            l = const L,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}
