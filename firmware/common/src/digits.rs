//! The stored digits (flash) and what the host's classifier answered for each (build.rs).
//!
//! The digits are the repository's committed test digits, `runtime-mobile/tests/fixtures/digits`:
//! the first 100 images of MNIST's t10k split with their labels (the rule and the licence are in
//! that folder's README). Stored raw, 784 bytes each.

use runtime_mobile::preprocess::OUT_PIXELS;

/// One stored digit's label and the host's answer for it (`Classifier::classify_image` on the
/// host, at build time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// MNIST's true label.
    pub label: u8,
    /// The host's answer (class index).
    pub class: u8,
    /// The host's confidence in `class`, raw Q15 (`Confidence::q15`).
    pub confidence_q15: u16,
    /// The host's int8 scores.
    pub scores: [i8; N_CLASSES],
    /// The host's top 3: class index and raw Q15 confidence, best first.
    pub top: [(u8, u16); 3],
}

include!(concat!(env!("OUT_DIR"), "/expected.rs"));

static PIXELS: &[u8; N_DIGITS * OUT_PIXELS] = include_bytes!(concat!(env!("OUT_DIR"), "/digits.bin"));

/// Bytes of flash the stored digits take (pixels only; labels and answers are in [`EXPECTED`]).
pub const PIXEL_BYTES: usize = N_DIGITS * OUT_PIXELS;

/// Stored digit `i` (28x28, row-major, 0 = background), or `None` past [`N_DIGITS`].
pub fn digit(i: usize) -> Option<&'static [u8; OUT_PIXELS]> {
    PIXELS.get(i * OUT_PIXELS..(i + 1) * OUT_PIXELS)?.try_into().ok()
}
