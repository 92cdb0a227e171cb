//! The networks `train` knows: an [`Architecture`] is data (a list of [`Layer`]s); the model's
//! parameters, their names and shapes, their initialisation, the forward pass and the checkpoint
//! metadata all derive from it.
//!
//! Every architecture reads `[N, 1, 28, 28]` images in [0, 1] and ends in 10 logits. Presets
//! (`train --arch NAME`):
//!
//! | name | layers |
//! | --- | --- |
//! | `seed` (default) | conv 5x5 1->32 valid, ReLU, maxpool 2; conv 5x5 32->64 valid, ReLU, maxpool 2; flatten 1024; dense 64 + ReLU; dense 10 |
//! | `narrow` | conv 5x5 1->8 valid, ReLU, maxpool 2; conv 5x5 8->16 valid, ReLU, maxpool 2; flatten 256; dense 32 + ReLU; dense 10 |
//! | `wide` | conv 3x3 pad 1 1->16, ReLU, maxpool 2; conv 3x3 pad 1 16->32, ReLU, avgpool 2; flatten 1568; dense 128 + ReLU; dense 10 |
//! | `strided` | conv 3x3 stride 2 pad 1 1->16, ReLU; conv 3x3 stride 2 pad 1 16->32, ReLU; flatten 1568; dense 10 |
//!
//! Tensor names follow PyTorch's `state_dict` of the same network so the weights read the same
//! in every tool: the i-th convolution is `conv{i}`, the i-th dense layer `fc{i}`, each with
//! `.weight` (conv `[out, in, kh, kw]`, dense `[out, in]`) and `.bias` (`[out]`). For the seed:
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

use std::fmt;

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::data::{CLASSES, IMAGE_SIDE};
use crate::ops;

/// The seed network's parameters: name, shape and fan-in, in order (the order of checkpoints
/// and of the optimizer state). [`Architecture::params`] of [`Architecture::seed`] equals this.
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

/// The seed network's line in the checkpoint metadata (`architecture`); [`Architecture::describe`]
/// of [`Architecture::seed`] equals this, so files written before layer lists existed still load.
pub const ARCHITECTURE: &str = "input 1x28x28 in [0,1]; conv1 5x5 1->32 valid + ReLU + maxpool 2x2; \
     conv2 5x5 32->64 valid + ReLU + maxpool 2x2; flatten 1024 (CHW); fc1 1024->64 + ReLU; fc2 64->10";

/// Name of the default architecture.
pub const SEED: &str = "seed";

/// The presets `--arch` accepts, in the order `--help` lists them.
pub const PRESETS: [&str; 4] = ["seed", "narrow", "wide", "strided"];

/// One layer. Square kernels, strides and paddings; pools have no padding (candle's pools do not
/// pad). Serialised as `{"op": "conv2d", ...}` in the checkpoint metadata (`layers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Layer {
    /// Zero padding on every side.
    Conv2d {
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    },
    Relu,
    MaxPool2d {
        kernel: usize,
        stride: usize,
    },
    /// Mean over the window (no padding, so every window is full).
    AvgPool2d {
        kernel: usize,
        stride: usize,
    },
    /// `[C, H, W]` -> `[C*H*W]`, CHW order.
    Flatten,
    Dense {
        in_features: usize,
        out_features: usize,
    },
}

/// The shape of one image's activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActShape {
    Chw(usize, usize, usize),
    Flat(usize),
}

impl ActShape {
    pub fn len(self) -> usize {
        match self {
            ActShape::Chw(c, h, w) => c * h * w,
            ActShape::Flat(n) => n,
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for ActShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActShape::Chw(c, h, w) => write!(f, "[{c}, {h}, {w}]"),
            ActShape::Flat(n) => write!(f, "[{n}]"),
        }
    }
}

/// One trainable tensor of an architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    /// Of the layer it belongs to (weights and bias share it).
    pub fan_in: usize,
}

/// Why a layer list is not a network `train` can build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchError {
    #[error("unknown architecture `{0}`; known: {known}", known = PRESETS.join(", "))]
    UnknownPreset(String),
    #[error("layer {index} ({layer:?}) cannot take a {input} input: {why}")]
    BadLayer { index: usize, layer: Layer, input: ActShape, why: String },
    #[error("the network must end with {CLASSES} flat outputs, it ends with {0}")]
    BadOutput(ActShape),
    #[error("the network has no conv2d or dense layer")]
    NoParameters,
}

/// A network: a name (the preset's, or any label) and its layers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Architecture {
    pub name: String,
    pub layers: Vec<Layer>,
}

/// Input of every architecture: one 28x28 channel.
pub const INPUT_SHAPE: ActShape = ActShape::Chw(1, IMAGE_SIDE, IMAGE_SIDE);

fn conv(in_channels: usize, out_channels: usize, kernel: usize, stride: usize, padding: usize) -> Layer {
    Layer::Conv2d { in_channels, out_channels, kernel, stride, padding }
}

fn dense(in_features: usize, out_features: usize) -> Layer {
    Layer::Dense { in_features, out_features }
}

const MAXPOOL2: Layer = Layer::MaxPool2d { kernel: 2, stride: 2 };

impl Architecture {
    /// The classic MNIST CNN (see the module docs).
    pub fn seed() -> Architecture {
        use Layer::*;
        let layers = vec![
            conv(1, 32, 5, 1, 0),
            Relu,
            MAXPOOL2,
            conv(32, 64, 5, 1, 0),
            Relu,
            MAXPOOL2,
            Flatten,
            dense(1024, 64),
            Relu,
            dense(64, 10),
        ];
        Architecture { name: SEED.to_owned(), layers }
    }

    /// A preset by name ([`PRESETS`]).
    pub fn preset(name: &str) -> std::result::Result<Architecture, ArchError> {
        use Layer::*;
        let layers = match name {
            "seed" => return Ok(Architecture::seed()),
            // The seed's shape at a quarter of the channels: ~5k parameters, a 6 KB int8 file.
            "narrow" => vec![
                conv(1, 8, 5, 1, 0),
                Relu,
                MAXPOOL2,
                conv(8, 16, 5, 1, 0),
                Relu,
                MAXPOOL2,
                Flatten,
                dense(256, 32),
                Relu,
                dense(32, 10),
            ],
            // What the seed does not use: 3x3 kernels with padding 1, and an average pool.
            "wide" => vec![
                conv(1, 16, 3, 1, 1),
                Relu,
                MAXPOOL2,
                conv(16, 32, 3, 1, 1),
                Relu,
                AvgPool2d { kernel: 2, stride: 2 },
                Flatten,
                dense(1568, 128),
                Relu,
                dense(128, 10),
            ],
            // Stride-2 convolutions instead of pools, straight into the classifier.
            "strided" => vec![conv(1, 16, 3, 2, 1), Relu, conv(16, 32, 3, 2, 1), Relu, Flatten, dense(1568, 10)],
            other => return Err(ArchError::UnknownPreset(other.to_owned())),
        };
        Ok(Architecture { name: name.to_owned(), layers })
    }

    /// The output shape of every layer, checking that each layer fits its input and that the
    /// network ends in [`CLASSES`] flat outputs.
    pub fn shapes(&self) -> std::result::Result<Vec<ActShape>, ArchError> {
        let mut shapes = Vec::with_capacity(self.layers.len());
        let mut cur = INPUT_SHAPE;
        for (index, &layer) in self.layers.iter().enumerate() {
            let bad = |why: String| ArchError::BadLayer { index, layer, input: cur, why };
            let window = |n: usize, k: usize, s: usize, p: usize| -> std::result::Result<usize, ArchError> {
                if k == 0 || s == 0 {
                    return Err(bad("kernel and stride must be at least 1".into()));
                }
                if n + 2 * p < k {
                    return Err(bad(format!("kernel {k} is larger than the padded input {}", n + 2 * p)));
                }
                Ok((n + 2 * p - k) / s + 1)
            };
            cur = match (layer, cur) {
                (Layer::Conv2d { in_channels, out_channels, kernel, stride, padding }, ActShape::Chw(c, h, w)) => {
                    if c != in_channels {
                        return Err(bad(format!("it expects {in_channels} channels")));
                    }
                    if out_channels == 0 {
                        return Err(bad("out_channels must be at least 1".into()));
                    }
                    ActShape::Chw(out_channels, window(h, kernel, stride, padding)?, window(w, kernel, stride, padding)?)
                }
                (Layer::MaxPool2d { kernel, stride } | Layer::AvgPool2d { kernel, stride }, ActShape::Chw(c, h, w)) => {
                    ActShape::Chw(c, window(h, kernel, stride, 0)?, window(w, kernel, stride, 0)?)
                }
                (Layer::Relu, s) => s,
                (Layer::Flatten, s) => ActShape::Flat(s.len()),
                (Layer::Dense { in_features, out_features }, ActShape::Flat(n)) => {
                    if n != in_features {
                        return Err(bad(format!("it expects {in_features} features")));
                    }
                    if out_features == 0 {
                        return Err(bad("out_features must be at least 1".into()));
                    }
                    ActShape::Flat(out_features)
                }
                (Layer::Dense { .. }, ActShape::Chw(..)) => return Err(bad("dense needs a flat input (add a flatten)".into())),
                (_, ActShape::Flat(_)) => return Err(bad("it needs a [C, H, W] input".into())),
            };
            shapes.push(cur);
        }
        if cur != ActShape::Flat(CLASSES) {
            return Err(ArchError::BadOutput(cur));
        }
        if !self.layers.iter().any(|l| matches!(l, Layer::Conv2d { .. } | Layer::Dense { .. })) {
            return Err(ArchError::NoParameters);
        }
        Ok(shapes)
    }

    /// The layer name of each conv2d/dense layer (`conv1`, `conv2`, ..., `fc1`, ...), by layer
    /// index (`None` for layers without parameters).
    pub fn layer_names(&self) -> Vec<Option<String>> {
        let (mut convs, mut denses) = (0, 0);
        self.layers
            .iter()
            .map(|l| match l {
                Layer::Conv2d { .. } => {
                    convs += 1;
                    Some(format!("conv{convs}"))
                }
                Layer::Dense { .. } => {
                    denses += 1;
                    Some(format!("fc{denses}"))
                }
                _ => None,
            })
            .collect()
    }

    /// Every parameter, in checkpoint order: per conv2d/dense layer, its weight then its bias.
    pub fn params(&self) -> Vec<ParamSpec> {
        let mut params = Vec::new();
        for (layer, name) in self.layers.iter().zip(self.layer_names()) {
            let Some(name) = name else { continue };
            let (weight, out, fan_in) = match *layer {
                Layer::Conv2d { in_channels, out_channels, kernel, .. } => {
                    (vec![out_channels, in_channels, kernel, kernel], out_channels, in_channels * kernel * kernel)
                }
                Layer::Dense { in_features, out_features } => (vec![out_features, in_features], out_features, in_features),
                _ => unreachable!("layer_names names conv2d and dense layers only"),
            };
            params.push(ParamSpec { name: format!("{name}.weight"), shape: weight, fan_in });
            params.push(ParamSpec { name: format!("{name}.bias"), shape: vec![out], fan_in });
        }
        params
    }

    /// One human-readable line (the checkpoint's `architecture`); for the seed it is [`ARCHITECTURE`].
    pub fn describe(&self) -> String {
        let (c, h, w) = match INPUT_SHAPE {
            ActShape::Chw(c, h, w) => (c, h, w),
            ActShape::Flat(_) => unreachable!("the input is an image"),
        };
        let mut parts = vec![format!("input {c}x{h}x{w} in [0,1]")];
        let shapes = self.shapes().ok();
        let names = self.layer_names();
        let pool = |kind: &str, k: usize, s: usize| {
            if k == s { format!("{kind} {k}x{k}") } else { format!("{kind} {k}x{k} stride {s}") }
        };
        for (i, layer) in self.layers.iter().enumerate() {
            let name = names[i].as_deref().unwrap_or("");
            match *layer {
                Layer::Conv2d { in_channels, out_channels, kernel, stride, padding } => {
                    let pad = if padding == 0 { "valid".to_owned() } else { format!("pad {padding}") };
                    let stride = if stride == 1 { String::new() } else { format!(" stride {stride}") };
                    parts.push(format!("{name} {kernel}x{kernel} {in_channels}->{out_channels} {pad}{stride}"));
                }
                Layer::Dense { in_features, out_features } => parts.push(format!("{name} {in_features}->{out_features}")),
                Layer::Flatten => {
                    let n = shapes.as_ref().map_or(String::new(), |s| format!(" {}", s[i].len()));
                    parts.push(format!("flatten{n} (CHW)"));
                }
                Layer::Relu => append(&mut parts, "ReLU"),
                Layer::MaxPool2d { kernel, stride } => append(&mut parts, &pool("maxpool", kernel, stride)),
                Layer::AvgPool2d { kernel, stride } => append(&mut parts, &pool("avgpool", kernel, stride)),
            }
        }
        parts.join("; ")
    }

    /// The layer list as JSON (the checkpoint's `layers`).
    pub fn layers_json(&self) -> String {
        serde_json::to_string(&self.layers).expect("layers serialise")
    }

    /// Parses [`Architecture::layers_json`] output and checks the layers chain.
    pub fn from_layers_json(name: &str, json: &str) -> anyhow::Result<Architecture> {
        let layers: Vec<Layer> =
            serde_json::from_str(json).map_err(|e| anyhow::anyhow!("`layers` is not a valid layer list: {e}"))?;
        let arch = Architecture { name: name.to_owned(), layers };
        arch.shapes()?;
        Ok(arch)
    }
}

/// Adds ` + what` to the last part (a ReLU or pool belongs to the layer before it).
fn append(parts: &mut [String], what: &str) {
    if let Some(last) = parts.last_mut() {
        last.push_str(" + ");
        last.push_str(what);
    }
}

pub struct Cnn {
    pub arch: Architecture,
    /// `arch.params()`, resolved once.
    pub params: Vec<ParamSpec>,
    /// Parameters in `params` order.
    pub vars: Vec<Var>,
}

impl Cnn {
    /// The seed network, initialised as [`Cnn::with_arch`] does.
    pub fn init(rng: &mut ChaCha8Rng, device: &Device) -> Result<Cnn> {
        Cnn::with_arch(&Architecture::seed(), rng, device)
    }

    /// PyTorch's default initialisation (Kaiming-uniform with a = sqrt(5), which for these layers
    /// is uniform in ±1/sqrt(fan_in) for weights and biases alike), drawn in parameter order from
    /// our own seeded RNG because candle's CPU device cannot be seeded.
    pub fn with_arch(arch: &Architecture, rng: &mut ChaCha8Rng, device: &Device) -> Result<Cnn> {
        arch.shapes().map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let params = arch.params();
        let vars = params
            .iter()
            .map(|p| {
                let bound = 1.0 / (p.fan_in as f32).sqrt();
                let n: usize = p.shape.iter().product();
                let values: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
                Var::from_tensor(&Tensor::from_vec(values, p.shape.as_slice(), device)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Cnn { arch: arch.clone(), params, vars })
    }

    /// Rebuilds the seed network from named tensors (see [`Cnn::from_tensors_for`]).
    pub fn from_tensors(get: impl FnMut(&str) -> Option<Tensor>) -> anyhow::Result<Cnn> {
        Cnn::from_tensors_for(&Architecture::seed(), get)
    }

    /// Rebuilds `arch` from named tensors, checking each name, shape and dtype.
    pub fn from_tensors_for(arch: &Architecture, mut get: impl FnMut(&str) -> Option<Tensor>) -> anyhow::Result<Cnn> {
        arch.shapes()?;
        let params = arch.params();
        let vars = params
            .iter()
            .map(|p| {
                let (name, shape) = (&p.name, p.shape.as_slice());
                let t = get(name).ok_or_else(|| anyhow::anyhow!("tensor `{name}` is missing"))?;
                anyhow::ensure!(t.dims() == shape, "tensor `{name}` has shape {:?}, expected {shape:?}", t.dims());
                anyhow::ensure!(t.dtype() == DType::F32, "tensor `{name}` is {:?}, expected f32", t.dtype());
                Ok(Var::from_tensor(&t)?)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Cnn { arch: arch.clone(), params, vars })
    }

    /// `(name, tensor)` pairs in parameter order.
    pub fn named_tensors(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.params.iter().zip(&self.vars).map(|(p, v)| (p.name.as_str(), v.as_tensor()))
    }

    /// Logits `[N, 10]` for images `[N, 1, 28, 28]` scaled to [0, 1].
    pub fn forward(&self, images: &Tensor) -> Result<Tensor> {
        self.forward_with(images, |_, _| {})
    }

    /// [`Cnn::forward`], calling `seen(i, output)` with the output of layer `i`. A conv2d + ReLU +
    /// 2x2 max-pool runs as one fused op (the seed's fast path), so only the pool's output is seen
    /// for those three layers.
    pub fn forward_with(&self, images: &Tensor, mut seen: impl FnMut(usize, &Tensor)) -> Result<Tensor> {
        let layers = &self.arch.layers;
        let mut x = images.clone();
        let mut param = 0;
        let mut i = 0;
        while i < layers.len() {
            let mut last = i;
            x = match layers[i] {
                Layer::Conv2d { stride, padding, .. } => {
                    let (w, b) = (self.vars[param].as_tensor(), self.vars[param + 1].as_tensor());
                    param += 2;
                    let fusable = stride == 1
                        && layers.get(i + 1) == Some(&Layer::Relu)
                        && layers.get(i + 2) == Some(&MAXPOOL2)
                        && fused_output_is_even(&x, w, padding)?;
                    let x = if padding > 0 && stride == 1 {
                        x.pad_with_zeros(2, padding, padding)?.pad_with_zeros(3, padding, padding)?
                    } else {
                        x
                    };
                    if fusable {
                        last = i + 2;
                        conv_block(&x, w, b)?
                    } else if stride == 1 {
                        ops::conv2d(&x, w, b)?
                    } else {
                        // Stock candle for strided convolutions (the fast ops are stride 1).
                        x.conv2d(w, padding, stride, 1, 1)?.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?)?
                    }
                }
                Layer::Dense { .. } => {
                    let (w, b) = (self.vars[param].as_tensor(), self.vars[param + 1].as_tensor());
                    param += 2;
                    x.matmul(&w.t()?)?.broadcast_add(b)?
                }
                Layer::Relu => x.relu()?,
                // The fast op routes the gradient to the first maximum, as the fused one does.
                Layer::MaxPool2d { kernel: 2, stride: 2 } => ops::max_pool2x2(&x)?,
                Layer::MaxPool2d { kernel, stride } => x.max_pool2d_with_stride(kernel, stride)?,
                Layer::AvgPool2d { kernel, stride } => x.avg_pool2d_with_stride(kernel, stride)?,
                Layer::Flatten => x.flatten_from(1)?,
            };
            seen(last, &x);
            i = last + 1;
        }
        Ok(x)
    }
}

/// Whether a stride-1 conv with `w` and `padding` on `x` has an even output size, which the fused
/// conv + ReLU + 2x2 pool ops are written for.
fn fused_output_is_even(x: &Tensor, w: &Tensor, padding: usize) -> Result<bool> {
    let (_, _, h, wd) = x.dims4()?;
    let k = w.dim(2)?;
    let (oh, ow) = ((h + 2 * padding).saturating_sub(k - 1), (wd + 2 * padding).saturating_sub(k - 1));
    Ok(oh > 0 && oh % 2 == 0 && ow % 2 == 0)
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
    fn the_seed_layer_list_gives_the_seed_names_shapes_and_line() {
        let seed = Architecture::seed();
        let params = seed.params();
        assert_eq!(params.len(), PARAMS.len());
        for (p, &(name, shape, fan_in)) in params.iter().zip(&PARAMS) {
            assert_eq!((p.name.as_str(), p.shape.as_slice(), p.fan_in), (name, shape, fan_in));
        }
        assert_eq!(seed.describe(), ARCHITECTURE);
        assert_eq!(Architecture::preset("seed").unwrap(), seed);
    }

    #[test]
    fn every_preset_chains_and_round_trips_through_json() {
        for name in PRESETS {
            let arch = Architecture::preset(name).unwrap();
            assert_eq!(*arch.shapes().unwrap().last().unwrap(), ActShape::Flat(CLASSES), "{name}");
            let back = Architecture::from_layers_json(name, &arch.layers_json()).unwrap();
            assert_eq!(back, arch);
        }
        assert_eq!(Architecture::preset("resnet").unwrap_err(), ArchError::UnknownPreset("resnet".into()));
    }

    #[test]
    fn preset_shapes_and_lines() {
        let wide = Architecture::preset("wide").unwrap();
        let shapes = wide.shapes().unwrap();
        assert_eq!(shapes[0], ActShape::Chw(16, 28, 28));
        assert_eq!(shapes[5], ActShape::Chw(32, 7, 7));
        assert_eq!(shapes[6], ActShape::Flat(1568));
        assert_eq!(
            wide.describe(),
            "input 1x28x28 in [0,1]; conv1 3x3 1->16 pad 1 + ReLU + maxpool 2x2; conv2 3x3 16->32 pad 1 + ReLU + avgpool 2x2; \
             flatten 1568 (CHW); fc1 1568->128 + ReLU; fc2 128->10"
        );
        let strided = Architecture::preset("strided").unwrap();
        assert_eq!(strided.shapes().unwrap()[0], ActShape::Chw(16, 14, 14));
        assert_eq!(strided.shapes().unwrap()[2], ActShape::Chw(32, 7, 7));
        assert!(strided.describe().contains("conv1 3x3 1->16 pad 1 stride 2 + ReLU"));
        let narrow = Architecture::preset("narrow").unwrap();
        assert_eq!(
            narrow.params().iter().map(|p| p.shape.iter().product::<usize>()).sum::<usize>(),
            8 * 25 + 8 + 16 * 200 + 16 + 32 * 256 + 32 + 320 + 10
        );
    }

    #[test]
    fn bad_layer_lists_say_which_layer() {
        let arch = |layers| Architecture { name: "t".into(), layers };
        let err = arch(vec![conv(3, 8, 3, 1, 0)]).shapes().unwrap_err();
        assert!(err.to_string().contains("layer 0") && err.to_string().contains("expects 3 channels"), "{err}");
        let err = arch(vec![conv(1, 8, 3, 1, 0), dense(10, 10)]).shapes().unwrap_err();
        assert!(err.to_string().contains("add a flatten"), "{err}");
        let err = arch(vec![Layer::Flatten, dense(784, 12)]).shapes().unwrap_err();
        assert_eq!(err, ArchError::BadOutput(ActShape::Flat(12)));
        let err = arch(vec![Layer::MaxPool2d { kernel: 29, stride: 1 }]).shapes().unwrap_err();
        assert!(err.to_string().contains("larger than the padded input"), "{err}");
        assert!(Architecture::from_layers_json("t", r#"[{"op":"conv3d"}]"#).is_err());
    }

    #[test]
    fn every_preset_runs_forward_and_backward() {
        for name in PRESETS {
            let arch = Architecture::preset(name).unwrap();
            let model = Cnn::with_arch(&arch, &mut ChaCha8Rng::seed_from_u64(1), &Device::Cpu).unwrap();
            let x = Tensor::rand(0f32, 1f32, (2, 1, 28, 28), &Device::Cpu).unwrap();
            let mut seen = Vec::new();
            let y = model.forward_with(&x, |i, _| seen.push(i)).unwrap();
            assert_eq!(y.dims(), &[2, 10], "{name}");
            assert_eq!(seen.last(), Some(&(arch.layers.len() - 1)), "{name}");
            let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            for (p, v) in model.params.iter().zip(&model.vars) {
                assert!(grads.get(v).is_some(), "{name}: no gradient for {}", p.name);
            }
        }
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
        let tensors: std::collections::HashMap<_, _> = model.named_tensors().map(|(n, t)| (n.to_owned(), t.clone())).collect();
        assert!(Cnn::from_tensors(|n| tensors.get(n).cloned()).is_ok());
        let err = Cnn::from_tensors(|n| if n == "fc1.bias" { None } else { tensors.get(n).cloned() });
        assert!(err.err().unwrap().to_string().contains("`fc1.bias` is missing"));
        let err = Cnn::from_tensors(|n| {
            if n == "conv2.weight" {
                Some(Tensor::zeros((64, 32, 3, 3), DType::F32, &Device::Cpu).unwrap())
            } else {
                tensors.get(n).cloned()
            }
        });
        assert!(err.err().unwrap().to_string().contains("`conv2.weight` has shape [64, 32, 3, 3]"));
        // The narrow preset's tensors do not make a seed network.
        let narrow =
            Cnn::with_arch(&Architecture::preset("narrow").unwrap(), &mut ChaCha8Rng::seed_from_u64(0), &Device::Cpu).unwrap();
        let small: std::collections::HashMap<_, _> = narrow.named_tensors().map(|(n, t)| (n.to_owned(), t.clone())).collect();
        assert!(Cnn::from_tensors(|n| small.get(n).cloned()).is_err());
        assert!(Cnn::from_tensors_for(&narrow.arch, |n| small.get(n).cloned()).is_ok());
    }
}
