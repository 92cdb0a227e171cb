//! What `benches/latency.rs` times, in a library so that it can also be checked on its own:
//! the benchmark's inputs (the first N MNIST test images, read from the gzip IDX files) and the
//! engines it compares on the same model — runtime-mobile on `model.int8.safetensors` and
//! tract-onnx on `model.onnx` (f32) and `model.int8.onnx` (QOperator int8: uint8 activations,
//! int8 weights), all batch 1 and one thread. onnxruntime, the fourth engine, is timed by `bench/ort_latency.py` on the same files.
//!
//! Configuration (environment variables, as `cargo bench` passes no arguments to the bench):
//!
//! | variable | default | what |
//! |---|---|---|
//! | `RUNTIME_LATENCY_MODEL_DIR` | `artifacts/bench-mnist` | folder with the three model files (export's output) |
//! | `RUNTIME_LATENCY_DATA_DIR` | `data/mnist` | folder with `t10k-images-idx3-ubyte.gz` and `t10k-labels-idx1-ubyte.gz` |
//! | `RUNTIME_LATENCY_IMAGES` | 100 | how many test images (from the first) the timed loop cycles through |
//!
//! Relative paths are taken from the repository root.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use runtime_mobile::classifier::IMAGE_SCRATCH_BYTES;
use runtime_mobile::kernels::Kernels;
use runtime_mobile::preprocess::OUT_PIXELS;
use runtime_mobile::{Classifier, Model, Shape};
use tract_onnx::prelude::*;

pub const INT8_FILE: &str = "model.int8.safetensors";
pub const ONNX_F32_FILE: &str = "model.onnx";
pub const ONNX_INT8_FILE: &str = "model.int8.onnx";
pub const DEFAULT_MODEL_DIR: &str = "artifacts/bench-mnist";
pub const DEFAULT_DATA_DIR: &str = "data/mnist";
pub const DEFAULT_IMAGES: usize = 100;

/// The repository root (this crate lives in `bench/runtime-latency`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn env_path(var: &str, default: &str) -> PathBuf {
    let p = PathBuf::from(std::env::var_os(var).unwrap_or_else(|| default.into()));
    if p.is_absolute() { p } else { repo_root().join(p) }
}

pub struct Config {
    pub model_dir: PathBuf,
    pub data_dir: PathBuf,
    pub images: usize,
}

impl Config {
    pub fn from_env() -> Result<Config> {
        let images = match std::env::var("RUNTIME_LATENCY_IMAGES") {
            Ok(v) => v.parse().with_context(|| format!("RUNTIME_LATENCY_IMAGES={v:?}"))?,
            Err(_) => DEFAULT_IMAGES,
        };
        ensure!(images > 0, "RUNTIME_LATENCY_IMAGES must be at least 1");
        Ok(Config {
            model_dir: env_path("RUNTIME_LATENCY_MODEL_DIR", DEFAULT_MODEL_DIR),
            data_dir: env_path("RUNTIME_LATENCY_DATA_DIR", DEFAULT_DATA_DIR),
            images,
        })
    }

    pub fn model(&self, name: &str) -> PathBuf {
        self.model_dir.join(name)
    }
}

fn read_gz(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file).read_to_end(&mut bytes).with_context(|| format!("gunzip {}", path.display()))?;
    Ok(bytes)
}

fn be_u32(b: &[u8], i: usize) -> usize {
    u32::from_be_bytes(b[4 * i..4 * i + 4].try_into().unwrap()) as usize
}

/// The first `n` images (28x28, 0..255) and labels of the MNIST test set.
pub fn test_images(data_dir: &Path, n: usize) -> Result<(Vec<[u8; OUT_PIXELS]>, Vec<u8>)> {
    let images = read_gz(&data_dir.join("t10k-images-idx3-ubyte.gz"))?;
    let labels = read_gz(&data_dir.join("t10k-labels-idx1-ubyte.gz"))?;
    ensure!(images.len() >= 16 && be_u32(&images, 0) == 0x803, "not an IDX3 image file");
    ensure!(labels.len() >= 8 && be_u32(&labels, 0) == 0x801, "not an IDX1 label file");
    let (count, rows, cols) = (be_u32(&images, 1), be_u32(&images, 2), be_u32(&images, 3));
    ensure!(rows * cols == OUT_PIXELS, "images are {rows}x{cols}, not 28x28");
    ensure!(n <= count && n <= be_u32(&labels, 1), "asked for {n} images, the files hold {count}");
    let pixels = &images[16..16 + n * OUT_PIXELS];
    let out = pixels.chunks_exact(OUT_PIXELS).map(|c| c.try_into().unwrap()).collect();
    Ok((out, labels[8..8 + n].to_vec()))
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold(0, |best, (i, &x)| if x > v[best] { i } else { best })
}

/// runtime-mobile on one parsed model, through its front door ([`Classifier`]): each call
/// quantizes the 0..255 pixels to the model's int8 input (the int8 ONNX graph's QuantizeLinear
/// is the same step), runs the network in a session (weights prepared once, as an app keeps
/// them; the packed conv path on tables that have it) and computes the label, the fixed-point
/// confidence and the top 3 — what a phone pays per image, not just the engine.
pub struct Mobile<'a> {
    model: Model<'a>,
}

impl<'a> Mobile<'a> {
    pub fn new(file: &'a [u8]) -> Result<Mobile<'a>> {
        let model = Model::parse(file).map_err(|e| anyhow::anyhow!("runtime-mobile: {e}"))?;
        ensure!(model.input_shape() == Shape::Chw(1, 28, 28), "not an MNIST-shaped model");
        Ok(Mobile { model })
    }

    /// Buffers for [`Mobile::classifier`]: an arena of `Model::session_arena_bytes` (the fast
    /// layout) and the classifier's scratch for 28x28 images.
    pub fn buffers(&self) -> (Vec<u8>, Vec<u8>) {
        (vec![0u8; self.model.session_arena_bytes()], vec![0u8; IMAGE_SCRATCH_BYTES])
    }

    pub fn classifier<'s>(
        &'s self,
        kernels: &'s Kernels,
        (arena, scratch): &'s mut (Vec<u8>, Vec<u8>),
    ) -> Result<MobileClassifier<'s, 'a>> {
        let classifier =
            Classifier::new(&self.model, kernels, arena, scratch).map_err(|e| anyhow::anyhow!("runtime-mobile: {e}"))?;
        Ok(MobileClassifier(classifier))
    }
}

/// One kernel table's [`Classifier`] on a [`Mobile`] model.
pub struct MobileClassifier<'s, 'a>(Classifier<'s, 'a>);

impl MobileClassifier<'_, '_> {
    #[inline]
    pub fn classify(&mut self, image: &[u8; OUT_PIXELS]) -> usize {
        self.0.classify_image(image).expect("runtime-mobile classify").class
    }
}

/// tract-onnx on one ONNX file: the optimised plan for a fixed `[1, 1, 28, 28]` f32 input, one
/// reused `SimpleState`, tract's default single-thread executor. Inputs are prepared once
/// (`pixels / 255` as tensors), as the caller of an f32-input model would hand them over.
pub struct Tract {
    state: TypedSimpleState,
    inputs: Vec<TValue>,
}

impl Tract {
    pub fn new(path: &Path, images: &[[u8; OUT_PIXELS]]) -> Result<Tract> {
        // The default is already single-threaded; set it so that a future default cannot change
        // what this measures.
        tract_onnx::prelude::multithread::set_default_executor(tract_onnx::prelude::multithread::Executor::SingleThread);
        let plan = tract_onnx::onnx()
            .model_for_path(path)
            .with_context(|| format!("tract: load {}", path.display()))?
            .with_input_fact(0, f32::fact([1, 1, 28, 28]).into())?
            .into_optimized()?
            .into_runnable()?;
        let state = plan.spawn()?;
        let inputs = images
            .iter()
            .map(|img| {
                let x: Vec<f32> = img.iter().map(|&p| p as f32 / 255.0).collect();
                Ok(Tensor::from_shape(&[1, 1, 28, 28], &x)?.into_tvalue())
            })
            .collect::<Result<_>>()?;
        Ok(Tract { state, inputs })
    }

    #[inline]
    pub fn classify(&mut self, image: usize) -> usize {
        let out = self.state.run(tvec!(self.inputs[image].clone())).expect("tract run");
        let logits = out[0].to_plain_array_view::<f32>().expect("f32 output");
        argmax(logits.as_slice().expect("contiguous output"))
    }
}

/// Every engine's predictions on the benchmark's images, as a check that each one runs the
/// same network before its speed is compared: `(name, predictions)`.
pub fn predictions(
    cfg: &Config,
    images: &[[u8; OUT_PIXELS]],
    int8_file: &[u8],
    tables: &[&'static Kernels],
) -> Result<Vec<(String, Vec<usize>)>> {
    let mut out = Vec::new();
    let mobile = Mobile::new(int8_file)?;
    for k in tables {
        let mut buffers = mobile.buffers();
        let mut classifier = mobile.classifier(k, &mut buffers)?;
        out.push((mobile_id(k), images.iter().map(|img| classifier.classify(img)).collect()));
    }
    for (id, file) in tract_files(cfg) {
        let mut t = Tract::new(&cfg.model(file), images)?;
        out.push((id.to_owned(), (0..images.len()).map(|i| t.classify(i)).collect()));
    }
    Ok(out)
}

/// The ONNX files tract runs: `(benchmark id, file name)`.
pub fn tract_files(_cfg: &Config) -> Vec<(&'static str, &'static str)> {
    vec![("tract_f32", ONNX_F32_FILE), ("tract_int8", ONNX_INT8_FILE)]
}

/// The benchmark id of a runtime-mobile kernel table.
pub fn mobile_id(k: &Kernels) -> String {
    format!("runtime-mobile_{}", k.name)
}

/// Reads a file, saying which and how to make it when it is missing.
pub fn read_model(path: &Path) -> Result<Vec<u8>> {
    if !path.exists() {
        bail!(
            "{} is missing: run bench/runtime_compare (it exports the model), or set \
             RUNTIME_LATENCY_MODEL_DIR to a folder holding export's output",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("read {}", path.display()))
}
