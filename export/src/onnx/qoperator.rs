//! `model.int8.onnx`: the int8 model in ONNX's QOperator form, the same integers as
//! `model.int8.safetensors`:
//!
//! `QuantizeLinear -> QLinearConv -> MaxPool -> QLinearConv -> MaxPool -> QLinearConv -> QLinearConv
//! -> Flatten -> DequantizeLinear`, input and output f32, everything between 8-bit integers.
//!
//! Activations are uint8, weights int8: every activation zero point is written as the uint8
//! `zp + 128`, so each activation holds `q + 128` where runtime-mobile holds the int8 `q` (the same
//! real values, the same integers up to that offset, the same clamps and predictions). u8 x s8 is
//! what onnxruntime's fast x86 QLinearConv kernels take; with int8 activations it runs a much
//! slower path (about 6x on the MNIST model, bench/RESULTS.md). tract runs both forms.
//!
//! Dense layers are written as `QLinearConv`, not `QLinearMatMul`: standard ONNX's QLinearMatMul
//! has no bias input, and the usual fix (`QLinearAdd`) exists only in the `com.microsoft` domain,
//! which tract does not implement and the ONNX checker does not know. QLinearConv takes the int32
//! bias at accumulator scale and per-output-channel weight scales, i.e. exactly runtime-mobile's
//! dense arithmetic. A dense layer reading a flattened `[C,H,W]` activation is a `HxW` conv over
//! the unflattened tensor (the weight `[out, C*H*W]` *is* `[out, C, H, W]` in CHW order), and one
//! reading a dense output is a 1x1 conv, so activations stay `[N, C, H, W]` until the final
//! Flatten and no Reshape is needed.
//!
//! Fused ReLU needs no node: calibration gives ReLU outputs zero point -128 (uint8 0), so
//! saturating at the bottom of the range is the ReLU (FORMAT.md's `lo = zp_out`); the builder
//! checks that.
//!
//! Requantization: onnxruntime and tract compute `acc * (x_scale * w_scale / y_scale)` with their
//! own rounding, runtime-mobile with a Q31 multiplier; they can differ by one unit on rare ties,
//! which is why predictions are compared by agreement rate rather than bit for bit.

use anyhow::{Result, bail, ensure};
use runtime_mobile::{Activation, Op, Quant, Shape};
use tract_onnx::pb::{GraphProto, ModelProto, TensorProto, tensor_proto::DataType};

use super::{Dim, INPUT, OUTPUT, attr_int, model, node, tensor_f32, tensor_i8, tensor_i32, tensor_u8, value_info, window_attrs};
use crate::quantize::QuantizedModel;

/// The uint8 zero point of an activation quantized with the int8 zero point `zp`: `q_u8 = q + 128`
/// maps int8 `[-128, 127]` onto uint8 `[0, 255]` and keeps `scale * (q - zp)`.
pub fn activation_zero_point_u8(zp: i32) -> Result<u8> {
    ensure!((-128..=127).contains(&zp), "zero point {zp} is not int8");
    Ok((zp + 128) as u8)
}

/// Adds scalar scale and (uint8) zero-point initializers named `{prefix}.scale` /
/// `{prefix}.zero_point` for an activation.
fn quant_initializers(init: &mut Vec<TensorProto>, prefix: &str, q: Quant) -> Result<(String, String)> {
    let zp = activation_zero_point_u8(q.zero_point).map_err(|e| e.context(prefix.to_owned()))?;
    let (s, z) = (format!("{prefix}.scale"), format!("{prefix}.zero_point"));
    init.push(tensor_f32(&s, &[], &[q.scale]));
    init.push(tensor_u8(&z, &[], &[zp]));
    Ok((s, z))
}

pub fn build(q: &QuantizedModel, labels: &[String]) -> Result<ModelProto> {
    let Shape::Chw(in_c, in_h, in_w) = q.input_shape else {
        bail!("the int8 ONNX writer needs an image ([C,H,W]) input, got {}", q.input_shape);
    };
    // Named by its form only: the writer sees the layer list, not which preset it came from.
    let mut graph = GraphProto { name: "cnn_int8_qoperator".to_owned(), ..Default::default() };
    let init = &mut graph.initializer;
    let (in_scale, in_zp) = quant_initializers(init, "input", q.input)?;
    graph.node.push(node("QuantizeLinear", "quantize", &[INPUT, &in_scale, &in_zp], &["q.input"], vec![]));

    // The current uint8 tensor, its ONNX shape [C, H, W] (dense outputs are [C, 1, 1]) and quantization.
    let mut cur = "q.input".to_owned();
    let (mut c, mut h, mut w) = (in_c, in_h, in_w);
    let (mut scale_name, mut zp_name, mut quant) = (in_scale, in_zp, q.input);
    for (i, layer) in q.layers.iter().enumerate() {
        let out = format!("layers.{i}.out");
        match (layer.spec.op, &layer.params) {
            (Op::Conv2d { activation, output, .. } | Op::Dense { activation, output, .. }, Some(p)) => {
                ensure!(p.input == quant, "layer {i}: its parameters were quantized for another input quantization");
                if activation == Activation::Relu {
                    // Without a ReLU node, the range's floor (int8 -128, uint8 0) must be real zero.
                    ensure!(
                        output.zero_point == -128,
                        "layer {i}: fused ReLU needs output zero point -128, got {}",
                        output.zero_point
                    );
                }
                let n_out = p.ints.bias.len();
                let (kernel, stride, padding, w_dims) = match layer.spec.op {
                    Op::Conv2d { kernel, stride, padding, in_channels, .. } => {
                        (kernel, stride, padding, vec![n_out, in_channels, kernel[0], kernel[1]])
                    }
                    _ => {
                        ensure!(
                            p.ints.weight.len() == n_out * c * h * w,
                            "layer {i}: dense weight does not match its [{c},{h},{w}] input"
                        );
                        ([h, w], [1, 1], [0, 0], vec![n_out, c, h, w])
                    }
                };
                let wn = format!("layers.{i}.weight");
                init.push(tensor_i8(&wn, &w_dims, &p.ints.weight));
                init.push(tensor_f32(&format!("{wn}_scale"), &[n_out], &p.weight_scales));
                init.push(tensor_i8(&format!("{wn}_zero_point"), &[n_out], &vec![0; n_out]));
                let bn = format!("layers.{i}.bias");
                init.push(tensor_i32(&bn, &[n_out], &p.ints.bias));
                let (ys, yz) = quant_initializers(init, &format!("layers.{i}.output"), output)?;
                let inputs = [
                    cur.as_str(),
                    &scale_name,
                    &zp_name,
                    &wn,
                    &format!("{wn}_scale"),
                    &format!("{wn}_zero_point"),
                    &ys,
                    &yz,
                    &bn,
                ];
                graph.node.push(node(
                    "QLinearConv",
                    &format!("layers.{i}"),
                    &inputs,
                    &[&out],
                    window_attrs(kernel, stride, padding),
                ));
                let oh = (h + 2 * padding[0] - kernel[0]) / stride[0] + 1;
                let ow = (w + 2 * padding[1] - kernel[1]) / stride[1] + 1;
                (c, h, w) = (n_out, oh, ow);
                (scale_name, zp_name, quant) = (ys, yz, output);
            }
            (Op::MaxPool2d(pool), None) => {
                graph.node.push(node(
                    "MaxPool",
                    &format!("layers.{i}"),
                    &[&cur],
                    &[&out],
                    window_attrs(pool.kernel, pool.stride, pool.padding),
                ));
                h = (h + 2 * pool.padding[0] - pool.kernel[0]) / pool.stride[0] + 1;
                w = (w + 2 * pool.padding[1] - pool.kernel[1]) / pool.stride[1] + 1;
            }
            // Activations stay [C, H, W]; the dense layer after it reads them as a conv would.
            (Op::Flatten, None) => continue,
            (Op::Relu, None) if quant.zero_point == -128 => continue,
            (op, _) => bail!("layer {i}: the int8 ONNX writer does not support `{}` here", op.name()),
        }
        cur = out;
    }
    graph.node.push(node("Flatten", "flatten", &[&cur], &["q.logits"], vec![attr_int("axis", 1)]));
    graph.node.push(node("DequantizeLinear", "dequantize", &["q.logits", &scale_name, &zp_name], &[OUTPUT], vec![]));
    let n_out = c * h * w;
    ensure!(n_out == labels.len(), "the int8 model has {n_out} outputs but {} labels", labels.len());
    graph.input = vec![value_info(INPUT, DataType::Float, &[Dim::Batch, Dim::Fixed(in_c), Dim::Fixed(in_h), Dim::Fixed(in_w)])];
    graph.output = vec![value_info(OUTPUT, DataType::Float, &[Dim::Batch, Dim::Fixed(n_out)])];
    let doc = format!(
        "CNN, int8 QOperator (same integers as model.int8.safetensors). \
         Input: images [N,{in_c},{in_h},{in_w}] = pixel/255. Activations uint8, weights int8. \
         Output: dequantized logits [N,{n_out}]."
    );
    let mut m = model(graph, &doc);
    super::add_metadata(&mut m, "labels", &serde_json::to_string(labels)?);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::activation_zero_point_u8;

    #[test]
    fn activation_zero_points_shift_by_128() {
        assert_eq!(activation_zero_point_u8(-128).unwrap(), 0);
        assert_eq!(activation_zero_point_u8(0).unwrap(), 128);
        assert_eq!(activation_zero_point_u8(127).unwrap(), 255);
        assert!(activation_zero_point_u8(128).is_err());
        assert!(activation_zero_point_u8(-129).is_err());
    }
}
