//! Test-set predictions of the float model (candle, as `train` evaluates it) and of the int8
//! file (the actual runtime-mobile engine parsing the bytes we are about to write).

use anyhow::{Context, Result, anyhow};
use candle_core::Device;
use runtime_mobile::{Model, Quant};
use train::data::Split;
use train::model::Cnn;

/// Predicted classes of the float model on every image of `split`.
pub fn f32_predictions(model: &Cnn, split: &Split) -> Result<Vec<u8>> {
    Ok(train::run::evaluate(model, split, &Device::Cpu)?.predictions)
}

/// int8 input for a pixel: the float input `p / 255` quantized with the model's input
/// quantization (for the exporter's `1/255`, `-128` this is exactly `p - 128`).
pub fn quantize_pixel(p: u8, q: Quant) -> i8 {
    ((p as f32 / 255.0 / q.scale).round() as i32 + q.zero_point).clamp(-128, 127) as i8
}

/// Parses an int8 file with runtime-mobile, naming the problem if it refuses it.
pub fn parse(bytes: &[u8]) -> Result<Model<'_>> {
    Model::parse(bytes).map_err(|e| anyhow!("runtime-mobile rejects the int8 model: {e}"))
}

/// Predicted classes of the int8 model file `bytes` on every image of `split`, run by
/// runtime-mobile (images split across the available cores; each result is independent of that).
pub fn int8_predictions(bytes: &[u8], split: &Split) -> Result<Vec<u8>> {
    let model = parse(bytes)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 16);
    let per = split.len().div_ceil(threads).max(1);
    let model = &model;
    let chunks: Vec<Result<Vec<u8>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..split.len())
            .step_by(per)
            .map(|start| {
                s.spawn(move || -> Result<Vec<u8>> {
                    let end = (start + per).min(split.len());
                    // A session: weights prepared once per thread (the packed conv path where
                    // the CPU has one); the same answers as `Model::run`, bit for bit.
                    let mut arena = vec![0u8; model.session_arena_bytes()];
                    let mut session = model
                        .session(runtime_mobile::kernels::best(), &mut arena)
                        .map_err(|e| anyhow!("runtime-mobile session: {e}"))?;
                    let mut input = vec![0i8; model.input_len()];
                    let q = model.input_quant();
                    (start..end)
                        .map(|i| {
                            for (x, &p) in input.iter_mut().zip(split.image(i)) {
                                *x = quantize_pixel(p, q);
                            }
                            let p = session.run(&input).map_err(|e| anyhow!("runtime-mobile, test image {i}: {e}"))?;
                            u8::try_from(p.class).context("class index exceeds 255")
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("an inference thread panicked")))).collect()
    });
    Ok(chunks.into_iter().collect::<Result<Vec<_>>>()?.concat())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_map_to_p_minus_128() {
        let q = crate::quantize::INPUT_QUANT;
        for p in 0..=255u8 {
            assert_eq!(quantize_pixel(p, q) as i32, p as i32 - 128);
        }
    }
}
