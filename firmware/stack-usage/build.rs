//! Prepares the firmware's data on the host, with the same engine the firmware runs:
//! - picks the board's memory map (`boards/*.x` -> `memory.x` in OUT_DIR): STACK_USAGE_BOARD, else
//!   the target's default board;
//! - reads the first `N_IMAGES` MNIST test images from `data/mnist/` or STACK_USAGE_DATA_DIR
//!   (never committed: `data` is the shared data folder), quantizes them with the model's own
//!   input table, and scores them with runtime-mobile's scalar kernels on the host;
//! - writes `inputs.bin` (int8 pixels), `scores.bin` (int8 scores per image), `labels.bin` and
//!   `consts.rs` (sizes, and the arena size the model plans) for `include!`/`include_bytes!`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use runtime_mobile::Model;
use runtime_mobile::kernels::scalar;
use runtime_mobile::preprocess::InputQuantizer;

/// How many test images the firmware checks (flash: 784 + 10 bytes each).
const N_IMAGES: usize = 20;
const MODEL: &str = "models/mnist.int8.safetensors";
/// Default folder of the MNIST files (`data` links to the shared data folder); STACK_USAGE_DATA_DIR
/// overrides it.
const DATA_DIR: &str = "data/mnist";
const IMAGES: &str = "t10k-images-idx3-ubyte.gz";
const LABELS: &str = "t10k-labels-idx1-ubyte.gz";

fn fail(msg: &str) -> ! {
    eprintln!("error: stack-usage build script: {msg}");
    std::process::exit(1);
}

fn main() {
    let manifest = PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| fail("CARGO_MANIFEST_DIR unset")),
    );
    let repo = manifest.join("../..");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| fail("OUT_DIR unset")));
    let target = std::env::var("TARGET").unwrap_or_default();

    for p in ["build.rs", "boards"] {
        println!("cargo:rerun-if-changed={p}");
    }
    println!("cargo:rerun-if-env-changed=STACK_USAGE_DATA_DIR");
    let data = std::env::var_os("STACK_USAGE_DATA_DIR").map_or_else(|| repo.join(DATA_DIR), PathBuf::from);
    println!("cargo:rerun-if-changed={}", repo.join(MODEL).display());
    for f in [IMAGES, LABELS] {
        println!("cargo:rerun-if-changed={}", data.join(f).display());
    }

    // The board (QEMU machine) whose memory map to link for: STACK_USAGE_BOARD, else the
    // target's default. Its runner must match (.cargo/config.toml, or scripts/stack-usage's
    // CARGO_TARGET_<TRIPLE>_RUNNER). A `memory.x` in the crate root would shadow the one written
    // here (cortex-m-rt's search order), hence the boards/ folder.
    println!("cargo:rerun-if-env-changed=STACK_USAGE_BOARD");
    let board = std::env::var("STACK_USAGE_BOARD").unwrap_or_else(|_| {
        match target.as_str() {
            "thumbv7em-none-eabihf" => "mps2-an386",
            // QEMU's only Cortex-M0 machine, 16 KiB of RAM: the small part the engine targets.
            "thumbv6m-none-eabi" => "microbit",
            other => fail(&format!(
                "unsupported target '{other}': build with --target thumbv7em-none-eabihf or \
                 --target thumbv6m-none-eabi"
            )),
        }
        .to_string()
    });
    let memory_file = match board.as_str() {
        "mps2-an385" | "mps2-an386" => "mps2.x",
        "microbit" => "microbit.x",
        other => fail(&format!("STACK_USAGE_BOARD={other}: expected mps2-an385, mps2-an386 or microbit")),
    };
    if board == "microbit" && target != "thumbv6m-none-eabi" {
        fail("the micro:bit is a Cortex-M0: build it with --target thumbv6m-none-eabi");
    }
    let memory = fs::read(manifest.join("boards").join(memory_file))
        .unwrap_or_else(|e| fail(&format!("boards/{memory_file}: {e}")));
    write(&out.join("memory.x"), &memory);
    println!("cargo:rustc-link-search={}", out.display());

    let model_path = repo.join(MODEL);
    let file = fs::read(&model_path).unwrap_or_else(|e| fail(&format!("{}: {e}", model_path.display())));
    let model = Model::parse(&file).unwrap_or_else(|e| fail(&format!("{MODEL}: {e}")));
    let quantizer = InputQuantizer::new(model.input_quant())
        .unwrap_or_else(|e| fail(&format!("{MODEL}: input quantization: {e:?}")));
    let (images, dims) = read_idx(&data, IMAGES, 0x0803);
    let (labels, _) = read_idx(&data, LABELS, 0x0801);
    if dims != [28, 28] || model.input_len() != 28 * 28 {
        fail(&format!(
            "expected 28x28 images and a 784-value model input, got {dims:?} and {}",
            model.input_len()
        ));
    }
    if images.len() < N_IMAGES * 784 || labels.len() < N_IMAGES {
        fail(&format!("{IMAGES} or {LABELS} holds fewer than {N_IMAGES} items"));
    }

    let mut inputs = Vec::with_capacity(N_IMAGES * 784);
    let mut scores = Vec::new();
    let mut arena = vec![0u8; model.arena_bytes()];
    for img in images.chunks_exact(784).take(N_IMAGES) {
        let q: Vec<i8> = img.iter().map(|&p| quantizer.table()[p as usize]).collect();
        let p = model
            .run_with(&scalar::KERNELS, &q, &mut arena)
            .unwrap_or_else(|e| fail(&format!("host inference: {e}")));
        scores.extend(p.scores.iter().map(|&s| s as u8));
        inputs.extend(q.iter().map(|&v| v as u8));
    }
    write(&out.join("inputs.bin"), &inputs);
    write(&out.join("scores.bin"), &scores);
    write(&out.join("labels.bin"), &labels[..N_IMAGES]);
    let consts = format!(
        "/// Test images embedded (the first of MNIST's t10k set).\n\
         pub const N_IMAGES: usize = {N_IMAGES};\n\
         /// int8 values per image.\n\
         pub const INPUT_LEN: usize = {};\n\
         /// Scores per image.\n\
         pub const N_CLASSES: usize = {};\n\
         /// `Model::arena_bytes()` of the embedded model, as planned on the host.\n\
         pub const ARENA_BYTES: usize = {};\n\
         /// The Rust target and the QEMU board its memory map is for.\n\
         pub const TARGET: &str = {target:?};\n\
         pub const BOARD: &str = {board:?};\n",
        model.input_len(),
        model.num_classes(),
        model.arena_bytes(),
    );
    write(&out.join("consts.rs"), consts.as_bytes());
}

fn write(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
}

/// Reads a gzipped IDX file with the given magic; returns the payload and the dimensions after
/// the first (item count).
fn read_idx(dir: &Path, name: &str, magic: u32) -> (Vec<u8>, Vec<usize>) {
    let path = dir.join(name);
    let gz = fs::read(&path).unwrap_or_else(|e| {
        fail(&format!(
            "cannot read {} ({e}). The MNIST test set must be present as gzip IDX files in the \
             repository's data/mnist/ (`data` links to ../shared/data; with web access \
             `cargo run -p train --release -- --download` fetches them, then trains), or in \
             the folder STACK_USAGE_DATA_DIR names",
            path.display()
        ))
    });
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| fail(&format!("{}: not a gzip file: {e}", path.display())));
    let be = |i: usize| -> usize {
        let b = raw
            .get(i * 4..i * 4 + 4)
            .unwrap_or_else(|| fail(&format!("{}: truncated header", path.display())));
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
    let payload = raw
        .get(start..start + n * item)
        .unwrap_or_else(|| fail(&format!("{}: truncated data", path.display())));
    (payload.to_vec(), dims)
}
