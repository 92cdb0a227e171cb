//! Lowering a valid, stride-1 convolution to a matrix product.
//!
//! For a chunk of `B` images the "column" matrix is stored transposed, `colT[ck][b * P + p]`,
//! with `ck = (c * K + ky) * K + kx` (the OIHW weight's flattening, so `W` is `[C_out, CK]`
//! as-is) and `p = oy * OW + ox`. In this orientation every copy is a run of `OW` contiguous
//! floats instead of `K`, which is what makes im2col/col2im cheap for 5x5 kernels.

use super::conv::ConvGeom;

/// Fills `col` (`[CK, B * P]`) from `x`, the chunk's `B` images (`[B, C, H, W]`).
pub fn im2col(g: &ConvGeom, x: &[f32], col: &mut [f32]) {
    let b_imgs = x.len() / g.img_len();
    let bp = b_imgs * g.p();
    debug_assert_eq!(col.len(), g.ck() * bp);
    for (ck, row) in col.chunks_exact_mut(bp).enumerate() {
        let (c, ky, kx) = (ck / (g.k * g.k), ck / g.k % g.k, ck % g.k);
        for (img, dst) in x.chunks_exact(g.img_len()).zip(row.chunks_exact_mut(g.p())) {
            let plane = &img[c * g.h * g.w..][..g.h * g.w];
            for (oy, d) in dst.chunks_exact_mut(g.ow).enumerate() {
                d.copy_from_slice(&plane[(oy + ky) * g.w + kx..][..g.ow]);
            }
        }
    }
}

/// The adjoint of [`im2col`]: accumulates `col` (`[CK, B * P]`) into `dx` (`[B, C, H, W]`,
/// zeroed by the caller). Sequential per chunk, so the summation order is fixed.
pub fn col2im(g: &ConvGeom, col: &[f32], dx: &mut [f32]) {
    let b_imgs = dx.len() / g.img_len();
    let bp = b_imgs * g.p();
    debug_assert_eq!(col.len(), g.ck() * bp);
    for (ck, row) in col.chunks_exact(bp).enumerate() {
        let (c, ky, kx) = (ck / (g.k * g.k), ck / g.k % g.k, ck % g.k);
        for (img, src) in dx.chunks_exact_mut(g.img_len()).zip(row.chunks_exact(g.p())) {
            let plane = &mut img[c * g.h * g.w..][..g.h * g.w];
            for (oy, s) in src.chunks_exact(g.ow).enumerate() {
                let d = &mut plane[(oy + ky) * g.w + kx..][..g.ow];
                for (d, s) in d.iter_mut().zip(s) {
                    *d += s;
                }
            }
        }
    }
}

/// Like [`col2im`] for a position-major column gradient `[B * P, CK]` (one row per output
/// position), as produced by the sparse input gradient.
pub fn col2im_rows(g: &ConvGeom, col: &[f32], dx: &mut [f32]) {
    let b_imgs = dx.len() / g.img_len();
    debug_assert_eq!(col.len(), b_imgs * g.p() * g.ck());
    for (img, img_rows) in dx.chunks_exact_mut(g.img_len()).zip(col.chunks_exact(g.p() * g.ck())) {
        for (p, row) in img_rows.chunks_exact(g.ck()).enumerate() {
            let (oy, ox) = (p / g.ow, p % g.ow);
            for (cky, src) in row.chunks_exact(g.k).enumerate() {
                let (c, ky) = (cky / g.k, cky % g.k);
                let d = &mut img[c * g.h * g.w + (oy + ky) * g.w + ox..][..g.k];
                d.iter_mut().zip(src).for_each(|(d, s)| *d += s);
            }
        }
    }
}
