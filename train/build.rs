//! With the `cuda` feature, compiles the trainer's CUDA kernels (src/cuda/kernels.cu) to PTX with
//! the same nvcc and compute capability as candle's own kernels ($NVCC or `nvcc`,
//! $CUDA_COMPUTE_CAP; scripts/build-cuda sets both).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/cuda/kernels.cu");
    println!("cargo:rerun-if-env-changed=NVCC");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let nvcc = std::env::var("NVCC").unwrap_or_else(|_| "nvcc".into());
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".into());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("train_kernels.ptx");
    let status = Command::new(&nvcc)
        .args(["--ptx", "-O3", &format!("-arch=compute_{cap}"), "src/cuda/kernels.cu", "-o"])
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("running {nvcc} to compile src/cuda/kernels.cu: {e} (use scripts/build-cuda)"));
    assert!(status.success(), "{nvcc} failed on src/cuda/kernels.cu");
}
