//! The test inputs every language runs (shared by the Rust tests and the `expected_answers`
//! example, which writes them for the Python and Kotlin tests), and the answer each must give,
//! computed by `runtime_mobile::Classifier` directly (not through the bindings).
//!
//! Canonical answer (tab-separated): `digit class label q15 top scores box inverted`, where
//! `top` is `class:q15` joined by `;`, `scores` by `,`, `box` is `left,top,width,height` or `-`;
//! or `none reason` (the core's `NoDigitReason::describe`).

use std::path::{Path, PathBuf};

use runtime_mobile::classifier::FRAME_SCRATCH_BYTES;
use runtime_mobile::preprocess::{Frame, Options, PixelFormat, Roi, Rotation};
use runtime_mobile::{Classifier, FrameOutcome, Model, kernels};

pub const MODELS: [&str; 2] = ["mnist", "fashion-mnist"];

#[derive(Debug, Clone)]
pub struct Case {
    pub id: String,
    pub model: &'static str,
    /// 28x28 through classify_image, or a frame through classify_frame.
    pub image: bool,
    pub input: Vec<u8>,
    pub width: usize,
    pub height: usize,
    pub stride: usize,
    pub format: PixelFormat,
    pub rotation: i32,
    pub roi: Option<Roi>,
}

impl Case {
    /// The case as the bindings' frame call takes it.
    pub fn frame_args(&self) -> bindings::FrameArgs<'_> {
        bindings::FrameArgs {
            data: &self.input,
            format: self.format,
            width: self.width,
            height: self.height,
            row_stride: self.stride,
            rotation_degrees: self.rotation,
            roi: self.roi,
        }
    }
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn model_bytes(model: &str) -> Vec<u8> {
    let path = repo().join(format!("models/{model}.int8.safetensors"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn format_name(f: PixelFormat) -> &'static str {
    match f {
        PixelFormat::Gray8 => "GRAY8",
        PixelFormat::Rgba8888 => "RGBA8888",
        PixelFormat::Bgra8888 => "BGRA8888",
        PixelFormat::Nv21 => "NV21",
        PixelFormat::Yuv420Y => "YUV420Y",
    }
}

/// A Y plane of `gray` with rows `pad` bytes wider than the image (the padding holds junk the
/// core must not read) and the last row not padded (as Android `Image` planes).
fn y_plane(gray: &[u8], width: usize, height: usize, pad: usize) -> (Vec<u8>, usize) {
    let stride = width + pad;
    let mut out = Vec::with_capacity((height - 1) * stride + width);
    for (y, row) in gray.chunks_exact(width).enumerate() {
        out.extend_from_slice(row);
        if y + 1 < height {
            out.extend((0..pad).map(|i| (i * 37 + y * 11) as u8));
        }
    }
    (out, stride)
}

/// An asymmetric crop (so a mix-up of the edges or axes changes the answer).
fn inset(width: usize, height: usize) -> Roi {
    let (x, y) = (width / 8, height / 10);
    Roi { x, y, width: width - x - width / 16, height: height - y - height / 12 }
}

fn frame(
    id: String,
    input: Vec<u8>,
    (width, height, stride): (usize, usize, usize),
    format: PixelFormat,
    rotation: i32,
    roi: Option<Roi>,
) -> Case {
    Case { id, model: "mnist", image: false, input, width, height, stride, format, rotation, roi }
}

/// The images of runtime-mobile/tests/images as frames: RGBA, BGRA, NV21 and Y planes with
/// wide strides, in every rotation, whole and cropped.
pub fn frame_cases() -> Vec<Case> {
    let files = image_files();
    let mut cases = Vec::new();
    for path in &files {
        let name = path.file_stem().and_then(|s| s.to_str()).expect("file name").to_owned();
        let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let rgba = img.to_rgba8();
        let (w, h) = (rgba.width() as usize, rgba.height() as usize);
        let rgba = rgba.into_raw();
        let bgra: Vec<u8> = rgba.chunks_exact(4).flat_map(|p| [p[2], p[1], p[0], p[3]]).collect();
        let gray = img.to_luma8().into_raw();
        cases.push(frame(format!("{name}/rgba"), rgba, (w, h, 4 * w), PixelFormat::Rgba8888, 0, None));
        cases.push(frame(format!("{name}/bgra-r90"), bgra, (w, h, 4 * w), PixelFormat::Bgra8888, 90, Some(inset(w, h))));
        let (plane, stride) = y_plane(&gray, w, h, 24 + w % 7);
        for rotation in [0, 90, 180, 270] {
            for roi in [None, Some(inset(w, h))] {
                let tag = if roi.is_some() { "crop" } else { "whole" };
                let id = format!("{name}/y-r{rotation}-{tag}");
                cases.push(frame(id, plane.clone(), (w, h, stride), PixelFormat::Yuv420Y, rotation, roi));
            }
        }
        let mut nv21 = plane.clone();
        nv21.resize(h * stride + h.div_ceil(2) * stride, 128);
        cases.push(frame(format!("{name}/nv21-r270"), nv21, (w, h, stride), PixelFormat::Nv21, 270, Some(inset(w, h))));
        let mut fashion = frame(format!("{name}/fashion-y-r90"), plane, (w, h, stride), PixelFormat::Yuv420Y, 90, None);
        fashion.model = "fashion-mnist";
        cases.push(fashion);
    }
    cases.push(bench_frame(&files[0]));
    cases.extend(no_digit_frames());
    cases
}

/// Frames without a digit (an answer, not an error): a blank page and a lone speck.
fn no_digit_frames() -> Vec<Case> {
    let blank = vec![128u8; 160 * 120];
    let mut speck = vec![220u8; 160 * 120];
    for (x, y) in [(80, 60), (81, 60), (80, 61)] {
        speck[y * 160 + x] = 20;
    }
    vec![
        frame("blank".into(), blank, (160, 120, 160), PixelFormat::Yuv420Y, 0, None),
        frame("speck".into(), speck, (160, 120, 160), PixelFormat::Yuv420Y, 90, None),
    ]
}

/// The pictures of runtime-mobile/tests/images, sorted.
pub fn image_files() -> Vec<PathBuf> {
    let dir = repo().join("runtime-mobile/tests/images");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "png" || x == "jpg"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "expected the 20 images of {}", dir.display());
    files
}

/// A 640x480 camera Y plane (stride 704, as some phones pad) with the first image's digit in
/// the middle: the benchmark's frame, classified with the centre square as the crop.
pub fn bench_frame(path: &Path) -> Case {
    let (w, h, stride) = (640, 480, 704);
    let digit = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_luma8();
    let digit = image::imageops::resize(&digit, 300, 300, image::imageops::FilterType::Triangle);
    let mut plane = vec![200u8; (h - 1) * stride + w];
    for (x, y, p) in digit.enumerate_pixels() {
        plane[(y as usize + 90) * stride + x as usize + 170] = p.0[0];
    }
    let roi = Roi::centre_square(w, h);
    Case { id: "bench-frame".into(), ..frame(String::new(), plane, (w, h, stride), PixelFormat::Yuv420Y, 90, Some(roi)) }
}

/// The first `n` test images of each data set through classify_image on its own model.
pub fn image_cases(n: usize) -> Vec<Case> {
    let mut cases = Vec::new();
    for model in MODELS {
        let digits = testkit::mnist::test_split(model);
        for i in 0..n {
            cases.push(Case {
                id: format!("{model}-{i}"),
                model,
                image: true,
                input: digits.image(i).to_vec(),
                width: 28,
                height: 28,
                stride: 28,
                format: PixelFormat::Gray8,
                rotation: 0,
                roi: None,
            });
        }
    }
    cases
}

pub fn canonical(outcome: &FrameOutcome<'_, '_>) -> String {
    let c = match outcome {
        FrameOutcome::NoDigit(why) => return format!("none\t{}", why.describe()),
        FrameOutcome::Digit(c) => c,
    };
    let top: Vec<String> = c.top().iter().map(|r| format!("{}:{}", r.class, r.confidence.q15())).collect();
    let scores: Vec<String> = c.scores.iter().map(i8::to_string).collect();
    let bbox = c.preprocess.map_or("-".into(), |i| format!("{},{},{},{}", i.bbox.x, i.bbox.y, i.bbox.width, i.bbox.height));
    let inverted = u8::from(c.preprocess.is_some_and(|i| i.inverted));
    format!(
        "digit\t{}\t{}\t{}\t{}\t{}\t{bbox}\t{inverted}",
        c.class,
        c.label,
        c.confidence.q15(),
        top.join(";"),
        scores.join(",")
    )
}

/// `runtime_mobile::Classifier` for each model, straight from the core (buffers leaked: a
/// test process).
pub struct Reference {
    classifiers: Vec<(&'static str, Classifier<'static, 'static>)>,
}

impl Reference {
    pub fn new() -> Self {
        let classifiers = MODELS
            .iter()
            .map(|&name| {
                let bytes: &'static [u8] = Box::leak(model_bytes(name).into_boxed_slice());
                let model: &'static Model<'static> = Box::leak(Box::new(Model::parse(bytes).expect("model")));
                let arena = Box::leak(vec![0u8; model.session_arena_bytes()].into_boxed_slice());
                let scratch = Box::leak(vec![0u8; FRAME_SCRATCH_BYTES].into_boxed_slice());
                (name, Classifier::new(model, kernels::best(), arena, scratch).expect("classifier"))
            })
            .collect();
        Reference { classifiers }
    }

    pub fn kernels(&self) -> &'static str {
        self.classifiers[0].1.kernels().name
    }

    pub fn classifier(&mut self, model: &str) -> &mut Classifier<'static, 'static> {
        &mut self.classifiers.iter_mut().find(|(n, _)| *n == model).expect("model").1
    }

    pub fn answer(&mut self, case: &Case) -> String {
        let c = self.classifier(case.model);
        if case.image {
            let image: &[u8; 784] = case.input.as_slice().try_into().expect("784 bytes");
            return canonical(&FrameOutcome::Digit(c.classify_image(image).expect("classify_image")));
        }
        let frame = Frame::new(&case.input, case.format, case.width, case.height, case.stride).expect("frame");
        let rotation = Rotation::from_degrees(case.rotation).expect("rotation");
        let opts = Options { rotation, roi: case.roi, ..Options::DEFAULT };
        canonical(&c.classify_frame(&frame, &opts).expect("classify_frame"))
    }
}

/// Writes `inputs.bin` (every input, back to back) and `cases.tsv`: one row per case,
/// `id model kind offset len width height stride format rotation roi` then the expected
/// canonical answer; `roi` is `left,top,width,height` or `-`.
pub fn write(dir: &Path, cases: &[Case], reference: &mut Reference) -> std::io::Result<()> {
    let mut blob = Vec::new();
    let mut rows = String::new();
    for case in cases {
        let roi = case.roi.map_or("-".into(), |r| format!("{},{},{},{}", r.x, r.y, r.width, r.height));
        let kind = if case.image { "image" } else { "frame" };
        rows += &format!(
            "{}\t{}\t{kind}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{roi}\t{}\n",
            case.id,
            case.model,
            blob.len(),
            case.input.len(),
            case.width,
            case.height,
            case.stride,
            format_name(case.format),
            case.rotation,
            reference.answer(case)
        );
        blob.extend_from_slice(&case.input);
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("inputs.bin"), blob)?;
    std::fs::write(dir.join("cases.tsv"), rows)
}
