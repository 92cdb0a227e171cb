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
//!
//! The layout is computed here once, at parse time, and only read elsewhere: each `Stage`
//! holds the bytes its two ends take (`low`, `high`), its scratch `Region`s per `Path`
//! (the engine picks one with `Stage::path` and cuts the arena with `Stage::split`), and its
//! layer's region in a [`crate::Session`]'s packed store (`packed_off`, `packed`).
//! `Region::carve` is the one place where the 4- and 64-byte alignment steps are taken (the
//! arena may sit at any address); `Region::size` reserves the bytes they skip.

use core::ops::Range;

use crate::bytes::{as_i8, as_i8_mut, as_i32_mut};
use crate::error::Error;
use crate::format::{Activation, LayerSpec, MAX_DIM, MAX_DOT_LEN, MAX_LAYERS, Op, Pool, Shape, window_out};

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
    /// Conv at `layer`; `pool` is the index of the fused max/avg pool layer (`None`: an identity
    /// 1x1 max pool). Layer indices are small (< [`MAX_LAYERS`]), so the stage stays small.
    Conv {
        layer: usize,
        relu: bool,
        pool: Option<u8>,
    },
    Dense {
        layer: usize,
        relu: bool,
    },
    /// The standalone max/avg pool `layer`.
    Pool {
        layer: usize,
    },
    Relu,
}

/// A laid-out part of a buffer (a stage's scratch, a layer's part of a session's packed store):
/// `bytes` bytes at the next multiple of `align` (1 for scratch, [`PACKED_ALIGN`] in a
/// session's packed store), then `ints` i32s at the next multiple of 4. The arena may sit at any
/// address, so both steps are taken at run time, by [`Region::carve`] alone; [`Region::size`]
/// reserves the bytes they may skip. An empty part needs no alignment, so it reserves none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Region {
    pub bytes: u32,
    pub ints: u32,
}

impl Region {
    /// No bytes, no ints: the scratch of a pool or relu stage.
    pub(crate) const EMPTY: Region = Region { bytes: 0, ints: 0 };

    fn new(bytes: usize, ints: usize) -> Result<Region, Error> {
        let v = |n: usize| u32::try_from(n).map_err(|_| Error::Overflow);
        Ok(Region { bytes: v(bytes)?, ints: v(ints)? })
    }

    /// Bytes the region takes at any address: its parts plus their alignment slack.
    pub(crate) fn size(self, align: usize) -> Result<usize, Error> {
        let (bytes, ints) = (self.bytes as usize, self.ints as usize);
        let bytes = if bytes == 0 { 0 } else { add(bytes, align.saturating_sub(1))? };
        let ints = if ints == 0 { 0 } else { add(mul(4, ints)?, 3)? };
        add(bytes, ints)
    }

    /// The region at the start of `buf` (at least [`Region::size`] bytes): its `bytes` bytes,
    /// `align`-aligned, and its `ints` i32s, 4-aligned (`None` if `buf` is too short). The one
    /// place where alignment is resolved.
    #[inline]
    pub(crate) fn carve(self, buf: &mut [u8], align: usize) -> Option<(&mut [u8], &mut [i32])> {
        let (bytes, ints) = (self.bytes as usize, self.ints as usize);
        // `align_offset` may give up (usize::MAX); the region reserved `align - 1` bytes, and
        // skipping none only costs speed (the i32s are aligned by `as_i32_mut` regardless).
        let skip = if bytes == 0 { 0 } else { buf.as_ptr().align_offset(align).min(align.saturating_sub(1)) };
        let (b, rest) = buf.get_mut(skip..)?.split_at_mut_checked(bytes)?;
        let ints = as_i32_mut(rest).get_mut(..ints)?;
        Some((b, ints))
    }
}

/// Which of a stage's scratch layouts it uses in a given arena ([`Stage::path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// [`Stage::scratch`]: the least, what [`Plan::arena_bytes`] counts.
    Min,
    /// [`Stage::scratch_full`]: with the reference conv's extras.
    Full,
    /// [`Stage::scratch_packed`]: a conv stage of a session on the packed path.
    Packed,
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
    /// Bytes at the arena's low end (`arena[..low]`) and high end (`arena[len - high..]`): the
    /// stage's input and output, as `in_loc` and `out_loc` say (an in-place relu uses one end for
    /// both, a stage reading the caller's input only the low end). Its scratch lies between:
    /// `arena[low..len - high]`, at least as long as the scratch path it takes needs.
    pub low: u32,
    pub high: u32,
    /// Scratch (regions with alignment 1, at the scratch's start), by [`Path`]. Conv:
    /// `bytes` is the im2col patch, `ints` the accumulators, zero-point corrections and pool
    /// accumulators (`oc` each). Dense: `ints` the accumulators and corrections (`n` each).
    pub scratch: Region,
    /// Conv: `scratch` with [`PATCH_SLACK`] bytes after the patch and, for short patches
    /// ([`PAIRS_MAX_K`]), [`pairs_ints`] more i32s for `matvec_pairs_i16`. Others: `scratch`.
    pub scratch_full: Region,
    /// Conv: the packed path's scratch (see [`packed_scratch`]). Others: empty.
    pub scratch_packed: Region,
    /// Conv and dense: what a session prepares for this stage's layer (see [`packed_region`]),
    /// at byte `packed_off` of its packed store (alignment [`PACKED_ALIGN`]).
    pub packed_off: u32,
    pub packed: Region,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub stages: [Stage; MAX_LAYERS],
    pub n_stages: usize,
    pub arena_bytes: usize,
    /// Working arena bytes with which every conv stage of a [`crate::Session`] can take the
    /// packed path ([`Stage::scratch_packed`]); >= `arena_bytes`.
    pub session_work_bytes: usize,
    /// Bytes of a session's packed store: every conv/dense stage's [`Stage::packed`] region,
    /// one after another.
    pub packed_bytes: usize,
    pub out_shape: Shape,
    /// Index of the last conv2d/dense layer (whose quantization the scores have).
    pub last_quant_layer: usize,
}

/// A stage's input, scratch and output in the arena ([`Stage::split`]).
pub(crate) type StageSlices<'b> = (&'b [i8], &'b mut [u8], &'b mut [i8]);

/// Byte ranges of a stage's input (`None`: the caller's), scratch and output ([`Stage::ranges`]).
pub(crate) type StageRanges = (Option<Range<usize>>, Range<usize>, Range<usize>);

/// A stage's buffers violate the plan's own invariants: a bug, never bad input.
const LAYOUT_BROKEN: Error = Error::Internal("plan: a stage's buffers do not fit the arena");

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
            low: 0,
            high: 0,
            scratch: Region::EMPTY,
            scratch_full: Region::EMPTY,
            scratch_packed: Region::EMPTY,
            packed_off: 0,
            packed: Region::EMPTY,
        }
    }

    /// Bytes between the stage's low and high ends in an arena of `total` bytes.
    fn room(&self, total: usize) -> usize {
        total.saturating_sub((self.low as usize).saturating_add(self.high as usize))
    }

    /// The scratch layout the stage takes in an arena of `total` bytes: the packed path's when
    /// it is a conv stage whose layer a session packed (`packed`) and it fits, else the full
    /// reference layout when it fits, else the least.
    pub(crate) fn path(&self, total: usize, packed: bool) -> Path {
        let room = self.room(total);
        let fits = |r: Region| r.size(1).is_ok_and(|n| n <= room);
        if packed && matches!(self.op, StageOp::Conv { .. }) && fits(self.scratch_packed) {
            Path::Packed
        } else if fits(self.scratch_full) {
            Path::Full
        } else {
            Path::Min
        }
    }

    /// The scratch region of `path`.
    pub(crate) fn scratch_for(&self, path: Path) -> Region {
        match path {
            Path::Min => self.scratch,
            Path::Full => self.scratch_full,
            Path::Packed => self.scratch_packed,
        }
    }

    /// The arena cut into this stage's `[low | scratch | high]`, as (input, scratch, output);
    /// the input is `input` (the caller's) for the first stage. Not for an in-place stage
    /// ([`Stage::in_place`]).
    pub(crate) fn split<'b>(&self, arena: &'b mut [u8], input: &'b [i8]) -> Result<StageSlices<'b>, Error> {
        let (low_len, high_len) = (self.low as usize, self.high as usize);
        let mid = arena.len().checked_sub(low_len.checked_add(high_len).ok_or(LAYOUT_BROKEN)?).ok_or(LAYOUT_BROKEN)?;
        let (low, rest) = arena.split_at_mut(low_len);
        let (scratch, high) = rest.split_at_mut(mid);
        Ok(match (self.in_loc, self.out_loc) {
            (Loc::Input, Loc::Low) => (input, scratch, as_i8_mut(low)),
            (Loc::Low, Loc::High) => (as_i8(low), scratch, as_i8_mut(high)),
            (Loc::High, Loc::Low) => (as_i8(high), scratch, as_i8_mut(low)),
            _ => return Err(LAYOUT_BROKEN),
        })
    }

    /// The buffer of a stage that works in place (input and output at the same end).
    pub(crate) fn in_place<'b>(&self, arena: &'b mut [u8]) -> Result<&'b mut [i8], Error> {
        let total = arena.len();
        let buf = match (self.in_loc, self.out_loc) {
            (Loc::Low, Loc::Low) => arena.get_mut(..self.low as usize),
            (Loc::High, Loc::High) => arena.get_mut(total.checked_sub(self.high as usize).ok_or(LAYOUT_BROKEN)?..),
            _ => None,
        };
        Ok(as_i8_mut(buf.ok_or(LAYOUT_BROKEN)?))
    }

    /// Byte ranges of the stage's input (`None`: the caller's slice), scratch and output in an
    /// arena of `total` bytes (the scratch: all bytes between its ends).
    pub(crate) fn ranges(&self, total: usize) -> Option<StageRanges> {
        let low = 0..self.low as usize;
        let high = total.checked_sub(self.high as usize)?..total;
        let scratch = low.end..high.start.max(low.end);
        if low.end > high.start {
            return None;
        }
        let at = |loc| match loc {
            Loc::Low => Some(low.clone()),
            Loc::High => Some(high.clone()),
            Loc::Input => None,
        };
        Some((at(self.in_loc), scratch, at(self.out_loc)?))
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
        last_quant_layer: usize::MAX,
    };

    /// The scores in an arena the stages ran in: the last stage's output.
    pub(crate) fn output<'b>(&self, arena: &'b [u8]) -> Result<&'b [i8], Error> {
        let last = self.n_stages.checked_sub(1).and_then(|i| self.stages.get(i)).ok_or(LAYOUT_BROKEN)?;
        let (_, _, out) = last.ranges(arena.len()).ok_or(LAYOUT_BROKEN)?;
        Ok(as_i8(arena.get(out).ok_or(LAYOUT_BROKEN)?))
    }
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
            let k = in_channels.checked_mul(kernel[0]).and_then(|v| v.checked_mul(kernel[1])).ok_or(Error::Overflow)?;
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

/// Bytes of slack after the reference conv's im2col patch in [`Stage::scratch_full`], so that
/// its last rows move as 8-byte copies too.
pub(crate) const PATCH_SLACK: usize = 8;

/// Patches shorter than this use `matvec_pairs_i16` when the arena has room for
/// [`pairs_ints`] (in [`Stage::scratch_full`]); longer ones `matvec_i8(_sym)`, which is as fast
/// there and needs no copy of the weights.
pub(crate) const PAIRS_MAX_K: usize = 64;

/// I32s `matvec_pairs_i16` takes for a conv with patches of `k` bytes and `oc` channels: the
/// weights as i16 pairs (`[k/2][oc]`), then the patch as pairs (`k/2`), `k/2` rounded up.
pub(crate) fn pairs_ints(k: usize, oc: usize) -> Option<usize> {
    let kp = k.div_ceil(2);
    kp.checked_mul(oc)?.checked_add(kp)
}

/// The reference path's scratch of a stage: the least ([`Stage::scratch`]) and the full one
/// ([`Stage::scratch_full`]).
fn scratch_regions(op: &StageOp, layers: &[LayerSpec]) -> Result<(Region, Region), Error> {
    Ok(match *op {
        StageOp::Conv { layer, .. } => match layers.get(layer).map(|l| l.op) {
            // patch (K bytes); acc, zero-point correction and pool accumulator (`oc` i32s each)
            Some(Op::Conv2d { in_channels, out_channels, kernel, .. }) => {
                let k = mul(mul(in_channels, kernel[0])?, kernel[1])?;
                let ints = mul(3, out_channels)?;
                let pairs = if k < PAIRS_MAX_K { pairs_ints(k, out_channels).ok_or(Error::Overflow)? } else { 0 };
                (Region::new(k, ints)?, Region::new(add(k, PATCH_SLACK)?, add(ints, pairs)?)?)
            }
            _ => return Err(NOT_ITS_LAYER),
        },
        StageOp::Dense { layer, .. } => match layers.get(layer).map(|l| l.op) {
            // acc + zero-point correction
            Some(Op::Dense { out_features, .. }) => {
                let r = Region::new(0, mul(2, out_features)?)?;
                (r, r)
            }
            _ => return Err(NOT_ITS_LAYER),
        },
        StageOp::Pool { .. } | StageOp::Relu => (Region::EMPTY, Region::EMPTY),
    })
}

/// The max/avg pool a conv stage fuses (`pool`: its layer; `None`: the identity 1x1 max pool)
/// or a pool stage runs, and whether it averages.
pub(crate) fn pool_of(layers: &[LayerSpec], pool: Option<usize>) -> Result<(&Pool, bool), Error> {
    const IDENTITY: &Pool = &IDENTITY_POOL;
    let Some(i) = pool else { return Ok((IDENTITY, false)) };
    match layers.get(i).map(|l| &l.op) {
        Some(Op::MaxPool2d(p)) => Ok((p, false)),
        Some(Op::AvgPool2d(p)) => Ok((p, true)),
        _ => Err(NOT_ITS_LAYER),
    }
}

/// Patches per call of [`crate::kernels::Kernels::gemm_u8i8`] on the packed conv path: a 2x2
/// pool window's conv outputs, computed together so each weight load serves four pixels.
pub(crate) const PACKED_PATCHES: usize = 4;

/// Bytes after the packed path's channels-last input copy: a segment's last quad may read up to
/// 3 bytes past the receptive field (those bytes meet zero weights).
pub(crate) const SEGMENT_SLACK: usize = 4;

/// Alignment of a conv layer's packed weights in a session's store.
pub(crate) const PACKED_ALIGN: usize = 64;

/// The packed layout of a conv layer: output channels rounded up to
/// [`crate::kernels::PACK_OC`], and bytes per kernel-row segment (`kw * c` rounded up to 4).
pub(crate) fn packed_dims(spec: &LayerSpec) -> Option<(usize, usize)> {
    let Op::Conv2d { in_channels, out_channels, kernel, .. } = spec.op else { return None };
    let ocp = out_channels.checked_next_multiple_of(crate::kernels::PACK_OC)?;
    let seg = kernel[1].checked_mul(in_channels)?.checked_next_multiple_of(4)?;
    Some((ocp, seg))
}

/// What a session prepares for one layer ([`Stage::packed`], alignment [`PACKED_ALIGN`]): a
/// conv layer's packed weights (`kh * seg * ocp` bytes) and bias (`ocp` i32s); a dense layer's
/// folded bias (`out_features` i32s); `None` for other layers.
fn packed_region(spec: &LayerSpec) -> Result<Option<Region>, Error> {
    if let Op::Dense { out_features, .. } = spec.op {
        return Ok(Some(Region::new(0, out_features)?));
    }
    let Op::Conv2d { kernel, .. } = spec.op else { return Ok(None) };
    let (ocp, seg) = packed_dims(spec).ok_or(Error::Overflow)?;
    Ok(Some(Region::new(mul(mul(kernel[0], seg)?, ocp)?, ocp)?))
}

/// Scratch of a conv stage on the packed path ([`Stage::scratch_packed`]): `bytes` is the input
/// as `x ^ 0x80`, channels-last and padded (plus [`SEGMENT_SLACK`]); `ints` the products of
/// [`PACKED_PATCHES`] patches, then a row of pooled cells' accumulators (`ocp` each, `oc`
/// rounded up to [`crate::kernels::PACK_OC`]). Empty for other stages.
fn packed_scratch(op: &StageOp, layers: &[LayerSpec], in_shape: Shape, out_shape: Shape) -> Result<Region, Error> {
    let StageOp::Conv { layer, .. } = *op else { return Ok(Region::EMPTY) };
    let spec = layers.get(layer).ok_or(NOT_ITS_LAYER)?;
    let (Op::Conv2d { padding, .. }, Shape::Chw(c, h, w), Shape::Chw(_, _, pw)) = (spec.op, in_shape, out_shape) else {
        return Err(NOT_ITS_LAYER);
    };
    let (ocp, _) = packed_dims(spec).ok_or(Error::Overflow)?;
    let hp = add(h, mul(2, padding[0])?)?;
    let wp = add(w, mul(2, padding[1])?)?;
    let input = add(mul(mul(hp, wp)?, c)?, SEGMENT_SLACK)?;
    Region::new(input, mul(add(PACKED_PATCHES, pw)?, ocp)?)
}

/// Validates the chain and plans stages and buffers into `plan` (a [`Plan::EMPTY`]), in place:
/// a `Plan` is over 1 KB, too much to build in a local and copy out on a microcontroller's stack.
/// On error `plan` holds a partial plan, to be discarded.
#[inline(never)]
pub(crate) fn plan_into(input_shape: Shape, input_zp: i32, layers: &[LayerSpec], plan: &mut Plan) -> Result<(), Error> {
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
                let mut j = i;
                let mut relu = activation == Activation::Relu;
                if matches!(layers.get(j + 1).map(|l| l.op), Some(Op::Relu)) {
                    relu = true;
                    j += 1;
                }
                let pool = match layers.get(j + 1).map(|l| l.op) {
                    Some(Op::MaxPool2d(_) | Op::AvgPool2d(_)) => {
                        j += 1;
                        Some(u8::try_from(j).map_err(|_| Error::TooManyLayers(layers.len()))?)
                    }
                    _ => None,
                };
                plan.last_quant_layer = i;
                (StageOp::Conv { layer: i, relu, pool }, output.zero_point, j)
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
            Op::MaxPool2d(_) | Op::AvgPool2d(_) => (StageOp::Pool { layer: i }, zp, i),
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
        // Input and output at the two ends of the arena (an in-place relu at one), scratch between.
        let (out_loc, low, high) = match (op, loc) {
            // Standalone relu works in place once the data is in the arena.
            (StageOp::Relu, Loc::Low) => (loc, in_len, 0),
            (StageOp::Relu, Loc::High) => (loc, 0, in_len),
            (_, Loc::Input) => (Loc::Low, out_len, 0),
            (_, Loc::Low) => (Loc::High, in_len, out_len),
            (_, Loc::High) => (Loc::Low, out_len, in_len),
        };
        let ends = add(low, high)?;
        let (scratch, scratch_full) = scratch_regions(&op, layers)?;
        let scratch_packed = packed_scratch(&op, layers, in_shape, out_shape)?;
        plan.arena_bytes = plan.arena_bytes.max(add(ends, scratch.size(1)?)?);
        let session_scratch = scratch.size(1)?.max(scratch_packed.size(1)?);
        plan.session_work_bytes = plan.session_work_bytes.max(add(ends, session_scratch)?).max(plan.arena_bytes);
        let (packed_off, packed) = match op {
            StageOp::Conv { layer, .. } | StageOp::Dense { layer, .. } => {
                let spec = layers.get(layer).ok_or(NOT_ITS_LAYER)?;
                let region = packed_region(spec)?.ok_or(NOT_ITS_LAYER)?;
                let off = plan.packed_bytes;
                plan.packed_bytes = add(off, region.size(PACKED_ALIGN)?)?;
                (off, region)
            }
            _ => (0, Region::EMPTY),
        };
        let u = |n: usize| u32::try_from(n).map_err(|_| Error::Overflow);
        let stage = plan.stages.get_mut(plan.n_stages).ok_or(Error::TooManyLayers(layers.len()))?;
        *stage = Stage {
            op,
            in_shape,
            out_shape,
            in_zp: zp,
            out_zp,
            in_loc: loc,
            out_loc,
            low: u(low)?,
            high: u(high)?,
            scratch,
            scratch_full,
            scratch_packed,
            packed_off: u(packed_off)?,
            packed,
        };
        plan.n_stages += 1;
        (shape, zp, loc) = (out_shape, out_zp, out_loc);
        i = last + 1;
    }
    if plan.last_quant_layer == usize::MAX {
        return Err(Error::InconsistentLayer { layer: 0, reason: "no conv2d or dense layer" });
    }
    // Every offset a session reads fits the u32 fields, and so does the whole store.
    u32::try_from(plan.packed_bytes.max(plan.session_work_bytes)).map_err(|_| Error::Overflow)?;
    Ok(())
}

/// Byte ranges of one stage's buffers in an arena of a given length (see [`Layout::stages`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageBuffers {
    /// The input; `None` for a stage that reads the caller's input slice.
    pub input: Option<Range<usize>>,
    /// The output: the same range as `input` for a relu that works in place.
    pub output: Range<usize>,
    /// The scratch the stage uses in this arena, alignment slack included (starts right after
    /// the arena's low end).
    pub scratch: Range<usize>,
    /// Whether it takes the packed conv path.
    pub packed_path: bool,
}

/// What a [`crate::Session`] prepares for one layer: where in its packed store (the start of
/// the session's arena) it lies, alignment slack included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedBuffers {
    pub layer: usize,
    pub range: Range<usize>,
}

/// The arena layout a [`crate::Model`] planned at parse time ([`crate::Model::layout`]): what
/// the engine and sessions read, for tests and tools.
#[derive(Debug, Clone, Copy)]
pub struct Layout<'m> {
    plan: &'m Plan,
}

impl<'m> Layout<'m> {
    /// Bytes of a session's packed store (the first bytes of its arena; the rest is the working
    /// arena the stages run in).
    pub fn packed_bytes(&self) -> usize {
        self.plan.packed_bytes
    }

    /// Every stage's buffers in a working arena of `arena_len` bytes, with a session's packed
    /// layers (`session`) or without ([`crate::Model::run`]); `None` for a stage whose buffers
    /// do not fit.
    pub fn stages(&self, arena_len: usize, session: bool) -> impl Iterator<Item = Option<StageBuffers>> + 'm {
        let stages = self.plan.stages.get(..self.plan.n_stages).unwrap_or(&[]);
        stages.iter().map(move |st| {
            let path = st.path(arena_len, session);
            let (input, between, output) = st.ranges(arena_len)?;
            let size = st.scratch_for(path).size(1).ok()?;
            let scratch = between.start..between.start.checked_add(size)?;
            (scratch.end <= between.end).then_some(StageBuffers { input, output, scratch, packed_path: path == Path::Packed })
        })
    }

    /// Every conv/dense layer's part of a session's packed store, in stage order.
    pub fn packed(&self) -> impl Iterator<Item = PackedBuffers> + 'm {
        let stages = self.plan.stages.get(..self.plan.n_stages).unwrap_or(&[]);
        stages.iter().filter_map(|st| {
            let (StageOp::Conv { layer, .. } | StageOp::Dense { layer, .. }) = st.op else { return None };
            let off = st.packed_off as usize;
            Some(PackedBuffers { layer, range: off..off.saturating_add(st.packed.size(PACKED_ALIGN).ok()?) })
        })
    }
}

impl crate::Model<'_> {
    /// The arena layout planned at parse time (see [`Layout`]).
    pub fn layout(&self) -> Layout<'_> {
        Layout { plan: self.plan() }
    }
}
