//! Adam (Kingma & Ba), the update PyTorch's `torch.optim.Adam` makes with no weight decay.
//!
//! Written here rather than taken from `candle_nn::AdamW` because a checkpoint must hold the
//! optimizer's moments and step count to resume bit for bit, and candle-nn keeps them private.

use candle_core::{DType, Result, Storage, Tensor, Var};

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl AdamConfig {
    pub fn with_lr(lr: f64) -> AdamConfig {
        AdamConfig { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

pub struct Adam {
    pub config: AdamConfig,
    /// Steps taken so far.
    pub step: u64,
    /// First and second moment estimates, one per parameter, in parameter order.
    pub m: Vec<Tensor>,
    pub v: Vec<Tensor>,
}

/// The two scalars of Adam's update that change with the step count, as f32 (computed in f64,
/// then converted, the way candle converts a tensor op's scalar).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepScalars {
    /// lr / (1 - beta1^t)
    pub step_size: f32,
    /// 1 / sqrt(1 - beta2^t)
    pub inv_bias2_sqrt: f32,
}

impl StepScalars {
    pub fn as_pair(self) -> [f32; 2] {
        [self.step_size, self.inv_bias2_sqrt]
    }
}

impl Adam {
    /// The step-dependent scalars of step `t` (the first step is 1).
    pub fn scalars(&self, t: u64) -> StepScalars {
        let AdamConfig { lr, beta1, beta2, .. } = self.config;
        let t = i32::try_from(t).unwrap_or(i32::MAX);
        let bias1 = 1.0 - beta1.powi(t);
        let bias2_sqrt = (1.0 - beta2.powi(t)).sqrt();
        StepScalars { step_size: (lr / bias1) as f32, inv_bias2_sqrt: (1.0 / bias2_sqrt) as f32 }
    }

    pub fn new(config: AdamConfig, params: &[Var]) -> Result<Adam> {
        let zeros = || params.iter().map(|p| p.zeros_like()).collect::<Result<Vec<_>>>();
        Ok(Adam { config, step: 0, m: zeros()?, v: zeros()? })
    }

    /// One update of every parameter from its gradient. A parameter with no gradient is left
    /// alone, as PyTorch does.
    pub fn step(&mut self, params: &[Var], grads: &candle_core::backprop::GradStore) -> Result<()> {
        self.step_with(params, grads, true)
    }

    /// `fused`: take the single-pass CPU path where it applies (`false` only in tests, to
    /// compare it with the tensor-op path).
    fn step_with(&mut self, params: &[Var], grads: &candle_core::backprop::GradStore, fused: bool) -> Result<()> {
        self.step += 1;
        let AdamConfig { lr, beta1, beta2, eps } = self.config;
        let t = i32::try_from(self.step).unwrap_or(i32::MAX);
        let bias1 = 1.0 - beta1.powi(t);
        let bias2_sqrt = (1.0 - beta2.powi(t)).sqrt();
        let scalars = self.scalars(self.step);
        for (i, param) in params.iter().enumerate() {
            let Some(g) = grads.get(param) else { continue };
            let fast = if fused { cpu_update(param, g, &self.m[i], &self.v[i], self.config, scalars)? } else { None };
            if let Some((p, m, v)) = fast {
                param.set(&p)?;
                self.m[i] = m;
                self.v[i] = v;
                continue;
            }
            let m = ((&self.m[i] * beta1)? + (g * (1.0 - beta1))?)?;
            let v = ((&self.v[i] * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            // p -= lr / bias1 * m / (sqrt(v) / sqrt(bias2) + eps), PyTorch's arrangement.
            let denom = ((v.sqrt()? / bias2_sqrt)? + eps)?;
            let update = ((&m / &denom)? * (lr / bias1))?;
            param.set(&param.as_tensor().sub(&update)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }
}

/// The same update as the tensor-op path in one pass over CPU f32 data (the tensor ops make
/// ~10 passes with an allocation each, a measurable share of a CPU step). Every operation
/// mirrors what candle does for the tensor expression (scalar ops are `x * mul + add` in f32,
/// see candle's `Affine`), so both paths give bit-identical results. `None` off CPU/f32.
fn cpu_update(
    param: &Var,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
    AdamConfig { beta1, beta2, eps, .. }: AdamConfig,
    scalars: StepScalars,
) -> Result<Option<(Tensor, Tensor, Tensor)>> {
    let p = param.as_tensor();
    if g.shape() != p.shape() || m.shape() != p.shape() || v.shape() != p.shape() {
        return Ok(None);
    }
    let ts = [p.contiguous()?, g.contiguous()?, m.contiguous()?, v.contiguous()?];
    if !ts.iter().all(|t| t.device().is_cpu() && t.dtype() == DType::F32) {
        return Ok(None);
    }
    // Read guards on the four storages, held until the new tensors are built.
    let guards = ts.each_ref().map(|t| t.storage_and_layout());
    let mut data = Vec::with_capacity(4);
    for (storage, layout) in &guards {
        let (Storage::Cpu(s), Some((start, end))) = (&**storage, layout.contiguous_offsets()) else {
            return Ok(None);
        };
        data.push(&s.as_slice::<f32>()?[start..end]);
    }
    let [pd, gd, md, vd] = data[..] else { unreachable!("four tensors") };
    // Scalars as candle converts them (`T::from_f64`): f64 arithmetic first, then to f32.
    let (b1, c1) = (beta1 as f32, (1.0 - beta1) as f32);
    let (b2, c2) = (beta2 as f32, (1.0 - beta2) as f32);
    let (inv_b2, eps, step) = (scalars.inv_bias2_sqrt, eps as f32, scalars.step_size);
    let n = pd.len();
    let (mut new_p, mut new_m, mut new_v) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let g = gd[i];
        let m = (md[i] * b1 + 0.0) + (g * c1 + 0.0);
        let v = (vd[i] * b2 + 0.0) + ((g * g) * c2 + 0.0);
        let denom = (v.sqrt() * inv_b2 + 0.0) * 1.0 + eps;
        let update = (m / denom) * step + 0.0;
        new_p.push(pd[i] - update);
        new_m.push(m);
        new_v.push(v);
    }
    let t = |d: Vec<f32>| Tensor::from_vec(d, p.shape(), p.device());
    Ok(Some((t(new_p)?, t(new_m)?, t(new_v)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_the_closed_form_first_step() {
        // After one step every coordinate moves by lr * sign(g) (up to eps).
        let p = Var::new(&[1.0f32, -2.0, 0.5], &Device::Cpu).unwrap();
        let loss = (p.as_tensor() * &Tensor::new(&[3.0f32, -0.5, 0.0], &Device::Cpu).unwrap()).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let mut adam = Adam::new(AdamConfig::with_lr(0.1), std::slice::from_ref(&p)).unwrap();
        adam.step(std::slice::from_ref(&p), &grads).unwrap();
        let got = p.to_vec1::<f32>().unwrap();
        let want = [0.9f32, -1.9, 0.5];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
        assert_eq!(adam.step, 1);
    }

    #[test]
    fn fused_cpu_update_is_bit_identical_to_the_tensor_ops() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut vals = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect() };
        let (init, dirs) = (vals(257), vals(257 * 5));
        let run = |fused: bool| -> Vec<u32> {
            let p = Var::new(init.as_slice(), &Device::Cpu).unwrap();
            let ps = std::slice::from_ref(&p);
            let mut adam = Adam::new(AdamConfig::with_lr(0.01), ps).unwrap();
            for d in dirs.chunks_exact(257) {
                // A gradient of varied sign and magnitude, including exact zeros.
                let d = Tensor::new(d, &Device::Cpu).unwrap().round().unwrap();
                let loss = (p.as_tensor().sqr().unwrap() * d).unwrap().sum_all().unwrap();
                adam.step_with(ps, &loss.backward().unwrap(), fused).unwrap();
            }
            let mut out = p.to_vec1::<f32>().unwrap();
            out.extend(adam.m[0].to_vec1::<f32>().unwrap());
            out.extend(adam.v[0].to_vec1::<f32>().unwrap());
            out.iter().map(|v| v.to_bits()).collect()
        };
        assert_eq!(run(true), run(false));
    }
}
