//! Conv2d on the reference path: one im2col patch at a time through the matvec kernels (or, for
//! short patches, the i16-pair kernel), pooled and requantized per pooled cell.

use super::im2col::Im2col;
use super::pool::window_range;
use super::{BROKEN, LayerTensors, div_round, fold_zero_point, requant_params, scatter};
use crate::bytes::as_i8_mut;
use crate::error::Error;
use crate::format::{LayerSpec, Op, Pool, Shape};
use crate::kernels::Kernels;
use crate::plan::{PAIRS_MAX_K, Stage, pairs_ints};

/// Conv2d + requant (+ relu) + pool, computing only the pooled outputs: for each pooled cell,
/// each conv output in its window is computed (im2col patch -> matvec over all channels) and
/// combined. Non-overlapping pools compute every conv output exactly once.
///
/// Max pooling takes the maximum of the accumulators and requantizes once per pooled cell:
/// requantization is non-decreasing in the accumulator (M >= 0, every rounding step and clamp is
/// monotonic), so `max(requant(a), requant(b)) == requant(max(a, b))` exactly, at a quarter of
/// the requantization work for 2x2 pools. Average pooling needs each value requantized first.
#[allow(clippy::too_many_arguments)]
pub(super) fn conv(
    k: &Kernels,
    spec: &LayerSpec,
    t: &LayerTensors<'_>,
    st: &Stage,
    g: &ConvStage<'_>,
    x: &[i8],
    patch_buf: &mut [u8],
    ints: &mut [i32],
    out: &mut [i8],
) -> Result<(), Error> {
    let Op::Conv2d { kernel: [kh, kw], stride: [sh, sw], padding: [pad_h, pad_w], .. } = spec.op else {
        return Err(BROKEN);
    };
    let (Shape::Chw(c, h, w), Shape::Chw(oc, ph, pw)) = (st.in_shape, st.out_shape) else {
        return Err(BROKEN);
    };
    let ConvStage { relu, pool, avg, conv_hw: [ch, cw], .. } = *g;
    // A local copy: read through the reference, the window bounds were reloaded per pixel.
    let pool = &Pool { ..*pool };
    let k_len = c * kh * kw;
    // The plan's scratch ([`Stage::scratch`], or [`Stage::scratch_full`] when the arena has
    // room): the patch (with `PATCH_SLACK` bytes after it in the full layout, so that its last
    // rows move as 8-byte copies too), then acc, corr and pacc (`oc` each) and, in the full
    // layout of short patches, the weights and the patch as i16 pairs for `matvec_pairs_i16`.
    let base_len = oc.checked_mul(3).ok_or(BROKEN)?;
    if t.weight.len() != oc * k_len || patch_buf.len() < k_len || ints.len() < base_len || out.len() != oc * ph * pw {
        return Err(BROKEN);
    }
    let patch_buf = as_i8_mut(patch_buf);
    let kp = k_len.div_ceil(2);
    let pairs_len = pairs_ints(k_len, oc).ok_or(BROKEN)?;
    let use_pairs = k_len < PAIRS_MAX_K && ints.len() >= base_len.saturating_add(pairs_len);
    let (acc, rest) = ints.split_at_mut(oc);
    let (corr, rest) = rest.split_at_mut(oc);
    let (pacc, pairs) = rest.split_at_mut(oc);
    let (wt, xp) = pairs.split_at_mut(if use_pairs { kp * oc } else { 0 });
    if use_pairs {
        pack_weight_pairs(t.weight, k_len, oc, wt);
    }
    let (corr, pacc) = (&mut corr[..oc], &mut pacc[..oc]);
    fold_zero_point(k, t, k_len, st.in_zp, corr);
    let corr = &*corr;
    let matvec = matvec_for(k, t);
    let rq = requant_params(t, st, relu);
    let geom = Im2col { c, h, w, kh, kw, pad_h, pad_w, pad_val: st.in_zp as i8 };
    let plane = ph * pw;

    for py in 0..ph {
        for px in 0..pw {
            pacc.fill(if avg { 0 } else { i32::MIN });
            let mut count = 0i32;
            for cy in window_range(pool, 0, py, ch) {
                for cx in window_range(pool, 1, px, cw) {
                    count += 1;
                    geom.gather(x, [cy * sh, cx * sw], patch_buf);
                    let acc = &mut acc[..oc];
                    if use_pairs {
                        pack_pairs(&patch_buf[..k_len], xp);
                        (k.matvec_pairs_i16)(wt, xp, acc);
                    } else {
                        matvec(t.weight, &patch_buf[..k_len], acc);
                    }
                    if avg {
                        for (a, &c) in acc.iter_mut().zip(corr) {
                            *a = a.wrapping_add(c);
                        }
                        (k.requantize_i32)(acc, &rq);
                        for (p, &q) in pacc.iter_mut().zip(&*acc) {
                            *p += q;
                        }
                    } else {
                        max_into(pacc, acc, corr);
                    }
                }
            }
            // Every window holds a real cell (plan: pool padding <= kernel/2), so count >= 1.
            let count = count.max(1);
            if avg {
                for p in pacc.iter_mut() {
                    *p = div_round(*p, count);
                }
            } else {
                (k.requantize_i32)(pacc, &rq);
            }
            scatter(out, py * pw + px, plane, pacc);
        }
    }
    Ok(())
}

/// A conv stage's fused parts and data layouts, for [`conv`] and [`conv_packed`](super::packed::conv_packed).
#[derive(Clone, Copy)]
pub(super) struct ConvStage<'l> {
    pub(super) relu: bool,
    pub(super) pool: &'l Pool,
    pub(super) avg: bool,
    pub(super) conv_hw: [usize; 2],
    /// The input is channels-last (HWC), as a previous packed stage wrote it; else CHW.
    pub(super) in_hwc: bool,
    /// Write the output channels-last, for a packed stage that follows; else CHW.
    pub(super) out_hwc: bool,
}

/// `pacc[i] = max(pacc[i], acc[i] + corr[i])` (wrapping add). Out of line, so its loop gets the
/// registers (inlined into `conv` it spilled); equal lengths let it vectorize.
#[inline(never)]
pub(super) fn max_into(pacc: &mut [i32], acc: &[i32], corr: &[i32]) {
    let n = pacc.len().min(acc.len()).min(corr.len());
    let (pacc, acc, corr) = (&mut pacc[..n], &acc[..n], &corr[..n]);
    for i in 0..n {
        pacc[i] = pacc[i].max(acc[i].wrapping_add(corr[i]));
    }
}

/// Packs two i8 as the low and high i16 halves of an i32.
#[inline]
pub(super) fn pair(lo: i8, hi: i8) -> i32 {
    ((lo as i16 as u16 as u32) | ((hi as i16 as u16 as u32) << 16)) as i32
}

/// `xp[p] = pair(v[2p], v[2p + 1])`, a missing last element as 0.
#[inline(never)]
pub(super) fn pack_pairs(v: &[i8], xp: &mut [i32]) {
    let n = (v.len() / 2).min(xp.len());
    // Exact-length slices and an index loop: LLVM vectorizes it.
    let (src, dst) = (&v[..2 * n], &mut xp[..n]);
    for p in 0..n {
        dst[p] = pair(src[2 * p], src[2 * p + 1]);
    }
    if let (Some(d), Some(&last)) = (xp.get_mut(n), v.get(2 * n)) {
        *d = pair(last, 0);
    }
}

/// The `[k/2][n]` i16-pair layout `matvec_pairs_i16` takes of the `[n][k]` weights `w`:
/// `wt[p * n + j] = pair(w[j][2p], w[j][2p + 1])`.
pub(super) fn pack_weight_pairs(w: &[i8], k: usize, n: usize, wt: &mut [i32]) {
    if k == 0 {
        return;
    }
    for (j, row) in w.chunks_exact(k).take(n).enumerate() {
        for (p, c) in row.chunks(2).enumerate() {
            if let Some(d) = wt.get_mut(p * n + j) {
                *d = pair(c[0], c.get(1).copied().unwrap_or(0));
            }
        }
    }
}

/// The matvec for a layer's weights: the faster `matvec_i8_sym` unless a weight is -128 (never
/// in export's symmetric weights, but the format allows it).
pub(super) fn matvec_for(k: &Kernels, t: &LayerTensors<'_>) -> fn(&[i8], &[i8], &mut [i32]) {
    if t.weight_has_i8_min { k.matvec_i8 } else { k.matvec_i8_sym }
}

/// Whether any of `v` is -128: one vectorized pass.
pub(crate) fn has_i8_min(v: &[i8]) -> bool {
    // Branch-free OR of comparisons over fixed-size chunks: LLVM vectorizes it (a short-circuit
    // `any` it does not).
    let (chunks, rest) = v.as_chunks::<64>();
    let mut found = 0u8;
    for c in chunks {
        found |= c.iter().fold(0u8, |a, &x| a | (x == i8::MIN) as u8);
    }
    found |= rest.iter().fold(0u8, |a, &x| a | (x == i8::MIN) as u8);
    found != 0
}
