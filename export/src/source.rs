//! Reading and validating the float model `train` wrote (`model.safetensors`).
//!
//! Everything is checked before anything is computed, and every problem with the tensors is
//! reported at once (missing, unexpected, mis-shaped, wrong dtype), so a bad file costs one run.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use candle_core::safetensors::Load;
use candle_core::{Device, Tensor};
use train::checkpoint::{CHECKPOINT_FORMAT, MODEL_FORMAT, arch_keys, architecture_from_metadata};
use train::data::{CLASSES, DatasetKind};
use train::model::{ARCHITECTURE, Architecture, Cnn};

/// A float model ready to quantize.
pub struct Source {
    pub path: PathBuf,
    pub model: Cnn,
    pub dataset: DatasetKind,
    /// One per output, from the `class_names` metadata.
    pub labels: Vec<String>,
    /// The `test_accuracy` `train` recorded, if readable (informational).
    pub recorded_test_accuracy: Option<f64>,
}

/// Loads `path`, insisting on exactly the tensors and metadata of `train`'s `model.safetensors`.
pub fn load(path: &Path) -> Result<Source> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let shown = path.display();
    let st =
        safetensors::SafeTensors::deserialize(&bytes).map_err(|e| anyhow::anyhow!("{shown} is not a safetensors file ({e})"))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow::anyhow!("{shown} is not a safetensors file ({e})"))?;
    let Some(meta) = header.metadata().clone() else {
        bail!("{shown} has no metadata; export reads the model.safetensors that `train` writes");
    };
    let field = |key: &str| {
        meta.get(key)
            .map(String::as_str)
            .with_context(|| format!("{shown}: metadata has no `{key}` (export reads the model.safetensors that `train` writes)"))
    };

    let format = field("format")?;
    if format == CHECKPOINT_FORMAT {
        bail!("{shown} is a training checkpoint ({format}); export the model.safetensors beside it instead");
    }
    ensure!(format == MODEL_FORMAT, "{shown}: metadata `format` is `{format}`, expected `{MODEL_FORMAT}`");

    // The layer list is the contract between train and export; files from before layer lists
    // hold the seed network, named by its architecture line.
    let architecture = field("architecture")?;
    let arch = if meta.contains_key(arch_keys::LAYERS) {
        let arch = architecture_from_metadata(&meta).with_context(|| format!("{shown}"))?;
        ensure!(
            architecture == arch.describe(),
            "{shown}: architecture `{architecture}` does not describe its `layers` (`{}`)",
            arch.describe()
        );
        arch
    } else {
        ensure!(
            architecture == ARCHITECTURE,
            "{shown}: architecture `{architecture}` is not one export can convert for runtime-mobile: \
             it has no `layers` list, and without one only the seed (`{ARCHITECTURE}`) is known"
        );
        Architecture::seed()
    };
    crate::quantize::check_convertible(&arch)
        .with_context(|| format!("{shown}: the `{}` network is not one export can convert for runtime-mobile", arch.name))?;

    let dataset_name = field("dataset")?;
    let dataset: DatasetKind = serde_json::from_value(serde_json::Value::String(dataset_name.to_owned()))
        .map_err(|_| anyhow::anyhow!("{shown}: unknown dataset `{dataset_name}` (expected mnist or fashion-mnist)"))?;
    let labels: Vec<String> = serde_json::from_str(field("class_names")?)
        .with_context(|| format!("{shown}: metadata `class_names` is not a JSON list of strings"))?;
    ensure!(labels.len() == CLASSES, "{shown}: `class_names` has {} names, the model has {CLASSES} outputs", labels.len());
    let recorded_test_accuracy = meta.get("test_accuracy").and_then(|v| v.parse().ok());

    check_tensors(&st, &arch).with_context(|| format!("{shown} does not hold the tensors of the `{}` CNN", arch.name))?;
    let device = Device::Cpu;
    let tensor = |name: &str| -> Option<Tensor> { st.tensor(name).ok().and_then(|v| v.load(&device).ok()) };
    let model = Cnn::from_tensors_for(&arch, tensor).with_context(|| format!("{shown}"))?;
    for (name, t) in model.named_tensors() {
        let values = t.flatten_all()?.to_vec1::<f32>()?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            bail!("{shown}: tensor `{name}` holds a non-finite value ({}) at flat index {i}", values[i]);
        }
    }
    Ok(Source { path: path.to_owned(), model, dataset, labels, recorded_test_accuracy })
}

/// Lists every difference between the file's tensors and `arch`'s parameters.
fn check_tensors(st: &safetensors::SafeTensors<'_>, arch: &Architecture) -> Result<()> {
    let params = arch.params();
    let mut problems = Vec::new();
    for p in &params {
        let (name, shape) = (p.name.as_str(), p.shape.as_slice());
        match st.tensor(name) {
            Err(_) => problems.push(format!("tensor `{name}` is missing")),
            Ok(view) => {
                if view.shape() != shape {
                    problems.push(format!("tensor `{name}` has shape {:?}, expected {shape:?}", view.shape()));
                }
                if view.dtype() != safetensors::Dtype::F32 {
                    problems.push(format!("tensor `{name}` is {:?}, expected F32", view.dtype()));
                }
            }
        }
    }
    let mut extra: Vec<String> =
        st.names().into_iter().filter(|n| !params.iter().any(|p| p.name == **n)).map(str::to_owned).collect();
    extra.sort();
    for name in extra {
        problems.push(format!("unexpected tensor `{name}`"));
    }
    if problems.is_empty() { Ok(()) } else { bail!("{}", problems.join("; ")) }
}
