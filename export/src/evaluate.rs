//! Test-set predictions of the float model (candle, as `train` evaluates it) and of the int8
//! file (runtime-mobile's own classifier, the front door every app uses, on the bytes we are
//! about to write: the same input quantizer, engine and arena a phone has).

use anyhow::{Context, Result, anyhow};
use candle_core::Device;
use runtime_mobile::classifier::IMAGE_SCRATCH_BYTES;
use runtime_mobile::preprocess::OUT_PIXELS;
use runtime_mobile::{Classifier, Model};
use train::data::Split;
use train::model::Cnn;

/// Predicted classes of the float model on every image of `split`.
pub fn f32_predictions(model: &Cnn, split: &Split) -> Result<Vec<u8>> {
    Ok(train::run::evaluate(model, split, &Device::Cpu)?.predictions)
}

/// Parses an int8 file with runtime-mobile, naming the problem if it refuses it.
pub fn parse(bytes: &[u8]) -> Result<Model<'_>> {
    Model::parse(bytes).map_err(|e| anyhow!("runtime-mobile rejects the int8 model: {e}"))
}

/// Predicted classes of the int8 model file `bytes` on every image of `split`, run by
/// runtime-mobile's [`Classifier`] (images split across the available cores; each result is
/// independent of that).
pub fn int8_predictions(bytes: &[u8], split: &Split) -> Result<Vec<u8>> {
    let model = parse(bytes)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 16);
    let per = split.len().div_ceil(threads).max(1);
    let model = &model;
    let chunks: Vec<Result<Vec<u8>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..split.len())
            .step_by(per)
            .map(|start| s.spawn(move || classify_range(model, split, start..(start + per).min(split.len()))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("an inference thread panicked")))).collect()
    });
    Ok(chunks.into_iter().collect::<Result<Vec<_>>>()?.concat())
}

/// One thread's share: a classifier (weights prepared once, the packed path where the CPU has
/// one) over `range`.
fn classify_range(model: &Model<'_>, split: &Split, range: std::ops::Range<usize>) -> Result<Vec<u8>> {
    let mut arena = vec![0u8; model.session_arena_bytes()];
    let mut scratch = vec![0u8; IMAGE_SCRATCH_BYTES];
    let mut classifier = Classifier::new(model, runtime_mobile::kernels::best(), &mut arena, &mut scratch)
        .map_err(|e| anyhow!("runtime-mobile classifier: {e}"))?;
    range
        .map(|i| {
            let image: &[u8; OUT_PIXELS] = split.image(i).try_into().context("test images are not 28x28")?;
            let c = classifier.classify_image(image).map_err(|e| anyhow!("runtime-mobile, test image {i}: {e}"))?;
            u8::try_from(c.class).context("class index exceeds 255")
        })
        .collect()
}

/// Fraction of `predictions` equal to `labels`.
pub fn accuracy(predictions: &[u8], labels: &[u8]) -> f64 {
    agreement(predictions, labels)
}

/// Fraction of positions where `a` and `b` agree (1 for empty inputs).
pub fn agreement(a: &[u8], b: &[u8]) -> f64 {
    if a.is_empty() {
        return 1.0;
    }
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}
