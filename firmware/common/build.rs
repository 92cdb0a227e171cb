//! Prepares what the firmware embeds, on the host, with the same classifier the boards run:
//! - `digits.bin`: the stored digits, the repository's one committed set of test digits
//!   (`runtime-mobile/tests/fixtures/digits`: the first 100 images of MNIST's t10k split, the
//!   rule documented there; the first 20 of them on thumbv6m, for the micro:bit's 256 KB of
//!   flash), raw 28x28 `u8` pixels, digit after digit;
//! - `expected.rs`: `N_DIGITS`, `ARENA_BYTES` (`Model::arena_bytes()` of the embedded model:
//!   the static arena's size) and `EXPECTED`, each digit's label and the host's answer: class,
//!   Q15 confidence, int8 scores and top 3, from `runtime_mobile::Classifier::classify_image`
//!   (scalar kernels; every kernel table gives the same bits).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use runtime_mobile::kernels::scalar;
use runtime_mobile::{Classifier, Model, classifier::IMAGE_SCRATCH_BYTES};

const MODEL: &str = "models/mnist.int8.safetensors";
/// Digits stored for thumbv6m: its board, the micro:bit, has 256 KB of flash, of which the model
/// takes 123 KB; the first 20 of the set fit beside the code (all 100 take 78 KB).
const V6M_DIGITS: usize = 20;

fn fail(msg: &str) -> ! {
    eprintln!("error: firmware-common build script: {msg}");
    std::process::exit(1);
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| fail("CARGO_MANIFEST_DIR unset")));
    let repo = manifest.join("../..");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| fail("OUT_DIR unset")));
    let model_path = repo.join(MODEL);
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", model_path.display());
    println!("cargo:rerun-if-changed={}", testkit::mnist::fixture_digits_dir().display());

    let file = fs::read(&model_path).unwrap_or_else(|e| fail(&format!("{}: {e}", model_path.display())));
    let model = Model::parse(&file).unwrap_or_else(|e| fail(&format!("{MODEL}: {e}")));
    let mut digits = testkit::mnist::fixture_digits("mnist");
    if std::env::var("TARGET").is_ok_and(|t| t == "thumbv6m-none-eabi") {
        digits = digits.first(V6M_DIGITS);
    }

    let mut arena = vec![0u8; model.arena_bytes()];
    let mut scratch = vec![0u8; IMAGE_SCRATCH_BYTES];
    let mut classifier = Classifier::new(&model, &scalar::KERNELS, &mut arena, &mut scratch)
        .unwrap_or_else(|e| fail(&format!("Classifier::new: {e}")));
    let mut pixels = Vec::with_capacity(digits.len() * 784);
    let mut rust = String::new();
    let n = digits.len();
    let _ = writeln!(rust, "/// Digits stored in flash (`digits.bin`).\npub const N_DIGITS: usize = {n};");
    let _ = writeln!(
        rust,
        "/// `Model::arena_bytes()` of the embedded model, planned on the host: the static arena.\n\
         pub const ARENA_BYTES: usize = {};",
        model.arena_bytes()
    );
    let _ = writeln!(rust, "/// Classes (scores per digit).\npub const N_CLASSES: usize = {};", model.num_classes());
    let _ = writeln!(
        rust,
        "/// Each stored digit's label and the host classifier's answer.\npub static EXPECTED: [Expected; N_DIGITS] = ["
    );
    for (image, label) in digits.iter() {
        pixels.extend_from_slice(image);
        let c = classifier.classify_image(image).unwrap_or_else(|e| fail(&format!("host classify_image: {e}")));
        let top: Vec<String> = c.top().iter().map(|r| format!("({}, {})", r.class, r.confidence.q15())).collect();
        if top.len() != 3 {
            fail("the model ranks fewer than 3 classes");
        }
        let _ = writeln!(
            rust,
            "    Expected {{ label: {label}, class: {}, confidence_q15: {}, scores: {:?}, top: [{}] }},",
            c.class,
            c.confidence.q15(),
            c.scores,
            top.join(", ")
        );
    }
    rust.push_str("];\n");
    write(&out.join("digits.bin"), &pixels);
    write(&out.join("expected.rs"), rust.as_bytes());
}

fn write(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
}
