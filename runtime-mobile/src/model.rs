//! The parsed model: validated once in [`Model::parse`], then run any number of times.

use core::fmt;

use crate::engine::{self, LayerTensors};
use crate::error::{Error, JsonContext};
use crate::format::{
    fields, keys, Activation, LayerSpec, Op, Pool, Quant, Shape, TensorKind, FORMAT_NAME,
    FORMAT_VERSION, MAX_LAYERS, SHIFT_MAX, SHIFT_MIN, TENSOR_PREFIX,
};
use crate::json::{JErr, Parser, Text};
use crate::kernels::{self, Kernels};
use crate::plan::{self, Plan};
use crate::safetensors::{self as st, Entry};

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

/// A class label, decoded lazily from the file (it may carry JSON escapes).
#[derive(Debug, Clone, Copy)]
pub struct Label<'a>(Text<'a>);

impl Label<'_> {
    pub fn chars(&self) -> impl Iterator<Item = char> + '_ {
        self.0.chars()
    }

    pub fn eq_str(&self, s: &str) -> bool {
        self.0.eq_str(s)
    }
}

impl fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        self.0.chars().try_for_each(|c| f.write_char(c))
    }
}

/// The metadata values, still as (escaped) JSON texts.
#[derive(Default)]
struct Meta<'a> {
    vals: [Option<Text<'a>>; KNOWN.len()],
}

const KNOWN: [&str; 10] = [
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
fn doc<'a, T>(
    key: &'static str,
    t: Text<'a>,
    f: impl FnOnce(&mut Parser<'a>) -> Result<T, Error>,
) -> Result<T, Error> {
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
        let zero_point = i32::try_from(zp)
            .ok()
            .filter(|z| (-128..=127).contains(z))
            .ok_or(bad("output_zero_point outside [-128, 127]"))?;
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
    /// Parses and fully validates a model file. Borrows `bytes`; copies and allocates nothing.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
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
        let version =
            doc(keys::FORMAT_VERSION, meta.req(keys::FORMAT_VERSION)?, |p| {
                p.u64().map_err(mj(keys::FORMAT_VERSION))
            })?;
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        let input_shape = doc(keys::INPUT_SHAPE, meta.req(keys::INPUT_SHAPE)?, |p| {
            shape(keys::INPUT_SHAPE, p, mj(keys::INPUT_SHAPE))
        })?;
        let scale = doc(keys::INPUT_SCALE, meta.req(keys::INPUT_SCALE)?, |p| {
            p.f32().map_err(mj(keys::INPUT_SCALE))
        })?;
        if scale <= 0.0 {
            return Err(Error::BadMetadata { key: keys::INPUT_SCALE, reason: "must be > 0" });
        }
        let zp = doc(keys::INPUT_ZERO_POINT, meta.req(keys::INPUT_ZERO_POINT)?, |p| {
            p.i64().map_err(mj(keys::INPUT_ZERO_POINT))
        })?;
        let zero_point = i32::try_from(zp).ok().filter(|z| (-128..=127).contains(z)).ok_or(
            Error::BadMetadata { key: keys::INPUT_ZERO_POINT, reason: "outside [-128, 127]" },
        )?;

        let mut layers = [LayerSpec::EMPTY; MAX_LAYERS];
        let n_layers = doc(keys::LAYERS, meta.req(keys::LAYERS)?, |p| parse_layers(p, &mut layers))?;
        let layer_list = layers.get(..n_layers).ok_or(Error::TooManyLayers(n_layers))?;
        let plan = plan::plan(input_shape, zero_point, layer_list)?;

        let labels = meta.req(keys::LABELS)?;
        let n_labels = doc(keys::LABELS, labels, |p| {
            let map = mj(keys::LABELS);
            p.begin_array().map_err(&map)?;
            let (mut first, mut n) = (true, 0usize);
            while p.next_elem(&mut first).map_err(&map)? {
                p.string().map_err(&map)?;
                n += 1;
            }
            Ok(n)
        })?;
        let outputs = plan.out_shape.len().ok_or(Error::Overflow)?;
        if n_labels != outputs {
            return Err(Error::LabelCount { labels: n_labels, outputs });
        }

        let declared_arena = doc(keys::ARENA_BYTES, meta.req(keys::ARENA_BYTES)?, |p| {
            p.u64().map_err(mj(keys::ARENA_BYTES))
        })?;
        let declared_arena = usize::try_from(declared_arena).map_err(|_| Error::Overflow)?;
        if declared_arena < plan.arena_bytes {
            return Err(Error::DeclaredArenaTooSmall { declared: declared_arena, needed: plan.arena_bytes });
        }
        let accuracy = |key: &'static str| -> Result<Option<f32>, Error> {
            let Some(t) = meta.get(key) else { return Ok(None) };
            let v = doc(key, t, |p| {
                if p.null().map_err(mj(key))? { Ok(None) } else { p.f32().map(Some).map_err(mj(key)) }
            })?;
            if v.is_some_and(|a| !(0.0..=1.0).contains(&a)) {
                return Err(Error::BadMetadata { key, reason: "accuracy outside [0, 1]" });
            }
            Ok(v)
        };
        let f32_accuracy = accuracy(keys::F32_ACCURACY)?;
        let int8_accuracy = accuracy(keys::INT8_ACCURACY)?;

        let tensors = bind_tensors(header, data, layer_list)?;

        Ok(Model {
            layers,
            n_layers,
            tensors,
            input_shape,
            input_quant: Quant { scale, zero_point },
            labels,
            n_labels,
            declared_arena,
            f32_accuracy,
            int8_accuracy,
            plan,
        })
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

    /// Label of class `i`.
    pub fn label(&self, i: usize) -> Option<Label<'a>> {
        let mut p = Parser::new(self.labels);
        p.begin_array().ok()?;
        let mut first = true;
        let mut n = 0;
        while p.next_elem(&mut first).ok()? {
            let s = p.string().ok()?;
            if n == i {
                return Some(Label(s));
            }
            n += 1;
        }
        None
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
    pub fn run_with<'b>(
        &self,
        kernels: &Kernels,
        input: &[i8],
        arena: &'b mut [u8],
    ) -> Result<Prediction<'b>, Error> {
        if input.len() != self.input_len() {
            return Err(Error::InputSize { expected: self.input_len(), got: input.len() });
        }
        let scores = engine::run(&self.plan, self.layers(), &self.tensors, kernels, input, arena)?;
        let (mut class, mut score) = (0, i8::MIN);
        for (i, &s) in scores.iter().enumerate() {
            if i == 0 || s > score {
                (class, score) = (i, s);
            }
        }
        Ok(Prediction { class, score, scores })
    }
}

/// Finds, checks and binds every layer's tensors; rejects unknown and duplicate names.
fn bind_tensors<'a>(
    header: &'a str,
    data: &'a [u8],
    layers: &[LayerSpec],
) -> Result<[LayerTensors<'a>; MAX_LAYERS], Error> {
    let mut found: [[Option<Entry<'a>>; 4]; MAX_LAYERS] = [[None; 4]; MAX_LAYERS];
    st::for_each_tensor(header, data, |name, e| {
        let (layer, kind) = parse_tensor_name(&name).ok_or(Error::UnknownTensor)?;
        match layers.get(layer) {
            Some(l) if l.op.has_tensors() => {}
            _ => return Err(Error::UnknownTensor),
        }
        let slot = &mut found[layer][kind.index()];
        if slot.is_some() {
            return Err(Error::DuplicateKey);
        }
        *slot = Some(e);
        Ok(())
    })?;

    let mut out = [LayerTensors::EMPTY; MAX_LAYERS];
    for (i, l) in layers.iter().enumerate() {
        let (weight_shape, weight_rank, n_out) = match l.op {
            Op::Conv2d { in_channels, out_channels, kernel, .. } => {
                ([out_channels, in_channels, kernel[0], kernel[1]], 4, out_channels)
            }
            Op::Dense { in_features, out_features, .. } => {
                ([out_features, in_features, 0, 0], 2, out_features)
            }
            _ => continue,
        };
        let mut bytes: [&[u8]; 4] = [&[]; 4];
        for kind in TensorKind::ALL {
            let e = found[i][kind.index()].ok_or(Error::MissingTensor { layer: i, tensor: kind })?;
            if !e.dtype.eq_str(kind.dtype()) {
                return Err(Error::WrongDtype { layer: i, tensor: kind });
            }
            let ok = match kind {
                TensorKind::Weight => e.shape_is(&weight_shape[..weight_rank]),
                _ => e.shape_is(&[n_out]),
            };
            if !ok {
                return Err(Error::WrongShape { layer: i, tensor: kind });
            }
            bytes[kind.index()] = e.bytes;
        }
        let t = LayerTensors {
            weight: crate::bytes::as_i8(bytes[0]),
            bias: bytes[1],
            multiplier: bytes[2],
            shift: bytes[3],
        };
        for c in 0..n_out {
            let m = crate::bytes::le_i32(t.multiplier, c);
            let s = crate::bytes::le_i32(t.shift, c);
            if m < 0 || !(SHIFT_MIN..=SHIFT_MAX).contains(&s) {
                return Err(Error::BadQuantParam { layer: i, channel: c });
            }
        }
        out[i] = t;
    }
    Ok(out)
}
