//! The CUDA training path against the CPU and candle's stock ops. Needs a CUDA GPU: build with
//! `bash scripts/build-cuda --tests` and run the printed test binary where a GPU is (with
//! `--test-threads=1`: graph capture wants the device to itself). The data set is read from
//! $TRAIN_TEST_DATA (default: data/ in the repository), the binary from $TRAIN_BIN (default:
//! the one cargo built).

use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::cuda_backend::cudarc::driver::CudaSlice;
use candle_core::{Device, Tensor, Var};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use train::cuda::{AdamScalars, adam_update, cross_entropy, gather_batch};
use train::data::{self, Dataset, DatasetKind};
use train::optim::{Adam, AdamConfig};
use train::run::{self, Recipe, RunOptions};

fn gpu() -> Device {
    static GPU: OnceLock<Device> = OnceLock::new();
    GPU.get_or_init(|| train::cuda::open_device(0).expect("these tests need a CUDA GPU and its driver")).clone()
}

fn upload<T: candle_core::cuda_backend::cudarc::driver::DeviceRepr>(values: &[T]) -> CudaSlice<T> {
    gpu().as_cuda_device().unwrap().cuda_stream().clone_htod(values).unwrap()
}

fn data_root() -> PathBuf {
    std::env::var_os("TRAIN_TEST_DATA").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data"), PathBuf::from)
}

fn mnist(test: usize) -> Dataset {
    let mut ds = data::load(&data_root(), DatasetKind::Mnist).expect("MNIST under $TRAIN_TEST_DATA or data/");
    ds.test = ds.test.truncated(test);
    ds
}

#[test]
fn the_batch_gathered_on_the_device_is_the_cpu_batch_bit_for_bit() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let n = 100;
    let images: Vec<u8> = (0..n * 784).map(|_| rng.random()).collect();
    let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..10)).collect();
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.shuffle(&mut rng);
    let images_t = Tensor::from_slice(&images, (n, 784), &gpu()).unwrap();
    let labels_t = Tensor::from_slice(&labels, n, &gpu()).unwrap();
    // Step 6 of batch 16 is the partial last batch: 4 examples.
    let (step, batch, count) = (6usize, 16usize, 4usize);
    let (x, y) = gather_batch(&images_t, &labels_t, &upload(&order), &upload(&[step as u32]), batch, count).unwrap();
    assert_eq!(x.dims(), &[count, 1, 28, 28]);
    let picked = &order[step * batch..step * batch + count];
    let want_x: Vec<u32> = picked
        .iter()
        .flat_map(|&i| images[i as usize * 784..][..784].iter().map(|&p| (p as f32 * (1.0f64 / 255.0) as f32 + 0.0).to_bits()))
        .collect();
    let got_x: Vec<u32> = x.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect();
    assert_eq!(got_x, want_x);
    let want_y: Vec<u32> = picked.iter().map(|&i| labels[i as usize]).collect();
    assert_eq!(y.to_vec1::<u32>().unwrap(), want_y);
}

#[test]
fn the_fused_cross_entropy_matches_candles_loss_and_gradient() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (rows, classes) = (37, 10);
    let logits: Vec<f32> = (0..rows * classes).map(|_| rng.random_range(-6.0..6.0)).collect();
    let labels: Vec<u32> = (0..rows).map(|_| rng.random_range(0..classes as u32)).collect();
    let run = |device: &Device, fused: bool| -> (f32, Vec<f32>) {
        let x = Var::from_tensor(&Tensor::from_slice(&logits, (rows, classes), device).unwrap()).unwrap();
        let y = Tensor::from_slice(&labels, rows, device).unwrap();
        let loss = if fused { cross_entropy(&x, &y) } else { candle_nn::loss::cross_entropy(&x, &y) }.unwrap();
        let grad = loss.backward().unwrap().get(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        (loss.to_scalar::<f32>().unwrap(), grad)
    };
    let (want_loss, want_grad) = run(&Device::Cpu, false);
    let (got_loss, got_grad) = run(&gpu(), true);
    assert!((got_loss - want_loss).abs() <= 1e-5 * want_loss.abs().max(1.0), "loss {got_loss} vs {want_loss}");
    let worst = got_grad.iter().zip(&want_grad).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-6, "gradient differs by up to {worst}");

    // A label out of range is a NaN loss, never a silently wrong number.
    let x = Tensor::from_slice(&logits[..classes], (1, classes), &gpu()).unwrap();
    let bad = cross_entropy(&x, &Tensor::new(&[10u32], &gpu()).unwrap()).unwrap().to_scalar::<f32>().unwrap();
    assert!(bad.is_nan(), "label 10 of 10 classes gave loss {bad}");
}

#[test]
fn the_adam_kernel_is_bit_identical_to_the_cpu_update() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let n = 1000;
    let init: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let cpu = Var::from_tensor(&Tensor::from_slice(&init, n, &Device::Cpu).unwrap()).unwrap();
    let dev = Var::from_tensor(&Tensor::from_slice(&init, n, &gpu()).unwrap()).unwrap();
    let config = AdamConfig::with_lr(1e-3);
    let mut cpu_adam = Adam::new(config, std::slice::from_ref(&cpu)).unwrap();
    let dev_adam = Adam::new(config, std::slice::from_ref(&dev)).unwrap();
    let steps = 7;
    let table: Vec<f32> = (1..=steps as u64).flat_map(|t| cpu_adam.scalars(t).as_pair()).collect();
    let table = upload(&table);
    for s in 0..steps {
        // The gradient of sum(p^2 * d): varied signs and sizes, some exact zeros.
        let d: Vec<f32> = (0..n).map(|_| rng.random_range(-3i32..=3) as f32).collect();
        let d_cpu = Tensor::from_slice(&d, n, &Device::Cpu).unwrap();
        let grads = (cpu.as_tensor().sqr().unwrap() * &d_cpu).unwrap().sum_all().unwrap().backward().unwrap();
        let g = grads.get(&cpu).unwrap().to_device(&gpu()).unwrap();
        cpu_adam.step(std::slice::from_ref(&cpu), &grads).unwrap();
        let scalars = AdamScalars::from_config(&config);
        adam_update(&dev, &g, &dev_adam.m[0], &dev_adam.v[0], &table, &upload(&[s as u32]), &scalars).unwrap();
    }
    let bits =
        |t: &Tensor| t.to_device(&Device::Cpu).unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(dev.as_tensor()), bits(cpu.as_tensor()), "parameters");
    assert_eq!(bits(&dev_adam.m[0]), bits(&cpu_adam.m[0]), "first moments");
    assert_eq!(bits(&dev_adam.v[0]), bits(&cpu_adam.v[0]), "second moments");
}

#[test]
fn the_gpu_conv_block_matches_the_cpu_fused_op_in_values_and_gradients() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    // Odd sizes: the 10x11 convolution output pools to 5x5, dropping the last column.
    let (xs, ws) = ([3usize, 2, 12, 13], [4usize, 2, 3, 3]);
    let mut values = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
    let (x, w, b) = (values(xs.iter().product()), values(ws.iter().product()), values(4));
    let upstream = values(3 * 4 * 5 * 5);
    let run = |device: &Device| -> Vec<Vec<f32>> {
        let var = |v: &[f32], shape: &[usize]| Var::from_tensor(&Tensor::from_slice(v, shape, device).unwrap()).unwrap();
        let (xv, wv, bv) = (var(&x, &xs), var(&w, &ws), var(&b, &[4]));
        let y = if device.is_cuda() {
            train::cuda::conv2d_relu_maxpool2(&xv, &wv, &bv)
        } else {
            train::ops::conv2d_relu_maxpool2(&xv, &wv, &bv)
        }
        .unwrap();
        assert_eq!(y.dims(), &[3, 4, 5, 5]);
        let loss = (&y * Tensor::from_slice(&upstream, (3, 4, 5, 5), device).unwrap()).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_device(&Device::Cpu).unwrap().to_vec1::<f32>().unwrap();
        vec![flat(&y), flat(grads.get(&xv).unwrap()), flat(grads.get(&wv).unwrap()), flat(grads.get(&bv).unwrap())]
    };
    let (cpu, gpu) = (run(&Device::Cpu), run(&gpu()));
    for (what, c, g) in [
        ("output", &cpu[0], &gpu[0]),
        ("input gradient", &cpu[1], &gpu[1]),
        ("weight gradient", &cpu[2], &gpu[2]),
        ("bias gradient", &cpu[3], &gpu[3]),
    ] {
        assert_eq!(c.len(), g.len(), "{what}");
        let worst = c.iter().zip(g).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "{what} differs by up to {worst}");
    }
    // ReLU and pooling actually selected: some outputs are clipped, some gradients pass.
    assert!(gpu[0].iter().any(|&v| v == 0.0) && gpu[0].iter().any(|&v| v > 0.0));
}

/// Trains `recipe` on the GPU and returns the history and the final weights.
fn train_on_gpu(recipe: &Recipe, ds: &Dataset, graph: bool) -> (Vec<train::metrics::EpochMetrics>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions { cuda_graph: graph, ..RunOptions::new(dir.path(), gpu()) };
    let summary = run::run(recipe, ds, None, &opts).unwrap();
    let weights = std::fs::read(dir.path().join(train::checkpoint::MODEL_FILE)).unwrap();
    (summary.history, weights)
}

#[test]
fn replaying_the_captured_step_gives_the_eager_result() {
    let ds = mnist(500);
    // 650 images in batches of 32: 20 full steps (replayed) and a partial one (eager), twice.
    let recipe = Recipe { epochs: 2, limit: Some(650), ..Recipe::seed_recipe(DatasetKind::Mnist) };
    let (eager, eager_weights) = train_on_gpu(&recipe, &ds, false);
    let (graph, graph_weights) = train_on_gpu(&recipe, &ds, true);
    for (e, g) in eager.iter().zip(&graph) {
        assert!(
            (e.train_loss - g.train_loss).abs() < 1e-5,
            "epoch {}: train loss {} eager vs {} graph",
            e.epoch,
            e.train_loss,
            g.train_loss
        );
        assert_eq!(e.train_accuracy, g.train_accuracy, "epoch {}", e.epoch);
    }
    eprintln!("graph replay weights bit-identical to eager: {}", eager_weights == graph_weights);
}

#[test]
fn training_on_the_gpu_learns_like_the_cpu() {
    let ds = mnist(2000);
    let recipe = Recipe { epochs: 1, limit: Some(6400), ..Recipe::seed_recipe(DatasetKind::Mnist) };
    let (gpu_history, _) = train_on_gpu(&recipe, &ds, true);
    let dir = tempfile::tempdir().unwrap();
    let cpu_history = run::run(&recipe, &ds, None, &RunOptions::new(dir.path(), Device::Cpu)).unwrap().history;
    let (g, c) = (&gpu_history[0], &cpu_history[0]);
    eprintln!(
        "6400 images, 1 epoch: GPU loss {:.4} test {:.4}; CPU loss {:.4} test {:.4}",
        g.train_loss, g.test_accuracy, c.train_loss, c.test_accuracy
    );
    assert!(g.test_accuracy > 0.9, "6400 images for one epoch on the GPU reached only {}", g.test_accuracy);
    // Same initial weights and order, same gradient semantics: only rounding differs.
    assert!((g.train_loss - c.train_loss).abs() < 0.01 * c.train_loss, "train loss GPU {} vs CPU {}", g.train_loss, c.train_loss);
    assert!((g.test_accuracy - c.test_accuracy).abs() < 0.01, "GPU {} vs CPU {} test accuracy", g.test_accuracy, c.test_accuracy);
}

#[test]
fn the_binary_picks_the_gpu_by_default_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // $TRAIN_BIN: where the binary is on a machine other than the one that built it.
    let bin = std::env::var_os("TRAIN_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_train")), PathBuf::from);
    let out = std::process::Command::new(bin)
        .args(["--limit", "320", "--epochs", "1", "--out"])
        .arg(dir.path())
        .arg("--data-dir")
        .arg(data_root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "train failed: {stderr}");
    assert!(stderr.contains("device: cuda (a CUDA GPU is present)"), "{stderr}");
}
