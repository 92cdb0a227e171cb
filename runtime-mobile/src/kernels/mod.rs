//! Compute kernels, separated from graph/planning code (the tract-linalg split): the engine only
//! calls through a [`Kernels`] table, so SIMD implementations (AVX2, NEON, Cortex-M DSP) slot in
//! as new tables that must be bit-exact with [`scalar::KERNELS`]. Integer arithmetic makes
//! "bit-exact" achievable: wrapping i32 sums are order-independent.

pub mod scalar;

/// A set of kernel implementations.
pub struct Kernels {
    /// Human-readable name ("scalar", later "avx2", "neon"...).
    pub name: &'static str,
    /// Matrix-vector product: for each `r < out.len()`,
    /// `out[r] = sum_k w[r * x.len() + k] * x[k]` in wrapping i32 arithmetic.
    /// Callers guarantee `w.len() == out.len() * x.len()` and `x.len() > 0`.
    /// Conv uses it with one im2col patch as `x` and all output channels' weights as `w`.
    pub matvec_i8: fn(w: &[i8], x: &[i8], out: &mut [i32]),
    /// Row sums: `out[r] = sum_k w[r * k_len + k]` (wrapping), used to fold the input zero point.
    pub row_sums_i8: fn(w: &[i8], k_len: usize, out: &mut [i32]),
}

/// The kernels to use on this build. Today always the scalar reference; SIMD tables will be
/// chosen here by `cfg(target_feature)` (no_std has no runtime feature detection).
pub fn best() -> &'static Kernels {
    &scalar::KERNELS
}
