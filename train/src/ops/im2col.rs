//! Lowering a valid, stride-1 convolution to a matrix product.
//!
//! For a chunk of `B` images the "column" matrix is stored transposed, `colT[ck][b * P + p]`,
//! with `ck = (c * K + ky) * K + kx` (the OIHW weight's flattening, so `W` is `[C_out, CK]`
//! as-is) and `p = oy * OW + ox`. In this orientation every copy is a run of `OW` contiguous
//! floats instead of `K`, which is what makes im2col/col2im cheap for 5x5 kernels.

use super::conv::ConvGeom;

/// Fills `col` (`[CK, B * P]`) from `x`, the chunk's `B` images (`[B, C, H, W]`).
pub fn im2col(g: &ConvGeom, x: &[f32], col: &mut [f32]) {
    // Fixed-length copies for the model's output widths (24 and 8): a few vector moves
    // each instead of a `memcpy` call per output row.
    match g.ow {
        8 => im2col_rows::<8>(g, x, col),
        24 => im2col_rows::<24>(g, x, col),
        _ => im2col_rows::<0>(g, x, col),
    }
}

/// [`im2col`] with output rows of `OW` floats (`0`: `g.ow`, not known at compile time).
#[inline(always)]
fn im2col_rows<const OW: usize>(g: &ConvGeom, x: &[f32], col: &mut [f32]) {
    let ow = if OW == 0 { g.ow } else { OW };
    debug_assert_eq!(ow, g.ow);
    let b_imgs = x.len() / g.img_len();
    let bp = b_imgs * g.p();
    debug_assert_eq!(col.len(), g.ck() * bp);
    for (ck, row) in col.chunks_exact_mut(bp).enumerate() {
        let (c, ky, kx) = (ck / (g.k * g.k), ck / g.k % g.k, ck % g.k);
        for (img, dst) in x.chunks_exact(g.img_len()).zip(row.chunks_exact_mut(g.p())) {
            let plane = &img[c * g.h * g.w + ky * g.w + kx..];
            for (oy, d) in dst.chunks_exact_mut(ow).enumerate() {
                let s = &plane[oy * g.w..][..ow];
                if OW == 0 {
                    d.copy_from_slice(s);
                } else {
                    let (d, s): (&mut [f32; OW], &[f32; OW]) = (d.try_into().unwrap(), s.try_into().unwrap());
                    *d = *s;
                }
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
