//! Training on a CUDA GPU (feature `cuda`).
//!
//! A step of this small CNN is a few hundred tiny kernels, so on a GPU its time is launch and
//! host overhead, not arithmetic. This module cuts both:
//! - the data set and the epoch's shuffled order live on the device; the batch is gathered there
//!   by a kernel that reads the step cursor from device memory ([`kernels.cu`](kernels.cu));
//! - bias + ReLU + max-pool after each convolution is one kernel forward and two backward, with
//!   the CPU ops' gradient semantics;
//! - softmax cross-entropy and Adam are one kernel each (candle's tensor ops make ~15 and ~12
//!   launches of them per parameter); Adam updates parameters and moments in place;
//! - loss and accuracy accumulate on the device and are read once per progress update;
//! - since nothing in a step then depends on the host, the whole full-batch step (gather,
//!   forward, backward, Adam, statistics, cursor) is captured once as a CUDA graph and replayed:
//!   one launch per step ([`EpochRunner`]). `--cuda-graph off` runs the same kernels eagerly.

mod ops;

use candle_core::cuda_backend::cudarc::driver::{CudaGraph, CudaSlice, CudaStream, LaunchConfig, sys};
use candle_core::cuda_backend::{CudaDevice, WrapErr};
use candle_core::{Device, Result, Tensor};
use std::sync::Arc;

pub use ops::{AdamScalars, adam_update, conv2d_relu_maxpool2, cross_entropy, gather_batch};

use crate::model::Cnn;
use crate::optim::Adam;

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/train_kernels.ptx"));
const MODULE: &str = "train_kernels";

/// Opens CUDA device `ordinal` for training.
pub fn open_device(ordinal: usize) -> Result<Device> {
    let device = Device::new_cuda(ordinal)?;
    // SAFETY: cudarc's per-buffer events order work across streams; the trainer (and candle
    // under it) use the device's one stream only, whose order already serialises every use.
    // Without them each allocation costs two event creations and CUDA graph capture of a step
    // would record cross-capture event waits. No tensor exists yet on this device.
    unsafe { device.as_cuda_device()?.disable_event_tracking() };
    Ok(device)
}

/// Grid-stride launch shape for `n` elements.
fn grid(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(256).clamp(1, 1024) as u32;
    LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 }
}

/// One block of 256 threads (the reduction kernels assume exactly that).
const ONE_BLOCK: LaunchConfig = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };

/// Whether a run replays its step as a CUDA graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphMode {
    /// Capture the full-batch step once, then replay it (falls back to eager, with a warning, if
    /// capture fails).
    On,
    /// Launch every kernel of every step from the host.
    Off,
}

/// The device-side state of a CUDA training run, kept across epochs so that the captured step
/// graph's buffers stay where it recorded them.
pub struct EpochRunner {
    dev: CudaDevice,
    stream: Arc<CudaStream>,
    /// The epoch's shuffled order of training examples.
    order: CudaSlice<u32>,
    /// The step cursor within the epoch; kernels read it and `finish_step` advances it.
    step: CudaSlice<u32>,
    /// Adam's two step-dependent scalars for each step of the epoch.
    adam_table: CudaSlice<f32>,
    loss_sum: CudaSlice<f32>,
    correct: CudaSlice<u32>,
    mode: GraphMode,
    graph: Option<CudaGraph>,
    /// Eager steps run so far: capture waits for one, so that every kernel module is loaded and
    /// candle's cache of small host-to-device copies is warm before recording.
    eager_steps: usize,
    /// Keeps candle's cache of small host-to-device copies (shapes, strides) on: a step under
    /// capture may not copy from the host.
    _htod_cache: Box<dyn std::any::Any>,
}

/// What one epoch measured on the device.
pub struct EpochStats {
    pub loss_sum: f64,
    pub correct: u64,
}

impl EpochRunner {
    /// For `examples` training examples in batches of `batch_size`.
    pub fn new(device: &Device, examples: usize, batch_size: usize, mode: GraphMode) -> Result<EpochRunner> {
        let dev = device.as_cuda_device()?.clone();
        let stream = dev.cuda_stream();
        let steps = examples.div_ceil(batch_size);
        let htod_cache: Box<dyn std::any::Any> = Box::new(dev.enable_cuda_graph_htod_cache());
        Ok(EpochRunner {
            order: dev.alloc_zeros::<u32>(examples.max(1))?,
            step: dev.alloc_zeros::<u32>(1)?,
            adam_table: dev.alloc_zeros::<f32>(2 * steps.max(1))?,
            loss_sum: dev.alloc_zeros::<f32>(1)?,
            correct: dev.alloc_zeros::<u32>(1)?,
            dev,
            stream,
            mode,
            graph: None,
            eager_steps: 0,
            _htod_cache: htod_cache,
        })
    }

    /// Whether the full-batch steps are being replayed from a captured graph.
    pub fn replaying(&self) -> bool {
        self.graph.is_some()
    }

    /// One pass over `order`. `progress(steps_done, stats)` is called every `every` steps (the
    /// only host syncs of the epoch) and may stop the epoch with an error.
    #[allow(clippy::too_many_arguments)]
    pub fn train_epoch(
        &mut self,
        model: &Cnn,
        adam: &mut Adam,
        images: &Tensor,
        labels: &Tensor,
        order: &[u32],
        batch_size: usize,
        every: usize,
        mut progress: impl FnMut(usize, &EpochStats) -> anyhow::Result<()>,
    ) -> anyhow::Result<EpochStats> {
        let steps = order.len().div_ceil(batch_size);
        anyhow::ensure!(
            self.order.len() >= order.len() && self.adam_table.len() >= 2 * steps,
            "EpochRunner sized for a smaller epoch"
        );
        let table: Vec<f32> = (1..=steps as u64).flat_map(|k| adam.scalars(adam.step + k).as_pair()).collect();
        self.stream.memcpy_htod(order, &mut self.order).w()?;
        self.stream.memcpy_htod(&table, &mut self.adam_table).w()?;
        self.stream.memcpy_htod(&[0u32], &mut self.step).w()?;
        self.stream.memcpy_htod(&[0f32], &mut self.loss_sum).w()?;
        self.stream.memcpy_htod(&[0u32], &mut self.correct).w()?;

        let full_steps = order.len() / batch_size;
        for s in 0..steps {
            let count = if s < full_steps { batch_size } else { order.len() - s * batch_size };
            let full = count == batch_size;
            if full && self.mode == GraphMode::On && self.graph.is_none() && self.eager_steps > 0 {
                match self.capture(model, adam, images, labels, batch_size) {
                    Ok(graph) => self.graph = Some(graph),
                    Err(e) => {
                        eprintln!("warning: CUDA graph capture failed ({e}); running the steps eagerly");
                        self.mode = GraphMode::Off;
                    }
                }
            }
            match (&self.graph, full) {
                (Some(graph), true) => graph.launch().w()?,
                _ => {
                    self.step(model, adam, images, labels, batch_size, count)?;
                    self.eager_steps += 1;
                }
            }
            if (s + 1) % every == 0 && s + 1 < steps {
                progress(s + 1, &self.stats()?)?;
            }
        }
        adam.step += steps as u64;
        let stats = self.stats()?;
        progress(steps, &stats)?;
        Ok(stats)
    }

    fn stats(&self) -> Result<EpochStats> {
        let loss = self.stream.clone_dtoh(&self.loss_sum).w()?;
        let correct = self.stream.clone_dtoh(&self.correct).w()?;
        Ok(EpochStats { loss_sum: loss[0] as f64, correct: correct[0] as u64 })
    }

    /// Records one full-batch step (nothing runs until the graph is launched).
    fn capture(&mut self, model: &Cnn, adam: &Adam, images: &Tensor, labels: &Tensor, batch: usize) -> anyhow::Result<CudaGraph> {
        self.stream.synchronize().w()?;
        self.stream.begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED).w()?;
        let recorded = self.step(model, adam, images, labels, batch, batch);
        // Always end the capture, so the stream leaves capture mode even when recording failed.
        let graph = self.stream.end_capture(sys::CUgraphInstantiate_flags(0));
        recorded?;
        let graph = graph.w()?.ok_or_else(|| anyhow::anyhow!("the captured step recorded no work"))?;
        graph.upload().w()?;
        Ok(graph)
    }

    /// One step on the `count` examples at the cursor: everything stays on the device.
    fn step(&self, model: &Cnn, adam: &Adam, images: &Tensor, labels: &Tensor, batch: usize, count: usize) -> Result<()> {
        let (x, y) = gather_batch(images, labels, &self.order, &self.step, batch, count)?;
        let logits = model.forward(&x)?;
        let loss = cross_entropy(&logits, &y)?;
        let grads = loss.backward()?;
        let scalars = AdamScalars::from_config(&adam.config);
        for (i, var) in model.vars.iter().enumerate() {
            let Some(g) = grads.get(var) else { continue };
            adam_update(var, g, &adam.m[i], &adam.v[i], &self.adam_table, &self.step, &scalars)?;
        }
        ops::finish_step(&self.dev, &logits, &y, &loss, &self.loss_sum, &self.correct, &self.step)
    }
}
