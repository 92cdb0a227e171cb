//! Type conversions between the core's answer and each boundary's types. No logic beyond
//! copying fields (and confidence Q15 -> f32, exact).

use runtime_mobile::FrameOutcome;
use runtime_mobile::preprocess::{NoDigitReason, Roi};

use crate::classifier::Answered;
use crate::uniffi_api::{Answer, Digit, PixelFormat, Ranked, Region};

pub fn pixel_format(f: PixelFormat) -> runtime_mobile::preprocess::PixelFormat {
    use runtime_mobile::preprocess::PixelFormat as P;
    match f {
        PixelFormat::Gray8 => P::Gray8,
        PixelFormat::Rgba8888 => P::Rgba8888,
        PixelFormat::Bgra8888 => P::Bgra8888,
        PixelFormat::Nv21 => P::Nv21,
        PixelFormat::Yuv420Y => P::Yuv420Y,
    }
}

/// `u32` to `usize`, saturating on 16-bit targets (the core then rejects the size).
pub fn usize_of(v: u32) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

fn u32_of(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

pub fn roi(r: Region) -> Roi {
    Roi { x: usize_of(r.left), y: usize_of(r.top), width: usize_of(r.width), height: usize_of(r.height) }
}

fn region(r: Roi) -> Region {
    Region { left: u32_of(r.x), top: u32_of(r.y), width: u32_of(r.width), height: u32_of(r.height) }
}

/// The uniffi record for an answer.
pub fn answer(a: &Answered<'_>) -> Answer {
    let (preprocess_micros, inference_micros) = (a.timing.preprocess_micros, a.timing.inference_micros);
    match &a.outcome {
        FrameOutcome::Digit(c) => Answer {
            digit: Some(Digit {
                class_index: u32_of(c.class),
                label: c.label.to_owned(),
                confidence: c.confidence.fraction(),
                top: c
                    .top()
                    .iter()
                    .map(|r| Ranked {
                        class_index: u32_of(r.class),
                        label: r.label.to_owned(),
                        confidence: r.confidence.fraction(),
                    })
                    .collect(),
                scores: c.scores.to_vec(),
            }),
            no_digit_reason: None,
            bounding_box: c.preprocess.map(|i| region(i.bbox)),
            inverted: c.preprocess.is_some_and(|i| i.inverted),
            preprocess_micros,
            inference_micros,
        },
        FrameOutcome::NoDigit(why) => Answer {
            digit: None,
            no_digit_reason: Some(why.describe().to_owned()),
            bounding_box: None,
            inverted: false,
            preprocess_micros,
            inference_micros,
        },
    }
}

/// Layout of the JNI answer: one `int[]` the Kotlin `FrameResult` owns and unpacks (one JNI
/// copy per frame, no object created). Keep in step with `FrameResult.kt`.
pub mod packed {
    pub const HAS_DIGIT: usize = 0;
    pub const NO_DIGIT_REASON: usize = 1;
    pub const CLASS: usize = 2;
    pub const CONFIDENCE_Q15: usize = 3;
    /// 3 class indices, then their 3 Q15 confidences (-1 / 0 past the model's class count).
    pub const TOP_CLASSES: usize = 4;
    pub const TOP_Q15: usize = 7;
    /// left, top, width, height (0 without preprocessing).
    pub const BOX: usize = 10;
    pub const INVERTED: usize = 14;
    pub const PREPROCESS_MICROS: usize = 15;
    pub const INFERENCE_MICROS: usize = 16;
    pub const N_SCORES: usize = 17;
    /// The scores follow, one int each.
    pub const HEADER: usize = 18;
    /// Scores the stack buffer holds (models with more classes are refused).
    pub const MAX_SCORES: usize = 256;
}

/// 1 low contrast, 2 no ink, 3 too small (0: a digit); the JNI `FrameResult.noDigitReason`.
pub fn reason_code(r: NoDigitReason) -> i32 {
    match r {
        NoDigitReason::LowContrast => 1,
        NoDigitReason::NoInk => 2,
        NoDigitReason::TooSmall => 3,
    }
}

fn i32_of(v: impl TryInto<i32>) -> i32 {
    v.try_into().unwrap_or(i32::MAX)
}

/// Writes an answer into `out` ([`packed`] layout); returns the number of ints written.
/// Allocation-free. `out` must hold `HEADER + classes` ints.
pub fn pack(a: &Answered<'_>, out: &mut [i32]) -> Result<usize, crate::Failure> {
    use packed::*;
    let head = out.get_mut(..HEADER).ok_or(crate::Failure::ResultTooSmall { needed: HEADER, got: 0 })?;
    head.fill(0);
    head[TOP_CLASSES..TOP_CLASSES + 3].fill(-1);
    head[PREPROCESS_MICROS] = i32_of(a.timing.preprocess_micros);
    head[INFERENCE_MICROS] = i32_of(a.timing.inference_micros);
    let c = match &a.outcome {
        FrameOutcome::NoDigit(why) => {
            head[NO_DIGIT_REASON] = reason_code(*why);
            head[CLASS] = -1;
            return Ok(HEADER);
        }
        FrameOutcome::Digit(c) => c,
    };
    head[HAS_DIGIT] = 1;
    head[CLASS] = i32_of(c.class);
    head[CONFIDENCE_Q15] = i32::from(c.confidence.q15());
    for (k, r) in c.top().iter().enumerate().take(3) {
        head[TOP_CLASSES + k] = i32_of(r.class);
        head[TOP_Q15 + k] = i32::from(r.confidence.q15());
    }
    if let Some(info) = c.preprocess {
        let b = info.bbox;
        head[BOX..BOX + 4].copy_from_slice(&[i32_of(b.x), i32_of(b.y), i32_of(b.width), i32_of(b.height)]);
        head[INVERTED] = i32::from(info.inverted);
    }
    head[N_SCORES] = i32_of(c.scores.len());
    let needed = HEADER + c.scores.len();
    let got = out.len();
    let tail = out.get_mut(HEADER..needed).ok_or(crate::Failure::ResultTooSmall { needed, got })?;
    for (t, &s) in tail.iter_mut().zip(c.scores) {
        *t = i32::from(s);
    }
    Ok(needed)
}
