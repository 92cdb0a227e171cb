//! The bindings' Rust layers (the owning `Engine`, the uniffi object, the JNI packing) give
//! exactly the answers of `runtime_mobile::Classifier` called directly, on the committed models,
//! the frames made from runtime-mobile/tests/images and MNIST / Fashion-MNIST test digits.

mod support;

use bindings::convert::{self, packed};
use bindings::uniffi_api::{self, BundledModel, ClassifierError, Region};
use bindings::{Bundled, Engine};
use support::cases::{self, Reference, canonical};

fn engine(model: &str) -> Engine {
    match model {
        "mnist" => Engine::from_bytes(cases::model_bytes("mnist")).expect("from_bytes"),
        _ => Engine::bundled(Bundled::FashionMnist).expect("bundled"),
    }
}

/// Prints the kernel table chosen at run time (on a phone: `neon` or `neon-dotprod`), and checks
/// it is the best this CPU has.
#[test]
fn kernel_table_chosen_at_run_time() {
    let e = Engine::bundled(Bundled::Mnist).expect("bundled");
    println!("bindings: kernel table chosen at run time: {}", e.kernels());
    assert_eq!(e.kernels(), runtime_mobile::kernels::detect().name);
    #[cfg(target_arch = "aarch64")]
    {
        let want = if std::arch::is_aarch64_feature_detected!("dotprod") { "neon-dotprod" } else { "neon" };
        assert_eq!(e.kernels(), want);
    }
}

#[test]
fn engine_answers_equal_the_core_classifier() {
    let mut all = cases::image_cases(300);
    all.extend(cases::frame_cases());
    let mut reference = Reference::new();
    let engines = [("mnist", engine("mnist")), ("fashion-mnist", engine("fashion-mnist"))];
    let mut frames = 0;
    for case in &all {
        let e = &engines.iter().find(|(n, _)| *n == case.model).expect("model").1;
        let got = if case.image {
            e.classify_image(&case.input, |a| canonical(&a.outcome))
        } else {
            frames += 1;
            e.classify_frame(&case.frame_args(), |a| canonical(&a.outcome))
        }
        .unwrap_or_else(|f| panic!("{}: {f}", case.id));
        assert_eq!(got, reference.answer(case), "{}", case.id);
    }
    assert!(frames > 200 && all.len() > 800);
}

/// The JNI answer layout holds what the core said.
#[test]
fn packed_answer_matches_the_core() {
    let e = engine("mnist");
    let case = cases::frame_cases().into_iter().find(|c| c.id == "bench-frame").expect("bench frame");
    let mut out = [0i32; packed::HEADER + 10];
    let (n, class, q15, scores, bbox) = e
        .classify_frame(&case.frame_args(), |a| {
            let runtime_mobile::FrameOutcome::Digit(c) = a.outcome else { panic!("no digit in the bench frame") };
            let info = c.preprocess.expect("frame info");
            let scores: Vec<i32> = c.scores.iter().map(|&s| i32::from(s)).collect();
            (convert::pack(&a, &mut out), c.class, c.confidence.q15(), scores, info.bbox)
        })
        .expect("classify");
    assert_eq!(n, Ok(packed::HEADER + 10));
    assert_eq!(out[packed::HAS_DIGIT], 1);
    assert_eq!(out[packed::CLASS], class as i32);
    assert_eq!(out[packed::TOP_CLASSES], class as i32);
    assert_eq!(out[packed::CONFIDENCE_Q15], i32::from(q15));
    assert_eq!(&out[packed::HEADER..], &scores[..]);
    assert_eq!(&out[packed::BOX..packed::BOX + 4], &[bbox.x as i32, bbox.y as i32, bbox.width as i32, bbox.height as i32]);
    let mut short = [0i32; packed::HEADER + 9];
    let r = e.classify_frame(&case.frame_args(), |a| convert::pack(&a, &mut short)).expect("classify");
    assert_eq!(r.map_err(|f| f.code()), Err(105));
}

#[test]
fn uniffi_object_answers_and_errors() {
    let c = uniffi_api::Classifier::bundled(BundledModel::Mnist).expect("bundled");
    assert_eq!(c.labels(), (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
    assert_eq!(c.dataset(), "mnist");
    let mut reference = Reference::new();
    let case = cases::frame_cases().into_iter().find(|c| c.id == "bench-frame").expect("bench frame");
    let roi = case.roi.map(|r| Region { left: r.x as u32, top: r.y as u32, width: r.width as u32, height: r.height as u32 });
    let a =
        c.classify_frame(case.input.clone(), 640, 480, 704, uniffi_api::PixelFormat::Yuv420Y, 90, roi).expect("classify_frame");
    let d = a.digit.expect("a digit");
    let want = reference.answer(&case);
    let fields: Vec<&str> = want.split('\t').collect();
    assert_eq!(d.class_index.to_string(), fields[1]);
    assert_eq!(((d.confidence * 32768.0) as u32).to_string(), fields[3]);
    assert_eq!(d.scores.iter().map(i8::to_string).collect::<Vec<_>>().join(","), fields[5]);
    assert_eq!(d.top.len(), 3);

    let err = |r: Result<_, ClassifierError>| match r {
        Err(ClassifierError::Model { code, .. }) => ("model", code),
        Err(ClassifierError::Input { code, .. }) => ("input", code),
        Err(ClassifierError::Internal { code, .. }) => ("internal", code),
        Ok(_) => ("ok", 0),
    };
    assert_eq!(err(uniffi_api::Classifier::from_bytes(vec![1, 2]).map(|_| ())), ("model", 1));
    assert_eq!(err(c.classify_image(vec![0; 783]).map(|_| ())), ("input", 21));
    let frame = |rot, roi| c.classify_frame(case.input.clone(), 640, 480, 704, uniffi_api::PixelFormat::Gray8, rot, roi);
    assert_eq!(err(frame(45, None).map(|_| ())), ("input", 100));
    assert_eq!(err(frame(0, Some(Region { left: 600, top: 0, width: 41, height: 1 })).map(|_| ())), ("input", 26));
    let blank = c.classify_frame(vec![90; 64 * 64], 64, 64, 64, uniffi_api::PixelFormat::Gray8, 0, None).expect("blank");
    assert!(blank.digit.is_none() && blank.no_digit_reason.is_some() && blank.bounding_box.is_none());
}

/// A panic inside a boundary call comes back as an error with code 99, not an unwind.
#[test]
fn guard_turns_a_panic_into_an_internal_error() {
    let r: Result<(), _> = bindings::error::guard(|| panic!("boom"));
    let f = r.expect_err("a panic is an error");
    assert_eq!((f.code(), f.kind()), (99, bindings::error::Kind::Internal));
    assert!(f.to_string().contains("boom"));
    let e: ClassifierError = f.into();
    assert!(matches!(e, ClassifierError::Internal { code: 99, .. }));
}
