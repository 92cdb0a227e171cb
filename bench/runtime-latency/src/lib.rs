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
use runtime_mobile::kernels::Kernels;
use runtime_mobile::preprocess::{InputQuantizer, OUT_PIXELS};
use runtime_mobile::{Model, Session, Shape};
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

/// runtime-mobile on one parsed model. Each [`MobileSession`] call quantizes the 0..255 pixels
/// to the model's int8 input (the table lookup runtime-mobile's preprocessing does; the int8
/// ONNX graph's QuantizeLinear is the same step) and runs the network in a [`Session`] (weights
/// prepared once, as an app keeps them; the packed conv path on tables that have it).
pub struct Mobile<'a> {
    model: Model<'a>,
    quantizer: InputQuantizer,
}

impl<'a> Mobile<'a> {
    pub fn new(file: &'a [u8]) -> Result<Mobile<'a>> {
        let model = Model::parse(file).map_err(|e| anyhow::anyhow!("runtime-mobile: {e:?}"))?;
        ensure!(model.input_shape() == Shape::Chw(1, 28, 28), "not an MNIST-shaped model");
        let quantizer = InputQuantizer::new(model.input_quant()).map_err(|e| anyhow::anyhow!("input quantization: {e:?}"))?;
        Ok(Mobile { model, quantizer })
    }

    /// An arena for [`Mobile::session`]: `Model::session_arena_bytes`.
    pub fn arena(&self) -> Vec<u8> {
        vec![0u8; self.model.session_arena_bytes()]
    }

    pub fn session<'s>(&'s self, kernels: &'s Kernels, arena: &'s mut [u8]) -> Result<MobileSession<'s, 'a>> {
        let session = self.model.session(kernels, arena).map_err(|e| anyhow::anyhow!("runtime-mobile session: {e:?}"))?;
        Ok(MobileSession { session, quantizer: &self.quantizer, input: [0; OUT_PIXELS] })
    }
}

/// One kernel table's [`Session`] on a [`Mobile`] model.
pub struct MobileSession<'s, 'a> {
    session: Session<'s, 'a>,
    quantizer: &'s InputQuantizer,
    input: [i8; OUT_PIXELS],
}

impl MobileSession<'_, '_> {
    #[inline]
    pub fn classify(&mut self, image: &[u8; OUT_PIXELS]) -> usize {
        self.quantizer.quantize(image, &mut self.input);
        self.session.run(&self.input).expect("runtime-mobile run").class
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
        let mut arena = mobile.arena();
        let mut session = mobile.session(k, &mut arena)?;
        out.push((mobile_id(k), images.iter().map(|img| session.classify(img)).collect()));
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
