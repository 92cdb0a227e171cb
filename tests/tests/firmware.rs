//! The firmware under QEMU against the host: builds `firmware/mps2-an386` (its own workspace and
//! target folder), runs it on QEMU's MPS2 AN386 (Cortex-M4F) and checks every stored digit's
//! answer, Q15 confidence, scores and top 3 against runtime-mobile's `Classifier` on this host;
//! then checks the screens it wrote over semihosting (size, not blank, and pixel for pixel the
//! host's rendering of the expected answer outside the timing strip) and saves them as PNG.
//!
//! Needs `qemu-system-arm` (Debian: `apt-get install qemu-system-arm`) and the
//! `thumbv7em-none-eabihf` rustup target; fails with that hint when either is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use firmware_common::screen::{self, Framebuffer, HEIGHT, TIMING_AREA, View, WIDTH};
use runtime_mobile::classifier::IMAGE_SCRATCH_BYTES;
use runtime_mobile::{Classifier, Model, kernels};

const TARGET: &str = "thumbv7em-none-eabihf";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The tools the test needs, or a failure that says how to install them (CI never skips).
fn require_tools() {
    let qemu = Command::new("qemu-system-arm").arg("--version").output();
    assert!(
        qemu.is_ok_and(|o| o.status.success()),
        "qemu-system-arm is missing: install it (Debian/Ubuntu: apt-get install -y qemu-system-arm); \
         scripts/ci-firmware installs it in CI"
    );
    let targets = Command::new("rustup").args(["target", "list", "--installed"]).output();
    let installed = targets.map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == TARGET));
    assert!(installed.is_ok_and(|t| t), "the {TARGET} rustup target is missing: rustup target add {TARGET} thumbv6m-none-eabi");
}

/// Builds the QEMU demo in its own target folder; returns the ELF.
fn build_firmware() -> PathBuf {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("firmware-target");
    let board = repo().join("firmware/mps2-an386");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--locked", "--target", TARGET])
        .current_dir(&board)
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building firmware/mps2-an386 failed (see above)");
    target_dir.join(TARGET).join("release/mps2-an386")
}

/// Runs the ELF under QEMU in `dir` (where the screens land); returns its stdout.
fn run_on_qemu(elf: &Path, dir: &Path) -> String {
    let out = Command::new("qemu-system-arm")
        .args(["-machine", "mps2-an386", "-cpu", "cortex-m4", "-nographic"])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(elf)
        .current_dir(dir)
        .output()
        .expect("qemu-system-arm runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the firmware exited with {:?} (1: an answer differs from the host's; 101: panic)\nstdout:\n{stdout}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `digit NN label L answer C (label) confidence_q15 Q scores s0,..,s9 top c:q,c:q,c:q ticks T`
/// as the host would print it (ticks left out).
fn host_line(i: usize, label: u8, c: &runtime_mobile::Classification<'_, '_>) -> String {
    let scores: Vec<String> = c.scores.iter().map(i8::to_string).collect();
    let top: Vec<String> = c.top().iter().map(|r| format!("{}:{}", r.class, r.confidence.q15())).collect();
    format!(
        "digit {i:02} label {label} answer {} ({}) confidence_q15 {} scores {} top {}",
        c.class,
        c.label,
        c.confidence.q15(),
        scores.join(","),
        top.join(",")
    )
}

/// A P6 PPM (as the firmware writes it): width, height, RGB bytes.
fn read_ppm(path: &Path) -> (u32, u32, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = b"P6\n320 240\n255\n";
    assert!(bytes.starts_with(header), "{}: not a 320x240 P6 PPM", path.display());
    let pixels = bytes[header.len()..].to_vec();
    assert_eq!(pixels.len(), 3 * (WIDTH * HEIGHT) as usize, "{}: pixel data size", path.display());
    (WIDTH, HEIGHT, pixels)
}

/// The host's rendering of `view` as RGB bytes, rows `0..rows`.
fn render(view: &View<'_>, rows: u32) -> Vec<u8> {
    let mut fb = Box::new(Framebuffer::new());
    let Ok(()) = screen::draw(fb.as_mut(), view);
    let mut out = Vec::new();
    let mut row = [0u8; 3 * WIDTH as usize];
    for y in 0..rows {
        fb.row_rgb888(y, &mut row);
        out.extend_from_slice(&row);
    }
    out
}

#[test]
fn qemu_firmware_answers_and_screens_equal_the_hosts() {
    require_tools();
    let elf = build_firmware();
    let run_dir = tempfile::tempdir().expect("temp dir");
    let stdout = run_on_qemu(&elf, run_dir.path());

    let file = std::fs::read(repo().join("models/mnist.int8.safetensors")).expect("the shipped model");
    let model = Model::parse(&file).expect("parses");
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut scratch = vec![0u8; IMAGE_SCRATCH_BYTES];
    let mut classifier = Classifier::new(&model, kernels::best(), &mut arena, &mut scratch).expect("classifier");
    let digits = testkit::mnist::fixture_digits("mnist");

    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("digit ")).collect();
    assert_eq!(lines.len(), digits.len(), "one line per stored digit; stdout:\n{stdout}");
    let png_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("firmware-screens");
    std::fs::create_dir_all(&png_dir).expect("png folder");
    let mut screens = 0;
    for (i, ((image, label), line)) in digits.iter().zip(&lines).enumerate() {
        let c = classifier.classify_image(image).expect("host classification");
        let expected = host_line(i, label, &c);
        let got = line.split(" ticks ").next().unwrap_or(line);
        assert_eq!(got, expected, "digit {i}: the firmware's answer differs from the host's");

        let ppm = run_dir.path().join(format!("screen-{i:02}.ppm"));
        if !ppm.exists() {
            continue;
        }
        screens += 1;
        let (w, h, pixels) = read_ppm(&ppm);
        let distinct: std::collections::HashSet<&[u8]> = pixels.chunks_exact(3).collect();
        assert!(distinct.len() > 8, "screen {i} is blank ({} colours)", distinct.len());
        let png = png_dir.join(format!("screen-{i:02}.png"));
        image::RgbImage::from_raw(w, h, pixels.clone()).expect("RGB buffer").save(&png).expect("PNG written");

        // Outside the timing strip the screen depends only on the digit and the answer.
        let rows = TIMING_AREA.top_left.y as u32;
        let view = View { index: Some(i), label: Some(label), ..View::new(image, &c) };
        let reference = render(&view, rows);
        let n = reference.len();
        assert!(pixels[..n] == reference[..], "screen {i}: differs from the host's rendering of answer {}", c.label);
        // And the comparison can fail: the runner-up drawn as the answer differs.
        let other = c.top()[1];
        let wrong = View { answer: other.label, confidence: other.confidence, ..view };
        assert!(pixels[..n] != render(&wrong, rows)[..], "screen {i}: a wrong answer renders the same");
    }
    assert!(screens >= 1, "the firmware wrote no screen-NN.ppm to {}", run_dir.path().display());
    eprintln!("{screens} screens checked; PNGs in {}", png_dir.display());
}
