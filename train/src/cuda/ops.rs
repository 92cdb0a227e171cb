//! Launches of the kernels in `kernels.cu`, as candle ops where candle needs to see them (the
//! batch, the loss and its gradient) and as in-place updates where it must not (Adam, the
//! epoch's statistics).

use candle_core::cuda_backend::cudarc::driver::{CudaFunction, CudaSlice, CudaView, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaDevice, CudaStorage, WrapErr};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Storage, Tensor, Var, bail};

use super::{MODULE, ONE_BLOCK, PTX, grid};
use crate::data::{IMAGE_PIXELS, IMAGE_SIDE};
use crate::optim::AdamConfig;

fn function(dev: &CudaDevice, name: &str) -> Result<CudaFunction> {
    Ok((*dev.get_or_load_custom_func(name, MODULE, PTX)?).clone())
}

/// The contiguous elements of a CUDA tensor's storage.
fn view<'a, T: candle_core::cuda_backend::CudaDType>(s: &'a CudaStorage, l: &Layout) -> Result<CudaView<'a, T>> {
    let Some((start, end)) = l.contiguous_offsets() else { bail!("CUDA kernels: non-contiguous input") };
    Ok(s.as_cuda_slice::<T>()?.slice(start..end))
}

fn cuda_only(name: &str) -> Result<(CpuStorage, Shape)> {
    bail!("{name} runs on CUDA only")
}

/// Runs `f` with the CUDA storage and layout of `t` (read-locked for the call).
fn with_storage<R>(t: &Tensor, f: impl FnOnce(&CudaStorage, &Layout) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cuda(s) => f(s, layout),
        _ => bail!("CUDA kernels: expected a CUDA tensor"),
    }
}

struct GatherImages<'a> {
    order: &'a CudaSlice<u32>,
    step: &'a CudaSlice<u32>,
    batch: u32,
    count: u32,
}

impl CustomOp1 for GatherImages<'_> {
    fn name(&self) -> &'static str {
        "gather-images"
    }
    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }
    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
        let dev = &s.device;
        let images = view::<u8>(s, l)?;
        let n = self.count as usize * IMAGE_PIXELS;
        // SAFETY: the kernel writes all `n` elements before anything reads them.
        let x = unsafe { dev.alloc::<f32>(n)? };
        let (func, pixels, scale) = (function(dev, "gather_images")?, IMAGE_PIXELS as u32, (1.0f64 / 255.0) as f32);
        let stream = dev.cuda_stream();
        let mut b = stream.launch_builder(&func);
        b.arg(&images).arg(self.order).arg(self.step).arg(&self.batch).arg(&self.count).arg(&pixels).arg(&scale).arg(&x);
        // SAFETY: argument types and order match `gather_images` in kernels.cu; the order holds
        // indices below the image count (the host built it from 0..count) and the cursor stays
        // within the epoch.
        unsafe { b.launch(grid(n)) }.w()?;
        Ok((CudaStorage::wrap_cuda_slice(x, dev.clone()), Shape::from((self.count as usize, 1, IMAGE_SIDE, IMAGE_SIDE))))
    }
}

struct GatherLabels<'a> {
    order: &'a CudaSlice<u32>,
    step: &'a CudaSlice<u32>,
    batch: u32,
    count: u32,
}

impl CustomOp1 for GatherLabels<'_> {
    fn name(&self) -> &'static str {
        "gather-labels"
    }
    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }
    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
        let dev = &s.device;
        let labels = view::<u32>(s, l)?;
        // SAFETY: the kernel writes all `count` elements.
        let y = unsafe { dev.alloc::<u32>(self.count as usize)? };
        let func = function(dev, "gather_labels")?;
        let stream = dev.cuda_stream();
        let mut b = stream.launch_builder(&func);
        b.arg(&labels).arg(self.order).arg(self.step).arg(&self.batch).arg(&self.count).arg(&y);
        // SAFETY: as for `gather_images`.
        unsafe { b.launch(grid(self.count as usize)) }.w()?;
        Ok((CudaStorage::wrap_cuda_slice(y, dev.clone()), Shape::from(self.count as usize)))
    }
}

/// The images `[count, 1, 28, 28]` (f32 in [0, 1]) and labels `[count]` (u32) of the examples
/// `order[step * batch ..][..count]`, where `step` is read on the device. `images` is the
/// whole split as u8 `[n, 784]`, `labels` as u32 `[n]`.
pub fn gather_batch(
    images: &Tensor,
    labels: &Tensor,
    order: &CudaSlice<u32>,
    step: &CudaSlice<u32>,
    batch: usize,
    count: usize,
) -> Result<(Tensor, Tensor)> {
    if images.dtype() != DType::U8 || labels.dtype() != DType::U32 {
        bail!("gather_batch: expected u8 images and u32 labels");
    }
    let (batch, count) = (batch as u32, count as u32);
    let x = images.apply_op1_no_bwd(&GatherImages { order, step, batch, count })?;
    let y = labels.apply_op1_no_bwd(&GatherLabels { order, step, batch, count })?;
    Ok((x, y))
}

struct CrossEntropy;

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross-entropy"
    }
    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }
    fn cuda_fwd(&self, s1: &CudaStorage, l1: &Layout, s2: &CudaStorage, l2: &Layout) -> Result<(CudaStorage, Shape)> {
        let dev = &s1.device;
        let (rows, classes) = l1.shape().dims2()?;
        if l2.shape().dims1()? != rows {
            bail!("cross_entropy: {rows} rows of logits but {:?} labels", l2.shape());
        }
        let (logits, labels) = (view::<f32>(s1, l1)?, view::<u32>(s2, l2)?);
        // SAFETY: the kernel writes the one element.
        let loss = unsafe { dev.alloc::<f32>(1)? };
        let (func, rows, classes) = (function(dev, "cross_entropy_fwd")?, rows as u32, classes as u32);
        let stream = dev.cuda_stream();
        let mut b = stream.launch_builder(&func);
        b.arg(&logits).arg(&labels).arg(&rows).arg(&classes).arg(&loss);
        // SAFETY: argument types match `cross_entropy_fwd`; it needs exactly one 256-thread block.
        unsafe { b.launch(ONE_BLOCK) }.w()?;
        Ok((CudaStorage::wrap_cuda_slice(loss, dev.clone()), Shape::from(())))
    }
    fn bwd(&self, logits: &Tensor, labels: &Tensor, _loss: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_logits = logits.apply_op3_no_bwd(labels, &grad.contiguous()?, &CrossEntropyGrad)?;
        Ok((Some(grad_logits), None))
    }
}

struct CrossEntropyGrad;

impl CustomOp3 for CrossEntropyGrad {
    fn name(&self) -> &'static str {
        "cross-entropy-grad"
    }
    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let dev = &s1.device;
        let (rows, classes) = l1.shape().dims2()?;
        let (logits, labels, grad_loss) = (view::<f32>(s1, l1)?, view::<u32>(s2, l2)?, view::<f32>(s3, l3)?);
        // SAFETY: the kernel writes all rows * classes elements.
        let grad = unsafe { dev.alloc::<f32>(rows * classes)? };
        let (func, r, c) = (function(dev, "cross_entropy_bwd")?, rows as u32, classes as u32);
        let stream = dev.cuda_stream();
        let mut b = stream.launch_builder(&func);
        b.arg(&logits).arg(&labels).arg(&grad_loss).arg(&r).arg(&c).arg(&grad);
        // SAFETY: argument types match `cross_entropy_bwd`.
        unsafe { b.launch(grid(rows * classes)) }.w()?;
        Ok((CudaStorage::wrap_cuda_slice(grad, dev.clone()), l1.shape().clone()))
    }
}

/// Mean softmax cross-entropy of `logits` `[rows, classes]` against u32 `labels` `[rows]`, one
/// kernel forward and one backward. A label out of range gives a NaN loss.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    logits.contiguous()?.apply_op2(&labels.contiguous()?, CrossEntropy)
}

/// Adam's step-independent scalars as the kernel takes them (f32, converted from f64 exactly as
/// the CPU path converts them).
pub struct AdamScalars {
    b1: f32,
    c1: f32,
    b2: f32,
    c2: f32,
    eps: f32,
}

impl AdamScalars {
    pub fn from_config(c: &AdamConfig) -> AdamScalars {
        AdamScalars {
            b1: c.beta1 as f32,
            c1: (1.0 - c.beta1) as f32,
            b2: c.beta2 as f32,
            c2: (1.0 - c.beta2) as f32,
            eps: c.eps as f32,
        }
    }
}

/// One in-place Adam update of `param` and its moments `m`, `v` from gradient `grad`, with the
/// step-dependent scalars at `table[2 * step..]` (`step` read on the device).
pub fn adam_update(
    param: &Var,
    grad: &Tensor,
    m: &Tensor,
    v: &Tensor,
    table: &CudaSlice<f32>,
    step: &CudaSlice<u32>,
    s: &AdamScalars,
) -> Result<()> {
    let p = param.as_tensor();
    let n = p.elem_count();
    if [grad, m, v].iter().any(|t| t.elem_count() != n) || !(m.is_contiguous() && v.is_contiguous() && p.is_contiguous()) {
        bail!("adam_update: parameter, gradient and moments must be contiguous and of one size");
    }
    let grad = grad.contiguous()?;
    with_storage(p, |ps, pl| {
        with_storage(&grad, |gs, gl| {
            with_storage(m, |ms, ml| {
                with_storage(v, |vs, vl| {
                    let dev = &ps.device;
                    let (pv, gv, mv, vv) =
                        (view::<f32>(ps, pl)?, view::<f32>(gs, gl)?, view::<f32>(ms, ml)?, view::<f32>(vs, vl)?);
                    let (func, n32) = (function(dev, "adam_update")?, n as u32);
                    let stream = dev.cuda_stream();
                    let mut b = stream.launch_builder(&func);
                    b.arg(&pv).arg(&gv).arg(&mv).arg(&vv).arg(&n32).arg(table).arg(step);
                    b.arg(&s.b1).arg(&s.c1).arg(&s.b2).arg(&s.c2).arg(&s.eps);
                    // SAFETY: argument types match `adam_update`. It writes the parameter and
                    // the moments through views taken under read locks: these buffers belong to
                    // the model and the optimizer, are only touched by work on this one stream
                    // (whose order makes this update follow every read of the step), and no
                    // host code reads them during the launch.
                    unsafe { b.launch(grid(n)) }.w()?;
                    Ok(())
                })
            })
        })
    })
}

/// Adds the step's loss (times its rows) and correct predictions to the epoch's sums on the
/// device and advances the step cursor.
pub(super) fn finish_step(
    dev: &CudaDevice,
    logits: &Tensor,
    labels: &Tensor,
    loss: &Tensor,
    loss_sum: &CudaSlice<f32>,
    correct: &CudaSlice<u32>,
    step: &CudaSlice<u32>,
) -> Result<()> {
    let (rows, classes) = logits.dims2()?;
    let logits = logits.contiguous()?;
    with_storage(&logits, |ls, ll| {
        with_storage(labels, |ys, yl| {
            with_storage(loss, |lo, lol| {
                let (lv, yv, lossv) = (view::<f32>(ls, ll)?, view::<u32>(ys, yl)?, view::<f32>(lo, lol)?);
                let (func, r, c) = (function(dev, "finish_step")?, rows as u32, classes as u32);
                let stream = dev.cuda_stream();
                let mut b = stream.launch_builder(&func);
                b.arg(&lv).arg(&yv).arg(&lossv).arg(&r).arg(&c).arg(loss_sum).arg(correct).arg(step);
                // SAFETY: argument types match `finish_step`, which needs one 256-thread block.
                // It writes the epoch's sums and cursor, owned by the `EpochRunner` and read by
                // the host only after synchronising this stream.
                unsafe { b.launch(ONE_BLOCK) }.w()?;
                Ok(())
            })
        })
    })
}

/// `[n, c, h, w]` of a 4-D layout as the kernels' u32 arguments.
fn dims4(l: &Layout) -> Result<[u32; 4]> {
    let (n, c, h, w) = l.shape().dims4()?;
    if n * c * h * w > u32::MAX as usize {
        bail!("tensor of {} elements is too large for the CUDA kernels' 32-bit indices", n * c * h * w);
    }
    Ok([n as u32, c as u32, h as u32, w as u32])
}

/// Bias + ReLU + 2x2 max-pool over a convolution's output; see `bias_relu_pool_fwd`.
struct BiasReluPool;

impl CustomOp2 for BiasReluPool {
    fn name(&self) -> &'static str {
        "bias-relu-maxpool2"
    }
    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }
    fn cuda_fwd(&self, s1: &CudaStorage, l1: &Layout, s2: &CudaStorage, l2: &Layout) -> Result<(CudaStorage, Shape)> {
        let dev = &s1.device;
        let [n, c, h, w] = dims4(l1)?;
        if l2.shape().dims1()? != c as usize {
            bail!("{}: {c} channels but a bias of shape {:?}", self.name(), l2.shape());
        }
        let (x, b) = (view::<f32>(s1, l1)?, view::<f32>(s2, l2)?);
        let total = (n * c * (h / 2) * (w / 2)) as usize;
        // SAFETY: the kernel writes all `total` elements.
        let y = unsafe { dev.alloc::<f32>(total)? };
        let func = function(dev, "bias_relu_pool_fwd")?;
        let stream = dev.cuda_stream();
        let mut args = stream.launch_builder(&func);
        args.arg(&x).arg(&b).arg(&n).arg(&c).arg(&h).arg(&w).arg(&y);
        // SAFETY: argument types match `bias_relu_pool_fwd`; every index it forms is inside x.
        unsafe { args.launch(grid(total)) }.w()?;
        let shape = Shape::from((n as usize, c as usize, (h / 2) as usize, (w / 2) as usize));
        Ok((CudaStorage::wrap_cuda_slice(y, dev.clone()), shape))
    }
    fn bwd(&self, x: &Tensor, b: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let grad_x = x.apply_op3_no_bwd(b, &grad, &BiasReluPoolGrad { of_bias: false })?;
        let grad_b = x.apply_op3_no_bwd(b, &grad, &BiasReluPoolGrad { of_bias: true })?;
        Ok((Some(grad_x), Some(grad_b)))
    }
}

/// The gradient of [`BiasReluPool`] with respect to its input or (`of_bias`) its bias.
struct BiasReluPoolGrad {
    of_bias: bool,
}

impl CustomOp3 for BiasReluPoolGrad {
    fn name(&self) -> &'static str {
        "bias-relu-maxpool2-grad"
    }
    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        cuda_only(self.name())
    }
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let dev = &s1.device;
        let [n, c, h, w] = dims4(l1)?;
        let (x, b, grad_y) = (view::<f32>(s1, l1)?, view::<f32>(s2, l2)?, view::<f32>(s3, l3)?);
        if grad_y.len() != (n * c * (h / 2) * (w / 2)) as usize || b.len() != c as usize {
            bail!("{}: gradient or bias of the wrong size", self.name());
        }
        let stream = dev.cuda_stream();
        if self.of_bias {
            // SAFETY: one block per channel writes each of the `c` elements.
            let grad_b = unsafe { dev.alloc::<f32>(c as usize)? };
            let func = function(dev, "bias_relu_pool_bwd_b")?;
            let mut args = stream.launch_builder(&func);
            args.arg(&x).arg(&b).arg(&grad_y).arg(&n).arg(&c).arg(&h).arg(&w).arg(&grad_b);
            let cfg = LaunchConfig { grid_dim: (c, 1, 1), ..ONE_BLOCK };
            // SAFETY: argument types match `bias_relu_pool_bwd_b`, which needs 256-thread blocks.
            unsafe { args.launch(cfg) }.w()?;
            Ok((CudaStorage::wrap_cuda_slice(grad_b, dev.clone()), l2.shape().clone()))
        } else {
            let grad_x = dev.alloc_zeros::<f32>(l1.shape().elem_count())?;
            let func = function(dev, "bias_relu_pool_bwd_x")?;
            let mut args = stream.launch_builder(&func);
            args.arg(&x).arg(&b).arg(&grad_y).arg(&n).arg(&c).arg(&h).arg(&w).arg(&grad_x);
            // SAFETY: argument types match `bias_relu_pool_bwd_x`; it writes inside grad_x only.
            unsafe { args.launch(grid(grad_y.len())) }.w()?;
            Ok((CudaStorage::wrap_cuda_slice(grad_x, dev.clone()), l1.shape().clone()))
        }
    }
}

/// conv2d (valid, stride 1) + bias + ReLU + 2x2 max-pool on CUDA: candle's convolution, then
/// one kernel forward and two backward for the rest (candle's stock ops take about a dozen, and
/// their max-pool backward scales a unique maximum's gradient by 1/4).
/// `x`: [N, C_in, H, W], `w`: [C_out, C_in, K, K], `b`: [C_out].
pub fn conv2d_relu_maxpool2(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    let y = x.conv2d(w, 0, 1, 1, 1)?;
    y.contiguous()?.apply_op2(&b.contiguous()?, BiasReluPool)
}
