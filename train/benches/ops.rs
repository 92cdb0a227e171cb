//! Times one training step of the MNIST CNN at batch 32 (forward, backward, Adam) with the
//! fast ops vs candle's stock ops. Plain `harness = false` timing loop: no extra dependencies.
//!
//! Run: `cargo bench -p train --bench ops [-- STEPS] [layers|conv1|conv2|stock|fast|train]...`
//! (the words pick sections; default all; `conv1`/`conv2` time only the fused op of that layer;
//! `train` runs the exact CPU step of `train::run` on real MNIST batches, see [`train_steps`]).
//!
//! Instruction counts (stable on a loaded machine, unlike wall time): under
//! `valgrind --tool=callgrind --dump-before='*train_steps*' --dump-before='*train_report*' <bench> 10 train`
//! the third dump (`callgrind.out.<pid>.3`) holds exactly the 10 measured steps, all threads
//! included (`--toggle-collect` would miss the rayon workers). `TRAIN_BENCH_DATA` can point at
//! uncompressed IDX files to make the (uncounted) loading faster under valgrind.

use std::time::Instant;

use anyhow::Result;
use candle_core::{D, DType};
use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use train::model::Cnn;
use train::ops;
use train::optim::{Adam, AdamConfig};

const BATCH: usize = 32;

fn rand_var(rng: &mut ChaCha8Rng, dims: &[usize], scale: f32) -> Result<Var> {
    let v: Vec<f32> = (0..dims.iter().product()).map(|_| rng.random_range(-scale..scale)).collect();
    Ok(Var::from_tensor(&Tensor::from_vec(v, dims, &Device::Cpu)?)?)
}

struct Model {
    c1w: Var,
    c1b: Var,
    c2w: Var,
    c2b: Var,
    l1w: Var,
    l1b: Var,
    l2w: Var,
    l2b: Var,
}

impl Model {
    fn new(seed: u64) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Ok(Self {
            c1w: rand_var(&mut rng, &[32, 1, 5, 5], 0.2)?,
            c1b: rand_var(&mut rng, &[32], 0.2)?,
            c2w: rand_var(&mut rng, &[64, 32, 5, 5], 0.035)?,
            c2b: rand_var(&mut rng, &[64], 0.035)?,
            l1w: rand_var(&mut rng, &[64, 1024], 0.03)?,
            l1b: rand_var(&mut rng, &[64], 0.03)?,
            l2w: rand_var(&mut rng, &[10, 64], 0.12)?,
            l2b: rand_var(&mut rng, &[10], 0.12)?,
        })
    }

    fn vars(&self) -> Vec<Var> {
        [&self.c1w, &self.c1b, &self.c2w, &self.c2b, &self.l1w, &self.l1b, &self.l2w, &self.l2b].map(Var::clone).to_vec()
    }

    fn forward(&self, x: &Tensor, fast: bool) -> Result<Tensor> {
        let block = |x: &Tensor, w: &Var, b: &Var| -> Result<Tensor> {
            Ok(if fast {
                ops::conv2d_relu_maxpool2(x, w, b)?
            } else {
                let y = x.conv2d(w, 0, 1, 1, 1)?.broadcast_add(&b.reshape((1, (), 1, 1))?)?;
                y.relu()?.max_pool2d(2)?
            })
        };
        let h = block(x, &self.c1w, &self.c1b)?;
        let h = block(&h, &self.c2w, &self.c2b)?.flatten_from(1)?;
        let h = h.matmul(&self.l1w.t()?)?.broadcast_add(&self.l1b)?.relu()?;
        Ok(h.matmul(&self.l2w.t()?)?.broadcast_add(&self.l2b)?)
    }
}

/// Mean and median milliseconds of `steps` calls of `f` after a warm-up.
fn time(steps: usize, mut f: impl FnMut() -> Result<()>) -> Result<(f64, f64)> {
    for _ in 0..steps / 5 + 3 {
        f()?;
    }
    let mut ms = Vec::with_capacity(steps);
    for _ in 0..steps {
        let t = Instant::now();
        f()?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms.iter().sum::<f64>() / steps as f64, ms[steps / 2]))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let steps = args.iter().find_map(|a| a.parse().ok()).unwrap_or(100);
    let words: Vec<&str> = args.iter().filter(|a| a.parse::<usize>().is_err()).map(|a| a.as_str()).collect();
    let want = |w: &str| words.is_empty() || words.contains(&w);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let xs: Vec<f32> = (0..BATCH * 784).map(|_| rng.random::<f32>()).collect();
    let x = Tensor::from_vec(xs, (BATCH, 1, 28, 28), &Device::Cpu)?;
    let labels: Vec<u32> = (0..BATCH).map(|_| rng.random_range(0..10)).collect();
    let y = Tensor::from_vec(labels, BATCH, &Device::Cpu)?;
    println!("threads: {}", rayon::current_num_threads());
    if want("train") {
        train_timing(steps)?;
    }
    if want("layers") || want("conv1") || want("conv2") {
        layer_timings(steps, &want)?;
    }
    for fast in [false, true] {
        let name = if fast { "fast " } else { "stock" };
        if !want(name.trim()) {
            continue;
        }
        let model = Model::new(1)?;
        let (m, med) = time(steps, || {
            model.forward(&x, fast)?;
            Ok(())
        })?;
        println!("{name} forward         : mean {m:7.2} ms  median {med:7.2} ms");
        let (m, med) = time(steps, || {
            let loss = candle_nn::loss::cross_entropy(&model.forward(&x, fast)?, &y)?;
            loss.backward()?;
            Ok(())
        })?;
        println!("{name} forward+backward: mean {m:7.2} ms  median {med:7.2} ms");
        let mut opt = AdamW::new(model.vars(), ParamsAdamW { lr: 1e-3, weight_decay: 0.0, ..Default::default() })?;
        let (m, med) = time(steps, || {
            let loss = candle_nn::loss::cross_entropy(&model.forward(&x, fast)?, &y)?;
            opt.backward_step(&loss)?;
            Ok(())
        })?;
        println!("{name} full step (Adam): mean {m:7.2} ms  median {med:7.2} ms  (~{:.1} s/epoch of 1875 steps)", m * 1.875);
        // The optimizer `train` itself uses (fused single-pass update on CPU).
        let vars = model.vars();
        let mut adam = Adam::new(AdamConfig::with_lr(1e-3), &vars)?;
        let (m, med) = time(steps, || {
            let loss = candle_nn::loss::cross_entropy(&model.forward(&x, fast)?, &y)?;
            adam.step(&vars, &loss.backward()?)?;
            Ok(())
        })?;
        println!("{name} full step (train Adam): mean {m:7.2} ms  median {med:7.2} ms  (~{:.1} s/epoch)", m * 1.875);
    }
    Ok(())
}

/// Per-layer timings of the fused op: forward alone, and forward + backward of `sum(y * r)`.
fn layer_timings(steps: usize, want: &dyn Fn(&str) -> bool) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for (name, xd, wd, x_var) in
        [("conv1", [BATCH, 1, 28, 28], [32, 1, 5, 5], false), ("conv2", [BATCH, 32, 12, 12], [64, 32, 5, 5], true)]
    {
        let x = rand_var(&mut rng, &xd, 1.0)?;
        if !want("layers") && !want(name) {
            continue;
        }
        let x = if x_var { x.as_tensor().clone() } else { x.as_tensor().detach() };
        let w = rand_var(&mut rng, &wd, 0.1)?;
        let b = rand_var(&mut rng, &wd[..1], 0.1)?;
        let y = ops::conv2d_relu_maxpool2(&x, &w, &b)?;
        let r = Tensor::ones(y.shape(), y.dtype(), y.device())?;
        for fast in [false, true] {
            if !fast && !want("layers") {
                continue;
            }
            let f = |x: &Tensor| -> Result<Tensor> {
                Ok(if fast { ops::conv2d_relu_maxpool2(x, &w, &b)? } else { ops::conv2d(x, &w, &b)?.relu()?.max_pool2d(2)? })
            };
            let (fwd, _) = time(steps, || {
                f(&x)?;
                Ok(())
            })?;
            let (both, _) = time(steps, || {
                (f(&x)? * &r)?.sum_all()?.backward()?;
                Ok(())
            })?;
            let what = if fast { "fused      " } else { "conv+stock pool" };
            println!("{name} {what}: fwd {fwd:6.2} ms, fwd+bwd {both:6.2} ms");
        }
    }
    Ok(())
}

/// Where the MNIST IDX files are looked for (`TRAIN_BENCH_DATA` overrides).
fn data_dir() -> std::path::PathBuf {
    std::env::var_os("TRAIN_BENCH_DATA")
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data"))
}

/// The CPU training step exactly as `train::run`'s epoch loop makes it: batch gather and
/// scaling, forward, cross-entropy, backward, Adam, and the running loss/accuracy sums.
struct Trainer {
    model: Cnn,
    adam: Adam,
    images: Tensor,
    labels: Tensor,
    loss_sum: Tensor,
    correct_sum: Tensor,
}

impl Trainer {
    fn new() -> Result<Option<Self>> {
        let data = match train::data::load(&data_dir(), train::data::DatasetKind::Mnist) {
            Ok(d) => d,
            Err(e) => {
                println!("train: skipped ({e})");
                return Ok(None);
            }
        };
        let dev = Device::Cpu;
        let split = data.train.truncated(BATCH * 200);
        let images = Tensor::from_slice(&split.images, (split.len(), 784), &dev)?;
        let labels: Vec<u32> = split.labels.iter().map(|&l| l as u32).collect();
        let labels = Tensor::from_vec(labels, split.len(), &dev)?;
        let model = Cnn::init(&mut ChaCha8Rng::seed_from_u64(0), &dev)?;
        let adam = Adam::new(AdamConfig::with_lr(1e-3), &model.vars)?;
        let loss_sum = Tensor::zeros((), DType::F32, &dev)?;
        let correct_sum = Tensor::zeros((), DType::U32, &dev)?;
        Ok(Some(Self { model, adam, images, labels, loss_sum, correct_sum }))
    }

    /// One step on the `step`-th batch (a fixed, scattered set of indices).
    fn step(&mut self, step: usize) -> Result<()> {
        let n = self.labels.dim(0)?;
        let chunk: Vec<u32> = (0..BATCH).map(|i| ((step * BATCH + i) * 7919 % n) as u32).collect();
        let idx = Tensor::from_slice(&chunk, BATCH, &Device::Cpu)?;
        let x = self.images.index_select(&idx, 0)?.to_dtype(DType::F32)?.affine(1.0 / 255.0, 0.0)?.reshape((BATCH, 1, 28, 28))?;
        let y = self.labels.index_select(&idx, 0)?;
        let logits = self.model.forward(&x)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        let grads = loss.backward()?;
        self.adam.step(&self.model.vars, &grads)?;
        self.loss_sum = (&self.loss_sum + (loss.detach() * BATCH as f64)?)?;
        let correct = logits.detach().argmax(D::Minus1)?.eq(&y)?.to_dtype(DType::U32)?.sum_all()?;
        self.correct_sum = (&self.correct_sum + correct)?;
        Ok(())
    }
}

/// `steps` training steps starting at batch `first` (not inlined: callgrind's toggle target).
#[inline(never)]
fn train_steps(t: &mut Trainer, first: usize, steps: usize) -> Result<()> {
    for s in first..first + steps {
        t.step(s)?;
    }
    Ok(())
}

fn train_timing(steps: usize) -> Result<()> {
    let Some(mut t) = Trainer::new()? else { return Ok(()) };
    const WARM_UP: usize = 3;
    train_steps(&mut t, 0, WARM_UP)?;
    let start = Instant::now();
    train_steps(&mut t, WARM_UP, steps)?;
    let ms = start.elapsed().as_secs_f64() * 1e3 / steps as f64;
    train_report(&t, steps + WARM_UP, ms)
}

/// Prints the timing and a digest of the run (not inlined: marks where the counted steps end).
#[inline(never)]
fn train_report(t: &Trainer, steps: usize, ms: f64) -> Result<()> {
    let loss = t.loss_sum.to_scalar::<f32>()? / (steps * BATCH) as f32;
    let bits = t.model.vars.iter().map(|v| v.flatten_all()?.to_vec1::<f32>()).collect::<candle_core::Result<Vec<_>>>()?;
    let hash = bits.iter().flatten().fold(0u64, |h, v| (h ^ v.to_bits() as u64).wrapping_mul(0x100000001b3));
    println!(
        "train step (run.rs CPU step, MNIST): mean {ms:7.2} ms (~{:.1} s/epoch)  mean loss {loss:.4}  params hash {hash:016x}",
        ms * 1.875
    );
    Ok(())
}
