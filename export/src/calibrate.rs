//! Activation ranges for quantization.
//!
//! Method (deterministic: no sampling, no randomness): run the float model over the first `N`
//! training images in order and record the minimum and maximum of each quantized layer's
//! (every conv2d and dense layer's) float output. Layers followed by ReLU get `min = 0` (their
//! outputs cannot be negative, and a zero point of -128 makes the int8 clamp do the ReLU). A
//! layer is measured after its ReLU and after the max-pools that directly follow it (for the
//! seed: after its 2x2 max-pool), which is what flows on: a max pool keeps the maximum of every
//! window, and values it drops never reach the next layer. An average pool mixes every value of
//! its window, so a layer is measured before one. Finally every range is widened to contain 0, so
//! real zero (conv padding, ReLU) is exactly representable.

use anyhow::{Result, ensure};
use candle_core::{DType, Device, Tensor};
use train::data::{IMAGE_SIDE, Split};
use train::model::{Architecture, Cnn, Layer};

/// One quantized (conv2d or dense) layer as calibration sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalibratedLayer {
    /// `conv1`, `fc2`, ... (the parameter names' prefix).
    pub name: String,
    /// Index of the conv2d/dense layer in the architecture's layer list.
    pub index: usize,
    /// Whether a ReLU directly follows it.
    pub relu: bool,
    /// Index of the layer whose output is measured (see the module docs).
    pub measured_at: usize,
}

/// The quantized layers of `arch`, in order (one [`Range`] each).
pub fn calibrated_layers(arch: &Architecture) -> Vec<CalibratedLayer> {
    let layers = &arch.layers;
    arch.layer_names()
        .into_iter()
        .enumerate()
        .filter_map(|(index, name)| {
            let name = name?;
            let relu = layers.get(index + 1) == Some(&Layer::Relu);
            let mut measured_at = index + relu as usize;
            while matches!(layers.get(measured_at + 1), Some(Layer::MaxPool2d { .. })) {
                measured_at += 1;
            }
            Some(CalibratedLayer { name, index, relu, measured_at })
        })
        .collect()
}

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
    Ok(Tensor::from_slice(bytes, (n, 1, IMAGE_SIDE, IMAGE_SIDE), &Device::Cpu)?.to_dtype(DType::F32)?.affine(1.0 / 255.0, 0.0)?)
}

/// The float outputs measured for each of [`calibrated_layers`] (for the seed: conv layers after
/// ReLU + pool, fc1 after ReLU, fc2 = logits), from [`Cnn::forward_with`] itself, so they are the
/// values of the forward pass `train` evaluates (the last layer's output is the logits).
pub fn layer_outputs(model: &Cnn, x: &Tensor) -> Result<Vec<Tensor>> {
    let layers = calibrated_layers(&model.arch);
    let mut outputs: Vec<Option<Tensor>> = vec![None; layers.len()];
    model.forward_with(x, |i, t| {
        for (out, layer) in outputs.iter_mut().zip(&layers) {
            if layer.measured_at == i {
                *out = Some(t.clone());
            }
        }
    })?;
    outputs
        .into_iter()
        .zip(&layers)
        .map(|(t, l)| {
            t.ok_or_else(|| anyhow::anyhow!("{}: the forward pass did not expose layer {}'s output", l.name, l.measured_at))
        })
        .collect()
}

/// Ranges of each of [`calibrated_layers`] over the first `n` images of `split`.
pub fn calibrate(model: &Cnn, split: &Split, n: usize) -> Result<Vec<Range>> {
    ensure!(n >= 1, "--calibration must be at least 1");
    ensure!(n <= split.len(), "--calibration {n} exceeds the {} training images", split.len());
    let layers = calibrated_layers(&model.arch);
    let mut ranges = vec![Range { min: 0.0, max: 0.0 }; layers.len()];
    for start in (0..n).step_by(BATCH) {
        let end = (start + BATCH).min(n);
        let outs = layer_outputs(model, &images(split, start, end)?)?;
        for (r, t) in ranges.iter_mut().zip(&outs) {
            let t = t.flatten_all()?;
            r.min = r.min.min(t.min(0)?.to_scalar::<f32>()?);
            r.max = r.max.max(t.max(0)?.to_scalar::<f32>()?);
        }
    }
    for (r, layer) in ranges.iter_mut().zip(&layers) {
        if layer.relu {
            r.min = 0.0;
        }
    }
    Ok(ranges)
}
