//! `cargo run -p train --release`: trains the seed CNN on MNIST and writes the model, metrics,
//! plots and checkpoints to `artifacts/mnist/`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use candle_core::Device;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use train::checkpoint::{self, CHECKPOINT_FILE, Checkpoint};
use train::data::{self, DataError, DatasetKind, download};
use train::run::{self, Recipe, RunOptions};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Train the seed MNIST CNN (or another preset network, --arch) with candle",
    long_about = "Train the seed CNN (conv 5x5 32 + pool, conv 5x5 64 + pool, dense 64, dense 10) with Adam, \
        or another preset network (--arch).\n\n\
        With no arguments it trains the seed recipe (5 epochs, batch 32, lr 1e-3, seed 0) on MNIST from \
        data/mnist/ and writes model.safetensors, checkpoint.safetensors, metrics.json, curves.png, \
        confusion.png and samples.png to artifacts/mnist/.\n\n\
        First run: when the data set is not in data/ (and --data-dir was not given), train downloads it there \
        from its public mirrors (SHA-256 checked, nothing half-written) and says so.\n\n\
        Offline? Pass --offline (never touch the network) and point --data-dir at a folder holding the four \
        IDX files (gzip or raw), or copy them into data/<dataset>/."
)]
struct Cli {
    /// Folder holding the data sets: either `<dir>/<dataset>/` with the four IDX files, or the files directly
    /// [default: data, where a missing data set is downloaded unless --offline].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The network [default: seed]:
    /// `seed` conv 5x5 1->32, ReLU, maxpool 2; conv 5x5 32->64, ReLU, maxpool 2; dense 1024->64, ReLU; dense 64->10.
    /// `narrow` conv 5x5 1->8, ReLU, maxpool 2; conv 5x5 8->16, ReLU, maxpool 2; dense 256->32, ReLU; dense 32->10.
    /// `wide` conv 3x3 pad 1 1->16, ReLU, maxpool 2; conv 3x3 pad 1 16->32, ReLU, avgpool 2; dense 1568->128, ReLU; dense 128->10.
    /// `strided` conv 3x3 stride 2 pad 1 1->16, ReLU; conv 3x3 stride 2 pad 1 16->32, ReLU; dense 1568->10.
    /// A resumed run keeps its checkpoint's network.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(train::model::PRESETS), verbatim_doc_comment)]
    arch: Option<String>,
    /// Which data set to train on.
    #[arg(long, value_enum, default_value_t = DatasetKind::Mnist)]
    dataset: DatasetKind,
    /// Number of epochs [default: 5]. With --resume, the new total to train up to.
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per optimizer step [default: 32].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Adam learning rate [default: 0.001].
    #[arg(long)]
    lr: Option<f64>,
    /// Seed for weight initialisation and shuffling; the same seed gives the same run [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Augment the training images afresh every epoch, as a camera would vary them: rotation, scale,
    /// shear, shift, stroke thickness (dilation/erosion) and an elastic wobble; deterministic per
    /// --seed and epoch, so --resume stays bit-exact. Off in the seed recipe.
    #[arg(long)]
    augment: bool,
    /// Train on the first N training images only (for quick runs); the test set stays whole.
    #[arg(long)]
    limit: Option<usize>,
    /// Where to train: `auto` picks CUDA when built with the `cuda` feature and a GPU is present, else the CPU.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
    /// On CUDA, capture one training step as a CUDA graph and replay it (one launch per step);
    /// `off` launches every kernel from the host (slower; for comparison and debugging).
    #[arg(long, value_enum, default_value_t = Switch::On)]
    cuda_graph: Switch,
    /// Output folder [default: artifacts/<dataset>, or artifacts/<dataset>-<arch> for an --arch other than seed].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run whose checkpoint is in the output folder (its recipe is kept; --epochs may raise the total).
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Start a new run even though the output folder holds a checkpoint (it is replaced after the first epoch).
    #[arg(long)]
    overwrite: bool,
    /// Fetch the data set from its public mirrors into --data-dir first (checksums verified; nothing is written unless all four files verify).
    #[arg(long)]
    download: bool,
    /// Mirror to download from instead of the public ones (repeatable; tried in order).
    #[arg(long = "mirror", conflicts_with = "offline")]
    mirrors: Vec<String>,
    /// Never touch the network: a missing data set is an error instead of a download into data/.
    #[arg(long, conflicts_with = "download")]
    offline: bool,
    /// No progress bars or per-epoch lines.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
enum Switch {
    On,
    Off,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum DeviceChoice {
    Auto,
    Cpu,
    Cuda,
}

#[cfg(feature = "cuda")]
fn open_cuda() -> Result<Device> {
    use anyhow::Context;
    train::cuda::open_device(0).context("opening CUDA device 0")
}

#[cfg(not(feature = "cuda"))]
fn open_cuda() -> Result<Device> {
    bail!(
        "--device cuda needs a build with the `cuda` feature (cargo run -p train --release --features cuda, or scripts/build-cuda)"
    )
}

/// The device to train on, and why it was chosen.
fn pick_device(choice: DeviceChoice) -> Result<(Device, &'static str)> {
    match choice {
        DeviceChoice::Cpu => Ok((Device::Cpu, "--device cpu")),
        DeviceChoice::Cuda => Ok((open_cuda()?, "--device cuda")),
        DeviceChoice::Auto if !cfg!(feature = "cuda") => Ok((Device::Cpu, "built without the `cuda` feature")),
        DeviceChoice::Auto => match open_cuda() {
            Ok(device) => Ok((device, "a CUDA GPU is present")),
            Err(_) => Ok((Device::Cpu, "no usable CUDA GPU found")),
        },
    }
}

/// The recipe to train: from the checkpoint when resuming (flags may only raise --epochs), else
/// the seed recipe with the flags applied.
fn recipe_for(cli: &Cli, resumed: Option<&Recipe>) -> Result<Recipe> {
    let Some(saved) = resumed else {
        let seed = Recipe::seed_recipe(cli.dataset);
        return Ok(Recipe {
            dataset: cli.dataset,
            epochs: cli.epochs.unwrap_or(seed.epochs),
            batch_size: cli.batch_size.unwrap_or(seed.batch_size),
            lr: cli.lr.unwrap_or(seed.lr),
            seed: cli.seed.unwrap_or(seed.seed),
            limit: cli.limit,
            arch: cli.arch.clone().unwrap_or(seed.arch),
            augment: cli.augment,
        });
    };
    let conflicts = [
        (cli.dataset != saved.dataset, "--dataset"),
        (cli.batch_size.is_some_and(|b| b != saved.batch_size), "--batch-size"),
        (cli.lr.is_some_and(|l| l != saved.lr), "--lr"),
        (cli.seed.is_some_and(|s| s != saved.seed), "--seed"),
        (cli.limit.is_some() && cli.limit != saved.limit, "--limit"),
        (cli.arch.as_ref().is_some_and(|a| *a != saved.arch), "--arch"),
        (cli.augment && !saved.augment, "--augment"),
    ];
    if let Some((_, flag)) = conflicts.iter().find(|(c, _)| *c) {
        bail!("{flag} differs from the checkpoint's recipe {saved:?}; a resumed run keeps its recipe (only --epochs may change)");
    }
    Ok(Recipe { epochs: cli.epochs.unwrap_or(saved.epochs), ..saved.clone() })
}

/// Where data sets live unless --data-dir says otherwise; the only folder `train` downloads into by itself.
const DEFAULT_DATA_DIR: &str = "data";

/// The data set is missing from data/ on a run without --data-dir or --offline: fetch it there,
/// saying so, and on failure say how to proceed without network.
fn first_run_download(cli: &Cli, kind: DatasetKind, data_dir: &Path, say: &dyn Fn(&str)) -> Result<()> {
    let dest = data_dir.join(kind.name());
    say(&format!(
        "the {kind} data set is not in {}: downloading it there (about 11 MB, once; SHA-256 checked; --offline turns this off)",
        dest.display()
    ));
    download::download_with_progress(kind, data_dir, &cli.mirrors, say, progress(cli.quiet)).map_err(|e| {
        anyhow!(
            "{e}\nCould not download {kind} into {dest}. Without network: copy the four IDX files \
             (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, \
             gzip or raw) into {dest} from a machine that has them, or point --data-dir at a folder that holds them; \
             pass --offline to never try the network.",
            dest = dest.display()
        )
    })?;
    Ok(())
}

/// A progress bar per fetched file (hidden with --quiet).
fn progress(quiet: bool) -> impl FnMut(download::Progress<'_>) {
    let mut bar: Option<ProgressBar> = None;
    move |event| match event {
        download::Progress::Started { url, total } if !quiet => {
            let b = total.map_or_else(ProgressBar::no_length, ProgressBar::new);
            b.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.set_message(url.rsplit('/').next().unwrap_or(url).to_owned());
            bar = Some(b);
        }
        download::Progress::Received { done } => {
            if let Some(b) = &bar {
                b.set_position(done);
            }
        }
        download::Progress::Finished => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
        }
        download::Progress::Started { .. } => {}
    }
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    let out_dir = cli.out.clone().unwrap_or_else(|| {
        let folder = match cli.arch.as_deref() {
            None | Some(train::model::SEED) => cli.dataset.name().to_owned(),
            Some(arch) => format!("{}-{arch}", cli.dataset.name()),
        };
        PathBuf::from("artifacts").join(folder)
    });
    let (device, why) = pick_device(cli.device)?;
    let say = |line: &str| {
        if !cli.quiet {
            eprintln!("{line}");
        }
    };
    say(&format!("device: {} ({why})", run::device_name(&device)));

    let checkpoint_path = out_dir.join(CHECKPOINT_FILE);
    let resumed: Option<Checkpoint> = if cli.resume {
        if !checkpoint_path.is_file() {
            bail!("--resume: no checkpoint at {}", checkpoint_path.display());
        }
        let ckpt = checkpoint::load_checkpoint(&checkpoint_path, &device)?;
        say(&format!("resuming {} after epoch {}", checkpoint_path.display(), ckpt.state.epochs_done));
        Some(ckpt)
    } else {
        if checkpoint_path.is_file() && !cli.overwrite {
            bail!(
                "{} already holds a run's checkpoint; pass --resume to continue it, --overwrite to start over, or --out to write elsewhere",
                out_dir.display()
            );
        }
        None
    };
    let recipe = recipe_for(&cli, resumed.as_ref().map(|c| &c.recipe))?;
    recipe.validate()?;

    let data_dir = cli.data_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    if cli.download {
        download::download_with_progress(recipe.dataset, &data_dir, &cli.mirrors, |line| say(line), progress(cli.quiet))?;
    }
    let data = match data::load(&data_dir, recipe.dataset) {
        Err(DataError::Missing { .. }) if cli.data_dir.is_none() && !cli.offline => {
            first_run_download(&cli, recipe.dataset, &data_dir, &say)?;
            data::load(&data_dir, recipe.dataset)?
        }
        loaded => loaded?,
    };
    say(&format!(
        "{}: {} training images{}, {} test images; recipe {recipe:?}",
        recipe.dataset,
        data.train.len(),
        recipe.limit.map_or(String::new(), |n| format!(" (using the first {n})")),
        data.test.len()
    ));

    let opts =
        RunOptions { out_dir: out_dir.clone(), device, show_progress: !cli.quiet, cuda_graph: cli.cuda_graph == Switch::On };
    let summary = run::run(&recipe, &data, resumed.map(|c| c.state), &opts)?;
    println!("{}", run::summary_table(&summary.history));
    println!(
        "wrote {}",
        ["model.safetensors", "checkpoint.safetensors", "metrics.json", "curves.png", "confusion.png", "samples.png"]
            .map(|f| out_dir.join(f).display().to_string())
            .join(", ")
    );
    Ok(())
}
