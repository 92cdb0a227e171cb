//! Networks other than the seed CNN (runtime-mobile's fixtures `narrow-mnist` and
//! `wide-fashion-mnist`, trained by `train --arch` and exported by `export`; commands in
//! `runtime-mobile/tests/fixtures/README.md`) over their data set's whole 10,000-image test split:
//! the accuracy is exactly the `int8_accuracy` export recorded in the file, and every kernel table
//! of this CPU (plain runs and packed sessions) gives the scalar table's scores bit for bit.
//! (runtime-mobile's own tests check the same on 100 committed digits without the data sets;
//! this also checks those digits are still the data sets' first 100.)
//!
//! Needs the data sets in `<repo>/data/` (`.ci/run` links `../shared/data` there).

use runtime_mobile::Model;
use runtime_mobile::kernels::{self, Kernels};
use runtime_mobile::preprocess::InputQuantizer;
use testkit::mnist::{self, PIXELS, TEST_IMAGES};

fn tables() -> Vec<&'static Kernels> {
    kernels::available().into_iter().flatten().collect()
}

fn check(name: &str) {
    let path = mnist::repo_root().join("runtime-mobile/tests/fixtures").join(format!("{name}.int8.safetensors"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let model = Model::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let planned = runtime_mobile::plan::arena_bytes(model.input_shape(), model.layers()).unwrap();
    assert_eq!(model.arena_bytes(), planned, "{name}");

    let dataset = model.dataset().expect("export records the data set");
    let digits = mnist::test_split(dataset);
    assert_eq!(
        mnist::fixture_digits(dataset),
        digits.first(mnist::FIXTURE_DIGITS),
        "{name}: the committed digits are not {dataset}'s first 100"
    );

    let quantizer = InputQuantizer::new(model.input_quant()).unwrap();
    let tables = tables();
    let mut arena = vec![0u8; model.arena_bytes()];
    // Sessions on the tables with the packed conv path, each with room to pack (the others'
    // sessions run `run_with`'s code, checked in runtime-mobile's tests).
    let packed: Vec<_> = tables.iter().filter(|k| k.conv_packed).collect();
    let mut fast = vec![0u8; model.session_arena_bytes() * packed.len()];
    let mut sessions: Vec<_> = fast
        .chunks_exact_mut(model.session_arena_bytes())
        .zip(&packed)
        .map(|(arena, k)| model.session(k, arena).unwrap())
        .collect();
    assert!(sessions.iter().all(|s| s.is_packed()));
    // `Model::run_with` never takes the packed path, so with scalar-packed it is scalar's run.
    let unpacked: Vec<_> = tables.iter().skip(1).filter(|k| !std::ptr::eq(**k, &kernels::scalar::KERNELS_PACKED)).collect();
    let mut input = [0i8; PIXELS];
    let mut correct = 0;
    for (i, (image, label)) in digits.iter().enumerate() {
        quantizer.quantize(image, &mut input);
        let reference = model.run_with(tables[0], &input, &mut arena).unwrap();
        let (class, scores) = (reference.class, reference.scores.to_vec());
        for k in &unpacked {
            let p = model.run_with(k, &input, &mut arena).unwrap();
            assert_eq!(
                p.scores,
                scores.as_slice(),
                "{name}: test image {i}, kernel table {} differs from the scalar one",
                k.name
            );
        }
        for s in &mut sessions {
            let table = s.kernels().name;
            let p = s.run(&input).unwrap();
            assert_eq!(
                p.scores,
                scores.as_slice(),
                "{name}: test image {i}, kernel table {table} in a session differs from the scalar one"
            );
        }
        correct += (class == label as usize) as usize;
    }
    let recorded = model.int8_accuracy().expect("export records the int8 accuracy");
    println!(
        "{name}: {correct}/{TEST_IMAGES} correct, recorded {recorded}; tables {:?}",
        tables.iter().map(|k| k.name).collect::<Vec<_>>()
    );
    assert_eq!(
        correct,
        (recorded as f64 * TEST_IMAGES as f64).round() as usize,
        "{name}: {correct} correct, metadata says {recorded}"
    );
}

#[test]
fn narrow_mnist_scores_its_recorded_accuracy_on_every_kernel_table() {
    check("narrow-mnist");
}

#[test]
fn wide_fashion_mnist_scores_its_recorded_accuracy_on_every_kernel_table() {
    check("wide-fashion-mnist");
}
