//! Activation ranges for quantization.
//!
//! Method (deterministic: no sampling, no randomness): run the float model over the first `N`
//! training images in order and record the minimum and maximum of each quantized layer's float
//! output. Layers followed by ReLU get `min = 0` (their outputs cannot be negative, and a zero
//! point of -128 makes the int8 clamp do the ReLU). conv layers are measured after their 2x2
//! max-pool, which is what flows on: the pool keeps the maximum of every window, and values a
//! pool would drop never reach the next layer. Finally every range is widened to contain 0,
//! so real zero (conv padding, ReLU) is exactly representable.

use anyhow::{Result, ensure};
use candle_core::{DType, Device, Tensor};
use train::data::{IMAGE_SIDE, Split};
use train::model::Cnn;
use train::ops;

/// Names of the layers whose outputs are quantized, in order (one [`Range`] each).
pub const CALIBRATED_LAYERS: [&str; 4] = ["conv1", "conv2", "fc1", "fc2"];
/// Whether each of [`CALIBRATED_LAYERS`] is followed by ReLU.
pub const RELU_AFTER: [bool; 4] = [true, true, true, false];

/// Images per forward pass: bounds memory, and does not change any result.
const BATCH: usize = 250;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Range {
    pub min: f32,
    pub max: f32,
}

/// Images `start..end` of `split` as `[n, 1, 28, 28]` f32 in [0, 1], scaled exactly as `train` does.
pub fn images(split: &Split, start: usize, end: usize) -> Result<Tensor> {
    let n = end - start;
    let bytes = &split.images[start * IMAGE_SIDE * IMAGE_SIDE..end * IMAGE_SIDE * IMAGE_SIDE];
    Ok(Tensor::from_slice(bytes, (n, 1, IMAGE_SIDE, IMAGE_SIDE), &Device::Cpu)?
        .to_dtype(DType::F32)?
        .affine(1.0 / 255.0, 0.0)?)
}

/// The float outputs of each of [`CALIBRATED_LAYERS`] (conv layers after ReLU + pool, fc1 after
/// ReLU, fc2 = logits), with the same ops as [`Cnn::forward`], so the last equals its logits.
pub fn layer_outputs(model: &Cnn, x: &Tensor) -> Result<[Tensor; 4]> {
    let v = |i: usize| model.vars[i].as_tensor();
    let c1 = ops::conv2d_relu_maxpool2(x, v(0), v(1))?;
    let c2 = ops::conv2d_relu_maxpool2(&c1, v(2), v(3))?;
    let f1 = c2.flatten_from(1)?.matmul(&v(4).t()?)?.broadcast_add(v(5))?.relu()?;
    let f2 = f1.matmul(&v(6).t()?)?.broadcast_add(v(7))?;
    Ok([c1, c2, f1, f2])
}

/// Ranges of each of [`CALIBRATED_LAYERS`] over the first `n` images of `split`.
pub fn calibrate(model: &Cnn, split: &Split, n: usize) -> Result<[Range; 4]> {
    ensure!(n >= 1, "--calibration must be at least 1");
    ensure!(n <= split.len(), "--calibration {n} exceeds the {} training images", split.len());
    let mut ranges = [Range { min: 0.0, max: 0.0 }; 4];
    for start in (0..n).step_by(BATCH) {
        let end = (start + BATCH).min(n);
        let outs = layer_outputs(model, &images(split, start, end)?)?;
        for (r, t) in ranges.iter_mut().zip(&outs) {
            let t = t.flatten_all()?;
            r.min = r.min.min(t.min(0)?.to_scalar::<f32>()?);
            r.max = r.max.max(t.max(0)?.to_scalar::<f32>()?);
        }
    }
    for (r, relu) in ranges.iter_mut().zip(RELU_AFTER) {
        if relu {
            r.min = 0.0;
        }
    }
    Ok(ranges)
}
