//! The seed CNN: its parameters, their names and shapes, their initialisation and the forward pass.
//!
//! Tensor names follow PyTorch's `state_dict` of the same network so the weights read the
//! same in every tool (`conv1.weight` is `[out, in, kh, kw]`, `fc1.weight` is `[out, in]`):
//!
//! | name | shape |
//! | --- | --- |
//! | `conv1.weight` | `[32, 1, 5, 5]` |
//! | `conv1.bias` | `[32]` |
//! | `conv2.weight` | `[64, 32, 5, 5]` |
//! | `conv2.bias` | `[64]` |
//! | `fc1.weight` | `[64, 1024]` |
//! | `fc1.bias` | `[64]` |
//! | `fc2.weight` | `[10, 64]` |
//! | `fc2.bias` | `[10]` |

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::ops;

/// Name, shape and fan-in of every parameter, in a fixed order (the order of checkpoints and
/// of the optimizer state).
pub const PARAMS: [(&str, &[usize], usize); 8] = [
    ("conv1.weight", &[32, 1, 5, 5], 25),
    ("conv1.bias", &[32], 25),
    ("conv2.weight", &[64, 32, 5, 5], 800),
    ("conv2.bias", &[64], 800),
    ("fc1.weight", &[64, 1024], 1024),
    ("fc1.bias", &[64], 1024),
    ("fc2.weight", &[10, 64], 64),
    ("fc2.bias", &[10], 64),
];

/// One line describing the network, stored in the checkpoint metadata.
pub const ARCHITECTURE: &str = "input 1x28x28 in [0,1]; conv1 5x5 1->32 valid + ReLU + maxpool 2x2; \
     conv2 5x5 32->64 valid + ReLU + maxpool 2x2; flatten 1024 (CHW); fc1 1024->64 + ReLU; fc2 64->10";

pub struct Cnn {
    /// Parameters in `PARAMS` order.
    pub vars: Vec<Var>,
}

impl Cnn {
    /// PyTorch's default initialisation (Kaiming-uniform with a = sqrt(5), which for these layers
    /// is uniform in ±1/sqrt(fan_in) for weights and biases alike), drawn from our own seeded RNG
    /// because candle's CPU device cannot be seeded.
    pub fn init(rng: &mut ChaCha8Rng, device: &Device) -> Result<Cnn> {
        let vars = PARAMS
            .iter()
            .map(|&(_, shape, fan_in)| {
                let bound = 1.0 / (fan_in as f32).sqrt();
                let n: usize = shape.iter().product();
                let values: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
                Var::from_tensor(&Tensor::from_vec(values, shape, device)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Cnn { vars })
    }

    /// Rebuilds the model from named tensors, checking each name and shape.
    pub fn from_tensors(mut get: impl FnMut(&str) -> Option<Tensor>) -> anyhow::Result<Cnn> {
        let vars = PARAMS
            .iter()
            .map(|&(name, shape, _)| {
                let t = get(name).ok_or_else(|| anyhow::anyhow!("tensor `{name}` is missing"))?;
                anyhow::ensure!(t.dims() == shape, "tensor `{name}` has shape {:?}, expected {shape:?}", t.dims());
                anyhow::ensure!(t.dtype() == DType::F32, "tensor `{name}` is {:?}, expected f32", t.dtype());
                Ok(Var::from_tensor(&t)?)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Cnn { vars })
    }

    /// `(name, tensor)` pairs in `PARAMS` order.
    pub fn named_tensors(&self) -> impl Iterator<Item = (&'static str, &Tensor)> {
        PARAMS.iter().zip(&self.vars).map(|(p, v)| (p.0, v.as_tensor()))
    }

    /// Logits `[N, 10]` for images `[N, 1, 28, 28]` scaled to [0, 1].
    pub fn forward(&self, images: &Tensor) -> Result<Tensor> {
        let v = |i: usize| self.vars[i].as_tensor();
        let x = conv_block(images, v(0), v(1))?;
        let x = conv_block(&x, v(2), v(3))?;
        let x = x.flatten_from(1)?;
        let x = x.matmul(&v(4).t()?)?.broadcast_add(v(5))?.relu()?;
        x.matmul(&v(6).t()?)?.broadcast_add(v(7))
    }
}

/// conv2d + bias + ReLU + 2x2 max-pool with the device's fast implementation.
fn conv_block(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if x.device().is_cuda() {
        return crate::cuda::conv2d_relu_maxpool2(x, w, b);
    }
    ops::conv2d_relu_maxpool2(x, w, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn shapes_follow_the_architecture() {
        let model = Cnn::init(&mut ChaCha8Rng::seed_from_u64(0), &Device::Cpu).unwrap();
        let x = Tensor::zeros((3, 1, 28, 28), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(model.forward(&x).unwrap().dims(), &[3, 10]);
        let count: usize = model.vars.iter().map(|v| v.elem_count()).sum();
        assert_eq!(count, 32 * 25 + 32 + 64 * 800 + 64 + 64 * 1024 + 64 + 640 + 10);
    }

    #[test]
    fn init_is_seeded_and_bounded() {
        let a = Cnn::init(&mut ChaCha8Rng::seed_from_u64(7), &Device::Cpu).unwrap();
        let b = Cnn::init(&mut ChaCha8Rng::seed_from_u64(7), &Device::Cpu).unwrap();
        let c = Cnn::init(&mut ChaCha8Rng::seed_from_u64(8), &Device::Cpu).unwrap();
        let flat = |m: &Cnn| m.vars[2].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(&a), flat(&b));
        assert_ne!(flat(&a), flat(&c));
        let bound = 1.0 / 800f32.sqrt();
        assert!(flat(&a).iter().all(|w| w.abs() <= bound));
    }

    #[test]
    fn from_tensors_names_what_is_wrong() {
        let model = Cnn::init(&mut ChaCha8Rng::seed_from_u64(0), &Device::Cpu).unwrap();
        let tensors: std::collections::HashMap<_, _> =
            model.named_tensors().map(|(n, t)| (n.to_owned(), t.clone())).collect();
        assert!(Cnn::from_tensors(|n| tensors.get(n).cloned()).is_ok());
        let err = Cnn::from_tensors(|n| if n == "fc1.bias" { None } else { tensors.get(n).cloned() });
        assert!(err.err().unwrap().to_string().contains("`fc1.bias` is missing"));
        let err = Cnn::from_tensors(|n| {
            if n == "conv2.weight" { Some(Tensor::zeros((64, 32, 3, 3), DType::F32, &Device::Cpu).unwrap()) } else { tensors.get(n).cloned() }
        });
        assert!(err.err().unwrap().to_string().contains("`conv2.weight` has shape [64, 32, 3, 3]"));
    }
}
