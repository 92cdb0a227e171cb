//! Test fixtures: a small model trained here through the `train` library (CI has no artifacts/),
//! exported once per test binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::Device;
use tract_onnx::prelude::*;
use train::data::{Dataset, DatasetKind};
use train::run::{Recipe, RunOptions};

/// Training images and epochs of the fixture model: a couple of seconds of training, enough for
/// ~90% accuracy, so quantization effects are those of a real (if weak) model.
pub const TRAIN_LIMIT: usize = 3200;
pub const TEST_IMAGES: usize = 10_000;
pub const CALIBRATION: usize = 500;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The real MNIST in `<repo>/data` (linked there by .ci/run, as `train`'s own tests require).
pub fn mnist() -> Dataset {
    train::data::load(&repo_root().join("data"), DatasetKind::Mnist)
        .expect("MNIST in <repo>/data/mnist (run .ci/run or link ../shared/data to data)")
}

pub struct Fixture {
    /// Holds model.safetensors and every exported file.
    pub dir: tempfile::TempDir,
    pub export: export::Export,
}

impl Fixture {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Trains the fixture model (seeded, so every run gets the same bits) and exports it.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = mnist();
        // Training evaluates and plots on the test split every epoch: keep it small.
        let small = Dataset { kind: data.kind, train: data.train.clone(), test: data.test.clone().truncated(TEST_IMAGES) };
        let recipe = Recipe { epochs: 1, limit: Some(TRAIN_LIMIT), ..Recipe::seed_recipe(DatasetKind::Mnist) };
        let opts = RunOptions::new(dir.path(), Device::Cpu);
        train::run::run(&recipe, &small, None, &opts).unwrap();
        let export = export::run(&export::Options {
            input: dir.path().join("model.safetensors"),
            data_dir: repo_root().join("data"),
            calibration: CALIBRATION,
            test_limit: Some(TEST_IMAGES),
        })
        .unwrap();
        Fixture { dir, export }
    })
}

/// Runs an ONNX file with tract on MNIST images (`pixels`: `n` images of 28x28 bytes, fed as
/// pixel / 255); returns the `[n * 10]` output.
pub fn tract_logits(path: &Path, pixels: &[u8]) -> Vec<f32> {
    let n = pixels.len() / 784;
    let model = tract_onnx::onnx()
        .model_for_path(path)
        .unwrap()
        .with_input_fact(0, f32::fact([n, 1, 28, 28]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let x: Vec<f32> = pixels[..n * 784].iter().map(|&p| p as f32 / 255.0).collect();
    let out = model.run(tvec!(Tensor::from_shape(&[n, 1, 28, 28], &x).unwrap().into_tvalue())).unwrap();
    assert_eq!(out[0].shape(), &[n, 10]);
    out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect()
}

/// The index of each row's maximum (the first on ties), for `[n * 10]` logits.
pub fn argmax_rows(v: &[f32]) -> Vec<u8> {
    v.chunks(10).map(|r| r.iter().enumerate().fold(0, |best, (i, &x)| if x > r[best] { i } else { best }) as u8).collect()
}
