//! The model's hot operations. Each takes and returns candle tensors and supports backprop.
//!
//! On CPU with f32 tensors they run as custom ops (`conv`, `pool`, `fused`), parallel over
//! fixed chunks of images, deterministic bit for bit. The fused conv + ReLU + pool (both of the
//! model's conv layers) computes its forward with a direct AVX2 convolution (`direct`) and its
//! backward from the non-zeros of the pre-activation gradient only, at most a quarter of it
//! behind the pool (`sparse`); the plain conv, and the fused one on CPUs without AVX2 + FMA or
//! on output widths that are not a multiple of 8, use im2col + the `gemm` crate. Elsewhere
//! (CUDA, other dtypes) they fall back to candle's stock ops so they stay correct everywhere.
//!
//! Max-pool gradient semantics differ from candle 0.11.1's stock `max_pool2d`, whose backward
//! scales the gradient by 1/4 for a unique maximum; the fast ops route the full gradient to the
//! first maximum, as PyTorch does (details in `pool`). The stock fallback keeps candle's.

mod conv;
mod direct;
mod fused;
mod gemm;
mod im2col;
mod pool;
mod scratch;
mod sparse;
#[cfg(test)]
mod tests;

use candle_core::{CpuStorage, DType, Layout, Result, Storage, Tensor, bail};

/// Valid (no padding), stride-1 2-D convolution with bias.
/// `x`: [N, C_in, H, W], `w`: [C_out, C_in, K, K], `b`: \[C_out\] -> [N, C_out, H-K+1, W-K+1].
pub fn conv2d(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    if !fast_path(&[x, w, b]) {
        return stock_conv2d(x, w, b);
    }
    x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, conv::Conv2d::default())
}

/// 2x2 max pooling with stride 2. `x`: [N, C, H, W] -> [N, C, H/2, W/2].
pub fn max_pool2x2(x: &Tensor) -> Result<Tensor> {
    if !fast_path(&[x]) {
        return x.max_pool2d(2);
    }
    x.contiguous()?.apply_op1(pool::MaxPool2x2::default())
}

/// conv2d (valid, stride 1) + bias + ReLU + 2x2 max-pool, fused.
/// `x`: [N, C_in, H, W], `w`: [C_out, C_in, K, K], `b`: \[C_out\]
/// -> [N, C_out, (H-K+1)/2, (W-K+1)/2].
pub fn conv2d_relu_maxpool2(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    if !fast_path(&[x, w, b]) {
        return stock_conv2d(x, w, b)?.relu()?.max_pool2d(2);
    }
    x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, fused::ConvReluPool::default())
}

fn stock_conv2d(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    let y = x.conv2d(w, 0, 1, 1, 1)?;
    y.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?)
}

/// Whether the AVX2 + FMA kernels can run on this CPU (checked once by std, then cached).
fn simd() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The custom ops implement CPU f32 only.
fn fast_path(ts: &[&Tensor]) -> bool {
    ts.iter().all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

/// The f32 data of a contiguous CPU storage (the public functions make inputs contiguous).
fn cpu_slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let Some((start, end)) = l.contiguous_offsets() else { bail!("fast ops: non-contiguous input") };
    Ok(&s.as_slice::<f32>()?[start..end])
}

/// Runs `f` on a CPU f32 tensor's data (made contiguous first: gradients are often broadcast).
fn with_cpu_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => Ok(f(cpu_slice(s, layout)?)),
        _ => bail!("fast ops: expected a CPU tensor"),
    }
}
