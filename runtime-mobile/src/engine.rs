//! Executes a [`Plan`] in the caller's arena. Graph-level loops only; arithmetic on vectors goes
//! through the [`Kernels`] table so SIMD versions slot in. Integer-only: no float on this path.
//!
//! Sizes used for indexing here were validated by `plan` (shapes, arena size), so slices are cut
//! once per stage with checked `get`, and inner loops index within those proven bounds.

use crate::bytes::{as_i8_mut, le_i32};
use crate::error::Error;
use crate::format::{LayerSpec, MAX_LAYERS, Op, Pool, Shape};
use crate::kernels::{Kernels, Patches, Requant};
#[cfg(any(feature = "dsp", not(target_arch = "arm")))]
use crate::plan::Region;
use crate::plan::{Loc, PACKED_PATCHES, PAIRS_MAX_K, Path, Plan, Stage, StageOp, packed_dims, pairs_ints, pool_of};

/// One conv2d/dense layer's tensors, borrowed from the file bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerTensors<'a> {
    pub weight: &'a [i8],
    /// Whether some weight is -128, which rules out `matvec_i8_sym` (see [`matvec_for`]).
    /// Found once, when the weights are bound at parse time.
    pub weight_has_i8_min: bool,
    /// Little-endian i32s (file data is not necessarily 4-aligned).
    pub bias: &'a [u8],
    pub multiplier: &'a [u8],
    pub shift: &'a [u8],
}

impl LayerTensors<'_> {
    pub(crate) const EMPTY: LayerTensors<'static> =
        LayerTensors { weight: &[], weight_has_i8_min: false, bias: &[], multiplier: &[], shift: &[] };
}

/// Stands for a violated plan invariant; unreachable for parsed models, but an error beats a panic.
const BROKEN: Error = Error::Internal("engine: the plan does not fit the model or the arena");

/// What a [`crate::Session`] prepares once per layer. Conv: the weights in the packed path's
/// layout (see [`pack_conv`]) and the bias folded for `x ^ 0x80` inputs. Dense: the folded bias
/// only (`wp` empty), which [`dense`] otherwise recomputes on every call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PackedLayer<'p> {
    /// Conv: `[kh * seg / 4][ocp][4]`.
    pub wp: &'p [i8],
    /// Conv: `ocp` values, `bias - (zp_in + 128) * sum(w)` per channel, 0 for padding channels.
    /// Dense: `out_features` values, `bias - zp_in * sum(w)` (see [`fold_zero_point`]).
    pub bias: &'p [i32],
}

/// Runs all stages; returns the output scores (a slice of the arena). `packed[layer]` holds what
/// a session prepared for that layer (empty for [`crate::Model::run`]): conv layers with one take
/// the packed path where the arena has room for it, dense layers skip the bias folding.
pub(crate) fn run<'b>(
    plan: &Plan,
    layers: &[LayerSpec],
    tensors: &[LayerTensors<'_>],
    packed: &[Option<PackedLayer<'_>>],
    k: &Kernels,
    input: &[i8],
    arena: &'b mut [u8],
) -> Result<&'b [i8], Error> {
    if arena.len() < plan.arena_bytes {
        return Err(Error::ArenaTooSmall { needed: plan.arena_bytes, got: arena.len() });
    }
    let stages = plan.stages.get(..plan.n_stages).ok_or(BROKEN)?;
    // Each stage's scratch layout; consecutive packed stages hand over channels-last data.
    let mut paths = [Path::Min; MAX_LAYERS];
    for (p, st) in paths.iter_mut().zip(stages) {
        *p = st.path(arena.len(), has_packed(st, packed));
    }
    for (i, stage) in stages.iter().enumerate() {
        let path = paths.get(i).copied().ok_or(BROKEN)?;
        let packed_at = |j: Option<usize>| j.and_then(|j| paths.get(j)) == Some(&Path::Packed);
        let hwc = [packed_at(i.checked_sub(1)), packed_at(i.checked_add(1))];
        let hwc = hwc.map(|h| h && path == Path::Packed);
        run_stage(stage, path, layers, tensors, packed, k, input, arena, hwc)?;
    }
    plan.output(arena)
}

/// Whether a session packed `st`'s layer (conv: weights; dense: the folded bias).
fn has_packed(st: &Stage, packed: &[Option<PackedLayer<'_>>]) -> bool {
    let (StageOp::Conv { layer, .. } | StageOp::Dense { layer, .. }) = st.op else { return false };
    matches!(packed.get(layer), Some(Some(_)))
}

#[allow(clippy::too_many_arguments)]
fn run_stage(
    st: &Stage,
    path: Path,
    layers: &[LayerSpec],
    tensors: &[LayerTensors<'_>],
    packed: &[Option<PackedLayer<'_>>],
    k: &Kernels,
    input: &[i8],
    arena: &mut [u8],
    [in_hwc, out_hwc]: [bool; 2],
) -> Result<(), Error> {
    if let (StageOp::Relu, Loc::Low | Loc::High) = (st.op, st.in_loc) {
        let zp = st.in_zp as i8;
        for v in st.in_place(arena)? {
            *v = (*v).max(zp);
        }
        return Ok(());
    }

    let (x, scratch, out) = st.split(arena, input)?;
    if Some(x.len()) != st.in_shape.len() || Some(out.len()) != st.out_shape.len() {
        return Err(BROKEN);
    }
    #[cfg(any(feature = "dsp", not(target_arch = "arm")))]
    if let StageOp::Conv { layer, relu, pool } = st.op
        && let (Some(mv4), Some(spec), Some(t)) = (k.matvec4_i8, layers.get(layer), tensors.get(layer))
        && let Some(run) = pool4_run(spec, st, path, pool_of(layers, pool.map(usize::from))?, scratch.len())
    {
        return conv_pool4(mv4, k, spec, t, st, relu, run, x, scratch, out);
    }
    // The plan's scratch layout for this path: `bytes` then 4-aligned `ints` (empty when unused).
    let (bytes, ints) = st.scratch_for(path).carve(scratch, 1).ok_or(BROKEN)?;

    match st.op {
        StageOp::Conv { layer, relu, pool } => {
            let (Some(spec), Some(t)) = (layers.get(layer), tensors.get(layer)) else {
                return Err(BROKEN);
            };
            let (pool, avg) = pool_of(layers, pool.map(usize::from))?;
            let Shape::Chw(_, ch, cw) = spec.output_shape else { return Err(BROKEN) };
            let geom = ConvStage { relu, pool, avg, conv_hw: [ch, cw], in_hwc, out_hwc };
            match packed.get(layer) {
                Some(Some(p)) if path == Path::Packed => conv_packed(k, spec, p, t, st, &geom, x, bytes, ints, out),
                _ => conv(k, spec, t, st, &geom, x, bytes, ints, out),
            }
        }
        StageOp::Dense { layer, relu } => {
            let Some(t) = tensors.get(layer) else { return Err(BROKEN) };
            let folded = match packed.get(layer) {
                Some(Some(p)) => Some(p.bias),
                _ => None,
            };
            dense(k, t, st, relu, folded, x, ints, out)
        }
        StageOp::Pool { layer } => {
            let (pool, avg) = pool_of(layers, Some(layer))?;
            pool_standalone(st, pool, avg, x, out)
        }
        StageOp::Relu => {
            let zp = st.in_zp as i8;
            for (o, &v) in out.iter_mut().zip(x) {
                *o = v.max(zp);
            }
            Ok(())
        }
    }
}

/// `bias[o] - zp_in * sum(w[o])`, wrapping: the folded constant term of every accumulator.
pub(crate) fn fold_zero_point(k: &Kernels, t: &LayerTensors<'_>, k_len: usize, zp_in: i32, corr: &mut [i32]) {
    (k.row_sums_i8)(t.weight, k_len, corr);
    for (o, c) in corr.iter_mut().enumerate() {
        *c = le_i32(t.bias, o).wrapping_sub(zp_in.wrapping_mul(*c));
    }
}

fn requant_params<'a>(t: &LayerTensors<'a>, st: &Stage, relu: bool) -> Requant<'a> {
    let lo = if relu { st.out_zp } else { -128 };
    Requant { multiplier: t.multiplier, shift: t.shift, zp_out: st.out_zp, lo }
}

/// Rounds `sum / n` half away from zero (`n >= 1`).
#[inline]
pub(crate) fn div_round(sum: i32, n: i32) -> i32 {
    if sum >= 0 { (sum + n / 2) / n } else { -((-sum + n / 2) / n) }
}

/// Conv2d + requant (+ relu) + pool, computing only the pooled outputs: for each pooled cell,
/// each conv output in its window is computed (im2col patch -> matvec over all channels) and
/// combined. Non-overlapping pools compute every conv output exactly once.
///
/// Max pooling takes the maximum of the accumulators and requantizes once per pooled cell:
/// requantization is non-decreasing in the accumulator (M >= 0, every rounding step and clamp is
/// monotonic), so `max(requant(a), requant(b)) == requant(max(a, b))` exactly, at a quarter of
/// the requantization work for 2x2 pools. Average pooling needs each value requantized first.
#[allow(clippy::too_many_arguments)]
fn conv(
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

// The 4-pixel conv path exists where a table may provide `matvec4_i8` (the ARMv7E-M DSP table,
// and host builds, whose tests run it on instruction models): the M0 and thumbv7em builds
// without `dsp` leave its code out of flash.
#[cfg(any(feature = "dsp", not(target_arch = "arm")))]
/// Most taps per pixel [`conv_pool4`] gathers at a time (the armv7em kernel extends 64 per call).
const POOL4_RUN: usize = 64;

#[cfg(any(feature = "dsp", not(target_arch = "arm")))]
/// Bytes after [`conv_pool4`]'s 4 runs that the 8-byte copies of [`Im2col::gather_run`] may
/// overwrite.
const POOL4_SLACK: usize = 8;

#[cfg(any(feature = "dsp", not(target_arch = "arm")))]
/// [`conv_pool4`]'s scratch for runs of `run` taps: the weights padded to `run` taps per row
/// when the patch is shorter than [`POOL4_RUN`] (`oc * run` bytes; else none), the 4 pixels'
/// runs (and the slack), then 4 accumulators and the zero-point correction per output channel.
fn pool4_region(run: usize, oc: usize, padded: bool) -> Option<Region> {
    let weights = if padded { oc.checked_mul(run)? } else { 0 };
    let bytes = run.checked_mul(4)?.checked_add(POOL4_SLACK)?.checked_add(weights)?;
    Some(Region { bytes: u32::try_from(bytes).ok()?, ints: u32::try_from(oc.checked_mul(5)?).ok()? })
}

#[cfg(any(feature = "dsp", not(target_arch = "arm")))]
/// Taps per run when a conv stage takes [`conv_pool4`]: the table has `matvec4_i8`, the stage
/// fuses a 2x2 max pool of stride 2 whose windows all lie inside the conv output, and the
/// stage's scratch (`room` bytes, the same arena as the reference path's) holds runs of at
/// least 16 taps; patches shorter than [`POOL4_RUN`] need room for their weights padded with
/// zeros to a multiple of 32 taps (the MNIST conv1: 25 to 32), which keeps the kernel in its
/// unrolled loop instead of tails.
fn pool4_run(spec: &LayerSpec, st: &Stage, path: Path, (pool, avg): (&Pool, bool), room: usize) -> Option<usize> {
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

#[cfg(any(feature = "dsp", not(target_arch = "arm")))]
/// [`conv`] for a stage [`pool4_run`] accepts: the 4 conv outputs of each 2x2 pool window
/// through one `matvec4_i8` per run of taps (each weight serves the 4 pixels), their maximum
/// plus the zero-point correction requantized once, as [`conv`] does. The patches are gathered
/// run by run, so the scratch stays within the reference path's.
#[allow(clippy::too_many_arguments)]
fn conv_pool4(
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

/// A conv stage's fused parts and data layouts, for [`conv`] and [`conv_packed`].
#[derive(Clone, Copy)]
struct ConvStage<'l> {
    relu: bool,
    pool: &'l Pool,
    avg: bool,
    conv_hw: [usize; 2],
    /// The input is channels-last (HWC), as a previous packed stage wrote it; else CHW.
    in_hwc: bool,
    /// Write the output channels-last, for a packed stage that follows; else CHW.
    out_hwc: bool,
}

/// [`conv`] on the packed path (a [`crate::Session`] whose table has `conv_packed`, with the
/// arena room for [`Stage::scratch_packed`]): the input is copied once as `x ^ 0x80`, channels-last
/// and with its padding border, so that each kernel row of a receptive field is one contiguous
/// run of `kw * c` bytes, which `gemm_u8i8` reads in place (no im2col). A pool window's conv
/// outputs go through one call, so every weight load serves up to [`PACKED_PATCHES`] pixels.
/// The bias in `p` absorbs the `+ 128`: `sum (x + 128) w = sum x w + 128 sum w`. Pooling and
/// requantization are [`conv`]'s; max pooling happens inside `gemm_u8i8_max`.
#[allow(clippy::too_many_arguments)]
fn conv_packed(
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
struct Window<'r, 'p> {
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
fn copy_hwc_flipped(x: &[i8], [c, h, w]: [usize; 3], [pad_h, pad_w]: [usize; 2], hwc: bool, pad_byte: u8, dst: &mut [u8]) {
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

/// The coordinates along `axis` (0: rows, 1: columns) of pooled index `i`'s window that lie
/// inside `0..len`: window offsets `k` with `0 <= i * stride + k - padding < len`, so pool
/// padding is skipped (the plan keeps padding <= kernel/2: the range is never empty for a valid
/// pooled index).
fn window_range(p: &Pool, axis: usize, i: usize, len: usize) -> core::ops::Range<usize> {
    let (start, pad) = (i * p.stride[axis], p.padding[axis]);
    let lo = start.max(pad) - pad;
    let hi = (start + p.kernel[axis]).min(pad + len).saturating_sub(pad);
    lo..hi.max(lo)
}

/// `pacc[i] = max(pacc[i], acc[i] + corr[i])` (wrapping add). Out of line, so its loop gets the
/// registers (inlined into `conv` it spilled); equal lengths let it vectorize.
#[inline(never)]
fn max_into(pacc: &mut [i32], acc: &[i32], corr: &[i32]) {
    let n = pacc.len().min(acc.len()).min(corr.len());
    let (pacc, acc, corr) = (&mut pacc[..n], &acc[..n], &corr[..n]);
    for i in 0..n {
        pacc[i] = pacc[i].max(acc[i].wrapping_add(corr[i]));
    }
}

/// Writes channel `o`'s value to `out[cell + o * plane]` (CHW: channel o's plane starts at
/// `o * plane`), for every `o < vals.len()` that fits `out`.
#[inline(never)]
fn scatter(out: &mut [i8], cell: usize, plane: usize, vals: &[i32]) {
    // An index walk (a `step_by` iterator cost twice the instructions on a Cortex-M).
    let mut at = cell;
    for &v in vals {
        let Some(d) = out.get_mut(at) else { return };
        *d = v as i8;
        at = at.wrapping_add(plane);
    }
}

/// Packs two i8 as the low and high i16 halves of an i32.
#[inline]
fn pair(lo: i8, hi: i8) -> i32 {
    ((lo as i16 as u16 as u32) | ((hi as i16 as u16 as u32) << 16)) as i32
}

/// `xp[p] = pair(v[2p], v[2p + 1])`, a missing last element as 0.
#[inline(never)]
fn pack_pairs(v: &[i8], xp: &mut [i32]) {
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
fn pack_weight_pairs(w: &[i8], k: usize, n: usize, wt: &mut [i32]) {
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
fn matvec_for(k: &Kernels, t: &LayerTensors<'_>) -> fn(&[i8], &[i8], &mut [i32]) {
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

/// Copies `rows` runs of 8 bytes: run `r` (channel `r / kh`, kernel row `r % kh`) from
/// `src + (r / kh) * plane + (r % kh) * stride` to `dst + r * run` (runs overlap when
/// `run < 8`; each is written in increasing order, so every run's first `run` bytes survive).
///
/// # Safety
/// Every run's 8-byte read and write must be in bounds of their allocations, which must not
/// overlap each other.
#[inline(never)]
unsafe fn copy_rows8(src: *const i8, stride: usize, plane: usize, kh: usize, dst: *mut i8, run: usize, rows: usize) {
    // SAFETY (both calls): the caller's contract, passed on unchanged.
    match kh {
        // The common kernel heights, unrolled (MNIST's 5x5): a channel is kh load/store pairs.
        5 => unsafe { copy_rows8_kh::<5>(src, stride, plane, dst, run, rows) },
        3 => unsafe { copy_rows8_kh::<3>(src, stride, plane, dst, run, rows) },
        _ => {
            let (mut ch, mut d, mut left) = (src, dst, rows);
            while left > 0 && kh > 0 {
                let mut s = ch;
                for _ in 0..kh.min(left) {
                    // SAFETY: this run is one of the `rows` runs the caller vouches for.
                    unsafe { core::ptr::write_unaligned(d.cast::<u64>(), core::ptr::read_unaligned(s.cast::<u64>())) };
                    s = s.wrapping_add(stride);
                    d = d.wrapping_add(run);
                }
                ch = ch.wrapping_add(plane);
                left = left.saturating_sub(kh);
            }
        }
    }
}

/// [`copy_rows8`] for a kernel height known at compile time.
///
/// # Safety
/// As [`copy_rows8`].
#[inline(always)]
unsafe fn copy_rows8_kh<const KH: usize>(src: *const i8, stride: usize, plane: usize, dst: *mut i8, run: usize, rows: usize) {
    let (mut ch, mut d) = (src, dst);
    for _ in 0..rows / KH {
        for ky in 0..KH {
            // SAFETY: run `done + ky` of the `rows` runs the caller vouches for.
            unsafe {
                let v = core::ptr::read_unaligned(ch.wrapping_add(ky * stride).cast::<u64>());
                core::ptr::write_unaligned(d.wrapping_add(ky * run).cast::<u64>(), v);
            }
        }
        ch = ch.wrapping_add(plane);
        d = d.wrapping_add(KH * run);
    }
    for ky in 0..rows % KH {
        // SAFETY: as above, the last channel's first rows.
        unsafe {
            let v = core::ptr::read_unaligned(ch.wrapping_add(ky * stride).cast::<u64>());
            core::ptr::write_unaligned(d.wrapping_add(ky * run).cast::<u64>(), v);
        }
    }
}

/// A conv layer's receptive-field geometry, for gathering im2col patches.
struct Im2col {
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    pad_h: usize,
    pad_w: usize,
    /// Padding cells read as the input zero point (real 0).
    pad_val: i8,
}

impl Im2col {
    /// Gathers the receptive field whose top-left corner (in padded coordinates) is `origin` into
    /// `patch[..c * kh * kw]`, in the weights' `[c][kh][kw]` order; bytes after that are slack
    /// the 8-byte row copies may overwrite (`patch` must hold at least `c * kh * kw`). Out of line: inlined into `conv`, its loop
    /// spilled its counters to the stack.
    #[inline(never)]
    fn gather(&self, x: &[i8], [oy, ox]: [usize; 2], patch: &mut [i8]) {
        let Im2col { c, h, w, kh, kw, pad_h, pad_w, .. } = *self;
        let inside = oy >= pad_h && ox >= pad_w && oy + kh <= h + pad_h && ox + kw <= w + pad_w;
        if !inside {
            return self.gather_padded(x, [oy, ox], patch);
        }
        // Fast path (no padding in the window): copy each kernel row as one run of `kw` bytes.
        // Short runs move as one 8-byte copy where both sides have room; the extra bytes land
        // where the next run is written (runs are written in increasing order).
        let (iy0, ix0) = (oy - pad_h, ox - pad_w);
        let plane = h * w;
        let base = iy0 * w + ix0;
        let rows = c * kh;
        // Row r (channel r / kh, kernel row r % kh) reads x[src(r)..][..kw] and writes
        // patch[r * kw..][..kw]; both offsets grow with r, so the rows whose 8-byte read and write
        // stay in bounds are a prefix, found by walking back from the end (rarely past one row).
        let mut fast = if kw <= 8 && kh >= 1 { rows } else { 0 };
        let (mut ic, mut ky) = (c.saturating_sub(1), kh.saturating_sub(1));
        while fast > 0 {
            let src = ic * plane + base + ky * w;
            if src + 8 <= x.len() && (fast - 1) * kw + 8 <= patch.len() {
                break;
            }
            fast -= 1;
            if ky == 0 {
                (ic, ky) = (ic.saturating_sub(1), kh - 1);
            } else {
                ky -= 1;
            }
        }
        // SAFETY: rows r < fast have their 8-byte read inside `x` and their 8-byte write inside
        // `patch` (`fits`, a prefix); `x` and `patch` are distinct borrows, so they do not overlap.
        unsafe { copy_rows8(x.as_ptr().wrapping_add(base), w, plane, kh, patch.as_mut_ptr(), kw, fast) };
        for r in fast..rows {
            let (s, d) = ((r / kh) * plane + base + (r % kh) * w, r * kw);
            if let (Some(s), Some(d)) = (x.get(s..s + kw), patch.get_mut(d..d + kw)) {
                d.copy_from_slice(s);
            }
        }
    }

    #[cfg(any(feature = "dsp", not(target_arch = "arm")))]
    /// Taps `t0..t0 + n` of the patch at `origin` (as [`Im2col::gather`]) into `dst[..n]`,
    /// every cell checked against the input bounds (padding reads `pad_val`): what
    /// [`Im2col::gather_run4`] leaves to it.
    #[inline(never)]
    fn gather_run(&self, x: &[i8], [oy, ox]: [usize; 2], t0: usize, n: usize, dst: &mut [i8]) {
        let Im2col { h, w, kh, kw, pad_h, pad_w, pad_val, .. } = *self;
        if kw == 0 || kh == 0 {
            return;
        }
        let (mut ic, r) = (t0 / (kh * kw), t0 % (kh * kw));
        let (mut ky, mut kx) = (r / kw, r % kw);
        let mut d = 0;
        while d < n {
            let len = (kw - kx).min(n - d);
            let (iy, ix) = ((oy + ky).wrapping_sub(pad_h), (ox + kx).wrapping_sub(pad_w));
            let src = (ic * h + iy).wrapping_mul(w).wrapping_add(ix);
            for (j, v) in dst.iter_mut().skip(d).take(len).enumerate() {
                let ix = ix.wrapping_add(j);
                *v = if iy < h && ix < w { x.get(src.wrapping_add(j)).copied().unwrap_or(pad_val) } else { pad_val };
            }
            d += len;
            kx = 0;
            ky += 1;
            if ky == kh {
                (ky, ic) = (0, ic + 1);
            }
        }
    }

    #[cfg(any(feature = "dsp", not(target_arch = "arm")))]
    /// [`Im2col::gather_run`] for the 4 pixels at `origins` into `dst[p * stride..][..n]`, in pixel
    /// order, when their receptive fields lie inside the input (else `false`, nothing useful
    /// written): the first kernel row, the rest of its channel's rows, then whole channels
    /// through [`copy_rows8`] (kh rows unrolled), each row as one 8-byte copy whose extra bytes
    /// land where the next row goes, in the next pixel's run (written after) or in the
    /// [`POOL4_SLACK`] bytes `dst` holds past the 4 runs. The tap arithmetic is done once for all.
    fn gather_run4(&self, x: &[i8], origins: [[usize; 2]; 4], t0: usize, n: usize, stride: usize, dst: &mut [i8]) -> bool {
        let Im2col { h, w, kh, kw, pad_h, pad_w, .. } = *self;
        let inside = |[oy, ox]: [usize; 2]| oy >= pad_h && ox >= pad_w && oy + kh <= h + pad_h && ox + kw <= w + pad_w;
        if kw == 0
            || kw > 8
            || kh == 0
            || n > stride
            || dst.len() < 4 * stride + POOL4_SLACK
            || !origins.iter().all(|&o| inside(o))
        {
            return false;
        }
        let plane = h * w;
        let (ic, r) = (t0 / (kh * kw), t0 % (kh * kw));
        let (ky, kx) = (r / kw, r % kw);
        let first = kw - kx;
        // Rows after the first: `head` more of channel ic, then `tail` from channel ic + 1's row 0.
        let rows = if n > first { (n - first).div_ceil(kw) } else { 0 };
        let head = (kh - 1 - ky).min(rows);
        let tail = rows - head;
        // Each pixel's corner in `x`; the furthest read is row ky + rows of the furthest pixel.
        let corner = origins.map(|[oy, ox]| ic * plane + (oy - pad_h) * w + (ox - pad_w));
        let last = ky + rows;
        let far = corner.iter().fold(0, |m, &c| m.max(c)) + (last / kh) * plane + (last % kh) * w + 8;
        if far > x.len() {
            return false;
        }
        for (p, &c) in corner.iter().enumerate() {
            // SAFETY: every read is 8 bytes from the start of a row q in ky..=last (plus kx for
            // the first, kx + 8 <= kw... at most the row's start + kw <= + 8), and rows grow with q,
            // so all end by `far` <= x.len(); writes start before p * stride + n and end by
            // p * stride + n + 8 <= 4 * stride + POOL4_SLACK <= dst.len(); distinct borrows.
            unsafe {
                let row = x.as_ptr().add(c + ky * w);
                let mut d = dst.as_mut_ptr().add(p * stride);
                d.cast::<u64>().write_unaligned(row.add(kx).cast::<u64>().read_unaligned());
                d = d.add(first);
                let mut s = row;
                for _ in 0..head {
                    s = s.add(w);
                    d.cast::<u64>().write_unaligned(s.cast::<u64>().read_unaligned());
                    d = d.add(kw);
                }
                if tail > 0 {
                    copy_rows8(x.as_ptr().add(c + plane), w, plane, kh, d, kw, tail);
                }
            }
        }
        true
    }

    /// The general case: every cell checked against the input bounds.
    fn gather_padded(&self, x: &[i8], [oy, ox]: [usize; 2], patch: &mut [i8]) {
        let Im2col { c, h, w, kh, kw, pad_h, pad_w, pad_val } = *self;
        let mut idx = 0;
        for ic in 0..c {
            for ky in 0..kh {
                let iy = (oy + ky).wrapping_sub(pad_h);
                for kx in 0..kw {
                    let ix = (ox + kx).wrapping_sub(pad_w);
                    // wrapping_sub turns "before the start" into a huge index, caught by `< h/w`.
                    patch[idx] = if iy < h && ix < w { x[(ic * h + iy) * w + ix] } else { pad_val };
                    idx += 1;
                }
            }
        }
    }
}

/// Dense + requant (+ relu); `folded` is the zero-point-folded bias when a session prepared it.
#[allow(clippy::too_many_arguments)]
fn dense(
    k: &Kernels,
    t: &LayerTensors<'_>,
    st: &Stage,
    relu: bool,
    folded: Option<&[i32]>,
    x: &[i8],
    ints: &mut [i32],
    out: &mut [i8],
) -> Result<(), Error> {
    let n = out.len();
    // The plan's [`Stage::scratch`]: accumulators, then zero-point corrections (`n` each).
    if t.weight.len() != n * x.len() || folded.is_some_and(|f| f.len() != n) || ints.len() < 2 * n {
        return Err(BROKEN);
    }
    let (acc, corr) = ints.split_at_mut(n);
    let corr = corr.get_mut(..n).ok_or(BROKEN)?;
    let corr = match folded {
        Some(f) => f,
        None => {
            fold_zero_point(k, t, x.len(), st.in_zp, corr);
            &*corr
        }
    };
    matvec_for(k, t)(t.weight, x, acc);
    for (a, &c) in acc.iter_mut().zip(corr) {
        *a = a.wrapping_add(c);
    }
    (k.requantize_i32)(acc, &requant_params(t, st, relu));
    for (q, &a) in out.iter_mut().zip(&*acc) {
        *q = a as i8;
    }
    Ok(())
}

fn pool_standalone(st: &Stage, p: &Pool, avg: bool, x: &[i8], out: &mut [i8]) -> Result<(), Error> {
    let (Shape::Chw(c, h, w), Shape::Chw(_, oh, ow)) = (st.in_shape, st.out_shape) else {
        return Err(BROKEN);
    };
    for ch in 0..c {
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut acc, mut count) = (if avg { 0i32 } else { i32::MIN }, 0i32);
                for iy in window_range(p, 0, oy, h) {
                    for ix in window_range(p, 1, ox, w) {
                        let v = x[(ch * h + iy) * w + ix] as i32;
                        acc = if avg { acc + v } else { acc.max(v) };
                        count += 1;
                    }
                }
                let v = if avg { div_round(acc, count.max(1)) } else { acc };
                out[(ch * oh + oy) * ow + ox] = v as i8;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `window_range` against its definition: every window offset, kept when inside the plane.
    #[test]
    fn window_range_is_the_cells_inside_the_plane() {
        for kernel in 1..5 {
            for stride in 1..4 {
                for padding in 0..=kernel / 2 {
                    let p = Pool { kernel: [kernel, 1], stride: [stride, 1], padding: [padding, 0] };
                    for len in 1..9 {
                        for i in 0..len + 2 {
                            let want: std::vec::Vec<usize> =
                                (0..kernel).filter_map(|k| (i * stride + k).checked_sub(padding)).filter(|&v| v < len).collect();
                            let got: std::vec::Vec<usize> = window_range(&p, 0, i, len).collect();
                            assert_eq!(got, want, "kernel {kernel} stride {stride} padding {padding} len {len} i {i}");
                        }
                    }
                }
            }
        }
    }
}
