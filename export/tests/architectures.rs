//! Networks other than the seed (`train --arch`): the whole pipeline, train -> export ->
//! runtime-mobile, on small models trained here through the `train` library.

mod common;

use std::path::Path;

use candle_core::Device;
use common::{argmax_rows, tract_logits};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use runtime_mobile::{Model, Op};
use train::data::{Dataset, DatasetKind, Split};
use train::model::{Architecture, Cnn, Layer};
use train::run::{Recipe, RunOptions};

/// Trains `arch` for one epoch on the first `limit` MNIST training images into `dir`.
fn train_tiny(dir: &Path, arch: &str, limit: usize) {
    let data = common::mnist();
    // Training evaluates and plots on the test split every epoch: keep it small there.
    let small = Dataset { kind: data.kind, train: data.train, test: data.test.truncated(500) };
    let recipe = Recipe { epochs: 1, limit: Some(limit), arch: arch.to_owned(), ..Recipe::seed_recipe(DatasetKind::Mnist) };
    train::run::run(&recipe, &small, None, &RunOptions::new(dir, Device::Cpu)).unwrap();
}

fn export_dir(dir: &Path, test_limit: Option<usize>) -> anyhow::Result<export::Export> {
    export::run(&export::Options {
        input: dir.join("model.safetensors"),
        data_dir: common::repo_root().join("data"),
        calibration: common::CALIBRATION,
        test_limit,
    })
}

/// runtime-mobile's own accuracy on `split`, computed here rather than by export's evaluator.
fn runtime_accuracy(bytes: &[u8], split: &Split) -> f64 {
    let model = Model::parse(bytes).unwrap();
    let (q, mut arena, mut input) = (model.input_quant(), vec![0u8; model.arena_bytes()], vec![0i8; model.input_len()]);
    let mut correct = 0;
    for i in 0..split.len() {
        for (x, &p) in input.iter_mut().zip(split.image(i)) {
            *x = ((p as f32 / 255.0 / q.scale).round() as i32 + q.zero_point).clamp(-128, 127) as i8;
        }
        correct += (model.run(&input, &mut arena).unwrap().class == split.labels[i] as usize) as usize;
    }
    correct as f64 / split.len() as f64
}

/// tract's class for each of the first `n` images of `split` through the ONNX file at `path`.
fn tract_argmax(path: &Path, split: &Split, n: usize) -> Vec<u8> {
    argmax_rows(&tract_logits(path, &split.images[..n * 784]))
}

#[test]
fn a_strided_network_goes_through_the_whole_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    train_tiny(dir.path(), "strided", 960);
    let e = export_dir(dir.path(), None).unwrap();
    assert_eq!(e.test.len(), common::TEST_IMAGES);
    for name in [export::INT8_FILE, export::ONNX_F32_FILE, export::ONNX_INT8_FILE, export::REPORT_FILE] {
        assert!(dir.path().join(name).is_file(), "{name} not written");
    }
    let strided = Architecture::preset("strided").unwrap();
    assert_eq!(e.report.architecture.as_deref(), Some(strided.describe().as_str()));
    let names: Vec<&str> = e.report.calibration.layers.iter().map(|l| l.layer.as_str()).collect();
    assert_eq!(names, ["conv1", "conv2", "fc1"]);

    // The runtime's layers carry the strides and paddings.
    let bytes = std::fs::read(dir.path().join(export::INT8_FILE)).unwrap();
    let model = Model::parse(&bytes).unwrap();
    let convs = model.layers().iter().filter(|l| matches!(l.op, Op::Conv2d { stride: [2, 2], padding: [1, 1], .. })).count();
    assert_eq!(convs, 2);
    assert_eq!(model.arena_bytes(), e.report.arena_bytes);

    // export's int8 accuracy is what runtime-mobile measures on the whole test set.
    let measured = runtime_accuracy(&bytes, &e.test);
    assert_eq!(measured, e.report.int8_accuracy);
    assert_eq!(model.int8_accuracy(), Some(e.report.int8_accuracy as f32));
    assert!(measured > 0.6, "960 images for one epoch should reach well past chance, got {measured}");
    assert!(e.report.agreement > 0.95, "f32 / int8 agreement {}", e.report.agreement);

    // Both ONNX files run in tract like the models they describe.
    let n = 500;
    assert_eq!(tract_argmax(&dir.path().join(export::ONNX_F32_FILE), &e.test, n), e.f32_predictions[..n]);
    let int8 = tract_argmax(&dir.path().join(export::ONNX_INT8_FILE), &e.test, n);
    let agreement = export::evaluate::agreement(&int8, &e.int8_predictions[..n]);
    assert!(agreement >= 0.99, "tract int8 ONNX agrees with runtime-mobile on {agreement}");
}

#[test]
fn an_average_pool_network_exports_everything_but_the_int8_onnx() {
    let dir = tempfile::tempdir().unwrap();
    train_tiny(dir.path(), "wide", 64);
    let e = export_dir(dir.path(), Some(200)).unwrap();
    assert!(!dir.path().join(export::ONNX_INT8_FILE).exists());
    assert_eq!(e.report.skipped.len(), 1);
    assert_eq!(e.report.skipped[0].name, export::ONNX_INT8_FILE);
    assert!(e.report.skipped[0].why.contains("average pool"), "{}", e.report.skipped[0].why);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(export::REPORT_FILE)).unwrap()).unwrap();
    assert_eq!(report["skipped"][0]["name"], export::ONNX_INT8_FILE);
    let bytes = std::fs::read(dir.path().join(export::INT8_FILE)).unwrap();
    assert!(Model::parse(&bytes).unwrap().layers().iter().any(|l| matches!(l.op, Op::AvgPool2d(_))));
    assert_eq!(runtime_accuracy(&bytes, &e.test), e.report.int8_accuracy);
    // The f32 ONNX (with its AveragePool) predicts what candle does.
    assert_eq!(tract_argmax(&dir.path().join(export::ONNX_F32_FILE), &e.test, 200), e.f32_predictions);
}

#[test]
fn a_layer_list_export_cannot_convert_is_refused_by_name() {
    // A ReLU after a pool: train runs it, but export only fuses a ReLU into the layer before it.
    let arch = Architecture {
        name: "relu-after-pool".into(),
        layers: vec![
            Layer::Conv2d { in_channels: 1, out_channels: 4, kernel: 3, stride: 1, padding: 0 },
            Layer::MaxPool2d { kernel: 2, stride: 2 },
            Layer::Relu,
            Layer::Flatten,
            Layer::Dense { in_features: 676, out_features: 10 },
        ],
    };
    let model = Cnn::with_arch(&arch, &mut ChaCha8Rng::seed_from_u64(0), &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let recipe = Recipe::seed_recipe(DatasetKind::Mnist);
    train::checkpoint::save_model(&dir.path().join("model.safetensors"), &model, &recipe, 1, 0.1).unwrap();
    let err = format!("{:#}", export_dir(dir.path(), Some(10)).err().expect("export must refuse it"));
    assert!(err.contains("`relu-after-pool` network is not one export can convert") && err.contains("layer 2 (relu)"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing written");
}
