//! A training run: the recipe, the epoch loop, evaluation, checkpoints, and the files it leaves.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use candle_core::{D, DType, Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{self, CHECKPOINT_FILE, MODEL_FILE, TrainState};
use crate::data::{Dataset, DatasetKind, IMAGE_PIXELS, IMAGE_SIDE, Split, augment};
use crate::metrics::{self, EpochMetrics, MetricsFile};
use crate::model::{Architecture, Cnn};
use crate::optim::{Adam, AdamConfig};
use crate::plots;

/// What defines a run's result: with the same recipe on the same device, two runs give the
/// same bits.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Recipe {
    pub dataset: DatasetKind,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
    /// Train on the first `limit` training images only.
    pub limit: Option<usize>,
    /// The network: a name from [`crate::model::PRESETS`]. Files written before there was a
    /// choice hold no `arch`: they are the seed.
    #[serde(default = "seed_arch")]
    pub arch: String,
    /// Train on freshly augmented images every epoch (`data::augment`); off in the seed recipe.
    /// Files written before there was a choice hold no `augment`: they were not augmented.
    #[serde(default)]
    pub augment: bool,
}

fn seed_arch() -> String {
    crate::model::SEED.to_owned()
}

impl Recipe {
    /// The seed recipe: Adam 1e-3, batch 32, 5 epochs.
    pub fn seed_recipe(dataset: DatasetKind) -> Recipe {
        Recipe { dataset, epochs: 5, batch_size: 32, lr: 1e-3, seed: 0, limit: None, arch: seed_arch(), augment: false }
    }

    /// The recipe's network.
    pub fn architecture(&self) -> Result<Architecture> {
        Architecture::preset(&self.arch).map_err(|e| anyhow::anyhow!("--arch: {e}"))
    }

    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            bail!("--epochs must be at least 1");
        }
        if self.batch_size == 0 {
            bail!("--batch-size must be at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            bail!("--lr must be a positive finite number, got {}", self.lr);
        }
        if self.limit == Some(0) {
            bail!("--limit must be at least 1");
        }
        self.architecture()?;
        Ok(())
    }
}

/// How often (in steps) the progress bar reads the running loss back from the device. Reading
/// it every step would force a host sync per step on a GPU.
const PROGRESS_EVERY: usize = 25;
/// Small enough that evaluation does not raise the peak memory above training's.
const EVAL_BATCH: usize = 250;

/// Where a run writes its files, and how it talks.
pub struct RunOptions {
    pub out_dir: PathBuf,
    pub device: Device,
    pub show_progress: bool,
    /// On CUDA, replay each full-batch step from a captured CUDA graph (see `cuda`).
    pub cuda_graph: bool,
}

impl RunOptions {
    /// Quiet, CUDA graphs on.
    pub fn new(out_dir: impl Into<PathBuf>, device: Device) -> RunOptions {
        RunOptions { out_dir: out_dir.into(), device, show_progress: false, cuda_graph: true }
    }
}

/// Result of evaluating the model on a split.
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: f64,
    pub predictions: Vec<u8>,
}

/// Images `[n, 1, 28, 28]` in [0, 1] and labels `[n]` (u32) for the examples at `indices`.
fn batch(images: &Tensor, labels: &Tensor, indices: &Tensor) -> Result<(Tensor, Tensor)> {
    let n = indices.dim(0)?;
    let x = images
        .index_select(indices, 0)?
        .to_dtype(DType::F32)?
        .affine(1.0 / 255.0, 0.0)?
        .reshape((n, 1, IMAGE_SIDE, IMAGE_SIDE))?;
    Ok((x, labels.index_select(indices, 0)?))
}

/// The whole split on the device: u8 images (a quarter of f32's memory) and u32 labels.
fn upload(split: &Split, device: &Device) -> Result<(Tensor, Tensor)> {
    let images = Tensor::from_slice(&split.images, (split.len(), IMAGE_PIXELS), device)?;
    let labels: Vec<u32> = split.labels.iter().map(|&l| l as u32).collect();
    Ok((images, Tensor::from_vec(labels, split.len(), device)?))
}

/// Mean loss, accuracy and every prediction of `model` on `split`.
pub fn evaluate(model: &Cnn, split: &Split, device: &Device) -> Result<Evaluation> {
    let (images, labels) = upload(split, device)?;
    let mut loss_sum = 0.0;
    let mut predictions = Vec::with_capacity(split.len());
    for start in (0..split.len()).step_by(EVAL_BATCH) {
        let n = EVAL_BATCH.min(split.len() - start);
        let idx = Tensor::arange(start as u32, (start + n) as u32, device)?;
        let (x, y) = batch(&images, &labels, &idx)?;
        let logits = model.forward(&x)?;
        loss_sum += candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()? as f64 * n as f64;
        predictions.extend(logits.argmax(D::Minus1)?.to_vec1::<u32>()?.into_iter().map(|p| p as u8));
    }
    let correct = predictions.iter().zip(&split.labels).filter(|(p, l)| p == l).count();
    Ok(Evaluation { loss: loss_sum / split.len() as f64, accuracy: correct as f64 / split.len() as f64, predictions })
}

#[derive(Debug, thiserror::Error)]
#[error(
    "the training loss became {value} in epoch {epoch} (after step {step}); training stopped. \
     The last good checkpoint ({checkpoint}) is untouched: lower --lr and --resume, or start over"
)]
pub struct NonFiniteLoss {
    pub epoch: usize,
    pub step: usize,
    pub value: f64,
    pub checkpoint: String,
}

/// How epochs run on the run's device: candle's generic path (the CPU, with its fast custom
/// ops), or the CUDA runner that keeps whole steps on the GPU.
enum Stepper {
    Generic,
    #[cfg(feature = "cuda")]
    Cuda(crate::cuda::EpochRunner),
}

impl Stepper {
    fn new(device: &Device, examples: usize, batch_size: usize, cuda_graph: bool) -> Result<Stepper> {
        match device {
            #[cfg(feature = "cuda")]
            Device::Cuda(_) => {
                let mode = if cuda_graph { crate::cuda::GraphMode::On } else { crate::cuda::GraphMode::Off };
                Ok(Stepper::Cuda(crate::cuda::EpochRunner::new(device, examples, batch_size, mode)?))
            }
            _ => {
                let _ = (examples, batch_size, cuda_graph);
                Ok(Stepper::Generic)
            }
        }
    }

    /// One pass over `order`. Returns (mean loss, accuracy).
    #[allow(clippy::too_many_arguments)]
    fn train_epoch(
        &mut self,
        model: &Cnn,
        adam: &mut Adam,
        images: &Tensor,
        labels: &Tensor,
        order: &[u32],
        batch_size: usize,
        epoch: usize,
        bar: &ProgressBar,
        checkpoint_path: &Path,
    ) -> Result<(f64, f64)> {
        match self {
            Stepper::Generic => train_epoch(model, adam, images, labels, order, batch_size, epoch, bar, checkpoint_path),
            #[cfg(feature = "cuda")]
            Stepper::Cuda(runner) => {
                let steps = order.len().div_ceil(batch_size);
                let stats =
                    runner.train_epoch(model, adam, images, labels, order, batch_size, PROGRESS_EVERY, |done, stats| {
                        let seen = (done * batch_size).min(order.len());
                        let mean = stats.loss_sum / seen as f64;
                        if !mean.is_finite() {
                            let checkpoint = checkpoint_path.display().to_string();
                            return Err(NonFiniteLoss { epoch, step: done, value: mean, checkpoint }.into());
                        }
                        bar.set_position(seen as u64);
                        let acc = stats.correct as f64 / seen as f64 * 100.0;
                        bar.set_message(format!("step {done}/{steps}  loss {mean:.4}  acc {acc:.2}%"));
                        Ok(())
                    })?;
                Ok((stats.loss_sum / order.len() as f64, stats.correct as f64 / order.len() as f64))
            }
        }
    }
}

/// One pass over the shuffled training split with candle's generic ops. Returns (mean loss,
/// accuracy).
#[allow(clippy::too_many_arguments)]
fn train_epoch(
    model: &Cnn,
    adam: &mut Adam,
    images: &Tensor,
    labels: &Tensor,
    order: &[u32],
    batch_size: usize,
    epoch: usize,
    bar: &ProgressBar,
    checkpoint_path: &Path,
) -> Result<(f64, f64)> {
    let device = images.device();
    let mut loss_sum = Tensor::zeros((), DType::F32, device)?;
    let mut correct_sum = Tensor::zeros((), DType::U32, device)?;
    let mut seen = 0usize;
    let steps = order.len().div_ceil(batch_size);
    let check = |loss_sum: &Tensor, seen: usize, step: usize| -> Result<f64> {
        let mean = loss_sum.to_scalar::<f32>()? as f64 / seen as f64;
        if !mean.is_finite() {
            return Err(NonFiniteLoss { epoch, step, value: mean, checkpoint: checkpoint_path.display().to_string() }.into());
        }
        Ok(mean)
    };
    for (step, chunk) in order.chunks(batch_size).enumerate() {
        let idx = Tensor::from_slice(chunk, chunk.len(), device)?;
        let (x, y) = batch(images, labels, &idx)?;
        let logits = model.forward(&x)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        let grads = loss.backward()?;
        adam.step(&model.vars, &grads)?;
        loss_sum = (loss_sum + (loss.detach() * chunk.len() as f64)?)?;
        let correct = logits.detach().argmax(D::Minus1)?.eq(&y)?.to_dtype(DType::U32)?.sum_all()?;
        correct_sum = (correct_sum + correct)?;
        seen += chunk.len();
        bar.inc(chunk.len() as u64);
        if (step + 1) % PROGRESS_EVERY == 0 {
            let mean = check(&loss_sum, seen, step + 1)?;
            let acc = correct_sum.to_scalar::<u32>()? as f64 / seen as f64;
            bar.set_message(format!("step {}/{steps}  loss {mean:.4}  acc {:.2}%", step + 1, acc * 100.0));
        }
    }
    let mean = check(&loss_sum, seen, steps)?;
    Ok((mean, correct_sum.to_scalar::<u32>()? as f64 / seen as f64))
}

fn progress_bar(show: bool, len: usize, epoch: usize, epochs: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {human_pos}/{human_len} images  {msg}  {per_sec}  ETA {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

/// What a run produced.
#[derive(Debug)]
pub struct RunSummary {
    pub history: Vec<EpochMetrics>,
    pub out_dir: PathBuf,
}

/// Trains `recipe` on `data`, starting fresh or from `resume_from`, writing a checkpoint and
/// `model.safetensors` after every epoch and the metrics and plots at the end.
pub fn run(recipe: &Recipe, data: &Dataset, resume_from: Option<TrainState>, opts: &RunOptions) -> Result<RunSummary> {
    recipe.validate()?;
    let device = &opts.device;
    let checkpoint_path = opts.out_dir.join(CHECKPOINT_FILE);
    let train_split = match recipe.limit {
        Some(n) => data.train.clone().truncated(n),
        None => data.train.clone(),
    };
    let (images, labels) = upload(&train_split, device)?;
    let mut augmented = if recipe.augment { vec![0u8; train_split.images.len()] } else { Vec::new() };

    let mut rng = ChaCha8Rng::seed_from_u64(recipe.seed);
    let mut state = match resume_from {
        Some(state) => {
            if state.model.arch != recipe.architecture()? {
                bail!("the state to resume is a `{}` network, the recipe asks for `{}`", state.model.arch.name, recipe.arch);
            }
            rng.set_word_pos(state.rng_word_pos);
            state
        }
        None => {
            let model = Cnn::with_arch(&recipe.architecture()?, &mut rng, device)?;
            let adam = Adam::new(AdamConfig::with_lr(recipe.lr), &model.vars)?;
            TrainState { model, adam, epochs_done: 0, rng_word_pos: rng.get_word_pos(), history: Vec::new() }
        }
    };

    let mut stepper = Stepper::new(device, train_split.len(), recipe.batch_size, opts.cuda_graph)?;
    let mut last_test = None;
    for epoch in state.epochs_done + 1..=recipe.epochs {
        let mut order: Vec<u32> = (0..train_split.len() as u32).collect();
        order.shuffle(&mut rng);
        let bar = progress_bar(opts.show_progress, order.len(), epoch, recipe.epochs);
        let started = Instant::now();
        if recipe.augment {
            augment::augment_epoch(&train_split.images, recipe.seed, epoch, &mut augmented);
            // Into the same device buffer: a captured CUDA graph keeps reading from it.
            images.slice_set(&Tensor::from_slice(&augmented, (train_split.len(), IMAGE_PIXELS), device)?, 0, 0)?;
        }
        let (train_loss, train_accuracy) = stepper.train_epoch(
            &state.model,
            &mut state.adam,
            &images,
            &labels,
            &order,
            recipe.batch_size,
            epoch,
            &bar,
            &checkpoint_path,
        )?;
        let wall_seconds = started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let test = evaluate(&state.model, &data.test, device)?;
        if opts.show_progress {
            eprintln!(
                "epoch {epoch}/{}: {wall_seconds:.1} s, train loss {train_loss:.4} acc {:.2}%, test loss {:.4} acc {:.2}%",
                recipe.epochs,
                train_accuracy * 100.0,
                test.loss,
                test.accuracy * 100.0
            );
        }
        state.history.push(EpochMetrics {
            epoch,
            wall_seconds,
            train_loss,
            train_accuracy,
            test_loss: test.loss,
            test_accuracy: test.accuracy,
            peak_rss_bytes: metrics::peak_rss_bytes(),
        });
        state.epochs_done = epoch;
        state.rng_word_pos = rng.get_word_pos();
        checkpoint::save_model(&opts.out_dir.join(MODEL_FILE), &state.model, recipe, epoch, test.accuracy)?;
        checkpoint::save_checkpoint(&checkpoint_path, recipe, &state)?;
        MetricsFile::new(recipe, &device_name(device), &state.history).write(&opts.out_dir.join("metrics.json"))?;
        last_test = Some(test);
    }

    let test = match last_test {
        Some(t) => t,
        None => evaluate(&state.model, &data.test, device)?,
    };
    plots::write_all(&opts.out_dir, &state.history, &data.test, &test.predictions, data.kind)?;
    Ok(RunSummary { history: state.history, out_dir: opts.out_dir.clone() })
}

/// How metrics name the device.
pub fn device_name(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda".into(),
        Device::Metal(_) => "metal".into(),
    }
}

/// The closing table: one row per epoch.
pub fn summary_table(history: &[EpochMetrics]) -> String {
    let mut out = String::from("epoch | seconds | train loss | train acc | test loss | test acc | peak RSS\n");
    out.push_str("------|---------|------------|-----------|-----------|----------|---------\n");
    for m in history {
        let rss = m.peak_rss_bytes.map_or("-".to_owned(), |b| format!("{} MiB", b >> 20));
        out.push_str(&format!(
            "{:>5} | {:>7.1} | {:>10.4} | {:>8.2}% | {:>9.4} | {:>7.2}% | {rss}\n",
            m.epoch,
            m.wall_seconds,
            m.train_loss,
            m.train_accuracy * 100.0,
            m.test_loss,
            m.test_accuracy * 100.0
        ));
    }
    out
}
