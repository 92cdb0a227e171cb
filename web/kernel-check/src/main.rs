//! `kernel-check [DATA_DIR [N]]`: runs the wasm `simd128` kernel table against the scalar reference,
//! inside a wasm engine (Node's WASI; `web/test/run-wasi.mjs`, from scripts/ci-web): random
//! cases of every kernel at many shapes (edge values included), then both committed models on
//! the committed digits (or on the first N, default all, of the test splits in
//! `DATA_DIR/<dataset>/` when given),
//! comparing every int8 score. Prints the counts; exits 1 on any difference.
//!
//! Only meaningful on wasm32 (built for `wasm32-wasip1`); elsewhere it says so and fails.

fn main() -> std::process::ExitCode {
    #[cfg(target_arch = "wasm32")]
    {
        match check::run(std::env::args().nth(1), std::env::args().nth(2)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kernel-check: {e}");
                std::process::ExitCode::FAILURE
            }
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        eprintln!(
            "kernel-check checks the wasm32 simd128 kernels: build it for wasm32-wasip1 and run it with node web/test/run-wasi.mjs"
        );
        std::process::ExitCode::FAILURE
    }
}

#[cfg(target_arch = "wasm32")]
mod check;
