//! Shape checking, layer fusion and arena planning.
//!
//! Layers are grouped into stages: conv2d [+ relu] [+ max/avg pool] is one stage (the conv output
//! is never stored whole: each pooled value is computed from its window's conv outputs), dense
//! [+ relu] is one stage, a standalone pool or relu is one stage; flatten and softmax are free.
//!
//! Buffers: a stage reads its input at one end of the arena and writes its output at the other
//! end ("low" = offset 0, "high" = ending at the arena's last byte), with its scratch in between;
//! the next stage reads from where this one wrote. The first stage reads the caller's input slice
//! directly. So the arena needed is `max over stages (input + scratch + output)`.

use crate::error::Error;
use crate::format::{
    window_out, Activation, LayerSpec, Op, Pool, Shape, MAX_DIM, MAX_DOT_LEN, MAX_LAYERS,
};

/// Where a stage's input or output lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loc {
    /// The caller's input slice.
    Input,
    /// `arena[..len]`.
    Low,
    /// `arena[arena.len() - len..]`.
    High,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum StageOp {
    /// Conv at `layer`; `pool` is the fused pool (identity 1x1 max when none).
    Conv { layer: usize, relu: bool, pool: Pool, avg: bool, conv_hw: [usize; 2] },
    Dense { layer: usize, relu: bool },
    Pool { pool: Pool, avg: bool },
    Relu,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Stage {
    pub op: StageOp,
    pub in_shape: Shape,
    pub out_shape: Shape,
    pub in_zp: i32,
    pub out_zp: i32,
    pub in_loc: Loc,
    pub out_loc: Loc,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub stages: [Stage; MAX_LAYERS],
    pub n_stages: usize,
    pub arena_bytes: usize,
    /// Working arena bytes with which every conv stage of a [`crate::Session`] can take the
    /// packed path ([`fast_scratch_bytes`]); >= `arena_bytes`.
    pub session_work_bytes: usize,
    /// Bytes of all conv layers' packed weights and biases ([`packed_layer_bytes`]).
    pub packed_bytes: usize,
    pub out_shape: Shape,
    pub out_loc: Loc,
    /// Index of the last conv2d/dense layer (whose quantization the scores have).
    pub last_quant_layer: usize,
}

impl Stage {
    /// What the unused entries of [`Plan::stages`] hold.
    const fn unused(shape: Shape) -> Stage {
        Stage {
            op: StageOp::Relu,
            in_shape: shape,
            out_shape: shape,
            in_zp: 0,
            out_zp: 0,
            in_loc: Loc::Input,
            out_loc: Loc::Input,
        }
    }
}

impl Plan {
    /// No stages: what [`plan_into`] starts from.
    pub(crate) const EMPTY: Plan = Plan {
        stages: [Stage::unused(Shape::Flat(0)); MAX_LAYERS],
        n_stages: 0,
        arena_bytes: 0,
        session_work_bytes: 0,
        packed_bytes: 0,
        out_shape: Shape::Flat(0),
        out_loc: Loc::Input,
        last_quant_layer: usize::MAX,
    };
}

/// Bytes of arena a model with this input shape and layer list needs (what the exporter writes
/// under `arena_bytes`). Also validates the layer chain.
pub fn arena_bytes(input_shape: Shape, layers: &[LayerSpec]) -> Result<usize, Error> {
    let mut plan = Plan::EMPTY;
    plan_into(input_shape, 0, layers, &mut plan)?;
    Ok(plan.arena_bytes)
}

const IDENTITY_POOL: Pool = Pool { kernel: [1, 1], stride: [1, 1], padding: [0, 0] };

fn check_dim(layer: usize, v: usize, min: usize) -> Result<(), Error> {
    if v < min || v > MAX_DIM {
        return Err(Error::BadLayer { layer, reason: "dimension out of range" });
    }
    Ok(())
}

fn check_pool(layer: usize, p: &Pool) -> Result<(), Error> {
    for a in 0..2 {
        check_dim(layer, p.kernel[a], 1)?;
        check_dim(layer, p.stride[a], 1)?;
        // PyTorch's rule; it guarantees every window holds at least one real cell.
        if p.padding[a] > p.kernel[a] / 2 {
            return Err(Error::BadLayer { layer, reason: "pool padding exceeds half the kernel" });
        }
    }
    Ok(())
}

fn pooled(layer: usize, shape: Shape, p: &Pool) -> Result<Shape, Error> {
    let Shape::Chw(c, h, w) = shape else {
        return Err(Error::InconsistentLayer { layer, reason: "pool needs a [C,H,W] input" });
    };
    let oh = window_out(h, p.kernel[0], p.stride[0], p.padding[0]);
    let ow = window_out(w, p.kernel[1], p.stride[1], p.padding[1]);
    match (oh, ow) {
        (Some(oh), Some(ow)) => Ok(Shape::Chw(c, oh, ow)),
        _ => Err(Error::InconsistentLayer { layer, reason: "window larger than padded input" }),
    }
}

fn check_quant(layer: usize, zp: i32, scale: f32) -> Result<(), Error> {
    if !(-128..=127).contains(&zp) {
        return Err(Error::BadLayer { layer, reason: "output_zero_point outside [-128, 127]" });
    }
    if !(scale.is_finite() && scale > 0.0) {
        return Err(Error::BadLayer { layer, reason: "output_scale must be finite and > 0" });
    }
    Ok(())
}

/// Output shape of `layer` given its input shape, validating its parameters.
fn infer(layer: usize, spec: &LayerSpec, shape: Shape, last: bool) -> Result<Shape, Error> {
    let bad = |reason| Error::InconsistentLayer { layer, reason };
    let out = match spec.op {
        Op::Conv2d { in_channels, out_channels, kernel, stride, padding, output, .. } => {
            let Shape::Chw(c, _, _) = shape else {
                return Err(bad("conv2d needs a [C,H,W] input"));
            };
            if in_channels != c {
                return Err(bad("in_channels differs from the input's channels"));
            }
            check_dim(layer, out_channels, 1)?;
            for a in 0..2 {
                check_dim(layer, kernel[a], 1)?;
                check_dim(layer, stride[a], 1)?;
                check_dim(layer, padding[a], 0)?;
            }
            check_quant(layer, output.zero_point, output.scale)?;
            let k = in_channels
                .checked_mul(kernel[0])
                .and_then(|v| v.checked_mul(kernel[1]))
                .ok_or(Error::Overflow)?;
            if k > MAX_DOT_LEN {
                return Err(Error::BadLayer { layer, reason: "in_channels*kh*kw exceeds MAX_DOT_LEN" });
            }
            let p = Pool { kernel, stride, padding };
            let Shape::Chw(_, h, w) = pooled(layer, shape, &p)? else { match unreachable_shape()? {} };
            Shape::Chw(out_channels, h, w)
        }
        Op::Dense { in_features, out_features, output, .. } => {
            let Shape::Flat(n) = shape else {
                return Err(bad("dense needs a flat input (add flatten)"));
            };
            if in_features != n {
                return Err(bad("in_features differs from the input's length"));
            }
            check_dim(layer, in_features, 1)?;
            check_dim(layer, out_features, 1)?;
            check_quant(layer, output.zero_point, output.scale)?;
            Shape::Flat(out_features)
        }
        Op::MaxPool2d(p) | Op::AvgPool2d(p) => {
            check_pool(layer, &p)?;
            if (p.kernel[0] as u64) * (p.kernel[1] as u64) > MAX_DOT_LEN as u64 {
                // Bounds the avg-pool sum (area * 128) far below i32::MAX.
                return Err(Error::BadLayer { layer, reason: "pool window area exceeds MAX_DOT_LEN" });
            }
            pooled(layer, shape, &p)?
        }
        Op::Relu => shape,
        Op::Flatten => Shape::Flat(shape.len().ok_or(Error::Overflow)?),
        Op::Softmax => {
            if !last {
                return Err(bad("softmax must be the last layer"));
            }
            if !matches!(shape, Shape::Flat(_)) {
                return Err(bad("softmax needs a flat input"));
            }
            shape
        }
    };
    if out != spec.output_shape {
        return Err(bad("output_shape differs from the computed shape"));
    }
    Ok(out)
}

/// Never taken (`pooled` always returns `Chw`); keeps the code panic-free without `unreachable!`.
fn unreachable_shape() -> Result<core::convert::Infallible, Error> {
    Err(Error::Overflow)
}

fn add(a: usize, b: usize) -> Result<usize, Error> {
    a.checked_add(b).ok_or(Error::Overflow)
}

fn mul(a: usize, b: usize) -> Result<usize, Error> {
    a.checked_mul(b).ok_or(Error::Overflow)
}

/// A stage names a layer of another kind than its own: the planner's bug, never bad input.
const NOT_ITS_LAYER: Error = Error::Internal("plan: a stage does not match its layer");

/// Scratch bytes of a stage: 3 bytes of slack to 4-align the i32 area, then i32s.
pub(crate) fn scratch_bytes(op: &StageOp, layers: &[LayerSpec]) -> Result<usize, Error> {
    Ok(match *op {
        StageOp::Conv { layer, .. } => match layers.get(layer).map(|l| l.op) {
            // patch (K bytes) + acc, zero-point correction and pool accumulator (3 i32 per channel)
            Some(Op::Conv2d { in_channels, out_channels, kernel, .. }) => {
                let k = mul(mul(in_channels, kernel[0])?, kernel[1])?;
                add(add(k, 3)?, mul(12, out_channels)?)?
            }
            _ => return Err(NOT_ITS_LAYER),
        },
        StageOp::Dense { layer, .. } => match layers.get(layer).map(|l| l.op) {
            // acc + zero-point correction
            Some(Op::Dense { out_features, .. }) => add(3, mul(8, out_features)?)?,
            _ => return Err(NOT_ITS_LAYER),
        },
        StageOp::Pool { .. } | StageOp::Relu => 0,
    })
}

/// Patches per call of [`crate::kernels::Kernels::gemm_u8i8`] on the packed conv path: a 2x2
/// pool window's conv outputs, computed together so each weight load serves four pixels.
pub(crate) const PACKED_PATCHES: usize = 4;

/// Bytes after the packed path's channels-last input copy: a segment's last quad may read up to
/// 3 bytes past the receptive field (those bytes meet zero weights).
pub(crate) const SEGMENT_SLACK: usize = 4;

/// The packed layout of a conv layer: output channels rounded up to
/// [`crate::kernels::PACK_OC`], and bytes per kernel-row segment (`kw * c` rounded up to 4).
pub(crate) fn packed_dims(spec: &LayerSpec) -> Option<(usize, usize)> {
    let Op::Conv2d { in_channels, out_channels, kernel, .. } = spec.op else { return None };
    let ocp = out_channels.checked_next_multiple_of(crate::kernels::PACK_OC)?;
    let seg = kernel[1].checked_mul(in_channels)?.checked_next_multiple_of(4)?;
    Some((ocp, seg))
}

/// Bytes a session prepares for one layer: a conv layer's packed weights (`kh * seg * ocp`,
/// 64-aligned) and bias (`ocp` i32s, 4-aligned); a dense layer's folded bias (`out_features`
/// i32s, 4-aligned); `None` for other layers.
pub(crate) fn packed_layer_bytes(spec: &LayerSpec) -> Result<Option<usize>, Error> {
    if let Op::Dense { out_features, .. } = spec.op {
        return Ok(Some(add(3, mul(4, out_features)?)?));
    }
    let Op::Conv2d { kernel, .. } = spec.op else { return Ok(None) };
    let (ocp, seg) = packed_dims(spec).ok_or(Error::Overflow)?;
    let weights = add(mul(mul(kernel[0], seg)?, ocp)?, 63)?;
    Ok(Some(add(add(weights, 3)?, mul(4, ocp)?)?))
}

/// Scratch bytes of a conv stage on the packed path (`None` for other stages): the input as
/// `x ^ 0x80`, channels-last and padded (plus [`SEGMENT_SLACK`]), then i32s (4-aligned) for
/// [`PACKED_PATCHES`] patches' products and a row of pooled cells' accumulators (`oc` rounded
/// up to [`crate::kernels::PACK_OC`]).
pub(crate) fn fast_scratch_bytes(op: &StageOp, layers: &[LayerSpec], in_shape: Shape, out_shape: Shape) -> Result<Option<usize>, Error> {
    let StageOp::Conv { layer, .. } = *op else { return Ok(None) };
    let spec = layers.get(layer).ok_or(NOT_ITS_LAYER)?;
    let (Op::Conv2d { padding, .. }, Shape::Chw(c, h, w), Shape::Chw(_, _, pw)) = (spec.op, in_shape, out_shape) else {
        return Err(NOT_ITS_LAYER);
    };
    let (ocp, _) = packed_dims(spec).ok_or(Error::Overflow)?;
    let hp = add(h, mul(2, padding[0])?)?;
    let wp = add(w, mul(2, padding[1])?)?;
    let input = add(mul(mul(hp, wp)?, c)?, SEGMENT_SLACK)?;
    let ints = add(mul(4, mul(add(PACKED_PATCHES, pw)?, ocp)?)?, 3)?;
    Ok(Some(add(input, ints)?))
}

/// Validates the chain and plans stages and buffers into `plan` (a [`Plan::EMPTY`]), in place:
/// a `Plan` is over 1 KB, too much to build in a local and copy out on a microcontroller's stack.
/// On error `plan` holds a partial plan, to be discarded.
#[inline(never)]
pub(crate) fn plan_into(
    input_shape: Shape,
    input_zp: i32,
    layers: &[LayerSpec],
    plan: &mut Plan,
) -> Result<(), Error> {
    if layers.len() > MAX_LAYERS {
        return Err(Error::TooManyLayers(layers.len()));
    }
    match input_shape {
        Shape::Chw(c, h, w) if [c, h, w].iter().all(|&d| (1..=MAX_DIM).contains(&d)) => {}
        Shape::Flat(n) if (1..=MAX_DIM).contains(&n) => {}
        _ => return Err(Error::BadMetadata { key: "input_shape", reason: "dimension out of range" }),
    }
    // Shapes first, so every later step works on a valid chain.
    let mut shapes = [Shape::Flat(0); MAX_LAYERS];
    let mut shape = input_shape;
    for (i, l) in layers.iter().enumerate() {
        shape = infer(i, l, shape, i + 1 == layers.len())?;
        shapes[i] = shape;
    }
    let out_shape = shape;
    if !matches!(out_shape, Shape::Flat(_)) {
        return Err(Error::InconsistentLayer {
            layer: layers.len().saturating_sub(1),
            reason: "the model must end with a flat output",
        });
    }

    // Written in place (no 1 KB temporary); unused entries show in `Model`'s `Debug`.
    plan.stages.fill(Stage::unused(input_shape));
    plan.n_stages = 0;
    plan.arena_bytes = 0;
    plan.session_work_bytes = 0;
    plan.packed_bytes = 0;
    plan.out_shape = out_shape;
    plan.last_quant_layer = usize::MAX;
    let (mut shape, mut zp, mut loc) = (input_shape, input_zp, Loc::Input);
    let mut i = 0;
    while i < layers.len() {
        let in_shape = shape;
        let (op, out_zp, last) = match layers[i].op {
            Op::Conv2d { activation, output, .. } => {
                let conv_shape = shapes[i];
                let Shape::Chw(_, ch, cw) = conv_shape else { match unreachable_shape()? {} };
                let mut j = i;
                let mut relu = activation == Activation::Relu;
                if matches!(layers.get(j + 1).map(|l| l.op), Some(Op::Relu)) {
                    relu = true;
                    j += 1;
                }
                let (pool, avg) = match layers.get(j + 1).map(|l| l.op) {
                    Some(Op::MaxPool2d(p)) => {
                        j += 1;
                        (p, false)
                    }
                    Some(Op::AvgPool2d(p)) => {
                        j += 1;
                        (p, true)
                    }
                    _ => (IDENTITY_POOL, false),
                };
                plan.last_quant_layer = i;
                (StageOp::Conv { layer: i, relu, pool, avg, conv_hw: [ch, cw] }, output.zero_point, j)
            }
            Op::Dense { activation, output, .. } => {
                let mut j = i;
                let mut relu = activation == Activation::Relu;
                if matches!(layers.get(j + 1).map(|l| l.op), Some(Op::Relu)) {
                    relu = true;
                    j += 1;
                }
                plan.last_quant_layer = i;
                (StageOp::Dense { layer: i, relu }, output.zero_point, j)
            }
            Op::MaxPool2d(p) => (StageOp::Pool { pool: p, avg: false }, zp, i),
            Op::AvgPool2d(p) => (StageOp::Pool { pool: p, avg: true }, zp, i),
            Op::Relu => (StageOp::Relu, zp, i),
            Op::Flatten | Op::Softmax => {
                shape = shapes[i];
                i += 1;
                continue;
            }
        };
        let out_shape = shapes[last];
        let in_len = in_shape.len().ok_or(Error::Overflow)?;
        let out_len = out_shape.len().ok_or(Error::Overflow)?;
        let scratch = scratch_bytes(&op, layers)?;
        let (out_loc, need) = match (op, loc) {
            // Standalone relu works in place once the data is in the arena.
            (StageOp::Relu, Loc::Low | Loc::High) => (loc, in_len),
            (_, Loc::Input) => (Loc::Low, add(out_len, scratch)?),
            (_, Loc::Low) => (Loc::High, add(add(in_len, scratch)?, out_len)?),
            (_, Loc::High) => (Loc::Low, add(add(in_len, scratch)?, out_len)?),
        };
        plan.arena_bytes = plan.arena_bytes.max(need);
        let fast_need = match fast_scratch_bytes(&op, layers, in_shape, out_shape)? {
            Some(fast) => add(need.checked_sub(scratch).ok_or(Error::Overflow)?, fast)?,
            None => need,
        };
        plan.session_work_bytes = plan.session_work_bytes.max(fast_need).max(plan.arena_bytes);
        if let StageOp::Conv { layer, .. } | StageOp::Dense { layer, .. } = op {
            let packed = packed_layer_bytes(&layers[layer])?.ok_or(Error::Overflow)?;
            plan.packed_bytes = add(plan.packed_bytes, packed)?;
        }
        plan.stages[plan.n_stages] =
            Stage { op, in_shape, out_shape, in_zp: zp, out_zp, in_loc: loc, out_loc };
        plan.n_stages += 1;
        (shape, zp, loc) = (out_shape, out_zp, out_loc);
        i = last + 1;
    }
    if plan.last_quant_layer == usize::MAX {
        return Err(Error::InconsistentLayer { layer: 0, reason: "no conv2d or dense layer" });
    }
    plan.out_loc = loc;
    Ok(())
}
