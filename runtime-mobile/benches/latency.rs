//! Single-image latency on an MNIST-shaped model (random weights from the test fixture builder;
//! the arithmetic cost does not depend on the values), one benchmark per kernel table the host
//! supports, through `Model::run_with` in the minimal arena (`<table>/run`) and through a
//! `Session` in `Model::session_arena_bytes` (`<table>/session`), and through the front door,
//! `Classifier::classify_image` on a 0..255 image in the same arena (`<table>/classifier`: the
//! session plus quantizing the pixels, the label, the Q15 confidence and the top 3, so the two
//! rows side by side are what the front door costs): `cargo bench -p runtime-mobile --bench
//! latency`. When the exporter's output `artifacts/mnist/model.int8.safetensors` exists (it is
//! not committed), it is timed too.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use runtime_mobile::classifier::IMAGE_SCRATCH_BYTES;
use runtime_mobile::kernels;
use runtime_mobile::preprocess::OUT_PIXELS;
use runtime_mobile::{Classifier, Model, Shape};
use testkit::Build;
use testkit::{MNIST, Rng, random_desc};

fn bench_model(c: &mut Criterion, group: &str, file: &[u8], rng: &mut Rng) {
    let model = Model::parse(file).unwrap();
    let input: Vec<i8> = (0..model.input_len()).map(|_| rng.i8()).collect();
    let image: [u8; OUT_PIXELS] = std::array::from_fn(|_| rng.i8() as u8);
    let mut group = c.benchmark_group(group);
    for k in kernels::available().into_iter().flatten() {
        let mut arena = vec![0u8; model.arena_bytes()];
        group.bench_function(format!("{}/run", k.name), |b| {
            b.iter(|| model.run_with(k, black_box(&input), &mut arena).unwrap().class)
        });
        let mut arena = vec![0u8; model.session_arena_bytes()];
        {
            let mut session = model.session(k, &mut arena).unwrap();
            group.bench_function(format!("{}/session", k.name), |b| b.iter(|| session.run(black_box(&input)).unwrap().class));
        }
        let mut scratch = vec![0u8; IMAGE_SCRATCH_BYTES];
        let mut classifier = Classifier::new(&model, k, &mut arena, &mut scratch).unwrap();
        group.bench_function(format!("{}/classifier", k.name), |b| {
            b.iter(|| classifier.classify_image(black_box(&image)).unwrap().class)
        });
    }
    group.finish();
}

fn latency(c: &mut Criterion) {
    let mut rng = Rng(42);
    let file = random_desc(&mut rng, Shape::Chw(1, 28, 28), &MNIST, false).build();
    bench_model(c, "mnist_single_image", &file, &mut rng);
    bench_model(c, "mnist_shipped_single_image", include_bytes!("../../models/mnist.int8.safetensors"), &mut rng);
    let exported = concat!(env!("CARGO_MANIFEST_DIR"), "/../artifacts/mnist/model.int8.safetensors");
    if let Ok(file) = std::fs::read(exported) {
        bench_model(c, "mnist_exported_single_image", &file, &mut rng);
    }
}

criterion_group!(benches, latency);
criterion_main!(benches);
