//! Names, constants and layer descriptions of the model file format (see `FORMAT.md`).
//!
//! The exporter must use these items rather than copies of the strings, so the writer and the
//! reader cannot drift. [`LayerSpec`]'s `Display` writes the exact JSON object the parser reads.

use core::fmt;

/// Value of the [`keys::FORMAT`] metadata entry.
pub const FORMAT_NAME: &str = "runtime-mobile";
/// The format version this crate writes and reads (`format_version` metadata entry).
pub const FORMAT_VERSION: u64 = 1;
/// Most layers a model may have (the parsed model keeps them in a fixed array: no allocation).
pub const MAX_LAYERS: usize = 16;
/// Largest safetensors header accepted (bytes).
pub const MAX_HEADER_BYTES: u64 = 1 << 20;
/// Largest dot-product length (conv `in_channels*kh*kw`, dense `in_features`). With int8 operands
/// and this bound, `|sum|` stays below 2^31 (65536 * 255 * 128 < 2^31), so no accumulator wraps
/// for sensible biases.
pub const MAX_DOT_LEN: usize = 1 << 16;
/// Largest single dimension (channels, height, width, features, kernel, stride, padding).
pub const MAX_DIM: usize = 1 << 16;
/// Requantization shift range (inclusive). Negative = left shift.
pub const SHIFT_MIN: i32 = -31;
/// See [`SHIFT_MIN`].
pub const SHIFT_MAX: i32 = 31;

/// Keys of the safetensors `__metadata__` map (all values are strings; some hold JSON).
pub mod keys {
    /// Must equal [`super::FORMAT_NAME`].
    pub const FORMAT: &str = "format";
    /// Decimal integer, [`super::FORMAT_VERSION`].
    pub const FORMAT_VERSION: &str = "format_version";
    /// JSON array `[C,H,W]` or `[N]`.
    pub const INPUT_SHAPE: &str = "input_shape";
    /// JSON number: real value = scale * (q - zero_point).
    pub const INPUT_SCALE: &str = "input_scale";
    /// JSON integer in [-128, 127].
    pub const INPUT_ZERO_POINT: &str = "input_zero_point";
    /// JSON array of layer objects (see [`super::LayerSpec`]).
    pub const LAYERS: &str = "layers";
    /// JSON array of strings, one per output. Each label is plain text: no character that
    /// JSON must escape (`"`, `\\`, control characters) and no escape sequence, so a reader
    /// lends labels out as `&str` straight from the file.
    pub const LABELS: &str = "labels";
    /// Decimal integer: arena bytes the exporter computed with [`crate::plan::arena_bytes`].
    pub const ARENA_BYTES: &str = "arena_bytes";
    /// Optional JSON number in [0, 1] (or `null`): test accuracy of the float model.
    pub const F32_ACCURACY: &str = "f32_accuracy";
    /// Optional JSON number in [0, 1] (or `null`): test accuracy of the int8 model.
    pub const INT8_ACCURACY: &str = "int8_accuracy";
    /// Optional plain text (as labels): the data set the model was trained on (`mnist`,
    /// `fashion-mnist`).
    pub const DATASET: &str = "dataset";
    /// Optional plain text (as labels): the program that wrote the file (`export 0.1.0`).
    pub const PRODUCER: &str = "producer";
    /// Optional JSON object, informative: how activations were calibrated
    /// (`{"method": ..., "images": N}`).
    pub const CALIBRATION: &str = "calibration";
}

/// Reserved safetensors key for the metadata map.
pub const METADATA_KEY: &str = "__metadata__";
/// Tensor names are `"{TENSOR_PREFIX}{layer index}.{suffix}"`, e.g. `layers.0.weight`.
pub const TENSOR_PREFIX: &str = "layers.";

/// safetensors dtype string for int8.
pub const DTYPE_I8: &str = "I8";
/// safetensors dtype string for int32 (little-endian).
pub const DTYPE_I32: &str = "I32";

/// The four tensors of a conv2d or dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorKind {
    /// I8, conv `[out, in, kh, kw]`, dense `[out, in]`; symmetric (zero point 0) per output channel.
    Weight,
    /// I32 `[out]`, in accumulator units (scale = `input_scale * weight_scale[c]`).
    Bias,
    /// I32 `[out]`, Q0.31 multiplier in [0, 2^31 - 1].
    Multiplier,
    /// I32 `[out]`, right shift in [`SHIFT_MIN`], [`SHIFT_MAX`] (negative = left shift).
    Shift,
}

impl TensorKind {
    pub const ALL: [TensorKind; 4] = [TensorKind::Weight, TensorKind::Bias, TensorKind::Multiplier, TensorKind::Shift];

    pub const fn suffix(self) -> &'static str {
        match self {
            TensorKind::Weight => "weight",
            TensorKind::Bias => "bias",
            TensorKind::Multiplier => "multiplier",
            TensorKind::Shift => "shift",
        }
    }

    pub const fn dtype(self) -> &'static str {
        match self {
            TensorKind::Weight => DTYPE_I8,
            _ => DTYPE_I32,
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// The tensor name for `layer`'s `kind` tensor: `format!("{}", tensor_name(0, TensorKind::Weight))`
/// is `"layers.0.weight"`.
pub fn tensor_name(layer: usize, kind: TensorKind) -> impl fmt::Display {
    struct Name(usize, TensorKind);
    impl fmt::Display for Name {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{TENSOR_PREFIX}{}.{}", self.0, self.1.suffix())
        }
    }
    Name(layer, kind)
}

/// Activation shape. Activations are int8, stored channel-major (CHW), which is also the order
/// `flatten` produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `[channels, height, width]`.
    Chw(usize, usize, usize),
    /// `[n]`.
    Flat(usize),
}

impl Shape {
    /// Number of elements, `None` on overflow.
    #[allow(clippy::len_without_is_empty)] // shapes are never empty (dims >= 1)
    pub fn len(&self) -> Option<usize> {
        match *self {
            Shape::Chw(c, h, w) => c.checked_mul(h)?.checked_mul(w),
            Shape::Flat(n) => Some(n),
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Shape::Chw(c, h, w) => write!(f, "[{c},{h},{w}]"),
            Shape::Flat(n) => write!(f, "[{n}]"),
        }
    }
}

/// Fused activation of a conv2d/dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    None,
    Relu,
}

impl Activation {
    pub const fn name(self) -> &'static str {
        match self {
            Activation::None => "none",
            Activation::Relu => "relu",
        }
    }
}

/// Output quantization of a conv2d/dense layer: real = scale * (q - zero_point).
/// Only `zero_point` is used by inference; `scale` is for callers that dequantize scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quant {
    pub scale: f32,
    pub zero_point: i32,
}

/// Window parameters of a pooling layer, `[height, width]` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Implicit padding per side; padded cells are ignored (max) or not counted (avg).
    pub padding: [usize; 2],
}

/// One layer. Activations between layers are int8 with the quantization of the last
/// conv2d/dense (or the input); pools, relu, flatten and softmax keep it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Conv2d {
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        /// Zero padding per side (real zero, i.e. the input zero point).
        padding: [usize; 2],
        activation: Activation,
        output: Quant,
    },
    Dense {
        in_features: usize,
        out_features: usize,
        activation: Activation,
        output: Quant,
    },
    MaxPool2d(Pool),
    AvgPool2d(Pool),
    /// Standalone ReLU: `max(x, zero_point)`.
    Relu,
    /// `[C,H,W]` -> `[C*H*W]`, CHW order; no data movement.
    Flatten,
    /// Only as the last layer. Not computed (it is monotonic, so the class is unchanged); the
    /// runtime returns the int8 logits and the caller may apply softmax to dequantized scores.
    Softmax,
}

impl Op {
    /// The `op` string in the layer JSON.
    pub const fn name(&self) -> &'static str {
        match self {
            Op::Conv2d { .. } => "conv2d",
            Op::Dense { .. } => "dense",
            Op::MaxPool2d(_) => "max_pool2d",
            Op::AvgPool2d(_) => "avg_pool2d",
            Op::Relu => "relu",
            Op::Flatten => "flatten",
            Op::Softmax => "softmax",
        }
    }

    /// Whether the layer owns weight/bias/multiplier/shift tensors.
    pub const fn has_tensors(&self) -> bool {
        matches!(self, Op::Conv2d { .. } | Op::Dense { .. })
    }
}

/// A layer and the shape it outputs (stored redundantly so the chain can be cross-checked).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerSpec {
    pub op: Op,
    pub output_shape: Shape,
}

impl LayerSpec {
    pub(crate) const EMPTY: LayerSpec = LayerSpec { op: Op::Flatten, output_shape: Shape::Flat(0) };
}

/// Field names of a layer object in the `layers` JSON array.
pub mod fields {
    pub const OP: &str = "op";
    pub const OUTPUT_SHAPE: &str = "output_shape";
    pub const IN_CHANNELS: &str = "in_channels";
    pub const OUT_CHANNELS: &str = "out_channels";
    pub const IN_FEATURES: &str = "in_features";
    pub const OUT_FEATURES: &str = "out_features";
    pub const KERNEL: &str = "kernel";
    pub const STRIDE: &str = "stride";
    pub const PADDING: &str = "padding";
    pub const ACTIVATION: &str = "activation";
    pub const OUTPUT_SCALE: &str = "output_scale";
    pub const OUTPUT_ZERO_POINT: &str = "output_zero_point";
}

/// Writes the layer as the JSON object the parser reads (floats use Rust's shortest round-trip
/// formatting, so scales survive exactly).
impl fmt::Display for LayerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fields::*;
        let pair = |a: [usize; 2]| Pair(a);
        write!(f, "{{\"{OP}\":\"{}\"", self.op.name())?;
        match self.op {
            Op::Conv2d { in_channels, out_channels, kernel, stride, padding, activation, output } => {
                write!(
                    f,
                    ",\"{IN_CHANNELS}\":{in_channels},\"{OUT_CHANNELS}\":{out_channels},\
                     \"{KERNEL}\":{},\"{STRIDE}\":{},\"{PADDING}\":{},\"{ACTIVATION}\":\"{}\",\
                     \"{OUTPUT_SCALE}\":{:?},\"{OUTPUT_ZERO_POINT}\":{}",
                    pair(kernel),
                    pair(stride),
                    pair(padding),
                    activation.name(),
                    output.scale,
                    output.zero_point
                )?;
            }
            Op::Dense { in_features, out_features, activation, output } => {
                write!(
                    f,
                    ",\"{IN_FEATURES}\":{in_features},\"{OUT_FEATURES}\":{out_features},\
                     \"{ACTIVATION}\":\"{}\",\"{OUTPUT_SCALE}\":{:?},\"{OUTPUT_ZERO_POINT}\":{}",
                    activation.name(),
                    output.scale,
                    output.zero_point
                )?;
            }
            Op::MaxPool2d(p) | Op::AvgPool2d(p) => {
                write!(f, ",\"{KERNEL}\":{},\"{STRIDE}\":{},\"{PADDING}\":{}", pair(p.kernel), pair(p.stride), pair(p.padding))?;
            }
            Op::Relu | Op::Flatten | Op::Softmax => {}
        }
        write!(f, ",\"{OUTPUT_SHAPE}\":{}}}", self.output_shape)
    }
}

struct Pair([usize; 2]);
impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{},{}]", self.0[0], self.0[1])
    }
}

/// Writes a layer list as the JSON array stored under [`keys::LAYERS`].
pub struct LayersJson<'a>(pub &'a [LayerSpec]);

impl fmt::Display for LayersJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{l}")?;
        }
        f.write_str("]")
    }
}

/// Output size of a window op along one axis: `floor((n + 2p - k) / s) + 1`, `None` if the
/// window does not fit or on overflow.
pub fn window_out(n: usize, k: usize, s: usize, p: usize) -> Option<usize> {
    let padded = n.checked_add(p.checked_mul(2)?)?;
    if k == 0 || s == 0 || padded < k {
        return None;
    }
    Some((padded - k) / s + 1)
}
