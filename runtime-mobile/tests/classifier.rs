//! The front door ([`Classifier`]) against the same steps done by hand (preprocess,
//! `InputQuantizer`, `Model::run_with`, `softmax_q15`) on every kernel table, in the least
//! arena and in a session's: the committed digits (`tests/fixtures/digits/`) through
//! `classify_image`, the pictures in `tests/images/` through `classify_frame`. Then its refusals
//! (no digit, scratch, arena, input shape) and the stability of the error codes. Needs no data set.

mod preprocess_support;

use preprocess_support::{Decoded, images_dir};
use runtime_mobile::classifier::{Classification, FRAME_SCRATCH_BYTES, IMAGE_SCRATCH_BYTES, TOP_K};
use runtime_mobile::confidence::{Confidence, softmax_q15};
use runtime_mobile::error::{JsonContext, JsonErrorKind};
use runtime_mobile::kernels::{self, Kernels};
use runtime_mobile::preprocess::{self, Frame, InputQuantizer, OUT_PIXELS, Options, Preprocessed, Roi, Rotation, SCRATCH_BYTES};
use runtime_mobile::{Classifier, Error, FrameOutcome, Model, Shape, TensorKind};
use testkit::mnist;
use testkit::{Build, Rng, T, random_desc};

fn tables() -> Vec<&'static Kernels> {
    kernels::available().into_iter().flatten().collect()
}

/// The shipped models and the fixture models (all committed, all 28x28 input).
fn models() -> Vec<(&'static str, Vec<u8>)> {
    let root = mnist::repo_root();
    [
        ("mnist", "models/mnist.int8.safetensors"),
        ("fashion-mnist", "models/fashion-mnist.int8.safetensors"),
        ("narrow-mnist", "runtime-mobile/tests/fixtures/narrow-mnist.int8.safetensors"),
        ("wide-fashion-mnist", "runtime-mobile/tests/fixtures/wide-fashion-mnist.int8.safetensors"),
    ]
    .into_iter()
    .map(|(name, path)| (name, std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))))
    .collect()
}

/// The 28x28 image's scores by hand: quantize with the model's input quantization, run.
fn by_hand(model: &Model<'_>, table: &Kernels, image: &[u8; OUT_PIXELS]) -> Vec<i8> {
    let mut input = [0i8; OUT_PIXELS];
    InputQuantizer::new(model.input_quant()).unwrap().quantize(image, &mut input);
    let mut arena = vec![0u8; model.arena_bytes()];
    model.run_with(table, &input, &mut arena).unwrap().scores.to_vec()
}

/// `c` is what `scores` give: class (highest, lowest index on ties), label, confidence and the
/// top classes, all from the model and `softmax_q15`.
fn check_answer(what: &str, model: &Model<'_>, c: &Classification<'_, '_>, scores: &[i8]) {
    assert_eq!(c.scores, scores, "{what}: scores");
    let best = *scores.iter().max().unwrap();
    let class = scores.iter().position(|&s| s == best).unwrap();
    assert_eq!(c.class, class, "{what}: class");
    assert_eq!(c.label, model.label(class).unwrap(), "{what}: label");
    let mut conf = vec![Confidence::default(); scores.len()];
    softmax_q15(scores, model.output_quant().scale, &mut conf);
    assert_eq!(c.confidence, conf[class], "{what}: confidence");
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(scores[i]), i));
    let top = c.top();
    assert_eq!(top.len(), TOP_K.min(scores.len()), "{what}: top");
    for (r, &i) in top.iter().zip(&order) {
        assert_eq!((r.class, r.label, r.confidence), (i, model.label(i).unwrap(), conf[i]), "{what}: top {top:?}");
    }
    assert_eq!(top[0].class, c.class, "{what}");
}

/// Each table, in the least arena (no packing) and in a session's (packed where it can be).
fn arenas(model: &Model<'_>) -> [usize; 2] {
    [model.arena_bytes(), model.session_arena_bytes()]
}

#[test]
fn classify_image_matches_the_steps_by_hand_on_every_table() {
    for (name, bytes) in models() {
        let model = Model::parse(&bytes).unwrap();
        let digits = mnist::fixture_digits(model.dataset().unwrap());
        for table in tables() {
            let want: Vec<Vec<i8>> = digits.iter().map(|(img, _)| by_hand(&model, table, img)).collect();
            for size in arenas(&model) {
                let (mut arena, mut scratch) = (vec![0u8; size], vec![0u8; IMAGE_SCRATCH_BYTES]);
                let mut c = Classifier::new(&model, table, &mut arena, &mut scratch).unwrap();
                assert_eq!(c.kernels().name, table.name);
                assert_eq!(c.is_packed(), table.conv_packed && size == model.session_arena_bytes(), "{name} {}", table.name);
                for (i, ((img, _), want)) in digits.iter().zip(&want).enumerate() {
                    let got = c.classify_image(img).unwrap();
                    let what = format!("{name}, digit {i}, {} in {size} bytes", table.name);
                    check_answer(&what, &model, &got, want);
                    assert_eq!(got.preprocess, None, "{what}");
                    assert_eq!(c.last_image(), img, "{what}");
                }
            }
        }
        // The committed digits are mostly right (the models' test accuracies are 86% and up).
        let (mut arena, mut scratch) = (vec![0u8; model.arena_bytes()], vec![0u8; IMAGE_SCRATCH_BYTES]);
        let mut c = Classifier::new(&model, kernels::best(), &mut arena, &mut scratch).unwrap();
        let correct = digits.iter().filter(|(img, label)| c.classify_image(img).unwrap().class == *label as usize).count();
        println!("{name}: {correct}/{} committed digits", digits.len());
        assert!(correct >= 80, "{name}: {correct} correct");
    }
}

/// Every picture in `tests/images/`, decoded as `classify` does.
fn pictures() -> Vec<(String, Decoded)> {
    let mut out: Vec<_> = std::fs::read_dir(images_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg"))
        .map(|p| (p.file_name().unwrap().to_str().unwrap().to_owned(), Decoded::new(&image::open(&p).unwrap())))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(out.len(), 20, "tests/images/ holds 20 pictures");
    out
}

#[test]
fn classify_frame_matches_the_steps_by_hand_on_every_table() {
    let pictures = pictures();
    for (name, bytes) in models() {
        let model = Model::parse(&bytes).unwrap();
        for table in tables() {
            for size in arenas(&model) {
                let (mut arena, mut scratch) = (vec![0u8; size], vec![0u8; FRAME_SCRATCH_BYTES]);
                let mut c = Classifier::new(&model, table, &mut arena, &mut scratch).unwrap();
                for (file, decoded) in &pictures {
                    let frame = decoded.frame();
                    let what = format!("{name}, {file}, {} in {size} bytes", table.name);
                    // By hand: preprocess, quantize, run.
                    let (mut work, mut image) = (vec![0u8; SCRATCH_BYTES], [0u8; OUT_PIXELS]);
                    let Preprocessed::Digit(info) =
                        preprocess::preprocess(&frame, &Options::DEFAULT, &mut work, &mut image).unwrap()
                    else {
                        panic!("{what}: no digit found by hand")
                    };
                    let want = by_hand(&model, table, &image);
                    let FrameOutcome::Digit(got) = c.classify_frame(&frame, &Options::DEFAULT).unwrap() else {
                        panic!("{what}: no digit")
                    };
                    check_answer(&what, &model, &got, &want);
                    assert_eq!(got.preprocess, Some(info), "{what}");
                    // The shipped MNIST model reads each picture's digit (its name's first digit).
                    if name == "mnist" {
                        assert_eq!(got.label, &file["digit".len()..][..1], "{what}");
                    }
                    assert_eq!(c.last_image(), &image, "{what}");
                }
            }
        }
    }
}

#[test]
fn frames_without_a_digit_are_an_outcome() {
    let bytes = &models()[0].1;
    let model = Model::parse(bytes).unwrap();
    let (mut arena, mut scratch) = (vec![0u8; model.session_arena_bytes()], vec![0u8; FRAME_SCRATCH_BYTES]);
    let mut c = Classifier::new(&model, kernels::best(), &mut arena, &mut scratch).unwrap();
    // A digit first, so that `last_image` has something to forget.
    let digits = mnist::fixture_digits("mnist");
    c.classify_frame(&Frame::gray(digits.image(0), 28, 28).unwrap(), &Options::DEFAULT).unwrap();
    assert!(c.last_image().iter().any(|&p| p != 0));
    let (w, h) = (64, 48);
    let gradient: Vec<u8> = (0..w * h).map(|i| (100 + (i % w) / 4) as u8).collect();
    let mut noise = Rng(9);
    let noisy: Vec<u8> = (0..w * h).map(|_| (128 + noise.range(-3, 3)) as u8).collect();
    for (what, px) in [
        ("blank white", vec![255u8; w * h]),
        ("black", vec![0; w * h]),
        ("uniform grey", vec![128; w * h]),
        ("gradient", gradient),
        ("sensor noise", noisy),
    ] {
        let frame = Frame::gray(&px, w, h).unwrap();
        match c.classify_frame(&frame, &Options::DEFAULT).unwrap() {
            FrameOutcome::NoDigit(why) => println!("{what}: {why}"),
            FrameOutcome::Digit(d) => panic!("{what}: classified as {} ({:?})", d.label, d.preprocess),
        }
        assert!(c.last_image().iter().all(|&p| p == 0), "{what}: last_image kept the previous digit");
    }
    // A region of interest holding only page is no digit either.
    let mut page = vec![230u8; w * h];
    page[..w * 10].iter_mut().for_each(|p| *p = 20);
    let opts = Options { roi: Some(Roi { x: 0, y: 20, width: 40, height: 20 }), ..Options::DEFAULT };
    assert!(matches!(c.classify_frame(&Frame::gray(&page, w, h).unwrap(), &opts).unwrap(), FrameOutcome::NoDigit(_)));
}

/// The phase mark comes once, between preprocessing and inference, whatever the outcome, and
/// never on an error; the answer is `classify_frame`'s.
#[test]
fn classify_frame_marked_marks_the_end_of_preprocessing_once() {
    let bytes = &models()[0].1;
    let model = Model::parse(bytes).unwrap();
    let (mut arena, mut scratch) = (vec![0u8; model.session_arena_bytes()], vec![0u8; FRAME_SCRATCH_BYTES]);
    let mut c = Classifier::new(&model, kernels::best(), &mut arena, &mut scratch).unwrap();
    let digits = mnist::fixture_digits("mnist");
    let digit = Frame::gray(digits.image(3), 28, 28).unwrap();
    let blank = [255u8; 64 * 48];
    let blank = Frame::gray(&blank, 64, 48).unwrap();
    for (what, frame, has_digit) in [("digit", digit, true), ("blank page", blank, false)] {
        let want = match c.classify_frame(&frame, &Options::DEFAULT).unwrap() {
            FrameOutcome::Digit(d) => Some((d.class, d.confidence, d.scores.to_vec())),
            FrameOutcome::NoDigit(_) => None,
        };
        let mut marks = 0;
        let got = match c.classify_frame_marked(&frame, &Options::DEFAULT, || marks += 1).unwrap() {
            FrameOutcome::Digit(d) => Some((d.class, d.confidence, d.scores.to_vec())),
            FrameOutcome::NoDigit(_) => None,
        };
        assert_eq!(marks, 1, "{what}");
        assert_eq!(got.is_some(), has_digit, "{what}");
        assert_eq!(got, want, "{what}");
    }
    let rotated = Options { rotation: Rotation::R90, roi: Some(Roi { x: 20, y: 0, width: 20, height: 20 }), ..Options::DEFAULT };
    let mut marks = 0;
    assert!(c.classify_frame_marked(&digit, &rotated, || marks += 1).is_err(), "a region outside the frame is an error");
    assert_eq!(marks, 0);
}

#[test]
fn too_small_scratch_and_arena_are_refused() {
    let bytes = &models()[0].1;
    let model = Model::parse(bytes).unwrap();
    let digits = mnist::fixture_digits("mnist");
    let mut arena = vec![0u8; model.session_arena_bytes()];
    for got in [0, OUT_PIXELS, IMAGE_SCRATCH_BYTES - 1] {
        let mut scratch = vec![0u8; got];
        let e = Classifier::new(&model, kernels::best(), &mut arena, &mut scratch).unwrap_err();
        assert_eq!(e, Error::ScratchTooSmall { needed: IMAGE_SCRATCH_BYTES, got });
    }
    // Image scratch classifies images but refuses frames; so does anything short of a frame's.
    for got in [IMAGE_SCRATCH_BYTES, FRAME_SCRATCH_BYTES - 1] {
        let mut scratch = vec![0u8; got];
        let mut c = Classifier::new(&model, kernels::best(), &mut arena, &mut scratch).unwrap();
        assert!(c.classify_image(digits.image(0)).is_ok());
        let frame = Frame::gray(digits.image(0), 28, 28).unwrap();
        assert_eq!(
            c.classify_frame(&frame, &Options::DEFAULT).unwrap_err(),
            Error::ScratchTooSmall { needed: FRAME_SCRATCH_BYTES, got }
        );
    }
    // Below the least arena, on every table (a session-sized arena is only needed to pack).
    for table in tables() {
        for got in [0, model.arena_bytes() - 1] {
            let (mut arena, mut scratch) = (vec![0u8; got], vec![0u8; FRAME_SCRATCH_BYTES]);
            let e = Classifier::new(&model, table, &mut arena, &mut scratch).unwrap_err();
            assert_eq!(e, Error::ArenaTooSmall { needed: model.arena_bytes(), got }, "{}", table.name);
        }
    }
}

#[test]
fn a_model_without_a_28x28_input_is_refused() {
    let dense = random_desc(&mut Rng(3), Shape::Flat(20), &[T::Dense { out: 4, relu: false }], false).build();
    let conv = random_desc(
        &mut Rng(4),
        Shape::Chw(1, 14, 14),
        &[T::Conv { out: 2, k: [3, 3], s: [1, 1], p: [0, 0], relu: true }, T::Flatten, T::Dense { out: 3, relu: false }],
        false,
    )
    .build();
    let colour = random_desc(&mut Rng(5), Shape::Chw(3, 28, 28), &[T::Flatten, T::Dense { out: 2, relu: false }], false).build();
    for (bytes, shape) in [(dense, Shape::Flat(20)), (conv, Shape::Chw(1, 14, 14)), (colour, Shape::Chw(3, 28, 28))] {
        let model = Model::parse(&bytes).unwrap();
        let (mut arena, mut scratch) = (vec![0u8; model.session_arena_bytes()], vec![0u8; FRAME_SCRATCH_BYTES]);
        let e = Classifier::new(&model, kernels::best(), &mut arena, &mut scratch).unwrap_err();
        assert_eq!(e, Error::InputShape(shape));
    }
    // A flat 784 input is an MNIST image too.
    let flat = random_desc(&mut Rng(6), Shape::Flat(OUT_PIXELS), &[T::Dense { out: 10, relu: false }], false).build();
    let model = Model::parse(&flat).unwrap();
    let (mut arena, mut scratch) = (vec![0u8; model.arena_bytes()], vec![0u8; IMAGE_SCRATCH_BYTES]);
    let mut c = Classifier::new(&model, kernels::best(), &mut arena, &mut scratch).unwrap();
    let digits = mnist::fixture_digits("mnist");
    let got = c.classify_image(digits.image(0)).unwrap();
    check_answer("flat input", &model, &got, &by_hand(&model, kernels::best(), digits.image(0)));
}

/// The error codes the bindings carry across FFI: committed here, so a code never changes
/// meaning. A new variant gets a new code and a new row.
const CODES: [(Error, u32); 34] = [
    (Error::Truncated { needed: 8, got: 0 }, 1),
    (Error::BadHeaderLength(0), 2),
    (Error::Json { context: JsonContext::Header, kind: JsonErrorKind::UnexpectedEnd, offset: 0 }, 3),
    (Error::DuplicateKey, 4),
    (Error::MissingMetadata, 5),
    (Error::MissingMetadataKey("labels"), 6),
    (Error::BadMetadata { key: "labels", reason: "r" }, 7),
    (Error::NotThisFormat, 8),
    (Error::UnsupportedVersion(99), 9),
    (Error::BadLayer { layer: 0, reason: "r" }, 10),
    (Error::InconsistentLayer { layer: 0, reason: "r" }, 11),
    (Error::TooManyLayers(99), 12),
    (Error::BadTensorEntry("r"), 13),
    (Error::UnknownTensor, 14),
    (Error::MissingTensor { layer: 0, tensor: TensorKind::Weight }, 15),
    (Error::BadQuantParam { layer: 0, channel: 0 }, 16),
    (Error::Overflow, 17),
    (Error::DeclaredArenaTooSmall { declared: 1, needed: 2 }, 18),
    (Error::LabelCount { labels: 1, outputs: 2 }, 19),
    (Error::ArenaTooSmall { needed: 2, got: 1 }, 20),
    (Error::InputSize { expected: 2, got: 1 }, 21),
    (Error::FrameZeroSize, 22),
    (Error::FrameTooLarge { width: 1 << 20, height: 1 }, 23),
    (Error::StrideTooSmall { row_stride: 1, min: 2 }, 24),
    (Error::BufferTooShort { needed: 2, got: 1 }, 25),
    (Error::BadRoi, 26),
    (Error::ScratchTooSmall { needed: 2, got: 1 }, 27),
    (Error::BadInputQuant, 28),
    (Error::InputShape(Shape::Flat(1)), 29),
    (Error::WrongDtype { layer: 0, tensor: TensorKind::Bias }, 30),
    (Error::WrongShape { layer: 0, tensor: TensorKind::Shift }, 31),
    (Error::OffsetsOutOfBounds, 32),
    (Error::SizeMismatch, 33),
    (Error::Internal("what"), 99),
];

#[test]
fn error_codes_are_unique_and_stable() {
    let mut seen = std::collections::BTreeSet::new();
    for (e, code) in CODES {
        assert_eq!(e.code(), code, "{e:?} changed its code");
        assert!(seen.insert(code), "code {code} used twice");
        // Model errors are the parser's codes.
        assert_eq!(e.is_model_error(), matches!(code, 1..=19 | 30..=33), "{e:?}");
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn an_internal_error_says_it_is_a_bug() {
    let text = Error::Internal("classifier: image scratch").to_string();
    assert!(text.contains("bug"), "{text}");
    assert!(text.contains("classifier: image scratch"), "{text}");
}
