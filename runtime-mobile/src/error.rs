//! The crate's one error type: every failure of parsing a model, checking a frame, preprocessing
//! and inference is an [`Error`]; nothing panics. Each variant has a stable numeric
//! [`Error::code`] that the bindings carry across FFI boundaries (the table is in the docs of
//! [`Error::code`] and tested, so a code never changes meaning).

use core::fmt;

use crate::format::{Shape, TensorKind};
use crate::preprocess::MAX_FRAME_DIM;

/// Why a JSON text (the safetensors header or a JSON document inside a metadata string) was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonErrorKind {
    /// Input ended inside a value.
    UnexpectedEnd,
    /// A character that the grammar does not allow here.
    UnexpectedChar,
    /// A bad `\` escape or `\u` sequence (including lone surrogates).
    BadEscape,
    /// A raw control character inside a string.
    ControlChar,
    /// A number that is malformed, out of range, or not the expected kind (integer/float).
    BadNumber,
    /// Arrays/objects nested deeper than the reader allows.
    TooDeep,
    /// A value of the wrong JSON type (e.g. a number where a string is required).
    WrongType,
    /// Non-whitespace after the document.
    TrailingData,
    /// The header is not valid UTF-8.
    NotUtf8,
}

/// Where a JSON error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonContext {
    /// The safetensors header itself.
    Header,
    /// The JSON inside the `__metadata__` value of this key.
    Metadata(&'static str),
}

/// Every way parsing a model, preprocessing a frame or running inference can fail.
///
/// "No digit in the frame" is not an error: [`crate::Classifier::classify_frame`] returns it as
/// an ordinary outcome ([`crate::FrameOutcome::NoDigit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The file is shorter than the 8-byte header length, or than the header it announces.
    Truncated { needed: u64, got: usize },
    /// The header length is zero or larger than [`crate::format::MAX_HEADER_BYTES`].
    BadHeaderLength(u64),
    /// Malformed JSON; `offset` is a byte offset into the text being read.
    Json { context: JsonContext, kind: JsonErrorKind, offset: usize },
    /// A header key appears twice (tensor name, metadata key or entry field).
    DuplicateKey,
    /// The header has no `__metadata__` object.
    MissingMetadata,
    /// A required metadata key is absent.
    MissingMetadataKey(&'static str),
    /// A metadata value is well-formed JSON but not what the format requires.
    BadMetadata { key: &'static str, reason: &'static str },
    /// `format` is not [`crate::format::FORMAT_NAME`].
    NotThisFormat,
    /// `format_version` is not one this runtime reads.
    UnsupportedVersion(u64),
    /// A layer's description is invalid by itself (bad kernel, zero size, unknown field...).
    BadLayer { layer: usize, reason: &'static str },
    /// A layer does not fit the shape produced by the previous one, or its declared output shape is wrong.
    InconsistentLayer { layer: usize, reason: &'static str },
    /// More layers than [`crate::format::MAX_LAYERS`].
    TooManyLayers(usize),
    /// A tensor entry is malformed (missing/unknown field, bad data_offsets).
    BadTensorEntry(&'static str),
    /// A tensor name that the format does not define for this model.
    UnknownTensor,
    /// A tensor required by a layer is absent.
    MissingTensor { layer: usize, tensor: TensorKind },
    /// A tensor has the wrong dtype.
    WrongDtype { layer: usize, tensor: TensorKind },
    /// A tensor has the wrong shape.
    WrongShape { layer: usize, tensor: TensorKind },
    /// A tensor's `data_offsets` are reversed or outside the data section.
    OffsetsOutOfBounds,
    /// A tensor's byte length does not match its shape and dtype.
    SizeMismatch,
    /// A requantization parameter is out of range (negative multiplier, shift outside [-31, 31]).
    BadQuantParam { layer: usize, channel: usize },
    /// A size computation overflowed `usize` (absurd dimensions).
    Overflow,
    /// The metadata's `arena_bytes` is smaller than what this runtime needs.
    DeclaredArenaTooSmall { declared: usize, needed: usize },
    /// The number of labels differs from the number of outputs.
    LabelCount { labels: usize, outputs: usize },
    /// The caller's arena is smaller than [`crate::Model::arena_bytes`].
    ArenaTooSmall { needed: usize, got: usize },
    /// The input slice length differs from the model's input size.
    InputSize { expected: usize, got: usize },
    /// A frame's width or height is 0.
    FrameZeroSize,
    /// A frame's width or height exceeds [`MAX_FRAME_DIM`].
    FrameTooLarge { width: usize, height: usize },
    /// A frame's `row_stride` (bytes) is smaller than one row of pixels.
    StrideTooSmall { row_stride: usize, min: usize },
    /// A frame's pixel buffer ends before its last pixel (`needed` saturates at `usize::MAX`).
    BufferTooShort { needed: usize, got: usize },
    /// The region of interest is empty or not inside the frame.
    BadRoi,
    /// The preprocessing scratch buffer is smaller than
    /// [`crate::preprocess::SCRATCH_BYTES`].
    ScratchTooSmall { needed: usize, got: usize },
    /// The model's input quantization cannot map pixels (scale not finite and > 0, or zero
    /// point outside [-128, 127]).
    BadInputQuant,
    /// The model does not take the `[1, 28, 28]` (or `[784]`) image that preprocessing makes.
    InputShape(Shape),
    /// A broken invariant inside this crate: a bug, never the caller's input. The text names
    /// the invariant; please report it.
    Internal(&'static str),
}

impl Error {
    /// A stable number per variant, for bindings and logs (it never changes meaning; new
    /// variants get new numbers):
    ///
    /// 1 `Truncated`, 2 `BadHeaderLength`, 3 `Json`, 4 `DuplicateKey`, 5 `MissingMetadata`,
    /// 6 `MissingMetadataKey`, 7 `BadMetadata`, 8 `NotThisFormat`, 9 `UnsupportedVersion`,
    /// 10 `BadLayer`, 11 `InconsistentLayer`, 12 `TooManyLayers`, 13 `BadTensorEntry`,
    /// 14 `UnknownTensor`, 15 `MissingTensor`, 16 `BadQuantParam`, 17 `Overflow`,
    /// 18 `DeclaredArenaTooSmall`, 19 `LabelCount`, 30 `WrongDtype`, 31 `WrongShape`,
    /// 32 `OffsetsOutOfBounds`, 33 `SizeMismatch` (the model file);
    /// 20 `ArenaTooSmall`, 21 `InputSize` (buffers passed to inference);
    /// 22 `FrameZeroSize`, 23 `FrameTooLarge`, 24 `StrideTooSmall`, 25 `BufferTooShort`,
    /// 26 `BadRoi`, 27 `ScratchTooSmall`, 28 `BadInputQuant`, 29 `InputShape` (frames and
    /// preprocessing); 99 `Internal` (a bug).
    pub const fn code(&self) -> u32 {
        match self {
            Error::Truncated { .. } => 1,
            Error::BadHeaderLength(_) => 2,
            Error::Json { .. } => 3,
            Error::DuplicateKey => 4,
            Error::MissingMetadata => 5,
            Error::MissingMetadataKey(_) => 6,
            Error::BadMetadata { .. } => 7,
            Error::NotThisFormat => 8,
            Error::UnsupportedVersion(_) => 9,
            Error::BadLayer { .. } => 10,
            Error::InconsistentLayer { .. } => 11,
            Error::TooManyLayers(_) => 12,
            Error::BadTensorEntry(_) => 13,
            Error::UnknownTensor => 14,
            Error::MissingTensor { .. } => 15,
            Error::BadQuantParam { .. } => 16,
            Error::Overflow => 17,
            Error::DeclaredArenaTooSmall { .. } => 18,
            Error::LabelCount { .. } => 19,
            Error::ArenaTooSmall { .. } => 20,
            Error::InputSize { .. } => 21,
            Error::FrameZeroSize => 22,
            Error::FrameTooLarge { .. } => 23,
            Error::StrideTooSmall { .. } => 24,
            Error::BufferTooShort { .. } => 25,
            Error::BadRoi => 26,
            Error::ScratchTooSmall { .. } => 27,
            Error::BadInputQuant => 28,
            Error::InputShape(_) => 29,
            Error::WrongDtype { .. } => 30,
            Error::WrongShape { .. } => 31,
            Error::OffsetsOutOfBounds => 32,
            Error::SizeMismatch => 33,
            Error::Internal(_) => 99,
        }
    }

    /// True for errors that describe the model file (parsing and validation), as opposed to a
    /// frame, a buffer the caller passed, or a bug.
    pub const fn is_model_error(&self) -> bool {
        matches!(self.code(), 1..=19 | 30..=33)
    }
}

impl fmt::Display for JsonErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonErrorKind::UnexpectedEnd => "unexpected end of input",
            JsonErrorKind::UnexpectedChar => "unexpected character",
            JsonErrorKind::BadEscape => "invalid escape sequence",
            JsonErrorKind::ControlChar => "control character in string",
            JsonErrorKind::BadNumber => "invalid or out-of-range number",
            JsonErrorKind::TooDeep => "nesting too deep",
            JsonErrorKind::WrongType => "value has the wrong JSON type",
            JsonErrorKind::TrailingData => "data after the JSON document",
            JsonErrorKind::NotUtf8 => "not valid UTF-8",
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { needed, got } => {
                write!(f, "file truncated: need {needed} bytes, got {got}")
            }
            Error::BadHeaderLength(n) => write!(f, "bad safetensors header length {n}"),
            Error::Json { context, kind, offset } => match context {
                JsonContext::Header => write!(f, "header JSON: {kind} at byte {offset}"),
                JsonContext::Metadata(k) => {
                    write!(f, "metadata `{k}` JSON: {kind} at byte {offset}")
                }
            },
            Error::DuplicateKey => f.write_str("duplicate key in header"),
            Error::MissingMetadata => f.write_str("header has no __metadata__"),
            Error::MissingMetadataKey(k) => write!(f, "metadata key `{k}` missing"),
            Error::BadMetadata { key, reason } => write!(f, "metadata `{key}`: {reason}"),
            Error::NotThisFormat => f.write_str("not a runtime-mobile model (metadata `format`)"),
            Error::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            Error::BadLayer { layer, reason } => write!(f, "layer {layer}: {reason}"),
            Error::InconsistentLayer { layer, reason } => {
                write!(f, "layer {layer} inconsistent with the layer chain: {reason}")
            }
            Error::TooManyLayers(n) => write!(f, "{n} layers; at most {} supported", crate::format::MAX_LAYERS),
            Error::BadTensorEntry(r) => write!(f, "bad tensor entry: {r}"),
            Error::UnknownTensor => f.write_str("tensor name not defined by the format for this model"),
            Error::MissingTensor { layer, tensor } => {
                write!(f, "layer {layer}: tensor `{}` missing", tensor.suffix())
            }
            Error::WrongDtype { layer, tensor } => {
                write!(f, "layer {layer}: tensor `{}` has the wrong dtype", tensor.suffix())
            }
            Error::WrongShape { layer, tensor } => {
                write!(f, "layer {layer}: tensor `{}` has the wrong shape", tensor.suffix())
            }
            Error::OffsetsOutOfBounds => f.write_str("tensor data_offsets out of bounds"),
            Error::SizeMismatch => f.write_str("tensor byte length does not match shape and dtype"),
            Error::BadQuantParam { layer, channel } => {
                write!(f, "layer {layer} channel {channel}: requantization parameter out of range")
            }
            Error::Overflow => f.write_str("size computation overflows"),
            Error::DeclaredArenaTooSmall { declared, needed } => {
                write!(f, "metadata arena_bytes {declared} < {needed} needed")
            }
            Error::LabelCount { labels, outputs } => {
                write!(f, "{labels} labels for {outputs} outputs")
            }
            Error::ArenaTooSmall { needed, got } => {
                write!(f, "arena too small: need {needed} bytes, got {got}")
            }
            Error::InputSize { expected, got } => {
                write!(f, "input has {got} values, model expects {expected}")
            }
            Error::FrameZeroSize => f.write_str("image has zero width or height"),
            Error::FrameTooLarge { width, height } => {
                write!(f, "image {width}x{height} exceeds the {MAX_FRAME_DIM} pixel limit")
            }
            Error::StrideTooSmall { row_stride, min } => {
                write!(f, "row stride {row_stride} bytes is less than a row ({min} bytes)")
            }
            Error::BufferTooShort { needed: usize::MAX, got } => {
                write!(f, "pixel buffer has {got} bytes, far fewer than the image's size")
            }
            Error::BufferTooShort { needed, got } => {
                write!(f, "pixel buffer has {got} bytes, the image needs {needed}")
            }
            Error::BadRoi => f.write_str("region of interest is empty or outside the image"),
            Error::ScratchTooSmall { needed, got } => {
                write!(f, "scratch buffer has {got} bytes, preprocessing needs {needed}")
            }
            Error::BadInputQuant => f.write_str("unusable model input quantization"),
            Error::InputShape(s) => write!(f, "model input shape {s} is not [1,28,28] or [784]"),
            Error::Internal(what) => {
                write!(f, "internal error in runtime-mobile (a bug; please report it): {what}")
            }
        }
    }
}

impl core::error::Error for Error {}
