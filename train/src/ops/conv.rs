//! Valid, stride-1 convolution on CPU f32 via im2col + GEMM (or the direct kernel when the
//! caller needs no column matrices, see [`forward`]), and the plain `conv2d` custom op.
//!
//! Work is split into fixed chunks of [`CHUNK`] images that run in parallel on rayon. Each
//! chunk's result depends only on its own data; cross-chunk reductions (the weight and bias
//! gradients) are summed afterwards in chunk order, so results are bit-identical run to run
//! whatever the thread count or schedule.

use std::ops::Range;
use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::direct;
use super::gemm::{Mat, MatMut, matmul};
use super::im2col::{col2im, col2im_rows, im2col};
use super::scratch::Buf;
use super::{cpu_slice, with_cpu_slice};

/// Images per work item. Fixed (not derived from the thread count) so that results do not
/// depend on the machine's parallelism; 4 gives 8 items per batch of 32 for load balance and
/// keeps a chunk's working set (a column matrix is ≤ 0.8 MB for the model's second conv) near L2.
pub const CHUNK: usize = 4;

/// Shapes of one convolution: `x` `[n, c_in, h, w]`, weight `[c_out, c_in, k, k]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub n: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub k: usize,
    pub oh: usize,
    pub ow: usize,
}

impl ConvGeom {
    pub fn new(x: &Shape, w: &Shape, b: &Shape) -> Result<Self> {
        let (n, c_in, h, wd) = x.dims4()?;
        let (c_out, wc, kh, kw) = w.dims4()?;
        let bc = b.dims1()?;
        if wc != c_in || kh != kw || bc != c_out || kh == 0 || kh > h || kw > wd {
            bail!("conv2d: incompatible shapes x {x:?}, w {w:?}, b {b:?}");
        }
        let k = kh;
        Ok(Self { n, c_in, h, w: wd, c_out, k, oh: h - k + 1, ow: wd - k + 1 })
    }

    /// Output pixels per image and channel.
    pub fn p(&self) -> usize {
        self.oh * self.ow
    }

    /// Length of the reduction (one weight row).
    pub fn ck(&self) -> usize {
        self.c_in * self.k * self.k
    }

    /// Floats per input image.
    pub fn img_len(&self) -> usize {
        self.c_in * self.h * self.w
    }

    /// The image ranges of the work items.
    pub fn chunks(&self) -> Vec<Range<usize>> {
        (0..self.n).step_by(CHUNK).map(|s| s..(s + CHUNK).min(self.n)).collect()
    }
}

/// Per-chunk state the forward pass keeps for the backward pass.
pub struct FwdChunk<T> {
    /// The chunk's column matrix `[CK, B * P]`, reused by the weight and input gradients
    /// (`None` when the caller's backward does not need it).
    pub col: Option<Buf>,
    /// Whatever the epilogue chose to keep (e.g. pool argmax indices).
    pub extra: T,
}

/// Runs the convolution without bias. For each chunk it calls `epilogue(imgs, yt, out_chunk)`
/// with `yt` the pre-bias result `[C_out, B * P]` (`B = imgs.len()`); the epilogue writes the
/// chunk's slice of `out` (`out_per_img` floats per image) and returns what to keep, along
/// with the column matrix if `keep_col`. Without `keep_col`, geometries the direct kernel
/// takes (see [`direct::supported`]) skip im2col and the GEMM altogether.
pub fn forward<T: Send>(
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    out: &mut [f32],
    out_per_img: usize,
    keep_col: bool,
    epilogue: impl Fn(Range<usize>, &[f32], &mut [f32]) -> T + Sync,
) -> Vec<FwdChunk<T>> {
    let chunks = g.chunks();
    let wm = Mat::row_major(w, g.c_out, g.ck());
    // Without column matrices to keep, the direct kernel skips im2col (see `direct`).
    let packed = (!keep_col && direct::supported(g)).then(|| direct::pack_weights(g, w));
    let out_chunks: Vec<&mut [f32]> = if out_per_img == 0 {
        chunks.iter().map(|_| &mut [][..]).collect()
    } else {
        out.chunks_mut(CHUNK * out_per_img).collect()
    };
    out_chunks
        .into_par_iter()
        .zip(chunks.into_par_iter())
        .map(|(out_chunk, imgs)| {
            let bp = imgs.len() * g.p();
            let x = &x[imgs.start * g.img_len()..imgs.end * g.img_len()];
            // Fully overwritten (by the direct kernel or the non-accumulating GEMM).
            let mut yt = Buf::stale(g.c_out * bp);
            let col = if let Some(packed) = &packed {
                direct::conv(g, x, packed, &mut yt);
                None
            } else {
                // Fully overwritten by im2col.
                let mut col = Buf::stale(g.ck() * bp);
                im2col(g, x, &mut col);
                matmul(MatMut::row_major(&mut yt, g.c_out, bp), wm, Mat::row_major(&col, g.ck(), bp), false);
                Some(col)
            };
            let extra = epilogue(imgs, &yt, out_chunk);
            FwdChunk { col: col.filter(|_| keep_col), extra }
        })
        .collect()
}

/// Raw gradients `(dx, dw, db)` of a convolution (`dx` only when the input needs one).
pub type Grads = (Option<Vec<f32>>, Vec<f32>, Vec<f32>);

/// Gradients of a convolution given the saved chunks. `fill_dy(chunk_index, imgs, dyt)` writes
/// the gradient w.r.t. the pre-bias output in the `[C_out, B * P]` layout (`dyt` starts zeroed).
/// Returns `(dx, dw, db)`; `dx` only when `need_dx`.
pub fn backward<T: Sync>(
    g: &ConvGeom,
    saved: &[FwdChunk<T>],
    w: &[f32],
    need_dx: bool,
    fill_dy: impl Fn(usize, Range<usize>, &mut [f32]) + Sync,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let chunks = g.chunks();
    let wm = Mat::row_major(w, g.c_out, g.ck());
    let mut dx = vec![0.0; if need_dx { g.n * g.img_len() } else { 0 }];
    let dx_chunks: Vec<&mut [f32]> =
        if need_dx { dx.chunks_mut(CHUNK * g.img_len()).collect() } else { chunks.iter().map(|_| &mut [][..]).collect() };
    let partials: Vec<(Vec<f32>, Vec<f32>)> = dx_chunks
        .into_par_iter()
        .zip(chunks.into_par_iter())
        .zip(saved.par_iter())
        .enumerate()
        .map(|(i, ((dx_chunk, imgs), fwd))| {
            let bp = imgs.len() * g.p();
            let mut dyt = Buf::zeroed(g.c_out * bp);
            fill_dy(i, imgs, &mut dyt);
            let db: Vec<f32> = dyt.chunks_exact(bp.max(1)).map(|r| r.iter().sum()).collect();
            let dyt_m = Mat::row_major(&dyt, g.c_out, bp);
            let col = fwd.col.as_ref().expect("conv::backward needs the forward's column matrices");
            let col_m = Mat::row_major(col, g.ck(), bp);
            let mut dw = vec![0.0; g.c_out * g.ck()];
            matmul(MatMut::row_major(&mut dw, g.c_out, g.ck()), dyt_m, col_m.t(), false);
            if need_dx {
                if is_sparse(&dyt) {
                    input_grad_sparse(g, &dyt, w, dx_chunk);
                } else {
                    let mut dcol = Buf::zeroed(g.ck() * bp);
                    matmul(MatMut::row_major(&mut dcol, g.ck(), bp), wm.t(), dyt_m, false);
                    col2im(g, &dcol, dx_chunk);
                }
            }
            (dw, db)
        })
        .collect();
    // Fixed-order reduction over chunks keeps the result independent of scheduling.
    let mut dw = vec![0.0; g.c_out * g.ck()];
    let mut db = vec![0.0; g.c_out];
    for (pw, pb) in &partials {
        dw.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
    (need_dx.then_some(dx), dw, db)
}

/// True when under a third of `dy` is non-zero. Behind a ReLU and a 2x2 max-pool at most a
/// quarter of the pre-activation gradient is, and then scattering rows beats a dense GEMM.
fn is_sparse(dy: &[f32]) -> bool {
    dy.iter().filter(|v| **v != 0.0).count() * 3 < dy.len()
}

/// Input gradient from a sparse `dyt` (`[C_out, B * P]`): for every non-zero `dy[co][q]`,
/// adds `dy * W[co]` to row `q` of the position-major column gradient, then runs col2im.
/// Each row sums over `co` in increasing order, so the result is deterministic.
fn input_grad_sparse(g: &ConvGeom, dyt: &[f32], w: &[f32], dx: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, the only requirement of `input_grad_sparse_avx2`.
        // Covered by `avx2_scatter_is_bit_identical`.
        return unsafe { input_grad_sparse_avx2(g, dyt, w, dx) };
    }
    input_grad_sparse_generic(g, dyt, w, dx)
}

/// The same code compiled for AVX2 (the build targets baseline x86-64, i.e. SSE2), for 8-wide
/// row updates. No FMA: each element still gets a separate multiply and add, so the result
/// is bit-identical to the generic build.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn input_grad_sparse_avx2(g: &ConvGeom, dyt: &[f32], w: &[f32], dx: &mut [f32]) {
    input_grad_sparse_generic(g, dyt, w, dx)
}

#[inline(always)]
fn input_grad_sparse_generic(g: &ConvGeom, dyt: &[f32], w: &[f32], dx: &mut [f32]) {
    let (ck, bp) = (g.ck(), dyt.len() / g.c_out);
    let mut dcol = Buf::zeroed(bp * ck);
    for (q, row) in dcol.chunks_exact_mut(ck).enumerate() {
        for (co, w_row) in w.chunks_exact(ck).enumerate() {
            let d = dyt[co * bp + q];
            if d != 0.0 {
                row.iter_mut().zip(w_row).for_each(|(r, w)| *r += d * w);
            }
        }
    }
    col2im_rows(g, &dcol, dx);
}

/// Wraps raw gradients as tensors on the device/shape of the corresponding arguments, leaving
/// out the ones whose argument does not take part in backprop.
pub fn grads_to_tensors(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    (dx, dw, db): (Option<Vec<f32>>, Vec<f32>, Vec<f32>),
) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    let dx = dx.map(|d| Tensor::from_vec(d, x.shape(), x.device())).transpose()?;
    let dw = w.track_op().then(|| Tensor::from_vec(dw, w.shape(), w.device())).transpose()?;
    let db = b.track_op().then(|| Tensor::from_vec(db, b.shape(), b.device())).transpose()?;
    Ok((dx, dw, db))
}

/// `conv2d` + bias as a custom op. Keeps the column matrices from the forward pass so the
/// backward pass does not redo im2col.
#[derive(Default)]
pub struct Conv2d {
    saved: OnceLock<Vec<FwdChunk<()>>>,
}

impl CustomOp3 for Conv2d {
    fn name(&self) -> &'static str {
        "fast-conv2d"
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
        let per_img = g.c_out * g.p();
        let mut out = vec![0.0; g.n * per_img];
        let saved = forward(&g, x, w, &mut out, per_img, true, |imgs, yt, out| {
            let (p, bp) = (g.p(), imgs.len() * g.p());
            for (b, img) in out.chunks_exact_mut(per_img).enumerate() {
                for (co, plane) in img.chunks_exact_mut(p).enumerate() {
                    let src = &yt[co * bp + b * p..][..p];
                    plane.iter_mut().zip(src).for_each(|(o, y)| *o = y + bias[co]);
                }
            }
        });
        // A second forward with the same op instance cannot happen through `apply_op3`.
        let _ = self.saved.set(saved);
        Ok((CpuStorage::F32(out), Shape::from((g.n, g.c_out, g.oh, g.ow))))
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
        let Some(saved) = self.saved.get() else { bail!("fast-conv2d: backward before forward") };
        let grads = with_cpu_slice(w, |w| {
            with_cpu_slice(grad, |grad| {
                let per_img = g.c_out * g.p();
                backward(&g, saved, w, x.track_op(), |_, imgs, dyt| {
                    let (p, bp) = (g.p(), imgs.len() * g.p());
                    let src = &grad[imgs.start * per_img..imgs.end * per_img];
                    for (b, img) in src.chunks_exact(per_img).enumerate() {
                        for (co, plane) in img.chunks_exact(p).enumerate() {
                            dyt[co * bp + b * p..][..p].copy_from_slice(plane);
                        }
                    }
                })
            })
        })??;
        grads_to_tensors(x, w, b, grads)
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn avx2_scatter_is_bit_identical() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let g = ConvGeom { n: 3, c_in: 5, h: 9, w: 8, c_out: 7, k: 3, oh: 7, ow: 6 };
        let bp = g.n * g.p();
        // Sparse, irregular values (every third zero) and weights with varied exponents.
        let dyt: Vec<f32> = (0..g.c_out * bp).map(|i| if i % 3 == 0 { 0.0 } else { (i as f32 * 0.731).sin() * 1e3 }).collect();
        let w: Vec<f32> = (0..g.c_out * g.ck()).map(|i| (i as f32 * 0.377).cos() * 1e-2).collect();
        let mut a = vec![0.0; g.n * g.img_len()];
        let mut b = a.clone();
        input_grad_sparse_generic(&g, &dyt, &w, &mut a);
        // SAFETY: AVX2 support was checked above.
        unsafe { input_grad_sparse_avx2(&g, &dyt, &w, &mut b) };
        assert!(a.iter().any(|v| *v != 0.0));
        assert_eq!(a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), b.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    }
}
