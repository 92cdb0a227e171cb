//! The packed conv path on plain NEON (no dot-product extension), for the `neon` table:
//! `smull` byte products widened pairwise into i32 with `sadalp`, as CMSIS-NN and XNNPACK's
//! pre-dotprod aarch64 int8 kernels do.
//!
//! Layout as in [`super::dotprod`]: a packed weight vector is 4 channels x one quad of 4 taps.
//! A patch's quad is broadcast to all four 32-bit lanes (`dup` from a 16-byte load of four
//! quads); `smull`/`smull2` give the 16 byte products as i16, `sadalp` adds their pairs into i32
//! lanes `(c0 taps 0-1, c0 taps 2-3, c1 ..)`; one `addp` per 4 channels at the end. A block is up to
//! 2 patches x 16 channels (16 accumulators).
//!
//! # Exactness
//!
//! As in `dotprod`: the activations are flipped back to signed, `s = u ^ 0x80 = u - 128`, so
//! `sum u * w = sum s * w + 128 * sum w`. Each product `s * w` is exact in i16
//! (|s * w| <= 128 * 128 = 16384 < 32768) and is widened alone; no two products are summed in
//! i16 (two -128 x -128 products would give 32768). `sum w` per channel is computed once per call
//! and channel group: `sadalp` of byte pairs into i16 (each step adds at most 2 * 128 = 256 in
//! magnitude, so at most [`CORR_FLUSH`] = 127 steps, |sum| <= 32512, before the i16 lanes are
//! widened into i32 with another `sadalp`). Everything wraps mod 2^32, so
//! `bias + acc + (sum w << 7)` is the reference's wrapping result for every int8 weight and byte.

use core::arch::aarch64::*;

use super::dotprod::{Block, finish, packed_ocp};
use crate::kernels::{PACK_OC, Patches, scalar};

/// Patches per register block.
const MAX_P: usize = 2;
/// Quads summed into the i16 correction lanes before they are widened (see the module docs).
const CORR_FLUSH: usize = 127;

/// See [`crate::kernels::Kernels::gemm_u8i8`].
pub(super) fn gemm_u8i8(wp: &[i8], src: &Patches<'_>, bias: &[i32], out: &mut [i32]) {
    // SAFETY: NEON is part of every target that compiles this module (`cfg` in kernels/mod.rs).
    unsafe { gemm::<false>(wp, src, bias, out) }
}

/// See [`crate::kernels::Kernels::gemm_u8i8_max`].
pub(super) fn gemm_u8i8_max(wp: &[i8], src: &Patches<'_>, bias: &[i32], pmax: &mut [i32]) {
    // SAFETY: as in `gemm_u8i8`.
    unsafe { gemm::<true>(wp, src, bias, pmax) }
}

/// Per 16-channel group: the weights' correction, then blocks of up to 2 patches. Any lengths
/// are memory-safe: a broken contract takes the scalar path.
#[target_feature(enable = "neon")]
fn gemm<const MAX: bool>(wp: &[i8], src: &Patches<'_>, bias: &[i32], out: &mut [i32]) {
    let Some(ocp) = packed_ocp::<MAX>(wp, src, bias, out) else {
        return if MAX { scalar::gemm_u8i8_max(wp, src, bias, out) } else { scalar::gemm_u8i8(wp, src, bias, out) };
    };
    let n = src.starts.len();
    let quads = src.rows * src.seg / 4;
    let mut o = 0;
    while o < ocp {
        // SAFETY: channels o..o + 16 <= ocp of each of the `quads` quads lie inside `wp`
        // (`packed_ocp` checked wp.len() == rows * seg * ocp).
        let corr = unsafe { weight_sums_x128(wp.as_ptr().add(o * 4), quads, ocp * 4) };
        let mut i = 0;
        while i < n {
            let np = (n - i).min(MAX_P);
            // SAFETY: patches i..i + np exist and lie inside `xu`; channels o..o + 16 <= ocp of
            // `wp`, `bias` (ocp values) and `out` (n * ocp, or ocp with MAX); NEON is baseline.
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
                if np == 2 { block::<2, MAX>(b, &corr) } else { block::<1, MAX>(b, &corr) }
            }
            i += np;
        }
        o += PACK_OC;
    }
}

/// `-128 * sum w` per channel (wrapping) of the 16 channels whose quad 0 is at `w`, quads
/// `stride` bytes apart: minus the correction, in the form [`finish`] subtracts.
///
/// # Safety
/// `w` valid for 64 bytes at each of `quads` offsets `q * stride`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn weight_sums_x128(mut w: *const i8, quads: usize, stride: usize) -> [int32x4_t; 4] {
    let mut wide = [vdupq_n_s32(0); 4];
    let mut left = quads;
    while left > 0 {
        let steps = left.min(CORR_FLUSH);
        let mut narrow = [vdupq_n_s16(0); 4];
        for _ in 0..steps {
            // SAFETY: one of the `quads` quads (the caller's bound).
            unsafe {
                let v = vld1q_s8_x4(w);
                narrow[0] = vpadalq_s8(narrow[0], v.0);
                narrow[1] = vpadalq_s8(narrow[1], v.1);
                narrow[2] = vpadalq_s8(narrow[2], v.2);
                narrow[3] = vpadalq_s8(narrow[3], v.3);
                w = w.add(stride);
            }
        }
        for (a, s) in wide.iter_mut().zip(narrow) {
            *a = vpadalq_s16(*a, s);
        }
        left -= steps;
    }
    // -128 * s = -(s << 7), wrapping like the reference.
    wide.map(|s| vnegq_s32(vshlq_n_s32::<7>(s)))
}

/// One register block: `P` patches x 16 channels.
///
/// # Safety
/// As [`super::dotprod`]'s block: `starts` valid for `P` offsets whose patches lie inside `xu`;
/// `wp` valid for 64 bytes at each of the `rows * seg / 4` quad offsets; `bias` for 16 i32s,
/// `out` for 16 i32s at each of the `P` rows (1 with `MAX`); `seg % 4 == 0`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn block<const P: usize, const MAX: bool>(b: Block, corr: &[int32x4_t; 4]) {
    let flip = vdupq_n_u8(0x80);
    // Per patch, per 4 channels: the pair sums of channels 0-1 and of channels 2-3.
    let mut acc = [[[vdupq_n_s32(0); 2]; 4]; P];
    // SAFETY: P offsets at `starts`.
    let base: [*const u8; P] = core::array::from_fn(|p| unsafe { b.xu.add(*b.starts.add(p)) });
    let mut w = b.wp;
    for r in 0..b.rows {
        let mut j = 0;
        while j + 16 <= b.seg {
            // SAFETY: bytes j..j + 16 <= seg of segment r of each patch lie inside `xu`.
            let x: [int32x4_t; P] = core::array::from_fn(|p| unsafe {
                vreinterpretq_s32_u8(veorq_u8(vld1q_u8(base[p].add(r * b.row_stride + j)), flip))
            });
            // SAFETY: the next four quads' 64 bytes lie inside `wp` (the caller's bound).
            unsafe {
                quad(&mut acc, x.map(|v| vdupq_laneq_s32::<0>(v)), w);
                quad(&mut acc, x.map(|v| vdupq_laneq_s32::<1>(v)), w.add(b.quad_stride));
                quad(&mut acc, x.map(|v| vdupq_laneq_s32::<2>(v)), w.add(2 * b.quad_stride));
                quad(&mut acc, x.map(|v| vdupq_laneq_s32::<3>(v)), w.add(3 * b.quad_stride));
                w = w.add(4 * b.quad_stride);
            }
            j += 16;
        }
        // The last 1..3 quads: two from an 8-byte load, then one from a 4-byte load, never
        // reading past the segment.
        if b.seg - j >= 8 {
            // SAFETY: bytes j..j + 8 <= seg of segment r lie inside `xu`.
            let x: [int32x2_t; P] = core::array::from_fn(|p| unsafe {
                vreinterpret_s32_u8(veor_u8(vld1_u8(base[p].add(r * b.row_stride + j)), vget_low_u8(flip)))
            });
            // SAFETY: these two quads' 64 bytes each lie inside `wp`.
            unsafe {
                quad(&mut acc, x.map(|v| vdupq_lane_s32::<0>(v)), w);
                quad(&mut acc, x.map(|v| vdupq_lane_s32::<1>(v)), w.add(b.quad_stride));
                w = w.add(2 * b.quad_stride);
            }
            j += 8;
        }
        if j < b.seg {
            // SAFETY: bytes j..j + 4 <= seg (seg % 4 == 0) of segment r lie inside `xu`.
            let x: [int32x4_t; P] = core::array::from_fn(|p| unsafe {
                let q = core::ptr::read_unaligned(base[p].add(r * b.row_stride + j).cast::<u32>());
                vreinterpretq_s32_u8(veorq_u8(vreinterpretq_u8_u32(vdupq_n_u32(q)), flip))
            });
            // SAFETY: this quad's 64 bytes lie inside `wp`.
            unsafe {
                quad(&mut acc, x, w);
                w = w.add(b.quad_stride);
            }
        }
    }
    let sums: [[int32x4_t; 4]; P] = acc.map(|a| a.map(|[lo, hi]| vpaddq_s32(lo, hi)));
    // SAFETY: the outputs and bias as the caller guarantees.
    unsafe { finish::<P, MAX>(&sums, corr, b) }
}

/// One quad: each patch's broadcast quad `x[p]` against the 16 channels' weights at `w`.
///
/// # Safety
/// `w` valid for 64 bytes.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn quad<const P: usize>(acc: &mut [[[int32x4_t; 2]; 4]; P], x: [int32x4_t; P], w: *const i8) {
    // SAFETY: 64 bytes at `w`.
    let wv = unsafe { vld1q_s8_x4(w) };
    let wv = [wv.0, wv.1, wv.2, wv.3];
    for (a, x) in acc.iter_mut().zip(x) {
        let x = vreinterpretq_s8_s32(x);
        for (av, w) in a.iter_mut().zip(wv) {
            av[0] = vpadalq_s16(av[0], vmull_s8(vget_low_s8(w), vget_low_s8(x)));
            av[1] = vpadalq_s16(av[1], vmull_high_s8(w, x));
        }
    }
}
