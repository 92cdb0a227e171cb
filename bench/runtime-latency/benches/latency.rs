//! Single-image latency (batch 1, one thread) of one MNIST model in three engines, in one
//! criterion run: runtime-mobile (`model.int8.safetensors`, every kernel table this CPU has:
//! scalar and the best SIMD one), and tract-onnx on `model.onnx` (f32) and `model.int8.onnx`
//! (QOperator int8, uint8 activations): optimised runnable plans on tract's single-thread executor.
//!
//! Every engine is timed over the same images: each iteration classifies the next of the first
//! N MNIST test images (cycling), from its 0..255 pixels for runtime-mobile (quantized in the
//! timed loop) and from prepared `[1,1,28,28]` f32 tensors for tract (the f32-input models'
//! own input; their graphs hold the quantization). Before timing, every engine classifies all N
//! images and the bench stops unless they agree with runtime-mobile's scalar reference on at
//! least 97% of them (tract's requantization rounds differently on rare ties, and f32 is not
//! int8) — proof that every row runs the same network.
//!
//! `cargo bench -p runtime-latency`; configuration in `src/lib.rs` (environment variables).
//! `bench/runtime_compare` runs this and onnxruntime and writes the table into bench/RESULTS.md.
//! Results: `$CARGO_TARGET_DIR/criterion/mnist_batch1/<id>/new/estimates.json`, plus the
//! predictions check in `$CARGO_TARGET_DIR/criterion/mnist_batch1/check.json`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use runtime_latency::{
    Config, INT8_FILE, Mobile, ONNX_F32_FILE, ONNX_INT8_FILE, Tract, mobile_id, predictions, read_model, test_images, tract_files,
};
use runtime_mobile::kernels;

const GROUP: &str = "mnist_batch1";
const MIN_AGREEMENT: f64 = 0.97;

/// criterion's output folder: `$CARGO_TARGET_DIR/criterion` (cargo runs benches from the package
/// folder, and the target folder is `../../target` unless overridden).
fn criterion_dir() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| runtime_latency::repo_root().join("target"));
    target.join("criterion")
}

fn latency(c: &mut Criterion) {
    let cfg = Config::from_env().unwrap();
    let (images, labels) = test_images(&cfg.data_dir, cfg.images).unwrap();
    let int8_file = read_model(&cfg.model(INT8_FILE)).unwrap();
    for f in [ONNX_F32_FILE, ONNX_INT8_FILE] {
        read_model(&cfg.model(f)).unwrap();
    }
    let tables: Vec<_> = kernels::available().into_iter().flatten().collect();

    // Same network in every engine: compare predictions before timing anything.
    let preds = predictions(&cfg, &images, &int8_file, &tables).unwrap();
    let reference = preds[0].1.clone(); // runtime-mobile, scalar kernels
    let mut check = Vec::new();
    for (id, p) in &preds {
        let agree = p.iter().zip(&reference).filter(|(a, b)| a == b).count();
        let correct = p.iter().zip(&labels).filter(|(a, b)| **a == **b as usize).count();
        eprintln!("check {id}: agrees with {} on {agree}/{n}, matches the labels on {correct}/{n}", preds[0].0, n = images.len());
        assert!(
            agree as f64 >= MIN_AGREEMENT * images.len() as f64,
            "{id} agrees with {} on only {agree}/{} images: not the same network",
            preds[0].0,
            images.len()
        );
        check.push(format!(
            "{{\"id\": \"{id}\", \"agree\": {agree}, \"correct\": {correct}, \"images\": {}, \"predictions\": {:?}}}",
            images.len(),
            p
        ));
    }
    let dir = criterion_dir().join(GROUP);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("check.json"),
        format!(
            "{{\"model_dir\": {:?}, \"reference\": \"{}\", \"engines\": [{}]}}\n",
            cfg.model_dir.canonicalize().unwrap_or(cfg.model_dir.clone()),
            preds[0].0,
            check.join(", ")
        ),
    )
    .unwrap();

    let mut group = c.benchmark_group(GROUP);
    let n = images.len();
    let mobile = Mobile::new(&int8_file).unwrap();
    for k in &tables {
        let mut buffers = mobile.buffers();
        let mut classifier = mobile.classifier(k, &mut buffers).unwrap();
        let mut i = 0;
        group.bench_function(mobile_id(k), |b| {
            b.iter(|| {
                i = (i + 1) % n;
                classifier.classify(black_box(&images[i]))
            })
        });
    }
    for (id, file) in tract_files(&cfg) {
        let mut t = Tract::new(&cfg.model(file), &images).unwrap();
        let mut i = 0;
        group.bench_function(id, |b| {
            b.iter(|| {
                i = (i + 1) % n;
                t.classify(black_box(i))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, latency);
criterion_main!(benches);
