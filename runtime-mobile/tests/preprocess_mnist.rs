//! MNIST round trips: a test digit enlarged, inverted to dark-on-light, placed off-centre on a
//! page with a lighting gradient and noise, saved as PNG or JPEG and preprocessed back, must
//! come out close to the original 28x28 image. Also checks the committed fixtures in
//! `tests/images/` (which the lead's end-to-end test classifies) and rebuilds them on request:
//!
//! ```text
//! cargo test -p runtime-mobile --test preprocess_mnist -- --ignored regenerate_fixtures
//! ```
//! (needs `data/mnist/t10k-*-ubyte.gz`; nothing else here does).

mod preprocess_support;

use preprocess_support::*;
use runtime_mobile::preprocess::{Frame, OUT_PIXELS};

/// Largest fixture file (the lead asked for ~50 KB).
const MAX_FIXTURE_BYTES: u64 = 50 * 1024;

fn fixture_name_mnist(label: u8, idx: usize, p: &Placement) -> String {
    format!("digit{label}_mnist{idx:05}_{}.{}", p.name, if p.jpeg { "jpg" } else { "png" })
}

fn fixture_name_font(d: &FontDigit) -> String {
    format!("digit{}_font_{}.png", d.digit, d.style)
}

/// First source of each label (the fixtures' digits).
fn first_of_each_label() -> Vec<(usize, u8, [u8; OUT_PIXELS])> {
    let all = mnist_sources();
    (0..10u8).map(|l| *all.iter().find(|s| s.1 == l).unwrap()).collect()
}

struct Check {
    mad: f64,
    com: f64,
}

/// Compares a preprocessed picture with its MNIST source and with the source's own pass
/// through the pipeline.
fn check(what: &str, got: &[u8; OUT_PIXELS], src: &[u8; OUT_PIXELS], src_pipeline: &[u8; OUT_PIXELS]) -> Check {
    let c = Check { mad: mad(got, src), com: com_dist(got, src) };
    let vs_pipeline = mad(got, src_pipeline);
    println!("{what}: mad {:.1} (vs pipeline(src) {vs_pipeline:.1}), com off {:.2}", c.mad, c.com);
    assert!(c.mad < 18.0, "{what}: mad {:.1}\ngot vs source\n{}", c.mad, ascii_pair(got, src));
    assert!(vs_pipeline < 12.0, "{what}: mad vs pipeline {vs_pipeline:.1}\n{}", ascii_pair(got, src_pipeline));
    assert!(c.com < 1.0, "{what}: centre of mass {:.2} px off\n{}", c.com, ascii_pair(got, src));
    c
}

#[test]
fn mnist_through_pipeline_is_nearly_unchanged() {
    // The 28x28 originals are already MNIST-style; the pipeline re-derives box and centre.
    let mut total = 0.0;
    for (idx, label, src) in mnist_sources() {
        let got = run(&Frame::gray(&src, 28, 28).unwrap()).unwrap();
        let (m, c) = (mad(&got, &src), com_dist(&got, &src));
        println!("t10k {idx} ({label}): mad {m:.1}, com off {c:.2}");
        assert!(m < 16.0 && c < 1.0, "t10k {idx}: mad {m:.1} com {c:.2}\n{}", ascii_pair(&got, &src));
        total += m;
    }
    let mean = total / mnist_sources().len() as f64;
    println!("mean mad {mean:.2}");
    assert!(mean < 10.0);
}

#[test]
fn mnist_photographed_round_trip() {
    let placements = [PAPER, FIXTURES[3], FIXTURES[6], FIXTURES[7], FIXTURES[4]];
    let (mut sum, mut n, mut worst_com) = (0.0, 0, 0.0f64);
    for (idx, label, src) in mnist_sources() {
        let src_pipeline = run(&Frame::gray(&src, 28, 28).unwrap()).unwrap();
        for (k, p) in placements.iter().enumerate() {
            for jpeg in [false, true] {
                let p = Placement { jpeg, ..*p };
                let bytes = encode(&render(&src, &p, idx as u64 * 31 + k as u64), jpeg);
                let got = run_bytes(&bytes).unwrap_or_else(|e| panic!("t10k {idx} {}: {e}", p.name));
                let what = format!("t10k {idx} ({label}) {} {}", p.name, if jpeg { "jpeg" } else { "png" });
                let c = check(&what, &got, &src, &src_pipeline);
                sum += c.mad;
                n += 1;
                worst_com = worst_com.max(c.com);
            }
        }
    }
    println!("mean mad {:.2} over {n}, worst com {worst_com:.2}", sum / n as f64);
    assert!(sum / (n as f64) < 10.0);
}

#[test]
fn fixtures_are_complete_small_and_labelled() {
    let dir = images_dir();
    let mut names: Vec<String> = first_of_each_label()
        .iter()
        .map(|&(idx, label, _)| fixture_name_mnist(label, idx, &FIXTURES[label as usize]))
        .chain(FONT_DIGITS.iter().map(fixture_name_font))
        .collect();
    names.sort();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".png") || n.ends_with(".jpg"))
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, names, "tests/images/ is out of date: run regenerate_fixtures");
    for n in &names {
        let len = std::fs::metadata(dir.join(n)).unwrap().len();
        assert!(len <= MAX_FIXTURE_BYTES, "{n}: {len} bytes");
        let label = n.strip_prefix("digit").unwrap().as_bytes()[0];
        assert!(label.is_ascii_digit(), "{n}");
    }
}

#[test]
fn fixtures_match_generator_and_source() {
    let dir = images_dir();
    for (idx, label, src) in first_of_each_label() {
        let p = FIXTURES[label as usize];
        let name = fixture_name_mnist(label, idx, &p);
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        // The committed file is what the generator makes (exactly for PNG).
        let want = render(&src, &p, idx as u64);
        let have = image::load_from_memory(&bytes).unwrap();
        let d = mad(have.as_bytes(), want.as_bytes());
        assert!(if p.jpeg { d < 3.0 } else { d == 0.0 }, "{name}: differs from generator by {d:.2}");
        let src_pipeline = run(&Frame::gray(&src, 28, 28).unwrap()).unwrap();
        check(&name, &run_bytes(&bytes).unwrap(), &src, &src_pipeline);
    }
    for d in &FONT_DIGITS {
        let name = fixture_name_font(d);
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        let want = render_font_digit(d, d.digit as u64);
        assert_eq!(image::load_from_memory(&bytes).unwrap().as_bytes(), want.as_bytes(), "{name}");
        let got = run_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (cx, cy) = com(&got);
        assert!((cx - 14.5).abs() < 0.6 && (cy - 14.5).abs() < 0.6, "{name}: com ({cx:.2}, {cy:.2})");
        let ink = got.iter().filter(|&&v| v >= 128).count();
        assert!((30..400).contains(&ink), "{name}: {ink} ink pixels");
    }
}

/// Rebuilds `tests/images/` from the MNIST test set and the DejaVu fonts.
#[test]
#[ignore = "writes tests/images/; run explicitly after changing the generator"]
fn regenerate_fixtures() {
    let test = testkit::mnist::test_split("mnist");
    let (images, labels) = (&test.images, &test.labels);
    let dir = images_dir();
    let src_dir = dir.join("mnist28");
    std::fs::create_dir_all(&src_dir).unwrap();
    for e in std::fs::read_dir(&dir).unwrap().chain(std::fs::read_dir(&src_dir).unwrap()) {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "png" || x == "jpg") {
            std::fs::remove_file(p).unwrap();
        }
    }
    // Sources: the first two test images of each digit.
    for label in 0..10u8 {
        for idx in labels.iter().enumerate().filter(|(_, l)| **l == label).map(|(i, _)| i).take(2) {
            let px = images[idx * OUT_PIXELS..][..OUT_PIXELS].to_vec();
            image::GrayImage::from_raw(28, 28, px)
                .unwrap()
                .save(src_dir.join(format!("t10k-{idx:05}_digit{label}.png")))
                .unwrap();
        }
    }
    for (idx, label, src) in first_of_each_label() {
        let p = FIXTURES[label as usize];
        std::fs::write(dir.join(fixture_name_mnist(label, idx, &p)), encode(&render(&src, &p, idx as u64), p.jpeg)).unwrap();
    }
    for d in &FONT_DIGITS {
        std::fs::write(dir.join(fixture_name_font(d)), encode(&render_font_digit(d, d.digit as u64), false)).unwrap();
    }
}
