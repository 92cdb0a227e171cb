//! The int8 models shipped in `models/` still parse and score, on the whole test set, exactly the
//! int8 accuracy recorded in their metadata (inference is integer-only, so it cannot drift).

use std::path::Path;

use train::data::{self, DatasetKind};

/// `floor`: least int8 accuracy; `max_drop`: most the int8 model may lose to the f32 one.
fn check(file: &str, kind: DatasetKind, floor: f64, max_drop: f64) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bytes = std::fs::read(root.join("models").join(file)).unwrap();
    let model = export::evaluate::parse(&bytes).unwrap();
    let recorded = model.int8_accuracy().expect("shipped models record their int8 accuracy");
    let test = data::load(&root.join("data"), kind).expect("data/ linked to ../shared/data").test;
    assert_eq!(test.len(), 10_000);
    let predictions = export::evaluate::int8_predictions(&bytes, &test).unwrap();
    let accuracy = export::evaluate::accuracy(&predictions, &test.labels);
    assert!((accuracy - recorded as f64).abs() < 1e-6, "{file}: measured {accuracy}, metadata says {recorded}");
    assert!(accuracy >= floor, "{file}: {accuracy} below {floor}");
    let f32_accuracy = model.f32_accuracy().unwrap() as f64;
    assert!(f32_accuracy - accuracy <= max_drop, "{file}: f32 {f32_accuracy} vs int8 {accuracy}");
}

#[test]
fn shipped_mnist_model_scores_its_recorded_accuracy() {
    check("mnist.int8.safetensors", DatasetKind::Mnist, 0.99, 0.002);
}

#[test]
fn shipped_fashion_mnist_model_scores_its_recorded_accuracy() {
    check("fashion-mnist.int8.safetensors", DatasetKind::FashionMnist, 0.895, 0.005);
}
