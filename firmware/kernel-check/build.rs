//! Prepares the firmware's data on the host, with the same `Classifier` the firmware runs:
//! - `memory.x` (the MPS2 AN386 memory map) into OUT_DIR, on the linker's search path;
//! - the 100 committed MNIST test digits (`runtime-mobile/tests/fixtures/digits`, the first 100
//!   of the t10k set) as raw pixels, their labels, and the host's answer for each through
//!   `Classifier::classify_image` with the scalar kernels: every score, the class, the
//!   confidence and the top 3 (Q15 bits), which the firmware must reproduce exactly.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use runtime_mobile::classifier::{IMAGE_SCRATCH_BYTES, TOP_K};
use runtime_mobile::kernels::scalar;
use runtime_mobile::{Classifier, Model};

const MODEL: &str = "models/mnist.int8.safetensors";
const DIGITS: &str = "runtime-mobile/tests/fixtures/digits";
const IMAGES: &str = "mnist-first100-t10k-images-idx3-ubyte.gz";
const LABELS: &str = "mnist-first100-t10k-labels-idx1-ubyte.gz";
const PIXELS: usize = 28 * 28;

fn fail(msg: &str) -> ! {
    eprintln!("error: kernel-check build script: {msg}");
    std::process::exit(1);
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| fail("CARGO_MANIFEST_DIR unset")));
    let repo = manifest.join("../..");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| fail("OUT_DIR unset")));
    let digits = repo.join(DIGITS);
    for p in [manifest.join("build.rs"), manifest.join("memory.x"), repo.join(MODEL), digits.join(IMAGES), digits.join(LABELS)] {
        println!("cargo:rerun-if-changed={}", p.display());
    }

    let memory = fs::read(manifest.join("memory.x")).unwrap_or_else(|e| fail(&format!("memory.x: {e}")));
    write(&out.join("memory.x"), &memory);
    println!("cargo:rustc-link-search={}", out.display());

    let file = fs::read(repo.join(MODEL)).unwrap_or_else(|e| fail(&format!("{MODEL}: {e}")));
    let model = Model::parse(&file).unwrap_or_else(|e| fail(&format!("{MODEL}: {e}")));
    let (images, dims) = read_idx(&digits.join(IMAGES), 0x0803);
    let (labels, _) = read_idx(&digits.join(LABELS), 0x0801);
    if dims != [28, 28] || images.len() != labels.len() * PIXELS {
        fail(&format!("expected 28x28 images, one label each; got {dims:?}, {} labels", labels.len()));
    }
    let n_classes = model.num_classes();

    let mut arena = vec![0u8; model.arena_bytes()];
    let mut scratch = vec![0u8; IMAGE_SCRATCH_BYTES];
    let mut c = Classifier::new(&model, &scalar::KERNELS, &mut arena, &mut scratch)
        .unwrap_or_else(|e| fail(&format!("Classifier::new: {e}")));
    // One record per digit: scores (int8), class, confidence (Q15, LE), then TOP_K x (class, Q15).
    let mut expected = Vec::new();
    for img in images.chunks_exact(PIXELS) {
        let img: &[u8; PIXELS] = img.try_into().unwrap_or_else(|_| fail("image size"));
        let a = c.classify_image(img).unwrap_or_else(|e| fail(&format!("host classification: {e}")));
        if a.top().len() != TOP_K {
            fail("the model has fewer classes than the top-k");
        }
        expected.extend(a.scores.iter().map(|&s| s as u8));
        expected.push(a.class as u8);
        expected.extend(a.confidence.q15().to_le_bytes());
        for r in a.top() {
            expected.push(r.class as u8);
            expected.extend(r.confidence.q15().to_le_bytes());
        }
    }
    let n = labels.len();
    write(&out.join("digits.bin"), &images);
    write(&out.join("labels.bin"), &labels);
    write(&out.join("expected.bin"), &expected);
    let consts = format!(
        "/// Digits embedded (the first of MNIST's t10k set, as committed in {DIGITS}).\n\
         pub const N_DIGITS: usize = {n};\n\
         /// Scores per digit.\n\
         pub const N_CLASSES: usize = {n_classes};\n\
         /// Bytes of one host answer in `expected.bin`.\n\
         pub const RECORD: usize = {};\n\
         /// `Model::arena_bytes()` of the embedded model, as planned on the host.\n\
         pub const ARENA_BYTES: usize = {};\n",
        expected.len() / n.max(1),
        model.arena_bytes(),
    );
    write(&out.join("consts.rs"), consts.as_bytes());
}

fn write(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
}

/// Reads a gzipped IDX file with the given magic; returns the payload and the dimensions after
/// the first (item count).
fn read_idx(path: &Path, magic: u32) -> (Vec<u8>, Vec<usize>) {
    let gz = fs::read(path).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| fail(&format!("{}: not a gzip file: {e}", path.display())));
    let be = |i: usize| -> usize {
        let b = raw.get(i * 4..i * 4 + 4).unwrap_or_else(|| fail(&format!("{}: truncated header", path.display())));
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
    };
    if be(0) != magic as usize {
        fail(&format!("{}: IDX magic {:#x}, expected {magic:#x}", path.display(), be(0)));
    }
    let rank = (magic & 0xff) as usize;
    let n = be(1);
    let dims: Vec<usize> = (2..=rank).map(be).collect();
    let item: usize = dims.iter().product();
    let start = 4 * (rank + 1);
    let payload = raw.get(start..start + n * item).unwrap_or_else(|| fail(&format!("{}: truncated data", path.display())));
    (payload.to_vec(), dims)
}
