//! Random models: layer templates filled in with random shapes-consistent tensors, written by the
//! runtime's own writer ([`runtime_mobile::write::ModelFile`]), so tests write files exactly as
//! the exporter does.

use runtime_mobile::format::window_out;
use runtime_mobile::{Activation, LayerSpec, Op, Pool, Quant, Shape};

use crate::Rng;

/// A conv/dense layer's tensors: the runtime's own writer's type.
pub use runtime_mobile::write::LayerWeights as Tensors;

/// A model to write: the runtime's own writer ([`runtime_mobile::write::ModelFile`]).
pub use runtime_mobile::write::ModelFile as Desc;

/// Writes a [`Desc`] with the runtime's writer.
pub trait Build {
    fn build(&self) -> Vec<u8>;
}

impl Build for Desc {
    fn build(&self) -> Vec<u8> {
        self.to_bytes().expect("the writer accepts the test's model")
    }
}

/// A layer template; shapes and tensors are filled in by [`random_desc`].
#[derive(Clone, Copy, Debug)]
pub enum T {
    Conv { out: usize, k: [usize; 2], s: [usize; 2], p: [usize; 2], relu: bool },
    Dense { out: usize, relu: bool },
    MaxPool { k: [usize; 2], s: [usize; 2], p: [usize; 2] },
    AvgPool { k: [usize; 2], s: [usize; 2], p: [usize; 2] },
    Relu,
    Flatten,
    Softmax,
}

fn random_tensors(rng: &mut Rng, n_out: usize, k_len: usize, allow_left_shift: bool) -> Tensors {
    let weight = (0..n_out * k_len).map(|_| rng.i8()).collect();
    let bias = (0..n_out).map(|_| rng.range(-20000, 20000) as i32).collect();
    let multiplier = (0..n_out).map(|_| rng.range(1 << 30, i32::MAX as i64) as i32).collect();
    // Aim the output at roughly +-50: acc ~ 5000*sqrt(K), so scale ~ 0.01/sqrt(K).
    let base = 7 + ((k_len as f64).log2() / 2.0).round() as i64;
    let shift = (0..n_out)
        .map(|_| {
            if allow_left_shift && rng.range(0, 7) == 0 {
                rng.range(-3, 0) as i32
            } else {
                rng.range(base - 2, base + 1).clamp(0, 31) as i32
            }
        })
        .collect();
    Tensors { weight, bias, multiplier, shift }
}

pub fn random_desc(rng: &mut Rng, input_shape: Shape, templates: &[T], left_shifts: bool) -> Desc {
    let mut shape = input_shape;
    let mut layers = Vec::new();
    // Zero points that keep activations spread out (relu outputs use [zp, 127]).
    let q = |rng: &mut Rng, relu: bool| Quant {
        scale: 0.05,
        zero_point: if relu { rng.range(-128, -70) } else { rng.range(-40, 40) } as i32,
    };
    for t in templates {
        let (op, tensors, out) = match *t {
            T::Conv { out, k, s, p, relu } => {
                let Shape::Chw(c, h, w) = shape else { panic!("conv on flat") };
                let oh = window_out(h, k[0], s[0], p[0]).unwrap();
                let ow = window_out(w, k[1], s[1], p[1]).unwrap();
                let act = if relu { Activation::Relu } else { Activation::None };
                let op = Op::Conv2d {
                    in_channels: c,
                    out_channels: out,
                    kernel: k,
                    stride: s,
                    padding: p,
                    activation: act,
                    output: q(rng, relu),
                };
                (op, Some(random_tensors(rng, out, c * k[0] * k[1], left_shifts)), Shape::Chw(out, oh, ow))
            }
            T::Dense { out, relu } => {
                let Shape::Flat(n) = shape else { panic!("dense on chw") };
                let act = if relu { Activation::Relu } else { Activation::None };
                let op = Op::Dense { in_features: n, out_features: out, activation: act, output: q(rng, relu) };
                (op, Some(random_tensors(rng, out, n, left_shifts)), Shape::Flat(out))
            }
            T::MaxPool { k, s, p } | T::AvgPool { k, s, p } => {
                let Shape::Chw(c, h, w) = shape else { panic!("pool on flat") };
                let pool = Pool { kernel: k, stride: s, padding: p };
                let out = Shape::Chw(c, window_out(h, k[0], s[0], p[0]).unwrap(), window_out(w, k[1], s[1], p[1]).unwrap());
                (if matches!(t, T::MaxPool { .. }) { Op::MaxPool2d(pool) } else { Op::AvgPool2d(pool) }, None, out)
            }
            T::Relu => (Op::Relu, None, shape),
            T::Flatten => (Op::Flatten, None, Shape::Flat(shape.len().unwrap())),
            T::Softmax => (Op::Softmax, None, shape),
        };
        layers.push((LayerSpec { op, output_shape: out }, tensors));
        shape = out;
    }
    let n = shape.len().unwrap();
    Desc {
        input_shape,
        input_quant: Quant { scale: 0.003921569, zero_point: rng.range(-128, 127) as i32 },
        layers,
        labels: (0..n).map(|i| format!("class {i}")).collect(),
        arena_bytes: None,
        f32_accuracy: Some(0.99),
        int8_accuracy: Some(0.985),
        dataset: None,
        producer: None,
        calibration: None,
    }
}

/// Every prefix of `desc` that is a valid model on its own (flattened if it ends in `[C,H,W]`),
/// so intermediate activations are compared bit for bit too, not only the final scores.
pub fn prefixes(desc: &Desc) -> Vec<Desc> {
    let mut out = Vec::new();
    for k in 1..desc.layers.len() {
        let mut layers = desc.layers[..k].to_vec();
        if !layers.iter().any(|(s, _)| s.op.has_tensors()) {
            continue;
        }
        let last = layers[k - 1].0.output_shape;
        if matches!(last, Shape::Chw(..)) {
            let flat = Shape::Flat(last.len().unwrap());
            layers.push((LayerSpec { op: Op::Flatten, output_shape: flat }, None));
        }
        let n = layers.last().unwrap().0.output_shape.len().unwrap();
        out.push(Desc { layers, labels: (0..n).map(|i| i.to_string()).collect(), ..desc.clone() });
    }
    out
}

/// The seed MNIST architecture.
pub const MNIST: [T; 7] = [
    T::Conv { out: 32, k: [5, 5], s: [1, 1], p: [0, 0], relu: true },
    T::MaxPool { k: [2, 2], s: [2, 2], p: [0, 0] },
    T::Conv { out: 64, k: [5, 5], s: [1, 1], p: [0, 0], relu: true },
    T::MaxPool { k: [2, 2], s: [2, 2], p: [0, 0] },
    T::Flatten,
    T::Dense { out: 64, relu: true },
    T::Dense { out: 10, relu: false },
];
