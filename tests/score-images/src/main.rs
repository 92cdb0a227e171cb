//! `score-images MODEL IMAGES [--session] [--scalar]`: classifies 28x28 8-bit grayscale images
//! (IMAGES is their pixels, concatenated, already MNIST-style: light digit on black) through
//! runtime-mobile's `Classifier` with the best kernels this CPU has (`--scalar`: the scalar
//! reference), in the minimal arena (`--session`: in `Model::session_arena_bytes`, where tables
//! with the packed conv path take it), and prints one line per image: the class, its confidence
//! (Q15) and every int8 score. The end-to-end tests (tests/tests/pipeline.rs) and
//! scripts/ci-runtime-targets run it on other architectures (aarch64 under qemu-user) and
//! compare its lines with the host's, so its output format is part of those checks.

use runtime_mobile::classifier::IMAGE_SCRATCH_BYTES;
use runtime_mobile::preprocess::OUT_PIXELS;
use runtime_mobile::{Classifier, Model, kernels};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: score-images MODEL.int8.safetensors IMAGES.u8 [--session] [--scalar]";
    let [model_path, images_path, flags @ ..] = &args[..] else {
        return Err(usage.into());
    };
    let (mut session, mut scalar) = (false, false);
    for f in flags {
        match f.as_str() {
            "--session" => session = true,
            "--scalar" => scalar = true,
            _ => return Err(format!("unknown option '{f}'; {usage}")),
        }
    }
    let file = std::fs::read(model_path).map_err(|e| format!("{model_path}: {e}"))?;
    let pixels = std::fs::read(images_path).map_err(|e| format!("{images_path}: {e}"))?;
    let model = Model::parse(&file).map_err(|e| format!("{model_path}: {e}"))?;
    if pixels.len() % OUT_PIXELS != 0 {
        return Err(format!("{images_path}: {} bytes is not a whole number of 28x28 images", pixels.len()));
    }
    let table = if scalar { &kernels::scalar::KERNELS } else { kernels::best() };
    eprintln!("kernels: {}", table.name);
    let mut arena = vec![0u8; if session { model.session_arena_bytes() } else { model.arena_bytes() }];
    let mut scratch = vec![0u8; IMAGE_SCRATCH_BYTES];
    let mut classifier = Classifier::new(&model, table, &mut arena, &mut scratch).map_err(|e| format!("{model_path}: {e}"))?;
    if session {
        eprintln!("packed: {}", classifier.is_packed());
    }
    for image in pixels.chunks_exact(OUT_PIXELS) {
        let image = image.try_into().map_err(|_| "a chunk is not 28x28".to_string())?;
        let c = classifier.classify_image(image).map_err(|e| format!("{e}"))?;
        let scores: Vec<String> = c.scores.iter().map(|s| s.to_string()).collect();
        println!("{} {} {}", c.class, c.confidence.q15(), scores.join(" "));
    }
    Ok(())
}
