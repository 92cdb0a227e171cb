//! 2x2 / stride-2 max pooling on CPU f32 as a custom op.
//!
//! Gradient semantics: each window's gradient goes to its first maximum (row-major order),
//! as in PyTorch. candle 0.11.1's stock `max_pool2d` backward instead gives every maximum
//! `grad * (#maxima / 4)`, i.e. a quarter of the true gradient when the maximum is unique
//! (see `stock_max_pool2d_backward_is_a_quarter` in the tests), so this op deliberately
//! differs from the stock op by that factor.

use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, bail};

use super::{cpu_slice, with_cpu_slice};

/// Index (0..4, row-major in the window) of the first maximum of a window.
pub fn argmax4(v: [f32; 4]) -> (f32, u8) {
    let (mut best, mut idx) = (v[0], 0);
    for (i, &x) in v.iter().enumerate().skip(1) {
        if x > best {
            (best, idx) = (x, i as u8);
        }
    }
    (best, idx)
}

/// Offset of window element `idx` from the window's top-left corner in a row of width `w`.
pub fn window_offset(idx: u8, w: usize) -> usize {
    (idx as usize >> 1) * w + (idx as usize & 1)
}

#[derive(Default)]
pub struct MaxPool2x2 {
    /// Argmax of every output element, `[N, C, H/2, W/2]`.
    argmax: OnceLock<Vec<u8>>,
}

impl CustomOp1 for MaxPool2x2 {
    fn name(&self) -> &'static str {
        "fast-max-pool2x2"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = l.shape().dims4()?;
        let x = cpu_slice(s, l)?;
        let (ph, pw) = (h / 2, w / 2);
        let mut out = Vec::with_capacity(n * c * ph * pw);
        let mut argmax = Vec::with_capacity(out.capacity());
        for plane in x.chunks_exact((h * w).max(1)) {
            for py in 0..ph {
                for px in 0..pw {
                    let o = 2 * py * w + 2 * px;
                    let (m, i) = argmax4([plane[o], plane[o + 1], plane[o + w], plane[o + w + 1]]);
                    out.push(m);
                    argmax.push(i);
                }
            }
        }
        let _ = self.argmax.set(argmax);
        Ok((CpuStorage::F32(out), Shape::from((n, c, ph, pw))))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (n, c, h, w) = x.dims4()?;
        let Some(argmax) = self.argmax.get() else { bail!("fast-max-pool2x2: backward before forward") };
        let (ph, pw) = (h / 2, w / 2);
        let dx = with_cpu_slice(grad, |grad| {
            let mut dx = vec![0.0; n * c * h * w];
            // `max(1)`: with an empty output there are no windows (and `chunks_exact(0)` panics).
            let windows = grad.chunks_exact((ph * pw).max(1)).zip(argmax.chunks_exact((ph * pw).max(1)));
            for (plane, (g, am)) in dx.chunks_exact_mut((h * w).max(1)).zip(windows) {
                for py in 0..ph {
                    for px in 0..pw {
                        let j = py * pw + px;
                        plane[2 * py * w + 2 * px + window_offset(am[j], w)] = g[j];
                    }
                }
            }
            dx
        })?;
        Ok(Some(Tensor::from_vec(dx, x.shape(), x.device())?))
    }
}
