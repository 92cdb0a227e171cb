//! Test support: generates random models (written by the runtime's own writer) and computes an
//! independent reference output with naive loops and i64/i128 arithmetic.
#![allow(dead_code)]

use runtime_mobile::format::window_out;
use runtime_mobile::{Activation, LayerSpec, Op, Pool, Quant, Shape};

mod rng;
pub use rng::Rng;

/// A conv/dense layer's tensors: the runtime's own writer's type.
pub use runtime_mobile::write::LayerWeights as Tensors;

/// A model to write: the runtime's own writer ([`ModelFile`]), so tests write files exactly as
/// the exporter does.
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

/// Splits a file into its header JSON and data, for tests that corrupt the header.
pub fn split(file: &[u8]) -> (serde_json::Value, Vec<u8>) {
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice(&file[8..8 + n]).unwrap(), file[8 + n..].to_vec())
}

/// Assembles a file from a header text and data (no validation: tests feed it garbage).
pub fn assemble_raw(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    h.resize(h.len().div_ceil(8) * 8, b' ');
    let mut f = (h.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(&h);
    f.extend_from_slice(data);
    f
}

pub fn assemble(header: &serde_json::Value, data: &[u8]) -> Vec<u8> {
    assemble_raw(&header.to_string(), data)
}

/// Edits one metadata entry of a valid file.
pub fn with_meta(file: &[u8], key: &str, value: Option<&str>) -> Vec<u8> {
    let (mut h, d) = split(file);
    let m = h["__metadata__"].as_object_mut().unwrap();
    match value {
        Some(v) => m.insert(key.into(), v.into()),
        None => m.remove(key),
    };
    assemble(&h, &d)
}

// ---------------------------------------------------------------------------------------------
// Random models.

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

/// Every prefix of `desc` that is a valid model on its own (flattened if it ends in [C,H,W]),
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

// ---------------------------------------------------------------------------------------------
// Independent reference: unfused, layer by layer, wide integers, the format's definitions
// written out directly (not the runtime's code).

/// `round(acc * M * 2^-31 * 2^-shift)` as FORMAT.md defines it.
pub fn ref_requant(acc: i32, m: i32, shift: i32, zp: i32, relu: bool) -> i8 {
    let x: i64 = if shift < 0 {
        ((acc as i64) * (1i64 << -shift)).clamp(i32::MIN as i64, i32::MAX as i64)
    } else {
        acc as i64
    };
    // Round half up: floor((x*M + 2^30) / 2^31), saturated to i32.
    let hi = ((x as i128 * m as i128 + (1i128 << 30)).div_euclid(1i128 << 31)).min(i32::MAX as i128) as i64;
    // Round half away from zero for the right shift.
    let y = if shift > 0 {
        let d = 1i64 << shift;
        hi.signum() * ((hi.abs() + d / 2) / d)
    } else {
        hi
    };
    let lo = if relu { zp as i64 } else { -128 };
    (zp as i64 + y).clamp(lo, 127) as i8
}

fn ref_div_round(sum: i64, n: i64) -> i64 {
    sum.signum() * ((sum.abs() + n / 2) / n)
}

/// Runs `desc` on `input` naively. Returns the final int8 outputs.
pub fn reference(desc: &Desc, input: &[i8]) -> Vec<i8> {
    let mut x: Vec<i64> = input.iter().map(|&v| v as i64).collect();
    let mut shape = desc.input_shape;
    let mut zp = desc.input_quant.zero_point as i64;
    for (spec, t) in &desc.layers {
        match spec.op {
            Op::Conv2d { in_channels: c, out_channels: oc, kernel: [kh, kw], stride: [sh, sw], padding: [ph, pw], activation, output } => {
                let t = t.as_ref().unwrap();
                let Shape::Chw(_, h, w) = shape else { panic!() };
                let Shape::Chw(_, oh, ow) = spec.output_shape else { panic!() };
                let mut y = vec![0i64; oc * oh * ow];
                for o in 0..oc {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut acc = t.bias[o] as i64;
                            for ic in 0..c {
                                for ky in 0..kh {
                                    for kx in 0..kw {
                                        let iy = (oy * sh + ky) as i64 - ph as i64;
                                        let ix = (ox * sw + kx) as i64 - pw as i64;
                                        if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                                            continue; // padding is real zero: contributes nothing
                                        }
                                        let v = x[(ic * h + iy as usize) * w + ix as usize] - zp;
                                        acc += v * t.weight[((o * c + ic) * kh + ky) * kw + kx] as i64;
                                    }
                                }
                            }
                            let q = ref_requant(acc as i32, t.multiplier[o], t.shift[o], output.zero_point, activation == Activation::Relu);
                            y[(o * oh + oy) * ow + ox] = q as i64;
                        }
                    }
                }
                x = y;
                zp = output.zero_point as i64;
            }
            Op::Dense { in_features: n, out_features: m, activation, output } => {
                let t = t.as_ref().unwrap();
                x = (0..m)
                    .map(|o| {
                        let acc: i64 = t.bias[o] as i64
                            + (0..n).map(|i| (x[i] - zp) * t.weight[o * n + i] as i64).sum::<i64>();
                        ref_requant(acc as i32, t.multiplier[o], t.shift[o], output.zero_point, activation == Activation::Relu) as i64
                    })
                    .collect();
                zp = output.zero_point as i64;
            }
            Op::MaxPool2d(p) | Op::AvgPool2d(p) => {
                let avg = matches!(spec.op, Op::AvgPool2d(_));
                let Shape::Chw(c, h, w) = shape else { panic!() };
                let Shape::Chw(_, oh, ow) = spec.output_shape else { panic!() };
                let mut y = vec![0i64; c * oh * ow];
                for ch in 0..c {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut vals = Vec::new();
                            for ky in 0..p.kernel[0] {
                                for kx in 0..p.kernel[1] {
                                    let iy = (oy * p.stride[0] + ky) as i64 - p.padding[0] as i64;
                                    let ix = (ox * p.stride[1] + kx) as i64 - p.padding[1] as i64;
                                    if iy >= 0 && ix >= 0 && iy < h as i64 && ix < w as i64 {
                                        vals.push(x[(ch * h + iy as usize) * w + ix as usize]);
                                    }
                                }
                            }
                            y[(ch * oh + oy) * ow + ox] = if avg {
                                ref_div_round(vals.iter().sum(), vals.len() as i64)
                            } else {
                                *vals.iter().max().unwrap()
                            };
                        }
                    }
                }
                x = y;
            }
            Op::Relu => x.iter_mut().for_each(|v| *v = (*v).max(zp)),
            Op::Flatten | Op::Softmax => {}
        }
        shape = spec.output_shape;
    }
    x.into_iter().map(|v| i8::try_from(v).unwrap()).collect()
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
