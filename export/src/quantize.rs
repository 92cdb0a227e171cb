//! Float model + activation ranges -> the int8 model that runtime-mobile runs (FORMAT.md).
//!
//! - Activations: asymmetric per tensor, `scale = (max - min) / 255`,
//!   `zero_point = round(-128 - min / scale)`; ReLU outputs (min = 0) get zero point -128, so
//!   the int8 clamp at -128 *is* the ReLU.
//! - Weights: symmetric per output channel, `scale[c] = max|w[c]| / 127`, values in [-127, 127]
//!   (not -128, so negating a weight never overflows, as TFLite does).
//! - Bias: int32 in accumulator units, `round(b / (input_scale * weight_scale[c]))`.
//! - Requantization: TFLite's `QuantizeMultiplier` of `input_scale * weight_scale[c] / output_scale`
//!   into a Q0.31 multiplier and a right shift, in runtime-mobile's sign convention.
//!
//! All scales are rounded to f32 *first* and every integer is derived from those f32 values, so
//! the ONNX files (which store f32 scales) describe the same quantization as the int8 file.

use anyhow::{Context, Result, bail, ensure};
use runtime_mobile::format::{SHIFT_MAX, SHIFT_MIN};
use runtime_mobile::write::LayerWeights;
use runtime_mobile::{Activation, LayerSpec, Op, Pool, Quant, Shape};
use train::data::IMAGE_SIDE;
use train::model::{Architecture, Cnn, Layer};

use crate::calibrate::{Range, calibrated_layers};

/// Input quantization: pixels `p` in 0..=255 are the reals `p / 255`, so with this scale and
/// zero point the int8 input is exactly `p - 128` (FORMAT.md).
pub const INPUT_QUANT: Quant = Quant { scale: 1.0 / 255.0, zero_point: -128 };

/// Quantization of an activation range (see the module docs).
pub fn activation_quant(range: Range) -> Quant {
    let (min, max) = (range.min.min(0.0) as f64, range.max.max(0.0) as f64);
    if max - min <= 0.0 {
        // Constant zero output: any scale represents it; 1 keeps the multipliers tame.
        return Quant { scale: 1.0, zero_point: -128 };
    }
    let scale = ((max - min) / 255.0) as f32;
    let zero_point = (-128.0 - min / scale as f64).round().clamp(-128.0, 127.0) as i32;
    Quant { scale, zero_point }
}

/// TFLite's `QuantizeMultiplier`: `real ≈ m * 2^-31 * 2^-shift` with `m` in [2^30, 2^31).
/// Returns `(m, shift)` in runtime-mobile's convention (positive shift = right shift).
/// Multipliers too small for the shift range flush to `(0, 0)` (the output is the zero point),
/// as TFLite does.
pub fn quantize_multiplier(real: f64) -> Result<(i32, i32)> {
    ensure!(real.is_finite() && real >= 0.0, "requantization multiplier {real} is not a finite non-negative number");
    if real == 0.0 {
        return Ok((0, 0));
    }
    // frexp: real = q * 2^exp, q in [0.5, 1).
    let mut exp = real.log2().floor() as i32 + 1;
    let mut q = real / 2f64.powi(exp);
    while q >= 1.0 {
        q /= 2.0;
        exp += 1;
    }
    while q < 0.5 {
        q *= 2.0;
        exp -= 1;
    }
    let mut m = (q * (1u64 << 31) as f64).round() as i64;
    if m == 1 << 31 {
        m /= 2;
        exp += 1;
    }
    let shift = -exp;
    if shift > SHIFT_MAX {
        return Ok((0, 0));
    }
    ensure!(shift >= SHIFT_MIN, "requantization multiplier {real} is too large for a left shift of at most {}", -SHIFT_MIN);
    Ok((m as i32, shift))
}

/// One conv2d/dense layer: the integers the model file holds (runtime-mobile's own
/// [`LayerWeights`], so the file writer takes them as they are), plus what only the ONNX writer
/// needs: the weights' shape and float scales.
#[derive(Debug, Clone)]
pub struct LayerParams {
    /// PyTorch layout: conv `[out, in, kh, kw]`, dense `[out, in]`.
    pub ints: LayerWeights,
    pub weight_shape: Vec<usize>,
    pub weight_scales: Vec<f32>,
    /// Quantization of this layer's input (the previous conv2d/dense output, or the image).
    pub input: Quant,
    pub output: Quant,
}

/// Quantizes one layer's float weights `[out, ...]` and bias `[out]`.
pub fn quantize_layer(name: &str, w: &[f32], w_shape: &[usize], b: &[f32], input: Quant, output: Quant) -> Result<LayerParams> {
    let out = w_shape.first().copied().unwrap_or(0);
    ensure!(
        out > 0 && b.len() == out && w.len().is_multiple_of(out),
        "{name}: weight {w_shape:?} and bias [{}] disagree",
        b.len()
    );
    let per = w.len() / out;
    let mut p = LayerParams {
        ints: LayerWeights {
            weight: Vec::with_capacity(w.len()),
            bias: Vec::with_capacity(out),
            multiplier: Vec::with_capacity(out),
            shift: Vec::with_capacity(out),
        },
        weight_shape: w_shape.to_vec(),
        weight_scales: Vec::with_capacity(out),
        input,
        output,
    };
    for c in 0..out {
        let row = &w[c * per..(c + 1) * per];
        let max_abs = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        // An all-zero channel: any scale gives zero weights; 1 keeps bias and multiplier finite.
        let scale = if max_abs > 0.0 { max_abs / 127.0 } else { 1.0 };
        p.ints.weight.extend(row.iter().map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8));
        p.weight_scales.push(scale);
        let acc_scale = input.scale as f64 * scale as f64;
        let bias = (b[c] as f64 / acc_scale).round();
        if bias.abs() > i32::MAX as f64 {
            bail!("{name}: bias of channel {c} ({}) does not fit int32 at scale {acc_scale:e}", b[c]);
        }
        p.ints.bias.push(bias as i32);
        let (m, s) = quantize_multiplier(acc_scale / output.scale as f64).with_context(|| format!("{name}, channel {c}"))?;
        p.ints.multiplier.push(m);
        p.ints.shift.push(s);
    }
    Ok(p)
}

/// A layer of the int8 model: its description and, for conv2d/dense, its parameters.
#[derive(Debug, Clone)]
pub struct QuantizedLayer {
    pub spec: LayerSpec,
    pub params: Option<LayerParams>,
}

/// The int8 model, as runtime-mobile will see it.
#[derive(Debug, Clone)]
pub struct QuantizedModel {
    pub input_shape: Shape,
    pub input: Quant,
    pub layers: Vec<QuantizedLayer>,
    /// From runtime-mobile's own planner.
    pub arena_bytes: usize,
    /// The calibrated ranges the output quantizations came from, one per
    /// [`calibrated_layers`].
    pub ranges: Vec<Range>,
}

impl QuantizedModel {
    pub fn specs(&self) -> Vec<LayerSpec> {
        self.layers.iter().map(|l| l.spec).collect()
    }

    /// The quantization of the scores (the last conv2d/dense output).
    pub fn output_quant(&self) -> Quant {
        self.layers.iter().rev().find_map(|l| l.params.as_ref().map(|p| p.output)).unwrap_or(self.input)
    }
}

/// A runtime pool window: square, no padding (train's pools do not pad).
fn pool(kernel: usize, stride: usize) -> Pool {
    Pool { kernel: [kernel, kernel], stride: [stride, stride], padding: [0, 0] }
}

/// Checks that every layer of `arch` maps onto runtime-mobile's layers: conv2d and dense (each
/// with the ReLU that directly follows it fused in), max and average pools, flatten. A ReLU
/// anywhere else has no calibrated range to clamp at, so it is refused.
pub fn check_convertible(arch: &Architecture) -> Result<()> {
    arch.shapes()?;
    for (i, layer) in arch.layers.iter().enumerate() {
        if *layer == Layer::Relu
            && !matches!(i.checked_sub(1).map(|p| arch.layers[p]), Some(Layer::Conv2d { .. } | Layer::Dense { .. }))
        {
            bail!(
                "layer {i} (relu): export fuses a ReLU into the conv2d or dense layer right before it, and layer {i} follows none"
            );
        }
    }
    Ok(())
}

/// Quantizes `model`'s layer list into runtime-mobile's: conv2d [+ relu] and dense [+ relu] with
/// their calibrated output ranges (`ranges`, one per [`calibrated_layers`]), pools and flatten as
/// they are. Runtime-mobile's planner validates the result. For the seed this is conv2d+relu,
/// max_pool2d, conv2d+relu, max_pool2d, flatten, dense+relu, dense.
pub fn quantize(model: &Cnn, ranges: &[Range]) -> Result<QuantizedModel> {
    let arch = &model.arch;
    check_convertible(arch)?;
    let calibrated = calibrated_layers(arch);
    ensure!(ranges.len() == calibrated.len(), "{} calibrated ranges for {} quantized layers", ranges.len(), calibrated.len());
    let named: Vec<(Vec<usize>, Vec<f32>)> =
        model.named_tensors().map(|(_, t)| Ok((t.dims().to_vec(), t.flatten_all()?.to_vec1::<f32>()?))).collect::<Result<_>>()?;

    let input_shape = Shape::Chw(1, IMAGE_SIDE, IMAGE_SIDE);
    let mut layers = Vec::new();
    let mut shape = input_shape;
    let mut input = INPUT_QUANT;
    let mut q = 0;
    let window = |n: usize, k: usize, s: usize, p: usize| (n + 2 * p - k) / s + 1;
    for layer in &arch.layers {
        let spec = match *layer {
            Layer::Conv2d { .. } | Layer::Dense { .. } => {
                let cal = &calibrated[q];
                let output = activation_quant(ranges[q]);
                let (w_shape, w) = &named[2 * q];
                let (_, b) = &named[2 * q + 1];
                let params = quantize_layer(&cal.name, w, w_shape, b, input, output)?;
                let activation = if cal.relu { Activation::Relu } else { Activation::None };
                q += 1;
                input = output;
                let spec = match (*layer, shape) {
                    (Layer::Conv2d { in_channels, out_channels, kernel, stride, padding }, Shape::Chw(_, h, w)) => {
                        let op = Op::Conv2d {
                            in_channels,
                            out_channels,
                            kernel: [kernel, kernel],
                            stride: [stride, stride],
                            padding: [padding, padding],
                            activation,
                            output,
                        };
                        LayerSpec {
                            op,
                            output_shape: Shape::Chw(
                                out_channels,
                                window(h, kernel, stride, padding),
                                window(w, kernel, stride, padding),
                            ),
                        }
                    }
                    (Layer::Dense { in_features, out_features }, Shape::Flat(_)) => LayerSpec {
                        op: Op::Dense { in_features, out_features, activation, output },
                        output_shape: Shape::Flat(out_features),
                    },
                    (l, s) => bail!("{}: {l:?} cannot take a {s} input", cal.name),
                };
                layers.push(QuantizedLayer { spec, params: Some(params) });
                shape = spec.output_shape;
                continue;
            }
            // Fused into the layer before it (`check_convertible`).
            Layer::Relu => continue,
            Layer::MaxPool2d { kernel, stride } | Layer::AvgPool2d { kernel, stride } => {
                let Shape::Chw(c, h, w) = shape else { bail!("a pool needs a [C,H,W] input, got {shape}") };
                let op = if matches!(layer, Layer::MaxPool2d { .. }) {
                    Op::MaxPool2d(pool(kernel, stride))
                } else {
                    Op::AvgPool2d(pool(kernel, stride))
                };
                LayerSpec { op, output_shape: Shape::Chw(c, window(h, kernel, stride, 0), window(w, kernel, stride, 0)) }
            }
            Layer::Flatten => LayerSpec { op: Op::Flatten, output_shape: Shape::Flat(shape.len().context("shape overflow")?) },
        };
        shape = spec.output_shape;
        layers.push(QuantizedLayer { spec, params: None });
    }
    let specs: Vec<LayerSpec> = layers.iter().map(|l| l.spec).collect();
    let arena_bytes = runtime_mobile::plan::arena_bytes(input_shape, &specs)
        .map_err(|e| anyhow::anyhow!("runtime-mobile cannot run this model: {e}"))?;
    Ok(QuantizedModel { input_shape, input: INPUT_QUANT, layers, arena_bytes, ranges: ranges.to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real multiplier `m * 2^-31 * 2^-shift` the runtime applies.
    fn applied(m: i32, shift: i32) -> f64 {
        m as f64 / 2f64.powi(31) / 2f64.powi(shift)
    }

    #[test]
    fn multipliers_are_normalised_and_accurate() {
        for real in [1e-9, 3.7e-4, 0.0123, 0.5, 0.75, 0.999_999_999_9, 1.0, 1.5, 300.0] {
            let (m, s) = quantize_multiplier(real).unwrap();
            assert!((1 << 30..=i32::MAX).contains(&m), "{real}: m = {m}");
            assert!((SHIFT_MIN..=SHIFT_MAX).contains(&s));
            assert!((applied(m, s) - real).abs() <= real * 2f64.powi(-30), "{real}: {}", applied(m, s));
        }
        assert_eq!(quantize_multiplier(0.0).unwrap(), (0, 0));
        // Below 2^-32 the shift would exceed 31: flushed to zero, like TFLite.
        assert_eq!(quantize_multiplier(1e-12).unwrap(), (0, 0));
        assert!(quantize_multiplier(1e12).is_err());
        assert!(quantize_multiplier(f64::NAN).is_err());
    }

    #[test]
    fn activation_ranges_map_to_int8() {
        let q = activation_quant(Range { min: 0.0, max: 2.55 });
        assert_eq!(q.zero_point, -128);
        assert!((q.scale - 0.01).abs() < 1e-7);
        // An asymmetric range maps min to -128 and max to 127.
        let q = activation_quant(Range { min: -1.0, max: 3.0 });
        assert_eq!(q.zero_point, (-128.0f64 + 1.0 / q.scale as f64).round() as i32);
        assert!(((127 - q.zero_point) as f32 * q.scale - 3.0).abs() < 0.02);
        assert_eq!(activation_quant(Range { min: 0.0, max: 0.0 }), Quant { scale: 1.0, zero_point: -128 });
    }

    #[test]
    fn layers_quantize_symmetrically_per_channel() {
        let w = [0.4, -1.0, 0.25, 0.0, 0.0, 0.0, 2.0, 1.2];
        let out = Quant { scale: 0.05, zero_point: -128 };
        let p = quantize_layer("t", &w, &[4, 2], &[0.1, 0.0, 0.0, -0.2], INPUT_QUANT, out).unwrap();
        assert_eq!(p.ints.weight, [51, -127, 127, 0, 0, 0, 127, 76]);
        assert_eq!(p.weight_scales, [1.0f32 / 127.0, 0.25 / 127.0, 1.0, 2.0 / 127.0]);
        let acc_scale = INPUT_QUANT.scale as f64 * p.weight_scales[0] as f64;
        assert_eq!(p.ints.bias[0], (0.1 / acc_scale).round() as i32);
        assert!(p.ints.bias[3] < 0);
        let err = quantize_layer("big", &[1e-12], &[1, 1], &[1e6], INPUT_QUANT, out).unwrap_err();
        assert!(err.to_string().contains("big: bias of channel 0"), "{err}");
    }
}
