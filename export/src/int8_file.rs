//! Writes `model.int8.safetensors` in runtime-mobile's format (its FORMAT.md), using the
//! runtime's own names and constants (`runtime_mobile::format`) so writer and reader cannot drift.

use std::collections::HashMap;

use anyhow::{Result, ensure};
use runtime_mobile::format::{self, LayersJson, TensorKind, keys, tensor_name};
use safetensors::Dtype;
use safetensors::tensor::TensorView;

use crate::quantize::QuantizedModel;

/// Provenance keys we add (FORMAT.md: readers ignore unknown keys).
pub mod extra_keys {
    /// `export <version>`.
    pub const PRODUCER: &str = "producer";
    /// The data set the model was trained on (`mnist`, `fashion-mnist`).
    pub const DATASET: &str = "dataset";
    /// JSON: `{"method": ..., "images": N}`.
    pub const CALIBRATION: &str = "calibration";
}

/// What goes into the metadata besides the model itself.
pub struct Provenance<'a> {
    pub labels: &'a [String],
    pub dataset: &'a str,
    pub calibration_images: usize,
    pub f32_accuracy: Option<f64>,
    pub int8_accuracy: Option<f64>,
}

fn le_bytes_i32(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn accuracy_json(a: Option<f64>) -> String {
    a.map_or_else(|| "null".to_owned(), |a| a.to_string())
}

/// The file's bytes.
pub fn to_bytes(model: &QuantizedModel, p: &Provenance<'_>) -> Result<Vec<u8>> {
    ensure!(
        p.labels.len() == model.layers.last().and_then(|l| l.spec.output_shape.len()).unwrap_or(0),
        "{} labels for a model with a different number of outputs",
        p.labels.len()
    );
    for a in [p.f32_accuracy, p.int8_accuracy].into_iter().flatten() {
        ensure!((0.0..=1.0).contains(&a), "accuracy {a} is outside [0, 1]");
    }
    // Tensor bytes first (the views borrow them).
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (i, layer) in model.layers.iter().enumerate() {
        let Some(params) = &layer.params else { continue };
        let out = vec![params.bias.len()];
        for kind in TensorKind::ALL {
            let name = tensor_name(i, kind).to_string();
            let (dtype, shape, bytes) = match kind {
                TensorKind::Weight => (Dtype::I8, params.weight_shape.clone(), params.weight.iter().map(|&w| w as u8).collect()),
                TensorKind::Bias => (Dtype::I32, out.clone(), le_bytes_i32(&params.bias)),
                TensorKind::Multiplier => (Dtype::I32, out.clone(), le_bytes_i32(&params.multiplier)),
                TensorKind::Shift => (Dtype::I32, out.clone(), le_bytes_i32(&params.shift)),
            };
            // The dtype strings are the runtime's; keep our safetensors dtypes in step with them.
            debug_assert_eq!(kind.dtype(), if dtype == Dtype::I8 { format::DTYPE_I8 } else { format::DTYPE_I32 });
            owned.push((name, dtype, shape, bytes));
        }
    }
    let views = owned
        .iter()
        .map(|(name, dtype, shape, bytes)| Ok((name.clone(), TensorView::new(*dtype, shape.clone(), bytes)?)))
        .collect::<Result<Vec<_>>>()?;

    let specs = model.specs();
    let metadata = HashMap::from([
        (keys::FORMAT.to_owned(), format::FORMAT_NAME.to_owned()),
        (keys::FORMAT_VERSION.to_owned(), format::FORMAT_VERSION.to_string()),
        (keys::INPUT_SHAPE.to_owned(), model.input_shape.to_string()),
        // `{:?}` is Rust's shortest round-trip form: the reader gets exactly this f32.
        (keys::INPUT_SCALE.to_owned(), format!("{:?}", model.input.scale)),
        (keys::INPUT_ZERO_POINT.to_owned(), model.input.zero_point.to_string()),
        (keys::LAYERS.to_owned(), LayersJson(&specs).to_string()),
        (keys::LABELS.to_owned(), serde_json::to_string(p.labels)?),
        (keys::ARENA_BYTES.to_owned(), model.arena_bytes.to_string()),
        (keys::F32_ACCURACY.to_owned(), accuracy_json(p.f32_accuracy)),
        (keys::INT8_ACCURACY.to_owned(), accuracy_json(p.int8_accuracy)),
        (extra_keys::PRODUCER.to_owned(), concat!("export ", env!("CARGO_PKG_VERSION")).to_owned()),
        (extra_keys::DATASET.to_owned(), p.dataset.to_owned()),
        (
            extra_keys::CALIBRATION.to_owned(),
            serde_json::json!({ "method": crate::CALIBRATION_METHOD, "images": p.calibration_images }).to_string(),
        ),
    ]);
    Ok(safetensors::serialize(views, Some(metadata))?)
}
