//! The uniffi surface (namespace `digits`), exactly as agreed in the phone API: records in,
//! records out, typed errors, "no digit" as a value. Every exported call goes through
//! [`guard`], so a panic becomes `ClassifierError::Internal`.

use std::sync::Arc;

use crate::classifier::{Bundled, Engine, FrameArgs};
use crate::convert;
use crate::error::{Failure, guard};

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum BundledModel {
    Mnist,
    FashionMnist,
}

/// As `runtime_mobile::preprocess::PixelFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PixelFormat {
    Gray8,
    Rgba8888,
    Bgra8888,
    Nv21,
    Yuv420Y,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct Region {
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Ranked {
    pub class_index: u32,
    pub label: String,
    /// 0..1, exactly the core's Q15 value / 32768.
    pub confidence: f32,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Digit {
    pub class_index: u32,
    pub label: String,
    /// 0..1, exactly the core's Q15 value / 32768.
    pub confidence: f32,
    /// The 3 best classes, best first.
    pub top: Vec<Ranked>,
    /// The model's int8 scores, one per class.
    pub scores: Vec<i8>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Answer {
    /// `None`: no digit in the frame (an ordinary outcome).
    pub digit: Option<Digit>,
    /// Set iff `digit` is `None`.
    pub no_digit_reason: Option<String>,
    /// In upright region-of-interest pixels, when a digit was found in a frame.
    pub bounding_box: Option<Region>,
    pub inverted: bool,
    /// Finding the digit in the frame; 0 for `classify_image` (nothing to find).
    pub preprocess_micros: u64,
    /// Quantizing, the network, the label, confidence and top 3.
    pub inference_micros: u64,
}

/// Kotlin: `ClassifierException.Model` etc.; `code` is `runtime-mobile`'s `Error::code()` or
/// the bindings' own (100..=105, see `Failure::code`). The text is `detail`, not `message`: a
/// field named `message` clashes with `Throwable.message` in the generated Kotlin.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Error)]
pub enum ClassifierError {
    /// Bad model bytes.
    Model { code: u32, detail: String },
    /// Bad frame or image arguments.
    Input { code: u32, detail: String },
    /// A bug (the core's `Internal`, or a caught panic).
    Internal { code: u32, detail: String },
}

impl std::fmt::Display for ClassifierError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (ClassifierError::Model { code, detail }
        | ClassifierError::Input { code, detail }
        | ClassifierError::Internal { code, detail }) = self;
        write!(f, "{detail} (code {code})")
    }
}

impl std::error::Error for ClassifierError {}

impl From<Failure> for ClassifierError {
    fn from(f: Failure) -> Self {
        let (code, detail) = (f.code(), f.to_string());
        match f.kind() {
            crate::error::Kind::Model => ClassifierError::Model { code, detail },
            crate::error::Kind::Input => ClassifierError::Input { code, detail },
            crate::error::Kind::Internal => ClassifierError::Internal { code, detail },
        }
    }
}

/// A digit classifier over one model; safe to share between threads (calls are serialised).
#[derive(Debug, uniffi::Object)]
pub struct Classifier {
    engine: Engine,
}

#[uniffi::export]
impl Classifier {
    /// A model file's bytes (a `runtime-mobile` int8 safetensors file, as in `models/`).
    #[uniffi::constructor]
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Arc<Self>, ClassifierError> {
        Ok(guard(|| Engine::from_bytes(bytes).map(|engine| Arc::new(Classifier { engine })))?)
    }

    /// One of the models shipped inside the library.
    #[uniffi::constructor]
    pub fn bundled(model: BundledModel) -> Result<Arc<Self>, ClassifierError> {
        let which = match model {
            BundledModel::Mnist => Bundled::Mnist,
            BundledModel::FashionMnist => Bundled::FashionMnist,
        };
        Ok(guard(|| Engine::bundled(which).map(|engine| Arc::new(Classifier { engine })))?)
    }

    /// A 28x28 MNIST-style image (784 bytes, row-major, 0 = background).
    pub fn classify_image(&self, pixels: Vec<u8>) -> Result<Answer, ClassifierError> {
        Ok(guard(|| self.engine.classify_image(&pixels, |a| convert::answer(&a)))?)
    }

    /// Finds and classifies the digit in a camera frame or picture. `roi` is in frame pixels
    /// (before rotation); `rotation_degrees` is the clockwise rotation that makes it upright.
    #[allow(clippy::too_many_arguments)] // the agreed API: one call per frame
    pub fn classify_frame(
        &self,
        bytes: Vec<u8>,
        width: u32,
        height: u32,
        row_stride: u32,
        format: PixelFormat,
        rotation_degrees: i32,
        roi: Option<Region>,
    ) -> Result<Answer, ClassifierError> {
        Ok(guard(|| {
            let args = FrameArgs {
                data: &bytes,
                format: convert::pixel_format(format),
                width: convert::usize_of(width),
                height: convert::usize_of(height),
                row_stride: convert::usize_of(row_stride),
                rotation_degrees,
                roi: roi.map(convert::roi),
            };
            self.engine.classify_frame(&args, |a| convert::answer(&a))
        })?)
    }

    pub fn labels(&self) -> Vec<String> {
        guard(|| Ok(self.engine.labels())).unwrap_or_default()
    }

    pub fn dataset(&self) -> String {
        guard(|| Ok(self.engine.dataset())).unwrap_or_default()
    }

    /// The kernel table chosen at run time (e.g. `neon-dotprod` on a recent phone).
    pub fn kernels(&self) -> String {
        guard(|| Ok(self.engine.kernels().to_owned())).unwrap_or_default()
    }
}
