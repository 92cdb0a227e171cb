//! Adam (Kingma & Ba), the update PyTorch's `torch.optim.Adam` makes with no weight decay.
//!
//! Written here rather than taken from `candle_nn::AdamW` because a checkpoint must hold the
//! optimizer's moments and step count to resume bit for bit, and candle-nn keeps them private.

use candle_core::{Result, Tensor, Var};

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

impl Adam {
    pub fn new(config: AdamConfig, params: &[Var]) -> Result<Adam> {
        let zeros = || params.iter().map(|p| p.zeros_like()).collect::<Result<Vec<_>>>();
        Ok(Adam { config, step: 0, m: zeros()?, v: zeros()? })
    }

    /// One update of every parameter from its gradient. A parameter with no gradient is left
    /// alone, as PyTorch does.
    pub fn step(&mut self, params: &[Var], grads: &candle_core::backprop::GradStore) -> Result<()> {
        self.step += 1;
        let AdamConfig { lr, beta1, beta2, eps } = self.config;
        let t = self.step as i32;
        let bias1 = 1.0 - beta1.powi(t);
        let bias2_sqrt = (1.0 - beta2.powi(t)).sqrt();
        for (i, param) in params.iter().enumerate() {
            let Some(g) = grads.get(param) else { continue };
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_the_closed_form_first_step() {
        // After one step every coordinate moves by lr * sign(g) (up to eps).
        let p = Var::new(&[1.0f32, -2.0, 0.5], &Device::Cpu).unwrap();
        let loss = (p.as_tensor() * &Tensor::new(&[3.0f32, -0.5, 0.0], &Device::Cpu).unwrap())
            .unwrap()
            .sum_all()
            .unwrap();
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
}
