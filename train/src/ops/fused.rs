//! Fused conv2d + bias + ReLU + 2x2 max-pool on CPU f32.
//!
//! Fusing means the `[N, C_out, OH, OW]` activation is never materialised as a tensor: the
//! pool runs on the GEMM output while it is hot, and only the pooled result plus one `u8` per
//! pooled element (which window element won, or [`NO_GRAD`] if ReLU clipped it) is kept.
//! The backward pass lists the non-zeros of the pre-activation gradient through that index
//! (at most one per window) and runs sparse kernels on them instead of dense GEMMs (`sparse`).
//!
//! Semantics: the gradient goes to the first maximum of each window (PyTorch's choice) and
//! only if that pre-activation is > 0 (ReLU's derivative at 0 taken as 0, as in PyTorch).

use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::conv::{self, ConvGeom, FwdChunk};
use super::pool::argmax4;
use super::scratch::Buf;
use super::{cpu_slice, sparse, with_cpu_slice};

/// Marks a window whose maximum pre-activation was <= 0: ReLU passes no gradient.
pub const NO_GRAD: u8 = u8::MAX;

#[derive(Default)]
pub struct ConvReluPool {
    /// Per chunk: the argmax (or [`NO_GRAD`]) of each pooled element.
    saved: OnceLock<Vec<FwdChunk<Vec<u8>>>>,
}

fn pooled_dims(g: &ConvGeom) -> (usize, usize) {
    (g.oh / 2, g.ow / 2)
}

/// Bias + ReLU + 2x2 max-pool of one row of windows: window `j` covers `top[2j..2j + 2]` and
/// `bot[2j..2j + 2]`; writes its pooled value to `out[j]` and its argmax (or [`NO_GRAD`]) to
/// `am[j]`. `simd` (AVX2 + FMA checked by the caller, see `ops::simd`) takes 8 and 4 windows
/// at a time; the results are the same bits either way (`pool_row_avx2_is_bit_identical`).
fn pool_row(top: &[f32], bot: &[f32], bias: f32, out: &mut [f32], am: &mut [u8], simd: bool) {
    // SAFETY: `simd` is only true on CPUs with AVX2 (see `ops::simd`), the kernel's only
    // requirement.
    #[cfg(target_arch = "x86_64")]
    let done = if simd { unsafe { avx2::pool_row(top, bot, bias, out, am) } } else { 0 };
    #[cfg(not(target_arch = "x86_64"))]
    let done = {
        let _ = simd;
        0
    };
    pool_row_scalar(&top[2 * done..], &bot[2 * done..], bias, &mut out[done..], &mut am[done..]);
}

fn pool_row_scalar(top: &[f32], bot: &[f32], bias: f32, out: &mut [f32], am: &mut [u8]) {
    let windows = top.as_chunks::<2>().0.iter().zip(bot.as_chunks::<2>().0);
    for ((o, a), (t, b)) in out.iter_mut().zip(am.iter_mut()).zip(windows) {
        let (m, i) = argmax4([t[0] + bias, t[1] + bias, b[0] + bias, b[1] + bias]);
        let pass = m > 0.0;
        *o = if pass { m } else { 0.0 };
        *a = if pass { i } else { NO_GRAD };
    }
}

/// The pooling epilogue 8 (then 4) windows per step, with the scalar code's exact semantics:
/// the same f32 bias additions, strict `>` comparisons in window order (first maximum wins,
/// NaN never wins), `> 0` for ReLU and `+0.0` for clipped windows.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::NO_GRAD;

    /// Pools the first `8 * a + 4 * b` windows of the row (as many as fit) and returns that count.
    #[target_feature(enable = "avx2")]
    pub fn pool_row(top: &[f32], bot: &[f32], bias: f32, out: &mut [f32], am: &mut [u8]) -> usize {
        let n = out.len().min(am.len()).min(top.len() / 2).min(bot.len() / 2);
        let bias8 = _mm256_set1_ps(bias);
        let mut j = 0;
        while j + 8 <= n {
            // SAFETY: reads `top`/`bot[2j..2j + 16]` (`2j + 16 <= 2n <= len`) and writes
            // `out[j..j + 8]` (`j + 8 <= n <= out.len()`).
            let idx = unsafe {
                let (t0, t1) = (_mm256_loadu_ps(top.as_ptr().add(2 * j)), _mm256_loadu_ps(top.as_ptr().add(2 * j + 8)));
                let (b0, b1) = (_mm256_loadu_ps(bot.as_ptr().add(2 * j)), _mm256_loadu_ps(bot.as_ptr().add(2 * j + 8)));
                let (te, to) = deinterleave(t0, t1);
                let (be, bo) = deinterleave(b0, b1);
                let (m, idx) = argmax(
                    _mm256_add_ps(te, bias8),
                    _mm256_add_ps(to, bias8),
                    _mm256_add_ps(be, bias8),
                    _mm256_add_ps(bo, bias8),
                );
                _mm256_storeu_ps(out.as_mut_ptr().add(j), m);
                idx
            };
            let mut lanes = [0i32; 8];
            // SAFETY: writes 8 i32 to `lanes`, which holds 8.
            unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), idx) };
            for (a, l) in am[j..j + 8].iter_mut().zip(lanes) {
                *a = l as u8;
            }
            j += 8;
        }
        if j + 4 <= n {
            // SAFETY: reads `top`/`bot[2j..2j + 8]` (`2j + 8 <= 2n <= len`) and writes
            // `out[j..j + 4]` (`j + 4 <= n`).
            let idx = unsafe {
                let bias4 = _mm_set1_ps(bias);
                let (t0, t1) = (_mm_loadu_ps(top.as_ptr().add(2 * j)), _mm_loadu_ps(top.as_ptr().add(2 * j + 4)));
                let (b0, b1) = (_mm_loadu_ps(bot.as_ptr().add(2 * j)), _mm_loadu_ps(bot.as_ptr().add(2 * j + 4)));
                let even = |a, b| _mm_shuffle_ps::<0b10_00_10_00>(a, b);
                let odd = |a, b| _mm_shuffle_ps::<0b11_01_11_01>(a, b);
                let v = [even(t0, t1), odd(t0, t1), even(b0, b1), odd(b0, b1)].map(|v| _mm_add_ps(v, bias4));
                let (mut best, mut idx) = (v[0], _mm_setzero_si128());
                for (i, x) in [(1, v[1]), (2, v[2]), (3, v[3])] {
                    let gt = _mm_cmp_ps::<_CMP_GT_OQ>(x, best);
                    best = _mm_blendv_ps(best, x, gt);
                    idx = _mm_blendv_epi8(idx, _mm_set1_epi32(i), _mm_castps_si128(gt));
                }
                let pass = _mm_cmp_ps::<_CMP_GT_OQ>(best, _mm_setzero_ps());
                _mm_storeu_ps(out.as_mut_ptr().add(j), _mm_and_ps(best, pass));
                _mm_blendv_epi8(_mm_set1_epi32(NO_GRAD as i32), idx, _mm_castps_si128(pass))
            };
            let mut lanes = [0i32; 4];
            // SAFETY: writes 4 i32 to `lanes`, which holds 4.
            unsafe { _mm_storeu_si128(lanes.as_mut_ptr().cast(), idx) };
            for (a, l) in am[j..j + 4].iter_mut().zip(lanes) {
                *a = l as u8;
            }
            j += 4;
        }
        j
    }

    /// `([a0, a2, .., a6, b0, .., b6], [a1, a3, .., b7])`.
    #[target_feature(enable = "avx2")]
    fn deinterleave(a: __m256, b: __m256) -> (__m256, __m256) {
        let even = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
        let odd = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
        let fix = |v: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)));
        (fix(even), fix(odd))
    }

    /// Lane-wise first maximum of `[a, b, c, d]` gated by ReLU: `(max > 0 ? max : +0.0,
    /// max > 0 ? index : NO_GRAD)`.
    #[target_feature(enable = "avx2")]
    fn argmax(a: __m256, b: __m256, c: __m256, d: __m256) -> (__m256, __m256i) {
        let (mut best, mut idx) = (a, _mm256_setzero_si256());
        for (i, x) in [b, c, d].into_iter().enumerate() {
            let gt = _mm256_cmp_ps::<_CMP_GT_OQ>(x, best);
            best = _mm256_blendv_ps(best, x, gt);
            idx = _mm256_blendv_epi8(idx, _mm256_set1_epi32(i as i32 + 1), _mm256_castps_si256(gt));
        }
        let pass = _mm256_cmp_ps::<_CMP_GT_OQ>(best, _mm256_setzero_ps());
        let idx = _mm256_blendv_epi8(_mm256_set1_epi32(NO_GRAD as i32), idx, _mm256_castps_si256(pass));
        (_mm256_and_ps(best, pass), idx)
    }
}

impl CustomOp3 for ConvReluPool {
    fn name(&self) -> &'static str {
        "fast-conv2d-relu-maxpool2"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = ConvGeom::new(xl.shape(), wl.shape(), bl.shape())?;
        let (x, w, bias) = (cpu_slice(xs, xl)?, cpu_slice(ws, wl)?, cpu_slice(bs, bl)?);
        let (ph, pw) = pooled_dims(&g);
        let per_img = g.c_out * ph * pw;
        let mut out = vec![0.0; g.n * per_img];
        // The sparse backward works from `x` itself, not from the column matrices.
        let saved = conv::forward(&g, x, w, &mut out, per_img, false, |imgs, yt, out| {
            let (p, bp) = (g.p(), imgs.len() * g.p());
            let mut argmax = vec![0u8; out.len()];
            let simd = super::simd();
            let planes = out.chunks_exact_mut((ph * pw).max(1)).zip(argmax.chunks_exact_mut((ph * pw).max(1)));
            for (plane, (pooled, am)) in planes.enumerate() {
                let (b, co) = (plane / g.c_out, plane % g.c_out);
                let y = &yt[co * bp + b * p..][..p];
                // Row pairs as pre-cut slices: the window reads need no bounds checks.
                for (py, (out_row, am_row)) in
                    pooled.chunks_exact_mut(pw.max(1)).zip(am.chunks_exact_mut(pw.max(1))).take(ph).enumerate()
                {
                    let top = &y[2 * py * g.ow..][..2 * pw];
                    let bot = &y[(2 * py + 1) * g.ow..][..2 * pw];
                    pool_row(top, bot, bias[co], out_row, am_row, simd);
                }
            }
            argmax
        });
        let _ = self.saved.set(saved);
        Ok((CpuStorage::F32(out), Shape::from((g.n, g.c_out, ph, pw))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = ConvGeom::new(x.shape(), w.shape(), b.shape())?;
        let Some(saved) = self.saved.get() else { bail!("{}: backward before forward", self.name()) };
        let grads = with_cpu_slice(x, |xd| {
            with_cpu_slice(w, |w| with_cpu_slice(grad, |grad| backward(&g, saved, xd, w, grad, x.track_op())))
        })????;
        conv::grads_to_tensors(x, w, b, grads)
    }
}

/// The gradients from the pooled gradient `grad` (`[N, C_out, PH, PW]`): per chunk, the
/// non-zeros of the pre-activation gradient are listed from the saved argmax and fed to the
/// sparse kernels (see `sparse`); the per-chunk weight and bias gradients are then summed in
/// chunk order, so the result does not depend on the schedule.
fn backward(g: &ConvGeom, saved: &[FwdChunk<Vec<u8>>], x: &[f32], w: &[f32], grad: &[f32], need_dx: bool) -> Result<conv::Grads> {
    let (ph, pw) = pooled_dims(g);
    let per_img = g.c_out * ph * pw;
    if grad.len() != g.n * per_img {
        bail!("fast-conv2d-relu-maxpool2: gradient has {} elements, expected {}", grad.len(), g.n * per_img);
    }
    let chunks = g.chunks();
    let ck = g.ck();
    let wt = if need_dx { sparse::weights_channels_last(g, w) } else { Vec::new() };
    let mut dx = vec![0.0; if need_dx { g.n * g.img_len() } else { 0 }];
    let dx_chunks: Vec<&mut [f32]> =
        if need_dx { dx.chunks_mut(conv::CHUNK * g.img_len()).collect() } else { chunks.iter().map(|_| &mut [][..]).collect() };
    let partials: Vec<(Buf, Vec<f32>)> = dx_chunks
        .into_par_iter()
        .zip(chunks.into_par_iter())
        .zip(saved.par_iter())
        .map(|((dx_chunk, imgs), fwd)| {
            let range = imgs.start * per_img..imgs.end * per_img;
            let (by_co, by_q) = sparse::build_lists(g, imgs.len(), &grad[range], &fwd.extra, need_dx);
            let db: Vec<f32> = (0..g.c_out).map(|co| by_co.row(co).iter().map(|e| e.d).sum()).collect();
            let mut dw = Buf::stale(g.c_out * ck);
            sparse::weight_grad(g, &by_co, &x[imgs.start * g.img_len()..imgs.end * g.img_len()], &mut dw);
            if need_dx {
                sparse::input_grad(g, &by_q, &wt, dx_chunk);
            }
            (dw, db)
        })
        .collect();
    // Fixed-order reduction over chunks keeps the result independent of scheduling.
    let mut dw_cl = vec![0.0; g.c_out * ck];
    let mut db = vec![0.0; g.c_out];
    for (pw, pb) in &partials {
        dw_cl.iter_mut().zip(pw.iter()).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
    Ok((need_dx.then_some(dx), sparse::weights_from_channels_last(g, &dw_cl), db))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows with ties (first maximum must win), zeros, negatives, a NaN and clipped ones,
    /// for every row length around the 8- and 4-window steps.
    #[test]
    fn pool_row_avx2_is_bit_identical() {
        if !crate::ops::simd() {
            return;
        }
        let vals = [0.5f32, -0.25, 0.5, 0.0, -0.0, 1.5, 1.5, -3.0, 2.0, f32::NAN, 0.125, -1.0, 0.75, 0.75, 0.75, 0.75];
        for n in 0..=21 {
            for shift in 0..3 {
                let top: Vec<f32> = (0..2 * n).map(|i| vals[(i * 7 + shift) % vals.len()]).collect();
                let bot: Vec<f32> = (0..2 * n).map(|i| vals[(i * 5 + 3 * shift + 1) % vals.len()]).collect();
                for bias in [0.0f32, -0.5, 0.25] {
                    let (mut o1, mut a1) = (vec![9.0; n], vec![7u8; n]);
                    let (mut o2, mut a2) = (vec![9.0; n], vec![7u8; n]);
                    pool_row(&top, &bot, bias, &mut o1, &mut a1, false);
                    pool_row(&top, &bot, bias, &mut o2, &mut a2, true);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!((bits(&o1), &a1), (bits(&o2), &a2), "n {n} shift {shift} bias {bias}");
                }
            }
        }
    }
}
