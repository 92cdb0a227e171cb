//! Fused conv2d + bias + ReLU + 2x2 max-pool on CPU f32.
//!
//! Fusing means the `[N, C_out, OH, OW]` activation is never materialised as a tensor: the
//! pool runs on the GEMM output while it is hot, and only the pooled result plus one `u8` per
//! pooled element (which window element won, or [`NO_GRAD`] if ReLU clipped it) is kept.
//! The backward pass scatters the pooled gradient back through that index into a sparse
//! pre-activation gradient and reuses the convolution's GEMM backward.
//!
//! Semantics: the gradient goes to the first maximum of each window (PyTorch's choice) and
//! only if that pre-activation is > 0 (ReLU's derivative at 0 taken as 0, as in PyTorch).

use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, bail};

use super::conv::{self, ConvGeom, FwdChunk};
use super::pool::{argmax4, window_offset};
use super::{cpu_slice, with_cpu_slice};

/// Marks a window whose maximum pre-activation was <= 0: ReLU passes no gradient.
pub const NO_GRAD: u8 = u8::MAX;

#[derive(Default)]
pub struct ConvReluPool {
    /// Per chunk: the im2col matrix and the argmax (or [`NO_GRAD`]) of each pooled element.
    saved: OnceLock<Vec<FwdChunk<Vec<u8>>>>,
}

fn pooled_dims(g: &ConvGeom) -> (usize, usize) {
    (g.oh / 2, g.ow / 2)
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
        let saved = conv::forward(&g, x, w, &mut out, per_img, |imgs, yt, out| {
            let (p, bp) = (g.p(), imgs.len() * g.p());
            let mut argmax = Vec::with_capacity(out.len());
            for (b, img) in out.chunks_exact_mut(per_img.max(1)).enumerate() {
                for (co, pooled) in img.chunks_exact_mut((ph * pw).max(1)).enumerate() {
                    let y = &yt[co * bp + b * p..][..p];
                    let bias = bias[co];
                    // Row pairs as pre-cut slices: the window reads need no bounds checks.
                    for (py, out_row) in pooled.chunks_exact_mut(pw.max(1)).take(ph).enumerate() {
                        let top = &y[2 * py * g.ow..][..2 * pw];
                        let bot = &y[(2 * py + 1) * g.ow..][..2 * pw];
                        for ((o, t), b) in out_row.iter_mut().zip(top.chunks_exact(2)).zip(bot.chunks_exact(2)) {
                            let (m, i) = argmax4([t[0] + bias, t[1] + bias, b[0] + bias, b[1] + bias]);
                            let pass = m > 0.0;
                            *o = if pass { m } else { 0.0 };
                            argmax.push(if pass { i } else { NO_GRAD });
                        }
                    }
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
        let (ph, pw) = pooled_dims(&g);
        let per_img = g.c_out * ph * pw;
        let grads = with_cpu_slice(w, |w| {
            with_cpu_slice(grad, |grad| {
                conv::backward(&g, saved, w, x.track_op(), |i, imgs, dyt| {
                    let (p, bp) = (g.p(), imgs.len() * g.p());
                    let src = &grad[imgs.start * per_img..imgs.end * per_img];
                    let argmax = &saved[i].extra;
                    // `max(1)`: an empty pooled output has no planes (and `chunks_exact(0)` panics).
                    let plane_len = (ph * pw).max(1);
                    let per_plane = src.chunks_exact(plane_len).zip(argmax.chunks_exact(plane_len));
                    for (plane_idx, (gp, am)) in per_plane.enumerate() {
                        let (b, co) = (plane_idx / g.c_out, plane_idx % g.c_out);
                        let dy = &mut dyt[co * bp + b * p..][..p];
                        for py in 0..ph {
                            for px in 0..pw {
                                let j = py * pw + px;
                                if am[j] != NO_GRAD {
                                    dy[2 * py * g.ow + 2 * px + window_offset(am[j], g.ow)] = gp[j];
                                }
                            }
                        }
                    }
                })
            })
        })??;
        conv::grads_to_tensors(x, w, b, grads)
    }
}
