//! Files that hold weights: the resumable `checkpoint.safetensors` and the plain
//! `model.safetensors` that `export` reads. Both are standard safetensors, written atomically.
//!
//! `model.safetensors`: the f32 tensors named as in [`crate::model`], and `__metadata__` keys
//! `format` (`train-model/1`), `architecture` (one human-readable line), `layers` (the layer
//! list, JSON, as [`crate::model::Layer`] serialises), `arch` (its name), `recipe` (JSON),
//! `dataset`, `class_names` (JSON list), `epochs`, `test_accuracy`. Files written before
//! `layers` existed hold the seed network (their `architecture` is [`crate::model::ARCHITECTURE`]).
//!
//! `checkpoint.safetensors`: the same tensors, plus `adam.m.<name>` and `adam.v.<name>` for the
//! optimizer moments, and metadata `format` (`train-checkpoint/1`), `architecture`, `layers`,
//! `arch`, `recipe`, `epochs_done`,
//! `adam_step`, `rng_word_pos` (position of the shuffling RNG's stream, which with the recipe's
//! seed is its whole state) and `history` (the per-epoch metrics so far, JSON).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use candle_core::safetensors::Load;
use candle_core::{Device, Tensor};

use crate::metrics::EpochMetrics;
use crate::model::{Architecture, Cnn};
use crate::optim::{Adam, AdamConfig};
use crate::run::Recipe;

pub const MODEL_FORMAT: &str = "train-model/1";
pub const CHECKPOINT_FORMAT: &str = "train-checkpoint/1";
pub const MODEL_FILE: &str = "model.safetensors";
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// Everything that changes as a run trains; with the recipe, all it needs to continue.
pub struct TrainState {
    pub model: Cnn,
    pub adam: Adam,
    pub epochs_done: usize,
    /// Position in the shuffling RNG's stream (seeded from the recipe's seed).
    pub rng_word_pos: u128,
    pub history: Vec<EpochMetrics>,
}

/// A checkpoint read back: the recipe it was trained with and where it stopped.
pub struct Checkpoint {
    pub recipe: Recipe,
    pub state: TrainState,
}

fn serialize(tensors: Vec<(String, Tensor)>, metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let tensors = tensors.into_iter().map(|(n, t)| Ok((n, t.contiguous()?))).collect::<Result<Vec<_>>>()?;
    Ok(safetensors::serialize(tensors, Some(metadata))?)
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("metadata types serialise")
}

/// Metadata keys naming the network: `architecture`, `layers`, `arch`.
pub mod arch_keys {
    pub const ARCHITECTURE: &str = "architecture";
    pub const LAYERS: &str = "layers";
    pub const ARCH: &str = "arch";
}

fn with_architecture(mut metadata: HashMap<String, String>, arch: &Architecture) -> HashMap<String, String> {
    metadata.insert(arch_keys::ARCHITECTURE.to_owned(), arch.describe());
    metadata.insert(arch_keys::LAYERS.to_owned(), arch.layers_json());
    metadata.insert(arch_keys::ARCH.to_owned(), arch.name.clone());
    metadata
}

/// The network a file's metadata describes: its `layers` (named by `arch`, else `custom`), or for
/// files from before layer lists, the seed if `architecture` is the seed's line.
pub fn architecture_from_metadata(meta: &HashMap<String, String>) -> Result<Architecture> {
    if let Some(layers) = meta.get(arch_keys::LAYERS) {
        let name = meta.get(arch_keys::ARCH).map_or("custom", String::as_str);
        return Architecture::from_layers_json(name, layers);
    }
    match meta.get(arch_keys::ARCHITECTURE) {
        Some(line) if *line == crate::model::ARCHITECTURE => Ok(Architecture::seed()),
        Some(line) => bail!("metadata has no `layers`, and its architecture `{line}` is not the seed's"),
        None => bail!("metadata has neither `layers` nor `architecture`"),
    }
}

pub fn save_model(path: &Path, model: &Cnn, recipe: &Recipe, epochs: usize, test_accuracy: f64) -> Result<()> {
    let tensors = model.named_tensors().map(|(n, t)| (n.to_owned(), t.clone())).collect();
    let metadata = HashMap::from([
        ("format".to_owned(), MODEL_FORMAT.to_owned()),
        ("recipe".to_owned(), json(recipe)),
        ("dataset".to_owned(), recipe.dataset.name().to_owned()),
        ("class_names".to_owned(), json(&recipe.dataset.class_names())),
        ("epochs".to_owned(), epochs.to_string()),
        ("test_accuracy".to_owned(), test_accuracy.to_string()),
    ]);
    let metadata = with_architecture(metadata, &model.arch);
    let bytes = serialize(tensors, metadata)?;
    crate::atomic::write_atomically(path, &bytes).with_context(|| format!("writing {}", path.display()))
}

pub fn save_checkpoint(path: &Path, recipe: &Recipe, state: &TrainState) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> = state.model.named_tensors().map(|(n, t)| (n.to_owned(), t.clone())).collect();
    for (i, (name, _)) in state.model.named_tensors().enumerate() {
        tensors.push((format!("adam.m.{name}"), state.adam.m[i].clone()));
        tensors.push((format!("adam.v.{name}"), state.adam.v[i].clone()));
    }
    let metadata = HashMap::from([
        ("format".to_owned(), CHECKPOINT_FORMAT.to_owned()),
        ("recipe".to_owned(), json(recipe)),
        ("epochs_done".to_owned(), state.epochs_done.to_string()),
        ("adam_step".to_owned(), state.adam.step.to_string()),
        ("rng_word_pos".to_owned(), state.rng_word_pos.to_string()),
        ("history".to_owned(), json(&state.history)),
    ]);
    let metadata = with_architecture(metadata, &state.model.arch);
    let bytes = serialize(tensors, metadata)?;
    crate::atomic::write_atomically(path, &bytes).with_context(|| format!("writing {}", path.display()))
}

pub fn load_checkpoint(path: &Path, device: &Device) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let st =
        safetensors::SafeTensors::deserialize(&bytes).with_context(|| format!("{} is not a safetensors file", path.display()))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)?;
    let meta = header.metadata().clone().unwrap_or_default();
    let field = |key: &str| meta.get(key).with_context(|| format!("{}: metadata has no `{key}`", path.display()));
    if field("format")? != CHECKPOINT_FORMAT {
        bail!("{}: format `{}` is not {CHECKPOINT_FORMAT}", path.display(), field("format")?);
    }
    let recipe: Recipe = serde_json::from_str(field("recipe")?).context("checkpoint recipe")?;
    let arch = architecture_from_metadata(&meta).with_context(|| format!("{}", path.display()))?;
    let preset = recipe.architecture().with_context(|| format!("{}", path.display()))?;
    if arch.layers != preset.layers {
        bail!(
            "{}: its layers are not those of the `{}` preset it names (written by another version of train?)",
            path.display(),
            recipe.arch
        );
    }
    let tensor = |name: &str| -> Option<Tensor> { st.tensor(name).ok().and_then(|v| v.load(device).ok()) };
    let model = Cnn::from_tensors_for(&preset, tensor).with_context(|| format!("{}", path.display()))?;
    let moments = |kind: &str| -> Result<Vec<Tensor>> {
        model
            .named_tensors()
            .map(|(name, p)| {
                let t = tensor(&format!("adam.{kind}.{name}"))
                    .with_context(|| format!("{}: `adam.{kind}.{name}` is missing", path.display()))?;
                anyhow::ensure!(t.dims() == p.dims(), "{}: `adam.{kind}.{name}` has the wrong shape", path.display());
                Ok(t)
            })
            .collect()
    };
    let adam =
        Adam { config: AdamConfig::with_lr(recipe.lr), step: field("adam_step")?.parse()?, m: moments("m")?, v: moments("v")? };
    let state = TrainState {
        epochs_done: field("epochs_done")?.parse()?,
        rng_word_pos: field("rng_word_pos")?.parse()?,
        history: serde_json::from_str(field("history")?).context("checkpoint history")?,
        model,
        adam,
    };
    Ok(Checkpoint { recipe, state })
}
