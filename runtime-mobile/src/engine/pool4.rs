//! The 4-pixel conv path: a 2x2 max-pool window's four conv outputs per weight word
//! (`Kernels::matvec4_i8`). It exists where a table may provide that kernel (the ARMv7E-M DSP
//! table, and host builds, whose tests run it on instruction models): the M0 and thumbv7em builds
//! without `dsp` leave its code out of flash.

use super::im2col::Im2col;
use super::{BROKEN, LayerTensors, fold_zero_point, requant_params, scatter};
use crate::bytes::as_i8_mut;
use crate::error::Error;
use crate::format::{LayerSpec, Op, Pool, Shape};
use crate::kernels::Kernels;
use crate::plan::{Path, Region, Stage};

/// Most taps per pixel [`conv_pool4`] gathers at a time (the armv7em kernel extends 64 per call).
pub(super) const POOL4_RUN: usize = 64;

/// Bytes after [`conv_pool4`]'s 4 runs that the 8-byte copies of [`Im2col::gather_run`] may
/// overwrite.
pub(super) const POOL4_SLACK: usize = 8;

/// [`conv_pool4`]'s scratch for runs of `run` taps: the weights padded to `run` taps per row
/// when the patch is shorter than [`POOL4_RUN`] (`oc * run` bytes; else none), the 4 pixels'
/// runs (and the slack), then 4 accumulators and the zero-point correction per output channel.
pub(super) fn pool4_region(run: usize, oc: usize, padded: bool) -> Option<Region> {
    let weights = if padded { oc.checked_mul(run)? } else { 0 };
    let bytes = run.checked_mul(4)?.checked_add(POOL4_SLACK)?.checked_add(weights)?;
    Some(Region { bytes: u32::try_from(bytes).ok()?, ints: u32::try_from(oc.checked_mul(5)?).ok()? })
}

/// Taps per run when a conv stage takes [`conv_pool4`]: the table has `matvec4_i8`, the stage
/// fuses a 2x2 max pool of stride 2 whose windows all lie inside the conv output, and the
/// stage's scratch (`room` bytes, the same arena as the reference path's) holds runs of at
/// least 16 taps; patches shorter than [`POOL4_RUN`] need room for their weights padded with
/// zeros to a multiple of 32 taps (the MNIST conv1: 25 to 32), which keeps the kernel in its
/// unrolled loop instead of tails.
pub(super) fn pool4_run(spec: &LayerSpec, st: &Stage, path: Path, (pool, avg): (&Pool, bool), room: usize) -> Option<usize> {
    let Op::Conv2d { in_channels: c, kernel: [kh, kw], .. } = spec.op else { return None };
    let (Shape::Chw(_, ch, cw), Shape::Chw(oc, ph, pw)) = (spec.output_shape, st.out_shape) else { return None };
    let k_len = c.checked_mul(kh)?.checked_mul(kw)?;
    let window = !avg && pool.kernel == [2, 2] && pool.stride == [2, 2] && pool.padding == [0, 0];
    if !window || path == Path::Packed || 2 * ph > ch || 2 * pw > cw || k_len == 0 {
        return None;
    }
    if k_len < POOL4_RUN {
        let run = k_len.next_multiple_of(32);
        return (pool4_region(run, oc, true)?.size(1).ok()? <= room).then_some(run);
    }
    let fixed = pool4_region(0, oc, false)?.size(1).ok()?;
    let run = (room.checked_sub(fixed)? / 4).min(POOL4_RUN).min(k_len);
    let run = if run < k_len { run & !15 } else { run };
    (run >= 16.min(k_len) && run > 0).then_some(run)
}

/// [`conv`](super::conv::conv) for a stage [`pool4_run`] accepts: the 4 conv outputs of each 2x2 pool window
/// through one `matvec4_i8` per run of taps (each weight serves the 4 pixels), their maximum
/// plus the zero-point correction requantized once, as [`conv`](super::conv::conv) does. The patches are gathered
/// run by run, so the scratch stays within the reference path's.
#[allow(clippy::too_many_arguments)]
pub(super) fn conv_pool4(
    mv4: crate::kernels::Matvec4,
    k: &Kernels,
    spec: &LayerSpec,
    t: &LayerTensors<'_>,
    st: &Stage,
    relu: bool,
    run: usize,
    x: &[i8],
    scratch: &mut [u8],
    out: &mut [i8],
) -> Result<(), Error> {
    let Op::Conv2d { kernel: [kh, kw], stride: [sh, sw], padding: [pad_h, pad_w], .. } = spec.op else {
        return Err(BROKEN);
    };
    let (Shape::Chw(c, h, w), Shape::Chw(oc, ph, pw)) = (st.in_shape, st.out_shape) else {
        return Err(BROKEN);
    };
    let k_len = c * kh * kw;
    let padded = k_len < POOL4_RUN;
    let (bytes, ints) = pool4_region(run, oc, padded).and_then(|r| r.carve(scratch, 1)).ok_or(BROKEN)?;
    if t.weight.len() != oc * k_len || out.len() != oc * ph * pw || run == 0 || (padded && run < k_len) {
        return Err(BROKEN);
    }
    let (wpad, xs) = bytes.split_at_mut(if padded { oc * run } else { 0 });
    let (wpad, xs) = (as_i8_mut(wpad), as_i8_mut(xs));
    // Padded rows: `run` taps each, zeros after the layer's; the runs get zeros there too.
    for (dst, src) in wpad.chunks_exact_mut(run).zip(t.weight.chunks_exact(k_len)) {
        let (head, zeros) = dst.split_at_mut(k_len);
        head.copy_from_slice(src);
        zeros.fill(0);
    }
    let (weights, stride) = if padded { (&*wpad, run) } else { (t.weight, k_len) };
    let (acc4, corr) = ints.split_at_mut(4 * oc);
    fold_zero_point(k, t, k_len, st.in_zp, corr);
    let rq = requant_params(t, st, relu);
    let geom = Im2col { c, h, w, kh, kw, pad_h, pad_w, pad_val: st.in_zp as i8 };
    for py in 0..ph {
        for px in 0..pw {
            // Each accumulator starts at its channel's correction: the sums then wrap to
            // exactly `conv`'s `acc + corr`.
            for (a4, &c) in acc4.chunks_exact_mut(4).zip(&*corr) {
                a4.copy_from_slice(&[c; 4]);
            }
            let (cy, cx) = (2 * py, 2 * px);
            let origins = [[cy, cx], [cy, cx + 1], [cy + 1, cx], [cy + 1, cx + 1]].map(|[y, x]| [y * sh, x * sw]);
            let mut t0 = 0;
            while t0 < k_len {
                // `taps` gathered per pixel, in runs of `n` (the padded length, or `taps`).
                let taps = run.min(k_len - t0);
                let n = if padded { run } else { taps };
                if !geom.gather_run4(x, origins, t0, taps, n, xs) {
                    for (p, &o) in origins.iter().enumerate() {
                        geom.gather_run(x, o, t0, taps, xs.get_mut(p * n..).ok_or(BROKEN)?);
                    }
                }
                // Padded runs keep whatever their last `n - taps` bytes hold: those taps meet zero
                // weights.
                mv4(weights.get(t0..).ok_or(BROKEN)?, stride, xs.get(..4 * n).ok_or(BROKEN)?, acc4);
                t0 += taps;
            }
            // The window's maximum per channel, into acc4[..oc] (entry r is written after
            // entries 4r..4r + 4 were read, which no later channel reads).
            let p = acc4.as_mut_ptr();
            for r in 0..oc {
                // SAFETY: 4r + 3 < 4 * oc = acc4.len() (split above) and r <= 4r; a raw walk
                // since the slice form kept three bounds checks per channel.
                unsafe { *p.add(r) = (*p.add(4 * r)).max(*p.add(4 * r + 1)).max(*p.add(4 * r + 2)).max(*p.add(4 * r + 3)) };
            }
            let pooled = &mut acc4[..oc];
            (k.requantize_i32)(pooled, &rq);
            scatter(out, py * pw + px, ph * pw, pooled);
        }
    }
    Ok(())
}
