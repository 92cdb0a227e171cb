//! `runtime_mobile::Classifier` for the web page (`web/`): a raw C ABI over the front door,
//! compiled to `wasm32-unknown-unknown` with no wasm-bindgen (no CLI to match, a small module).
//!
//! Everything lives in statics (no allocator): the model file, the session arena and the
//! classifier's scratch are fixed-size; the picture being classified grows linear memory as
//! needed. The JavaScript side (`web/classifier.js`) copies bytes into the buffers these
//! functions hand out and reads the answer from the result block ([`Answer`]).
//!
//! The ABI, in call order:
//! 1. `model_buffer(len) -> ptr` (drops the loaded model), copy the file there,
//!    `load_model(len) -> status`;
//! 2. `frame_buffer(len) -> ptr`, copy the pixels there,
//!    `classify_frame(width, height, format, viewfinder_percent) -> status`; or
//!    `image_buffer() -> ptr` (28x28, MNIST-style), `classify_image() -> status`;
//! 3. `result_ptr()` (see [`Answer`]), `input_ptr()` (the 28x28 input the model saw),
//!    `label_ptr(i)`/`label_len(i)`.
//!
//! Status: 0 a digit was classified, 1 no digit found ([`Answer::no_digit`] says why), a
//! negative value is `-Error::code()`.
// no_std on wasm32 (no allocator, a small module); std on the host, where the cdylib needs a panic runtime.
#![cfg_attr(target_arch = "wasm32", no_std)]

#[cfg(target_arch = "wasm32")]
pub mod abi;

use runtime_mobile::kernels::Kernels;
use runtime_mobile::preprocess::{NoDigitReason, PixelFormat};

/// Classes an [`Answer`] holds scores for (the models have 10).
pub const MAX_CLASSES: usize = 16;

/// The answer block JavaScript reads after a classification: `#[repr(C)]` i32s, in this order.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Answer {
    /// 0 digit, 1 no digit, negative: `-Error::code()`.
    pub status: i32,
    /// 0 when a digit was found, else 1 low contrast, 2 no ink, 3 too small.
    pub no_digit: i32,
    pub class: i32,
    /// Confidence of `class`, Q15 (32768 = 1).
    pub confidence_q15: i32,
    /// How many of `top_class`/`top_q15` are set.
    pub n_top: i32,
    pub top_class: [i32; 3],
    pub top_q15: [i32; 3],
    /// The picture was inverted (dark ink on a light page).
    pub inverted: i32,
    /// Where the digit is, in upright picture (ROI) pixels: x, y, width, height.
    pub bbox: [i32; 4],
    /// How many of `scores` are set.
    pub n_scores: i32,
    /// The model's int8 output.
    pub scores: [i32; MAX_CLASSES],
}

/// The ABI's pixel format numbers.
pub fn pixel_format(code: u32) -> Option<PixelFormat> {
    match code {
        0 => Some(PixelFormat::Gray8),
        1 => Some(PixelFormat::Rgba8888),
        _ => None,
    }
}

/// The ABI's number for a reason no digit was found.
pub fn no_digit_code(reason: NoDigitReason) -> i32 {
    match reason {
        NoDigitReason::LowContrast => 1,
        NoDigitReason::NoInk => 2,
        NoDigitReason::TooSmall => 3,
    }
}

/// The kernel table the page runs: simd128 on wasm32 (WebAssembly SIMD is in every browser
/// since 2021–23; the page says so when it is missing, as the module then fails to compile);
/// the scalar reference with the packed conv path in host builds.
pub fn kernel_table() -> &'static Kernels {
    #[cfg(target_arch = "wasm32")]
    {
        runtime_mobile::kernels::wasm32::simd128()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        &runtime_mobile::kernels::scalar::KERNELS_PACKED
    }
}
