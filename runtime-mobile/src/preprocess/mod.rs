//! Turns a real picture of one handwritten digit (camera frame, bitmap, scan) into the 28x28
//! MNIST-style model input, the way MNIST itself was made: ink bright on black, the digit's
//! bounding box scaled into 20x20 keeping its aspect ratio, then placed so that its centre of
//! mass is at the image centre.
//!
//! Integer and fixed-point only (no `f32` on the pixel path), so every target produces the same
//! bytes; no allocation: the caller passes [`SCRATCH_BYTES`] of scratch.
//!
//! ```
//! use runtime_mobile::preprocess::{self, Frame, InputQuantizer, Options, OUT_PIXELS, SCRATCH_BYTES};
//! # fn demo(y_plane: &[u8]) -> Result<(), runtime_mobile::Error> {
//! let frame = Frame::new(y_plane, preprocess::PixelFormat::Yuv420Y, 640, 480, 640)?;
//! let opts = Options { roi: Some(preprocess::Roi::centre_square(640, 480)),
//!                      rotation: preprocess::Rotation::R90, ..Options::DEFAULT };
//! let mut scratch = [0u8; SCRATCH_BYTES];
//! let mut image = [0u8; OUT_PIXELS];
//! if let preprocess::Preprocessed::Digit(info) = preprocess::preprocess(&frame, &opts, &mut scratch, &mut image)? {
//!     let _ = info.bbox; // where the digit is, for an overlay
//! }
//! let mut input = [0i8; OUT_PIXELS];
//! InputQuantizer::MNIST.quantize(&image, &mut input); // or InputQuantizer::new(model.input_quant())
//! # Ok(()) }
//! ```
//!
//! Pipeline (all on a work grid of at most [`WORK_DIM`]² pixels):
//! 1. Area-average the (cropped, rotated) frame onto the work grid: thin strokes are diluted,
//!    not lost, and the cost of later steps no longer depends on the camera resolution.
//! 2. Polarity: the ink is the minority, so it makes the longer tail of the histogram away
//!    from the median (the background); if that tail is the dark one the page is light, so the
//!    picture is inverted (MNIST digits are white on black). Gradients and vignettes widen the
//!    background to both sides alike and do not flip it.
//! 3. Flatten lighting: subtract a morphological opening (white top-hat) with a window wider
//!    than any stroke, which removes gradients/shadows but keeps strokes.
//! 4. Contrast: Otsu again; background level `B` and ink level `I` are the two class means.
//!    Too little contrast is [`Preprocessed::NoDigit`]. Values are stretched so that
//!    `B + (I-B)/8` maps to 0 and `B + 7(I-B)/8` to 255 (noise and haze clip to black, stroke
//!    cores saturate, anti-aliased edges stay grey as in MNIST).
//! 5. Bounding box of pixels >= 128 that have an ink neighbour (isolated specks are ignored),
//!    measured like MNIST's binary NIST images.
//! 6. Scale so the longer box side is [`BOX_DIM`] and area-sample into 28x28 so that the
//!    centre of mass lands on pixel (14, 14) — MNIST's measured mean, continuous 14.5 — with
//!    sub-pixel precision taken from the work grid.

mod frame;
mod resample;

use core::fmt;

use crate::error::Error;
use crate::format::{Quant, Shape};
use frame::Source;
pub use frame::{Frame, MAX_FRAME_DIM, PixelFormat, Roi, Rotation};
use resample::{ONE, area_mean};

/// Side of the model input image.
pub const OUT_DIM: usize = 28;
/// Pixels of the model input image (`[1, 28, 28]`, row-major).
pub const OUT_PIXELS: usize = OUT_DIM * OUT_DIM;
/// Side of the box the digit is scaled into (MNIST: 20).
pub const BOX_DIM: usize = 20;
/// Maximum side of the work grid. 128 resolves a digit that covers a third of the ROI at ~2x
/// the output resolution; frames at most this large are processed at full resolution.
pub const WORK_DIM: usize = 128;
/// Scratch bytes [`preprocess`] needs: the work grid plus an equal buffer for the background
/// estimate (32 KiB).
pub const SCRATCH_BYTES: usize = 2 * WORK_DIM * WORK_DIM;
/// Default [`Options::min_contrast`].
pub const DEFAULT_MIN_CONTRAST: u8 = 32;

/// Where the centre of mass goes, 16.16 continuous coordinates (pixel `i` spans `[i, i+1)`).
const CENTRE: i64 = 14 * ONE + ONE / 2;
/// Ink whose bounding box is smaller than this on the work grid is noise (a digit that small
/// in the ROI would be upscaled 4x+ and unrecognisable anyway: crop closer instead).
const MIN_DIGIT_PX: usize = 5;
/// Work-grid pixels of context kept around the bounding box (anti-aliased stroke edges).
const MARGIN: usize = 1;

/// Which way round the ink is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Polarity {
    /// Decide per image from the frame border (see the module docs).
    #[default]
    Auto,
    /// Dark ink on a light page (paper, whiteboard, most drawing apps): always invert.
    DarkInk,
    /// Light ink on a dark background (MNIST itself, chalkboard): never invert.
    LightInk,
}

/// Preprocessing options; `Options::DEFAULT` is the whole frame, upright, auto polarity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Clockwise rotation that makes the frame upright.
    pub rotation: Rotation,
    /// Crop, in frame coordinates (before rotation). `None`: the whole frame.
    pub roi: Option<Roi>,
    pub polarity: Polarity,
    /// Minimum ink-minus-background level difference (0..255, after lighting is flattened)
    /// below which the picture is reported as [`Preprocessed::NoDigit`].
    pub min_contrast: u8,
}

impl Options {
    pub const DEFAULT: Options =
        Options { rotation: Rotation::R0, roi: None, polarity: Polarity::Auto, min_contrast: DEFAULT_MIN_CONTRAST };
}

impl Default for Options {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why no digit was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoDigitReason {
    /// Ink and background levels differ by less than [`Options::min_contrast`] (blank page,
    /// uniform or gradient-only image, sensor noise).
    LowContrast,
    /// No connected ink pixel after thresholding.
    NoInk,
    /// The ink is smaller than a few work-grid pixels.
    TooSmall,
}

impl NoDigitReason {
    /// A short English description, for logs and user interfaces.
    pub const fn describe(self) -> &'static str {
        match self {
            NoDigitReason::LowContrast => "no digit found (too little contrast)",
            NoDigitReason::NoInk => "no digit found (no ink)",
            NoDigitReason::TooSmall => "no digit found (ink too small)",
        }
    }
}

impl fmt::Display for NoDigitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// What [`preprocess`] made of a frame: most camera frames hold no digit, so that is an
/// ordinary outcome, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preprocessed {
    /// The model input was written; where the digit was found.
    Digit(Info),
    /// Nothing digit-like; the model input is all zero.
    NoDigit(NoDigitReason),
}

/// What [`preprocess`] found, for display and debugging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// The picture was inverted (dark ink on a light page).
    pub inverted: bool,
    /// Background and ink levels (class means after inversion and flattening, 0..255).
    pub background: u8,
    pub ink: u8,
    /// Bounding box of the digit in upright ROI pixels (after crop and rotation).
    pub bbox: Roi,
    /// Work grid size.
    pub work_width: usize,
    pub work_height: usize,
}

/// Preprocesses `frame` into `out`, a 28x28 row-major image (0 = background, 255 = ink).
/// `scratch` needs at least [`SCRATCH_BYTES`]; its contents on return are unspecified. On an
/// error or [`Preprocessed::NoDigit`], `out` is all zero.
pub fn preprocess(
    frame: &Frame<'_>,
    opts: &Options,
    scratch: &mut [u8],
    out: &mut [u8; OUT_PIXELS],
) -> Result<Preprocessed, Error> {
    out.fill(0);
    if scratch.len() < SCRATCH_BYTES {
        return Err(Error::ScratchTooSmall { needed: SCRATCH_BYTES, got: scratch.len() });
    }
    let src = Source::new(*frame, opts.roi, opts.rotation)?;
    let (work, rest) = scratch.split_at_mut(WORK_DIM * WORK_DIM);
    let tmp = &mut rest[..WORK_DIM * WORK_DIM];

    // 1. Work grid. One step (16.16) for both axes keeps the aspect ratio exact; the last
    //    row/column may be partial and then averages only the pixels it covers.
    let (uw, uh) = (src.width, src.height);
    let big = uw.max(uh);
    let (w, h, step) = if big <= WORK_DIM {
        (uw, uh, ONE)
    } else {
        let step = big as i64 * ONE / WORK_DIM as i64; // exact: WORK_DIM divides 2^16
        (uw.saturating_mul(WORK_DIM).div_ceil(big), uh.saturating_mul(WORK_DIM).div_ceil(big), step)
    };
    let n = w * h;
    let work = &mut work[..n];
    let tmp = &mut tmp[..n];
    for y in 0..h {
        for x in 0..w {
            work[y * w + x] = if step == ONE {
                src.luma(x, y)
            } else {
                let (x0, y0) = (x as i64 * step, y as i64 * step);
                area_mean(|sx, sy| src.luma(sx, sy), [0, 0, uw, uh], [x0, y0, x0 + step, y0 + step], false)
            };
        }
    }

    // 2. Polarity.
    let inverted = match opts.polarity {
        Polarity::DarkInk => true,
        Polarity::LightInk => false,
        Polarity::Auto => page_is_light(&histogram(work)),
    };
    if inverted {
        work.iter_mut().for_each(|v| *v = 255 - *v);
    }

    // 3. White top-hat. The window (a third of the larger side) is wider than a stroke of any
    //    digit that fits in the ROI, so strokes are not part of the background estimate.
    let radius = (w.max(h) / 6).max(1);
    opening(work, tmp, w, h, radius);
    work.iter_mut().zip(tmp.iter()).for_each(|(v, b)| *v -= *b); // opening <= image

    // 4. Contrast.
    let Some(split) = otsu(&histogram(work)) else { return Ok(Preprocessed::NoDigit(NoDigitReason::LowContrast)) };
    let (bg, ink) = (split.lo as i32, split.hi as i32);
    if ink - bg < opts.min_contrast.max(1) as i32 {
        return Ok(Preprocessed::NoDigit(NoDigitReason::LowContrast));
    }
    let lo = bg + (ink - bg) / 8;
    let hi = bg + (ink - bg) * 7 / 8;
    let span = (hi - lo).max(1);
    work.iter_mut().for_each(|v| *v = ((*v as i32 - lo) * 255 / span).clamp(0, 255) as u8);

    // 5. Bounding box.
    let Some([bx0, by0, bx1, by1]) = ink_bbox(work, w, h) else {
        return Ok(Preprocessed::NoDigit(NoDigitReason::NoInk));
    };
    let extent = (bx1 - bx0).max(by1 - by0);
    if extent < MIN_DIGIT_PX {
        return Ok(Preprocessed::NoDigit(NoDigitReason::TooSmall));
    }
    let crop = [bx0.saturating_sub(MARGIN), by0.saturating_sub(MARGIN), (bx1 + MARGIN).min(w), (by1 + MARGIN).min(h)];

    // 6. Centre of mass (16.16, pixel centres at i + 0.5) over the crop, then render.
    let (mut mass, mut mx, mut my) = (0u64, 0u64, 0u64);
    for y in crop[1]..crop[3] {
        for x in crop[0]..crop[2] {
            let v = work[y * w + x] as u64;
            mass += v;
            mx += v * (2 * x as u64 + 1);
            my += v * (2 * y as u64 + 1);
        }
    }
    // mass > 0: the bbox pixels are >= 128. Bound: 2^14 px * 255 * 2^8 * 2^15 < 2^45.
    let cx = ((mx << 15) / mass) as i64;
    let cy = ((my << 15) / mass) as i64;
    // Output coordinate X (16.16) maps to work coordinate c + (X - CENTRE) * extent / BOX_DIM.
    let map = |c: i64, o: usize| c + ((o as i64 * ONE - CENTRE) * extent as i64).div_euclid(BOX_DIM as i64);
    let work = &*work;
    for oy in 0..OUT_DIM {
        let (y0, y1) = (map(cy, oy), map(cy, oy + 1));
        for ox in 0..OUT_DIM {
            let r = [map(cx, ox), y0, map(cx, ox + 1), y1];
            out[oy * OUT_DIM + ox] = area_mean(|x, y| work[y * w + x], crop, r, true);
        }
    }

    // Work grid -> upright ROI pixels, for the caller's overlay.
    let up = |v: usize, lim: usize| (((v as i64 * step) >> 16) as usize).min(lim);
    let (ux0, uy0, ux1, uy1) = (up(bx0, uw), up(by0, uh), up(bx1, uw), up(by1, uh));
    Ok(Preprocessed::Digit(Info {
        inverted,
        background: split.lo,
        ink: split.hi,
        bbox: Roi { x: ux0, y: uy0, width: ux1 - ux0, height: uy1 - uy0 },
        work_width: w,
        work_height: h,
    }))
}

fn histogram(px: &[u8]) -> [u32; 256] {
    let mut h = [0u32; 256];
    px.iter().for_each(|&v| h[v as usize] += 1);
    h
}

/// An Otsu split's rounded class means (class 0 is `v <= t`, `t` the threshold).
#[derive(Debug, Clone, Copy)]
struct Split {
    lo: u8,
    hi: u8,
}

/// Otsu's threshold (maximum between-class variance), exact in integers; `None` when all
/// pixels have one value. The first maximum wins ties.
fn otsu(hist: &[u32; 256]) -> Option<Split> {
    let total: u64 = hist.iter().map(|&c| c as u64).sum();
    let sum_all: u64 = hist.iter().enumerate().map(|(v, &c)| v as u64 * c as u64).sum();
    let (mut w0, mut s0) = (0u64, 0u64);
    let mut best: Option<(u128, u64, u64)> = None;
    for (t, &count) in hist.iter().enumerate().take(255) {
        w0 += count as u64;
        s0 += t as u64 * count as u64;
        let w1 = total - w0;
        if w0 == 0 {
            continue;
        }
        if w1 == 0 {
            break;
        }
        // w0*w1*(mu1-mu0)^2 = (s1*w0 - s0*w1)^2 / (w0*w1); terms < 2^36, the square < 2^72.
        let d = ((sum_all - s0) * w0) as i128 - (s0 * w1) as i128;
        let score = (d * d) as u128 / (w0 as u128 * w1 as u128);
        if best.is_none_or(|b| score > b.0) {
            best = Some((score, w0, s0));
        }
    }
    let (_, w0, s0) = best?;
    let (w1, s1) = (total - w0, sum_all - s0);
    Some(Split { lo: ((s0 + w0 / 2) / w0) as u8, hi: ((s1 + w1 / 2) / w1) as u8 })
}

/// Share of the pixels (1 / this) in each tail of the histogram when judging polarity.
const TAIL_SHARE: u64 = 256;

/// True when the page is lighter than the ink. The ink is a minority of the pixels, so it
/// stretches the histogram away from the background (the median) on its own side: compare how
/// far the darkest and the brightest 1/256 of the pixels lie from the median. Lighting gradients,
/// vignetting and shadows spread the background to both sides alike, so unlike a vote of the
/// frame's border (which a vignette or a shadowed edge darkens) they do not flip the answer.
fn page_is_light(hist: &[u32; 256]) -> bool {
    let total: u64 = hist.iter().map(|&c| c as u64).sum();
    // The smallest level with more than `rank` pixels at or below it.
    let level = |rank: u64| {
        let mut seen = 0u64;
        hist.iter()
            .position(|&c| {
                seen += c as u64;
                seen > rank
            })
            .unwrap_or(255) as i32
    };
    let tail = total / TAIL_SHARE;
    let (dark, median, bright) = (level(tail), level(total / 2), level(total.saturating_sub(tail + 1)));
    median - dark > bright - median
}

/// `out` = morphological opening of `img` (min then max over a `(2r+1)²` square, clipped at
/// the edges), done separably.
fn opening(img: &[u8], out: &mut [u8], w: usize, h: usize, r: usize) {
    out.copy_from_slice(img);
    for (horizontal, take_max) in [(true, false), (false, false), (true, true), (false, true)] {
        filter_lines(out, w, h, r, horizontal, take_max);
    }
}

/// Running min or max over a `2r+1` window along every row or column, in place.
fn filter_lines(buf: &mut [u8], w: usize, h: usize, r: usize, horizontal: bool, take_max: bool) {
    let (lines, len) = if horizontal { (h, w) } else { (w, h) };
    let idx = |line: usize, k: usize| if horizontal { line * w + k } else { k * w + line };
    let mut line_buf = [0u8; WORK_DIM];
    let copy = &mut line_buf[..len];
    for line in 0..lines {
        for (k, c) in copy.iter_mut().enumerate() {
            *c = buf[idx(line, k)];
        }
        for k in 0..len {
            let win = copy[k.saturating_sub(r)..(k + r + 1).min(len)].iter().copied();
            buf[idx(line, k)] = if take_max { win.max() } else { win.min() }.unwrap_or(0);
        }
    }
}

/// `[x0, y0, x1, y1)` of pixels >= 128 with at least one 8-neighbour >= 128.
fn ink_bbox(px: &[u8], w: usize, h: usize) -> Option<[usize; 4]> {
    let ink = |x: usize, y: usize| px[y * w + x] >= 128;
    let mut bb: Option<[usize; 4]> = None;
    for y in 0..h {
        for x in 0..w {
            if !ink(x, y) {
                continue;
            }
            let neighbour = (y.saturating_sub(1)..(y + 2).min(h))
                .any(|ny| (x.saturating_sub(1)..(x + 2).min(w)).any(|nx| (nx, ny) != (x, y) && ink(nx, ny)));
            if neighbour {
                bb = Some(match bb {
                    None => [x, y, x + 1, y + 1],
                    Some([x0, y0, x1, y1]) => [x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1)],
                });
            }
        }
    }
    bb
}

/// Maps the 0..255 image to the model's int8 input with a 256-entry table.
///
/// The table is built once per model from its `f32` `input_scale` (the only float use here):
/// `q = round(p / 255 / scale) + zero_point`, clamped, in `f64`. IEEE-754 `+ - * /` are correctly
/// rounded on every target, so the table — and therefore the input bytes — are identical
/// everywhere; the per-pixel path is a table lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputQuantizer {
    lut: [i8; 256],
}

impl InputQuantizer {
    /// The exporter's MNIST convention (`scale = 1/255`, `zero_point = -128`): `q = p - 128`.
    pub const MNIST: InputQuantizer = {
        let mut lut = [0i8; 256];
        let mut p = 0;
        while p < 256 {
            lut[p] = (p as i32 - 128) as i8;
            p += 1;
        }
        InputQuantizer { lut }
    };

    /// The table for a model's input quantization ([`crate::Model::input_quant`]).
    pub fn new(quant: Quant) -> Result<Self, Error> {
        let scale = quant.scale as f64;
        if !scale.is_finite() || scale <= 0.0 || !(-128..=127).contains(&quant.zero_point) {
            return Err(Error::BadInputQuant);
        }
        let mut lut = [0i8; 256];
        for (p, q) in lut.iter_mut().enumerate() {
            let v = p as f64 / 255.0 / scale;
            // Round half away from zero (`f64::round` needs std); `as` saturates.
            let r = if v >= 0.0 { (v + 0.5) as i64 } else { (v - 0.5) as i64 };
            *q = r.saturating_add(quant.zero_point as i64).clamp(-128, 127) as i8;
        }
        Ok(InputQuantizer { lut })
    }

    /// The quantized value of every pixel level.
    pub fn table(&self) -> &[i8; 256] {
        &self.lut
    }

    pub fn quantize(&self, image: &[u8; OUT_PIXELS], input: &mut [i8; OUT_PIXELS]) {
        input.iter_mut().zip(image.iter()).for_each(|(q, &p)| *q = self.lut[p as usize]);
    }
}

/// Checks that a model takes the 28x28 single-channel image this module produces.
pub fn check_input_shape(shape: Shape) -> Result<(), Error> {
    match shape {
        Shape::Chw(1, OUT_DIM, OUT_DIM) | Shape::Flat(OUT_PIXELS) => Ok(()),
        other => Err(Error::InputShape(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 96x72 page of `page` brightness darkened up to 60% towards the corners (vignette and
    /// a shadowed edge), with a thin 2-pixel ring of `ink` in the middle.
    fn vignetted(page: i32, ink: i32) -> [u32; 256] {
        let (w, h) = (96i32, 72i32);
        let mut px = [0u8; 96 * 72];
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x - w / 2, y - h / 2);
                let r2 = dx * dx + dy * dy;
                let light = page - page * 6 * r2 / (10 * (w * w + h * h) / 4);
                let on_ring = (14 * 14..=16 * 16).contains(&r2);
                px[(y * w + x) as usize] = if on_ring { ink } else { light }.clamp(0, 255) as u8;
            }
        }
        histogram(&px)
    }

    #[test]
    fn polarity_follows_the_ink_not_a_vignetted_border() {
        // The border of this light page is darker than the frame's middle: a vote of the
        // border against Otsu's threshold called it a dark board.
        assert!(page_is_light(&vignetted(220, 40)), "dark ink on a vignetted light page");
        assert!(!page_is_light(&vignetted(60, 230)), "light chalk on a vignetted dark board");
    }
}
