//! `native_scores MODEL IMAGE...`: the native classifier's answers for picture files, as JSON
//! (one object per image: file name, class, Q15 confidence, int8 scores), for the browser test
//! to compare with the page's. Decoded and classified as `classify` does it: the `image` crate,
//! gray images as 8-bit luma, anything else as RGBA, whole picture, `Options::DEFAULT`, through
//! `runtime_mobile::Classifier` with the best kernels this CPU has.
//!
//! A file named `NAME.WxH.rgba` is raw RGBA pixels (what the browser decoded from a JPEG: JPEG
//! decoders may differ in their last bits, so the test compares those on the same pixels).

use std::path::Path;

use runtime_mobile::classifier::FRAME_SCRATCH_BYTES;
use runtime_mobile::preprocess::{Frame, Options, PixelFormat};
use runtime_mobile::{Classifier, FrameOutcome, Model, kernels};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model_path, images @ ..] = &args[..] else {
        return Err("usage: native_scores MODEL.int8.safetensors IMAGE...".into());
    };
    let file = std::fs::read(model_path).map_err(|e| format!("{model_path}: {e}"))?;
    let model = Model::parse(&file).map_err(|e| format!("{model_path}: {e}"))?;
    let mut arena = vec![0u8; model.session_arena_bytes()];
    let mut scratch = vec![0u8; FRAME_SCRATCH_BYTES];
    let mut classifier = Classifier::new(&model, kernels::best(), &mut arena, &mut scratch).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for path in images {
        let (data, format, w, h) = decode(path)?;
        let frame = Frame::new(&data, format, w, h, w * format.bytes_per_pixel()).map_err(|e| e.to_string())?;
        let name = Path::new(path).file_name().map_or_else(|| path.clone(), |n| n.to_string_lossy().into_owned());
        let row = match classifier.classify_frame(&frame, &Options::DEFAULT).map_err(|e| format!("{path}: {e}"))? {
            FrameOutcome::Digit(c) => {
                let scores: Vec<String> = c.scores.iter().map(i8::to_string).collect();
                format!(r#"{{"file":"{name}","class":{},"q15":{},"scores":[{}]}}"#, c.class, c.confidence.q15(), scores.join(","))
            }
            FrameOutcome::NoDigit(why) => format!(r#"{{"file":"{name}","no_digit":"{why}"}}"#),
        };
        rows.push(row);
    }
    println!("[{}]", rows.join(",\n"));
    Ok(())
}

/// Pixels, their format, width and height.
fn decode(path: &str) -> Result<(Vec<u8>, PixelFormat, usize, usize), String> {
    if let Some(stem) = path.strip_suffix(".rgba") {
        let size = stem.rsplit('.').next().unwrap_or_default();
        let (w, h) = size.split_once('x').ok_or(format!("{path}: name it NAME.WxH.rgba"))?;
        let w: usize = w.parse().map_err(|_| format!("{path}: bad width"))?;
        let h: usize = h.parse().map_err(|_| format!("{path}: bad height"))?;
        let data = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        return Ok((data, PixelFormat::Rgba8888, w, h));
    }
    let img = image::open(path).map_err(|e| format!("{path}: {e}"))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    Ok(if img.color().has_color() || img.color().has_alpha() {
        (img.to_rgba8().into_raw(), PixelFormat::Rgba8888, w, h)
    } else {
        (img.to_luma8().into_raw(), PixelFormat::Gray8, w, h)
    })
}
