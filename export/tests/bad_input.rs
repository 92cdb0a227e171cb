//! Bad inputs: each fails with an error naming what is wrong, and nothing is written.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use train::checkpoint::MODEL_FORMAT;
use train::model::{ARCHITECTURE, Cnn};

/// train's metadata for a model.safetensors.
fn metadata() -> HashMap<String, String> {
    HashMap::from([
        ("format".to_owned(), MODEL_FORMAT.to_owned()),
        ("architecture".to_owned(), ARCHITECTURE.to_owned()),
        ("dataset".to_owned(), "mnist".to_owned()),
        ("class_names".to_owned(), r#"["0","1","2","3","4","5","6","7","8","9"]"#.to_owned()),
        ("epochs".to_owned(), "1".to_owned()),
        ("test_accuracy".to_owned(), "0.1".to_owned()),
    ])
}

/// An untrained seed model's tensors (valid in every respect but accuracy).
fn tensors() -> Vec<(String, Tensor)> {
    let model = Cnn::init(&mut ChaCha8Rng::seed_from_u64(1), &Device::Cpu).unwrap();
    model.named_tensors().map(|(n, t)| (n.to_owned(), t.clone())).collect()
}

/// Writes `model.safetensors` into a fresh folder and runs export on it; returns the error text.
fn export_error(tensors: Vec<(String, Tensor)>, meta: HashMap<String, String>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, safetensors::serialize(tensors, Some(meta)).unwrap()).unwrap();
    export_error_for(&path)
}

fn export_error_for(path: &Path) -> String {
    let before = listing(path.parent().unwrap());
    let err = export::run(&export::Options {
        input: path.to_owned(),
        data_dir: common::repo_root().join("data"),
        calibration: 10,
        test_limit: Some(10),
    })
    .err()
    .expect("export must reject this input");
    assert_eq!(listing(path.parent().unwrap()), before, "nothing may be written on error");
    format!("{err:#}")
}

fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

fn assert_contains(err: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(err.contains(w), "error should mention {w:?}: {err}");
    }
}

#[test]
fn a_valid_untrained_model_exports() {
    // The baseline the other tests break one thing of: it must succeed.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, safetensors::serialize(tensors(), Some(metadata())).unwrap()).unwrap();
    let e = export::build(&export::Options {
        input: path,
        data_dir: common::repo_root().join("data"),
        calibration: 10,
        test_limit: Some(10),
    })
    .unwrap();
    assert_eq!(e.files.len(), 4);
    assert_eq!(listing(dir.path()).len(), 1, "build alone writes nothing");
}

#[test]
fn missing_tensor() {
    let t = tensors().into_iter().filter(|(n, _)| n != "fc1.bias").collect();
    assert_contains(&export_error(t, metadata()), &["model.safetensors", "tensor `fc1.bias` is missing"]);
}

#[test]
fn extra_tensor() {
    let mut t = tensors();
    t.push(("fc3.weight".to_owned(), Tensor::zeros((10, 10), DType::F32, &Device::Cpu).unwrap()));
    assert_contains(&export_error(t, metadata()), &["unexpected tensor `fc3.weight`"]);
}

#[test]
fn mis_shaped_and_mistyped_tensors_are_all_named() {
    let t = tensors()
        .into_iter()
        .map(|(n, t)| match n.as_str() {
            "conv2.weight" => (n, Tensor::zeros((64, 32, 3, 3), DType::F32, &Device::Cpu).unwrap()),
            "fc2.bias" => (n, t.to_dtype(DType::F64).unwrap()),
            _ => (n, t),
        })
        .collect();
    assert_contains(
        &export_error(t, metadata()),
        &["tensor `conv2.weight` has shape [64, 32, 3, 3], expected [64, 32, 5, 5]", "tensor `fc2.bias` is F64, expected F32"],
    );
}

#[test]
fn not_a_safetensors_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, b"PK\x03\x04 this is a zip, not safetensors").unwrap();
    assert_contains(&export_error_for(&path), &["is not a safetensors file"]);
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = export::build(&export::Options {
        input: dir.path().join("nope.safetensors"),
        data_dir: common::repo_root().join("data"),
        calibration: 10,
        test_limit: None,
    })
    .err()
    .unwrap();
    assert_contains(&format!("{err:#}"), &["reading", "nope.safetensors"]);
}

#[test]
fn an_architecture_export_cannot_convert() {
    // What a network with 3x3 convolutions would record: the runtime layer list export builds
    // is the seed CNN's, so anything else is refused up front, by name.
    let mut meta = metadata();
    meta.insert("architecture".to_owned(), ARCHITECTURE.replace("conv1 5x5", "conv1 3x3"));
    assert_contains(&export_error(tensors(), meta), &["architecture `", "conv1 3x3", "is not one export can convert"]);
}

#[test]
fn a_training_checkpoint_or_foreign_safetensors() {
    let mut meta = metadata();
    meta.insert("format".to_owned(), "train-checkpoint/1".to_owned());
    assert_contains(&export_error(tensors(), meta), &["training checkpoint", "model.safetensors beside it"]);
    let mut meta = metadata();
    meta.insert("format".to_owned(), "runtime-mobile".to_owned());
    assert_contains(&export_error(tensors(), meta), &["metadata `format` is `runtime-mobile`, expected `train-model/1`"]);
    assert_contains(&export_error(tensors(), HashMap::new()), &["metadata has no `format`"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, safetensors::serialize(tensors(), None).unwrap()).unwrap();
    assert_contains(&export_error_for(&path), &["has no metadata"]);
}

#[test]
fn wrong_label_count_and_non_finite_weights() {
    let mut meta = metadata();
    meta.insert("class_names".to_owned(), r#"["a","b"]"#.to_owned());
    assert_contains(&export_error(tensors(), meta), &["`class_names` has 2 names"]);
    let t = tensors().into_iter().map(|(n, t)| if n == "fc1.bias" { (n, (t * f64::NAN).unwrap()) } else { (n, t) }).collect();
    assert_contains(&export_error(t, metadata()), &["tensor `fc1.bias` holds a non-finite value"]);
}

#[test]
fn calibration_beyond_the_training_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, safetensors::serialize(tensors(), Some(metadata())).unwrap()).unwrap();
    let err = export::build(&export::Options {
        input: path,
        data_dir: common::repo_root().join("data"),
        calibration: 60_001,
        test_limit: Some(10),
    })
    .err()
    .unwrap();
    assert_contains(&format!("{err:#}"), &["--calibration 60001 exceeds the 60000 training images"]);
}
