//! Direct (no im2col) forward convolution with AVX2 + FMA, for outputs whose width is a
//! multiple of 8 (the model's two layers: 24 and 8).
//!
//! A register tile holds [`CB`] output channels x [`V`] vectors of 8 horizontally adjacent
//! outputs (9 sums). For every tap `(c, ky, kx)` it loads the `V` input vectors once, broadcasts
//! the `CB` weights and issues `V * CB` FMAs: 15 instructions per 72 multiply-adds, reading
//! the input in place, where im2col + GEMM first copies it `K * K` times into a column matrix
//! and then re-packs it. The weights are pre-arranged per block of `CB` channels so that one
//! tap's `CB` weights are adjacent.
//!
//! Each output is `Σ w * x` over the taps in `(c, ky, kx)` order, one fused multiply-add per
//! tap starting from zero; `reference` (tests) sums in that order with `mul_add` and gives the
//! same bits.

use super::conv::ConvGeom;

/// Output channels per register tile.
const CB: usize = 3;
/// 8-wide output vectors per register tile. 3 x 3 sums + 3 inputs + 1 broadcast weight use 13
/// of AVX2's 16 registers: 3 x 4 would use all 16, and the compiler then spills sums.
const V: usize = 3;
const LANES: usize = 8;

/// Whether [`conv`] handles this geometry on this CPU.
pub fn supported(g: &ConvGeom) -> bool {
    g.c_in > 0 && g.ow > 0 && g.ow.is_multiple_of(LANES) && super::simd()
}

/// The weights `[C_out, CK]` as blocks of [`CB`] channels, each `[CK][CB]` (a last partial
/// block is padded with zero channels): [`conv`]'s weight layout.
pub fn pack_weights(g: &ConvGeom, w: &[f32]) -> Vec<f32> {
    let ck = g.ck();
    let blocks = g.c_out.div_ceil(CB);
    let mut packed = vec![0.0; blocks * ck * CB];
    for (co, row) in w.chunks_exact(ck.max(1)).enumerate().take(g.c_out) {
        let block = &mut packed[co / CB * ck * CB..][..ck * CB];
        for (t, v) in row.iter().enumerate() {
            block[t * CB + co % CB] = *v;
        }
    }
    packed
}

/// `yt[co][b * P + oy * OW + ox] = Σ_{c, ky, kx} w[co][c][ky][kx] * x[b][c][oy + ky][ox + kx]`
/// for the chunk `x` (`[B, C_in, H, W]`); `yt` is `[C_out, B * P]`, fully overwritten;
/// `packed` comes from [`pack_weights`]. Panics unless [`supported`].
pub fn conv(g: &ConvGeom, x: &[f32], packed: &[f32], yt: &mut [f32]) {
    assert!(supported(g), "direct conv: unsupported geometry or CPU");
    let b_imgs = x.len() / g.img_len().max(1);
    let bp = b_imgs * g.p();
    assert_eq!(x.len(), b_imgs * g.img_len(), "input chunk");
    assert_eq!(yt.len(), g.c_out * bp, "output");
    assert_eq!(packed.len(), g.c_out.div_ceil(CB) * g.ck() * CB, "packed weights");
    // Every 8-wide output vector: (input offset of its first tap, output column).
    let vectors: Vec<(usize, usize)> = (0..b_imgs)
        .flat_map(|b| (0..g.oh).map(move |oy| (b, oy)))
        .flat_map(|(b, oy)| (0..g.ow).step_by(LANES).map(move |ox| (b * g.img_len() + oy * g.w + ox, b * g.p() + oy * g.ow + ox)))
        .collect();
    for (blk, wb) in packed.chunks_exact(g.ck() * CB).enumerate() {
        let co0 = blk * CB;
        let cb = CB.min(g.c_out - co0);
        for group in vectors.chunks(V) {
            #[cfg(not(target_arch = "x86_64"))]
            unreachable!("`supported` is false off x86-64 {group:?} {co0} {cb} {wb:?}");
            // SAFETY: `supported` checked AVX2 and FMA, the tiles' only CPU requirement.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                if g.k == 5 {
                    tiles!(5, group.len(), cb, (g, x, wb, group, co0, bp, yt));
                } else {
                    tiles!(0, group.len(), cb, (g, x, wb, group, co0, bp, yt));
                }
            }
        }
    }
}

/// Calls the register tile for `$nv` vectors x `$nc` channels, kernel size `$k` (0: any).
#[cfg(target_arch = "x86_64")]
macro_rules! tiles {
    ($k:literal, $nv:expr, $nc:expr, ($($arg:expr),*)) => {
        match ($nv, $nc) {
            (3, 3) => avx2::tile::<3, 3, $k>($($arg),*),
            (3, 2) => avx2::tile::<3, 2, $k>($($arg),*),
            (3, _) => avx2::tile::<3, 1, $k>($($arg),*),
            (2, 3) => avx2::tile::<2, 3, $k>($($arg),*),
            (2, 2) => avx2::tile::<2, 2, $k>($($arg),*),
            (2, _) => avx2::tile::<2, 1, $k>($($arg),*),
            (_, 3) => avx2::tile::<1, 3, $k>($($arg),*),
            (_, 2) => avx2::tile::<1, 2, $k>($($arg),*),
            (_, _) => avx2::tile::<1, 1, $k>($($arg),*),
        }
    };
}
#[cfg(target_arch = "x86_64")]
use tiles;

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{CB, ConvGeom, LANES};

    /// One register tile: the `NV` vectors of `group` x output channels `co0..co0 + NC`, from
    /// the channel block's packed weights `wb` (`[CK][CB]`). `K` is the kernel size when fixed
    /// at compile time (the inner tap loop then unrolls), 0 otherwise.
    #[target_feature(enable = "avx2,fma")]
    pub fn tile<const NV: usize, const NC: usize, const K: usize>(
        g: &ConvGeom,
        x: &[f32],
        wb: &[f32],
        group: &[(usize, usize)],
        co0: usize,
        bp: usize,
        yt: &mut [f32],
    ) {
        let group: &[(usize, usize); NV] = group.try_into().expect("group of NV vectors");
        assert!(NC <= CB && wb.len() == g.ck() * CB, "weight block");
        // The furthest input read: the last tap's 8 floats.
        let reach = ((g.c_in - 1) * g.h + g.k - 1) * g.w + g.k - 1 + LANES;
        assert!(group.iter().all(|&(base, _)| base + reach <= x.len()), "tile reads outside the input");
        let k = if K == 0 { g.k } else { K };
        assert_eq!(k, g.k, "kernel size");
        let mut acc = [[_mm256_setzero_ps(); NV]; NC];
        // Taps in `(c, ky, kx)` order: `wb` holds `CB` weights per tap, in that order.
        for (c, wc) in wb.chunks_exact(k * k * CB).enumerate() {
            for (ky, wk) in wc.chunks_exact(k * CB).enumerate() {
                let row = (c * g.h + ky) * g.w;
                for (kx, ws) in wk.as_chunks::<CB>().0.iter().enumerate() {
                    let mut xs = [_mm256_setzero_ps(); NV];
                    for (xv, &(base, _)) in xs.iter_mut().zip(group) {
                        // SAFETY: reads `x[base + row + kx..][..8]`; `row + kx + 8 <= reach`
                        // (`c < C_in`, `ky, kx < K`) and `base + reach <= x.len()` (asserted).
                        *xv = unsafe { _mm256_loadu_ps(x.as_ptr().add(base + row + kx)) };
                    }
                    for (a, w) in acc.iter_mut().zip(ws) {
                        let wv = _mm256_set1_ps(*w);
                        for (s, xv) in a.iter_mut().zip(xs) {
                            *s = _mm256_fmadd_ps(wv, xv, *s);
                        }
                    }
                }
            }
        }
        for (j, a) in acc.iter().enumerate() {
            for (s, &(_, q)) in a.iter().zip(group) {
                let out = &mut yt[(co0 + j) * bp + q..][..LANES];
                // SAFETY: writes 8 floats to `out`, which holds 8.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), *s) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The sums in the kernel's order: taps `(c, ky, kx)` from zero, one `mul_add` each.
    fn reference(g: &ConvGeom, x: &[f32], w: &[f32]) -> Vec<f32> {
        let b_imgs = x.len() / g.img_len();
        let bp = b_imgs * g.p();
        let mut yt = vec![0.0; g.c_out * bp];
        for co in 0..g.c_out {
            for b in 0..b_imgs {
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let mut s = 0f32;
                        for c in 0..g.c_in {
                            for ky in 0..g.k {
                                for kx in 0..g.k {
                                    let wv = w[((co * g.c_in + c) * g.k + ky) * g.k + kx];
                                    s = wv.mul_add(x[b * g.img_len() + (c * g.h + oy + ky) * g.w + ox + kx], s);
                                }
                            }
                        }
                        yt[co * bp + b * g.p() + oy * g.ow + ox] = s;
                    }
                }
            }
        }
        yt
    }

    #[test]
    fn avx2_tiles_are_bit_identical_to_the_reference() {
        let g = |n, c_in, h, w, c_out, k| ConvGeom { n, c_in, h, w, c_out, k, oh: h - k + 1, ow: w - k + 1 };
        // The model's layers, then channel counts and vector counts that leave every tail.
        for (i, g) in
            [g(4, 1, 28, 28, 32, 5), g(4, 32, 12, 12, 64, 5), g(3, 3, 10, 18, 7, 3), g(1, 2, 9, 9, 5, 2), g(2, 5, 8, 8, 6, 1)]
                .into_iter()
                .enumerate()
        {
            if !supported(&g) {
                return;
            }
            let mut rng = ChaCha8Rng::seed_from_u64(i as u64);
            let x: Vec<f32> = (0..g.n * g.img_len()).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let w: Vec<f32> = (0..g.c_out * g.ck()).map(|_| rng.random_range(-0.3f32..0.3)).collect();
            let mut yt = vec![f32::NAN; g.c_out * g.n * g.p()];
            conv(&g, &x, &pack_weights(&g, &w), &mut yt);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&yt), bits(&reference(&g, &x, &w)), "{g:?}");
        }
    }
}
