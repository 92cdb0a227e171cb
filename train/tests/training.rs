//! Training behaviour on small subsets of the real MNIST (linked into data/ by .ci/run).

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use train::checkpoint::{self, CHECKPOINT_FILE, MODEL_FILE};
use train::data::{self, Dataset, DatasetKind};
use train::model::Cnn;
use train::optim::{Adam, AdamConfig};
use train::run::{self, NonFiniteLoss, Recipe, RunOptions};

/// MNIST with the test split cut to `test` images, to keep evaluation quick.
fn mnist(test: usize) -> Dataset {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
    let mut ds = data::load(&root, DatasetKind::Mnist).expect("MNIST in data/mnist (link ../shared/data to data/)");
    ds.test = ds.test.truncated(test);
    ds
}

fn recipe(epochs: usize, limit: usize) -> Recipe {
    Recipe { epochs, limit: Some(limit), ..Recipe::seed_recipe(DatasetKind::Mnist) }
}

fn opts(dir: &Path) -> RunOptions {
    RunOptions::new(dir, Device::Cpu)
}

#[test]
fn one_adam_step_lowers_the_loss_on_its_batch() {
    let ds = mnist(1);
    let device = Device::Cpu;
    let model = Cnn::init(&mut ChaCha8Rng::seed_from_u64(3), &device).unwrap();
    let x = Tensor::from_slice(&ds.train.images[..32 * 784], (32, 1, 28, 28), &device)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .affine(1.0 / 255.0, 0.0)
        .unwrap();
    let y = Tensor::from_vec(ds.train.labels[..32].iter().map(|&l| l as u32).collect::<Vec<_>>(), 32, &device).unwrap();
    let loss = |m: &Cnn| candle_nn::loss::cross_entropy(&m.forward(&x).unwrap(), &y).unwrap();
    let before = loss(&model);
    let mut adam = Adam::new(AdamConfig::with_lr(1e-3), &model.vars).unwrap();
    adam.step(&model.vars, &before.backward().unwrap()).unwrap();
    let (before, after) = (before.to_scalar::<f32>().unwrap(), loss(&model).to_scalar::<f32>().unwrap());
    assert!(after < before - 0.01, "loss {before} -> {after}");
}

#[test]
fn a_small_subset_run_clearly_beats_chance_and_writes_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run::run(&recipe(1, 1024), &mnist(1000), None, &opts(dir.path())).unwrap();
    let acc = summary.history[0].test_accuracy;
    assert!(acc > 0.6, "1024 images for one epoch should reach well past chance (10%), got {acc}");
    for f in [MODEL_FILE, CHECKPOINT_FILE, "metrics.json", "curves.png", "confusion.png", "samples.png"] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    let metrics: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["epochs"][0]["test_accuracy"].as_f64().unwrap(), acc);
    assert!(metrics["epochs"][0]["peak_rss_bytes"].as_u64().unwrap() > 0);

    // model.safetensors carries what export needs in its metadata.
    let bytes = std::fs::read(dir.path().join(MODEL_FILE)).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().as_ref().unwrap();
    assert_eq!(meta["format"], checkpoint::MODEL_FORMAT);
    assert_eq!(meta["dataset"], "mnist");
    assert_eq!(meta["test_accuracy"].parse::<f64>().unwrap(), acc);
    assert!(meta["architecture"].contains("conv1 5x5 1->32"));
    let recipe: Recipe = serde_json::from_str(&meta["recipe"]).unwrap();
    assert_eq!(recipe.limit, Some(1024));
}

/// Every tensor of the checkpoint in `dir`, by name.
fn checkpoint_tensors(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(dir.join(CHECKPOINT_FILE)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut all: Vec<(String, Vec<u8>)> = st.tensors().into_iter().map(|(n, v)| (n, v.data().to_vec())).collect();
    all.sort();
    all
}

/// Trains `base` for 2 epochs straight and as 1 + 1 resumed; returns the straight run's folder
/// after checking that both end with the same bits.
fn two_epochs_straight_and_resumed(base: Recipe, ds: &Dataset) -> tempfile::TempDir {
    let straight = tempfile::tempdir().unwrap();
    run::run(&Recipe { epochs: 2, ..base.clone() }, ds, None, &opts(straight.path())).unwrap();

    let split = tempfile::tempdir().unwrap();
    run::run(&Recipe { epochs: 1, ..base }, ds, None, &opts(split.path())).unwrap();
    let ckpt = checkpoint::load_checkpoint(&split.path().join(CHECKPOINT_FILE), &Device::Cpu).unwrap();
    assert_eq!(ckpt.state.epochs_done, 1);
    let resumed = Recipe { epochs: 2, ..ckpt.recipe.clone() };
    run::run(&resumed, ds, Some(ckpt.state), &opts(split.path())).unwrap();

    // Weights, optimizer moments and step count all match exactly.
    let (a, b) = (checkpoint_tensors(straight.path()), checkpoint_tensors(split.path()));
    assert_eq!(a.len(), 24);
    assert!(a == b, "resumed weights differ from the uninterrupted run");
    let a = checkpoint::load_checkpoint(&straight.path().join(CHECKPOINT_FILE), &Device::Cpu).unwrap();
    let b = checkpoint::load_checkpoint(&split.path().join(CHECKPOINT_FILE), &Device::Cpu).unwrap();
    assert_eq!((a.state.adam.step, a.state.rng_word_pos), (b.state.adam.step, b.state.rng_word_pos));
    let accs = |c: &checkpoint::Checkpoint| c.state.history.iter().map(|m| m.test_accuracy).collect::<Vec<_>>();
    assert_eq!(accs(&a), accs(&b));
    assert_eq!(a.recipe, b.recipe);
    straight
}

#[test]
fn two_epochs_equal_one_plus_one_resumed_bit_for_bit() {
    two_epochs_straight_and_resumed(recipe(2, 320), &mnist(200));
}

#[test]
fn augmented_training_resumes_bit_for_bit_and_really_augments() {
    let ds = mnist(200);
    let augmented = two_epochs_straight_and_resumed(Recipe { augment: true, ..recipe(2, 320) }, &ds);
    let ckpt = checkpoint::load_checkpoint(&augmented.path().join(CHECKPOINT_FILE), &Device::Cpu).unwrap();
    assert!(ckpt.recipe.augment, "the recipe records --augment");
    let plain = tempfile::tempdir().unwrap();
    run::run(&recipe(2, 320), &ds, None, &opts(plain.path())).unwrap();
    assert!(
        checkpoint_tensors(plain.path()) != checkpoint_tensors(augmented.path()),
        "the same seed with and without --augment must train on different images"
    );
}

#[test]
fn a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint() {
    let ds = mnist(100);
    let dir = tempfile::tempdir().unwrap();
    run::run(&recipe(1, 128), &ds, None, &opts(dir.path())).unwrap();
    let good = std::fs::read(dir.path().join(CHECKPOINT_FILE)).unwrap();
    let good_model = std::fs::read(dir.path().join(MODEL_FILE)).unwrap();

    // Resume from a state whose output bias has diverged to NaN, as a blown-up run's would.
    let ckpt = checkpoint::load_checkpoint(&dir.path().join(CHECKPOINT_FILE), &Device::Cpu).unwrap();
    let state = ckpt.state;
    state.model.vars[7].set(&Tensor::full(f32::NAN, 10, &Device::Cpu).unwrap()).unwrap();
    let err = run::run(&recipe(2, 128), &ds, Some(state), &opts(dir.path())).unwrap_err();
    let nf = err.downcast_ref::<NonFiniteLoss>().unwrap_or_else(|| panic!("expected NonFiniteLoss, got {err:#}"));
    assert_eq!(nf.epoch, 2);
    assert!(err.to_string().contains("untouched"), "{err}");
    assert_eq!(std::fs::read(dir.path().join(CHECKPOINT_FILE)).unwrap(), good);
    assert_eq!(std::fs::read(dir.path().join(MODEL_FILE)).unwrap(), good_model);
}
