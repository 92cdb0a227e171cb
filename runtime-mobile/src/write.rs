//! The one writer of the model file (`std` only): the exporter, the tests and any tool that
//! makes a runtime-mobile model go through [`ModelFile::to_bytes`], next to the reader
//! ([`crate::Model::parse`]) and the format's names ([`crate::format`]), so writer and reader
//! cannot drift.
//!
//! The safetensors container is written here rather than with the `safetensors` crate: that
//! crate writes the metadata map in `HashMap` order, so exporting the same model twice gave
//! different bytes, and the container is a length, a JSON header and the tensor bytes. Files are
//! checked against the `safetensors` crate's reader in the tests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::string::{String, ToString};
use std::vec::Vec;

use crate::error::Error;
use crate::format::{self, LayersJson, TensorKind, keys};
use crate::format::{LayerSpec, Op, Quant, Shape};

/// A conv or dense layer's int8 weights and int32 requantization tensors (FORMAT.md).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LayerWeights {
    /// `[out, in, kh, kw]` (conv) or `[out, in]` (dense), row-major.
    pub weight: Vec<i8>,
    /// One per output channel, in the accumulator's scale.
    pub bias: Vec<i32>,
    pub multiplier: Vec<i32>,
    pub shift: Vec<i32>,
}

/// Everything a model file holds. [`ModelFile::to_bytes`] writes what it is given; whether
/// the network is valid is [`crate::Model::parse`]'s to decide (the exporter parses what it
/// wrote before keeping it).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFile {
    pub input_shape: Shape,
    pub input_quant: Quant,
    /// The layers in order; conv and dense layers carry their weights.
    pub layers: Vec<(LayerSpec, Option<LayerWeights>)>,
    /// One plain-text label per output (no `"`, `\`, or control characters).
    pub labels: Vec<String>,
    /// The arena size to declare; `None` declares what this runtime plans
    /// ([`crate::plan::arena_bytes`]). A reader refuses a value below its own plan.
    pub arena_bytes: Option<usize>,
    /// Test accuracies in `[0, 1]`, when known.
    pub f32_accuracy: Option<f64>,
    pub int8_accuracy: Option<f64>,
    /// Provenance, plain text: the data set and the program that wrote the file.
    pub dataset: Option<String>,
    pub producer: Option<String>,
    /// Provenance, a JSON document (informative; readers ignore it).
    pub calibration: Option<String>,
}

impl ModelFile {
    /// The layer specs alone, in order.
    pub fn specs(&self) -> Vec<LayerSpec> {
        self.layers.iter().map(|(s, _)| *s).collect()
    }

    /// The file's bytes: deterministic (sorted metadata keys, tensors in layer order).
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let meta = self.metadata()?;
        let mut header = String::from("{");
        write_json_string(&mut header, format::METADATA_KEY);
        header.push_str(":{");
        for (i, (k, v)) in meta.iter().enumerate() {
            if i > 0 {
                header.push(',');
            }
            write_json_string(&mut header, k);
            header.push(':');
            write_json_string(&mut header, v);
        }
        header.push('}');
        let mut data = Vec::new();
        for (layer, (spec, weights)) in self.layers.iter().enumerate() {
            let Some(w) = weights else {
                if spec.op.has_tensors() {
                    return Err(Error::MissingTensor { layer, tensor: TensorKind::Weight });
                }
                continue;
            };
            let (weight_shape, n_out) = match spec.op {
                Op::Conv2d { in_channels, out_channels, kernel, .. } => {
                    (vec![out_channels, in_channels, kernel[0], kernel[1]], out_channels)
                }
                Op::Dense { in_features, out_features, .. } => (vec![out_features, in_features], out_features),
                _ => return Err(Error::UnknownTensor),
            };
            for kind in TensorKind::ALL {
                let (shape, bytes): (&[usize], Vec<u8>) = match kind {
                    TensorKind::Weight => (&weight_shape, w.weight.iter().map(|&v| v as u8).collect()),
                    TensorKind::Bias => (&[n_out], le_bytes(&w.bias)),
                    TensorKind::Multiplier => (&[n_out], le_bytes(&w.multiplier)),
                    TensorKind::Shift => (&[n_out], le_bytes(&w.shift)),
                };
                let elem = if kind == TensorKind::Weight { 1 } else { 4 };
                if shape.iter().product::<usize>().checked_mul(elem) != Some(bytes.len()) {
                    return Err(Error::WrongShape { layer, tensor: kind });
                }
                let _ = write!(
                    header,
                    ",\"{}\":{{\"dtype\":\"{}\",\"shape\":{shape:?},\"data_offsets\":[{},{}]}}",
                    format::tensor_name(layer, kind),
                    kind.dtype(),
                    data.len(),
                    data.len() + bytes.len()
                );
                data.extend_from_slice(&bytes);
            }
        }
        header.push('}');
        // safetensors pads the header with spaces to a multiple of 8 (the data then starts
        // aligned for every dtype).
        while header.len() % 8 != 0 {
            header.push(' ');
        }
        let mut file = Vec::with_capacity(8 + header.len() + data.len());
        file.extend_from_slice(&(header.len() as u64).to_le_bytes());
        file.extend_from_slice(header.as_bytes());
        file.extend_from_slice(&data);
        Ok(file)
    }

    fn metadata(&self) -> Result<BTreeMap<&'static str, String>, Error> {
        let input_shape = self.input_shape;
        let specs = self.specs();
        let arena = match self.arena_bytes {
            Some(n) => n,
            None => crate::plan::arena_bytes(input_shape, &specs)?,
        };
        let mut labels = String::from("[");
        for (i, l) in self.labels.iter().enumerate() {
            if !is_plain(l) {
                return Err(Error::BadMetadata { key: keys::LABELS, reason: "labels must be plain text (no JSON escapes)" });
            }
            let _ = write!(labels, "{}\"{l}\"", if i > 0 { "," } else { "" });
        }
        labels.push(']');
        let accuracy = |key, a: Option<f64>| match a {
            None => Ok("null".to_string()),
            Some(a) if (0.0..=1.0).contains(&a) => Ok(a.to_string()),
            Some(_) => Err(Error::BadMetadata { key, reason: "accuracy outside [0, 1]" }),
        };
        let mut m = BTreeMap::from([
            (keys::FORMAT, format::FORMAT_NAME.to_string()),
            (keys::FORMAT_VERSION, format::FORMAT_VERSION.to_string()),
            (keys::INPUT_SHAPE, input_shape.to_string()),
            // `{:?}` is Rust's shortest round-trip form: the reader gets exactly this f32.
            (keys::INPUT_SCALE, std::format!("{:?}", self.input_quant.scale)),
            (keys::INPUT_ZERO_POINT, self.input_quant.zero_point.to_string()),
            (keys::LAYERS, LayersJson(&specs).to_string()),
            (keys::LABELS, labels),
            (keys::ARENA_BYTES, arena.to_string()),
            (keys::F32_ACCURACY, accuracy(keys::F32_ACCURACY, self.f32_accuracy)?),
            (keys::INT8_ACCURACY, accuracy(keys::INT8_ACCURACY, self.int8_accuracy)?),
        ]);
        for (key, v) in [(keys::DATASET, &self.dataset), (keys::PRODUCER, &self.producer)] {
            if let Some(v) = v {
                if !is_plain(v) {
                    return Err(Error::BadMetadata { key, reason: "must be plain text (no escapes)" });
                }
                m.insert(key, v.clone());
            }
        }
        if let Some(c) = &self.calibration {
            m.insert(keys::CALIBRATION, c.clone());
        }
        Ok(m)
    }
}

/// Text that JSON carries without escapes (what the reader lends out as `&str`).
fn is_plain(s: &str) -> bool {
    !s.chars().any(|c| c == '"' || c == '\\' || c < ' ')
}

fn le_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `s` as a JSON string literal.
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
