//! Networks other than the seed (`--arch`): they train, their files name their layers, and a
//! resumed run cannot switch network.

use std::path::Path;
use std::process::{Command, Output};

use candle_core::Device;
use train::checkpoint::{self, CHECKPOINT_FILE, MODEL_FILE};
use train::data::{self, Dataset, DatasetKind};
use train::model::{ARCHITECTURE, Architecture, PRESETS};
use train::run::{self, Recipe, RunOptions};

fn data_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

fn mnist(test: usize) -> Dataset {
    let mut ds = data::load(&data_dir(), DatasetKind::Mnist).expect("MNIST in data/mnist (link ../shared/data to data/)");
    ds.test = ds.test.truncated(test);
    ds
}

fn recipe(arch: &str, epochs: usize, limit: usize) -> Recipe {
    Recipe { epochs, limit: Some(limit), arch: arch.to_owned(), ..Recipe::seed_recipe(DatasetKind::Mnist) }
}

fn metadata(path: &Path) -> std::collections::HashMap<String, String> {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    header.metadata().clone().unwrap()
}

fn train_cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_train")).args(args).output().unwrap()
}

#[test]
fn every_non_seed_preset_beats_chance_on_a_short_run() {
    let ds = mnist(1000);
    for arch in PRESETS.into_iter().filter(|a| *a != "seed") {
        let dir = tempfile::tempdir().unwrap();
        let summary = run::run(&recipe(arch, 1, 1024), &ds, None, &RunOptions::new(dir.path(), Device::Cpu)).unwrap();
        let acc = summary.history[0].test_accuracy;
        // Chance is 10%; 32 steps of Adam take every preset well past it.
        assert!(acc > 0.4, "{arch}: 1024 images for one epoch gave {acc}");
    }
}

#[test]
fn model_and_checkpoint_metadata_hold_the_layer_list_and_round_trip() {
    let ds = mnist(100);
    let dir = tempfile::tempdir().unwrap();
    run::run(&recipe("wide", 1, 64), &ds, None, &RunOptions::new(dir.path(), Device::Cpu)).unwrap();
    let wide = Architecture::preset("wide").unwrap();
    for file in [MODEL_FILE, CHECKPOINT_FILE] {
        let meta = metadata(&dir.path().join(file));
        assert_eq!(meta["arch"], "wide", "{file}");
        assert_eq!(meta["architecture"], wide.describe(), "{file}");
        assert_eq!(checkpoint::architecture_from_metadata(&meta).unwrap(), wide, "{file}");
    }
    let ckpt = checkpoint::load_checkpoint(&dir.path().join(CHECKPOINT_FILE), &Device::Cpu).unwrap();
    assert_eq!(ckpt.recipe.arch, "wide");
    assert_eq!(ckpt.state.model.arch, wide);
    let names: Vec<&str> = ckpt.state.model.named_tensors().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    );
    assert_eq!(ckpt.state.model.vars[4].dims(), &[128, 1568]);

    // Files from before layer lists (no `layers`, the seed's line) read as the seed.
    let old = std::collections::HashMap::from([("architecture".to_owned(), ARCHITECTURE.to_owned())]);
    assert_eq!(checkpoint::architecture_from_metadata(&old).unwrap(), Architecture::seed());
}

#[test]
fn a_checkpoint_whose_layers_disagree_with_its_recipe_is_refused() {
    let ds = mnist(100);
    let dir = tempfile::tempdir().unwrap();
    run::run(&recipe("narrow", 1, 64), &ds, None, &RunOptions::new(dir.path(), Device::Cpu)).unwrap();
    let path = dir.path().join(CHECKPOINT_FILE);
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut meta = metadata(&path);
    meta.insert("layers".to_owned(), Architecture::preset("wide").unwrap().layers_json());
    let tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> = st.tensors();
    std::fs::write(&path, safetensors::serialize(tensors, Some(meta)).unwrap()).unwrap();
    let err = checkpoint::load_checkpoint(&path, &Device::Cpu).err().unwrap();
    assert!(format!("{err:#}").contains("not those of the `narrow` preset"), "{err:#}");
}

#[test]
fn the_cli_names_an_unknown_arch_and_refuses_to_resume_as_another() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    let d = data_dir().display().to_string();

    let bad = train_cli(&["--data-dir", &d, "--out", o, "--arch", "resnet50"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("resnet50") && err.contains("narrow") && err.contains("wide"), "{err}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0, "nothing written");

    let first = train_cli(&["--data-dir", &d, "--out", o, "--arch", "narrow", "--limit", "64", "--epochs", "1", "--quiet"]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(metadata(&out.path().join(MODEL_FILE))["arch"], "narrow");

    let other = train_cli(&["--data-dir", &d, "--out", o, "--resume", "--arch", "wide", "--epochs", "2", "--quiet"]);
    assert!(!other.status.success());
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("--arch differs"), "{err}");

    // Without --arch, --resume continues the checkpoint's own network.
    let resumed = train_cli(&["--data-dir", &d, "--out", o, "--resume", "--epochs", "2", "--quiet"]);
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let meta = metadata(&out.path().join(CHECKPOINT_FILE));
    assert_eq!((meta["arch"].as_str(), meta["epochs_done"].as_str()), ("narrow", "2"));
}

#[test]
fn help_lists_every_preset() {
    let out = train_cli(&["--help"]);
    let help = String::from_utf8(out.stdout).unwrap();
    for name in PRESETS {
        assert!(help.contains(&format!("`{name}`")), "--help does not describe {name}");
    }
    assert!(help.contains("--arch"));
}
