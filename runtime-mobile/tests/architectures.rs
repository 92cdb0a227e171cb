//! Networks other than the seed CNN, trained by `train --arch` and exported by `export` (commands
//! and accuracies in `tests/fixtures/README.md`): each parses, plans the arena it declares, and
//! gives, with every kernel table this CPU has (plain runs and sessions, packed or not), exactly
//! the committed scores on the committed digits (`tests/fixtures/digits/`, the first 100 test
//! images of its data set). Needs no data set; the whole-test-set accuracy checks are in the
//! end-to-end crate (`tests/tests/architectures.rs`).
//!
//! The scores (`tests/fixtures/*.scores.txt`) were computed with the scalar table; rewrite them
//! (only after a deliberate change of the arithmetic) with
//!
//! ```text
//! cargo test -p runtime-mobile --test architectures -- --ignored write_expected_scores
//! ```
//!
//! and the digit subsets (from `data/`) with `... -- --ignored write_fixture_digits`.

use std::fmt::Write as _;
use std::path::PathBuf;

use runtime_mobile::kernels::{self, Kernels, scalar};
use runtime_mobile::preprocess::InputQuantizer;
use runtime_mobile::{Model, Op};
use testkit::mnist::{self, Digits, FIXTURE_DIGITS};

const MODELS: [&str; 2] = ["narrow-mnist", "wide-fashion-mnist"];

fn fixtures() -> PathBuf {
    mnist::repo_root().join("runtime-mobile/tests/fixtures")
}

fn model_bytes(name: &str) -> Vec<u8> {
    let path = fixtures().join(format!("{name}.int8.safetensors"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn scores_path(name: &str) -> PathBuf {
    fixtures().join(format!("{name}.scores.txt"))
}

fn tables() -> Vec<&'static Kernels> {
    kernels::available().into_iter().flatten().collect()
}

/// The committed digits of the model's data set, quantized as the model's input.
fn inputs(model: &Model<'_>) -> (Digits, Vec<[i8; mnist::PIXELS]>) {
    let digits = mnist::fixture_digits(model.dataset().expect("export records the data set"));
    let q = InputQuantizer::new(model.input_quant()).unwrap();
    let inputs = digits
        .iter()
        .map(|(image, _)| {
            let mut input = [0i8; mnist::PIXELS];
            q.quantize(image, &mut input);
            input
        })
        .collect();
    (digits, inputs)
}

/// One line of a scores file: image index, label, class, then one score per class.
struct Expected {
    label: u8,
    class: usize,
    scores: Vec<i8>,
}

fn read_expected(name: &str) -> Vec<Expected> {
    let path = scores_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rows: Vec<Expected> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let v: Vec<i64> =
                line.split_whitespace().map(|t| t.parse().unwrap_or_else(|e| panic!("{name}: {line:?}: {e}"))).collect();
            assert_eq!(v[0], i as i64, "{name}: rows out of order");
            Expected {
                label: v[1] as u8,
                class: v[2] as usize,
                scores: v[3..].iter().map(|&s| i8::try_from(s).unwrap()).collect(),
            }
        })
        .collect();
    assert_eq!(rows.len(), FIXTURE_DIGITS, "{name}: one row per committed digit");
    rows
}

/// Checks `name` against its committed scores on every table; returns the layers.
fn check(name: &str) -> Vec<Op> {
    let bytes = model_bytes(name);
    let model = Model::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));

    // The arena the file declares is exactly what the planner needs, and is enough.
    let planned = runtime_mobile::plan::arena_bytes(model.input_shape(), model.layers()).unwrap();
    assert_eq!(model.arena_bytes(), planned, "{name}");
    assert_eq!(testkit::metadata(&bytes, "arena_bytes").unwrap().parse::<usize>().unwrap(), planned, "{name}");

    let expected = read_expected(name);
    let (digits, inputs) = inputs(&model);
    let tables = tables();
    assert!(!tables.is_empty());
    let mut arena = vec![0u8; model.arena_bytes()];
    // Sessions on every table: with room to pack (packed where the table has the packed conv
    // path), and in the least arena (never packed).
    let big = model.session_arena_bytes();
    let mut fast = vec![0u8; big * tables.len()];
    let mut small = vec![0u8; model.arena_bytes() * tables.len()];
    let mut sessions: Vec<_> = fast
        .chunks_exact_mut(big)
        .zip(&tables)
        .map(|(arena, k)| model.session(k, arena).unwrap())
        .chain(small.chunks_exact_mut(model.arena_bytes()).zip(&tables).map(|(arena, k)| model.session(k, arena).unwrap()))
        .collect();
    for (s, k) in sessions[..tables.len()].iter().zip(&tables) {
        assert_eq!(s.is_packed(), k.conv_packed, "{name}: {}", k.name);
    }
    assert!(sessions[tables.len()..].iter().all(|s| !s.is_packed()));

    let mut correct = 0;
    for (i, ((input, want), label)) in inputs.iter().zip(&expected).zip(&digits.labels).enumerate() {
        assert_eq!(want.label, *label, "{name}: digit {i}: the scores file's label is not the committed digit's");
        for k in &tables {
            let p = model.run_with(k, input, &mut arena).unwrap();
            assert_eq!(p.scores, want.scores.as_slice(), "{name}: digit {i}, kernel table {}", k.name);
            assert_eq!(p.class, want.class, "{name}: digit {i}, kernel table {}", k.name);
        }
        for s in &mut sessions {
            let (table, packed) = (s.kernels().name, s.is_packed());
            let p = s.run(input).unwrap();
            assert_eq!(p.scores, want.scores.as_slice(), "{name}: digit {i}, session on {table} (packed: {packed})");
        }
        correct += (want.class == *label as usize) as usize;
    }
    println!(
        "{name}: {correct}/{FIXTURE_DIGITS} committed digits correct, identical on {:?}",
        tables.iter().map(|k| k.name).collect::<Vec<_>>()
    );

    // One byte less is refused rather than overrun.
    let mut small = vec![0u8; model.arena_bytes() - 1];
    assert!(model.run(&inputs[0], &mut small).is_err(), "{name}: ran in a too-small arena");
    model.layers().iter().map(|l| l.op).collect()
}

#[test]
fn narrow_mnist_gives_the_committed_scores_on_every_kernel_table() {
    let ops = check("narrow-mnist");
    let convs: Vec<_> = ops
        .iter()
        .filter_map(|op| if let Op::Conv2d { out_channels, kernel, .. } = op { Some((*out_channels, *kernel)) } else { None })
        .collect();
    assert_eq!(convs, [(8, [5, 5]), (16, [5, 5])]);
}

#[test]
fn wide_fashion_mnist_gives_the_committed_scores_on_every_kernel_table() {
    let ops = check("wide-fashion-mnist");
    // What the seed does not exercise: padded 3x3 convolutions and an average pool.
    assert!(ops.iter().any(|op| matches!(op, Op::Conv2d { kernel: [3, 3], padding: [1, 1], .. })));
    assert!(ops.iter().any(|op| matches!(op, Op::AvgPool2d(_))));
}

/// The committed digit subsets are what their README says: 100 labelled images of each set.
#[test]
fn committed_digits_are_complete() {
    for dataset in mnist::DATASETS {
        let d = mnist::fixture_digits(dataset);
        assert_eq!((d.images.len(), d.labels.len()), (FIXTURE_DIGITS * mnist::PIXELS, FIXTURE_DIGITS));
        // Every class is there, and the images are not blank.
        for class in 0..10 {
            assert!(d.labels.contains(&class), "{dataset}: no digit of class {class}");
        }
        assert!(d.iter().all(|(img, _)| img.iter().filter(|&&p| p > 0).count() > 20), "{dataset}: a blank image");
    }
}

/// Rewrites `tests/fixtures/*.scores.txt` with the scalar table's scores.
#[test]
#[ignore = "writes tests/fixtures/*.scores.txt; run only after a deliberate change of the arithmetic"]
fn write_expected_scores() {
    for name in MODELS {
        let bytes = model_bytes(name);
        let model = Model::parse(&bytes).unwrap();
        let (digits, inputs) = inputs(&model);
        let mut arena = vec![0u8; model.arena_bytes()];
        let mut text = format!(
            "# Scores of {name}.int8.safetensors on digits/{}-first100-t10k-*-ubyte.gz (the scalar kernel table).\n\
             # Written by: cargo test -p runtime-mobile --test architectures -- --ignored write_expected_scores\n\
             # image label class score_0 .. score_{}\n",
            model.dataset().unwrap(),
            model.num_classes() - 1
        );
        for (i, (input, label)) in inputs.iter().zip(&digits.labels).enumerate() {
            let p = model.run_with(&scalar::KERNELS, input, &mut arena).unwrap();
            write!(text, "{i} {label} {}", p.class).unwrap();
            for s in p.scores {
                write!(text, " {s}").unwrap();
            }
            text.push('\n');
        }
        std::fs::write(scores_path(name), text).unwrap();
    }
}

/// Rewrites `tests/fixtures/digits/` from the test splits in `<repo>/data/`.
#[test]
#[ignore = "writes tests/fixtures/digits/ from data/; run explicitly"]
fn write_fixture_digits() {
    let dir = mnist::fixture_digits_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for dataset in mnist::DATASETS {
        let d = mnist::test_split(dataset).first(FIXTURE_DIGITS);
        mnist::write_idx_gz(&dir, &format!("{dataset}-first100-"), &d);
    }
}
