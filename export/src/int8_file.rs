//! `model.int8.safetensors`: the quantized model handed to runtime-mobile's own writer
//! ([`runtime_mobile::write::ModelFile`]), which owns the format next to its reader.

use anyhow::Result;
use runtime_mobile::write::ModelFile;

use crate::quantize::QuantizedModel;

/// What goes into the metadata besides the model itself.
pub struct Provenance<'a> {
    pub labels: &'a [String],
    pub dataset: &'a str,
    pub calibration_images: usize,
    pub f32_accuracy: Option<f64>,
    pub int8_accuracy: Option<f64>,
}

/// The runtime's description of the file.
pub fn model_file(model: &QuantizedModel, p: &Provenance<'_>) -> ModelFile {
    ModelFile {
        input_shape: model.input_shape,
        input_quant: model.input,
        layers: model.layers.iter().map(|l| (l.spec, l.params.as_ref().map(|p| p.ints.clone()))).collect(),
        labels: p.labels.to_vec(),
        arena_bytes: Some(model.arena_bytes),
        f32_accuracy: p.f32_accuracy,
        int8_accuracy: p.int8_accuracy,
        dataset: Some(p.dataset.to_owned()),
        producer: Some(concat!("export ", env!("CARGO_PKG_VERSION")).to_owned()),
        calibration: Some(serde_json::json!({ "method": crate::CALIBRATION_METHOD, "images": p.calibration_images }).to_string()),
    }
}

/// The file's bytes.
pub fn to_bytes(model: &QuantizedModel, p: &Provenance<'_>) -> Result<Vec<u8>> {
    model_file(model, p).to_bytes().map_err(|e| anyhow::anyhow!("cannot write the int8 model: {e}"))
}
