//! Networks other than the seed CNN, trained by `train --arch` and exported by `export` (commands
//! and accuracies in `tests/fixtures/README.md`): each parses, plans the arena it declares, and
//! scores the whole 10,000-image test set at exactly the int8 accuracy export recorded, with
//! identical scores from every kernel table this CPU has.
//!
//! Needs the data sets in `<repo>/data/` (`.ci/run` links `../shared/data` there).

use std::io::Read;
use std::path::{Path, PathBuf};

use runtime_mobile::kernels::{self, Kernels};
use runtime_mobile::{Model, Op, Quant};

const TEST_IMAGES: usize = 10_000;
const PIXELS: usize = 28 * 28;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The contents of a gzip or raw IDX file, header stripped (`header` bytes).
fn read_idx(dir: &Path, stem: &str, header: usize) -> Vec<u8> {
    let gz = dir.join(format!("{stem}.gz"));
    let mut raw = Vec::new();
    if gz.is_file() {
        let file = std::fs::File::open(&gz).unwrap_or_else(|e| panic!("{}: {e}", gz.display()));
        flate2::read::GzDecoder::new(file).read_to_end(&mut raw).unwrap();
    } else {
        let plain = dir.join(stem);
        raw = std::fs::read(&plain).unwrap_or_else(|e| {
            panic!("{}: {e} (the data sets belong in <repo>/data: run .ci/run or link ../shared/data to data)", plain.display())
        });
    }
    raw.split_off(header)
}

/// The test split of `dataset` (`mnist` or `fashion-mnist`): images and labels.
fn test_split(dataset: &str) -> (Vec<u8>, Vec<u8>) {
    let dir = root().join("data").join(dataset);
    let images = read_idx(&dir, "t10k-images-idx3-ubyte", 16);
    let labels = read_idx(&dir, "t10k-labels-idx1-ubyte", 8);
    assert_eq!((images.len(), labels.len()), (TEST_IMAGES * PIXELS, TEST_IMAGES), "{dataset}: not the standard test split");
    (images, labels)
}

/// A metadata value of a safetensors file.
fn metadata(bytes: &[u8], key: &str) -> String {
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    header["__metadata__"][key].as_str().unwrap_or_else(|| panic!("metadata has no `{key}`")).to_owned()
}

fn quantize_pixel(p: u8, q: Quant) -> i8 {
    ((p as f32 / 255.0 / q.scale).round() as i32 + q.zero_point).clamp(-128, 127) as i8
}

fn tables() -> Vec<&'static Kernels> {
    kernels::available().into_iter().flatten().collect()
}

/// Runs `file` on its data set's whole test split with every kernel table; returns the layers.
fn check(file: &str) -> Vec<Op> {
    let bytes = std::fs::read(root().join("runtime-mobile/tests/fixtures").join(file)).unwrap();
    let model = Model::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));

    // The arena the file declares is exactly what the planner needs, and is enough.
    let planned = runtime_mobile::plan::arena_bytes(model.input_shape(), model.layers()).unwrap();
    assert_eq!(model.arena_bytes(), planned, "{file}");
    assert_eq!(metadata(&bytes, "arena_bytes").parse::<usize>().unwrap(), planned, "{file}");

    let (images, labels) = test_split(&metadata(&bytes, "dataset"));
    let q = model.input_quant();
    let tables = tables();
    assert!(!tables.is_empty());
    let mut arena = vec![0u8; model.arena_bytes()];
    // Sessions on the tables with the packed conv path (other tables' sessions run `run_with`'s
    // code, checked in tests/inference.rs), each with room to pack.
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
    let mut input = vec![0i8; model.input_len()];
    let mut correct = 0;
    for (i, (image, &label)) in images.chunks_exact(PIXELS).zip(&labels).enumerate() {
        for (x, &p) in input.iter_mut().zip(image) {
            *x = quantize_pixel(p, q);
        }
        let reference = model.run_with(tables[0], &input, &mut arena).unwrap();
        let (class, scores) = (reference.class, reference.scores.to_vec());
        for k in &unpacked {
            let p = model.run_with(k, &input, &mut arena).unwrap();
            assert_eq!(p.scores, scores.as_slice(), "{file}: test image {i}, kernel table {} differs from the scalar one", k.name);
        }
        for s in &mut sessions {
            let name = s.kernels().name;
            let p = s.run(&input).unwrap();
            assert_eq!(p.scores, scores.as_slice(), "{file}: test image {i}, kernel table {name} in a session differs from the scalar one");
        }
        correct += (class == label as usize) as usize;
    }
    let recorded = model.int8_accuracy().expect("export records the int8 accuracy");
    assert_eq!(correct, (recorded as f64 * TEST_IMAGES as f64).round() as usize, "{file}: {correct} correct, metadata says {recorded}");

    // One byte less is refused rather than overrun.
    let mut small = vec![0u8; model.arena_bytes() - 1];
    assert!(model.run(&input, &mut small).is_err(), "{file}: ran in a too-small arena");
    model.layers().iter().map(|l| l.op).collect()
}

#[test]
fn narrow_mnist_scores_its_recorded_accuracy_on_every_kernel_table() {
    let ops = check("narrow-mnist.int8.safetensors");
    let convs: Vec<_> = ops.iter().filter_map(|op| if let Op::Conv2d { out_channels, kernel, .. } = op { Some((*out_channels, *kernel)) } else { None }).collect();
    assert_eq!(convs, [(8, [5, 5]), (16, [5, 5])]);
}

#[test]
fn wide_fashion_mnist_scores_its_recorded_accuracy_on_every_kernel_table() {
    let ops = check("wide-fashion-mnist.int8.safetensors");
    // What the seed does not exercise: padded 3x3 convolutions and an average pool.
    assert!(ops.iter().any(|op| matches!(op, Op::Conv2d { kernel: [3, 3], padding: [1, 1], .. })));
    assert!(ops.iter().any(|op| matches!(op, Op::AvgPool2d(_))));
}
