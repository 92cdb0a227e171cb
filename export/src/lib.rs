//! `export`: turns the float `model.safetensors` that `train` writes into
//!
//! - `model.int8.safetensors`: the int8 model in runtime-mobile's format (its `FORMAT.md`),
//! - `model.onnx`: the float network as ONNX (opset 13),
//! - `model.int8.onnx`: the int8 network as ONNX QOperator (QLinearConv, MaxPool); not written for
//!   networks with an average pool, which its writer cannot express yet (`Report::skipped`),
//! - `export-report.json`: sizes, f32 vs int8 accuracy and agreement, arena bytes, calibration,
//!
//! all beside the input, for any network `train --arch` writes (its layer list is in the
//! metadata). The modules, in the order data flows: [`source`] (read and validate the float
//! model), [`calibrate`] (activation ranges), [`quantize`] (integer parameters), [`int8_file`]
//! (runtime-mobile's safetensors), [`onnx`] (f32 and int8), [`evaluate`] (candle and
//! runtime-mobile over the test set), [`report`].
//!
//! Everything is built and checked in memory first ([`build`]); files are written only when all
//! of them exist ([`Export::write`]), each atomically, so a failure leaves nothing behind.

pub mod calibrate;
pub mod evaluate;
pub mod int8_file;
pub mod onnx;
pub mod quantize;
pub mod report;
pub mod source;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

use crate::calibrate::calibrated_layers;
use crate::int8_file::Provenance;
use crate::quantize::QuantizedModel;
use crate::report::{Calibration, FileEntry, LayerQuant, Report, SkippedFile};

/// How activation ranges are chosen (recorded in the int8 file and the report).
pub const CALIBRATION_METHOD: &str = "min/max of each quantized layer's float output over the first N training images \
     (ReLU outputs: min = 0; ranges widened to contain 0)";

pub const INT8_FILE: &str = "model.int8.safetensors";
pub const ONNX_F32_FILE: &str = "model.onnx";
pub const ONNX_INT8_FILE: &str = "model.int8.onnx";
pub const REPORT_FILE: &str = "export-report.json";
/// Default `--calibration`.
pub const DEFAULT_CALIBRATION: usize = 1000;

#[derive(Debug, Clone)]
pub struct Options {
    /// The float model (`train`'s `model.safetensors`).
    pub input: PathBuf,
    /// Holds `<dataset>/` with the IDX files, as for `train`.
    pub data_dir: PathBuf,
    /// Number of training images to calibrate on (the first N).
    pub calibration: usize,
    /// Evaluate on the first N test images only (all when `None`).
    pub test_limit: Option<usize>,
}

/// Everything an export produces, in memory.
pub struct Export {
    pub source: source::Source,
    pub quantized: QuantizedModel,
    /// Output folder (the input's).
    pub dir: PathBuf,
    /// `(file name, bytes)` in writing order.
    pub files: Vec<(&'static str, Vec<u8>)>,
    pub report: Report,
    /// The evaluated test images (the first `report.test_images`).
    pub test: train::data::Split,
    pub f32_predictions: Vec<u8>,
    pub int8_predictions: Vec<u8>,
}

impl Export {
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files.iter().find(|(n, _)| *n == name).map(|(_, b)| b.as_slice())
    }

    /// Writes every file beside the input, each atomically.
    pub fn write(&self) -> Result<()> {
        for (name, bytes) in &self.files {
            let path = self.dir.join(name);
            train::atomic::write_atomically(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

/// Builds every output in memory; writes nothing.
pub fn build(opts: &Options) -> Result<Export> {
    let source = source::load(&opts.input)?;
    let data = train::data::load(&opts.data_dir, source.dataset)?;
    let ranges = calibrate::calibrate(&source.model, &data.train, opts.calibration)?;
    let quantized = quantize::quantize(&source.model, &ranges)?;

    let test = match opts.test_limit {
        Some(n) => {
            ensure!(n >= 1, "--test-limit must be at least 1");
            data.test.truncated(n)
        }
        None => data.test,
    };
    let f32_predictions = evaluate::f32_predictions(&source.model, &test)?;
    let f32_accuracy = evaluate::accuracy(&f32_predictions, &test.labels);

    let dataset = source.dataset.name();
    let provenance = |int8_accuracy| Provenance {
        labels: &source.labels,
        dataset,
        calibration_images: opts.calibration,
        f32_accuracy: Some(f32_accuracy),
        int8_accuracy,
    };
    // The int8 accuracy goes into the file, so run the engine on a copy without it first; the
    // accuracy fields do not change the model.
    let draft = int8_file::to_bytes(&quantized, &provenance(None))?;
    let int8_predictions = evaluate::int8_predictions(&draft, &test)?;
    let int8_accuracy = evaluate::accuracy(&int8_predictions, &test.labels);
    let int8_bytes = int8_file::to_bytes(&quantized, &provenance(Some(int8_accuracy)))?;
    evaluate::parse(&int8_bytes)?;

    let onnx_f32 = onnx::encode(&onnx::f32::build(&source.model, &source.labels)?);
    // The QOperator writer has no int8 average pool yet (standard ONNX has none before opset 19's
    // float-only AveragePool; see qoperator.rs): such networks get every other file.
    let has_avg_pool = source.model.arch.layers.iter().any(|l| matches!(l, train::model::Layer::AvgPool2d { .. }));
    let (onnx_int8, skipped) = match onnx::qoperator::build(&quantized, &source.labels) {
        Ok(m) => (Some(onnx::encode(&m)), Vec::new()),
        Err(e) if has_avg_pool => {
            let why = format!("the int8 ONNX writer cannot express this network's average pool ({e})");
            (None, vec![SkippedFile { name: ONNX_INT8_FILE.to_owned(), why }])
        }
        Err(e) => return Err(e),
    };

    let input_bytes = std::fs::metadata(&opts.input).map(|m| m.len()).unwrap_or(0);
    let input_name =
        opts.input.file_name().map_or_else(|| opts.input.display().to_string(), |n| n.to_string_lossy().into_owned());
    let entry =
        |name: &str, bytes: usize, what: &str| FileEntry { name: name.to_owned(), bytes: bytes as u64, what: what.to_owned() };
    let report = Report {
        producer: concat!("export ", env!("CARGO_PKG_VERSION")).to_owned(),
        source: opts.input.display().to_string(),
        architecture: (source.model.arch != train::model::Architecture::seed()).then(|| source.model.arch.describe()),
        dataset: dataset.to_owned(),
        calibration: Calibration {
            method: CALIBRATION_METHOD.to_owned(),
            images: opts.calibration,
            layers: calibrated_layers(&source.model.arch)
                .into_iter()
                .zip(&ranges)
                .map(|(layer, &r)| {
                    let q = quantize::activation_quant(r);
                    LayerQuant { layer: layer.name, min: r.min, max: r.max, scale: q.scale, zero_point: q.zero_point }
                })
                .collect(),
        },
        test_images: test.len(),
        f32_accuracy,
        int8_accuracy,
        accuracy_drop_points: (f32_accuracy - int8_accuracy) * 100.0,
        agreement: evaluate::agreement(&f32_predictions, &int8_predictions),
        arena_bytes: quantized.arena_bytes,
        files: [
            Some(entry(&input_name, input_bytes as usize, "f32 input (train)")),
            Some(entry(INT8_FILE, int8_bytes.len(), "int8, runtime-mobile format")),
            Some(entry(ONNX_F32_FILE, onnx_f32.len(), "f32 ONNX, opset 13")),
            onnx_int8.as_ref().map(|b| entry(ONNX_INT8_FILE, b.len(), "int8 ONNX QOperator, opset 13")),
        ]
        .into_iter()
        .flatten()
        .collect(),
        skipped,
    };
    let report_json = serde_json::to_vec_pretty(&report)?;

    let dir = match opts.input.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => Path::new(".").to_owned(),
    };
    Ok(Export {
        source,
        quantized,
        dir,
        files: [
            Some((INT8_FILE, int8_bytes)),
            Some((ONNX_F32_FILE, onnx_f32)),
            onnx_int8.map(|b| (ONNX_INT8_FILE, b)),
            Some((REPORT_FILE, report_json)),
        ]
        .into_iter()
        .flatten()
        .collect(),
        report,
        test,
        f32_predictions,
        int8_predictions,
    })
}

/// [`build`], then [`Export::write`].
pub fn run(opts: &Options) -> Result<Export> {
    let export = build(opts)?;
    export.write()?;
    Ok(export)
}
