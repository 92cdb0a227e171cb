//! End-to-end tests of the `classify` binary with small models built by runtime-mobile's test
//! fixture builder (the real MNIST model comes from the export crate later).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use runtime_mobile::preprocess::{self, Frame, InputQuantizer, OUT_PIXELS, Options, PixelFormat};
use runtime_mobile::{Model, Shape};
use testkit::Build;
use testkit::{MNIST, Rng, T, random_desc, reference};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime-mobile/tests/images")
}

/// A random-weight model with the MNIST architecture and labels "0".."9".
fn mnist_desc() -> testkit::Desc {
    let mut d = random_desc(&mut Rng(42), Shape::Chw(1, 28, 28), &MNIST, false);
    d.labels = (0..10).map(|i| i.to_string()).collect();
    d
}

fn classify(args: &[&std::ffi::OsStr], cwd: &Path) -> (i32, String, String) {
    let Output { status, stdout, stderr } =
        Command::new(env!("CARGO_BIN_EXE_classify")).args(args).current_dir(cwd).output().unwrap();
    (status.code().unwrap_or(-1), String::from_utf8(stdout).unwrap(), String::from_utf8(stderr).unwrap())
}

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

/// What the CLI should answer for `path`, computed independently: decode, preprocess, and the
/// naive reference implementation of the model.
fn expected(desc: &testkit::Desc, model: &Model<'_>, path: &Path) -> (usize, i8) {
    let img = image::open(path).unwrap();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (data, format) = if img.color().has_color() || img.color().has_alpha() {
        (img.to_rgba8().into_raw(), PixelFormat::Rgba8888)
    } else {
        (img.to_luma8().into_raw(), PixelFormat::Gray8)
    };
    let frame = Frame::new(&data, format, w, h, w * format.bytes_per_pixel()).unwrap();
    let mut pixels = [0u8; OUT_PIXELS];
    preprocess::preprocess(&frame, &Options::DEFAULT, &mut vec![0; preprocess::SCRATCH_BYTES], &mut pixels).unwrap();
    let mut input = [0i8; OUT_PIXELS];
    InputQuantizer::new(model.input_quant()).unwrap().quantize(&pixels, &mut input);
    let scores = reference(desc, &input);
    let best = *scores.iter().max().unwrap();
    (scores.iter().position(|&s| s == best).unwrap(), best)
}

/// Parses `IMAGE: LABEL (int8 score S, P%)`.
fn parse_line(line: &str) -> (String, String, i8, f64) {
    let (path, rest) = line.rsplit_once(": ").unwrap_or_else(|| panic!("bad line {line:?}"));
    let (label, rest) = rest.split_once(" (int8 score ").unwrap_or_else(|| panic!("bad line {line:?}"));
    let (score, rest) = rest.split_once(", ").unwrap();
    let pct = rest.strip_suffix("%)").unwrap_or_else(|| panic!("bad line {line:?}"));
    (path.to_string(), label.to_string(), score.parse().unwrap(), pct.parse().unwrap())
}

#[test]
fn help_explains_usage() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = classify(&[os("--help")], dir.path());
    assert_eq!(code, 0);
    for s in ["IMAGE", "--model", "models/mnist.int8.safetensors", "--debug", "int8 score", "Exit status"] {
        assert!(out.contains(s), "help lacks {s:?}:\n{out}");
    }
    // No images: usage error.
    let (code, _, err) = classify(&[], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("IMAGE"), "{err}");
}

#[test]
fn classifies_fixtures_like_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let desc = mnist_desc();
    let file = desc.build();
    let model_path = dir.path().join("m.safetensors");
    std::fs::write(&model_path, &file).unwrap();
    let model = Model::parse(&file).unwrap();

    let mut images: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg"))
        .collect();
    images.sort();
    assert!(images.len() >= 10);
    let mut args = vec![os("--model"), model_path.as_os_str()];
    args.extend(images.iter().map(|p| p.as_os_str()));
    let (code, out, err) = classify(&args, dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    // Each answer line is followed by its indented top-3 line, led by the answer itself.
    let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with("  ")).collect();
    let tops: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("  top 3: ")).collect();
    assert_eq!(lines.len(), images.len(), "{out}");
    assert_eq!(tops.len(), images.len(), "{out}");
    for (line, top) in lines.iter().zip(&tops) {
        let (_, label, _, pct) = parse_line(line);
        assert_eq!(top.split(", ").count(), 3, "{top}");
        assert!(top.starts_with(&format!("{label} {pct:.1}%")), "{line} / {top}");
    }
    for (line, img) in lines.iter().zip(&images) {
        let (path, label, score, pct) = parse_line(line);
        assert_eq!(path, img.display().to_string());
        let (class, best) = expected(&desc, &model, img);
        assert_eq!(label, class.to_string(), "{line}");
        assert_eq!(score, best, "{line}");
        assert!(pct > 100.0 / 10.0 - 0.05 && pct <= 100.0, "{line}: the winner has at least the mean probability");
    }
}

#[test]
fn debug_prints_ascii_art_and_writes_input_png() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.safetensors");
    std::fs::write(&model_path, mnist_desc().build()).unwrap();
    let img = dir.path().join("seven.jpg");
    std::fs::copy(fixtures().join("digit7_mnist00000_chalkboard.png"), &img).unwrap(); // content sniffed, not the extension
    let (code, out, err) = classify(&[os("--debug"), os("--model"), model_path.as_os_str(), img.as_os_str()], dir.path());
    assert_eq!(code, 0, "{err}");
    println!("{out}");
    let written = dir.path().join("seven.input.png");
    assert!(out.contains("input written to") && out.contains("seven.input.png"), "{out}");
    assert!(out.contains("light ink"), "chalkboard is light on dark:\n{out}");
    let art: Vec<&str> = out.lines().filter(|l| l.starts_with("  |")).collect();
    assert_eq!(art.len(), 28, "{out}");
    assert!(art.iter().all(|l| l.chars().count() == 3 + 56 + 1));
    assert!(art.iter().any(|l| l.contains('@')), "{out}");
    let png = image::open(&written).unwrap().to_luma8();
    assert_eq!(png.dimensions(), (28, 28));
    // The PNG is the preprocessed input: its centre of mass is at the MNIST centre.
    let (mut m, mut mx) = (0.0, 0.0);
    for (x, _, p) in png.enumerate_pixels() {
        m += p.0[0] as f64;
        mx += p.0[0] as f64 * (x as f64 + 0.5);
    }
    assert!((mx / m - 14.5).abs() < 0.6);
}

#[test]
fn image_errors_are_reported_and_others_still_classified() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("m.safetensors");
    std::fs::write(&model_path, mnist_desc().build()).unwrap();
    let blank = dir.path().join("blank.png");
    image::GrayImage::from_pixel(50, 40, image::Luma([230])).save(&blank).unwrap();
    let text = dir.path().join("notes.png");
    std::fs::write(&text, "not an image").unwrap();
    let missing = dir.path().join("missing.png");
    let good = fixtures().join("digit3_font_mono.png");
    let (code, out, err) = classify(
        &[os("--model"), model_path.as_os_str(), blank.as_os_str(), text.as_os_str(), missing.as_os_str(), good.as_os_str()],
        dir.path(),
    );
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(out.lines().filter(|l| !l.starts_with("  ")).count(), 1, "{out}");
    assert!(out.starts_with(&format!("{}: ", good.display())), "{out}");
    let errs: Vec<&str> = err.lines().collect();
    assert_eq!(errs.len(), 3, "{err}");
    assert!(errs[0].starts_with("error: ") && errs[0].contains("blank.png") && errs[0].contains("no digit found"), "{err}");
    assert!(errs[1].contains("notes.png") && errs[1].contains("cannot decode"), "{err}");
    assert!(errs[2].contains("missing.png") && errs[2].contains("cannot open"), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn model_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let img = fixtures().join("digit0_font_sans.png");
    // Default path, absent.
    let (code, out, err) = classify(&[img.as_os_str()], dir.path());
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("cannot read model models/mnist.int8.safetensors"), "{err}");
    // Not a model.
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, b"\x10\0\0\0\0\0\0\0{\"a\": 1}        ").unwrap();
    let (code, _, err) = classify(&[os("--model"), bad.as_os_str(), img.as_os_str()], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("invalid model file"), "{err}");
    // A valid model that does not take 28x28 images.
    let flat = random_desc(&mut Rng(3), Shape::Flat(20), &[T::Dense { out: 4, relu: false }], false);
    let wrong = dir.path().join("wrong.safetensors");
    std::fs::write(&wrong, flat.build()).unwrap();
    let (code, _, err) = classify(&[os("--model"), wrong.as_os_str(), img.as_os_str()], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("input shape [20]"), "{err}");
    assert!(!err.contains("panicked"));
}
