//! Executes a [`Plan`] in the caller's arena. Graph-level loops only; arithmetic on vectors goes
//! through the [`Kernels`] table so SIMD versions slot in. Integer-only: no float on this path.
//!
//! Sizes used for indexing here were validated by `plan` (shapes, arena size), so slices are cut
//! once per stage with checked `get`, and inner loops index within those proven bounds.
//!
//! One file per way of running a stage: `conv` (the reference path: im2col patches through the
//! matvec kernels), `pool4` (a 2x2 max-pool window's 4 conv outputs per weight word, for tables
//! with `matvec4_i8`), `packed` (a session's packed weights read by `gemm_u8i8`), `dense`,
//! `pool` (pooling on its own); `im2col` gathers receptive fields for the first two. This file
//! walks the plan and picks the path per stage.

mod conv;
mod dense;
mod im2col;
mod packed;
mod pool;
// The 4-pixel conv path exists where a table may provide `matvec4_i8` (see its docs).
#[cfg(any(feature = "dsp", not(target_arch = "arm")))]
mod pool4;

pub(crate) use conv::has_i8_min;
pub(crate) use packed::pack_conv;

use crate::bytes::le_i32;
use crate::error::Error;
use crate::format::{LayerSpec, MAX_LAYERS, Shape};
use crate::kernels::{Kernels, Requant};
use crate::plan::{Loc, Path, Plan, Stage, StageOp, pool_of};
use conv::{ConvStage, conv};
use dense::dense;
use packed::conv_packed;
use pool::pool_standalone;
#[cfg(any(feature = "dsp", not(target_arch = "arm")))]
use pool4::{conv_pool4, pool4_run};

/// One conv2d/dense layer's tensors, borrowed from the file bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerTensors<'a> {
    pub weight: &'a [i8],
    /// Whether some weight is -128, which rules out `matvec_i8_sym` (see [`matvec_for`](conv::matvec_for)).
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
/// only (`wp` empty), which [`dense()`] otherwise recomputes on every call.
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

pub(super) fn requant_params<'a>(t: &LayerTensors<'a>, st: &Stage, relu: bool) -> Requant<'a> {
    let lo = if relu { st.out_zp } else { -128 };
    Requant { multiplier: t.multiplier, shift: t.shift, zp_out: st.out_zp, lo }
}

/// Rounds `sum / n` half away from zero (`n >= 1`).
#[inline]
pub(crate) fn div_round(sum: i32, n: i32) -> i32 {
    if sum >= 0 { (sum + n / 2) / n } else { -((-sum + n / 2) / n) }
}

/// Writes channel `o`'s value to `out[cell + o * plane]` (CHW: channel o's plane starts at
/// `o * plane`), for every `o < vals.len()` that fits `out`.
#[inline(never)]
pub(super) fn scatter(out: &mut [i8], cell: usize, plane: usize, vals: &[i32]) {
    // An index walk (a `step_by` iterator cost twice the instructions on a Cortex-M).
    let mut at = cell;
    for &v in vals {
        let Some(d) = out.get_mut(at) else { return };
        *d = v as i8;
        at = at.wrapping_add(plane);
    }
}
