//! [`crate::requant::requantize`] four lanes at a time on NEON, for both aarch64 tables. NEON
//! has gemmlowp's steps as instructions (gemmlowp's own NEON path uses them):
//! - `saturate_i32(acc << left)`: `sqshl` by a register (saturating left shift);
//! - `srdhm(x, M)`: `sqrdmulh`, which computes `(2xM + 2^31) >> 32` = `floor((xM + 2^30) / 2^31)`
//!   in wide precision and saturates `MIN * MIN` to `MAX`. The reference's
//!   `trunc((xM + nudge) / 2^31)` with `nudge = 1 - 2^30` for negative products is the same
//!   floor: writing `xM + 2^30 = 2^31 k + r` (`0 <= r < 2^31`, `k <= 0` when `xM < 0`),
//!   `(xM + 1 - 2^30) / 2^31 = k - 1 + (r + 1) / 2^31` truncates to `k`;
//! - `rdbpot(y, e)` (ties away from zero): `srshl` by `-e` rounds half up in wide precision,
//!   `floor((y + 2^(e-1)) / 2^e)`; for `y < 0` and `e > 0`, `y - 1` first (`sqadd` of the sign of
//!   `y & -e`, 0 when `e == 0`) turns ties downward. With `y = 2^e q + rem`: for `y >= 0` the
//!   result is `q + (rem >= 2^(e-1))`, for `y < 0` it is `q + (rem > 2^(e-1))`, the reference's
//!   thresholds `(mask >> 1) + (y < 0)`. (`y = MIN` saturates to itself: `rem = 0`, `q` either way.)
//! - `clamp(zp_out.saturating_add(z), lo, 127)`: `sqadd`, `smax`, `smin`.
//!
//! Channel counts that are not a multiple of 4 leave their last channels to the reference.

use core::arch::aarch64::*;

use crate::bytes::le_i32;
use crate::kernels::{Requant, scalar};
use crate::requant::requantize;

/// See [`crate::kernels::Kernels::requantize_i32`].
pub(super) fn requantize_i32(acc: &mut [i32], q: &Requant<'_>) {
    let n = acc.len();
    // SAFETY: NEON is part of every target that compiles this module (`cfg` in kernels/mod.rs).
    unsafe { rows(acc, n, n, q) }
}

/// See [`crate::kernels::Kernels::requantize_rows`].
pub(super) fn requantize_rows(acc: &mut [i32], stride: usize, channels: usize, q: &Requant<'_>) {
    if stride < channels || stride == 0 {
        return;
    }
    // SAFETY: as in `requantize_i32`.
    unsafe { rows(acc, stride, channels, q) }
}

/// Rows of `stride` values, channels `0..channels` of each: the outer loop walks groups of 4
/// channels and prepares their parameters once, the inner one the rows.
#[target_feature(enable = "neon")]
fn rows(acc: &mut [i32], stride: usize, channels: usize, q: &Requant<'_>) {
    let ranges_ok = (-128..=127).contains(&q.zp_out) && (-128..=127).contains(&q.lo);
    if !ranges_ok || q.multiplier.len() / 4 < channels || q.shift.len() / 4 < channels || stride == 0 {
        return scalar::rows_with(scalar::requantize_i32, acc, stride, channels, q);
    }
    let (zp, lo, hi) = (vdupq_n_s32(q.zp_out), vdupq_n_s32(q.lo), vdupq_n_s32(127));
    let len = acc.len();
    let c4 = channels - channels % 4;
    let mut c0 = 0;
    while c0 < c4 {
        // SAFETY: channels c0..c0 + 4 <= channels of `multiplier`/`shift`, which hold at least
        // 4 * channels bytes (checked above); byte loads have no alignment requirement.
        let (m, s) =
            unsafe { (vld1q_s32(q.multiplier.as_ptr().add(4 * c0).cast()), vld1q_s32(q.shift.as_ptr().add(4 * c0).cast())) };
        let s = vmaxq_s32(vminq_s32(s, vdupq_n_s32(31)), vdupq_n_s32(-31));
        let left = vmaxq_s32(vnegq_s32(s), vdupq_n_s32(0));
        let right_neg = vminq_s32(vnegq_s32(s), vdupq_n_s32(0));
        let mut row = c0;
        while row + 4 <= len {
            // SAFETY: indices row..row + 4 of `acc`.
            let a = unsafe { vld1q_s32(acc.as_ptr().add(row)) };
            let y = vqrdmulhq_s32(vqshlq_s32(a, left), m);
            let fixup = vshrq_n_s32::<31>(vandq_s32(y, right_neg));
            let z = vrshlq_s32(vqaddq_s32(y, fixup), right_neg);
            let r = vminq_s32(vmaxq_s32(vqaddq_s32(z, zp), lo), hi);
            // SAFETY: as for the load.
            unsafe { vst1q_s32(acc.as_mut_ptr().add(row), r) };
            row += stride;
        }
        c0 += 4;
    }
    // The last `channels % 4` channels of every row, and the groups a short last row cut off
    // (group c0 of a row was done iff its 4 values lie inside the row), by the reference.
    for vals in acc.chunks_mut(stride) {
        let l = vals.len();
        let done = c4.min(l - l % 4);
        for (o, a) in vals.iter_mut().enumerate().take(channels).skip(done) {
            *a = requantize(*a, le_i32(q.multiplier, o), le_i32(q.shift, o), q.zp_out, q.lo) as i32;
        }
    }
}
