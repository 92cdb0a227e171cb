//! Shared set-up of the end-to-end tests: a model trained and exported through the crates'
//! libraries, as `cargo run -p train` and `cargo run -p export` would make it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::Device;
use train::data::{Dataset, DatasetKind};
use train::run::{Recipe, RunOptions};

/// Training images of the pipeline's model: a few seconds of training, ~90% accuracy.
pub const TRAIN_LIMIT: usize = 3200;
/// Test images every runtime classifies.
pub const TEST_IMAGES: usize = 1000;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The real MNIST in `<repo>/data` (.ci/run links ../shared/data there).
pub fn mnist() -> Result<Dataset> {
    train::data::load(&repo_root().join("data"), DatasetKind::Mnist)
        .context("MNIST in <repo>/data/mnist (run .ci/run, or link ../shared/data to data)")
}

/// A trained and exported model: its folder holds model.safetensors and every exported file.
pub struct Pipeline {
    pub dir: tempfile::TempDir,
    pub export: export::Export,
    pub data: Dataset,
}

impl Pipeline {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Trains the seed recipe on the first TRAIN_LIMIT images for one epoch (seeded: the same
    /// bits every run) on the CPU, then exports it.
    pub fn build() -> Result<Pipeline> {
        let dir = tempfile::tempdir()?;
        let mut data = mnist()?;
        data.test = data.test.truncated(TEST_IMAGES);
        let recipe = Recipe { epochs: 1, limit: Some(TRAIN_LIMIT), ..Recipe::seed_recipe(DatasetKind::Mnist) };
        train::run::run(&recipe, &data, None, &RunOptions::new(dir.path(), Device::Cpu))?;
        let export = export::run(&export::Options {
            input: dir.path().join("model.safetensors"),
            data_dir: repo_root().join("data"),
            calibration: 500,
            test_limit: Some(TEST_IMAGES),
        })?;
        Ok(Pipeline { dir, export, data })
    }
}
