//! `cargo run -p export --release`: quantizes `artifacts/mnist/model.safetensors` to int8 and
//! writes the runtime-mobile model, the f32 and int8 ONNX files and a report beside it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Quantize a trained model to int8 for runtime-mobile and export it to ONNX",
    long_about = "Reads the model.safetensors that `train` writes (any --arch network) and writes beside it:\n\n  \
        model.int8.safetensors  int8 model in runtime-mobile's format (runtime-mobile/FORMAT.md): int8 symmetric \
        per-output-channel weights, int32 biases, per-channel int32 multiplier + shift\n  \
        model.onnx              the float network, ONNX opset 13\n  \
        model.int8.onnx         the int8 network, ONNX QOperator (QuantizeLinear, QLinearConv, MaxPool, DequantizeLinear); \
        not written for networks with an average pool (the report says so)\n  \
        export-report.json      file sizes, f32 vs int8 test accuracy and agreement, arena bytes, calibration\n\n\
        Activation ranges are calibrated on the first N training images (--calibration): the min/max of each \
        layer's float output, with min = 0 after ReLU. int8 accuracy is measured by running runtime-mobile itself \
        over the test set. Nothing is written unless every output was built."
)]
struct Cli {
    /// The float model written by `train`.
    #[arg(default_value = "artifacts/mnist/model.safetensors")]
    model: PathBuf,
    /// Folder holding the data sets: `<dir>/<dataset>/` with the four IDX files (as for `train`).
    /// The dataset is the one recorded in the model's metadata.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// Calibrate activation ranges on the first N training images.
    #[arg(long, default_value_t = export::DEFAULT_CALIBRATION)]
    calibration: usize,
    /// Evaluate on the first N test images only (quick runs); default: the whole test set.
    #[arg(long)]
    test_limit: Option<usize>,
    /// Print only errors.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts =
        export::Options { input: cli.model, data_dir: cli.data_dir, calibration: cli.calibration, test_limit: cli.test_limit };
    match export::run(&opts) {
        Ok(e) => {
            if !cli.quiet {
                println!("wrote {} files to {}\n", e.files.len(), e.dir.display());
                print!("{}", e.report.table());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
