//! The front door: one pipeline from a camera frame (or an MNIST-style image) to an answer,
//! used by every consumer (apps through the bindings, the firmware, the web page, `classify`,
//! the exporter's evaluation and the tests), so none of them re-implements a step of it.
//!
//! ```
//! use runtime_mobile::{Classifier, FrameOutcome, Model, kernels};
//! use runtime_mobile::classifier::FRAME_SCRATCH_BYTES;
//! use runtime_mobile::preprocess::{Frame, Options, PixelFormat, Roi, Rotation};
//! # fn demo(file: &[u8], y_plane: &[u8]) -> Result<(), runtime_mobile::Error> {
//! let model = Model::parse(file)?;
//! let mut arena = vec![0u8; model.session_arena_bytes()]; // or a static of that size
//! let mut scratch = vec![0u8; FRAME_SCRATCH_BYTES];
//! let mut classifier = Classifier::new(&model, kernels::best(), &mut arena, &mut scratch)?;
//! let frame = Frame::new(y_plane, PixelFormat::Yuv420Y, 640, 480, 640)?;
//! let opts = Options { rotation: Rotation::R90, roi: Some(Roi::centre_square(640, 480)), ..Options::DEFAULT };
//! match classifier.classify_frame(&frame, &opts)? {
//!     FrameOutcome::Digit(c) => println!("{} ({} per mille)", c.label, c.confidence.per_mille()),
//!     FrameOutcome::NoDigit(why) => println!("{why}"),
//! }
//! # Ok(()) }
//! ```

use crate::bytes::as_i8_mut;
use crate::confidence::{self, Confidence};
use crate::error::Error;
use crate::kernels::Kernels;
use crate::model::{Model, Prediction};
use crate::preprocess::{self, Frame, Info, InputQuantizer, NoDigitReason, OUT_PIXELS, Options, Preprocessed, SCRATCH_BYTES};
use crate::session::Session;

/// How many ranked classes a [`Classification`] carries.
pub const TOP_K: usize = 3;
/// Scratch for [`Classifier::classify_image`]: the 28x28 image and its int8 input.
pub const IMAGE_SCRATCH_BYTES: usize = 2 * OUT_PIXELS;
/// Scratch for [`Classifier::classify_frame`] as well: the above plus preprocessing's work
/// grids ([`SCRATCH_BYTES`]).
pub const FRAME_SCRATCH_BYTES: usize = IMAGE_SCRATCH_BYTES + SCRATCH_BYTES;

/// One class of the ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranked<'a> {
    pub class: usize,
    /// Borrowed from the model file.
    pub label: &'a str,
    pub confidence: Confidence,
}

/// The answer for one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification<'c, 'a> {
    /// Index of the highest score (the lowest index wins ties).
    pub class: usize,
    /// `class`'s label, borrowed from the model file.
    pub label: &'a str,
    /// Softmax of the dequantized scores at `class` (fixed point, the same bits on every
    /// target; see [`crate::confidence`]).
    pub confidence: Confidence,
    /// The model's int8 output, one per class; borrows the classifier's arena.
    pub scores: &'c [i8],
    /// What preprocessing found (bounding box, polarity); `None` for an image given as
    /// already MNIST-style ([`Classifier::classify_image`]).
    pub preprocess: Option<Info>,
    top: [Ranked<'a>; TOP_K],
    n_top: usize,
}

impl<'a> Classification<'_, 'a> {
    /// The best classes, best first: [`TOP_K`] of them, fewer if the model has fewer classes.
    pub fn top(&self) -> &[Ranked<'a>] {
        self.top.get(..self.n_top).unwrap_or(&self.top)
    }
}

/// What [`Classifier::classify_frame`] saw: most camera frames hold no digit, so that is an
/// ordinary outcome, not an error.
// No allocation here, so nothing to box: the enum is as large as a classification (~200 bytes).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameOutcome<'c, 'a> {
    Digit(Classification<'c, 'a>),
    NoDigit(NoDigitReason),
}

/// A parsed model ready to classify: a [`Session`] (weights packed once where the kernel table
/// has a packed path and the arena room for it), the model's input quantizer, and the caller's
/// scratch. Sizes: an arena of [`Model::arena_bytes`] (the least; a microcontroller) or
/// [`Model::session_arena_bytes`] (the fastest), and scratch of [`IMAGE_SCRATCH_BYTES`] (28x28
/// images only) or [`FRAME_SCRATCH_BYTES`] (camera frames too). No allocation, no `std`.
#[derive(Debug)]
pub struct Classifier<'s, 'a> {
    model: &'s Model<'a>,
    session: Session<'s, 'a>,
    quantizer: InputQuantizer,
    image: &'s mut [u8; OUT_PIXELS],
    input: &'s mut [i8; OUT_PIXELS],
    /// Preprocessing's work grids; shorter than [`SCRATCH_BYTES`] when only images are classified.
    work: &'s mut [u8],
}

impl<'s, 'a> Classifier<'s, 'a> {
    /// Checks that `model` takes a 28x28 image, builds its input quantizer and prepares a
    /// session in `arena` (see the type's docs for the sizes).
    pub fn new(model: &'s Model<'a>, kernels: &'s Kernels, arena: &'s mut [u8], scratch: &'s mut [u8]) -> Result<Self, Error> {
        preprocess::check_input_shape(model.input_shape())?;
        let quantizer = InputQuantizer::new(model.input_quant())?;
        let got = scratch.len();
        let (image, rest) =
            scratch.split_at_mut_checked(OUT_PIXELS).ok_or(Error::ScratchTooSmall { needed: IMAGE_SCRATCH_BYTES, got })?;
        let (input, work) =
            rest.split_at_mut_checked(OUT_PIXELS).ok_or(Error::ScratchTooSmall { needed: IMAGE_SCRATCH_BYTES, got })?;
        let image = <&mut [u8; OUT_PIXELS]>::try_from(image).map_err(|_| Error::Internal("classifier: image scratch"))?;
        let input =
            <&mut [i8; OUT_PIXELS]>::try_from(as_i8_mut(input)).map_err(|_| Error::Internal("classifier: input scratch"))?;
        let session = model.session(kernels, arena)?;
        Ok(Classifier { model, session, quantizer, image, input, work })
    }

    /// Classifies an image that is already MNIST-style: 28x28, row-major, 0 = background,
    /// 255 = ink, the digit centred (what [`preprocess::preprocess`] makes, or an MNIST image).
    pub fn classify_image(&mut self, image: &[u8; OUT_PIXELS]) -> Result<Classification<'_, 'a>, Error> {
        self.image.copy_from_slice(image);
        self.quantizer.quantize(self.image, self.input);
        let p = self.session.run(&self.input[..])?;
        classification(self.model, p, None)
    }

    /// Finds the digit in a camera frame or picture (crop, rotation, polarity, lighting: see
    /// [`preprocess`]) and classifies it. Needs [`FRAME_SCRATCH_BYTES`] of scratch.
    pub fn classify_frame(&mut self, frame: &Frame<'_>, opts: &Options) -> Result<FrameOutcome<'_, 'a>, Error> {
        self.classify_frame_marked(frame, opts, || ())
    }

    /// [`Classifier::classify_frame`], calling `between_phases` once preprocessing is done and
    /// before inference starts (also when no digit was found; not on an error): a caller with a
    /// clock reads it there to time the two phases apart (this crate has no clock).
    pub fn classify_frame_marked(
        &mut self,
        frame: &Frame<'_>,
        opts: &Options,
        between_phases: impl FnOnce(),
    ) -> Result<FrameOutcome<'_, 'a>, Error> {
        if self.work.len() < SCRATCH_BYTES {
            let got = self.work.len() + IMAGE_SCRATCH_BYTES;
            return Err(Error::ScratchTooSmall { needed: FRAME_SCRATCH_BYTES, got });
        }
        let found = preprocess::preprocess(frame, opts, self.work, self.image)?;
        between_phases();
        let info = match found {
            Preprocessed::Digit(info) => info,
            Preprocessed::NoDigit(reason) => return Ok(FrameOutcome::NoDigit(reason)),
        };
        self.quantizer.quantize(self.image, self.input);
        let p = self.session.run(&self.input[..])?;
        classification(self.model, p, Some(info)).map(FrameOutcome::Digit)
    }

    /// The 28x28 image the model saw last (all zero before the first call and after a frame
    /// without a digit): for a debug view.
    pub fn last_image(&self) -> &[u8; OUT_PIXELS] {
        self.image
    }

    pub fn model(&self) -> &'s Model<'a> {
        self.model
    }

    pub fn kernels(&self) -> &Kernels {
        self.session.kernels()
    }

    /// Whether the session packed the weights (the fast path; see [`Session::is_packed`]).
    pub fn is_packed(&self) -> bool {
        self.session.is_packed()
    }
}

/// Label, confidence and ranking for the engine's scores. Kept out of line so its frame and
/// the engine's are not stacked on a microcontroller.
#[inline(never)]
fn classification<'c, 'a>(
    model: &Model<'a>,
    p: Prediction<'c>,
    preprocess: Option<Info>,
) -> Result<Classification<'c, 'a>, Error> {
    const UNLABELLED: Error = Error::Internal("classifier: a class without a label");
    let scale = model.output_quant().scale;
    let max = p.score;
    let sum = confidence::exp_sum(p.scores, max, scale);
    let ranked = |class: usize| -> Result<Ranked<'a>, Error> {
        let score = *p.scores.get(class).ok_or(UNLABELLED)?;
        let label = model.label(class).ok_or(UNLABELLED)?;
        Ok(Ranked { class, label, confidence: confidence::confidence(score, max, scale, sum) })
    };
    let best = ranked(p.class)?;
    let mut top = [best; TOP_K];
    let mut n_top = 0;
    for (slot, class) in top.iter_mut().zip(top_classes(p.scores)) {
        *slot = ranked(class)?;
        n_top += 1;
    }
    Ok(Classification {
        class: best.class,
        label: best.label,
        confidence: best.confidence,
        scores: p.scores,
        preprocess,
        top,
        n_top,
    })
}

/// The indices of the [`TOP_K`] highest scores, best first; ties go to the lower index (as
/// [`Prediction::class`]).
fn top_classes(scores: &[i8]) -> impl Iterator<Item = usize> + '_ {
    let mut taken = [usize::MAX; TOP_K];
    (0..TOP_K.min(scores.len())).filter_map(move |rank| {
        let best = scores
            .iter()
            .enumerate()
            .filter(|(i, _)| !taken.contains(i))
            .fold(None, |b: Option<(usize, i8)>, (i, &s)| if b.is_some_and(|(_, bs)| bs >= s) { b } else { Some((i, s)) })?;
        *taken.get_mut(rank)? = best.0;
        Some(best.0)
    })
}

#[cfg(test)]
mod tests {
    use super::top_classes;

    #[test]
    fn top_classes_rank_by_score_then_index() {
        let got: std::vec::Vec<usize> = top_classes(&[3, 9, 9, -4, 9, 1]).collect();
        assert_eq!(got, [1, 2, 4]);
        let got: std::vec::Vec<usize> = top_classes(&[5, -1]).collect();
        assert_eq!(got, [0, 1]);
        let got: std::vec::Vec<usize> = top_classes(&[-128, -128, -128, 127]).collect();
        assert_eq!(got, [3, 0, 1]);
        assert_eq!(top_classes(&[]).count(), 0);
    }
}
