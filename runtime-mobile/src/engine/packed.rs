//! The packed conv path of a [`crate::Session`]: weights packed once, the channels-last input
//! read in place by `gemm_u8i8`.

use super::conv::ConvStage;
use super::pool::window_range;
use super::{BROKEN, LayerTensors, PackedLayer, div_round, fold_zero_point, requant_params, scatter};
use crate::error::Error;
use crate::format::{LayerSpec, Op, Shape};
use crate::kernels::{Kernels, Patches, Requant};
use crate::plan::{PACKED_PATCHES, Stage, packed_dims};

/// [`conv`](super::conv::conv) on the packed path (a [`crate::Session`] whose table has `conv_packed`, with the
/// arena room for [`Stage::scratch_packed`]): the input is copied once as `x ^ 0x80`, channels-last
/// and with its padding border, so that each kernel row of a receptive field is one contiguous
/// run of `kw * c` bytes, which `gemm_u8i8` reads in place (no im2col). A pool window's conv
/// outputs go through one call, so every weight load serves up to [`PACKED_PATCHES`] pixels.
/// The bias in `p` absorbs the `+ 128`: `sum (x + 128) w = sum x w + 128 sum w`. Pooling and
/// requantization are [`conv`](super::conv::conv)'s; max pooling happens inside `gemm_u8i8_max`.
#[allow(clippy::too_many_arguments)]
pub(super) fn conv_packed(
    k: &Kernels,
    spec: &LayerSpec,
    p: &PackedLayer<'_>,
    t: &LayerTensors<'_>,
    st: &Stage,
    g: &ConvStage<'_>,
    x: &[i8],
    xin: &mut [u8],
    ints: &mut [i32],
    out: &mut [i8],
) -> Result<(), Error> {
    let Op::Conv2d { kernel: [kh, _], stride: [sh, sw], padding: [pad_h, pad_w], .. } = spec.op else {
        return Err(BROKEN);
    };
    let (Shape::Chw(c, h, w), Shape::Chw(oc, ph, pw)) = (st.in_shape, st.out_shape) else {
        return Err(BROKEN);
    };
    let (ocp, seg) = packed_dims(spec).ok_or(BROKEN)?;
    let (hp, wpad) = (h + 2 * pad_h, w + 2 * pad_w);
    let row_stride = wpad * c;
    if p.wp.len() != kh * seg * ocp || p.bias.len() != ocp || out.len() != oc * ph * pw || x.len() != c * h * w {
        return Err(BROKEN);
    }
    // The plan's [`Stage::scratch_packed`]: `xin` the input ^ 0x80, HWC, padded (then
    // `SEGMENT_SLACK` bytes); `ints` the patches' products, then a row of pooled accumulators.
    if xin.len() < hp * row_stride || ints.len() < (PACKED_PATCHES + pw) * ocp {
        return Err(BROKEN);
    }
    copy_hwc_flipped(x, [c, h, w], [pad_h, pad_w], g.in_hwc, st.in_zp as u8 ^ 0x80, xin);
    let xin = &*xin;
    let (acc, prow) = ints.split_at_mut(PACKED_PATCHES * ocp);
    let prow = &mut prow[..pw * ocp];
    let rq = requant_params(t, st, g.relu);
    let [ch, cw] = g.conv_hw;
    let pool = g.pool;
    let plane = ph * pw;
    let mut starts = [0usize; PACKED_PATCHES];
    let window = Window { k, p, oc, ocp, avg: g.avg, rq: &rq };

    for py in 0..ph {
        // Each pooled cell of the row: its window's conv outputs, pooled (unrequantized for max).
        for (px, pacc) in prow.chunks_exact_mut(ocp).enumerate() {
            pacc.fill(if g.avg { 0 } else { i32::MIN });
            let (mut count, mut n) = (0i32, 0);
            for cy in window_range(pool, 0, py, ch) {
                for cx in window_range(pool, 1, px, cw) {
                    // The receptive field's top-left corner in the padded input.
                    starts[n] = (cy * sh * wpad + cx * sw) * c;
                    n += 1;
                    count += 1;
                    if n == PACKED_PATCHES {
                        window.run(&Patches { xu: xin, starts: &starts, rows: kh, row_stride, seg }, acc, pacc);
                        n = 0;
                    }
                }
            }
            if n > 0 {
                window.run(&Patches { xu: xin, starts: &starts[..n], rows: kh, row_stride, seg }, acc, pacc);
            }
            if g.avg {
                // Every window holds a real cell (plan: pool padding <= kernel/2).
                let count = count.max(1);
                for v in &mut pacc[..oc] {
                    *v = div_round(*v, count);
                }
            }
        }
        if !g.avg {
            (k.requantize_rows)(prow, ocp, oc, &rq);
        }
        for (px, vals) in prow.chunks_exact(ocp).enumerate() {
            let (vals, cell) = (&vals[..oc], py * pw + px);
            if g.out_hwc {
                if let Some(dst) = out.get_mut(cell * oc..(cell + 1) * oc) {
                    for (d, &v) in dst.iter_mut().zip(vals) {
                        *d = v as i8;
                    }
                }
            } else {
                scatter(out, cell, plane, vals);
            }
        }
    }
    Ok(())
}

/// One conv stage's per-window step on the packed path.
pub(super) struct Window<'r, 'p> {
    k: &'r Kernels,
    p: &'r PackedLayer<'p>,
    oc: usize,
    ocp: usize,
    avg: bool,
    rq: &'r Requant<'p>,
}

impl Window<'_, '_> {
    /// Adds the conv outputs at `src`'s patches into the pool accumulator `pacc` (`ocp`
    /// values): their max (requantized later, once per cell), or the sum of their requantized
    /// values for average pooling.
    fn run(&self, src: &Patches<'_>, acc: &mut [i32], pacc: &mut [i32]) {
        let Window { k, p, oc, ocp, .. } = *self;
        if self.avg {
            let accs = &mut acc[..src.starts.len() * ocp];
            (k.gemm_u8i8)(p.wp, src, p.bias, accs);
            (k.requantize_rows)(accs, ocp, oc, self.rq);
            for a in accs.chunks_exact(ocp) {
                for (s, &q) in pacc.iter_mut().zip(&a[..oc]) {
                    *s += q;
                }
            }
        } else {
            (k.gemm_u8i8_max)(p.wp, src, p.bias, pacc);
        }
    }
}

/// Copies the `[c, h, w]` input `x` (CHW, or HWC when `hwc`) into `dst` as `x ^ 0x80`,
/// channels-last, inside a border of `pad` cells of `pad_byte`; the bytes after the padded image
/// get `pad_byte` too.
pub(super) fn copy_hwc_flipped(
    x: &[i8],
    [c, h, w]: [usize; 3],
    [pad_h, pad_w]: [usize; 2],
    hwc: bool,
    pad_byte: u8,
    dst: &mut [u8],
) {
    let row_stride = (w + 2 * pad_w) * c;
    if pad_h > 0 || pad_w > 0 {
        dst.fill(pad_byte);
    } else if let Some(tail) = dst.get_mut(h * row_stride..) {
        tail.fill(pad_byte);
    }
    for y in 0..h {
        let Some(row) = dst.get_mut((y + pad_h) * row_stride + pad_w * c..).and_then(|r| r.get_mut(..w * c)) else {
            return;
        };
        if hwc || c == 1 {
            // Same order: one run per row (vectorized).
            if let Some(src) = x.get(y * w * c..(y + 1) * w * c) {
                for (d, &v) in row.iter_mut().zip(src) {
                    *d = v as u8 ^ 0x80;
                }
            }
        } else {
            for (ic, plane) in x.chunks_exact(h * w).take(c).enumerate() {
                if let Some(src) = plane.get(y * w..(y + 1) * w) {
                    for (d, &v) in row.iter_mut().skip(ic).step_by(c).zip(src) {
                        *d = v as u8 ^ 0x80;
                    }
                }
            }
        }
    }
}

/// Packs a conv layer's `[oc][c][kh][kw]` weights into the packed path's layout: kernel row `ky`
/// is a segment of `seg` bytes in channels-last order (`t = ky * seg + kx * c + ic`, zero past
/// `kw * c`), cut into quads of 4 with the `ocp` channels innermost:
/// `wp[((t / 4) * ocp + o) * 4 + t % 4] = w[o][ic][ky][kx]`, zero for padding channels. Also
/// folds the bias for `x ^ 0x80` inputs (see [`PackedLayer::bias`]). Runs once per session.
pub(crate) fn pack_conv(
    k: &Kernels,
    spec: &LayerSpec,
    t: &LayerTensors<'_>,
    zp_in: i32,
    wp: &mut [i8],
    bias: &mut [i32],
) -> Result<(), Error> {
    let Op::Conv2d { in_channels: c, out_channels: oc, kernel: [kh, kw], .. } = spec.op else {
        return Err(BROKEN);
    };
    let (ocp, seg) = packed_dims(spec).ok_or(BROKEN)?;
    let k_len = c * kh * kw;
    if t.weight.len() != oc * k_len || wp.len() != kh * seg * ocp || bias.len() != ocp {
        return Err(BROKEN);
    }
    wp.fill(0);
    for (o, row) in t.weight.chunks_exact(k_len).enumerate() {
        for (i, &v) in row.iter().enumerate() {
            let (ic, ky, kx) = (i / (kh * kw), i / kw % kh, i % kw);
            let tt = ky * seg + kx * c + ic;
            if let Some(d) = wp.get_mut(((tt / 4) * ocp + o) * 4 + tt % 4) {
                *d = v;
            }
        }
    }
    bias.fill(0);
    fold_zero_point(k, t, k_len, zp_in.wrapping_add(128), &mut bias[..oc]);
    Ok(())
}
