//! The parsed model: validated once in [`Model::parse`], then run any number of times.

use core::mem::MaybeUninit;

use crate::engine::{self, LayerTensors};
use crate::error::{Error, JsonContext};
use crate::format::{
    Activation, FORMAT_NAME, FORMAT_VERSION, LayerSpec, MAX_LAYERS, Op, Pool, Quant, SHIFT_MAX, SHIFT_MIN, Shape, TENSOR_PREFIX,
    TensorKind, fields, keys,
};
use crate::json::{JErr, Parser, Text};
use crate::kernels::{self, Kernels};
use crate::plan::{self, Plan};
use crate::safetensors as st;

/// A validated model borrowing the file bytes (weights are read in place).
#[derive(Debug, Clone)]
pub struct Model<'a> {
    layers: [LayerSpec; MAX_LAYERS],
    n_layers: usize,
    tensors: [LayerTensors<'a>; MAX_LAYERS],
    input_shape: Shape,
    input_quant: Quant,
    labels: Text<'a>,
    n_labels: usize,
    dataset: Option<&'a str>,
    producer: Option<&'a str>,
    declared_arena: usize,
    f32_accuracy: Option<f32>,
    int8_accuracy: Option<f32>,
    plan: Plan,
}

/// The result of one inference. Scores are the int8 outputs of the last layer (logits when the
/// model ends in softmax); dequantize with [`Model::output_quant`] if real values are needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prediction<'b> {
    /// Index of the highest score (the lowest index wins ties).
    pub class: usize,
    /// `scores[class]`.
    pub score: i8,
    /// One score per class; borrows the arena.
    pub scores: &'b [i8],
}

/// Labels are lent out as `&str` from the file, so they must need no unescaping (FORMAT.md).
const NOT_PLAIN_LABEL: Error = Error::BadMetadata { key: keys::LABELS, reason: "labels must be plain text (no JSON escapes)" };

/// The metadata values, still as (escaped) JSON texts.
#[derive(Default)]
struct Meta<'a> {
    vals: [Option<Text<'a>>; KNOWN.len()],
}

const KNOWN: [&str; 12] = [
    keys::FORMAT,
    keys::FORMAT_VERSION,
    keys::INPUT_SHAPE,
    keys::INPUT_SCALE,
    keys::INPUT_ZERO_POINT,
    keys::LAYERS,
    keys::LABELS,
    keys::ARENA_BYTES,
    keys::F32_ACCURACY,
    keys::INT8_ACCURACY,
    keys::DATASET,
    keys::PRODUCER,
];

impl<'a> Meta<'a> {
    fn get(&self, key: &'static str) -> Option<Text<'a>> {
        KNOWN.iter().position(|k| *k == key).and_then(|i| self.vals[i])
    }

    fn req(&self, key: &'static str) -> Result<Text<'a>, Error> {
        self.get(key).ok_or(Error::MissingMetadataKey(key))
    }
}

/// Parses a metadata value as a single JSON document with `f`.
fn doc<'a, T>(key: &'static str, t: Text<'a>, f: impl FnOnce(&mut Parser<'a>) -> Result<T, Error>) -> Result<T, Error> {
    let mut p = Parser::new(t);
    let v = f(&mut p)?;
    p.end().map_err(mj(key))?;
    Ok(v)
}

/// Maps a JSON error inside metadata `key`.
fn mj(key: &'static str) -> impl Fn(JErr) -> Error {
    move |e| Error::Json { context: JsonContext::Metadata(key), kind: e.kind, offset: e.offset }
}

fn shape(key: &'static str, p: &mut Parser<'_>, map: impl Fn(JErr) -> Error) -> Result<Shape, Error> {
    let mut dims = [0usize; 3];
    let mut n = 0;
    p.begin_array().map_err(&map)?;
    let mut first = true;
    while p.next_elem(&mut first).map_err(&map)? {
        let d = p.u64().map_err(&map)?;
        let slot = dims.get_mut(n).ok_or(Error::BadMetadata { key, reason: "rank must be 1 or 3" })?;
        *slot = usize::try_from(d).map_err(|_| Error::Overflow)?;
        n += 1;
    }
    match n {
        1 => Ok(Shape::Flat(dims[0])),
        3 => Ok(Shape::Chw(dims[0], dims[1], dims[2])),
        _ => Err(Error::BadMetadata { key, reason: "rank must be 1 or 3" }),
    }
}

/// Parses the `layers` array into `out`; returns the count.
fn parse_layers(p: &mut Parser<'_>, out: &mut [LayerSpec; MAX_LAYERS]) -> Result<usize, Error> {
    let map = mj(keys::LAYERS);
    p.begin_array().map_err(&map)?;
    let mut first = true;
    let mut n = 0;
    while p.next_elem(&mut first).map_err(&map)? {
        let layer = parse_layer(n, p)?;
        // Past the capacity, keep counting (syntax-checking the rest) for an exact error.
        if let Some(slot) = out.get_mut(n) {
            *slot = layer;
        }
        n += 1;
    }
    if n > MAX_LAYERS {
        return Err(Error::TooManyLayers(n));
    }
    Ok(n)
}

#[derive(Default)]
struct LayerFields<'a> {
    op: Option<Text<'a>>,
    output_shape: Option<Shape>,
    in_ch: Option<usize>,
    out_ch: Option<usize>,
    in_f: Option<usize>,
    out_f: Option<usize>,
    kernel: Option<[usize; 2]>,
    stride: Option<[usize; 2]>,
    padding: Option<[usize; 2]>,
    activation: Option<Text<'a>>,
    scale: Option<f32>,
    zp: Option<i64>,
}

fn set<T>(slot: &mut Option<T>, v: T) -> Result<(), Error> {
    if slot.replace(v).is_some() { Err(Error::DuplicateKey) } else { Ok(()) }
}

fn parse_layer(i: usize, p: &mut Parser<'_>) -> Result<LayerSpec, Error> {
    let map = mj(keys::LAYERS);
    let bad = |reason| Error::BadLayer { layer: i, reason };
    let mut f = LayerFields::default();
    let usize_of = |p: &mut Parser<'_>| -> Result<usize, Error> {
        usize::try_from(p.u64().map_err(mj(keys::LAYERS))?).map_err(|_| Error::Overflow)
    };
    let pair = |p: &mut Parser<'_>| -> Result<[usize; 2], Error> {
        let mut v = [0usize; 2];
        let mut first = true;
        p.begin_array().map_err(mj(keys::LAYERS))?;
        for slot in &mut v {
            if !p.next_elem(&mut first).map_err(mj(keys::LAYERS))? {
                return Err(bad("expected a [height, width] pair"));
            }
            *slot = usize::try_from(p.u64().map_err(mj(keys::LAYERS))?).map_err(|_| Error::Overflow)?;
        }
        if p.next_elem(&mut first).map_err(mj(keys::LAYERS))? {
            return Err(bad("expected a [height, width] pair"));
        }
        Ok(v)
    };

    p.begin_object().map_err(&map)?;
    let mut first = true;
    while let Some(k) = p.next_key(&mut first).map_err(&map)? {
        use fields::*;
        if k.eq_str(OP) {
            set(&mut f.op, p.string().map_err(&map)?)?;
        } else if k.eq_str(OUTPUT_SHAPE) {
            set(&mut f.output_shape, shape(keys::LAYERS, p, &map)?)?;
        } else if k.eq_str(IN_CHANNELS) {
            set(&mut f.in_ch, usize_of(p)?)?;
        } else if k.eq_str(OUT_CHANNELS) {
            set(&mut f.out_ch, usize_of(p)?)?;
        } else if k.eq_str(IN_FEATURES) {
            set(&mut f.in_f, usize_of(p)?)?;
        } else if k.eq_str(OUT_FEATURES) {
            set(&mut f.out_f, usize_of(p)?)?;
        } else if k.eq_str(KERNEL) {
            set(&mut f.kernel, pair(p)?)?;
        } else if k.eq_str(STRIDE) {
            set(&mut f.stride, pair(p)?)?;
        } else if k.eq_str(PADDING) {
            set(&mut f.padding, pair(p)?)?;
        } else if k.eq_str(ACTIVATION) {
            set(&mut f.activation, p.string().map_err(&map)?)?;
        } else if k.eq_str(OUTPUT_SCALE) {
            set(&mut f.scale, p.f32().map_err(&map)?)?;
        } else if k.eq_str(OUTPUT_ZERO_POINT) {
            set(&mut f.zp, p.i64().map_err(&map)?)?;
        } else {
            return Err(bad("unknown field"));
        }
    }

    let op = f.op.ok_or(bad("missing op"))?;
    let output_shape = f.output_shape.ok_or(bad("missing output_shape"))?;
    let activation = match f.activation {
        None => None,
        Some(t) if t.eq_str(Activation::None.name()) => Some(Activation::None),
        Some(t) if t.eq_str(Activation::Relu.name()) => Some(Activation::Relu),
        Some(_) => return Err(bad("unknown activation")),
    };
    let quant = |f: &LayerFields<'_>| -> Result<Quant, Error> {
        let zp = f.zp.ok_or(bad("missing output_zero_point"))?;
        let zero_point =
            i32::try_from(zp).ok().filter(|z| (-128..=127).contains(z)).ok_or(bad("output_zero_point outside [-128, 127]"))?;
        Ok(Quant { scale: f.scale.ok_or(bad("missing output_scale"))?, zero_point })
    };
    // Which optional fields each op allows: anything else present is an error (catches typos).
    let conv_only = f.in_ch.is_some() || f.out_ch.is_some();
    let dense_only = f.in_f.is_some() || f.out_f.is_some();
    let window = f.kernel.is_some() || f.stride.is_some() || f.padding.is_some();
    let quantized = f.activation.is_some() || f.scale.is_some() || f.zp.is_some();
    let op = if op.eq_str("conv2d") {
        if dense_only {
            return Err(bad("field not valid for conv2d"));
        }
        Op::Conv2d {
            in_channels: f.in_ch.ok_or(bad("missing in_channels"))?,
            out_channels: f.out_ch.ok_or(bad("missing out_channels"))?,
            kernel: f.kernel.ok_or(bad("missing kernel"))?,
            stride: f.stride.ok_or(bad("missing stride"))?,
            padding: f.padding.ok_or(bad("missing padding"))?,
            activation: activation.ok_or(bad("missing activation"))?,
            output: quant(&f)?,
        }
    } else if op.eq_str("dense") {
        if conv_only || window {
            return Err(bad("field not valid for dense"));
        }
        Op::Dense {
            in_features: f.in_f.ok_or(bad("missing in_features"))?,
            out_features: f.out_f.ok_or(bad("missing out_features"))?,
            activation: activation.ok_or(bad("missing activation"))?,
            output: quant(&f)?,
        }
    } else if op.eq_str("max_pool2d") || op.eq_str("avg_pool2d") {
        if conv_only || dense_only || quantized {
            return Err(bad("field not valid for a pool"));
        }
        let pool = Pool {
            kernel: f.kernel.ok_or(bad("missing kernel"))?,
            stride: f.stride.ok_or(bad("missing stride"))?,
            padding: f.padding.ok_or(bad("missing padding"))?,
        };
        if op.eq_str("max_pool2d") { Op::MaxPool2d(pool) } else { Op::AvgPool2d(pool) }
    } else {
        if conv_only || dense_only || window || quantized {
            return Err(bad("field not valid for this op"));
        }
        if op.eq_str("relu") {
            Op::Relu
        } else if op.eq_str("flatten") {
            Op::Flatten
        } else if op.eq_str("softmax") {
            Op::Softmax
        } else {
            return Err(bad("unknown op"));
        }
    };
    Ok(LayerSpec { op, output_shape })
}

/// `layers.{i}.{suffix}` -> `(i, kind)`.
fn parse_tensor_name(t: &Text<'_>) -> Option<(usize, TensorKind)> {
    let mut chars = t.chars();
    for want in TENSOR_PREFIX.chars() {
        if chars.next()? != want {
            return None;
        }
    }
    let mut idx: usize = 0;
    let mut digits = 0;
    let mut c = chars.next()?;
    while let Some(d) = c.to_digit(10) {
        if digits > 0 && idx == 0 {
            return None; // leading zero: names must be canonical so each tensor has one name
        }
        idx = idx.checked_mul(10)?.checked_add(d as usize)?;
        digits += 1;
        c = chars.next()?;
    }
    if digits == 0 || c != '.' {
        return None;
    }
    // The rest must be exactly one suffix.
    let rest = chars;
    TensorKind::ALL.into_iter().find(|k| rest.clone().eq(k.suffix().chars())).map(|k| (idx, k))
}

impl<'a> Model<'a> {
    /// A model with no layers: what [`Model::parse`] starts from and fills in place.
    const EMPTY: Model<'static> = Model {
        layers: [LayerSpec::EMPTY; MAX_LAYERS],
        n_layers: 0,
        tensors: [LayerTensors::EMPTY; MAX_LAYERS],
        input_shape: Shape::Flat(0),
        input_quant: Quant { scale: 1.0, zero_point: 0 },
        labels: Text::raw(""),
        n_labels: 0,
        dataset: None,
        producer: None,
        declared_arena: 0,
        f32_accuracy: None,
        int8_accuracy: None,
        plan: Plan::EMPTY,
    };

    /// Parses and fully validates a model file. Borrows `bytes`; copies and allocates nothing.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        // A `Model` is ~3 KB of fixed tables, so it is filled in place, in the caller's return
        // slot: a local `Model` (or `Result`) returned by value would hold a second copy on a
        // microcontroller's small stack. LLVM forwards the slot only when it is untouched until
        // one call initialises it; every safe form tried (an initialised local filled through
        // `&mut`, then returned) kept the 2,912-byte copy in this frame (firmware/stack-usage/README.md).
        let mut slot = MaybeUninit::uninit();
        parse_into(&mut slot, bytes);
        // SAFETY: `parse_into` writes `slot` (`MaybeUninit::write`) as its first step, on every
        // path, and never de-initialises it.
        unsafe { slot.assume_init() }
    }

    /// The body of [`Model::parse`]: validates `bytes` into `self` (an [`Model::EMPTY`]).
    /// The checks run in a fixed order, so a file with several faults always gets the same error.
    fn fill(&mut self, bytes: &'a [u8]) -> Result<(), Error> {
        let (header, data) = st::split(bytes)?;

        let mut meta = Meta::default();
        st::for_each_metadata(header, |k, v| {
            if let Some(i) = KNOWN.iter().position(|name| k.eq_str(name)) {
                set(&mut meta.vals[i], v)?;
            }
            Ok(())
        })?;

        if !meta.req(keys::FORMAT)?.eq_str(FORMAT_NAME) {
            return Err(Error::NotThisFormat);
        }
        let version = doc(keys::FORMAT_VERSION, meta.req(keys::FORMAT_VERSION)?, |p| p.u64().map_err(mj(keys::FORMAT_VERSION)))?;
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        let input_shape =
            doc(keys::INPUT_SHAPE, meta.req(keys::INPUT_SHAPE)?, |p| shape(keys::INPUT_SHAPE, p, mj(keys::INPUT_SHAPE)))?;
        let scale = doc(keys::INPUT_SCALE, meta.req(keys::INPUT_SCALE)?, |p| p.f32().map_err(mj(keys::INPUT_SCALE)))?;
        if scale <= 0.0 {
            return Err(Error::BadMetadata { key: keys::INPUT_SCALE, reason: "must be > 0" });
        }
        let zp = doc(keys::INPUT_ZERO_POINT, meta.req(keys::INPUT_ZERO_POINT)?, |p| p.i64().map_err(mj(keys::INPUT_ZERO_POINT)))?;
        let zero_point = i32::try_from(zp)
            .ok()
            .filter(|z| (-128..=127).contains(z))
            .ok_or(Error::BadMetadata { key: keys::INPUT_ZERO_POINT, reason: "outside [-128, 127]" })?;
        self.input_shape = input_shape;
        self.input_quant = Quant { scale, zero_point };

        let layers = &mut self.layers;
        self.n_layers = doc(keys::LAYERS, meta.req(keys::LAYERS)?, |p| parse_layers(p, layers))?;
        let layer_list = self.layers.get(..self.n_layers).ok_or(Error::TooManyLayers(self.n_layers))?;
        plan::plan_into(input_shape, zero_point, layer_list, &mut self.plan)?;

        self.labels = meta.req(keys::LABELS)?;
        self.n_labels = doc(keys::LABELS, self.labels, |p| {
            let map = mj(keys::LABELS);
            p.begin_array().map_err(&map)?;
            let (mut first, mut n) = (true, 0usize);
            while p.next_elem(&mut first).map_err(&map)? {
                p.string().map_err(&map)?.plain().ok_or(NOT_PLAIN_LABEL)?;
                n += 1;
            }
            Ok(n)
        })?;
        let outputs = self.plan.out_shape.len().ok_or(Error::Overflow)?;
        if self.n_labels != outputs {
            return Err(Error::LabelCount { labels: self.n_labels, outputs });
        }

        let declared_arena = doc(keys::ARENA_BYTES, meta.req(keys::ARENA_BYTES)?, |p| p.u64().map_err(mj(keys::ARENA_BYTES)))?;
        let declared_arena = usize::try_from(declared_arena).map_err(|_| Error::Overflow)?;
        if declared_arena < self.plan.arena_bytes {
            return Err(Error::DeclaredArenaTooSmall { declared: declared_arena, needed: self.plan.arena_bytes });
        }
        self.declared_arena = declared_arena;
        let accuracy = |key: &'static str| -> Result<Option<f32>, Error> {
            let Some(t) = meta.get(key) else { return Ok(None) };
            let v = doc(key, t, |p| if p.null().map_err(mj(key))? { Ok(None) } else { p.f32().map(Some).map_err(mj(key)) })?;
            if v.is_some_and(|a| !(0.0..=1.0).contains(&a)) {
                return Err(Error::BadMetadata { key, reason: "accuracy outside [0, 1]" });
            }
            Ok(v)
        };
        self.f32_accuracy = accuracy(keys::F32_ACCURACY)?;
        self.int8_accuracy = accuracy(keys::INT8_ACCURACY)?;
        let plain = |key: &'static str| -> Result<Option<&'a str>, Error> {
            meta.get(key)
                .map(|t| t.plain().ok_or(Error::BadMetadata { key, reason: "must be plain text (no escapes)" }))
                .transpose()
        };
        self.dataset = plain(keys::DATASET)?;
        self.producer = plain(keys::PRODUCER)?;

        bind_tensors(header, data, layer_list, &mut self.tensors)
    }

    /// Minimum arena length for [`Model::run`] (as planned by this runtime).
    pub fn arena_bytes(&self) -> usize {
        self.plan.arena_bytes
    }

    /// The `arena_bytes` value written in the file (>= [`Model::arena_bytes`]).
    pub fn declared_arena_bytes(&self) -> usize {
        self.declared_arena
    }

    pub fn layers(&self) -> &[LayerSpec] {
        &self.layers[..self.n_layers]
    }

    pub fn input_shape(&self) -> Shape {
        self.input_shape
    }

    /// Number of int8 values [`Model::run`] expects.
    pub fn input_len(&self) -> usize {
        self.input_shape.len().unwrap_or(0)
    }

    /// Input quantization: real = scale * (q - zero_point).
    pub fn input_quant(&self) -> Quant {
        self.input_quant
    }

    /// Quantization of the scores (the last conv2d/dense layer's output).
    pub fn output_quant(&self) -> Quant {
        match self.layers.get(self.plan.last_quant_layer).map(|l| l.op) {
            Some(Op::Conv2d { output, .. } | Op::Dense { output, .. }) => output,
            _ => self.input_quant,
        }
    }

    pub fn num_classes(&self) -> usize {
        self.n_labels
    }

    /// Label of class `i` (`None` past [`Model::num_classes`]), borrowed from the file.
    pub fn label(&self, i: usize) -> Option<&'a str> {
        self.labels().nth(i)
    }

    /// Every class label in class order, borrowed from the file.
    pub fn labels(&self) -> impl Iterator<Item = &'a str> + 'a {
        // Validated at parse: a well-formed array of plain strings, so nothing is skipped.
        let mut p = Parser::new(self.labels);
        let mut first = true;
        let open = p.begin_array().is_ok();
        core::iter::from_fn(move || {
            if !open || !p.next_elem(&mut first).ok()? {
                return None;
            }
            p.string().ok()?.plain()
        })
    }

    /// The data set the model was trained on (metadata `dataset`), if the file says.
    pub fn dataset(&self) -> Option<&'a str> {
        self.dataset
    }

    /// The program that wrote the file (metadata `producer`), if the file says.
    pub fn producer(&self) -> Option<&'a str> {
        self.producer
    }

    pub fn f32_accuracy(&self) -> Option<f32> {
        self.f32_accuracy
    }

    pub fn int8_accuracy(&self) -> Option<f32> {
        self.int8_accuracy
    }

    /// Runs inference with the best kernels for this build. `input` holds `input_len()` int8
    /// values (CHW); `arena` at least `arena_bytes()` bytes, any alignment, contents ignored.
    pub fn run<'b>(&self, input: &[i8], arena: &'b mut [u8]) -> Result<Prediction<'b>, Error> {
        self.run_with(kernels::best(), input, arena)
    }

    /// [`Model::run`] with an explicit kernel table (to compare implementations bit for bit).
    pub fn run_with<'b>(&self, kernels: &Kernels, input: &[i8], arena: &'b mut [u8]) -> Result<Prediction<'b>, Error> {
        if input.len() != self.input_len() {
            return Err(Error::InputSize { expected: self.input_len(), got: input.len() });
        }
        let scores = engine::run(&self.plan, self.layers(), &self.tensors, &[], kernels, input, arena)?;
        Ok(Prediction::from_scores(scores))
    }

    pub(crate) fn plan(&self) -> &Plan {
        &self.plan
    }

    pub(crate) fn tensors(&self) -> &[LayerTensors<'a>] {
        &self.tensors[..self.n_layers]
    }
}

impl<'b> Prediction<'b> {
    /// The prediction for `scores`: the first highest one wins.
    pub(crate) fn from_scores(scores: &'b [i8]) -> Self {
        let (mut class, mut score) = (0, i8::MIN);
        for (i, &s) in scores.iter().enumerate() {
            if i == 0 || s > score {
                (class, score) = (i, s);
            }
        }
        Prediction { class, score, scores }
    }
}

/// [`Model::parse`] into `slot`: always initialises it, with the model or the error.
/// Not inlined: the call is what lets LLVM pass the caller's return slot straight through.
#[inline(never)]
fn parse_into<'a>(slot: &mut MaybeUninit<Result<Model<'a>, Error>>, bytes: &'a [u8]) {
    let result = slot.write(Ok(Model::EMPTY));
    if let Ok(model) = result
        && let Err(e) = model.fill(bytes)
    {
        *result = Err(e);
    }
}

/// What the header walk found for one of a layer's four tensors, judged against the layer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Found {
    Missing,
    WrongDtype,
    WrongShape,
    /// Right dtype and shape; its bytes are bound in the output table.
    Ok,
}

/// Finds, checks and binds every layer's tensors into `out` (all [`LayerTensors::EMPTY`] on entry);
/// rejects unknown and duplicate names.
///
/// Errors keep the order of a two-pass design (first everything the header walk finds in header
/// order, then per layer and tensor kind: missing, dtype, shape, then the layer's quantization
/// parameters), but the walk already judges each entry and binds its bytes into `out`, so only a
/// byte per tensor is kept between the passes instead of every entry.
#[inline(never)]
fn bind_tensors<'a>(
    header: &'a str,
    data: &'a [u8],
    layers: &[LayerSpec],
    out: &mut [LayerTensors<'a>; MAX_LAYERS],
) -> Result<(), Error> {
    let mut found = [[Found::Missing; 4]; MAX_LAYERS];
    st::for_each_tensor(header, data, |name, e| {
        let (layer, kind) = parse_tensor_name(&name).ok_or(Error::UnknownTensor)?;
        let (weight_shape, weight_rank, n_out) = match layers.get(layer).map(|l| l.op) {
            Some(Op::Conv2d { in_channels, out_channels, kernel, .. }) => {
                ([out_channels, in_channels, kernel[0], kernel[1]], 4, out_channels)
            }
            Some(Op::Dense { in_features, out_features, .. }) => ([out_features, in_features, 0, 0], 2, out_features),
            _ => return Err(Error::UnknownTensor),
        };
        // In range: `layers.get(layer)` succeeded and `layers` holds at most MAX_LAYERS.
        let (Some(slot), Some(t)) = (found.get_mut(layer).and_then(|f| f.get_mut(kind.index())), out.get_mut(layer)) else {
            return Err(Error::UnknownTensor);
        };
        if *slot != Found::Missing {
            return Err(Error::DuplicateKey);
        }
        let shape_ok = match kind {
            TensorKind::Weight => e.shape_is(&weight_shape[..weight_rank]),
            _ => e.shape_is(&[n_out]),
        };
        *slot = if !e.dtype.eq_str(kind.dtype()) {
            Found::WrongDtype
        } else if !shape_ok {
            Found::WrongShape
        } else {
            match kind {
                TensorKind::Weight => {
                    t.weight = crate::bytes::as_i8(e.bytes);
                    t.weight_has_i8_min = crate::engine::has_i8_min(t.weight);
                }
                TensorKind::Bias => t.bias = e.bytes,
                TensorKind::Multiplier => t.multiplier = e.bytes,
                TensorKind::Shift => t.shift = e.bytes,
            }
            Found::Ok
        };
        Ok(())
    })?;

    for (i, (l, (f, t))) in layers.iter().zip(found.iter().zip(out.iter())).enumerate() {
        let n_out = match l.op {
            Op::Conv2d { out_channels, .. } => out_channels,
            Op::Dense { out_features, .. } => out_features,
            _ => continue,
        };
        for kind in TensorKind::ALL {
            match f[kind.index()] {
                Found::Missing => return Err(Error::MissingTensor { layer: i, tensor: kind }),
                Found::WrongDtype => return Err(Error::WrongDtype { layer: i, tensor: kind }),
                Found::WrongShape => return Err(Error::WrongShape { layer: i, tensor: kind }),
                Found::Ok => {}
            }
        }
        for c in 0..n_out {
            let m = crate::bytes::le_i32(t.multiplier, c);
            let s = crate::bytes::le_i32(t.shift, c);
            if m < 0 || !(SHIFT_MIN..=SHIFT_MAX).contains(&s) {
                return Err(Error::BadQuantParam { layer: i, channel: c });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tensor_name;
    use std::string::String;
    use std::vec::Vec;

    /// One tensor entry: name, dtype, shape, bytes.
    type Tensor = (String, &'static str, Vec<usize>, Vec<u8>);

    fn i32s(v: &[i32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// Input [4] -> dense 4->3 relu -> dense 3->2: two layers with tensors.
    fn layers() -> [LayerSpec; 2] {
        let q = Quant { scale: 0.5, zero_point: -3 };
        [
            LayerSpec {
                op: Op::Dense { in_features: 4, out_features: 3, activation: Activation::Relu, output: q },
                output_shape: Shape::Flat(3),
            },
            LayerSpec {
                op: Op::Dense { in_features: 3, out_features: 2, activation: Activation::None, output: q },
                output_shape: Shape::Flat(2),
            },
        ]
    }

    /// The valid tensors of [`layers`], layer 1's listed first (the header's order is free).
    fn tensors() -> Vec<Tensor> {
        let mut v = Vec::new();
        for (layer, n_in, n_out) in [(1usize, 3usize, 2usize), (0, 4, 3)] {
            let t = |k| tensor_name(layer, k).to_string();
            v.push((t(TensorKind::Weight), "I8", vec![n_out, n_in], vec![1; n_out * n_in]));
            v.push((t(TensorKind::Bias), "I32", vec![n_out], i32s(&vec![7; n_out])));
            v.push((t(TensorKind::Multiplier), "I32", vec![n_out], i32s(&vec![1 << 30; n_out])));
            v.push((t(TensorKind::Shift), "I32", vec![n_out], i32s(&vec![2; n_out])));
        }
        v
    }

    /// A file with `tensors` as they are (even broken ones): the writer's container with the
    /// test's tensor entries, so the header order and every entry are the test's.
    fn file(tensors: &[Tensor]) -> Vec<u8> {
        let layers = layers();
        let writer = crate::write::ModelFile {
            input_shape: Shape::Flat(4),
            input_quant: Quant { scale: 0.25, zero_point: 1 },
            layers: layers.iter().map(|l| (*l, None)).collect(),
            labels: std::vec![String::from("no"), String::from("yes")],
            arena_bytes: None,
            f32_accuracy: None,
            int8_accuracy: None,
            dataset: None,
            producer: None,
            calibration: None,
        };
        // Dense layers without weights: the writer refuses, so take its metadata from a copy
        // with weights, then put the test's own tensor entries after it.
        let mut with_weights = writer.clone();
        for (spec, w) in &mut with_weights.layers {
            let Op::Dense { in_features, out_features, .. } = spec.op else { continue };
            *w = Some(crate::write::LayerWeights {
                weight: std::vec![0; in_features * out_features],
                bias: std::vec![0; out_features],
                multiplier: std::vec![0; out_features],
                shift: std::vec![0; out_features],
            });
        }
        let written = with_weights.to_bytes().unwrap();
        let (header, _) = st::split(&written).unwrap();
        // The metadata ends where the first tensor entry begins (`,"layers.0.`: inside metadata
        // strings a quote is always escaped).
        let meta_end = header.find(",\"layers.").unwrap();
        let mut header = String::from(&header[..meta_end]);
        let mut data = Vec::new();
        for (name, dtype, shape, bytes) in tensors {
            header += &std::format!(
                ",\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{},{}]}}",
                data.len(),
                data.len() + bytes.len()
            );
            data.extend_from_slice(bytes);
        }
        header.push('}');
        let mut f = (header.len() as u64).to_le_bytes().to_vec();
        f.extend_from_slice(header.as_bytes());
        f.extend_from_slice(&data);
        f
    }

    fn find<'t>(t: &'t mut [Tensor], name: &str) -> &'t mut Tensor {
        t.iter_mut().find(|e| e.0 == name).unwrap()
    }

    #[test]
    fn parses_in_place_and_binds_every_tensor() {
        let t = tensors();
        let f = file(&t);
        let m = Model::parse(&f).unwrap();
        assert_eq!(m.layers(), &layers()[..]);
        assert_eq!(m.input_quant(), Quant { scale: 0.25, zero_point: 1 });
        assert_eq!(m.num_classes(), 2);
        assert_eq!(m.label(1), Some("yes"));
        assert_eq!(m.declared_arena_bytes(), m.arena_bytes());
        for (layer, n_out) in [(0, 3), (1, 2)] {
            let lt = &m.tensors[layer];
            assert_eq!(lt.weight.len(), n_out * if layer == 0 { 4 } else { 3 });
            assert_eq!(lt.bias, &i32s(&vec![7; n_out])[..]);
            assert_eq!(lt.multiplier, &i32s(&vec![1 << 30; n_out])[..]);
            assert_eq!(lt.shift, &i32s(&vec![2; n_out])[..]);
        }
        let mut arena = std::vec![0u8; m.arena_bytes()];
        let p = m.run(&[1, 2, 3, 4], &mut arena).unwrap();
        assert_eq!(p.scores.len(), 2);
    }

    #[test]
    fn tensor_errors_keep_layer_then_kind_order() {
        // Layer 1's entries come first in the header, yet layer 0's fault is reported: the walk
        // only records what it finds, the checks run per layer, then per kind.
        let mut t = tensors();
        find(&mut t, "layers.1.weight").1 = "U8";
        t.retain(|e| e.0 != "layers.0.bias");
        assert_eq!(Model::parse(&file(&t)).unwrap_err(), Error::MissingTensor { layer: 0, tensor: TensorKind::Bias });

        // Within a layer: kind order (weight before shift), whatever the header order.
        let mut t = tensors();
        let shift = find(&mut t, "layers.0.shift");
        (shift.2, shift.3) = (vec![4], i32s(&[2; 4]));
        let w = find(&mut t, "layers.0.weight");
        (w.1, w.3) = ("I32", std::vec![0; 48]);
        assert_eq!(Model::parse(&file(&t)).unwrap_err(), Error::WrongDtype { layer: 0, tensor: TensorKind::Weight });
        // Dtype is checked before shape on the same tensor.
        let mut t = tensors();
        let w = find(&mut t, "layers.1.weight");
        (w.1, w.2, w.3) = ("I32", vec![3, 2], std::vec![0; 24]);
        assert_eq!(Model::parse(&file(&t)).unwrap_err(), Error::WrongDtype { layer: 1, tensor: TensorKind::Weight });

        // A layer's quantization parameters are checked before the next layer's tensors.
        let mut t = tensors();
        find(&mut t, "layers.0.shift").3 = i32s(&[2, 32, 2]);
        t.retain(|e| e.0 != "layers.1.bias");
        assert_eq!(Model::parse(&file(&t)).unwrap_err(), Error::BadQuantParam { layer: 0, channel: 1 });

        // The header walk's own errors come first, in header order.
        let mut t = tensors();
        t.retain(|e| e.0 != "layers.0.bias");
        let dup = t[0].clone();
        t.push((String::from("layers.1.bias"), dup.1, dup.2, dup.3));
        assert_eq!(Model::parse(&file(&t)).unwrap_err(), Error::DuplicateKey);
        let mut t = tensors();
        t.retain(|e| e.0 != "layers.0.bias");
        t.push((String::from("layers.2.weight"), "I8", vec![1], std::vec![0]));
        assert_eq!(Model::parse(&file(&t)).unwrap_err(), Error::UnknownTensor);
    }
}
